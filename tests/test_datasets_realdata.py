"""Real-data tier: ../shared/data/real-dev (or $CAMFORENSICS_REAL_DEV); skipped when the folder is absent."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest

from camforensics.io.datasets import scan_dataset
from camforensics.io.patch_stream import PatchSampling, PatchStream
from camforensics.io.splits import SPLIT_NAMES, split_by_device

from conftest import REAL_DEV

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not REAL_DEV.is_dir(), reason=f"real-dev data not found at {REAL_DEV}"),
]


@pytest.fixture(scope="module")
def scan():
    return scan_dataset(REAL_DEV)


@pytest.fixture(scope="module")
def manifest() -> list[dict[str, str]]:
    with open(REAL_DEV / "MANIFEST.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_devices_models_counts(scan) -> None:
    assert scan.layout == "generic"
    assert len(scan.records) == 181
    assert len(scan.devices) == 8
    assert len(scan.models) == 7  # the two vivo iQOO U1x bodies share a model
    vivo = {r.device for r in scan.records if r.model_id == "vivo iQOO U1x"}
    assert vivo == {"vivo_iQOO-U1x_0", "vivo_iQOO-U1x_1"}
    assert not scan.skipped


def test_counts_match_manifest(scan, manifest) -> None:
    ours = Counter((r.device, r.content) for r in scan.records)
    theirs = Counter((row["device"], row["content"]) for row in manifest)
    assert ours == theirs
    rel = {r.path.relative_to(scan.root).as_posix(): r for r in scan.records}
    for row in manifest:
        record = rel[row["file"]]
        assert (record.make, record.model) == (row["make"], row["model"])


def test_sha256_matches_manifest(scan, manifest) -> None:
    rows = {row["file"]: row["sha256"] for row in manifest}
    for record in scan.records[::30]:
        assert record.sha256() == rows[record.path.relative_to(scan.root).as_posix()]


def test_split_is_device_disjoint(scan) -> None:
    split = split_by_device(scan.records, stratify=False, seed=0)
    sets = [set(split.devices(n)) for n in SPLIT_NAMES]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sum(len(s) for s in sets) == 8


def test_stream_on_real_images(scan) -> None:
    stream = PatchStream(scan.records, sampling=PatchSampling(size=64, per_image=8), seed=0, images_per_epoch=7)
    batch = next(stream.batches(56))
    assert batch.pixels.shape == (56, 64, 64, 3) and batch.pixels.dtype == np.uint8
    assert sorted(set(batch.labels.tolist())) == list(range(7))  # one image of each model
    assert (batch.positions <= 1024 - 64).all()
    assert not stream.failures

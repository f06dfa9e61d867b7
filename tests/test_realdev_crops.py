"""Real-data tier: 512x512 crops of real-dev natural images are found in full flat-field fingerprints, at the
right offset, and never attributed to another device.

Skipped when ../shared/data/real-dev is absent. Each device with flat-field images is enrolled from all of them
(1024x1024, the corpus's own lossless crops of the sensor; the library is shared with the other real-data tests). From every device's natural images
2 crops of 512x512 are cut at seeded random positions on the 16-pixel MCU grid of the decoded JPEG (standing in
for jpegtran's lossless -crop, which is not installed: luma is identical, chroma may differ in the outer pixel
ring) and saved as PNG in a temporary folder; the photos themselves are never copied anywhere else. A device's
flat and natural images share one crop geometry (MANIFEST.csv), so a crop cut at (y, x) sits at (y, x) of its
device's fingerprint. The two vivo bodies have no flat-field images: their crops must match nothing.

The search runs in the stored order only (``rotations="none"``) to keep this tier quick; the orientation
fallback is covered by tests/test_cropsearch.py, and bench/bench_crop.py runs the default search on more crops.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import REAL_DEV

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not REAL_DEV.is_dir(), reason=f"real-dev corpus not found at {REAL_DEV}"),
]

CROP, MCU, PER_DEVICE = 512, 16, 2


@pytest.fixture(scope="module")
def crop_report(tmp_path_factory, realdev_flat_library):
    from PIL import Image

    from camforensics.core.params import MatchParams
    from camforensics.io.images import load_image
    from camforensics.io.library import FingerprintLibrary
    from camforensics.pipelines.identify import identify_images

    tmp = tmp_path_factory.mktemp("realdev_crops")
    rng = np.random.default_rng(2024)
    truth = {}
    enrolled = set(FingerprintLibrary(realdev_flat_library).names())
    for folder in sorted(p for p in REAL_DEV.iterdir() if p.is_dir()):
        nat = sorted((folder / "nat").glob("*.jpg"))
        for i in range(PER_DEVICE):
            rgb = load_image(nat[i % len(nat)]).pixels
            y = int(rng.integers(0, (rgb.shape[0] - CROP) // MCU + 1)) * MCU
            x = int(rng.integers(0, (rgb.shape[1] - CROP) // MCU + 1)) * MCU
            path = tmp / f"{folder.name}__{i}.png"
            Image.fromarray(rgb[y : y + CROP, x : x + CROP]).save(path)
            truth[path.name] = (folder.name, [y, x])
    report = identify_images(sorted(tmp.glob("*.png")), library=realdev_flat_library, match=MatchParams(rotations="none"))
    return report, truth, enrolled


def test_crops_are_found_at_their_offset_and_never_in_another_device(crop_report):
    report, truth, enrolled = crop_report
    assert len(enrolled) == 6 and len(report.results) == 8 * PER_DEVICE
    found = 0
    for r in report.results:
        assert r["status"] == "ok", r.get("error")
        device, offset = truth[Path(r["input"]["path"]).name]
        d = r["decision"]
        assert d["search"] == "crop"
        # The crops keep the decoded JPEG's block grid at phase (0, 0) (cut on the MCU grid): the JPEG-grid test
        # (1 offset in 64, at half the P_FA) or the test of every offset (the other half) decided.
        # A crop whose grid does not stand out (a smooth scene) is searched over every offset alone, as before.
        top = next(c for c in r["candidates"] if c["device"] == (d["device"] or r["candidates"][0]["device"]))
        grid = top["jpeg_grid"]
        n_all, n_grid = (1024 - CROP + 1) ** 2, len(range(0, 1024 - CROP + 1, 8)) ** 2
        if grid["found"]:
            assert grid["phase"] == [0, 0], grid
            assert d["n_hypotheses"] == (2 * n_grid if grid["peak_on_grid_test"] else 2 * n_all)
        else:
            assert d["n_hypotheses"] == n_all and not grid["peak_on_grid_test"]
        wrong = [(c["device"], round(c["pce"], 1)) for c in r["candidates"] if c["device"] != device and c["pce"] > c["threshold"]]
        assert not wrong, (device, wrong)
        if d["match"]:
            assert d["device"] == device and d["crop_offset"] == offset, (device, offset, d)
            found += 1
    # Measured when this tier was written (every offset alone): 10 of the 12 crops of enrolled devices, all at the
    # true offset. The misses: a GT-I9300 crop peaking at its true offset with PCE 69.6 (threshold 84.6 for 263,169
    # offsets; the grid test's is 77.8) and a GT-P5210 crop (10 flat fields) at PCE 24. Fewer than 9 means the
    # search got worse.
    assert found >= 9, found


def test_unenrolled_devices_match_nothing(crop_report):
    report, truth, enrolled = crop_report
    vivo = [r for r in report.results if truth[Path(r["input"]["path"]).name][0] not in enrolled]
    assert len(vivo) == 2 * PER_DEVICE
    for r in vivo:
        assert not r["decision"]["match"] and r["matches"] == []
        assert all(c["pce"] < c["threshold"] for c in r["candidates"])

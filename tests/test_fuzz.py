"""Property-based fuzzing (hypothesis) of the decoders and the report writers.

Decoders: any bytes, and valid JPEG / PNG / TIFF files mutated byte-wise or cut, either decode or raise the
project's per-file InputError; never anything else. Report writers: any file name, including the bytes that are
not UTF-8 a POSIX file system allows, is written by the json, jsonl and csv writers and the journal, and read
back to the same name.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camforensics.errors import InputError
from camforensics.io.images import load_image, read_header
from camforensics.io.safety import unique_stems
from camforensics.reports.escape import escape_tree, recorded_path
from camforensics.reports.journal import Journal
from camforensics.reports.report import Report

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MAX_PIXELS = 1_000_000  # a mutated header may declare any size: keep what is decoded small


def _valid_files() -> dict[str, bytes]:
    import cv2
    from PIL import Image

    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    tif = io.BytesIO()
    Image.fromarray(rgb).save(tif, "TIFF")
    return {
        ".jpg": cv2.imencode(".jpg", rgb)[1].tobytes(),
        ".png": cv2.imencode(".png", rgb)[1].tobytes(),
        ".tif": tif.getvalue(),
    }


VALID = _valid_files()


def _decode(tmp_path: Path, data: bytes, suffix: str) -> None:
    p = tmp_path / f"fuzz{suffix}"
    p.write_bytes(data)
    try:
        img = load_image(p, max_pixels=MAX_PIXELS)
    except InputError as exc:
        assert str(exc).startswith(str(p)) and "\n" not in str(exc)
    else:
        assert img.pixels.shape[:2] == (img.info.height, img.info.width)
    try:
        fmt, w, h = read_header(p, max_pixels=MAX_PIXELS)
    except InputError:
        pass
    else:
        assert w > 0 and h > 0 and w * h <= MAX_PIXELS


@FUZZ
@given(data=st.binary(min_size=0, max_size=2048), suffix=st.sampled_from([".jpg", ".png", ".tif", ".webp", ".bmp"]))
def test_random_bytes_are_a_per_file_error(tmp_path, data, suffix):
    _decode(tmp_path, data, suffix)


@st.composite
def mutated(draw):
    suffix = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[suffix])
    header = min(len(data), 400)  # most edits land in the headers, where parsers are most fragile
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(0, (min(header, len(data)) if draw(st.booleans()) else len(data)) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
    return bytes(data), suffix


@FUZZ
@given(case=mutated())
def test_mutated_images_decode_or_are_a_per_file_error(tmp_path, case):
    _decode(tmp_path, *case)


# ------------------------------------------------------------------------------------------------ report writers

# File names as a POSIX file system hands them to Python: any bytes but '/' and NUL, decoded with
# surrogateescape; plus any text without lone surrogates.
fs_names = st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b).map(os.fsdecode)
names = st.one_of(fs_names, st.text(min_size=1, max_size=40))


def _result(name: str) -> dict:
    return {
        "input": {"path": f"evidence/{name}", "sha256": "0" * 64},
        "status": "error",
        "error": {"type": "InputError", "message": f"evidence/{name}: not an image file"},
        "outputs": {"residual_npy": f"out/{name}_00000000.residual.npy"},
    }


@FUZZ
@given(name_list=st.lists(names, min_size=1, max_size=4))
def test_report_writers_keep_any_name(tmp_path, name_list):
    rep = Report(command="extract", parameters={"out_dir": f"out/{name_list[0]}"}, argv=["camforensics", *name_list])
    for n in name_list:
        rep.add(_result(n))
    rep.finish()
    for fmt in ("json", "jsonl", "csv"):
        written = rep.write(tmp_path / f"r.{fmt}", fmt=fmt)
        raw = written[0].read_bytes()
        raw.decode("utf-8")  # valid UTF-8, whatever the names
        if fmt == "json":
            results = json.loads(raw)["results"]
        elif fmt == "jsonl":
            results = [json.loads(line) for line in raw.decode().split("\n") if line and json.loads(line)["record"] == "result"]
        else:
            rows = list(csv.DictReader(io.StringIO(raw.decode(), newline="")))
            results = [{"input": {k.split(".", 1)[1]: v for k, v in r.items() if k.startswith("input.") and v}}
                       for r in rows]  # fmt: skip
        assert [recorded_path(r["input"]) for r in results] == [f"evidence/{n}" for n in name_list]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@FUZZ
@given(name_list=st.lists(names, min_size=1, max_size=4))
def test_journal_keeps_any_name(tmp_path, name_list):
    path = tmp_path / "r.json.partial.jsonl"
    journal = Journal(path, command="extract", parameters={"out_dir": f"out/{name_list[0]}"})
    rep = Report(command="extract", parameters={}, journal=journal)
    for n in name_list:
        rep.add(_result(n), stamp={"size": 1, "mtime_ns": 2})
    rep.finish()
    back = [recorded_path(r["input"]) for r in journal.results()]
    assert back == [f"evidence/{n}" for n in name_list]
    path.read_bytes().decode("utf-8")
    resumed = Journal(path, command="extract", parameters={"out_dir": f"out/{name_list[0]}"}, resume=True)
    resumed.close()


@given(tree=st.recursive(names, lambda inner: st.dictionaries(names, inner, max_size=3) | st.lists(inner, max_size=3)))
@settings(max_examples=100, deadline=None)
def test_escape_tree_is_utf8_safe(tree):
    json.dumps(escape_tree(tree), ensure_ascii=False).encode("utf-8")


@given(paths=st.lists(st.tuples(st.sampled_from(["a", "b", "c/d"]), names.filter(lambda n: "/" not in n and n not in (".", ".."))), max_size=8, unique=True))
@settings(max_examples=100, deadline=None)
def test_unique_stems_never_collide(paths):
    files = [Path(folder) / f"{name}.jpg" for folder, name in paths]
    stems = unique_stems(files)
    assert stems == unique_stems(files)  # deterministic
    chosen = [stems[str(f)].casefold() for f in files]
    assert len(set(chosen)) == len(set(map(str, files)))
    assert all(len(os.fsencode(s)) <= 130 for s in stems.values())


@pytest.mark.parametrize("suffix", sorted(VALID))
def test_valid_files_decode(tmp_path, suffix):
    p = tmp_path / f"ok{suffix}"
    p.write_bytes(VALID[suffix])
    assert load_image(p).pixels.shape[:2] == (48, 40)

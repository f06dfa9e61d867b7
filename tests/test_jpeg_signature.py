"""JPEG coding signatures: the marker parser against files of known coding, the table build/match, identify.

Synthetic JPEGs are written by Pillow (libjpeg) with chosen quality, subsampling, progressive and optimised coding,
so each parsed field is checked against what the writer was told; the real-data test (skipped without
../shared/data) checks that a full frame and its lossless crop share a signature.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REAL_DEV
from PIL import Image
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.errors import InputError
from camforensics.io.jpeg_signature import (
    _IJG_LUM,
    ijg_table,
    parse_jpeg_signature,
    read_jpeg_signature,
)
from camforensics.pipelines.signatures import SignatureTable, build_table, match_signature

REAL_FULL = REAL_DEV.parent / "real-full"
REAL_MODELS = REAL_DEV.parent / "real-models"


def picture(seed: int = 0, size: tuple[int, int] = (96, 128)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def write(path: Path, *, quality: int = 90, subsampling: int = 2, software: str | None = None,
          make: str | None = None, model: str | None = None, **kw) -> Path:  # fmt: skip
    ex = Image.Exif()
    if make:
        ex[0x010F] = make
    if model:
        ex[0x0110] = model
    if software:
        ex[0x0131] = software
    path.parent.mkdir(parents=True, exist_ok=True)
    picture().save(path, "JPEG", quality=quality, subsampling=subsampling, exif=ex.tobytes(), **kw)
    return path


def test_parser_reads_what_the_writer_was_told(tmp_path):
    s = read_jpeg_signature(write(tmp_path / "a.jpg", quality=75, subsampling=2, software="Ver.1.00", make="Canon",
                                  model="Canon Ixus70"))  # fmt: skip
    assert (s.width, s.height, s.components) == (128, 96, 3)
    assert s.subsampling == "4:2:0" and s.sampling == ((2, 2), (1, 1), (1, 1))
    assert s.ijg_quality == 75 and s.quant_tables[0] == ijg_table(_IJG_LUM, 75)  # natural order, de-zig-zagged
    assert s.progressive is False and s.sof == 0xC0 and s.huffman_standard is True
    assert (s.exif_make, s.exif_model, s.exif_software) == ("Canon", "Canon Ixus70", "Ver.1.00")
    assert read_jpeg_signature(write(tmp_path / "b.jpg", subsampling=1)).subsampling == "4:2:2"
    assert read_jpeg_signature(write(tmp_path / "c.jpg", subsampling=0)).subsampling == "4:4:4"
    p = read_jpeg_signature(write(tmp_path / "d.jpg", progressive=True))
    assert p.progressive is True and p.sof == 0xC2
    assert len(p.huffman) >= 4  # the DHT segments between the scans are found behind the entropy-coded data
    o = read_jpeg_signature(write(tmp_path / "e.jpg", optimize=True))
    assert o.huffman_standard is False and o.huffman_key() != "standard"
    assert o.quant_key() == read_jpeg_signature(write(tmp_path / "f.jpg")).quant_key()  # same tables, same key
    assert s.quant_key() != o.quant_key()  # quality 75 vs 90


def test_parser_refuses_what_is_not_a_readable_jpeg(tmp_path):
    data = write(tmp_path / "a.jpg").read_bytes()
    with pytest.raises(InputError, match="not a JPEG"):
        parse_jpeg_signature(b"\x89PNG\r\n\x1a\n" + data[2:])
    with pytest.raises(InputError, match="truncated|segment|frame header"):
        parse_jpeg_signature(data[:150])
    with pytest.raises(InputError, match="frame header"):
        parse_jpeg_signature(b"\xff\xd8\xff\xd9")
    bad = bytearray(data)
    i = bad.index(b"\xff\xdb")
    bad[i + 2 : i + 4] = (0xFFFF).to_bytes(2, "big")  # a DQT length past the end of the file
    with pytest.raises(InputError, match="segment 0xFFDB"):
        parse_jpeg_signature(bytes(bad))
    (tmp_path / "x.png").write_bytes(b"not an image")
    with pytest.raises(InputError):
        read_jpeg_signature(tmp_path / "x.png")


def make_corpus(root: Path) -> Path:
    for cam, q in (("Alpha_One_0", 80), ("Beta_Two_0", 92)):
        for i in range(2):
            make, model = cam.split("_")[:2]
            write(root / cam / "nat" / f"{i}.jpg", quality=q, make=make, model=model)
    return root


def test_table_build_and_match(tmp_path):
    table, skipped = build_table([make_corpus(tmp_path / "data")])
    assert skipped == {} and sorted(table.cameras) == ["Alpha One", "Beta Two"]
    assert table.cameras["Alpha One"]["n_files"] == 2 and len(table.cameras["Alpha One"]["signatures"]) == 1
    table.save(tmp_path / "t.json")
    table = SignatureTable.load(tmp_path / "t.json")
    own = match_signature(read_jpeg_signature(write(tmp_path / "q1.jpg", quality=80, make="Alpha", model="One")),
                          table, cnn_model="Alpha One")  # fmt: skip
    assert own["cameras"] == ["Alpha One"] and own["exif"]["agrees"] is True and own["cnn"]["agrees"] is True
    assert own["resaved"]["flag"] is False
    # EXIF says Alpha One, the tables are Beta Two's, the CNN says Beta Two.
    liar = match_signature(read_jpeg_signature(write(tmp_path / "q2.jpg", quality=92, make="Alpha", model="One")),
                           table, cnn_model="Beta Two")  # fmt: skip
    assert liar["cameras"] == ["Beta Two"] and liar["exif"]["agrees"] is False and liar["cnn"]["agrees"] is True
    assert "not by the EXIF camera Alpha One" in liar["note"]
    # An editor's save: unknown tables and the editor's Software tag.
    edited = match_signature(read_jpeg_signature(write(tmp_path / "q3.jpg", quality=67, make="Alpha", model="One",
                                                       software="Adobe Photoshop 24.0")), table)  # fmt: skip
    assert edited["known"] is False and edited["resaved"]["flag"] is True and len(edited["resaved"]["reasons"]) == 2
    # Unknown tables alone: an unlisted camera or a re-save; said, not flagged as edited.
    other = match_signature(read_jpeg_signature(write(tmp_path / "q4.jpg", quality=55)), table)
    assert other["known"] is False and other["resaved"]["flag"] is False and "no known camera" in other["note"]
    # Without the camera, the table does not know its tables (open-set folds use this).
    assert table.without(["Alpha One"]).cameras_with(own["signature"]["quant_key"]) == []


def test_signatures_cli_builds_extends_and_matches(tmp_path):
    data = make_corpus(tmp_path / "data")
    runner = CliRunner()
    res = runner.invoke(app, ["signatures", "build", str(data), "-o", str(tmp_path / "t.json"), "-q"])
    assert res.exit_code == 0, res.output
    more = tmp_path / "more"
    write(more / "Gamma_Three_0" / "nat" / "0.jpg", quality=70)
    res = runner.invoke(app, ["signatures", "build", str(more), "--table", str(tmp_path / "t.json"), "-o",
                              str(tmp_path / "t2.json")])  # fmt: skip
    assert res.exit_code == 0, res.output and "3 cameras" in res.output
    doc = json.loads((tmp_path / "t2.json").read_text())
    assert sorted(doc["cameras"]) == ["Alpha One", "Beta Two", "Gamma Three"] and len(doc["sources"]) == 2
    q = write(tmp_path / "q.jpg", quality=70, make="Alpha", model="One")
    res = runner.invoke(app, ["signatures", "match", str(q), "--table", str(tmp_path / "t2.json"), "--json"])
    assert res.exit_code == 0, res.output
    (r,) = json.loads(res.output)
    assert r["cameras"] == ["Gamma Three"] and r["exif"]["agrees"] is False
    res = runner.invoke(app, ["signatures", "match", str(tmp_path / "missing.jpg"), "--table", str(tmp_path / "t2.json")])
    assert res.exit_code == 1


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_FULL.is_dir(), reason=f"real-full not found at {REAL_FULL}")
def test_a_full_frame_and_its_lossless_crop_share_the_signature():
    shipped = SignatureTable.load(Path(__file__).resolve().parents[1] / "models" / "jpeg-signatures.json")
    for frame in sorted(REAL_FULL.glob("*/nat/*")):
        crop = REAL_MODELS / frame.relative_to(REAL_FULL)
        a, b = read_jpeg_signature(frame), read_jpeg_signature(crop)
        assert a.quant_key() == b.quant_key() and a.subsampling == b.subsampling
        m = match_signature(a, shipped)
        assert m["exif"]["agrees"] is True and m["resaved"]["flag"] is False, frame
        assert m["size_known"] is True, frame  # the table keeps the frame sizes of the crops' manifest

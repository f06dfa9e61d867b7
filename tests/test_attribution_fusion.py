"""The fused camera-model decision: the CNN's log-probabilities joined with the JPEG coding signature's evidence.

The rule (camforensics.inference.attribution.fuse_scores) is checked on hand-made log-probabilities so that every
branch is pinned: a re-saved file falls back to the CNN, tables of no known camera say unknown, a candidate set
restricts the name, priors break ties, the fused threshold and the EXIF-structure veto. The evidence
(camforensics.pipelines.signatures.coding_evidence) is checked on JPEGs written by Pillow with chosen tables and EXIF.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camforensics.errors import ParameterError
from camforensics.inference.attribution import CodingEvidence, fuse_decision, fuse_scores
from camforensics.io.jpeg_signature import read_jpeg_signature
from camforensics.pipelines.signatures import SignatureTable, coding_evidence, file_evidence, new_tables_rate

CLASSES = ("A one", "B two", "C three")
# The CNN prefers A, then B, then C.
MEAN = np.log(np.array([0.6, 0.3, 0.1]))


def fuse(evidence, *, cnn=None, fused=None, mean=MEAN):
    return fuse_scores(mean, CLASSES, evidence, cnn_threshold=cnn, fused_threshold=fused)


def test_without_usable_coding_the_cnn_decides_alone():
    for ev in (None, CodingEvidence("unusable", reason="EXIF Software is an editor")):
        d = fuse(ev, cnn=math.log(0.5))
        assert (d.model, d.top, d.by, d.candidates) == ("A one", "A one", ("cnn",), ())
        d = fuse(ev, cnn=math.log(0.7))  # the CNN's own threshold still holds
        assert d.unknown and d.top == "A one" and d.by == ("cnn",)
    assert "editor" in fuse(CodingEvidence("unusable", reason="EXIF Software is an editor")).note


def test_tables_of_no_known_camera_are_unknown_whatever_the_cnn_says():
    d = fuse(CodingEvidence("unknown", listed=frozenset(CLASSES)), cnn=-100.0, fused=-100.0)
    assert d.unknown and d.by == ("jpeg_signature",) and d.top == "A one" and d.score == -math.inf


def test_a_candidate_set_restricts_the_name():
    ev = CodingEvidence("camera", {"B two": 0.9, "C three": 0.9}, frozenset(CLASSES))
    d = fuse(ev)
    assert (d.model, d.top, d.candidates, d.by) == ("B two", "B two", ("B two", "C three"), ("cnn", "jpeg_signature"))
    assert d.score == pytest.approx(math.log(0.3)) and "A one writes another" in d.note
    only_c = CodingEvidence("camera", {"C three": 1.0}, frozenset(CLASSES))
    assert fuse(only_c).model == "C three"


def test_the_prior_weighs_candidates_the_cnn_finds_equally_likely():
    mean = np.log(np.array([0.1, 0.45, 0.45]))
    ev = CodingEvidence("camera", {"B two": 0.2, "C three": 0.9}, frozenset(CLASSES))
    assert fuse(ev, mean=mean).model == "C three"
    ev = CodingEvidence("camera", {"B two": 0.9, "C three": 0.2}, frozenset(CLASSES))
    assert fuse(ev, mean=mean).model == "B two"


def test_a_class_the_table_does_not_list_cannot_be_ruled_out():
    ev = CodingEvidence("camera", {"B two": 1.0}, frozenset({"B two", "C three"}))  # A one: not in the table
    d = fuse(ev)
    assert d.model == "A one" and d.candidates == ("A one", "B two")


def test_tables_of_cameras_the_attributor_does_not_know_are_unknown():
    ev = CodingEvidence("camera", {"Z other": 1.0}, frozenset(CLASSES))
    d = fuse(ev)
    assert d.unknown and d.by == ("jpeg_signature",) and "Z other" in d.note


def test_the_fused_threshold_judges_the_chosen_candidate():
    ev = CodingEvidence("camera", {"B two": 1.0}, frozenset(CLASSES))
    assert fuse(ev, fused=math.log(0.25)).model == "B two"
    d = fuse(ev, fused=math.log(0.35))
    assert d.unknown and d.top == "B two" and d.by == ("cnn", "jpeg_signature")


def test_exif_directories_of_none_of_the_candidates_are_unknown():
    ev = CodingEvidence("camera", {"B two": 1.0}, frozenset(CLASSES), structure_match=False)
    d = fuse(ev, fused=-100.0)
    assert d.unknown and d.top == "B two" and d.by == ("jpeg_signature",)


def test_evidence_is_validated():
    with pytest.raises(ParameterError, match="status"):
        CodingEvidence("maybe")
    with pytest.raises(ParameterError, match="candidate"):
        CodingEvidence("camera")
    with pytest.raises(ParameterError, match="priors"):
        CodingEvidence("camera", {"A one": 0.0})
    with pytest.raises(ParameterError, match="3 class"):
        fuse_scores(MEAN[:2], CLASSES, None, cnn_threshold=None, fused_threshold=None)


def test_fuse_decision_checks_exif_against_the_fused_name():
    attribution = {
        "classes": list(CLASSES), "log_probs": list(MEAN),
        "decision": {"model": "A one", "threshold": -10.0},
        "exif": {"make": "B", "model": "two"},
    }  # fmt: skip
    ev = CodingEvidence("camera", {"B two": 1.0}, frozenset(CLASSES), reason="JPEG tables written by B two")
    out = fuse_decision(attribution, ev, fused_threshold=-10.0)
    assert out["model"] == "B two" and out["exif"]["consistent"] is True and out["coding"]["status"] == "camera"


def jpeg(path: Path, *, quality: int, make: str | None = None, model: str | None = None,
         software: str | None = None, extra: int = 0, seed: int = 0) -> Path:  # fmt: skip
    ex = Image.Exif()
    for tag, value in ((0x010F, make), (0x0110, model), (0x0131, software)):
        if value is not None:
            ex[tag] = value
    for i in range(extra):  # more IFD0 entries: another firmware's EXIF directory
        ex[0x9C9B + i] = b"x\x00"
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=quality, exif=ex.tobytes())
    return path


def table_of(tmp_path: Path) -> SignatureTable:
    t = SignatureTable()
    for i in range(3):
        t.add("A one", read_jpeg_signature(jpeg(tmp_path / f"a{i}.jpg", quality=90, make="A", model="one")))
    t.add("A one", read_jpeg_signature(jpeg(tmp_path / "a3.jpg", quality=85, make="A", model="one")))
    t.add("B two", read_jpeg_signature(jpeg(tmp_path / "b0.jpg", quality=90, make="B", model="two", extra=2)))
    return t


def test_coding_evidence_of_files(tmp_path):
    t = table_of(tmp_path)
    ev = file_evidence(jpeg(tmp_path / "q.jpg", quality=90, make="A", model="one", seed=5), t, exif_structure=False)
    assert ev.status == "camera" and set(ev.candidates) == {"A one", "B two"}
    assert ev.candidates["A one"] == pytest.approx((3 + 0.5) / (4 + 1)) and ev.candidates["B two"] == pytest.approx(0.75)
    ev = file_evidence(tmp_path / "q.jpg", t)  # the EXIF directories narrow the candidates to A one
    assert ev.status == "camera" and set(ev.candidates) == {"A one"} and ev.structure_match is True
    ev = file_evidence(jpeg(tmp_path / "x.jpg", quality=90, make="A", model="one", extra=5), t)
    assert ev.status == "camera" and ev.structure_match is False  # tables of A and B, EXIF of neither
    # Tables no reference photo shows, EXIF directories of B two (one set of tables in its reference photos): unknown.
    assert file_evidence(jpeg(tmp_path / "n.jpg", quality=37, make="B", model="two", extra=2), t).status == "unknown"
    resaved = file_evidence(jpeg(tmp_path / "e.jpg", quality=90, make="A", model="one", software="Adobe Photoshop"), t)
    assert resaved.status == "unusable" and "editor" in resaved.reason
    generic = file_evidence(jpeg(tmp_path / "g.jpg", quality=90), t)  # libjpeg's tables, no camera in EXIF
    assert generic.status == "unusable" and "libjpeg" in generic.reason
    (tmp_path / "p.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert file_evidence(tmp_path / "p.png", t).status == "unusable"
    assert coding_evidence(None, t, why_none="pixels only").reason == "pixels only"


def test_unseen_tables_with_the_exif_directories_of_a_camera_that_writes_new_tables(tmp_path):
    t = table_of(tmp_path)  # A one: 2 sets of tables in 4 photos (new tables for 1 of 4); B two: one set
    assert new_tables_rate(t.cameras["A one"]) == pytest.approx(0.25) and new_tables_rate(t.cameras["B two"]) == 0.0
    path = jpeg(tmp_path / "n.jpg", quality=37, make="A", model="one")
    ev = file_evidence(path, t)
    assert ev.status == "camera" and ev.candidates == {"A one": pytest.approx(0.25)} and ev.structure_match is True
    assert "new tables" in ev.reason
    assert file_evidence(path, t, exif_structure=False).status == "unknown"  # the tables alone: no camera wrote them
    other = jpeg(tmp_path / "o.jpg", quality=37, make="A", model="one", extra=5)  # EXIF directories of neither
    assert file_evidence(other, t).status == "unknown"
    gray = tmp_path / "gray.jpg"  # other chroma subsampling (one component) than any of A's photos
    ex = Image.Exif()
    ex[0x010F], ex[0x0110] = "A", "one"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(gray, quality=37, exif=ex.tobytes())
    assert file_evidence(gray, t).status == "unknown"

"""The fused threshold chosen by nested leave-one-model-out (camforensics.pipelines.fusion_calibration).

Synthetic cameras write JPEGs with chosen tables and EXIF directories; the CNN's log-probabilities are made by hand.
Pinned: when the coding signature alone flags every inner left-out camera, the threshold rejects no validation photo
of a known camera (the highest such); when two cameras share tables and EXIF directories, the threshold rises until
the CNN flags the one left out; the restriction renormalises; too little data is refused.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camforensics.errors import ParameterError
from camforensics.io.jpeg_signature import read_jpeg_signature
from camforensics.pipelines.fusion_calibration import CalibrationPhoto, choose_fused_threshold, restrict_log_probs
from camforensics.pipelines.signatures import SignatureTable

CLASSES = ("A one", "B two", "C three")


def jpeg(path: Path, *, quality: int, model: str, extra: int = 0, seed: int = 0) -> Path:
    ex = Image.Exif()
    ex[0x010F], ex[0x0110] = "Maker", model
    for i in range(extra):  # more IFD0 entries: another firmware's EXIF directory
        ex[0x9C9B + i] = b"x\x00"
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path, quality=quality, exif=ex.tobytes())
    return path


# camera -> (quality, extra IFD0 entries): its tables and EXIF directories
DISTINCT = {"A one": (91, 0), "B two": (82, 1), "C three": (73, 2)}
SHARED = {"A one": (91, 0), "B two": (91, 0), "C three": (73, 2)}  # A and B: the same coding and EXIF directories


def setup(tmp_path: Path, coding: dict, means: dict) -> tuple[list[CalibrationPhoto], SignatureTable]:
    table = SignatureTable()
    photos = []
    for cam, (q, extra) in coding.items():
        for i in range(2):
            table.add(cam, read_jpeg_signature(jpeg(tmp_path / f"{cam}-t{i}.jpg", quality=q, model=cam, extra=extra)))
        for i, probs in enumerate(means[cam]):
            sig = read_jpeg_signature(jpeg(tmp_path / f"{cam}-v{i}.jpg", quality=q, model=cam, extra=extra, seed=i))
            photos.append(CalibrationPhoto(cam, np.log(np.asarray(probs, np.float64)), sig))
    return photos, table


# Validation photos: each camera's CNN probabilities over (A, B, C).
MEANS = {
    "A one": [(0.8, 0.1, 0.1), (0.5, 0.3, 0.2)],
    "B two": [(0.1, 0.7, 0.2), (0.2, 0.6, 0.2)],
    "C three": [(0.1, 0.1, 0.8), (0.3, 0.3, 0.4)],
}


def test_the_signature_flags_every_left_out_camera_so_no_known_photo_is_rejected(tmp_path):
    photos, table = setup(tmp_path, DISTINCT, MEANS)
    out = choose_fused_threshold(photos, table, CLASSES, cnn_threshold=None)
    assert out["n_inner_folds"] == 3 and out["n_photos"] == 6
    assert out["inner_unknown_flagged"] == 1.0 and out["inner_known_rejected"] == 0.0
    # The highest threshold that rejects none: the lowest score a known photo gets in an inner fold (C three's second
    # photo, 0.4 renormalised over the two classes left: 0.4 / 0.7).
    assert out["threshold"] == pytest.approx(math.log(0.4 / 0.7))


def test_a_camera_that_shares_coding_and_exif_must_be_flagged_by_the_cnn(tmp_path):
    photos, table = setup(tmp_path, SHARED, MEANS)
    out = choose_fused_threshold(photos, table, CLASSES, cnn_threshold=None)
    # B's photos with B left out: the signature points to A, whose renormalised probability over (A, C) is
    # 0.1/0.3 and 0.2/0.4; A's with A left out point to B: 0.1/0.2 and 0.3/0.5. Flagging all of them needs a
    # threshold above log(0.6), which rejects known photos that score below it.
    assert out["inner_unknown_flagged"] >= 0.9
    assert out["threshold"] > math.log(0.6) and out["inner_known_rejected"] > 0.0
    low = choose_fused_threshold(photos, table, CLASSES, cnn_threshold=None, flag_target=0.5)
    assert low["threshold"] < out["threshold"] and low["inner_known_rejected"] < out["inner_known_rejected"]


def test_the_tables_alone_leave_more_to_the_cnn(tmp_path):
    coding = {"A one": (91, 0), "B two": (91, 1), "C three": (73, 2)}  # A and B: same tables, other EXIF
    photos, table = setup(tmp_path, coding, MEANS)
    with_exif = choose_fused_threshold(photos, table, CLASSES, cnn_threshold=None)
    tables_only = choose_fused_threshold(photos, table, CLASSES, cnn_threshold=None, exif_structure=False)
    assert with_exif["inner_known_rejected"] == 0.0
    assert tables_only["threshold"] > with_exif["threshold"] and tables_only["inner_known_rejected"] > 0.0


def test_restricted_log_probabilities_are_renormalised():
    r = restrict_log_probs(np.log([0.5, 0.3, 0.2]), [1, 2])
    assert np.exp(r) == pytest.approx([0.6, 0.4])


def test_too_little_data_is_refused(tmp_path):
    photos, table = setup(tmp_path, {"A one": (91, 0)}, {"A one": MEANS["A one"]})
    with pytest.raises(ParameterError, match="two training models"):
        choose_fused_threshold(photos, table, CLASSES, cnn_threshold=None)
    with pytest.raises(ParameterError, match="flag_target"):
        choose_fused_threshold(photos, table, CLASSES, cnn_threshold=None, flag_target=0.0)

"""The fused decision's open-set threshold, chosen by nested leave-one-model-out on training and validation data.

The fused rule (:func:`camforensics.inference.attribution.fuse_scores`) says "unknown" in two ways: the JPEG coding
and EXIF directories point to no known camera (the signature), or they do and the CNN's score for the chosen
candidate is below a threshold. The threshold trades known photos rejected against unknown cameras that share a
known camera's coding. Calibrating it to accept a fixed share of validation photos (95 %) ignores how much of the
flagging the signature already does, and validation photos are those the checkpoint was chosen on, so their scores
run high: on test photos such a threshold rejects about twice its nominal 5 %.

:func:`choose_fused_threshold` picks it from the training models alone. Each training model in turn plays the
unknown camera: the signature table is rebuilt without it (``SignatureTable.without``), the CNN's log-probabilities
are renormalised over the other classes (:func:`restrict_log_probs`), and every validation photo is decided again:
those of the left-out model should be flagged, the others named. Over the thresholds that flag at least
``flag_target`` of the left-out photos (the issue's 90 %), the one that rejects the fewest known photos is chosen,
and of those the highest (the most cautious). When none reaches the target, the threshold with the best flagged
minus rejected (Youden) is taken, again the highest of ties. The criterion was fixed before the left-out-model folds
that measure it were run.

Caveat: the CNN was trained on the inner left-out model, so its scores for that model's photos over the other
classes are lower than a never-seen camera's would be; the inner figures are optimistic where the CNN's threshold
does the flagging. The outer folds (models/openset_folds.sh) retrain without their left-out models and measure it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from camforensics.errors import ParameterError
from camforensics.inference.attribution import fuse_scores
from camforensics.io.jpeg_signature import JpegSignature
from camforensics.pipelines.signatures import SignatureTable, coding_evidence

FLAG_TARGET = 0.90  # share of the inner left-out models' photos the fused decision must flag (the issue's target)


@dataclass(frozen=True)
class CalibrationPhoto:
    """One validation photo: its camera model, the CNN's mean log-probability per class, its coding signature
    (None: not a JPEG)."""

    truth: str
    mean: np.ndarray
    signature: JpegSignature | None


def restrict_log_probs(mean: np.ndarray, keep: Sequence[int]) -> np.ndarray:
    """Log-probabilities over the classes ``keep`` only, renormalised (what a CNN without the others would say,
    approximately: the mean of patch log-probabilities renormalised as if it were one)."""
    sub = np.asarray(mean, np.float64)[list(keep)]
    top = sub.max()
    return sub - (top + np.log(np.exp(sub - top).sum()))


def _inner_decisions(
    photos: Sequence[CalibrationPhoto], table: SignatureTable, classes: tuple[str, ...], cnn_threshold: float | None,
    *, exif_structure: bool,
) -> tuple[list[tuple[bool, bool | None, float]], list[str]]:
    """Per inner fold and validation photo: (is the left-out model, flagged whatever the threshold (None: it
    depends on the score), score). Returns them and the inner left-out models."""
    models = sorted({p.truth for p in photos if p.truth in table.cameras})
    rows = []
    for left in models:
        inner = table.without([left])
        keep = [i for i, c in enumerate(classes) if c != left]
        names = tuple(classes[i] for i in keep)
        for p in photos:
            ev = coding_evidence(p.signature, inner, why_none="not a JPEG", exif_structure=exif_structure)
            d = fuse_scores(restrict_log_probs(p.mean, keep), names, ev, cnn_threshold=cnn_threshold, fused_threshold=None)
            depends = "jpeg_signature" in d.by and "cnn" in d.by  # a candidate was judged by the CNN's score
            rows.append((p.truth == left, None if depends else d.unknown, d.score))
    return rows, models


def choose_fused_threshold(
    photos: Sequence[CalibrationPhoto],
    table: SignatureTable,
    classes: Sequence[str],
    *,
    cnn_threshold: float | None,
    exif_structure: bool = True,
    flag_target: float = FLAG_TARGET,
) -> dict[str, Any]:
    """The fused threshold by nested leave-one-model-out (see the module docstring).

    ``photos`` are validation photos of the training models, ``table`` the signature table of the training photos.
    Returns ``threshold`` with the inner figures at it (``inner_unknown_flagged``, ``inner_known_rejected``), the
    number of inner folds and photos, and the criterion in words.
    """
    classes = tuple(classes)
    if not 0.0 < flag_target <= 1.0:
        raise ParameterError(f"flag_target must be in (0, 1], not {flag_target}")
    rows, models = _inner_decisions(photos, table, classes, cnn_threshold, exif_structure=exif_structure)
    unknown = [r for r in rows if r[0]]
    known = [r for r in rows if not r[0]]
    if len(models) < 2 or not unknown or not known:
        raise ParameterError("the nested calibration needs validation photos of at least two training models")
    scores = sorted({r[2] for r in known if r[1] is None and np.isfinite(r[2])})
    candidates = [-np.inf, *scores]

    def rate(group: list[tuple[bool, bool | None, float]], t: float) -> float:
        return float(np.mean([(r[2] < t) if r[1] is None else r[1] for r in group]))

    table_rows = [(t, rate(unknown, t), rate(known, t)) for t in candidates]
    feasible = [row for row in table_rows if row[1] >= flag_target]
    if feasible:
        best = min(feasible, key=lambda row: (row[2], -row[0]))
        how = f"the fewest inner known photos rejected among thresholds flagging >= {flag_target:.0%}, then the highest"
    else:
        best = max(table_rows, key=lambda row: (row[1] - row[2], row[0]))
        how = f"no threshold flags {flag_target:.0%} of the inner left-out photos: the best flagged minus rejected"
    return {
        "threshold": float(best[0]) if np.isfinite(best[0]) else None,  # None: no threshold (every candidate named)
        "inner_unknown_flagged": best[1],
        "inner_known_rejected": best[2],
        "n_inner_folds": len(models),
        "n_photos": len(photos),
        "criterion": "nested leave-one-model-out over the training models on validation photos: " + how,
    }

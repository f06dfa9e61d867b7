"""Build and measure a panel of registered attributors (:mod:`camforensics.inference.panel`) on a saved split.

The members must share the split they were trained on (same seed and split settings, or one split file): the
panel's open-set threshold is calibrated on that split's validation images and its figures are measured on the
test images, which no member saw in training. Everything runs through onnxruntime on the exported members, exactly
as ``identify`` does (same decision patches, same aggregation).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.errors import CamforensicsError, ParameterError
from camforensics.inference.attribution import DEFAULT_WINDOW, AttributionParams, _member_mean
from camforensics.inference.panel import TASK, register_panel
from camforensics.inference.patches import decision_patches
from camforensics.inference.registry import LoadedModel, ModelRegistry
from camforensics.io.images import load_image
from camforensics.io.records import ImageRecord
from camforensics.io.splits import Split


def member_scores(
    pixels: np.ndarray, members: Sequence[LoadedModel], *, n: int, window: int
) -> np.ndarray:
    """(M, C): each member's mean patch log-probabilities on the image's decision patches."""
    first = members[0].entry
    batch, _ = decision_patches(pixels, preprocessor=first.preprocessor, size=first.patch_size, n=n, window=window)
    params = AttributionParams()
    out = []
    for m in members:
        if m.entry.preprocessor == "WW" and first.preprocessor != "WW":
            b, _ = decision_patches(pixels, preprocessor="WW", size=m.entry.patch_size, n=n, window=window)
        else:
            b = batch
        out.append(_member_mean(b, m, params))
    return np.stack(out)


def score_records(
    records: Sequence[ImageRecord],
    members: Sequence[LoadedModel],
    *,
    n: int,
    window: int,
    tick: Callable[[], None] | None = None,
) -> tuple[list[ImageRecord], np.ndarray, dict[str, str]]:
    """Member scores (N, M, C) of every readable record; unreadable ones are returned with the reason."""
    kept, scores, failures = [], [], {}
    for r in records:
        try:
            scores.append(member_scores(load_image(r.path).pixels, members, n=n, window=window))
            kept.append(r)
        except (CamforensicsError, ValueError, OSError) as exc:
            failures[str(r.path)] = str(exc)
        if tick is not None:
            tick()
    m, c = len(members), len(members[0].entry.classes)
    return kept, (np.stack(scores) if scores else np.zeros((0, m, c))), failures


def classification_metrics(
    means: np.ndarray, records: Sequence[ImageRecord], classes: Sequence[str], threshold: float | None
) -> dict[str, Any]:
    """Image accuracy, per-class recall, confusion (rows truth, columns predicted) of the known-model images, and
    the open-set rates at ``threshold``: known images rejected, unknown-model images flagged."""
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index.get(r.model_id, -1) for r in records], np.int64)
    known = labels >= 0
    preds = means.argmax(axis=1) if len(means) else np.zeros(0, np.int64)
    scores = means.max(axis=1) if len(means) else np.zeros(0)
    confusion = np.zeros((len(classes), len(classes)), np.int64)
    for y, p in zip(labels[known], preds[known], strict=True):
        confusion[y, p] += 1
    out: dict[str, Any] = {
        "n_images": int(known.sum()),
        "image_accuracy": float((preds[known] == labels[known]).mean()) if known.any() else None,
        "per_class_recall": {
            c: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None)
            for i, c in enumerate(classes)
        },
        "confusion": {"classes": list(classes), "matrix": confusion.tolist(), "rows": "truth", "cols": "predicted"},
    }
    if threshold is not None:
        out["open_set_false_reject_rate"] = float((scores[known] < threshold).mean()) if known.any() else None
        if (~known).any():
            out["n_unknown_images"] = int((~known).sum())
            out["unknown_model_rejection_rate"] = float((scores[~known] < threshold).mean())
    return out


def build_panel(
    registry: ModelRegistry,
    name: str,
    member_names: Sequence[str],
    split_file: str | os.PathLike[str],
    *,
    accept: float = 0.95,
    default: bool = False,
    command: str | None = None,
    data_root: str | os.PathLike[str] | None = None,
    threads: int = 0,
    tick: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Calibrate a panel of registered attributors on ``split_file``'s validation images, measure it (and each
    member, for comparison) on its test images, and register it; returns the panel entry.

    Raises
    ------
    ParameterError
        Fewer than one member, members with different classes, patch sizes or decision windows, or a split with
        no validation image of a known model.
    """
    if not member_names:
        raise ParameterError("a panel needs at least one member (--member NAME)")
    if not 0.5 <= accept < 1.0:
        raise ParameterError(f"accept must lie in [0.5, 1), not {accept}")
    members = [registry.load(m, device="cpu", threads=threads) for m in member_names]
    classes = tuple(members[0].entry.classes)
    decs = [m.entry.decision for m in members]
    for m in members:
        if m.entry.task != TASK:
            raise ParameterError(f"{m.entry.name!r} is not a camera-model attributor")
        if tuple(m.entry.classes) != classes:
            raise ParameterError(f"{m.entry.name!r} has other classes than {members[0].entry.name!r}; train them alike")
        if m.entry.patch_size != members[0].entry.patch_size:
            raise ParameterError("the members take different patch sizes; train them alike")
    settings = {(d.patches_per_image or 64, DEFAULT_WINDOW if d.window is None else d.window) for d in decs}
    (n, window), *others = settings
    if others:
        raise ParameterError("the members decide on different patches (window, patches per image); train them alike")
    split = Split.load(split_file, root=data_root)
    val, val_scores, val_fail = score_records(split.validation, members, n=n, window=window, tick=tick)
    val_means = val_scores.mean(axis=1) if len(val) else np.zeros((0, len(classes)))
    known = np.array([r.model_id in classes for r in val], bool)
    if not known.any():
        raise ParameterError("the split has no validation image of the members' classes to calibrate the panel on")
    threshold = float(np.quantile(val_means[known].max(axis=1), 1.0 - accept, method="lower"))
    test, test_scores, test_fail = score_records(split.test, members, n=n, window=window, tick=tick)
    test_means = test_scores.mean(axis=1) if len(test) else np.zeros((0, len(classes)))
    metrics: dict[str, Any] = {
        "validation": classification_metrics(val_means, val, classes, threshold),
        "test": classification_metrics(test_means, test, classes, threshold),
        "members_test": {
            m.entry.name: classification_metrics(test_scores[:, i], test, classes, None)["image_accuracy"]
            for i, m in enumerate(members)
        }
        if len(test)
        else {},
    }
    if val_fail or test_fail:
        metrics["unreadable"] = {**val_fail, **test_fail}
    data = members[0].entry.meta.get("training", {}).get("data", {})
    entry = {
        "task": TASK,
        "members": {m.entry.name: m.entry.sha256 for m in members},
        "classes": list(classes),
        "description": (
            f"Panel of {len(members)} camera-model attributors ({', '.join(m.entry.name for m in members)}): the mean "
            f"of their image log-probabilities over {len(classes)} camera models; open-set threshold calibrated on "
            "the members' validation split."
        ),
        "decision": {
            "patches_per_image": n,
            "window": window,
            "aggregation": "mean over members of each member's mean patch log-probability; softmax for probabilities",
            "open_set": {
                "score": "max panel mean log-probability",
                "threshold": threshold,
                "accept_rate_target": accept,
                "calibrated_on": "validation split of the members (never the test photos)",
                "n_calibration_images": int(known.sum()),
            },
        },
        "training": {"command": command, "split": Path(split_file).name, "data": data},
        "metrics": metrics,
    }
    register_panel(registry, name, entry, default=default)
    return entry

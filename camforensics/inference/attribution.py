"""Camera-model attribution of one image with a registered model: patches -> log-probabilities -> decision."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from camforensics.errors import ParameterError
from camforensics.inference.patches import aggregate_log_probs, decision_patches
from camforensics.inference.registry import LoadedModel
from camforensics.io.records import normalize_make, normalize_model

TASK = "camera-model-attribution"


@dataclass(frozen=True)
class AttributionParams:
    """How an image is attributed (written into reports)."""

    n_patches: int | None = None  # grid patches per image; None = the model's own (its threshold was calibrated so)
    top_k: int = 3  # models listed per image
    batch_size: int = 64  # patches per onnxruntime call (memory vs call overhead)

    def __post_init__(self) -> None:
        if self.n_patches is not None and self.n_patches < 1:
            raise ParameterError(f"n_patches must be >= 1, not {self.n_patches}")
        if self.top_k < 1 or self.batch_size < 1:
            raise ParameterError("top_k and batch_size must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def exif_model_id(make: str | None, model: str | None) -> str | None:
    """``"<Make> <Model>"`` from EXIF, normalised as data-set labels are (None without an EXIF model)."""
    if not model or not str(model).strip():
        return None
    mk = normalize_make(str(make or ""))
    md = normalize_model(str(make or ""), str(model))
    return f"{mk} {md}" if mk else md


def exif_consistency(make: str | None, model: str | None, classes: tuple[str, ...], decided: str | None) -> dict:
    """Does the EXIF camera agree with the attribution?

    ``consistent`` is True/False when the EXIF model is one of the model's classes (False also when the image was
    called "unknown"), and None when EXIF names no model or one the attributor does not know (nothing to compare).
    EXIF is easy to edit: an inconsistency is a flag for the examiner, not a verdict.
    """
    mid = exif_model_id(make, model)
    lookup = {c.casefold(): c for c in classes}
    known = lookup.get(mid.casefold()) if mid else None
    if mid is None:
        consistent, note = None, "no EXIF camera model"
    elif known is None:
        consistent, note = None, "EXIF camera model is not among the attributor's classes"
    elif decided is None:
        consistent, note = False, "EXIF names a known model but the attribution says unknown"
    elif decided == known:
        consistent, note = True, "EXIF camera model agrees with the attribution"
    else:
        consistent, note = False, f"EXIF says {known!r}, the attribution says {decided!r}"
    return {"make": make, "model": model, "model_id": mid, "in_classes": known is not None, "consistent": consistent, "note": note}


def attribute_pixels(
    pixels: np.ndarray,
    model: LoadedModel,
    *,
    params: AttributionParams = AttributionParams(),
    exif_make: str | None = None,
    exif_model: str | None = None,
) -> dict[str, Any]:
    """Attribute one image (stored pixel order, RGB, 0..255) to a camera model, open-set.

    Returns
    -------
    dict
        ``model``, ``model_sha256``, ``classes``, ``decision`` (``model`` or None, ``unknown``, ``score``,
        ``threshold``, ``probability``), ``top_k`` (``model``, ``probability``, ``log_prob``), ``n_patches``,
        ``exif`` (see :func:`exif_consistency`).
    """
    entry = model.entry
    if entry.task != TASK:
        raise ParameterError(f"model {entry.name!r} is a {entry.task} model, not a camera-model attributor")
    dec = entry.decision
    n = params.n_patches or (64 if dec.patches_per_image is None else dec.patches_per_image)
    batch, _ = decision_patches(pixels, preprocessor=entry.preprocessor, size=entry.patch_size, n=n)
    lo, hi = entry.value_range
    if (lo, hi) != (0.0, 255.0):
        batch = batch * np.float32((hi - lo) / 255.0) + np.float32(lo)
    log_probs = np.concatenate([model.run(batch[i : i + params.batch_size]) for i in range(0, len(batch), params.batch_size)])
    if log_probs.shape[1] != len(entry.classes):
        raise ParameterError(
            f"model {entry.name!r} outputs {log_probs.shape[1]} classes, its manifest lists {len(entry.classes)}"
        )
    mean, prob = aggregate_log_probs(log_probs)
    order = np.argsort(-mean, kind="stable")
    score = float(mean[order[0]])
    threshold = -np.inf if dec.open_set_threshold is None else float(dec.open_set_threshold)
    unknown = score < threshold
    decided = None if unknown else entry.classes[int(order[0])]
    return {
        "model": entry.name,
        "model_sha256": entry.sha256,
        "classes": list(entry.classes),
        "decision": {
            "model": decided,
            "unknown": bool(unknown),
            "score": score,
            "threshold": threshold,
            "probability": float(prob[order[0]]),
        },
        "top_k": [
            {"model": entry.classes[int(i)], "probability": float(prob[i]), "log_prob": float(mean[i])}
            for i in order[: params.top_k]
        ],
        "n_patches": len(batch),
        "exif": exif_consistency(exif_make, exif_model, entry.classes, decided),
    }

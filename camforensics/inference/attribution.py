"""Camera-model attribution of one image with a registered model: patches -> log-probabilities -> decision."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from camforensics.errors import ParameterError
from camforensics.inference.patches import aggregate_log_probs, decision_patches
from camforensics.inference.panel import LoadedPanel
from camforensics.inference.registry import LoadedModel
from camforensics.io.records import normalize_make, normalize_model

TASK = "camera-model-attribution"
DEFAULT_WINDOW = 1024  # centred window of the decision patches for models whose manifest records none


@dataclass(frozen=True)
class AttributionParams:
    """How an image is attributed (written into reports)."""

    n_patches: int | None = None  # grid patches per image; None = the model's own (its threshold was calibrated so)
    window: int | None = None  # centred window the patches come from; None = the model's own (1024 if unrecorded)
    top_k: int = 3  # models listed per image
    batch_size: int = 64  # patches per onnxruntime call (memory vs call overhead)

    def __post_init__(self) -> None:
        if self.n_patches is not None and self.n_patches < 1:
            raise ParameterError(f"n_patches must be >= 1, not {self.n_patches}")
        if self.window is not None and self.window < 0:
            raise ParameterError(f"window must be >= 0 (0: the whole image), not {self.window}")
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

    ``consistent`` is True or False whenever EXIF names a camera model, and None only when it names none:

    - EXIF names one of the classes: True when the attribution names the same model; False when it names another
      or says "unknown";
    - EXIF names a camera outside the classes: True when the attribution says "unknown" (both say: not one of the
      models the attributor knows), False when it names one of its classes (a contradiction: either the EXIF was
      changed or the photo was re-labelled, or the attributor mistakes an unknown camera for a known one).

    EXIF is easy to edit: an inconsistency is a flag for the examiner, not a verdict. ``note`` says it in words.
    """
    mid = exif_model_id(make, model)
    lookup = {c.casefold(): c for c in classes}
    known = lookup.get(mid.casefold()) if mid else None
    if mid is None:
        consistent, note = None, "EXIF names no camera model: nothing to compare the attribution with"
    elif known is None and decided is None:
        consistent, note = True, (
            f"EXIF names {mid!r}, a camera the attributor does not know, and the attribution says unknown: consistent"
        )
    elif known is None:
        consistent, note = False, (
            f"EXIF names {mid!r}, a camera the attributor does not know, but the attribution names {decided!r}: "
            "they contradict each other"
        )
    elif decided is None:
        consistent, note = False, f"EXIF names {known!r}, a known model, but the attribution says unknown"
    elif decided == known:
        consistent, note = True, f"EXIF names {known!r} and the attribution agrees"
    else:
        consistent, note = False, f"EXIF names {known!r}, the attribution names {decided!r}: they contradict each other"
    return {"make": make, "model": model, "model_id": mid, "in_classes": known is not None, "consistent": consistent, "note": note}


def _member_mean(
    batch: np.ndarray, model: LoadedModel, params: AttributionParams
) -> np.ndarray:
    """Mean patch log-probability per class of one model on one image's decision patches (0..255 batch)."""
    entry = model.entry
    lo, hi = entry.value_range
    if (lo, hi) != (0.0, 255.0):
        batch = batch * np.float32((hi - lo) / 255.0) + np.float32(lo)
    log_probs = np.concatenate([model.run(batch[i : i + params.batch_size]) for i in range(0, len(batch), params.batch_size)])
    if log_probs.shape[1] != len(entry.classes):
        raise ParameterError(
            f"model {entry.name!r} outputs {log_probs.shape[1]} classes, its manifest lists {len(entry.classes)}"
        )
    return aggregate_log_probs(log_probs)[0]


def attribute_pixels(
    pixels: np.ndarray,
    model: LoadedModel | LoadedPanel,
    *,
    params: AttributionParams = AttributionParams(),
    exif_make: str | None = None,
    exif_model: str | None = None,
) -> dict[str, Any]:
    """Attribute one image (stored pixel order, RGB, 0..255) to a camera model, open-set.

    ``model`` is one attributor or a panel (:mod:`camforensics.inference.panel`): a panel's class scores are the
    mean over its members of each member's mean patch log-probability, on the same decision patches.

    Returns
    -------
    dict
        ``model``, ``model_sha256``, ``classes``, ``decision`` (``model`` or None, ``unknown``, ``score``,
        ``threshold``, ``probability``), ``top_k`` (``model``, ``probability``, ``log_prob``), ``n_patches``,
        ``exif`` (see :func:`exif_consistency`); a panel adds ``members`` (each member's own top model and score).
    """
    entry = model.entry
    if entry.task != TASK:
        raise ParameterError(f"model {entry.name!r} is a {entry.task} model, not a camera-model attributor")
    dec = entry.decision
    n = params.n_patches or (64 if dec.patches_per_image is None else dec.patches_per_image)
    window = params.window if params.window is not None else (DEFAULT_WINDOW if dec.window is None else dec.window)
    members = model.members if isinstance(model, LoadedPanel) else (model,)
    first = members[0].entry
    batch, _ = decision_patches(pixels, preprocessor=first.preprocessor, size=first.patch_size, n=n, window=window)
    means = []
    for m in members:
        if m.entry.preprocessor == "WW" and first.preprocessor != "WW" or m.entry.patch_size != first.patch_size:
            b, _ = decision_patches(pixels, preprocessor=m.entry.preprocessor, size=m.entry.patch_size, n=n, window=window)
        else:
            b = batch
        means.append(_member_mean(b, m, params))
    mean = np.mean(means, axis=0)
    z = mean - mean.max()
    prob = np.exp(z) / np.exp(z).sum()
    order = np.argsort(-mean, kind="stable")
    score = float(mean[order[0]])
    threshold = -np.inf if dec.open_set_threshold is None else float(dec.open_set_threshold)
    unknown = score < threshold
    decided = None if unknown else entry.classes[int(order[0])]
    out = {
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
        "window": window,
        "exif": exif_consistency(exif_make, exif_model, entry.classes, decided),
    }
    if isinstance(model, LoadedPanel):
        out["members"] = [
            {"model": m.entry.name, "top": m.entry.classes[int(np.argmax(mm))], "log_prob": float(np.max(mm))}
            for m, mm in zip(members, means, strict=True)
        ]
    return out

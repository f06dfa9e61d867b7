"""Camera-model attribution of one image with a registered model: patches -> log-probabilities -> decision.

:func:`attribute_pixels` is the CNN's (or panel's) own open-set decision. :func:`fuse_decision` joins it with a
second, independent cue, the JPEG coding signature of the file (Kee, Johnson & Farid 2011; the evidence is built by
:func:`camforensics.pipelines.signatures.coding_evidence`): the cameras known to have written the file's quantization
tables form a candidate set; the name is the CNN's best candidate by mean log-probability plus the log of the
candidate's prior (the share of its reference photos written with these tables); tables of no known camera say
"unknown"; a file without its camera's coding (re-saved, edited, not a JPEG, pixels only) is decided by the CNN
alone. The fused figures rely on the file keeping its camera's JPEG coding; the CNN's decision stays in the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
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
        "log_probs": [float(v) for v in mean],  # per class (``classes`` order): what fuse_decision restricts
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


# What the file's JPEG coding can say about its camera (CodingEvidence.status).
CODING_CAMERA = "camera"  # tables written by known cameras: the candidate set
CODING_UNKNOWN = "unknown"  # tables of no known camera: an unknown camera (or an unlisted setting of a known one)
CODING_UNUSABLE = "unusable"  # no camera coding to go by: re-saved or edited, generic tables, not a JPEG, pixels
CODING_STATUS = (CODING_CAMERA, CODING_UNKNOWN, CODING_UNUSABLE)


@dataclass(frozen=True)
class CodingEvidence:
    """The JPEG coding signature's evidence for the fused decision (see :func:`fuse_decision`).

    ``candidates`` maps each known camera that wrote the file's quantization tables (with its subsampling) to its
    prior: the share of its reference photos written with them (smoothed, > 0). ``listed`` are all the cameras of
    the signature table: a class the table does not list cannot be ruled out by it and stays a candidate.
    """

    status: str
    candidates: Mapping[str, float] = field(default_factory=dict)
    listed: frozenset[str] = frozenset()
    reason: str = ""
    # EXIF directories (Kee et al.'s structure counts): True when candidates also wrote them (the candidates are
    # those), False when none did (an unknown camera sharing the tables, other firmware or rewritten EXIF: the open
    # set says unknown), None when there is nothing to compare (no EXIF, or none recorded for the candidates).
    structure_match: bool | None = None

    def __post_init__(self) -> None:
        if self.status not in CODING_STATUS:
            raise ParameterError(f"unknown coding evidence status {self.status!r}; choose one of {CODING_STATUS}")
        if self.status == CODING_CAMERA and not self.candidates:
            raise ParameterError("coding evidence 'camera' needs at least one candidate camera")
        if any(not (0.0 < p <= 1.0) for p in self.candidates.values()):
            raise ParameterError("candidate priors must be in (0, 1]")
        object.__setattr__(self, "candidates", dict(self.candidates))
        object.__setattr__(self, "listed", frozenset(self.listed) | frozenset(self.candidates))


UNLISTED_PRIOR = 0.5  # prior of a class the signature table does not list (its coding is not known)


@dataclass(frozen=True)
class FusedDecision:
    """The camera-model decision of both cues (``by``: which cues decided)."""

    model: str | None  # the name, or None for unknown
    top: str  # the closed-set name (what the name would be without the open-set rule)
    score: float  # the open-set score compared with ``threshold`` (-inf for a verdict of the signature alone)
    threshold: float
    by: tuple[str, ...]  # "cnn", "jpeg_signature"
    candidates: tuple[str, ...]  # the classes the signature left (empty: no restriction)
    note: str

    @property
    def unknown(self) -> bool:
        return self.model is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "unknown": self.unknown,
            "top": self.top,
            "score": self.score,
            "threshold": self.threshold,
            "by": list(self.by),
            "candidates": list(self.candidates),
            "note": self.note,
        }


def fuse_scores(
    mean_log_probs: np.ndarray,
    classes: tuple[str, ...] | list[str],
    evidence: CodingEvidence | None,
    *,
    cnn_threshold: float | None,
    fused_threshold: float | None,
) -> FusedDecision:
    """The fused decision from an image's mean log-probability per class and the file's coding evidence.

    - no evidence, or ``unusable`` (re-saved, edited, generic tables, not a JPEG): the CNN alone, its own
      open-set threshold ``cnn_threshold``;
    - ``unknown`` (tables of no known camera, and no EXIF directories of a known camera that writes new tables
      for a share of its photos: that case comes as ``camera`` evidence): "unknown"; ``top`` stays the CNN's best
      class;
    - ``camera``: the classes restricted to the candidates (and the classes the table does not list); the name is
      the best of them by log-probability + log prior; "unknown" when that class's mean log-probability is below
      ``fused_threshold`` (:mod:`camforensics.pipelines.fusion_calibration`), when no class is left (the
      tables are those of cameras the attributor does not know), or when the file's EXIF directories are those of
      none of the cameras that write its tables (``structure_match`` False; ``top`` is still the best candidate).
    """
    mean = np.asarray(mean_log_probs, dtype=np.float64)
    classes = tuple(classes)
    if mean.shape != (len(classes),):
        raise ParameterError(f"expected {len(classes)} class log-probabilities, got shape {mean.shape}")
    best = int(np.argmax(mean))
    cnn_top = classes[best]
    cnn_thr = -math.inf if cnn_threshold is None else float(cnn_threshold)
    if evidence is None or evidence.status == CODING_UNUSABLE:
        why = evidence.reason if evidence is not None and evidence.reason else "no JPEG coding signature to use"
        name = None if mean[best] < cnn_thr else cnn_top
        verdict = f"{name}" if name else "unknown (the CNN's score is below its threshold)"
        return FusedDecision(name, cnn_top, float(mean[best]), cnn_thr, ("cnn",), (), f"{verdict}; CNN alone: {why}")
    if evidence.status == CODING_UNKNOWN:
        why = evidence.reason or "the JPEG tables are those of no known camera"
        return FusedDecision(None, cnn_top, -math.inf, cnn_thr, ("jpeg_signature",), (), f"unknown: {why}")
    allowed = [
        (i, evidence.candidates.get(c, UNLISTED_PRIOR))
        for i, c in enumerate(classes)
        if c in evidence.candidates or c not in evidence.listed
    ]
    if not allowed:
        cams = ", ".join(sorted(evidence.candidates))
        return FusedDecision(
            None, cnn_top, -math.inf, cnn_thr, ("jpeg_signature",), (),
            f"unknown: the JPEG tables are those of {cams}, none of which the attributor knows",
        )
    i_best = max(allowed, key=lambda ip: (mean[ip[0]] + math.log(ip[1]), -ip[0]))[0]
    name = classes[i_best]
    score = float(mean[i_best])
    thr = -math.inf if fused_threshold is None else float(fused_threshold)
    cands = tuple(classes[i] for i, _ in allowed)
    if evidence.structure_match is False:
        return FusedDecision(
            None, name, -math.inf, thr, ("jpeg_signature",), cands,
            f"unknown: {evidence.reason} (an unknown camera that shares their tables, other firmware, or edited EXIF)",
        )
    if score < thr:
        return FusedDecision(
            None, name, score, thr, ("cnn", "jpeg_signature"), cands,
            f"unknown: of the cameras that write this JPEG coding ({', '.join(cands)}), the CNN finds {name} the "
            "likeliest, but below its threshold",
        )
    how = "the CNN's own first choice" if i_best == best else f"the CNN's first choice {cnn_top} writes another coding"
    return FusedDecision(
        name, name, score, thr, ("cnn", "jpeg_signature"), cands,
        f"{name}: the likeliest for the CNN among the cameras that write this JPEG coding ({', '.join(cands)}; {how})",
    )


def fuse_decision(
    attribution: dict[str, Any], evidence: CodingEvidence | None, *, fused_threshold: float | None
) -> dict[str, Any]:
    """:func:`fuse_scores` on an :func:`attribute_pixels` result; adds the EXIF check against the fused name."""
    d = attribution["decision"]
    fused = fuse_scores(
        np.asarray(attribution["log_probs"]),
        tuple(attribution["classes"]),
        evidence,
        cnn_threshold=d["threshold"],
        fused_threshold=fused_threshold,
    )
    exif = attribution.get("exif") or {}
    out = fused.to_dict()
    out["coding"] = {"status": evidence.status if evidence else None, "reason": evidence.reason if evidence else ""}
    out["exif"] = exif_consistency(exif.get("make"), exif.get("model"), tuple(attribution["classes"]), fused.model)
    return out

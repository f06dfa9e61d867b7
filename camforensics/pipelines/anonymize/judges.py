"""The judges of anonymize: the registry's camera-model attributors, whose top-1 camera model before and after an
alteration tells whether it fooled them (:func:`camforensics.inference.attribution.attribute_pixels`, as identify
runs them), and their tallies over a batch. Everything here is picklable so process-pool workers can load the
models themselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camforensics.errors import CamforensicsError, ParameterError
from camforensics.inference.anonymizer import class_key
from camforensics.inference.attribution import TASK as TASK_ATTRIBUTION
from camforensics.inference.attribution import AttributionParams, attribute_pixels, exif_model_id
from camforensics.inference.registry import LoadedModel, ModelRegistry, onnxruntime_device


@dataclass(frozen=True)
class JudgePanel:
    """The camera-model attributors that judge every image before and after (written into the report)."""

    requested: str  # what --judges said: all, or the names given
    names: tuple[str, ...]  # registry names of the judges (empty: the registry has no attributor)
    models_dir: str  # registry folder, as the workers see it
    params: AttributionParams = field(default_factory=lambda: AttributionParams(top_k=1))  # patches per image
    device: str = "auto"  # onnxruntime device: auto, cpu, cuda
    threads: int = 0  # onnxruntime intra-op threads

    def load(self) -> list[LoadedModel]:
        registry = ModelRegistry(self.models_dir)
        return [registry.load(n, device=self.device, threads=self.threads) for n in self.names]

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "models": list(self.names), "attribution": self.params.to_dict()}


def judge_panel(
    spec: str,
    models_dir: str | os.PathLike[str] | None,
    *,
    threads: int = 0,
    device: str = "auto",
) -> JudgePanel | None:
    """The judges of ``--judges``: ``all`` (every camera-model attributor of the registry, possibly none),
    ``none`` (None: nothing is loaded or run), or ``NAME,NAME``.

    Raises
    ------
    ModelError
        An unknown name (the available models are listed).
    ParameterError
        A name of a model that is not a camera-model attributor, or an empty list.
    """
    word = spec.strip()
    if word.lower() == "none":
        return None
    registry = ModelRegistry(models_dir)
    if word.lower() == "all":
        names = tuple(e.name for e in registry.entries() if e.task == TASK_ATTRIBUTION)
        requested = "all"
    else:
        given = [n.strip() for n in word.split(",") if n.strip()]
        if not given:
            raise ParameterError(f"--judges {spec!r}: give all, none or NAME[,NAME...]")
        names = tuple(dict.fromkeys(registry.resolve(n, TASK_ATTRIBUTION).name for n in given))  # type: ignore[union-attr]
        requested = ",".join(names)
    return JudgePanel(requested, names, str(registry.root), device=onnxruntime_device(device), threads=threads)


def top1(pixels: np.ndarray, judge: LoadedModel, params: AttributionParams) -> dict[str, Any]:
    """A judge's top-1 camera model of ``pixels``, its probability and the open-set decision."""
    a = attribute_pixels(pixels, judge, params=params)
    top = a["top_k"][0]
    return {"model": top["model"], "probability": top["probability"], "unknown": a["decision"]["unknown"]}


def judge_before_after(
    before: np.ndarray,
    after: np.ndarray,
    judges: list[LoadedModel],
    *,
    params: AttributionParams,
    target: str | None = None,
    exif_make: str | None = None,
    exif_model: str | None = None,
    before_top1: Callable[[LoadedModel], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Each judge's top-1 camera model (and probability) of the input and of the output, and what changed.

    ``before_top1`` (optional) gives a judge's verdict on ``before`` when the caller already has it (the same
    input judged for several methods); by default it is computed here.

    Returns
    -------
    list of dict
        Per judge: ``judge``, ``before`` and ``after`` (``model``, ``probability``, ``unknown``: the open-set
        decision), ``before_class_kept`` (the output's top-1 is the input's), ``true_class`` (the input's EXIF
        camera model when the judge knows it, else None) and ``true_class_kept`` (None without one), and with a
        ``target``: ``after_is_target``. A judge that cannot judge the image (e.g. smaller than its patch) gives
        ``error`` instead; the other judges go on.
    """
    exif_id = exif_model_id(exif_make, exif_model)
    results = []
    for judge in judges:
        record: dict[str, Any] = {"judge": judge.entry.name}
        try:
            b = before_top1(judge) if before_top1 is not None else top1(before, judge, params)
            a = top1(after, judge, params)
        except (CamforensicsError, ValueError) as exc:
            results.append({**record, "error": str(exc)})
            continue
        known = {class_key(c): c for c in judge.entry.classes}
        true = known.get(class_key(exif_id)) if exif_id else None
        record |= {
            "before": b,
            "after": a,
            "before_class_kept": a["model"] == b["model"],
            "true_class": true,
            "true_class_kept": None if true is None else a["model"] == true,
        }
        if target is not None:
            record["after_is_target"] = class_key(a["model"]) == class_key(target)
        results.append(record)
    return results


@dataclass
class JudgeTally:
    """Per judge counts over the batch (``summary.judges`` of the report)."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            c = self.counts.setdefault(
                r["judge"],
                {"n_judged": 0, "n_failed": 0, "n_before_class_kept": 0, "n_true_class_known": 0,
                 "n_true_class_kept": 0, "n_after_is_target": 0},
            )  # fmt: skip
            if "error" in r:
                c["n_failed"] += 1
                continue
            c["n_judged"] += 1
            c["n_before_class_kept"] += r["before_class_kept"]
            c["n_true_class_known"] += r["true_class"] is not None
            c["n_true_class_kept"] += bool(r["true_class_kept"])
            c["n_after_is_target"] += bool(r.get("after_is_target"))

    def summary(self, *, targeted: bool) -> dict[str, Any]:
        out = {}
        for name, c in self.counts.items():
            n = c["n_judged"]
            s: dict[str, Any] = dict(c)
            s["untargeted_success_rate"] = 1.0 - c["n_before_class_kept"] / n if n else None
            if targeted:
                s["targeted_success_rate"] = c["n_after_is_target"] / n if n else None
            else:
                del s["n_after_is_target"]
            out[name] = s
        return out


def model_context(model: LoadedModel, role: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``run.models[]`` member: the model's name, file, sha256, task, providers, and its ``role``."""
    return {**model.entry.summary(), "role": role, "providers": list(model.providers), **(extra or {})}


def judge_context(model: LoadedModel) -> dict[str, Any]:
    dec = model.entry.decision
    return model_context(
        model, "judge", {"open_set_threshold": dec.open_set_threshold, "patches_per_image": dec.patches_per_image}
    )

"""The learned methods of anonymize: a registered anonymizer model, chosen and checked before any image is read.

A learned method (``targeted``: the conditional generator of Cama, Andrews, Zhang, Griffin, ECCV 2020 workshops;
``erase``: a trace eraser after SiamTE, Chen, Xiong, Liu, Wu, "Camera trace erasing", CVPR 2020) runs a registered ONNX graph tile by tile (:func:`camforensics.inference.anonymizer.anonymize_image`).
The judges that measure it are in :mod:`camforensics.pipelines.anonymize.judges`. Everything here is picklable so
process-pool workers can load the models themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from camforensics.errors import ParameterError
from camforensics.inference.anonymizer import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    TASK_ERASE,
    TASK_TARGETED,
    anonymize_image,
    resolve_target,
)
from camforensics.inference.registry import TASK_NOUNS, LoadedModel, ModelRegistry, onnxruntime_device

TASK_OF_METHOD = {"targeted": TASK_TARGETED, "erase": TASK_ERASE}
LEARNED_METHODS: tuple[str, ...] = tuple(TASK_OF_METHOD)  # targeted, erase
KIND_OF_METHOD = {"targeted": "targeted", "erase": "erase"}  # `camforensics train anonymizer --kind`


@dataclass(frozen=True)
class AnonymizerChoice:
    """Which learned anonymizer runs, on what target, tiled how (written into the report)."""

    name: str  # registry name
    sha256: str  # of the model file, from the manifest (checked again on every load)
    task: str  # targeted-anonymization or trace-erasing
    models_dir: str  # registry folder, as the workers see it
    target: str | None = None  # target camera model as the manifest spells it (targeted); None for an eraser
    tile: int = DEFAULT_TILE  # tile side in pixels (0: the whole image at once)
    overlap: int = DEFAULT_OVERLAP  # overlap and context of the tiles, pixels
    device: str = "auto"  # onnxruntime device: auto, cpu, cuda
    threads: int = 0  # onnxruntime intra-op threads (0 = all cores; 1 in each process-pool worker)

    @property
    def method(self) -> str:
        """``targeted`` or ``erase``, the anonymize method that runs this model."""
        return next(m for m, task in TASK_OF_METHOD.items() if task == self.task)

    def load(self) -> LoadedModel:
        return ModelRegistry(self.models_dir).load(self.name, device=self.device, threads=self.threads)

    def alter(self, pixels: np.ndarray, model: LoadedModel) -> tuple[np.ndarray, dict[str, Any]]:
        """The anonymized image (grey in, grey out); a learned model fits nothing per image."""
        out = anonymize_image(pixels, model, target=self.target, tile=self.tile, overlap=self.overlap)
        if pixels.ndim == 2:  # the graph sees grey as three equal channels; give back one
            out = np.clip(np.rint(out.mean(axis=2)), 0, 255).astype(np.uint8)
        return out, {}

    def parameters(self) -> dict[str, Any]:
        """The parameters that shape the output (written with every result)."""
        return self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "model_sha256": self.sha256,
            "task": self.task,
            "target": self.target,
            "tile": self.tile,
            "overlap": self.overlap,
        }


def no_model_message(method: str, registry: ModelRegistry) -> str:
    task = TASK_OF_METHOD[method]
    noun = TASK_NOUNS[task]
    others = [e.name for e in registry.entries() if e.task == task]
    if others:
        return f"no default {noun} in {registry.root}; name one with --model (available: {', '.join(others)})"
    return (
        f"no {noun} is registered in {registry.root} (none is shipped): train one with 'camforensics train "
        f"anonymizer DATA -o RUN --kind {KIND_OF_METHOD[method]}', register it with 'camforensics export RUN/best.pt "
        f"-o {registry.root}/NAME.onnx --default', or point --models-dir at a folder that has one"
    )


def anonymizer_choice(
    method: str,
    name: str | None,
    models_dir: str | os.PathLike[str] | None,
    *,
    target: str | None = None,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    threads: int = 0,
    device: str = "auto",
) -> AnonymizerChoice:
    """The learned anonymizer of ``method`` (``targeted`` or ``erase``): ``name``, else the registry's default of
    that task; the target is checked against the model's classes here, before any image is read.

    Raises
    ------
    ParameterError
        No such model registered (the message says how to train and register one), ``name`` of another task, a
        missing or unknown target (the model's classes are listed), a target given to an eraser, bad tile sizes.
    ModelError
        Unknown ``name`` (the available models are listed).
    """
    if method not in TASK_OF_METHOD:
        raise ParameterError(f"{method!r} is not a learned method; choose one of {', '.join(LEARNED_METHODS)}")
    if tile < 0 or overlap < 0:
        raise ParameterError(f"--tile and --overlap must be >= 0, got {tile} and {overlap}")
    if threads < 0:
        raise ParameterError(f"--model-threads must be >= 0, got {threads}")
    registry = ModelRegistry(models_dir)
    task = TASK_OF_METHOD[method]
    entry = registry.resolve(name, task)
    if entry is None:
        raise ParameterError(no_model_message(method, registry))
    if task == TASK_TARGETED and target is None:
        raise ParameterError(
            f"--method targeted needs --target 'MAKE MODEL'; model {entry.name!r} knows {', '.join(entry.classes)}"
        )
    if task == TASK_ERASE and target is not None:
        raise ParameterError("--target needs --method targeted (an eraser has no target); drop --target or --method")
    canonical = None
    if target is not None:
        try:
            canonical = entry.classes[resolve_target(target, entry.classes, task)]  # type: ignore[index]
        except ParameterError:
            raise ParameterError(
                f"unknown target {target!r} for model {entry.name!r}; it knows: {', '.join(entry.classes)}"
            ) from None
    return AnonymizerChoice(
        entry.name,
        entry.sha256,
        task,
        str(registry.root),
        canonical,
        tile,
        overlap,
        onnxruntime_device(device),
        threads,
    )

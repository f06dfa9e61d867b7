"""Self-checking ONNX export (timm ``utils/onnx.py`` style): export -> onnx checker -> onnxruntime vs torch parity
(:mod:`camforensics.training.onnx_graph`) -> manifest entry in the model registry.

:func:`export_checkpoint` exports any finished training run, by the ``kind`` its checkpoint records
(``attributor``: :func:`export_attributor`; ``siamese``: :func:`camforensics.training.siamese_export.export_siamese`;
``anonymizer``: :func:`camforensics.training.anonymizer_export.export_anonymizer`).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from camforensics.core.modelinput import VALUE_RANGE
from camforensics.errors import ParameterError
from camforensics.training.attributor import AttributorConfig
from camforensics.training.checkpoint import load_checkpoint
from camforensics.training.nets import Attributor
from camforensics.training.onnx_graph import ExportOptions, check_export, finished_checkpoint, onnx_bytes

TASK_ATTRIBUTION = "camera-model-attribution"


def _describe(cfg: AttributorConfig, classes: list[str], data: dict[str, Any]) -> str:
    split = "device-disjoint" if data.get("device_disjoint") else "partly image-level (see data.warnings)"
    return (
        f"Camera-model attributor ({cfg.architecture}, preprocessor {cfg.preprocessor}) over {len(classes)} models: "
        f"{', '.join(classes)}. Trained on {data.get('train', {}).get('n_images')} images of "
        f"{data.get('train', {}).get('n_devices')} devices of the data set {data.get('dataset')!r} ({split} split). "
        "It knows only these models; any other camera should come out as 'unknown' (open-set threshold), "
        "but an unseen model that resembles a known one can be mistaken for it."
    )


def export_attributor(
    checkpoint: str | os.PathLike[str], output: str | os.PathLike[str], **options: Any
) -> dict[str, Any]:
    """Export a finished attributor checkpoint to ONNX, check it, and register it.

    Parameters
    ----------
    checkpoint : path-like
        ``best.pt`` of a finished ``train attributor`` run (calibrated: it holds the open-set threshold and the
        validation and test metrics).
    output : path-like
        The ``.onnx`` file to write; the manifest of its folder receives the entry.
    **options
        The fields of :class:`~camforensics.training.onnx_graph.ExportOptions` (name, registry, default,
        description, export_command, tolerance); ``default=True``: make this model the default camera-model
        attributor.

    Returns
    -------
    dict
        The manifest entry.
    """
    opts = ExportOptions(**options)
    state, out = finished_checkpoint(
        checkpoint, output, kind="attributor", label="an attributor", needs="open_set",
        missing="no calibrated open-set threshold",
    )
    cfg = AttributorConfig.from_dict(state["config"])
    classes = list(state["classes"])
    model = Attributor(cfg.preprocessor, cfg.architecture, len(classes), width=cfg.width)
    model.load_state_dict(state["model"])
    model.eval()
    example = torch.zeros(1, 3, cfg.patch_size, cfg.patch_size)
    data = onnx_bytes(model, example)
    export_check = check_export(data, model, patch_size=cfg.patch_size, tolerance=opts.tolerance)
    reg = opts.write(out, data)
    history = state.get("history", [])
    entry = {
        **opts.head(out, data, TASK_ATTRIBUTION, classes, _describe(cfg, classes, state.get("data", {}))),
        "input": {
            "name": "input",
            "layout": "NCHW",
            "channels": 3,
            "dtype": "float32",
            "patch_size": cfg.patch_size,
            "value_range": list(VALUE_RANGE),
            "dynamic_axes": ["batch", "height", "width"],
            "colour_order": "RGB, stored (sensor) pixel order, never EXIF-rotated",
        },
        "output": {"name": "log_probs", "kind": "log-softmax over classes, per patch"},
        "preprocessor": cfg.preprocessor,
        "architecture": cfg.architecture,
        "width": cfg.width,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "decision": {
            "patches_per_image": cfg.eval_patches,
            "window": cfg.eval_window,
            "patch_selection": (
                "non-overlapping grid of the centred window (origin a multiple of 16; 0 = whole image), "
                "quality-filtered, best Bondi scores"
            ),
            "aggregation": "mean of patch log-probabilities; probabilities = softmax of the mean",
            "open_set": state["open_set"],
        },
        "training": {
            **state.get("provenance", {}),
            "config": state["config"],
            "data": state.get("data", {}),
            "epochs_trained": len(history),
            "best_epoch": int(state["epoch"]),
            "history": [
                {k: h[k] for k in ("epoch", "train_loss", "val_image_accuracy", "val_patch_accuracy")} for h in history
            ],
        },
        "metrics": state.get("metrics", {}),
        "export": opts.record(export_check),
    }
    return opts.register(reg, out, entry, TASK_ATTRIBUTION)


def export_checkpoint(
    checkpoint: str | os.PathLike[str], output: str | os.PathLike[str], **options: Any
) -> dict[str, Any]:
    """Export a finished run of any kind (the checkpoint's ``kind`` chooses the exporter); returns the entry."""
    kind = load_checkpoint(checkpoint).get("kind")
    if kind == "attributor":
        return export_attributor(checkpoint, output, **options)
    if kind == "siamese":
        from camforensics.training.siamese_export import export_siamese

        return export_siamese(checkpoint, output, **options)
    if kind == "anonymizer":
        from camforensics.training.anonymizer_export import export_anonymizer

        return export_anonymizer(checkpoint, output, **options)
    raise ParameterError(
        f"{checkpoint}: unknown checkpoint kind {kind!r}; expected 'attributor', 'siamese' or 'anonymizer'"
    )

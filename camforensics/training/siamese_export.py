"""Self-checking ONNX export of a Siamese same-device verifier: one graph with inputs ``a`` and ``b``, output
``logit``; onnx checker, onnxruntime vs torch parity on pairs of two sizes (:func:`check_export`), then the
manifest entry with the input contract, the extended-inference rule, the fusion with PRNU and its thresholds."""

from __future__ import annotations

import os
from typing import Any

import torch

from camforensics.core.modelinput import VALUE_RANGE
from camforensics.inference.verification import TASK
from camforensics.training.onnx_graph import ExportOptions, check_export, finished_checkpoint, onnx_bytes
from camforensics.training.siamese import KIND, SiameseConfig, build_model

SIZE_POLICY = (
    "every image of both sets is centre-cropped to the area common to all of them (smallest height and width, "
    "even offsets); images of one sensor in one orientation keep their pixel correspondence"
)


def _describe(cfg: SiameseConfig, data: dict[str, Any]) -> str:
    train = data.get("train", {})
    extra = data.get("extra_train") or {}
    more = f" plus {sum(v.get('n_devices', 0) for v in extra.values())} devices of extra data sets" if extra else ""
    return (
        f"Siamese same-device verifier (preprocessor {cfg.preprocessor}, {cfg.comparison} comparison, "
        f"{cfg.crop}x{cfg.crop} patches) trained on {train.get('n_images')} images of {train.get('n_devices')} "
        f"devices of the data set {data.get('dataset')!r}{more}, with {cfg.set_size_min}..{cfg.set_size_max} images "
        "per side; validated and calibrated on devices it never saw. It compares sensor traces of two sets at the "
        "same pixel positions: images must be in stored sensor order and of one geometry (no resizing, no "
        "unknown crop offset)."
    )


def export_siamese(
    checkpoint: str | os.PathLike[str], output: str | os.PathLike[str], **options: Any
) -> dict[str, Any]:
    """Export a finished Siamese verifier checkpoint to ONNX, check it, and register it.

    Parameters
    ----------
    checkpoint : path-like
        ``best.pt`` of a finished ``train siamese`` run (it holds the calibration: fusion and thresholds).
    output : path-like
        The ``.onnx`` file to write, inside the registry folder whose manifest receives the entry.
    **options
        The fields of :class:`~camforensics.training.onnx_graph.ExportOptions` (name, registry, default,
        description, export_command, tolerance); ``default=True``: make it the default same-device verifier
        (``verify`` then runs it unless ``--no-model``).

    Returns
    -------
    dict
        The manifest entry.
    """
    opts = ExportOptions(**options)
    state, out = finished_checkpoint(
        checkpoint, output, kind=KIND, label="a Siamese verifier", needs="calibration",
        missing="no calibration (fusion with PRNU, thresholds)",
    )
    cfg = SiameseConfig.from_dict(state["config"])
    model = build_model(cfg)
    model.load_state_dict(state["model"])
    model.eval()
    example = torch.zeros(1, 3, cfg.crop, cfg.crop)
    data = onnx_bytes(model, (example, example), input_names=("a", "b"), output_name="logit")
    export_check = check_export(data, model, patch_size=cfg.crop, input_names=("a", "b"), tolerance=opts.tolerance)
    reg = opts.write(out, data)
    cal = state["calibration"]
    history = state.get("history", [])
    entry = {
        **opts.head(out, data, TASK, [], _describe(cfg, state.get("data", {}))),
        "input": {
            "names": ["a", "b"],
            "layout": "NCHW",
            "channels": 3,
            "dtype": "float32",
            "patch_size": cfg.crop,
            "value_range": list(VALUE_RANGE),
            "dynamic_axes": ["batch", "height", "width"],
            "colour_order": "RGB, stored (sensor) pixel order, never EXIF-rotated",
            "encoding": (
                "WW: 128 + 8 x the per-channel wavelet noise of the whole (centre-cropped) image, clipped to 0..255"
                if cfg.preprocessor == "WW"
                else f"pixels; the {cfg.preprocessor} preprocessor runs inside the graph"
            ),
            "set_averaging": "each side: per-position mean over its images of the encoded input, before the graph",
            "pairing": "a[i] and b[i] are patches at the same position of the common area",
        },
        "output": {"name": "logit", "kind": "same-device logit per position pair (sigmoid: uncalibrated)"},
        "preprocessor": cfg.preprocessor,
        "architecture": "siamese twin residual CNN",
        "comparison": cfg.comparison,
        "width": cfg.width,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "decision": {
            "positions": cal["positions"],
            "crop": cal["crop"],
            "position_rule": "non-overlapping grid of the common area, evenly spaced rows and columns kept",
            "size_policy": SIZE_POLICY,
            "aggregation": "mean of the per-position logits (extended inference)",
            "set_sizes_trained": cal["set_sizes"],
            "calibration_area_pixels": cal.get("area_pixels"),
            "siamese_threshold": cal["siamese_threshold"],
            "prnu_threshold": cal["prnu_threshold"],
            "fusion": cal["fusion"],
            "prnu_parameters": cal["prnu_parameters"],
            "calibrated_on": cal["calibrated_on"],
        },
        "training": {
            **state.get("provenance", {}),
            "config": state["config"],
            "data": state.get("data", {}),
            "epochs_trained": len(history),
            "best_epoch": int(state["epoch"]),
            "history": [{k: h[k] for k in ("epoch", "train_loss", "val_auc", "val_eer")} for h in history],
        },
        "metrics": state.get("metrics", {}),
        "export": opts.record(export_check),
    }
    return opts.register(reg, out, entry, TASK)

"""Self-checking ONNX export of a learned anonymizer: the Cama generator (inputs ``image`` and ``target``) or the
trace eraser (input ``image``), output ``output``; fully convolutional (dynamic batch, height and width); onnx
checker, onnxruntime vs torch parity on two sizes, then the manifest entry with the input contract and the tiling
rule (:func:`camforensics.inference.anonymizer.anonymize_image`)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from camforensics.inference.anonymizer import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    TASK_ERASE,
    TASK_TARGETED,
)
from camforensics.training.anonymizer import KIND, AnonymizerConfig, exported_network, load_networks
from camforensics.training.anonymizer_nets import GENERATOR_MULTIPLE
from camforensics.training.onnx_graph import PARITY_TOLERANCE, ExportOptions, check_export, finished_checkpoint, onnx_bytes


def _random_inputs(rng: np.random.Generator, n: int, h: int, w: int, n_classes: int | None) -> list[np.ndarray]:
    """A smooth-plus-noise image batch on [-1, 1] and, for the generator, one-hot target planes."""
    base = rng.uniform(-0.8, 0.8, (n, 3, 1, 1)) + rng.normal(0.0, 0.05, (n, 3, h, w))
    xs = [np.clip(base, -1.0, 1.0).astype(np.float32)]
    if n_classes is not None:
        planes = np.zeros((n, n_classes, h, w), np.float32)
        planes[np.arange(n), rng.integers(0, n_classes, n)] = 1.0
        xs.append(planes)
    return xs


def check_anonymizer_export(
    data: bytes,
    model: torch.nn.Module,
    *,
    patch_size: int,
    n_classes: int | None,
    tolerance: float = PARITY_TOLERANCE,
    seed: int = 0,
) -> dict[str, Any]:
    """onnx checker, then onnxruntime vs torch on two batch sizes and two spatial sizes (multiples of 4)
    (:func:`~camforensics.training.onnx_graph.check_export` with this graph's inputs).

    Raises
    ------
    ModelError
        If the checker fails, a shape differs, or the outputs differ by more than ``tolerance``.
    """
    return check_export(
        data, model, patch_size=patch_size, tolerance=tolerance, seed=seed, batches=(2, 1), spatial_output=True,
        make_inputs=lambda rng, n, h, w: _random_inputs(rng, n, h, w, n_classes),
    )  # fmt: skip


def _describe(cfg: AnonymizerConfig, classes: list[str], data: dict[str, Any]) -> str:
    train = data.get("train", {})
    where = (
        f"trained on {train.get('n_images')} images of {train.get('n_devices')} devices of the data set "
        f"{data.get('dataset')!r}"
    )
    if cfg.kind == "targeted":
        return (
            f"Targeted camera-model anonymizer after Cama (generator width {cfg.width}; Cama's is 64), {where}. "
            f"It rewrites an image so that it looks taken by the chosen target model, one of: {', '.join(classes)}. "
            "Its success was measured by its own training-time evaluator; judge it with independent attributors."
        )
    return (
        f"Untargeted camera-trace eraser (SiamTE-style, width {2 * cfg.width}, depth {cfg.depth}), {where}, "
        f"to make the traces of {', '.join(classes)} indistinguishable while changing pixels little."
    )


def export_anonymizer(
    checkpoint: str | os.PathLike[str], output: str | os.PathLike[str], **options: Any
) -> dict[str, Any]:
    """Export a finished anonymizer checkpoint to ONNX, check it, and register it.

    Parameters
    ----------
    checkpoint : path-like
        ``best.pt`` of a finished ``train anonymizer`` run (it holds the validation and test figures).
    output : path-like
        The ``.onnx`` file to write, inside the registry folder whose manifest receives the entry.
    **options
        The fields of :class:`~camforensics.training.onnx_graph.ExportOptions` (name, registry, default,
        description, export_command, tolerance); ``default=True``: make it the default model of its task
        (``targeted-anonymization`` or ``trace-erasing``).

    Returns
    -------
    dict
        The manifest entry.
    """
    opts = ExportOptions(**options)
    state, out = finished_checkpoint(
        checkpoint, output, kind=KIND, label="an anonymizer", needs="metrics", missing="no final metrics"
    )
    cfg, nets = load_networks(state)
    classes = list(state["classes"])
    net = nets[exported_network(cfg)]
    targeted = cfg.kind == "targeted"
    p = cfg.patch_size
    example: tuple[torch.Tensor, ...] = (torch.zeros(1, 3, p, p),)
    input_names: tuple[str, ...] = ("image",)
    if targeted:
        example += (torch.zeros(1, len(classes), p, p),)
        input_names += ("target",)
    data = onnx_bytes(net, example, input_names=input_names, output_name="output", spatial_output=True)
    export_check = check_anonymizer_export(
        data, net, patch_size=p, n_classes=len(classes) if targeted else None, tolerance=opts.tolerance
    )
    reg = opts.write(out, data)
    task = TASK_TARGETED if targeted else TASK_ERASE
    history = state.get("history", [])
    entry = {
        **opts.head(out, data, task, classes, _describe(cfg, classes, state.get("data", {}))),
        "input": {
            "name": "image",
            "layout": "NCHW",
            "channels": 3,
            "dtype": "float32",
            "patch_size": p,
            "value_range": [-1.0, 1.0],
            "scaling": "x = pixel / 127.5 - 1 (0..255 -> [-1, 1])",
            "dynamic_axes": ["batch", "height", "width"],
            "size_multiple": GENERATOR_MULTIPLE if targeted else 1,
            "colour_order": "RGB, stored (sensor) pixel order, never EXIF-rotated; CFA phase from pixel (0, 0)",
            **(
                {
                    "target": {
                        "name": "target",
                        "layout": "NCHW",
                        "encoding": "one-hot planes: channel c = 1 everywhere for target classes[c], others 0",
                    }
                }
                if targeted
                else {}
            ),
        },
        "output": {"name": "output", "kind": "image on [-1, 1], the input's size; pixel = round((y + 1) * 127.5)"},
        "preprocessor": "remosaic-bilinear" if targeted else "RGB",
        "architecture": "cama-generator" if targeted else "dncnn-eraser",
        "width": cfg.width if targeted else 2 * cfg.width,
        "n_parameters": int(sum(q.numel() for q in net.parameters())),
        "tiling": {
            "tile": DEFAULT_TILE,
            "overlap": DEFAULT_OVERLAP,
            "blend": "raised-cosine weights over the overlaps; each tile run with `overlap` pixels of context",
            "origins": f"multiples of {GENERATOR_MULTIPLE} (keeps the CFA phase and the stride-2 grids)",
        },
        "training": {
            **state.get("provenance", {}),
            "config": state["config"],
            "data": state.get("data", {}),
            "epochs_trained": len(history),
            "best_epoch": int(state["epoch"]),
            "history": history,
        },
        "metrics": state.get("metrics", {}),
        "export": opts.record(export_check),
    }
    return opts.register(reg, out, entry, task)

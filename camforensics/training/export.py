"""Self-checking ONNX export (timm ``utils/onnx.py`` style): export -> onnx checker -> onnxruntime vs torch parity
-> manifest entry in the model registry.

:func:`export_checkpoint` exports any finished training run, by the ``kind`` its checkpoint records
(``attributor``: :func:`export_attributor`; ``siamese``: :func:`camforensics.training.siamese_export.export_siamese`;
``anonymizer``: :func:`camforensics.training.anonymizer_export.export_anonymizer`).
"""

from __future__ import annotations

import io
import os
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camforensics.core.modelinput import VALUE_RANGE
from camforensics.errors import ParameterError
from camforensics.inference.registry import ModelError, ModelRegistry, sha256_bytes
from camforensics.reports.atomic import atomic_write_bytes
from camforensics.training.attributor import AttributorConfig
from camforensics.training.checkpoint import load_checkpoint
from camforensics.training.nets import Attributor

OPSET = 17
PARITY_TOLERANCE = 1e-4  # max |onnxruntime - torch| on log-probabilities (float32 graphs agree to ~1e-6)
TASK_ATTRIBUTION = "camera-model-attribution"


def onnx_bytes(
    model: torch.nn.Module,
    example: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    opset: int = OPSET,
    input_names: tuple[str, ...] = ("input",),
    output_name: str = "log_probs",
    spatial_output: bool = False,
) -> bytes:
    """Serialize ``model`` to ONNX with dynamic batch, height and width on every (NCHW) input and a dynamic batch
    on the output (also dynamic height and width with ``spatial_output``, for image-to-image graphs) (legacy
    TorchScript exporter, which needs only the ``onnx`` package; the dynamo exporter would also need
    ``onnxscript``)."""
    buf = io.BytesIO()
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 2: "height", 3: "width"} for name in input_names}
    axes[output_name] = {0: "batch", 2: "height", 3: "width"} if spatial_output else {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's DeprecationWarning and tracer notes
        torch.onnx.export(
            model,
            example if isinstance(example, tuple) else (example,),
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=list(input_names),
            output_names=[output_name],
            dynamic_axes=axes,
        )
    return buf.getvalue()


def run_onnx_checker(data: bytes) -> None:
    """The onnx checker (full check); ``ModelError`` when the graph fails it."""
    import onnx

    try:
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    except Exception as exc:  # noqa: BLE001 - onnx raises several checker error types
        raise ModelError(f"exported graph fails the onnx checker: {exc}") from None


def check_export(
    data: bytes,
    model: torch.nn.Module,
    *,
    patch_size: int,
    input_names: tuple[str, ...] = ("input",),
    tolerance: float = PARITY_TOLERANCE,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the onnx checker, then compare onnxruntime with torch on random batches (two spatial sizes, two batch
    sizes, to exercise the dynamic axes). Each of ``input_names`` (the graph's NCHW inputs, in the order ``model``
    takes them) gets its own random batch of the same shape. Returns the parity figures.

    Raises
    ------
    ModelError
        If the checker fails or the outputs differ by more than ``tolerance``.
    """
    import onnx
    import onnxruntime as ort

    run_onnx_checker(data)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    shapes = [(8, patch_size, patch_size), (3, patch_size + 32, patch_size + 16)]
    model.eval()
    for n, h, w in shapes:
        xs = [rng.uniform(0, 255, (n, 3, h, w)).astype(np.float32) for _ in input_names]
        with torch.no_grad():
            ref = model(*(torch.from_numpy(x) for x in xs)).numpy()
        got = session.run(None, dict(zip(input_names, xs, strict=True)))[0]
        if got.shape != ref.shape:
            raise ModelError(f"onnxruntime output shape {got.shape} differs from torch's {ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
    if not worst <= tolerance:
        raise ModelError(f"onnxruntime differs from torch by {worst:.3g} > tolerance {tolerance:g}; export refused")
    return {
        "onnx_checker": "passed",
        "parity_max_abs_diff": worst,
        "tolerance": tolerance,
        "parity_inputs": [list(s) for s in shapes],
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
    }


def _describe(cfg: AttributorConfig, classes: list[str], data: dict[str, Any]) -> str:
    split = "device-disjoint" if data.get("device_disjoint") else "partly image-level (see data.warnings)"
    return (
        f"Camera-model attributor ({cfg.architecture}, preprocessor {cfg.preprocessor}) over {len(classes)} models: "
        f"{', '.join(classes)}. Trained on {data.get('train', {}).get('n_images')} images of "
        f"{data.get('train', {}).get('n_devices')} devices of the data set {data.get('dataset')!r} ({split} split). "
        "It knows only these models; any other camera should come out as 'unknown' (open-set threshold), "
        "but an unseen model that resembles a known one can be mistaken for it."
    )


def finished_checkpoint(
    checkpoint: str | os.PathLike[str], output: str | os.PathLike[str], *, kind: str, label: str, needs: str, missing: str
) -> tuple[dict[str, Any], Path]:
    """The state of a finished training run's checkpoint of ``kind`` and the ``.onnx`` path to export it to.

    Raises
    ------
    ParameterError
        Another kind of checkpoint; no ``needs`` member (``missing`` says what is absent: an unfinished run's
        ``last.pt``); an output that is not a ``.onnx`` file.
    """
    state = load_checkpoint(checkpoint)
    if state.get("kind") != kind:
        raise ParameterError(f"{checkpoint}: not {label} checkpoint (kind {state.get('kind')!r})")
    if needs not in state:
        raise ParameterError(
            f"{checkpoint}: {missing}: export the best.pt of a finished run (last.pt is the resumable training "
            "state; an interrupted run is finished with --resume)"
        )
    out = Path(output)
    if out.suffix != ".onnx":
        raise ParameterError(f"{out}: the output must be a .onnx file")
    return state, out


def export_attributor(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    name: str | None = None,
    registry: ModelRegistry | None = None,
    default: bool = False,
    description: str | None = None,
    export_command: str | None = None,
    tolerance: float = PARITY_TOLERANCE,
) -> dict[str, Any]:
    """Export a finished attributor checkpoint to ONNX, check it, and register it.

    Parameters
    ----------
    checkpoint : path-like
        ``best.pt`` of a finished ``train attributor`` run (calibrated: it holds the open-set threshold and the
        validation and test metrics).
    output : path-like
        The ``.onnx`` file to write; the manifest of its folder receives the entry.
    name : str, optional
        Registry name; default the file's stem.
    registry : ModelRegistry, optional
        Default: the registry of ``output``'s folder.
    default : bool
        Make this model the default camera-model attributor.
    description : str, optional
        What the model knows, in words (default: generated from the training data summary).

    Returns
    -------
    dict
        The manifest entry.
    """
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
    export_check = check_export(data, model, patch_size=cfg.patch_size, tolerance=tolerance)
    reg = registry or ModelRegistry(out.parent)
    if out.parent.resolve() != reg.root.resolve():
        raise ParameterError(f"{out} must be written into the registry folder {reg.root}")
    atomic_write_bytes(out, data)
    history = state.get("history", [])
    entry = {
        "file": out.name,
        "sha256": sha256_bytes(data),
        "size_bytes": len(data),
        "task": TASK_ATTRIBUTION,
        "classes": classes,
        "description": description or _describe(cfg, classes, state.get("data", {})),
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
        "export": {
            **export_check,
            "opset": OPSET,
            "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
            "torch": str(torch.__version__),
            "command": export_command,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }
    reg.register(name or out.stem, entry, default_for=TASK_ATTRIBUTION if default else None)
    return entry


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

"""The ONNX side of every export: serialize a torch model with dynamic axes, run the onnx checker, compare
onnxruntime with torch (timm ``utils/onnx.py`` style), and read a finished run's checkpoint for export.

Shared by the exporters of :mod:`camforensics.training.export` (attributor, and the dispatch by checkpoint kind),
:mod:`~camforensics.training.siamese_export` and :mod:`~camforensics.training.anonymizer_export`.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camforensics.errors import ModelError, ParameterError
from camforensics.inference.registry import ModelRegistry, sha256_bytes
from camforensics.reports.atomic import atomic_write_bytes
from camforensics.training.checkpoint import load_checkpoint

OPSET = 17
PARITY_TOLERANCE = 1e-4  # max |onnxruntime - torch| on log-probabilities (float32 graphs agree to ~1e-6)


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


InputMaker = Callable[[np.random.Generator, int, int, int], list[np.ndarray]]


def check_export(
    data: bytes,
    model: torch.nn.Module,
    *,
    patch_size: int,
    input_names: tuple[str, ...] = ("input",),
    tolerance: float = PARITY_TOLERANCE,
    seed: int = 0,
    batches: tuple[int, int] = (8, 3),
    make_inputs: InputMaker | None = None,
    spatial_output: bool = False,
) -> dict[str, Any]:
    """Run the onnx checker, then compare onnxruntime with torch on random batches (two spatial sizes, two batch
    sizes, to exercise the dynamic axes). By default each of ``input_names`` (the graph's NCHW inputs, in the
    order ``model`` takes them) gets its own uniform 0..255 batch of the same shape; ``make_inputs(rng, n, h, w)``
    makes them otherwise. With ``spatial_output`` the output must also have the input's height and width.
    Returns the parity figures.

    Raises
    ------
    ModelError
        If the checker fails, a shape differs, or the outputs differ by more than ``tolerance``.
    """
    import onnx
    import onnxruntime as ort

    run_onnx_checker(data)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    rng = np.random.default_rng(seed)
    worst = 0.0
    shapes = [(batches[0], patch_size, patch_size), (batches[1], patch_size + 32, patch_size + 16)]
    model.eval()
    for n, h, w in shapes:
        if make_inputs is None:
            xs = [rng.uniform(0, 255, (n, 3, h, w)).astype(np.float32) for _ in input_names]
        else:
            xs = make_inputs(rng, n, h, w)
        with torch.no_grad():
            ref = model(*(torch.from_numpy(x) for x in xs)).numpy()
        got = session.run(None, dict(zip(names, xs, strict=True)))[0]
        if got.shape != ref.shape or (spatial_output and got.shape[2:] != (h, w)):
            also = " / the input's" if spatial_output else ""
            raise ModelError(f"onnxruntime output shape {got.shape} differs from torch's {ref.shape}{also}")
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


@dataclass(frozen=True)
class ExportOptions:
    """Where and how an exporter registers a checked graph (the keyword options of every ``export_*``)."""

    name: str | None = None  # registry name; default the file's stem
    registry: ModelRegistry | None = None  # default: the registry of the output's folder
    default: bool = False  # make it the default model of its task
    description: str | None = None  # what the model knows, in words; default: from the training data summary
    export_command: str | None = None  # the command line, recorded in the entry
    tolerance: float = PARITY_TOLERANCE  # max |onnxruntime - torch| accepted

    def write(self, out: Path, data: bytes) -> ModelRegistry:
        """Write the checked graph to ``out`` (atomically) inside its registry's folder; returns the registry.

        Raises
        ------
        ParameterError
            ``out`` is outside the registry folder.
        """
        reg = self.registry or ModelRegistry(out.parent)
        if out.parent.resolve() != reg.root.resolve():
            raise ParameterError(f"{out} must be written into the registry folder {reg.root}")
        atomic_write_bytes(out, data)
        return reg

    def head(self, out: Path, data: bytes, task: str, classes: list[str], described: str) -> dict[str, Any]:
        """The first members of a manifest entry: file, sha256, size, task, classes and the description
        (``description``, else ``described``, the exporter's own words)."""
        return {
            "file": out.name,
            "sha256": sha256_bytes(data),
            "size_bytes": len(data),
            "task": task,
            "classes": classes,
            "description": self.description or described,
        }

    def register(self, reg: ModelRegistry, out: Path, entry: dict[str, Any], task: str) -> dict[str, Any]:
        """Add ``entry`` to the manifest (as the task's default with ``default``); returns it."""
        reg.register(self.name or out.stem, entry, default_for=task if self.default else None)
        return entry

    def record(self, check: dict[str, Any]) -> dict[str, Any]:
        """The entry's ``export`` member: the parity check, the exporter and the command."""
        return {
            **check,
            "opset": OPSET,
            "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
            "torch": str(torch.__version__),
            "command": self.export_command,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

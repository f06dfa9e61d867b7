"""camforensics export: a trained checkpoint -> checked ONNX file + model manifest entry."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import cli_errors, fail, out


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(
    checkpoint: Annotated[Path, typer.Argument(help="best.pt of a finished training run.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="The .onnx file to write; the manifest.json of its folder gets the entry (e.g. models/NAME.onnx).",
        ),
    ],
    name: Annotated[str | None, typer.Option(help="Registry name (default: the file name without .onnx).")] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Make it the default model of its task (identify's or verify's).")
    ] = False,
    description: Annotated[
        str | None, typer.Option(help="What the model knows, in words (default: from its training data).")
    ] = None,
    tolerance: Annotated[float, typer.Option(help="Largest allowed |onnxruntime - torch| on the outputs.")] = 1e-4,
) -> None:
    """Export to ONNX (dynamic batch and spatial axes), run the onnx checker and an onnxruntime-vs-torch parity test,
    then register the model with its sha256, classes, input contract, training provenance and validation metrics.

    The checkpoint's kind chooses the exporter: a camera-model attributor or a Siamese same-device verifier."""
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise fail("export needs torch and onnx: pip install 'camforensics[train]'") from None
    with cli_errors():
        from camforensics.training.export import export_checkpoint

        entry = export_checkpoint(
            checkpoint,
            output,
            name=name,
            default=default,
            description=description,
            export_command=shlex.join(["camforensics", *sys.argv[1:]]),
            tolerance=tolerance,
        )
        e = entry["export"]
        out.print(
            f"exported {output} ({entry['size_bytes'] / 1e6:.2f} MB, sha256 {entry['sha256'][:16]}...): onnx checker passed, "
            f"onnxruntime vs torch max |diff| {e['parity_max_abs_diff']:.2e} <= {e['tolerance']:g}"
        )

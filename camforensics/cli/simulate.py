"""camforensics simulate: write a simulated corpus of camera images with known ground truth."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from camforensics.cli.common import check_format, cli_errors, emit_report, human_output, out, progress
from camforensics.cli.options import FormatOpt, QuietOpt, ReportOpt
from camforensics.errors import ParameterError


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (640, 480)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise ParameterError(f"size must look like WIDTHxHEIGHT (e.g. 1024x768), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def simulate(
    out_dir: Annotated[Path, typer.Argument(help="Output folder (new, empty, or a previous simulation to replace).")],
    devices: Annotated[
        Optional[int], typer.Option("--devices", "-d", help="Number of devices in all, spread over the models. [default: 3]")
    ] = None,
    models: Annotated[
        Optional[int], typer.Option("--models", "-m", help="Number of camera models (different pipelines). [default: 2]")
    ] = None,
    images: Annotated[int, typer.Option("--images", "-k", help="Natural-scene images per device.")] = 4,
    flat: Annotated[
        Optional[int], typer.Option("--flat", help="Flat-field images per device (for fingerprints). [default: 8]")
    ] = None,
    camera: Annotated[
        bool,
        typer.Option(
            "--camera/--no-camera",
            help="--no-camera: write the natural scenes as synthetic renders with no camera pipeline (PNG, one source "
            "'Synthetic Render', no flat fields), e.g. to give them a camera's traces with anonymize --target.",
        ),
    ] = True,
    size: Annotated[str, typer.Option("--size", help="Image size WIDTHxHEIGHT (even sides).")] = "512x512",
    seed: Annotated[int, typer.Option("--seed", help="Master seed: the same seed gives identical files.")] = 0,
    scenes: Annotated[
        Optional[Path], typer.Option("--scenes", help="Folder of photos to use as natural scenes (shrunk >= 2x).")
    ] = None,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
) -> None:
    """Simulate camera models and devices and write their JPEG images with a ground-truth manifest.

    Writes OUT/<Make>_<Model>_<n>/flat/*.jpg and OUT/<Make>_<Model>_<n>/nat/*.jpg, OUT/MANIFEST.csv (file,
    device, make, model, content, width, height, sha256) and OUT/simulation.json (every pipeline parameter).
    Devices of one model share the whole pipeline and differ only in their sensor (PRNU, dark signal).
    With --no-camera the natural scenes are written as synthetic renders with no camera pipeline (no sensor, colour
    filter array, demosaicing or JPEG): OUT/Synthetic_Render_0/nat/*.png, make 'Synthetic', model 'Render'.
    """
    with cli_errors():
        check_format(fmt)
        from camforensics.reports.report import Report
        from camforensics.sim import SimulationSpec, simulate_corpus

        width, height = parse_size(size)
        if not camera and any(v is not None for v in (devices, models, flat)):
            raise ParameterError("--no-camera writes renders of one source with no sensor: --devices, --models and "
                                 "--flat do not apply")  # fmt: skip
        spec = SimulationSpec(
            n_models=(2 if models is None else models) if camera else 1,
            n_devices=(3 if devices is None else devices) if camera else 1,
            n_flat=(8 if flat is None else flat) if camera else 0,
            n_nat=images, width=width, height=height, seed=seed, scene_dir=scenes, camera=camera,
        )
        rep = Report(command="simulate", parameters={"out_dir": out_dir, "spec": spec.to_dict()})
        with progress("simulate", quiet=quiet) as hooks:
            started = False

            def on_progress(done: int, total: int) -> None:
                nonlocal started
                if not started:
                    hooks.start(total)
                    started = True
                hooks.tick()

            rows = simulate_corpus(out_dir, spec, progress=on_progress)
        for row in rows:
            rep.add({"input": {"path": str(out_dir / row["file"]), "sha256": row["sha256"]}, "status": "ok", "output": row})
        rep.finish(n_devices=spec.n_devices, n_models=spec.n_models, camera=spec.camera, out_dir=str(out_dir))
        if human_output(report, quiet):
            source = f"{spec.n_devices} devices of {spec.n_models} models" if camera else "no camera (synthetic renders)"
            out.print(
                f"simulated [bold]{len(rows)}[/] images of {width}x{height} from {source} in {out_dir} "
                f"(ground truth: {out_dir / 'MANIFEST.csv'})"
            )
        code = emit_report(rep, report, fmt, quiet=quiet)
    raise typer.Exit(code)

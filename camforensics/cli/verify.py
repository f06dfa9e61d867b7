"""camforensics verify: were two sets of photos taken by the same device?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import literal, check_format, cli_errors, emit_report, execution_of, human_output, out, progress
from camforensics.cli.common import show_errors
from camforensics.cli.options import DeviceOpt, FormatOpt, MaxPixelsOpt, ModelsDirOpt, QuietOpt, ReportOpt, SchedulerOpt
from camforensics.cli.options import WorkersOpt, match_params_of
from camforensics.cli.common import check_outputs


MODEL_HELP = (
    "Siamese same-device verifier to run beside PRNU (see 'camforensics models list'); default: the "
    "registry's default verifier, if any."
)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)


def verify(
    set_a: Annotated[Path, typer.Argument(help="Set A: an image or a folder of images.")],
    set_b: Annotated[Path, typer.Argument(help="Set B: an image or a folder of images.")],
    threshold: Annotated[float, typer.Option(help="PCE decision threshold.")] = 60.0,
    sigma0: Annotated[float, typer.Option(help="Denoiser noise std for the set fingerprints (0..255).")] = 3.0,
    rotations: Annotated[str, typer.Option(help="'all', 'dih4' or 'none' (see identify).")] = "all",
    shift_range: Annotated[str, typer.Option(help="See identify (crops with a --crop-anchor).")] = "0",
    crop_anchor: Annotated[
        str, typer.Option(help="A set smaller than the other (crops): any, centre, corner, Y,X or none (see identify).")
    ] = "any",
    scales: Annotated[str, typer.Option(help="Scales searched for a downscaled set (see identify).")] = "1",
    per_image: Annotated[
        bool, typer.Option("--per-image/--no-per-image", help="Also match each image against the other set.")
    ] = True,
    model: Annotated[str | None, typer.Option("--model", "-m", help=MODEL_HELP)] = None,
    no_model: Annotated[bool, typer.Option("--no-model", help="PRNU only: no Siamese score, no fusion.")] = False,
    models_dir: ModelsDirOpt = None,
    positions: Annotated[
        int | None,
        typer.Option(help="Patch positions of the Siamese extended inference (default: the model's own, calibrated so)."),
    ] = None,
    model_threads: Annotated[int, typer.Option(help="onnxruntime threads (0 = all cores).")] = 0,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
    max_pixels: MaxPixelsOpt = 250_000_000,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Same-device decision from sensor fingerprints: PCE between the fingerprints of set A and set B; with a
    registered Siamese verifier also its score and a calibrated fused probability of both.

    Works with any number of images per side (more is better: one image against one image is weak evidence).
    """
    with cli_errors():
        check_format(fmt)
        check_outputs([set_a, set_b], report=report)  # before any work
        from camforensics.core.params import FingerprintParams, ResidualParams
        from camforensics.pipelines.verify import verifier_choice, verify_sets

        chosen = (
            None
            if no_model
            else verifier_choice(model, models_dir, positions=positions, threads=model_threads, device=device)
        )
        match = match_params_of(threshold, rotations, shift_range, crop_anchor, scales)
        with progress("verify", quiet=quiet) as hooks:
            rep = verify_sets(
                [set_a],
                [set_b],
                fingerprint_params=FingerprintParams(residual=ResidualParams(sigma0=sigma0)),
                match=match,
                per_image=per_image,
                max_pixels=max_pixels,
                model=chosen,
                execution=execution_of(workers, scheduler, device),
                tick=hooks.tick,
                on_start=hooks.start,
            )
        if human_output(report, quiet):
            show_errors(rep)
            from camforensics.cli.render import verify_lines

            for line in verify_lines(rep.summary):
                out.print(literal(line))
            s = rep.summary.get("siamese")
            if s is not None:
                for w in s["warnings"]:
                    out.print(f"[yellow]note:[/] {w}")
        code = emit_report(rep, report, fmt, quiet=quiet)
    raise typer.Exit(code)

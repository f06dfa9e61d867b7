"""camforensics verify: were two sets of photos taken by the same device?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import (
    FormatOpt,
    MaxPixelsOpt,
    QuietOpt,
    ReportOpt,
    DeviceOpt,
    SchedulerOpt,
    WorkersOpt,
    check_format,
    cli_errors,
    emit_report,
    execution_of,
    human_output,
    out,
    progress,
    show_errors,
)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)


def verify(
    set_a: Annotated[Path, typer.Argument(help="Set A: an image or a folder of images.")],
    set_b: Annotated[Path, typer.Argument(help="Set B: an image or a folder of images.")],
    threshold: Annotated[float, typer.Option(help="PCE decision threshold.")] = 60.0,
    sigma0: Annotated[float, typer.Option(help="Denoiser noise std for the set fingerprints (0..255).")] = 3.0,
    rotations: Annotated[str, typer.Option(help="'all' or 'none' (see identify).")] = "all",
    per_image: Annotated[
        bool, typer.Option("--per-image/--no-per-image", help="Also match each image against the other set.")
    ] = True,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
    max_pixels: MaxPixelsOpt = 250_000_000,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Same-device decision from sensor fingerprints: PCE between the fingerprints of set A and set B.

    Works with any number of images per side (more is better: one image against one image is weak evidence).
    """
    with cli_errors():
        check_format(fmt)
        from camforensics.core.params import FingerprintParams, MatchParams, ResidualParams
        from camforensics.pipelines.verify import verify_sets

        match = MatchParams(threshold=threshold, rotations=rotations)
        with progress("verify", quiet=quiet) as hooks:
            rep = verify_sets(
                [set_a],
                [set_b],
                fingerprint_params=FingerprintParams(residual=ResidualParams(sigma0=sigma0)),
                match=match,
                per_image=per_image,
                max_pixels=max_pixels,
                execution=execution_of(workers, scheduler, device),
                tick=hooks.tick,
                on_start=hooks.start,
            )
        if human_output(report, quiet):
            show_errors(rep)
            d = rep.summary["decision"]
            verdict = "[green]SAME device[/]" if d["same_device"] else "[bold]different devices (or too little evidence)[/]"
            out.print(
                f"{verdict}: PCE {d['pce']:.1f} (threshold {d['threshold']:g}, log10 P_FA {d['log10_p_fa']:.1f}, "
                f"rotation {d['rotation']}) from {d['n_images_a']} + {d['n_images_b']} images"
            )
        code = emit_report(rep, report, fmt, quiet=quiet)
    raise typer.Exit(code)

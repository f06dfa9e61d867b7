"""camforensics enroll: build a device fingerprint from reference images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import literal, check_format, cli_errors, emit_report, execution_of, err, human_output, out
from camforensics.cli.common import progress, show_errors
from camforensics.cli.options import DeviceOpt, FormatOpt, MaxPixelsOpt, QuietOpt, ReportOpt, SchedulerOpt, WorkersOpt
from camforensics.cli.common import check_outputs


def register(app: typer.Typer) -> None:
    app.command("enroll")(enroll)


def enroll(
    paths: Annotated[list[Path], typer.Argument(help="Reference images of ONE device: files and/or folders.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Device name in the library, e.g. 'Canon_Ixus70_0'.")],
    library: Annotated[Path, typer.Option("--library", "-l", help="Fingerprint library folder (created if new).")],
    sigma0: Annotated[float, typer.Option(help="Denoiser noise std (0..255 scale); 3 as in Binghamton's code.")] = 3.0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing device of that name.")] = False,
    allow_digital_zoom: Annotated[bool, typer.Option(
        "--allow-digital-zoom", help="Keep references whose EXIF records a digital zoom above 1 (upscaled crops of "
        "the sensor, refused by default: their PRNU is not at the sensor's scale).")] = False,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
    max_pixels: MaxPixelsOpt = 250_000_000,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Estimate a device's sensor fingerprint (PRNU, Chen et al. 2008 MLE) and store it in a library.

    Flat-field images (sky, white walls) give the best fingerprints; 20 or more are recommended. All images must
    be camera originals of one size, not digitally zoomed; others are refused with their reason in the report.
    """
    with cli_errors():
        check_format(fmt)
        from camforensics.core.params import FingerprintParams, ResidualParams
        from camforensics.pipelines.enroll import enroll_device

        params = FingerprintParams(residual=ResidualParams(sigma0=sigma0))
        check_outputs(paths, report=report, folder=library, folder_option="--library")  # before any work
        with progress(f"enroll {name}", quiet=quiet) as hooks:
            rep, entry = enroll_device(
                paths,
                name=name,
                library=library,
                params=params,
                overwrite=overwrite,
                max_pixels=max_pixels,
                allow_digital_zoom=allow_digital_zoom,
                execution=execution_of(workers, scheduler, device),
                tick=hooks.tick,
                on_start=hooks.start,
            )
        if human_output(report, quiet):
            show_errors(rep)
            if entry is not None:
                h, w = entry.shape
                rel = (entry.meta.get("reliability") or {}).get("reliability")
                quality = "" if rel is None else f", split-half reliability {rel:.3f}"
                out.print(
                    f"enrolled [bold]{entry.name}[/]: {entry.meta['n_images']} images of {w}x{h}{quality}, "
                    f"fingerprint sha256 {entry.fingerprint_sha256[:16]}..., in {library}"
                )
        if entry is not None and not quiet:
            from camforensics.cli.render import enroll_warnings

            rel = (entry.meta.get("reliability") or {}).get("reliability")
            for note in enroll_warnings(int(entry.meta["n_images"]), rel):
                err.print(f"[yellow]warning:[/] {literal(note)}")
        code = emit_report(rep, report, fmt, quiet=quiet)
        if entry is None:
            err.print("[red]nothing enrolled:[/] no input image could be used")
            raise typer.Exit(2)
    raise typer.Exit(code)

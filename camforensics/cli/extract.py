"""camforensics extract: noise residuals as arrays and pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from camforensics.errors import CamforensicsError

from camforensics.cli.common import err, check_format, cli_errors, emit_report, execution_of, human_output, journal_for, out
from camforensics.cli.common import progress, report_target, resume_hint, show_errors
from camforensics.cli.options import DeviceOpt, FormatOpt, MaxPixelsOpt, QuietOpt, ReportOpt, ResumeOpt, SchedulerOpt
from camforensics.cli.options import WorkersOpt
from camforensics.cli.common import check_outputs, literal, one_photo_here, read_ahead


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)


def extract(
    paths: Annotated[list[Path], typer.Argument(help="Images: files and/or folders.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the residual files.")],
    sigma0: Annotated[float, typer.Option(help="Denoiser noise std (0..255 scale).")] = 2.0,
    enhance: Annotated[bool, typer.Option("--enhance/--no-enhance", help="Li's enhanced SPN (alpha 7).")] = False,
    arrays: Annotated[bool, typer.Option("--npy/--no-npy", help="Write the float32 residual as .npy.")] = True,
    pictures: Annotated[bool, typer.Option("--png/--no-png", help="Write residual and spectrum PNGs.")] = True,
    model_spectra: Annotated[
        Path | None,
        typer.Option(
            "--model-spectra",
            help="Also write this PNG: the mean residual spectrum of each camera model (EXIF), side by side.",
        ),
    ] = None,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
    max_pixels: MaxPixelsOpt = 250_000_000,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    device: DeviceOpt = "auto",
    resume: ResumeOpt = False,
) -> None:
    """Write each image's PRNU noise residual W (.npy) and pictures of W and of its spectrum (dB, JPEG and CFA
    frequencies marked); with --model-spectra, the mean spectrum of each camera model side by side."""
    with cli_errors():
        check_format(fmt)
        target = report_target(report, "extract", fmt)
        if model_spectra is not None and not arrays:
            raise CamforensicsError("--model-spectra averages the residuals written as .npy: drop --no-npy")
        spectra_files = [("--model-spectra", model_spectra)] if model_spectra is not None else []
        check_outputs(paths, report=target, folder=output, files=spectra_files)  # before any work
        from camforensics.core.figures import drawing_process_started

        # it forks (before any thread): matplotlib imported there, beside the residual; closed after the run
        with drawing_process_started(pictures and one_photo_here(paths, workers=workers, scheduler=scheduler, resume=resume)):
            from camforensics.core.params import ResidualParams

            from camforensics.accel import resolve_device

            params = ResidualParams(sigma0=sigma0, enhance_alpha=7.0 if enhance else None)
            # decoded, and its residual computed (numpy engine), beside the imports
            read_ahead(paths, max_pixels=max_pixels, workers=workers, scheduler=scheduler, resume=resume,
                       residual=params if resolve_device(device) == "cpu" else None)  # fmt: skip
            from camforensics.pipelines.extract import extract_residuals

            execution = execution_of(workers, scheduler, device)

            journal = journal_for(target, resume=resume, given=report is not None)
            with progress("extract", quiet=quiet) as hooks, resume_hint(journal):
                rep = extract_residuals(
                    paths,
                    output,
                    params=params,
                    save_arrays=arrays,
                    save_pictures=pictures,
                    max_pixels=max_pixels,
                    execution=execution,
                    journal=journal,
                    resume=resume,
                    tick=hooks.tick,
                    on_start=hooks.start,
                )
            if model_spectra is not None:
                from camforensics.pipelines.extract import model_spectra_figure
                from camforensics.reports.atomic import atomic_write_bytes

                atomic_write_bytes(model_spectra, model_spectra_figure(rep))
                if not quiet:
                    err.print(f"mean spectra per camera model: {literal(model_spectra)}")
            if human_output(report, quiet):
                show_errors(rep)
                from camforensics.cli.render import summary_line

                out.print(f"{summary_line(rep.n_inputs, [(rep.summary['n_ok'], 'extracted')], rep.n_failed)}; written to {literal(output)}")
        code = emit_report(rep, target, fmt, quiet=quiet)
    raise typer.Exit(code)

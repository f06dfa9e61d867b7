"""camforensics profile: a camera model's traces (CFA and demosaicing filters, JPEG tables, residual spectrum, mean
noise pattern) from >= 8 of its photos, written as one profile file that ``anonymize --target FILE`` transplants."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import check_format, check_outputs, cli_errors, emit_report, human_output, literal, out
from camforensics.cli.common import progress, report_target, show_errors
from camforensics.cli.options import FormatOpt, MaxPixelsOpt, QuietOpt, ReportOpt


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)


def profile(
    paths: Annotated[list[Path], typer.Argument(help="Photos of one camera model: files and/or folders (>= 8).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The profile file to write (.npz).")],
    name: Annotated[
        str | None, typer.Option(help="Camera model, 'MAKE MODEL' (default: the photos' common EXIF make and model).")
    ] = None,
    min_photos: Annotated[int, typer.Option(help="Fewest usable photos accepted.")] = 8,
    fit_stride: Annotated[
        int, typer.Option(help="Every n-th CFA site of each phase enters the demosaicing fit (1: all; speed).")
    ] = 4,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
    max_pixels: MaxPixelsOpt = 250_000_000,
) -> None:
    """Build a camera-model profile (the target of 'anonymize --method transplant --target FILE')."""
    with cli_errors():
        check_format(fmt)
        from camforensics.errors import ParameterError
        from camforensics.pipelines.profile import ProfileParams, profile_photos

        if min_photos < 1:
            raise ParameterError(f"--min-photos must be >= 1, got {min_photos}")
        if fit_stride < 1:
            raise ParameterError(f"--fit-stride must be >= 1, got {fit_stride}")
        target = report_target(report, "profile", fmt)
        check_outputs(paths, report=target, files=[("--output", output)])  # before any work
        if output.suffix != ".npz":
            raise ParameterError(f"--output {output}: a profile file ends in .npz")
        params = ProfileParams(name=name, max_pixels=max_pixels, min_photos=min_photos, fit_stride=fit_stride)
        with progress("profile", quiet=quiet) as hooks:
            rep = profile_photos(paths, output, params=params, on_start=hooks.start, tick=hooks.tick)
        if human_output(report, quiet):
            show_errors(rep)
            p = rep.summary["profile"]
            out.print(
                f"profile of {literal(p['name'])} from {p['n_photos']} photos: CFA {p['layout']}, JPEG "
                f"{p['jpeg_subsampling']}, sha256 {p['sha256'][:16]}... written to {literal(output)}"
            )
        code = emit_report(rep, target, fmt, quiet=quiet)
    raise typer.Exit(code)

"""camforensics anonymize: remove a device's sensor fingerprint, imitate another device, or apply a baseline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from camforensics.cli.common import (
    FormatOpt,
    MaxPixelsOpt,
    QuietOpt,
    ReportOpt,
    WorkersOpt,
    check_format,
    cli_errors,
    emit_report,
    execution_of,
    human_output,
    out,
    progress,
    report_target,
    show_errors,
)

if TYPE_CHECKING:
    from camforensics.reports.report import Report

METHOD_HELP = (
    "remove-fingerprint (subtract the enrolled fingerprint of --remove-fingerprint), spoof (plant the fingerprint "
    "of --spoof-device), or a baseline: median, gaussian (--kernel), jpeg (--recompress-quality), denoise "
    "(wavelet Wiener, --denoise-sigma0)."
)


def register(app: typer.Typer) -> None:
    app.command("anonymize")(anonymize)


def anonymize(
    paths: Annotated[list[Path], typer.Argument(help="Images: files and/or folders (walked recursively).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the anonymized images.")],
    method: Annotated[str, typer.Option("--method", "-m", help=METHOD_HELP)],
    remove_fingerprint: Annotated[
        str | None,
        typer.Option(
            "--remove-fingerprint",
            help="LIB:DEVICE whose fingerprint is removed (remove-fingerprint; with spoof: removed before planting).",
            show_default=False,
        ),
    ] = None,
    spoof_device: Annotated[
        str | None,
        typer.Option("--spoof-device", help="LIB:DEVICE whose fingerprint is planted (spoof).", show_default=False),
    ] = None,
    strength: Annotated[
        float | None,
        typer.Option(help="Spoof: fixed strength beta of J(1 + beta K); default: fitted to --target-pce.", show_default=False),
    ] = None,
    target_pce: Annotated[float, typer.Option(help="Spoof: PCE against the target that the fitted strength aims at.")] = 120.0,
    overshoot: Annotated[
        float, typer.Option(help="Removal: multiply the fitted alpha (1 aims at zero correlation with the device).")
    ] = 1.0,
    kernel: Annotated[int, typer.Option(help="median / gaussian: window side (odd).")] = 5,
    recompress_quality: Annotated[int, typer.Option(help="jpeg: quality of the re-compression (1-100).")] = 75,
    denoise_sigma0: Annotated[float, typer.Option(help="denoise: noise std of the wavelet Wiener filter (0..255).")] = 3.0,
    library_check: Annotated[
        bool,
        typer.Option(
            "--library-check/--no-library-check",
            help="Measure the PCE of input and output against the removed device and the spoof target.",
        ),
    ] = True,
    verify_library: Annotated[
        Path | None,
        typer.Option(
            "--verify-library",
            help="Also measure input and output against every fitting device of this library.",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[float, typer.Option(help="PCE decision threshold of the checks.")] = 60.0,
    sigma0: Annotated[float, typer.Option(help="Denoiser noise std of the detector residual (0..255).")] = 2.0,
    image_format: Annotated[str, typer.Option("--image-format", help="Output files: png (lossless) or jpeg.")] = "png",
    quality: Annotated[int, typer.Option(help="JPEG quality of the written images (--image-format jpeg).")] = 95,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
    max_pixels: MaxPixelsOpt = 250_000_000,
    workers: WorkersOpt = None,
) -> None:
    """Write anonymized copies of images: a device's PRNU fingerprint removed, another device's planted
    (fingerprint-copy attack), or a classical baseline applied. Each output's PSNR and SSIM against its input and
    the PCE of input and output against the devices involved are reported. Inputs are never written; outputs
    carry no metadata.
    """
    with cli_errors():
        check_format(fmt)
        from camforensics.core.anonymize import PlantParams, RemovalParams
        from camforensics.core.params import ResidualParams
        from camforensics.pipelines.anonymize import AnonymizeParams, DeviceRef, anonymize_images

        params = AnonymizeParams(
            method=method,
            remove=DeviceRef.parse(remove_fingerprint) if remove_fingerprint else None,
            spoof=DeviceRef.parse(spoof_device, option="--spoof-device") if spoof_device else None,
            removal=RemovalParams(overshoot=overshoot, residual=ResidualParams(sigma0=sigma0)),
            plant=PlantParams(target_pce=target_pce, residual=ResidualParams(sigma0=sigma0)),
            strength=strength,
            kernel=kernel,
            recompress_quality=recompress_quality,
            denoise_sigma0=denoise_sigma0,
            image_format=image_format,
            quality=quality,
            check=library_check,
            verify_library=str(verify_library) if verify_library is not None else None,
            residual=ResidualParams(sigma0=sigma0),
            threshold=threshold,
            max_pixels=max_pixels,
        )
        target = report_target(report, "anonymize", fmt)
        with progress("anonymize", quiet=quiet) as hooks:
            rep = anonymize_images(
                paths,
                output,
                params=params,
                execution=execution_of(workers, None, "cpu"),
                tick=hooks.tick,
                on_start=hooks.start,
            )
        if human_output(report, quiet):
            _table(rep)
            show_errors(rep)
            out.print(f"{rep.summary['n_ok']} anonymized images written to {output}")
        code = emit_report(rep, target, fmt, quiet=quiet)
    raise typer.Exit(code)


def _pce(check: dict | None) -> str:
    if not check:
        return ""
    return f"{check['pce_before']:.0f} -> {check['pce_after']:.0f}"


def _table(rep: Report) -> None:
    from rich.table import Table

    table = Table(title=f"anonymize ({rep.parameters['method']})")
    for col in ("input", "output", "PSNR dB", "SSIM", "PCE removed", "PCE target"):
        table.add_column(col)
    for r in rep.iter_results():
        if r["status"] != "ok":
            continue
        q = r["quality"]
        value = q["psnr"]
        table.add_row(
            Path(r["input"]["path"]).name,
            Path(r["output"]["path"]).name,
            value if isinstance(value, str) else f"{value:.1f}",
            f"{q['ssim']:.4f}",
            _pce(r.get("removed_device")),
            _pce(r.get("target_device")),
        )
    out.print(table)

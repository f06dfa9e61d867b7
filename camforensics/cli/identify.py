"""camforensics identify: which enrolled device took each image?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import check_format, cli_errors, emit_report, execution_of, human_output, journal_for, out
from camforensics.cli.common import progress, report_target, resume_hint, show_errors
from camforensics.cli.options import DeviceOpt, FormatOpt, MaxPixelsOpt, ModelsDirOpt, QuietOpt, ReportOpt, ResumeOpt
from camforensics.cli.options import SchedulerOpt, WorkersOpt, CROP_ANCHOR_HELP, ROTATIONS_HELP, SCALES_HELP
from camforensics.cli.options import SHIFT_RANGE_HELP, match_params_of
from camforensics.cli.common import check_outputs, err, literal

MAX_TABLE_ROWS = 50  # a terminal table is a preview; the report has every row


MODEL_HELP = (
    "Camera-model attributor or panel to run beside PRNU (see 'camforensics models list'); default: the "
    "registry's default panel, else its default attributor."
)


def register(app: typer.Typer) -> None:
    app.command("identify")(identify)


def identify(
    paths: Annotated[list[Path], typer.Argument(help="Query images: files and/or folders (walked recursively).")],
    library: Annotated[
        Path | None, typer.Option("--library", "-l", help="Fingerprint library folder (PRNU device identification).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help=MODEL_HELP)] = None,
    no_model: Annotated[bool, typer.Option("--no-model", help="PRNU only: no camera-model attribution.")] = False,
    signatures: Annotated[
        Path | None,
        typer.Option(
            "--signatures",
            help="JPEG coding-signature table ('camforensics signatures build'); default: the shipped "
            "jpeg-signatures.json of the models folder, when there is one (not with --no-model).",
        ),
    ] = None,
    no_signatures: Annotated[
        bool, typer.Option("--no-signatures", help="Do not match JPEG coding signatures.")
    ] = False,
    models_dir: ModelsDirOpt = None,
    patches: Annotated[
        int | None, typer.Option(help="Patches per image for model attribution (default: the model's own).")
    ] = None,
    top_k: Annotated[int, typer.Option(help="Camera models listed per image.")] = 3,
    model_threads: Annotated[int, typer.Option(help="onnxruntime threads (0 = all cores; 1 per worker process).")] = 0,
    threshold: Annotated[float, typer.Option(help="PCE decision threshold.")] = 60.0,
    sigma0: Annotated[float, typer.Option(help="Denoiser noise std for queries (0..255); 2 as in Binghamton.")] = 2.0,
    rotations: Annotated[str, typer.Option(help=ROTATIONS_HELP)] = "all",
    shift_range: Annotated[str, typer.Option(help=SHIFT_RANGE_HELP)] = "0",
    crop_anchor: Annotated[str, typer.Option(help=CROP_ANCHOR_HELP)] = "any",
    scales: Annotated[str, typer.Option(help=SCALES_HELP)] = "1",
    enhance: Annotated[
        bool, typer.Option("--enhance/--no-enhance", help="Li's enhanced SPN (alpha 7) on query residuals.")
    ] = False,
    exhaustive: Annotated[
        bool,
        typer.Option(
            "--exhaustive", help="Full PCE against every fitting fingerprint (no digest prefilter for large libraries)."
        ),
    ] = False,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
    max_pixels: MaxPixelsOpt = 250_000_000,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    device: DeviceOpt = "auto",
    resume: ResumeOpt = False,
) -> None:
    """Match every image against the library's fingerprints by PCE and name the device above the threshold;
    attribute its camera model with a deep model (top-k, open-set 'unknown', EXIF consistency).

    Pixels are used in stored sensor order (never rotated by EXIF); the rotations whose size fits a fingerprint
    are tried and the best is reported, with its false-alarm probability corrected for what was searched. An image
    smaller than a fingerprint is searched as a crop over every offset (and the --scales given); its threshold
    rises with the number of hypotheses searched, and the offset found is reported.
    """
    with cli_errors():
        check_format(fmt)
        from camforensics.core.params import ResidualParams
        from camforensics.pipelines.identify import identify_images, model_choice
        from camforensics.pipelines.search import SearchParams
        from camforensics.pipelines.signatures import default_table_path

        table = None
        if not no_signatures:  # --no-model (PRNU only) drops the shipped table too, unless --signatures names one
            table = signatures if signatures is not None else default_table_path(models_dir)
            if signatures is None and (no_model or not table.is_file()):
                table = None

        chosen = (
            None
            if no_model
            else model_choice(
                model,
                models_dir,
                patches=patches,
                top_k=top_k,
                threads=model_threads,
                device=device,
                required=library is None,
            )
        )

        match = match_params_of(threshold, rotations, shift_range, crop_anchor, scales)
        residual = ResidualParams(sigma0=sigma0, enhance_alpha=7.0 if enhance else None)
        target = report_target(report, "identify", fmt)
        check_outputs([*paths, *([library] if library else [])], report=target)  # before any work; the library is an input
        journal = journal_for(target, resume=resume, given=report is not None)
        with progress("identify", quiet=quiet) as hooks, resume_hint(journal):
            rep = identify_images(
                paths,
                library=library,
                model=chosen,
                signatures=table,
                residual_params=residual,
                match=match,
                search=SearchParams(prefilter="off" if exhaustive else "auto"),
                max_pixels=max_pixels,
                execution=execution_of(workers, scheduler, device),
                journal=journal,
                resume=resume,
                tick=hooks.tick,
                on_start=hooks.start,
            )
        for skipped in rep.context.get("library", {}).get("skipped_entries", []):
            err.print(f"[yellow]warning:[/] library entry {literal(skipped['name'])} left out: {literal(skipped['reason'])}")
        if human_output(report, quiet):
            _table(rep)
            show_errors(rep)
        code = emit_report(rep, target, fmt, quiet=quiet)
    raise typer.Exit(code)


def _table(rep) -> None:  # noqa: ANN001 - a Report
    from rich.table import Table

    prnu = "match" in rep.parameters
    models = "attribution" in rep.parameters
    title = "identify"
    if prnu:
        title += f": PCE threshold {rep.parameters['match']['threshold']:g}"
    if models:
        title += f"{';' if prnu else ':'} model {rep.parameters['attribution']['model']}"
    table = Table(title=title, title_justify="left")
    numeric = ("PCE", "threshold", "rot", "log10 P_FA", "2nd PCE", "p")
    cols = ["image"]
    if prnu:
        cols += ["decision", "top device", "PCE", "threshold", "rot", "where", "log10 P_FA", "2nd PCE"]
    if models:
        cols += ["camera model", "p", "EXIF"]
    for col in cols:
        table.add_column(col, justify="right" if col in numeric else "left")
    n_ok = rep.n_inputs - rep.n_failed
    ok = (r for r in rep.iter_results() if r["status"] == "ok")
    for _, r in zip(range(MAX_TABLE_ROWS), ok):
        row = [literal(Path(r["input"]["path"]).name)]
        if prnu:
            d, cands = r.get("decision"), r.get("candidates") or []
            if d is None:
                row += ["[dim]size fits no fingerprint[/]", "-", "-", "-", "-", "-", "-", "-"]
            else:
                verdict = "[green]match[/]" if d["match"] else "no match"
                if d["ambiguous"]:
                    verdict = "[yellow]ambiguous[/]"
                second = f"{cands[1]['pce']:.1f}" if len(cands) > 1 else "-"
                rot = f"{d['rotation']}{'m' if d.get('mirrored') else ''}"
                where = "aligned"
                if d.get("crop_offset") is not None:
                    where = f"crop at {d['crop_offset'][0]},{d['crop_offset'][1]}"
                    if d.get("scale", 1.0) != 1.0:
                        where += f" x{d['scale']:g}"
                row += [
                    verdict,
                    cands[0]["device"],
                    f"{d['pce']:.1f}",
                    f"{d['threshold']:.1f}",
                    rot,
                    where,
                    f"{d['log10_p_fa']:.1f}",
                    second,
                ]
        if models:
            a = r["model_attribution"]
            top = a["top_k"][0]
            name = "[yellow]unknown[/] (" + top["model"] + "?)" if a["decision"]["unknown"] else top["model"]
            combined = r.get("camera_model")
            if combined is not None and combined["unknown"] and not a["decision"]["unknown"]:
                name = "[yellow]unknown[/] (" + top["model"] + "? JPEG tables disagree)"
            consistent = a["exif"]["consistent"]
            exif = "-" if consistent is None else ("agrees" if consistent else "[red]disagrees[/]")
            row += [name, f"{top['probability']:.2f}", exif]
        table.add_row(*row)
    if n_ok > MAX_TABLE_ROWS:
        table.caption = f"{n_ok - MAX_TABLE_ROWS} more rows in the report"
    out.print(table)
    _sentences(rep)


def _sentences(rep) -> None:  # noqa: ANN001 - a Report
    """What the EXIF check and the JPEG coding signature say, one sentence each per image, in plain words."""
    ok = (r for r in rep.iter_results() if r["status"] == "ok")
    for _, r in zip(range(MAX_TABLE_ROWS), ok):
        name = Path(r["input"]["path"]).name
        a = r.get("model_attribution")
        if a is not None and a["exif"]["consistent"] is not None:
            colour = "green" if a["exif"]["consistent"] else "red"
            out.print(f"{name}: [{colour}]{a['exif']['note']}[/].")
        sig = r.get("jpeg_signature")
        if sig is not None:
            colour = "red" if sig.get("resaved", {}).get("flag") else ("yellow" if sig.get("known") is False else "dim")
            out.print(f"{name}: [{colour}]JPEG {sig['note']}[/].")

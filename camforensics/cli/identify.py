"""camforensics identify: which enrolled device took each image?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import check_format, cli_errors, emit_report, execution_of, human_output, journal_for, out
from camforensics.cli.common import progress, report_target, resume_hint, show_errors
from camforensics.cli.options import DeviceOpt, FormatOpt, MaxPixelsOpt, ModelsDirOpt, QuietOpt, ReportOpt, ResumeOpt
from camforensics.cli.options import SchedulerOpt, WorkersOpt, CROP_ANCHOR_HELP, ROTATIONS_HELP, SCALES_HELP
from camforensics.cli.options import SHIFT_RANGE_HELP, WideOpt, match_params_of
from camforensics.cli.common import check_outputs, err, literal, read_ahead

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
    sibling_notch: Annotated[
        int,
        typer.Option(
            "--sibling-notch",
            min=0,
            help="Fourier bins next to the axes zeroed in the fingerprints of camera models the library holds more "
            "than once (their shared row/column patterns); 0: off.",
        ),
    ] = 2,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
    max_pixels: MaxPixelsOpt = 250_000_000,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    device: DeviceOpt = "auto",
    resume: ResumeOpt = False,
    wide: WideOpt = False,
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
        target = report_target(report, "identify", fmt)
        check_outputs([*paths, *([library] if library else [])], report=target)  # before any work; the library is an input
        from camforensics.core.params import ResidualParams
        from camforensics.pipelines.model_choice import model_choice

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
        if chosen is not None:
            chosen.verify()  # a changed model file is refused before any image is read
        match = match_params_of(threshold, rotations, shift_range, crop_anchor, scales)
        residual = ResidualParams(sigma0=sigma0, enhance_alpha=7.0 if enhance else None)
        from camforensics.accel import resolve_device

        # decoded, and its residual computed (numpy engine), beside the imports and the setup (library, model
        # sessions, attribution)
        ahead = residual if library is not None and resolve_device(device) == "cpu" else None
        read_ahead(paths, max_pixels=max_pixels, workers=workers, scheduler=scheduler, resume=resume, prefault=False,
                   residual=ahead)  # fmt: skip
        from camforensics.pipelines.identify import identify_images

        execution = execution_of(workers, scheduler, device)
        from camforensics.pipelines.search import SearchParams
        from camforensics.pipelines.signatures import default_table_path

        table = None
        if not no_signatures:  # --no-model (PRNU only) drops the shipped table too, unless --signatures names one
            table = signatures if signatures is not None else default_table_path(models_dir)
            if signatures is None and (no_model or not table.is_file()):
                table = None

        journal = journal_for(target, resume=resume, given=report is not None)
        with progress("identify", quiet=quiet) as hooks, resume_hint(journal):
            rep = identify_images(
                paths,
                library=library,
                model=chosen,
                signatures=table,
                residual_params=residual,
                match=match,
                search=SearchParams(prefilter="off" if exhaustive else "auto", sibling_notch=sibling_notch),
                max_pixels=max_pixels,
                execution=execution,
                journal=journal,
                resume=resume,
                tick=hooks.tick,
                on_start=hooks.start,
            )
        for skipped in rep.context.get("library", {}).get("skipped_entries", []):
            err.print(f"[yellow]warning:[/] library entry {literal(skipped['name'])} left out: {literal(skipped['reason'])}")
        if human_output(report, quiet):
            _table(rep, wide=wide)
            show_errors(rep)
        code = emit_report(rep, target, fmt, quiet=quiet)
    raise typer.Exit(code)


def _table(rep, *, wide: bool) -> None:  # noqa: ANN001 - a Report
    from camforensics.cli.render import Column, exif_sentence, p_fa_words, prnu_verdict, rotation_words
    from camforensics.cli.render import show_table, summary_line, where_words

    prnu = "match" in rep.parameters
    models = "attribution" in rep.parameters
    title = "identify"
    if prnu:
        title += f": same camera when PCE > {rep.parameters['match']['threshold']:g}"
    if models:
        title += f"{';' if prnu else ':'} camera model by {rep.parameters['attribution']['model']}"

    def dec(r: dict) -> dict:
        return r.get("decision") or {}

    def cand(r: dict, i: int) -> dict:
        c = r.get("candidates") or []
        return c[i] if len(c) > i else {}

    num = lambda v, f="{:.1f}": "-" if v is None else f.format(v)  # noqa: E731
    cols = [Column("photo", lambda r: Path(r["input"]["path"]).name, wraps=True)]
    if prnu:
        cols += [
            Column("verdict", lambda r: prnu_verdict(r.get("decision"))),
            Column("device", lambda r: (dec(r).get("device") if dec(r).get("match") else cand(r, 0).get("device")) or "-", wraps=True),
            Column("PCE", lambda r: num(dec(r).get("pce")), numeric=True),
            Column("threshold", lambda r: num(dec(r).get("threshold")), numeric=True, wide_only=True),
            Column("false alarm", lambda r: p_fa_words(dec(r).get("log10_p_fa")) if dec(r) else "-", wide_only=True),
            Column("rotation", lambda r: rotation_words(dec(r)) if dec(r) else "-", wide_only=True),
            Column("position", lambda r: where_words(dec(r)) if dec(r) else "-", wide_only=True),
            Column("runner-up PCE", lambda r: num(cand(r, 1).get("pce")), numeric=True, wide_only=True),
        ]
    if models:
        cols += [
            Column("model lead", _lead, wraps=True),
            Column("p", lambda r: f"{r['model_attribution']['top_k'][0]['probability']:.2f}", numeric=True, wide_only=True),
            Column("decided by", lambda r: "+".join(r.get("camera_model", {}).get("by") or ["cnn"]), wide_only=True),
            Column("EXIF", lambda r: _exif_word(_exif_view(r)), wide_only=True),
        ]
    n_ok = rep.n_inputs - rep.n_failed
    ok = [r for _, r in zip(range(MAX_TABLE_ROWS), (r for r in rep.iter_results() if r["status"] == "ok"))]
    caption = f"{n_ok - MAX_TABLE_ROWS} more rows in the report" if n_ok > MAX_TABLE_ROWS else None
    if models and caption is None and any(_lead(r).endswith("?") for r in ok):
        caption = "model lead with ?: unknown (possibly a model the attributor was not trained on)"
    show_table(title, cols, ok, wide=wide, caption=caption)
    if models:
        for r in ok:
            name = literal(Path(r["input"]["path"]).name)
            combined = r.get("camera_model")
            if combined is not None:
                out.print(f"{name}: camera model: {literal(_verdict_sentence(combined))}")
            judged = _exif_view(r)
            sentence = exif_sentence(judged)
            if judged.get("exif", {}).get("consistent") is False and sentence:
                out.print(f"{name}: {literal(sentence)}")
    for r in ok:  # the JPEG coding signature, when it says something: a re-saved file, or tables no known camera wrote
        sig = r.get("jpeg_signature")
        if sig is not None and (sig.get("resaved", {}).get("flag") or sig.get("known") is False):
            out.print(f"{literal(Path(r['input']['path']).name)}: JPEG {literal(sig['note'])}.")
    counts = _counts(rep) if prnu else [(n_ok, "attributed")]
    out.print(summary_line(rep.n_inputs, counts, rep.n_failed))


CUE_WORDS = {
    ("cnn",): "the CNN alone",
    ("jpeg_signature",): "the JPEG signature",
    ("cnn", "jpeg_signature"): "the CNN among the cameras of the JPEG signature",
}


def _lead(r: dict) -> str:
    """The decision's lead: the fused camera model where there is one (``?`` when it says unknown), else the
    attributor's own."""
    from camforensics.cli.render import model_lead

    combined = r.get("camera_model")
    if combined is None:
        return model_lead(r["model_attribution"])
    return combined["top"] + ("?" if combined["unknown"] else "")


def _verdict_sentence(combined: dict) -> str:
    """The fused decision in words, naming the cues that decided."""
    cues = CUE_WORDS.get(tuple(combined.get("by") or ()), " + ".join(combined.get("by") or ()))
    return f"{combined['note']} (decided by {cues})."


def _exif_view(r: dict) -> dict:
    """What the EXIF sentence judges: the fused decision where there is one, else the attributor's."""
    combined = r.get("camera_model")
    if combined is None:
        return r["model_attribution"]
    return {"exif": combined["exif"], "top_k": [{"model": combined["top"]}], "decision": {"unknown": combined["unknown"]}}


def _exif_word(attribution: dict) -> str:
    consistent = (attribution.get("exif") or {}).get("consistent")
    return {True: "agrees", False: "disagrees", None: "cannot tell"}[consistent]


def _counts(rep) -> list[tuple[int, str]]:  # noqa: ANN001 - a Report
    matched = unmatched = ambiguous = unfit = 0
    for r in rep.iter_results():
        if r["status"] != "ok":
            continue
        d = r.get("decision")
        if d is None:
            unfit += 1
        elif d.get("ambiguous"):
            ambiguous += 1
        elif d.get("match"):
            matched += 1
        else:
            unmatched += 1
    counts = [(matched, "matched"), (unmatched, "no match")]
    if ambiguous:
        counts.append((ambiguous, "ambiguous"))
    if unfit:
        counts.append((unfit, "fit no fingerprint"))
    return counts

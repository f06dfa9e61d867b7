"""camforensics cluster: which photos of a folder share a device, with no reference images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import check_format, check_outputs, cli_errors, emit_report, execution_of, human_output
from camforensics.cli.common import journal_for, literal, out, progress, report_target, resume_hint, show_errors
from camforensics.cli.options import FormatOpt, MaxPixelsOpt, QuietOpt, ReportOpt, ResumeOpt, SchedulerOpt
from camforensics.cli.options import WorkersOpt

MAX_TABLE_ROWS = 30  # a terminal table is a preview; the report has every cluster


def register(app: typer.Typer) -> None:
    app.command("cluster")(cluster)


def cluster(
    paths: Annotated[list[Path], typer.Argument(help="Photos to group: files and/or folders (searched recursively).")],
    p_fa: Annotated[
        float, typer.Option("--p-fa", help="Probability of any false merge of two devices (each photo's measured null, Bonferroni).")
    ] = 1e-3,
    crop: Annotated[int, typer.Option("--crop", min=64, help="Side of the common central crop compared (pixels).")] = 1024,
    prefilter: Annotated[
        str,
        typer.Option(
            "--prefilter",
            help="auto|on|off: compare exactly only the candidate pairs of 1-bit sign digests (memory without the "
            "n x n matrix); auto: on past 4096 photos of one size.",
        ),
    ] = "auto",
    sigma0: Annotated[float, typer.Option(help="Denoiser noise std (0..255 scale).")] = 2.0,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="Folder of the residual rows (default: REPORT.residuals beside the report; kept for --resume, "
            "emptied after the report is written).",
            show_default=False,
        ),
    ] = None,
    enroll: Annotated[
        Path | None,
        typer.Option("--enroll", help="Enroll each cluster of 2+ photos into this fingerprint library.", show_default=False),
    ] = None,
    report: ReportOpt = None,
    resume: ResumeOpt = False,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    max_pixels: MaxPixelsOpt = 250_000_000,
) -> None:
    """Group photos by source sensor with no reference images and no number of devices (blind PRNU clustering).

    Photos of one sensor size (up to a quarter turn) are compared on a common central crop: the normalised
    correlation of their residuals (spectral peaks cut, local energy evened), every score divided by the null
    spread measured for each photo. Clusters are merged while their fingerprints correlate beyond a threshold
    set by --p-fa; each photo is then re-assigned to the cluster whose fingerprint matches it best, the photos
    still alone are tested against the clusters, and a photo that matches none stays alone. Past 4096 photos
    (--prefilter) only candidate pairs from 1-bit digests are scored exactly. The report lists each cluster's
    photos, each photo's score to its cluster and the scores between clusters.
    """
    with cli_errors():
        check_format(fmt)
        from camforensics.core.cluster import ClusterParams
        from camforensics.core.params import ResidualParams
        from camforensics.pipelines.cluster import cluster_photos, store_for

        params = ClusterParams(p_fa=p_fa, crop=crop, prefilter=prefilter)
        residual = ResidualParams(sigma0=sigma0)
        target = report_target(report, "cluster", fmt)
        folder = store if store is not None else (store_for(target) if str(target) != "-" else Path(".camforensics_cluster.residuals"))
        check_outputs(paths, report=target, folder=folder, folder_option="--store")  # before any work
        if enroll is not None:
            check_outputs(paths, folder=enroll, folder_option="--enroll")
        journal = journal_for(target, resume=resume, given=report is not None)
        with progress("cluster", quiet=quiet) as hooks, resume_hint(journal):
            rep = cluster_photos(
                paths,
                store=folder,
                params=params,
                residual_params=residual,
                max_pixels=max_pixels,
                execution=execution_of(workers, scheduler, "cpu"),  # residuals on the numpy engine
                journal=journal,
                resume=resume,
                enroll=enroll,
                tick=hooks.tick,
                on_start=hooks.start,
            )
        if human_output(report, quiet):
            _table(rep)
            show_errors(rep)
        code = emit_report(rep, target, fmt, quiet=quiet)
        from camforensics.pipelines.cluster import empty_store

        empty_store(folder)
    raise typer.Exit(code)


def _table(rep) -> None:  # noqa: ANN001 - a Report
    for name, group in rep.context.get("clusters", {}).items():
        out.print(
            f"[bold]{name}[/]: {group['n_photos']} photos -> {group['n_clusters']} clusters "
            f"({group['n_clusters'] - group['n_singletons']} of 2+ photos, {group['n_singletons']} alone); "
            f"merge threshold z > {group['threshold_z']:.2f} (p_fa {rep.parameters['cluster']['p_fa']:g})"
        )
        for c in group["clusters"][:MAX_TABLE_ROWS]:
            if c["n_photos"] < 2:
                continue
            names = ", ".join(literal(Path(p["path"]).name) for p in c["photos"][:4])
            more = f" (+{c['n_photos'] - 4})" if c["n_photos"] > 4 else ""
            out.print(f"  cluster {c['cluster']}: {c['n_photos']} photos: {names}{more}")

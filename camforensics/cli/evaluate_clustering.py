"""camforensics evaluate clustering: a cluster report against the true devices (registered into the ``evaluate``
group by :mod:`camforensics.cli.evaluate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import check_format, check_outputs, cli_errors, emit_report, human_output, out
from camforensics.cli.common import report_target, show_errors
from camforensics.cli.options import FormatOpt, QuietOpt, ReportOpt


def evaluate_clustering_cmd(
    cluster_report: Annotated[Path, typer.Argument(help="Report (json or jsonl) of camforensics cluster.")],
    truth: Annotated[
        list[Path], typer.Option("--truth", "-t", help="Data set folder(s) holding the clustered photos (repeatable).")
    ],
    layout: Annotated[str, typer.Option("--layout", help="Layout of the truth folders: auto, dresden, vision, kaggle, generic.")] = "auto",
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
) -> None:
    """Measure a cluster report against the true devices: adjusted Rand index, purity, devices found vs true,
    bodies merged and same-model bodies kept apart."""
    with cli_errors():
        check_format(fmt)
        from camforensics.pipelines.evaluate_clustering import evaluate_clustering

        target = report_target(report, "evaluate", fmt)
        check_outputs([cluster_report, *truth], report=target)
        rep = evaluate_clustering(cluster_report, truth, layout=layout)
        if human_output(report, quiet):
            s = rep.summary
            if s.get("n_photos"):
                out.print(
                    f"clustering of {s['n_photos']} photos of {s['n_true_devices']} devices: ARI "
                    f"{s['adjusted_rand_index']:.4f}, purity {s['purity']:.4f}, inverse purity {s['inverse_purity']:.4f}, "
                    f"{s['n_clusters_2plus']} clusters of 2+ photos and {s['n_singletons']} alone; "
                    f"{len(s['merged_bodies'])} clusters mix devices"
                )
            show_errors(rep)
        code = emit_report(rep, target, fmt, quiet=quiet)
    raise typer.Exit(code)

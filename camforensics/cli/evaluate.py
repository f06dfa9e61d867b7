"""camforensics evaluate: accuracy, confusion matrices and ROC / AUC / EER of identify and verify reports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from camforensics.cli.common import (
    FormatOpt,
    QuietOpt,
    ReportOpt,
    check_format,
    cli_errors,
    emit_report,
    err,
    human_output,
    out,
    show_errors,
)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)


def evaluate(
    reports: Annotated[
        list[Path], typer.Argument(help="Report files (json or jsonl) of camforensics identify and/or verify.")
    ],
    truth: Annotated[
        Path, typer.Option("--truth", "-t", help="The data set folder holding the evaluated images (ground truth).")
    ],
    layout: Annotated[
        str, typer.Option("--layout", help="Layout of the truth folder: auto, dresden, vision, kaggle or generic.")
    ] = "auto",
    device_map: Annotated[
        Path | None,
        typer.Option(
            "--device-map",
            help="CSV of 'library_name,device' rows: the truth device of each library name (default: the same).",
            show_default=False,
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            "-o",
            help="Folder for metrics.json and the PNG plots. Default: camforensics_evaluate_<UTC time>.",
            show_default=False,
        ),
    ] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw the ROC and confusion PNGs.")] = True,
    plot_size: Annotated[int, typer.Option("--plot-size", min=200, help="Side of the square plots, pixels.")] = 800,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
) -> None:
    """Measure identify / verify reports against a ground-truth data set: accuracy, confusion, ROC, AUC, EER.

    Inputs are matched to the data set's images by sha256 (by path for results without one). identify: PRNU
    ROC over every query-fingerprint PCE, rates at the report's threshold, decision outcomes and a device
    confusion matrix; camera-model attribution when the results carry it. verify: one labelled pair per
    report, ROC / AUC / EER per score, overall and per set size. Writes metrics.json and PNG plots; the report
    (default OUT/report.json) holds the same metrics in its summary.
    """
    with cli_errors():
        check_format(fmt)
        from camforensics.io.truth import read_device_map
        from camforensics.pipelines.evaluate import evaluate_reports

        if output_dir is None:
            output_dir = Path(f"camforensics_evaluate_{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
        rep = evaluate_reports(
            reports,
            truth=truth,
            layout=layout,
            device_map=read_device_map(device_map) if device_map is not None else None,
            output_dir=output_dir,
            plots=plots,
            plot_size=plot_size,
        )
        if human_output(report, quiet):
            _table(rep.summary)
            show_errors(rep)
            _notes(rep.summary)
        target = report if report is not None else output_dir / f"report.{fmt}"
        code = emit_report(rep, target, fmt, quiet=quiet)
        if not quiet and str(target) != "-":
            err.print(f"metrics and plots: {output_dir}")
    raise typer.Exit(code)


def _f(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _at(block: dict[str, Any]) -> tuple[str, str, str]:
    rates = block.get("at_threshold") or []
    if len(rates) != 1:
        return ("several" if rates else "-", "-", "-")
    r = rates[0]
    return (f"{r['threshold']:g}", _f(r["tpr"]), _f(r["fpr"]))


def _table(summary: dict[str, Any]) -> None:
    """Two tables: the scores (ROC figures and rates at the threshold) and the decisions (accuracies)."""
    from rich.table import Table

    scores = Table(title="scores (n: scored pairs)", title_justify="left")
    for col in ("score", "n", "AUC", "EER", "thr", "TPR", "FPR"):
        scores.add_column(col, justify="left" if col == "score" else "right", no_wrap=col == "score")
    decisions = Table(title="decisions", title_justify="left")
    for col in ("decision", "n", "accuracy", "detail"):
        decisions.add_column(col, justify="right" if col in ("n", "accuracy") else "left", no_wrap=col == "decision")

    def score_row(label: str, s: dict[str, Any]) -> None:
        scores.add_row(label, str(s["n_pairs"]), _f(s["auc"]), _f(s["eer"]), *_at(s))

    identify = summary.get("identify") or {}
    prnu = identify.get("prnu")
    if prnu is not None:
        score_row("identify PRNU PCE", prnu["pce"])
        o = prnu["outcomes"]
        detail = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in o.items() if v)
        decisions.add_row("identify PRNU", str(prnu["n_queries"]), _f(prnu["accuracy"]), detail)
    for name, m in (identify.get("model_attribution") or {}).items():
        score_row(f"model {name} open-set score", m["open_set_score"])
        decisions.add_row(
            f"model {name} (open set)",
            str(m["n_queries"]),
            _f(m["open_set_accuracy"]),
            f"closed set {_f(m['closed_set_accuracy'])}, unknown rejected {_f(m['unknown_rejection_rate'])}",
        )
    verify = summary.get("verify")
    if verify is not None:
        by_size = verify["by_set_size"] if len(verify["by_set_size"]) > 1 else {}
        for label, block in [("", verify), *((f" {g}", b) for g, b in by_size.items())]:
            for name, s in block["scores"].items():
                score_row(f"verify {name}{label}", s)
        decisions.add_row(
            "verify (report verdict)",
            str(verify["n_pairs"]),
            _f(verify["decision_accuracy"]),
            f"{verify['n_same_device']} same-device pairs, {verify['n_different_device']} different",
        )
    if scores.row_count:
        out.print(scores)
    if decisions.row_count:
        out.print(decisions)


def _notes(summary: dict[str, Any]) -> None:
    inputs = summary["inputs"]
    if inputs["n_unmatched_results"]:
        err.print(f"[yellow]{inputs['n_unmatched_results']} results have no truth record[/] (listed in metrics.json)")
    if inputs["n_error_results"]:
        err.print(f"{inputs['n_error_results']} error results in the reports were counted, not evaluated")
    verify = summary.get("verify")
    if verify is not None and verify["n_pairs_skipped"]:
        err.print(f"[yellow]{verify['n_pairs_skipped']} verify pairs skipped[/]: {verify['skipped'][0]['reason']} ...")

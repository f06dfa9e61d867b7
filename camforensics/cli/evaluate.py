"""camforensics evaluate: accuracy, confusion matrices and ROC / AUC / EER of identify and verify reports
(``evaluate reports``, also reached as plain ``evaluate REPORTS...``), of same-device verification on
held-out devices (``evaluate verification``) and of blind clustering (``evaluate clustering``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from camforensics.cli.common import check_format, cli_errors, err, finish_evaluation, out, output_dir_of, progress
from camforensics.cli.options import FormatOpt, ModelsDirOpt, QuietOpt, ReportOpt


class _ReportsByDefault(TyperGroup):
    """``camforensics evaluate REPORTS... --truth DIR`` keeps working: a command line that does not start with a
    subcommand name (or --help) is read as ``evaluate reports ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["reports", *args]
        return super().parse_args(ctx, args)


evaluate_app = typer.Typer(
    cls=_ReportsByDefault,
    help="Measure reports against ground truth (reports, the default) or a verifier on held-out devices.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(evaluate_app, name="evaluate")


OutputDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        "-o",
        help="Folder for metrics.json and the PNG plots. Default: camforensics_evaluate_<UTC time>.",
        show_default=False,
    ),
]
PlotsOpt = Annotated[bool, typer.Option("--plots/--no-plots", help="Draw the ROC (and confusion) PNGs.")]
PlotSizeOpt = Annotated[int, typer.Option("--plot-size", min=200, help="Side of the square plots, pixels.")]


@evaluate_app.command("reports")
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
    output_dir: OutputDirOpt = None,
    plots: PlotsOpt = True,
    plot_size: PlotSizeOpt = 800,
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

        output_dir = output_dir_of(output_dir, [*reports, truth], report)
        rep = evaluate_reports(
            reports,
            truth=truth,
            layout=layout,
            device_map=read_device_map(device_map) if device_map is not None else None,
            output_dir=output_dir,
            plots=plots,
            plot_size=plot_size,
        )
        code = finish_evaluation(
            rep, report=report, fmt=fmt, quiet=quiet, output_dir=output_dir,
            render=lambda: (_table(rep.summary), _notes(rep.summary)),
        )
    raise typer.Exit(code)


@evaluate_app.command("verification")
def evaluate_verification(
    data: Annotated[Path, typer.Argument(help="Labelled data set folder (Dresden, VISION, Kaggle or generic layout).")],
    model: Annotated[
        str | None,
        typer.Option("--model", help="Same-device verifier (default: the registry's default verifier).", show_default=False),
    ] = None,
    models_dir: ModelsDirOpt = None,
    devices: Annotated[
        str | None,
        typer.Option(
            "--devices",
            help="Comma-separated devices to draw pairs from (default: those the verifier never saw in training "
            "or calibration).",
            show_default=False,
        ),
    ] = None,
    set_sizes: Annotated[str, typer.Option("--set-sizes", help="Images per side, one block of pairs each.")] = "1,4,10",
    pairs: Annotated[int, typer.Option("--pairs", min=2, help="Pairs per set size, half same-device.")] = 40,
    content: Annotated[str, typer.Option("--content", help="Images used: all, nat or flat.")] = "all",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the pair draws.")] = 0,
    layout: Annotated[str, typer.Option("--layout", help="Data set layout: auto, dresden, vision, kaggle, generic.")] = "auto",
    model_threads: Annotated[int, typer.Option("--model-threads", help="onnxruntime threads (0 = all cores).")] = 0,
    output_dir: OutputDirOpt = None,
    plots: PlotsOpt = True,
    plot_size: PlotSizeOpt = 800,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
) -> None:
    """Measure same-device verification on held-out devices: PRNU vs Siamese vs fused, per set size.

    Draws pairs of image sets (same device: two disjoint sets of one device; different devices, every pair of
    devices of one camera model included), scores each exactly as verify scores two folders, and writes ROC /
    AUC / EER and the rates at each score's threshold, overall and per set size, with the false-positive rate
    among same-model negatives; ROC plots per set size.
    """
    with cli_errors():
        check_format(fmt)
        from camforensics.errors import ModelError
        from camforensics.inference.registry import ModelRegistry
        from camforensics.inference.verification import TASK
        from camforensics.pipelines.evaluate_verification import PairDrawParams, evaluate_verifier

        try:
            sizes = tuple(int(x) for x in set_sizes.split(",") if x.strip())
        except ValueError:
            raise typer.BadParameter(f"--set-sizes takes comma-separated integers, not {set_sizes!r}") from None
        draw = PairDrawParams(set_sizes=sizes, pairs_per_size=pairs, content=content, seed=seed)
        registry = ModelRegistry(models_dir)
        entry = registry.resolve(model, TASK)
        if entry is None:
            raise ModelError(
                "no same-device verifier is registered; train one with 'camforensics train siamese' and register it "
                "with 'camforensics export ... --default'"
            )
        loaded = registry.load(entry.name, threads=model_threads)
        output_dir = output_dir_of(output_dir, [data], report)
        with progress("scoring pairs", quiet=quiet) as hooks:
            started = False

            def on_pair(done: int, total: int) -> None:
                nonlocal started
                if not started:
                    hooks.start(total)
                    started = True
                hooks.tick()

            rep = evaluate_verifier(
                data,
                model=loaded,
                layout=layout,
                devices=[d.strip() for d in devices.split(",") if d.strip()] if devices else None,
                draw=draw,
                output_dir=output_dir,
                plots=plots,
                plot_size=plot_size,
                on_pair=on_pair,
            )
        code = finish_evaluation(
            rep, report=report, fmt=fmt, quiet=quiet, output_dir=output_dir,
            render=lambda: (_table(rep.summary), _hard_negatives(rep.summary)),
        )
    raise typer.Exit(code)


def _hard_negatives(summary: dict[str, Any]) -> None:
    for size, block in (summary.get("same_model_negatives") or {}).items():
        rates = ", ".join(
            f"{name} max {block[name]['max']:.3g} (FP {block[name]['false_positive_rate']:.2f})"
            for name in ("prnu_pce", "siamese", "fused")
        )
        out.print(f"same-model negatives {size}: {block['n_pairs']} pairs ({'; '.join(block['devices'])}): {rates}")


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


def _register_anonymization() -> None:
    from camforensics.cli.evaluate_anonymization import evaluate_anonymization

    evaluate_app.command("anonymization")(evaluate_anonymization)


_register_anonymization()


def _register_clustering() -> None:
    from camforensics.cli.evaluate_clustering import evaluate_clustering_cmd

    evaluate_app.command("clustering")(evaluate_clustering_cmd)


_register_clustering()

"""evaluate: accuracy, confusion matrices and ROC / AUC / EER of identify and verify reports against a truth.

Reads reports of ``camforensics identify`` and ``camforensics verify`` (json or jsonl), finds the data-set record
of every input (:class:`~camforensics.io.truth.TruthIndex`: by sha256, by path when a result has no hash), and
measures:

- identify, PRNU: every (query, candidate) pair is a score (PCE) labelled "same device"; ROC, AUC, EER, rates at
  the report's threshold; the outcome of every decision (correct match, wrong match, false match, missed,
  correct reject) and a device confusion matrix.
- identify, camera-model attribution (results with ``model_attribution``): closed-set and open-set accuracy,
  rejection rates, a model confusion matrix; one block per model.
- verify: one pair of sets per report, labelled by the truth devices of its images; ROC, AUC, EER and rates at
  the threshold of every score, overall and per set size ("NA+NB").

Nothing an input holds is dropped silently: unmatched results, error results and pairs that cannot be labelled
are counted and listed with their reasons. Layout of the output in docs/reports.md ("evaluate").
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camforensics import __version__
from camforensics.core.metrics import UNKNOWN
from camforensics.errors import CamforensicsError, InputError
from camforensics.io.datasets import scan_dataset
from camforensics.io.folders import safe_file_part
from camforensics.io.hashing import sha256_file
from camforensics.io.truth import TruthIndex
from camforensics.pipelines.evaluation import (
    NO_MATCH,
    PCE_SCORE,
    IdentifyQuery,
    PrnuDecision,
    VerifyPair,
    identify_prnu_metrics,
    model_attribution_metrics,
    verify_metrics,
)
from camforensics.reports.atomic import atomic_write_bytes, atomic_write_text
from camforensics.reports.reader import number, read_report
from camforensics.reports.escape import escape_tree
from camforensics.reports.report import Report, clean, error_record

METRICS_SCHEMA = "camforensics-metrics"
METRICS_SCHEMA_VERSION = "1.0"
METRICS_NAME = "metrics.json"


@dataclass
class _Gathered:
    """What the reports hold, matched to the truth."""

    queries: list[IdentifyQuery] = field(default_factory=list)  # matched ok identify results
    pairs: list[VerifyPair] = field(default_factory=list)  # labelled verify reports
    skipped_pairs: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    n_results: int = 0
    matched_by: Counter[str] = field(default_factory=Counter)
    by_command: Counter[str] = field(default_factory=Counter)

    def merge(self, other: _Gathered) -> None:
        """Add what one report held (gathered apart, so that a report that fails half-way adds nothing)."""
        for name in ("queries", "pairs", "skipped_pairs", "unmatched", "errors"):
            getattr(self, name).extend(getattr(other, name))
        self.n_results += other.n_results
        self.matched_by.update(other.matched_by)
        self.by_command.update(other.by_command)


def _lookup(index: TruthIndex, result: Mapping[str, Any], report: str, got: _Gathered) -> Any:
    """The truth record of a result's input, or None (then listed as unmatched)."""
    item = result.get("input") or {}
    found = index.lookup(item)
    if found.record is None:
        got.unmatched.append(
            {"report": report, "path": item.get("path"), "sha256": item.get("sha256"), "reason": found.how}
        )
        return None
    got.matched_by[found.how] += 1
    return found.record


def _note_error(result: Mapping[str, Any], report: str, got: _Gathered) -> None:
    err = result.get("error") or {}
    got.errors.append(
        {
            "report": report,
            "path": (result.get("input") or {}).get("path"),
            "type": err.get("type"),
            "message": err.get("message"),
        }
    )


def _gather_identify(
    doc: Mapping[str, Any], report: str, index: TruthIndex, dmap: Callable[[str], str], got: _Gathered
) -> dict[str, int]:
    run = doc["run"]
    rule = run.get("decision_rule") or {}
    run_threshold = number(rule.get("threshold_pce"))
    if run_threshold is None:
        run_threshold = number(((run.get("parameters") or {}).get("match") or {}).get("threshold"))
    # Enrolled devices: the library entries the run used and every device named as a candidate.
    enrolled = {dmap(e["name"]) for e in (run.get("library") or {}).get("entries_used", []) if "name" in e}
    for r in doc["results"]:
        enrolled.update(dmap(c["device"]) for c in r.get("candidates") or [] if "device" in c)
    counts = Counter({"n_evaluated": 0, "n_error_results": 0, "n_unmatched_results": 0})
    for r in doc["results"]:
        got.n_results += 1
        if r.get("status") != "ok":
            _note_error(r, report, got)
            counts["n_error_results"] += 1
            continue
        record = _lookup(index, r, report, got)
        if record is None:
            counts["n_unmatched_results"] += 1
            continue
        decision, candidates = r.get("decision"), r.get("candidates")
        prnu = None
        if isinstance(decision, dict) and isinstance(candidates, list):
            threshold = number(decision.get("threshold"))
            prnu = PrnuDecision(
                pairs=tuple((dmap(c["device"]), number(c.get("pce"))) for c in candidates if "device" in c),
                top=dmap(candidates[0]["device"]) if candidates and "device" in candidates[0] else None,
                predicted=dmap(decision["device"]) if decision.get("match") and decision.get("device") else None,
                threshold=threshold if threshold is not None else run_threshold,
                enrolled=frozenset(enrolled),
            )
        query = IdentifyQuery(
            report=report,
            path=r["input"].get("path"),
            device=record.device,
            model=record.model_id,
            prnu=prnu,
            model_attribution=r.get("model_attribution"),
        )
        got.queries.append(query)
        counts["n_evaluated"] += 1
    return dict(counts)


def _set_device(records: list[Any], n_unmatched: int, side: str) -> tuple[str | None, str | None]:
    """The one device of a set, or (None, why not)."""
    if n_unmatched:
        return None, f"set {side}: {n_unmatched} image(s) not in the truth data set"
    devices = sorted({r.device for r in records})
    if not devices:
        return None, f"set {side}: no image was used"
    if len(devices) > 1:
        return None, f"set {side} mixes devices {', '.join(devices)}"
    return devices[0], None


def _gather_verify(doc: Mapping[str, Any], report: str, index: TruthIndex, got: _Gathered) -> dict[str, int]:
    summary = doc["summary"]
    decision = summary.get("decision") or {}
    records: dict[str, list[Any]] = {"A": [], "B": []}
    unmatched = Counter()
    counts = Counter({"n_pairs": 0, "n_pairs_skipped": 0, "n_error_results": 0, "n_unmatched_results": 0})
    for r in doc["results"]:
        got.n_results += 1
        if r.get("status") != "ok":
            _note_error(r, report, got)
            counts["n_error_results"] += 1
            continue
        record = _lookup(index, r, report, got)
        side = r.get("set")
        if record is None:
            unmatched[side] += 1
            counts["n_unmatched_results"] += 1
        elif side in records:
            records[side].append(record)
    dev_a, why_a = _set_device(records["A"], unmatched["A"], "A")
    dev_b, why_b = _set_device(records["B"], unmatched["B"], "B")
    scores = {str(k): number(v) for k, v in (summary.get("scores") or {}).items()}
    if PCE_SCORE not in scores and number(decision.get("pce")) is not None:
        scores[PCE_SCORE] = number(decision.get("pce"))
    thresholds = {str(k): number(v) for k, v in (summary.get("thresholds") or {}).items()}
    if PCE_SCORE not in thresholds and number(decision.get("threshold")) is not None:
        thresholds[PCE_SCORE] = number(decision.get("threshold"))
    n_a = decision.get("n_images_a", len(records["A"]))
    n_b = decision.get("n_images_b", len(records["B"]))
    reasons = [w for w in (why_a, why_b) if w]
    if not scores:
        reasons.append("the report holds no score (summary.scores or summary.decision.pce)")
    if reasons:
        got.skipped_pairs.append({"report": report, "reason": "; ".join(reasons)})
        counts["n_pairs_skipped"] += 1
    else:
        got.pairs.append(
            VerifyPair(
                report=report,
                device_a=dev_a,
                device_b=dev_b,
                set_size=f"{n_a}+{n_b}",
                scores=scores,
                thresholds={k: v for k, v in thresholds.items() if v is not None},
                decision_same_device=decision.get("same_device"),
            )
        )
        counts["n_pairs"] += 1
    return dict(counts)


def _safe_name(name: str) -> str:
    return safe_file_part(name).strip("_") or "model"


def _curve(block: Mapping[str, Any]) -> tuple[Any, Any, Any, Any] | None:
    roc = block.get("roc")
    return None if roc is None else (roc["fpr"], roc["tpr"], block["auc"], block["eer"])


def _right_columns(confusion: Mapping[str, Any], unknown: str) -> list[int | None]:
    """Per row of a confusion dict, the column of the right prediction (open-set: rejection outside the classes)."""
    cols, classes = confusion["columns_predicted"], set(confusion["classes"])
    return [
        cols.index(r) if r in cols else cols.index(unknown) if r not in classes and unknown in cols else None
        for r in confusion["rows_true"]
    ]


def _write_png(path: Path, picture: bytes) -> None:
    atomic_write_bytes(path, picture)


def draw_plots(metrics: Mapping[str, Any], output_dir: Path, *, size: int = 800) -> dict[str, str]:
    """Write the ROC and confusion PNGs of ``metrics`` into ``output_dir``; returns {plot name: file name}.

    ``roc_prnu.png`` and ``confusion_prnu.png`` (identify PRNU), ``confusion_model.png`` (one attribution
    model; ``confusion_model_<name>.png`` each when several), ``roc_verify.png`` (a curve per score) and, with
    several set sizes, ``roc_verify_<NA+NB>.png``. A ROC that is undefined (one class only) is not drawn.
    """
    from camforensics.core.plots import confusion_plot, roc_plot

    written: dict[str, str] = {}

    def save(key: str, picture: Any) -> None:
        _write_png(output_dir / f"{key}.png", picture)
        written[key] = f"{key}.png"

    prnu = (metrics.get("identify") or {}).get("prnu")
    if prnu is not None:
        curve = _curve(prnu["pce"])
        if curve is not None:
            save(
                "roc_prnu",
                roc_plot(
                    {"PRNU PCE": curve}, title="identify: PRNU PCE, query vs fingerprint", width=size, height=size
                ),
            )
        c = prnu["confusion"]
        save(
            "confusion_prnu",
            confusion_plot(
                c["counts"],
                c["rows_true"],
                c["columns_predicted"],
                title="identify: device (PRNU)",
                right_columns=_right_columns(c, NO_MATCH),
                width=size,
                height=size,
            ),
        )
    models = (metrics.get("identify") or {}).get("model_attribution") or {}
    for name, block in models.items():
        c = block.get("confusion")
        if c is None:
            continue
        key = "confusion_model" if len(models) == 1 else f"confusion_model_{_safe_name(name)}"
        save(
            key,
            confusion_plot(
                c["counts"],
                c["rows_true"],
                c["columns_predicted"],
                title=f"camera model: {name}",
                right_columns=_right_columns(c, UNKNOWN),
                width=size,
                height=size,
            ),
        )
    verify = metrics.get("verify")
    if verify is not None:
        blocks = [("roc_verify", "verify: all pairs", verify)]
        if len(verify["by_set_size"]) > 1:
            blocks += [(f"roc_verify_{g}", f"verify: {g} images", b) for g, b in verify["by_set_size"].items()]
        for key, title, block in blocks:
            curves = {n: c for n, s in block["scores"].items() if (c := _curve(s)) is not None}
            if curves:
                save(key, roc_plot(curves, title=title, width=size, height=size))
    return written


def write_metrics(
    metrics: dict[str, Any], out: Path | None, *, plots: bool, plot_size: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Clean ``metrics``, draw its plots and write ``metrics.json`` into ``out`` (nothing without ``out``).

    Returns the cleaned metrics (``plots`` filled in) and the report's ``outputs`` member (paths written).
    """
    metrics = clean(metrics)
    if out is None:
        return metrics, {"metrics_json": None, "plots": {}}
    if plots:
        metrics["plots"] = draw_plots(metrics, out, size=plot_size)
    atomic_write_text(out / METRICS_NAME, json.dumps(escape_tree(metrics), indent=2, ensure_ascii=False) + "\n")
    return metrics, {
        "metrics_json": str(out / METRICS_NAME),
        "plots": {k: str(out / v) for k, v in metrics["plots"].items()},
    }


def strip_roc(value: Any) -> Any:
    """The metrics without ROC point lists (for the report summary; metrics.json keeps them)."""
    if isinstance(value, dict):
        return {k: strip_roc(v) for k, v in value.items() if k != "roc"}
    if isinstance(value, list):
        return [strip_roc(v) for v in value]
    return value


def evaluate_reports(
    reports: Sequence[str | os.PathLike[str]],
    *,
    truth: str | os.PathLike[str],
    layout: str = "auto",
    device_map: Mapping[str, str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    plots: bool = True,
    plot_size: int = 800,
) -> Report:
    """Measure identify and verify reports against the devices and models of a truth data set.

    Parameters
    ----------
    reports : sequence of path-like
        Report files (json or jsonl) of ``identify`` and/or ``verify``.
    truth : path-like, keyword-only
        The data set folder that holds the evaluated images (any layout of ``scan_dataset``).
    layout : str, keyword-only
        Its layout, ``"auto"`` to detect it.
    device_map : mapping of str to str, optional, keyword-only
        Library name -> truth device, for libraries enrolled under other names than the data set's devices.
    output_dir : path-like, optional, keyword-only
        Where ``metrics.json`` and the PNG plots go; None writes nothing (the metrics are in the report).
    plots : bool, keyword-only
        Draw the PNG plots (with ``output_dir``).
    plot_size : int, keyword-only
        Side of the square plots in pixels.

    Returns
    -------
    Report
        One result per report file (what it held, or why it could not be read: those count as failed);
        ``summary`` holds the metrics (without the ROC point lists, which are in ``metrics.json``) and
        ``outputs``.

    Raises
    ------
    CamforensicsError
        No report given, or the truth folder missing or of no known layout.
    """
    if not reports:
        raise CamforensicsError("no report given; name identify/verify report files (json or jsonl)")
    scan = scan_dataset(truth, layout=layout)
    if not scan.records:
        raise CamforensicsError(f"the truth data set {str(scan.root)!r} holds no image records (layout {scan.layout})")
    index = TruthIndex(scan.records)
    mapping = dict(device_map or {})

    def dmap(name: str) -> str:
        return mapping.get(name, name)

    out = Path(output_dir) if output_dir is not None else None
    report = Report(
        command="evaluate",
        parameters={
            "truth": str(scan.root),
            "layout": layout,
            "device_map": mapping,
            "output_dir": str(out) if out is not None else None,
            "plots": plots,
            "plot_size": plot_size,
        },
        context={"truth": _truth_context(scan)},
    )
    got = _Gathered()
    for path in reports:
        path = Path(path)
        this = _Gathered()
        try:
            doc = read_report(path)
            command = doc["run"].get("command")
            if command not in ("identify", "verify"):
                raise CamforensicsError(
                    f"{str(path)!r} is a report of {command!r}; evaluate reads identify and verify reports"
                )
            item = {"path": str(path), "sha256": sha256_file(path), "size_bytes": path.stat().st_size}
            try:
                if command == "identify":
                    counts = _gather_identify(doc, str(path), index, dmap, this)
                else:
                    counts = _gather_verify(doc, str(path), index, this)
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                raise InputError(
                    f"{str(path)!r} does not have the layout of {command} reports ({type(exc).__name__}: {exc})"
                ) from None
        except CamforensicsError as exc:
            report.add({"input": {"path": str(path)}, "status": "error", "error": error_record(exc)})
            continue
        this.by_command[command] += 1
        got.merge(this)
        report.add({"input": item, "status": "ok", "command": command, "n_results": len(doc["results"]), **counts})

    metrics = {
        "schema": METRICS_SCHEMA,
        "schema_version": METRICS_SCHEMA_VERSION,
        "tool_version": __version__,
        "truth": _truth_context(scan),
        "inputs": {
            "n_reports": report.n_inputs,
            "n_reports_failed": report.n_failed,
            "by_command": dict(sorted(got.by_command.items())),
            "n_results": got.n_results,
            "n_error_results": len(got.errors),
            "n_unmatched_results": len(got.unmatched),
            "matched_by": dict(sorted(got.matched_by.items())),
            "n_truth_files_hashed": index.n_hashed,
            "errors": got.errors,
            "unmatched": got.unmatched,
        },
        "identify": {
            "n_queries": len(got.queries),
            "prnu": identify_prnu_metrics(got.queries),
            "model_attribution": model_attribution_metrics(got.queries),
        }
        if got.by_command["identify"]
        else None,
        "verify": verify_metrics(got.pairs, got.skipped_pairs),
        "plots": {},
    }
    metrics, outputs = write_metrics(metrics, out, plots=plots, plot_size=plot_size)
    summary = strip_roc(
        {k: v for k, v in metrics.items() if k not in ("schema", "schema_version", "tool_version", "plots")}
    )
    report.finish(**summary, outputs=outputs)
    return report


def _truth_context(scan: Any) -> dict[str, Any]:
    return {
        "root": str(scan.root),
        "layout": scan.layout,
        "n_records": len(scan.records),
        "n_devices": len(scan.devices),
        "n_models": len(scan.models),
    }

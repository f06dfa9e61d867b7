"""Read a report back: the json and jsonl forms of schema ``camforensics-report`` (see docs/reports.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from camforensics.errors import InputError
from camforensics.reports.report import SCHEMA, SCHEMA_VERSION


def number(value: Any) -> float | None:
    """A report's number as a float: the strings ``"inf"``, ``"-inf"``, ``"nan"`` stand for non-finite ones.

    Returns None for None and for anything that is not a number.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return None


def _check_header(run: Any, path: Path) -> dict[str, Any]:
    if not isinstance(run, dict) or run.get("schema") != SCHEMA:
        raise InputError(f"{str(path)!r} is not a camforensics report (no run.schema {SCHEMA!r})")
    major = str(run.get("schema_version", "")).split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise InputError(
            f"{str(path)!r} has report schema version {run.get('schema_version')!r}; this camforensics reads "
            f"version {SCHEMA_VERSION.split('.')[0]}.x: evaluate it with the camforensics version that wrote it"
        )
    return run


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a report written by any camforensics command, as ``{"run", "results", "summary"}``.

    Parameters
    ----------
    path : path-like
        A report in the ``json`` or ``jsonl`` format (told apart by content, not by name).

    Returns
    -------
    dict
        ``run`` (the header), ``results`` (list, in order) and ``summary``.

    Raises
    ------
    InputError
        A missing or unreadable file, a csv report (its numbers and lists lost their types: write the report
        as json or jsonl), a journal, or a file that is not a camforensics report of schema version 1.x.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a folder; give report files (e.g. {path}/*.json)")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"report {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read report {str(path)!r}: {exc}") from None
    if path.suffix.lower() == ".csv" or not text.lstrip().startswith("{"):
        raise InputError(
            f"{str(path)!r} is not a json or jsonl report (csv reports cannot be read back: their cells lost "
            "their types); write the report with --format json or jsonl"
        )
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and "run" in doc:
        run = _check_header(doc["run"], path)
        results, summary = doc.get("results"), doc.get("summary")
        if not isinstance(results, list) or not isinstance(summary, dict):
            raise InputError(f"{str(path)!r} lacks its results list or summary; is the file cut short?")
        return {"run": run, "results": results, "summary": summary}
    return _read_jsonl(text, path)


def _read_jsonl(text: str, path: Path) -> dict[str, Any]:
    run: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    results: list[dict[str, Any]] = []
    for n, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+0085, U+2028 may sit in names
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{str(path)!r} line {n} is not JSON ({exc.msg}); is the file cut short?") from None
        kind = item.pop("record", None) if isinstance(item, dict) else None
        if n == 1 and kind == "journal":
            raise InputError(
                f"{str(path)!r} is the journal of a run that did not finish; finish it with --resume, then "
                "evaluate its report"
            )
        if kind == "run":
            run = _check_header(item, path)
        elif kind == "result":
            results.append(item)
        elif kind == "summary":
            summary = item
        else:
            raise InputError(f"{str(path)!r} line {n}: not a camforensics report record (run, result, summary)")
    if run is None:
        raise InputError(f"{str(path)!r} is not a camforensics report (no run header)")
    if summary is None:
        raise InputError(f"{str(path)!r} has no summary line; is the file cut short?")
    return {"run": run, "results": results, "summary": summary}

"""The report every command writes: a run header, one result per input, a summary.

Schema ``camforensics-report`` version 1 (documented in docs/reports.md). A result always has ``input`` (what
was read, with its sha256), ``status`` ("ok" or "error") and, when failed, ``error`` {"type", "message"}.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from camforensics import __version__
from camforensics.reports.atomic import atomic_write_text

SCHEMA = "camforensics-report"
SCHEMA_VERSION = "1.0"
FORMATS = ("json", "jsonl", "csv")
_DEPENDENCIES = ("numpy", "scipy", "PyWavelets", "opencv-python-headless", "pillow", "onnxruntime", "onnxruntime-gpu")


def environment() -> dict[str, Any]:
    """Versions of Python, the platform and the numeric libraries that can change a result."""
    versions = {}
    for dist in _DEPENDENCIES:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": versions}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def clean(value: Any) -> Any:
    """JSON-safe copy: tuples to lists, Paths to str, non-finite floats to strings."""
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return clean(value.item())
    return value


def error_record(exc: BaseException) -> dict[str, str]:
    """The ``error`` member of a failed result."""
    return {"type": type(exc).__name__, "message": str(exc)}


@dataclass
class Report:
    """Collects a run's header and results; :meth:`write` emits json, jsonl or csv atomically.

    Parameters
    ----------
    command : str
        The subcommand (``enroll``, ``identify``, ...).
    parameters : mapping
        Every parameter that shapes the result (frozen dataclasses' ``to_dict()`` and plain options).
    argv : list of str, optional
        The command line; defaults to ``sys.argv``.
    """

    command: str
    parameters: Mapping[str, Any]
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    results: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)  # e.g. library and models used
    summary: dict[str, Any] = field(default_factory=dict)
    started: str = field(default_factory=_now)
    _t0: float = field(default_factory=time.perf_counter, repr=False)
    finished: str | None = None
    duration_s: float | None = None

    def add(self, result: Mapping[str, Any]) -> None:
        """Append one result (a mapping with at least ``input`` and ``status``)."""
        if "status" not in result or "input" not in result:
            raise ValueError("a report result needs 'input' and 'status' members")
        self.results.append(clean(result))

    @property
    def n_failed(self) -> int:
        return sum(1 for r in self.results if r["status"] != "ok")

    def finish(self, **summary: Any) -> None:
        """Close the run: timing and the summary counts (plus any command-specific ``summary`` items)."""
        self.finished = _now()
        self.duration_s = round(time.perf_counter() - self._t0, 3)
        self.summary = clean(
            {"n_inputs": len(self.results), "n_ok": len(self.results) - self.n_failed, "n_failed": self.n_failed}
            | summary
        )

    def header(self) -> dict[str, Any]:
        return clean(
            {
                "schema": SCHEMA,
                "schema_version": SCHEMA_VERSION,
                "tool": "camforensics",
                "tool_version": __version__,
                "command": self.command,
                "argv": self.argv,
                "started": self.started,
                "finished": self.finished,
                "duration_s": self.duration_s,
                "environment": environment(),
                "parameters": self.parameters,
                **self.context,
            }
        )

    def document(self) -> dict[str, Any]:
        """The whole report as one JSON-ready object."""
        return {"run": self.header(), "results": self.results, "summary": self.summary}

    def write(self, path: str | Path, *, fmt: str = "json") -> list[Path]:
        """Write the report atomically; returns the files written.

        ``json``: one object {run, results, summary}. ``jsonl``: a ``run`` line, one ``result`` line per input and
        a ``summary`` line, each with a ``record`` member. ``csv``: one row per result with nested members
        flattened to dotted column names (lists as JSON text), plus ``PATH.run.json`` holding the run header and
        summary.
        """
        path = Path(path)
        atomic_write_text(path, self.to_text(fmt=fmt))
        if fmt != "csv":
            return [path]
        side = path.with_name(path.name + ".run.json")
        atomic_write_text(
            side, json.dumps({"run": self.header(), "summary": self.summary}, indent=2, ensure_ascii=False) + "\n"
        )
        return [path, side]

    def to_text(self, *, fmt: str = "json") -> str:
        """The report as text (for ``--report -``); csv gives the rows only."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
        if self.finished is None:
            self.finish()
        if fmt == "json":
            return json.dumps(self.document(), indent=2, ensure_ascii=False) + "\n"
        if fmt == "jsonl":
            lines = [{"record": "run", **self.header()}, *({"record": "result", **r} for r in self.results)]
            lines.append({"record": "summary", **self.summary})
            return "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
        rows = [flatten(r) for r in self.results]
        columns = list(dict.fromkeys(k for row in rows for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys; lists become JSON text (one CSV cell)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= flatten(value, prefix=f"{name}.")
        elif isinstance(value, list):
            out[name] = json.dumps(value, ensure_ascii=False)
        else:
            out[name] = value
    return out

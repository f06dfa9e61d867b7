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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from camforensics import __version__
from camforensics.errors import CamforensicsError
from camforensics.reports.atomic import atomic_open, atomic_write_text
from camforensics.reports.escape import HEX_SUFFIX, escape_text, has_surrogates, raw_bytes
from camforensics.reports.journal import Journal

SCHEMA = "camforensics-report"
SCHEMA_VERSION = "1.0"
FORMATS = ("json", "jsonl", "csv")
_DEPENDENCIES = ("numpy", "scipy", "PyWavelets", "opencv-python-headless", "pillow", "onnxruntime", "onnxruntime-gpu")


def environment() -> dict[str, Any]:
    """Versions of Python, the platform and the numeric libraries that can change a result, and which
    implementation of the wavelet denoiser ran (``engine``: the native kernels or OpenCV, see
    :mod:`camforensics.runtime.native`)."""
    from importlib import metadata  # here: 0.02 s of imports (email.*) that only the report's end needs

    from camforensics.runtime import native

    versions = {}
    for dist in _DEPENDENCIES:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "engine": native.engine(),
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def clean(value: Any) -> Any:
    """JSON-safe copy: tuples to lists, Paths to str, non-finite floats to strings, names that are not UTF-8
    escaped (see :mod:`camforensics.reports.escape`: ``\\xHH`` in the text, the exact bytes under ``<member>_hex``)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = escape_text(str(k))
            out[key] = clean(v)
            if isinstance(v, (str, Path)) and has_surrogates(str(v)):
                out[key + HEX_SUFFIX] = raw_bytes(str(v)).hex()
        return out
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, Path):
        return escape_text(str(value))
    if isinstance(value, str):
        return escape_text(value)
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

    Results are kept in memory, or, with a ``journal``, streamed to it as they come (memory stays flat over any
    number of inputs; the final report is then assembled by reading the journal back, one result at a time).

    Parameters
    ----------
    command : str
        The subcommand (``enroll``, ``identify``, ...).
    parameters : mapping
        Every parameter that shapes the result (frozen dataclasses' ``to_dict()`` and plain options).
    argv : list of str, optional
        The command line; defaults to ``sys.argv``.
    journal : Journal, optional
        Stream results to this journal instead of keeping them (see :mod:`camforensics.reports.journal`).
    """

    command: str
    parameters: Mapping[str, Any]
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    context: dict[str, Any] = field(default_factory=dict)  # e.g. library and models used
    summary: dict[str, Any] = field(default_factory=dict)
    started: str = field(default_factory=_now)
    _t0: float = field(default_factory=time.perf_counter, repr=False)
    finished: str | None = None
    duration_s: float | None = None
    journal: Journal | None = field(default=None, repr=False)
    _results: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)
    _n: int = field(default=0, init=False, repr=False)
    _n_failed: int = field(default=0, init=False, repr=False)

    def add(
        self,
        result: Mapping[str, Any],
        *,
        stamp: Mapping[str, int] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one result (a mapping with at least ``input`` and ``status``).

        ``stamp`` (the input's size and mtime) and ``extras`` only go to the journal, for resuming.
        """
        if "status" not in result or "input" not in result:
            raise ValueError("a report result needs 'input' and 'status' members")
        result = clean(result)
        if self.journal is not None:
            self.journal.append(result, stamp=stamp, extras=clean(extras) if extras else None)
        else:
            self._results.append(result)
        self._n += 1
        self._n_failed += result["status"] != "ok"

    @property
    def streaming(self) -> bool:
        """True when results go to a journal instead of memory."""
        return self.journal is not None

    @property
    def results(self) -> list[dict[str, Any]]:
        """The results (in-memory reports only; a streaming report is read with :meth:`iter_results`)."""
        if self.journal is not None:
            raise CamforensicsError(
                f"this report streams its results to {self.journal.path}; read them with iter_results()"
            )
        return self._results

    def iter_results(self) -> Iterator[dict[str, Any]]:
        """Every result in order, from memory or read back from the journal one at a time."""
        if self.journal is not None:
            yield from self.journal.results()
        else:
            yield from self._results

    @property
    def n_inputs(self) -> int:
        return self._n

    @property
    def n_failed(self) -> int:
        return self._n_failed

    def finish(self, **summary: Any) -> None:
        """Close the run: timing and the summary counts (plus any command-specific ``summary`` items).

        A journal is closed here (its file stays until :meth:`Journal.discard`)."""
        self.finished = _now()
        self.duration_s = round(time.perf_counter() - self._t0, 3)
        self.summary = clean({"n_inputs": self._n, "n_ok": self._n - self._n_failed, "n_failed": self._n_failed} | summary)
        if self.journal is not None:
            self.journal.close()  # nothing more is added; the results are read back from the file

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
        """The whole report as one JSON-ready object (reads a streaming report's results into memory)."""
        return {"run": self.header(), "results": list(self.iter_results()), "summary": self.summary}

    def write(self, path: str | Path, *, fmt: str = "json") -> list[Path]:
        """Write the report atomically; returns the files written.

        ``json``: one object {run, results, summary}. ``jsonl``: a ``run`` line, one ``result`` line per input and
        a ``summary`` line, each with a ``record`` member. ``csv``: one row per result with nested members
        flattened to dotted column names (lists as JSON text), plus ``PATH.run.json`` holding the run header and
        summary. Results are streamed: a journaled report is never held in memory whole.
        """
        path = Path(path)
        check_report_format(fmt)
        with atomic_open(path, "w") as f:
            self.write_to(f, fmt=fmt)
        if fmt != "csv":
            return [path]
        side = path.with_name(path.name + ".run.json")
        atomic_write_text(
            side, json.dumps({"run": self.header(), "summary": self.summary}, indent=2, ensure_ascii=False) + "\n"
        )
        return [path, side]

    def to_text(self, *, fmt: str = "json") -> str:
        """The report as text (for ``--report -``); csv gives the rows only."""
        buf = io.StringIO()
        self.write_to(buf, fmt=fmt)
        return buf.getvalue()

    def write_to(self, stream: IO[str], *, fmt: str = "json") -> None:
        """Write the report text to an open text stream, one result at a time; csv gives the rows only."""
        check_report_format(fmt)
        if self.finished is None:
            self.finish()
        if fmt == "json":
            _write_json(stream, self.header(), self.iter_results(), self.summary)
        elif fmt == "jsonl":
            stream.write(json.dumps({"record": "run", **self.header()}, ensure_ascii=False) + "\n")
            for r in self.iter_results():
                stream.write(json.dumps({"record": "result", **r}, ensure_ascii=False) + "\n")
            stream.write(json.dumps({"record": "summary", **self.summary}, ensure_ascii=False) + "\n")
        else:
            # Two passes: the columns are the union over all rows, then the rows.
            columns = list(dict.fromkeys(k for r in self.iter_results() for k in flatten(r)))
            # The csv module quotes a field holding a character of the line terminator, so rows are formatted with
            # "\r\n" (a carriage return in a file name is then quoted, not a row break) and written ending in "\n".
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\r\n")

            def emit(row: dict[str, Any] | None) -> None:
                buf.seek(0)
                buf.truncate()
                writer.writeheader() if row is None else writer.writerow(row)
                stream.write(buf.getvalue()[:-2] + "\n")

            emit(None)
            for r in self.iter_results():
                emit(flatten(r))


def check_report_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


_PLACEHOLDER = "@@camforensics-results@@"


def _write_json(stream: IO[str], run: dict[str, Any], results: Iterator[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Exactly ``json.dumps({"run", "results", "summary"}, indent=2)``, with the results streamed in."""
    text = json.dumps({"run": run, "results": [_PLACEHOLDER], "summary": summary}, indent=2, ensure_ascii=False)
    marker = f'\n    "{_PLACEHOLDER}"\n  ]'
    head, tail = text.split(marker)
    stream.write(head)
    first = True
    for r in results:
        # Indent on "\n" only: json.dumps escapes it inside strings, whereas str.splitlines (textwrap.indent) would
        # also break at U+0085, U+2028, ... that ensure_ascii=False leaves raw inside a file name.
        body = "\n".join("    " + line for line in json.dumps(r, indent=2, ensure_ascii=False).split("\n"))
        stream.write(("\n" if first else ",\n") + body)
        first = False
    stream.write("]" if first else "\n  ]")
    stream.write(tail + "\n")


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

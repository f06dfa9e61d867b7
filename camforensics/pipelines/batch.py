"""The batch loop every command shares: one bad file never stops the run, its reason goes into the report."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from camforensics.reports.report import Report, error_record

Work = Callable[[Path, dict[str, Any]], None]


def run_batch(paths: Iterable[Path], work: Work, report: Report, *, tick: Callable[[], None] | None = None) -> None:
    """Call ``work(path, record)`` for each path and add the record to ``report``.

    ``work`` fills ``record`` (``record["input"]`` as soon as the image is read, then its results). Any
    exception from one file becomes that file's ``error`` and the loop goes on; KeyboardInterrupt still stops
    the run.
    """
    for path in paths:
        record: dict[str, Any] = {"input": {"path": str(path)}}
        try:
            work(path, record)
        except Exception as exc:  # noqa: BLE001 - a batch must survive any one file; the reason is reported
            result = {"input": record.pop("input"), "status": "error", **record, "error": error_record(exc)}
        else:
            result = {"input": record.pop("input"), "status": "ok", **record}
        report.add(result)
        if tick is not None:
            tick()


def probe_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header without decoding pixels; None when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size
    except Exception:  # noqa: BLE001 - the real decode reports the reason
        return None


def common_size(paths: list[Path]) -> tuple[int, int] | None:
    """The most frequent (width, height) among readable headers (first seen wins ties), or None."""
    sizes = [s for s in (probe_size(p) for p in paths) if s is not None]
    if not sizes:
        return None
    counts = collections.Counter(sizes)
    top = max(counts.values())
    return next(s for s in sizes if counts[s] == top)

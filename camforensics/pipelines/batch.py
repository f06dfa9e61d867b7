"""The batch loop every command shares: one bad file never stops the run, its reason goes into the report."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from camforensics.errors import CamforensicsError
from camforensics.io.folders import collect_images
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


def gather_inputs(
    paths: list[str | Path], *, on_start: Callable[[int], None] | None = None, what: str = "image files"
) -> list[Path]:
    """The image files under ``paths`` (see :func:`collect_images`); announces their number to ``on_start``.

    Raises
    ------
    CamforensicsError
        If no file was found, or a named path does not exist.
    """
    files = collect_images(list(paths))
    if not files:
        raise CamforensicsError(f"no {what} found in {', '.join(str(p) for p in paths)}")
    if on_start is not None:
        on_start(len(files))
    return files


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

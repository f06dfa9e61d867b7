"""The batch loop every command shares: one bad file never stops the run, its reason goes into the report."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from camforensics.errors import CamforensicsError
from camforensics.io.folders import collect_images
from camforensics.pipelines.executor import IN_PROCESS, Execution, Executor, Setup, Task
from camforensics.reports.journal import input_stamp
from camforensics.reports.report import Report

Work = Callable[[Path, dict[str, Any]], None]

# Where a worker pool starts to pay (bench/bench_examiner.py, "pool: extract N x 12 MP -j 1 / -j 2", 2 shared
# cores under load): 1 photo 3.8 s in-process vs 5.1 s in a pool, 2 photos 6.7 vs 8.0 s, 4 photos 7.1 vs 9.0 s.
# Starting the pool (forkserver, imports, each worker's setup) cost more than it saved up to 4 x 12 MP, so a
# batch of fewer than 50 megapixels in all runs in this process; --workers N still forces a pool.
POOL_MIN_MEGAPIXELS = 50.0
POOL_PROBE_MAX_FILES = 16  # above this many files the pool is used without reading headers
OnResult = Callable[[dict[str, Any], dict[str, Any]], None]


def run_tasks(
    files: Sequence[Path],
    task: Task,
    setup: Setup,
    report: Report,
    *,
    execution: Execution = IN_PROCESS,
    on_result: OnResult | None = None,
    tick: Callable[[], None] | None = None,
) -> list[Any]:
    """Run ``task`` over ``files`` (see :mod:`camforensics.pipelines.executor`) and add each result to ``report``.

    Results are added in input order. When the report's journal was opened to resume, inputs it finished
    successfully and that are unchanged (same path, size and mtime) are copied from it instead of being computed
    again; ``run.execution.n_resumed`` says how many. Any exception from one file becomes that file's ``error``
    and the batch goes on; KeyboardInterrupt stops it, with what is done kept in the journal (closed then).

    Parameters
    ----------
    on_result : callable, optional, keyword-only
        Called with ``(result, extras)`` of each input in order (to keep summary counts incrementally).
    tick : callable, optional, keyword-only
        Called after each input.

    Returns
    -------
    list
        The workers' harvests (see :meth:`Executor.harvest`), e.g. partial fingerprint accumulators.
    """
    journal = report.journal
    reuse = [journal is not None and journal.can_reuse(p) for p in files]
    todo_files = [p for p, r in zip(files, reuse) if not r]
    megapixels = job_megapixels(todo_files)
    execution = small_job_execution(execution, todo_files, megapixels=megapixels)
    if execution.scheduler is None and execution.n_workers == 1 and megapixels is not None:
        if megapixels < POOL_MIN_MEGAPIXELS:
            from camforensics.runtime.heap import small_pages_for_arrays

            small_pages_for_arrays()  # a short job: no huge-page compaction at first touch (runtime.heap)
    report.context["execution"] = {**execution.to_dict(), "n_resumed": sum(reuse)}
    stamps: dict[str, Any] = {}  # of the inputs handed out and not yet added (at most the in-flight ones)

    def todo() -> Iterator[Path]:
        for path, reused in zip(files, reuse):
            if not reused:
                stamps[str(path)] = input_stamp(path)  # before reading: a file changed meanwhile is redone
                yield path

    try:
        with Executor(task, setup, execution=execution) as ex:
            computed = ex.map(todo())
            for path, reused in zip(files, reuse):
                if reused:
                    result, extras, stamp = journal.reuse(path)  # type: ignore[union-attr]
                else:
                    result, extras = next(computed)
                    stamp = stamps.pop(str(path))
                report.add(result, stamp=stamp, extras=extras)
                if on_result is not None:
                    on_result(result, extras)
                if tick is not None:
                    tick()
            return ex.harvest()
    except BaseException:
        if journal is not None:
            journal.close()  # what is done stays on disk for --resume; the report is not returned
        raise


def job_megapixels(files: Sequence[Path]) -> float | None:
    """Megapixels of ``files`` in all, read from their headers; None for more than :data:`POOL_PROBE_MAX_FILES`
    files (not read: a large job). Unreadable headers count nothing (the task reports them)."""
    if len(files) > POOL_PROBE_MAX_FILES:
        return None
    from camforensics.io.images import read_header

    total = 0.0
    for path in files:
        try:
            _, w, h = read_header(path, max_pixels=1 << 62)
        except (CamforensicsError, OSError):
            continue  # the task reports it; a header that cannot be read costs no work
        total += w * h / 1e6
    return total


def small_job_execution(execution: Execution, files: Sequence[Path], *, megapixels: float | None = None) -> Execution:
    """``execution``, or an in-process one when the pool would not pay: the number of workers was not given and
    the files hold fewer than :data:`POOL_MIN_MEGAPIXELS` in all (read from their headers unless ``megapixels``
    gives :func:`job_megapixels` of them), or there is one."""
    if execution.workers is not None or execution.scheduler is not None or execution.n_workers == 1:
        return execution
    if len(files) > POOL_PROBE_MAX_FILES:
        return execution
    from dataclasses import replace

    total = job_megapixels(files) if megapixels is None else megapixels
    if len(files) <= 1 or (total is not None and total < POOL_MIN_MEGAPIXELS):
        return replace(execution, workers=1)
    return execution


def _call_work(path: Path, work: Work, record: dict[str, Any]) -> None:
    work(path, record)


def run_batch(paths: Iterable[Path], work: Work, report: Report, *, tick: Callable[[], None] | None = None) -> None:
    """Call ``work(path, record)`` for each path in this process and add the record to ``report``.

    ``work`` fills ``record`` (``record["input"]`` as soon as the image is read, then its results). Any
    exception from one file becomes that file's ``error`` and the loop goes on; KeyboardInterrupt still stops
    the run. For parallel runs use :func:`run_tasks` with a top-level task.
    """
    run_tasks(list(paths), _call_work, lambda: work, report, tick=tick)


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
    from camforensics.io.images import read_header

    try:
        _, width, height = read_header(path, max_pixels=1 << 62)  # a regular file only: a FIFO would block
        return width, height
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

"""What every command shares: report options, progress, rendering and the one place errors become exit codes.

Exit codes: 0 everything done; 1 the run finished but some inputs failed (see the report); 2 nothing could be
done (bad usage, missing library, ...): one line on stderr says why.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from camforensics.errors import CamforensicsError

if TYPE_CHECKING:
    from camforensics.pipelines.executor import Execution
    from camforensics.reports.report import Report

EXIT_OK, EXIT_SOME_FAILED, EXIT_FATAL = 0, 1, 2



class LazyConsole:
    """A rich ``Console`` made on first use (every attribute is the console's): importing rich took 0.02-0.03 s
    before a one-photo command could start reading its photo; :func:`read_ahead` imports it while the photo is
    decoded instead. :func:`real_console` gives the console itself (for rich's own classes)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(real_console(self), name)


def real_console(console: Any) -> Any:
    """The rich Console behind ``console`` (a :class:`LazyConsole`, made now), or ``console`` itself."""
    if not isinstance(console, LazyConsole):
        return console
    if console._console is None:
        from rich.console import Console

        console._console = Console(**console._options)
    return console._console


out: Any = LazyConsole(highlight=False, soft_wrap=True)
err: Any = LazyConsole(stderr=True, highlight=False, soft_wrap=True)

def fail(message: str, code: int = EXIT_FATAL) -> typer.Exit:
    """Print one clear error line and return the Exit to raise (``raise fail(...)``)."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)  # messages may hold [...]
    return typer.Exit(code)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn library errors into one line on stderr and exit code 2 (the one place this happens)."""
    try:
        yield
    except CamforensicsError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", code=130) from None


def check_outputs(inputs: Any, **outputs: Any) -> None:
    """Refuse output paths that would write an input or cannot be written, before any work (see
    :func:`camforensics.io.safety.check_outputs`)."""
    from camforensics.io.safety import check_outputs as check

    check(inputs, **outputs)


def one_photo_here(paths: Sequence[Path], *, workers: int | None, scheduler: str | None, resume: bool) -> bool:
    """Whether the run is one photo file in this process (the default for one photo: no pool, no cluster)."""
    return len(paths) == 1 and not resume and scheduler is None and workers in (None, 1) and Path(paths[0]).is_file()


def read_ahead(
    paths: Sequence[Path],
    *,
    max_pixels: int,
    workers: int | None,
    scheduler: str | None,
    resume: bool,
    prefault: bool = True,
    residual: Any = None,
) -> None:
    """Start decoding the photo of a one-photo run in the background while the command imports its pipeline
    (:func:`camforensics.io.images.prefetch_image`; the run then reads it in this process), then with ``residual``
    (the run's ResidualParams, for the numpy engine) compute its residual in another background thread as soon as
    it is decoded (:func:`camforensics.pipelines.ahead.start_residual`), else with ``prefault`` map the heap its work will touch (:func:`camforensics.runtime.heap.prefault`). Only after
    :func:`check_outputs`: it reads the input."""
    if not one_photo_here(paths, workers=workers, scheduler=scheduler, resume=resume):
        return
    import cv2  # noqa: F401 - the decoder's modules imported here, not in the reading thread: there their imports
    from PIL import Image  # noqa: F401 - took turns for the GIL with this thread's, and the decoding started later

    from camforensics.io.images import prefetch_image
    from camforensics.runtime import heap

    def then(image: Any) -> None:
        if residual is not None:
            from camforensics.pipelines.ahead import start_residual

            start_residual(image.pixels, residual)
        elif prefault:
            heap.prefault(heap.WORK_BYTES_PER_PIXEL * image.pixels.shape[0] * image.pixels.shape[1])

    prefetch_image(paths[0], max_pixels=max_pixels, then=then if residual is not None or prefault else None)
    # what the run needs only at its end (its words, its report's environment), imported while the photo is decoded
    from importlib import metadata  # noqa: F401

    real_console(out), real_console(err)


def check_format(fmt: str) -> str:
    from camforensics.reports.report import FORMATS

    if fmt not in FORMATS:
        raise CamforensicsError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def output_dir_of(output_dir: Path | None, inputs: Sequence[Path] = (), report: Path | None = None) -> Path:
    """The folder given, or a new ``camforensics_evaluate_<UTC time>``; refused (with ``report``) when it would
    write an input or cannot be written (see :func:`camforensics.io.safety.check_outputs`)."""
    from camforensics.io.safety import check_outputs

    folder = output_dir or Path(f"camforensics_evaluate_{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
    check_outputs(inputs, report=report, folder=folder, folder_option="--output-dir")
    return folder


def finish_evaluation(
    rep: Any, *, report: Path | None, fmt: str, quiet: bool, output_dir: Path, render: Callable[[], None]
) -> int:
    """Render the tables (``render``) and the errors and notes on a terminal, write the report (default
    ``OUT/report.<fmt>``), say where the outputs are; returns the exit code."""
    if human_output(report, quiet):
        render()
        show_errors(rep)
        for note in rep.summary.get("notes", []):
            err.print(f"[yellow]note[/]: {note}")
    target = report if report is not None else output_dir / f"report.{fmt}"
    code = emit_report(rep, target, fmt, quiet=quiet)
    if not quiet and str(target) != "-":
        err.print(f"metrics.json and the other outputs: {output_dir}")
    return code


def default_report_path(command: str, fmt: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"camforensics_{command}_{stamp}.{fmt}")


def execution_of(workers: int | None, scheduler: str | None, device: str = "cpu") -> Execution:
    """The :class:`~camforensics.pipelines.executor.Execution` of ``--workers`` / ``--scheduler`` / ``--device``.

    ``--device auto`` becomes ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without a usable GPU is an
    error that says why (see :func:`camforensics.accel.resolve_device`).
    """
    from camforensics.accel import resolve_device
    from camforensics.pipelines.executor import Execution

    return Execution(workers=workers, scheduler=scheduler, device=resolve_device(device))


REPORTS_ENV = "CAMFORENSICS_REPORTS"


def default_report_folder() -> Path:
    """Where a report goes when ``--report`` is not given: ``$CAMFORENSICS_REPORTS``, else
    ``$XDG_STATE_HOME/camforensics/reports`` (``~/.local/state/camforensics/reports``); never the working folder."""
    import os

    given = os.environ.get(REPORTS_ENV)
    if given:
        return Path(given)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "camforensics" / "reports"


def report_target(path: Path | None, command: str, fmt: str) -> Path:
    """Where the report goes: ``--report``, ``-`` for stdout, or a timestamped name (fixed now) in
    :func:`default_report_folder`."""
    return path if path is not None else default_report_folder() / default_report_path(command, fmt)


def journal_for(target: Path, *, resume: bool, given: bool) -> Path | None:
    """The journal beside the report (``REPORT.partial.jsonl``); None for a report on stdout (kept in memory).

    Raises
    ------
    CamforensicsError
        ``--resume`` without the interrupted run's ``--report``.
    """
    from camforensics.reports.journal import journal_path_for

    if resume and (not given or str(target) == "-"):
        raise CamforensicsError("--resume needs --report PATH: the report path of the interrupted run")
    if str(target) == "-":
        return None
    return journal_path_for(target)


@contextlib.contextmanager
def resume_hint(journal: Path | None) -> Iterator[None]:
    """On Ctrl-C, say where the finished results are kept and how to continue."""
    try:
        yield
    except KeyboardInterrupt:
        if journal is not None and journal.is_file():
            err.print(f"interrupted: finished results are kept in {literal(journal)}; run the same command with --resume")
        raise


class ProgressHooks:
    """``start(total)`` and ``tick()`` callbacks that pipelines call; drawn as a rich bar when one is shown."""

    def __init__(self, bar: Any | None, description: str) -> None:
        self._bar = bar
        self._description = description
        self._task: Any = None

    def start(self, total: int) -> None:
        if self._bar is not None:
            self._task = self._bar.add_task(self._description, total=total)

    def tick(self) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task)


@contextlib.contextmanager
def progress(description: str, *, quiet: bool) -> Iterator[ProgressHooks]:
    """Progress callbacks for a pipeline; a bar on stderr only when it is a terminal and not ``quiet``."""
    if quiet or not sys.stderr.isatty():
        yield ProgressHooks(None, description)
        return
    with progress_bar() as bar:
        yield ProgressHooks(bar, description)


def progress_bar() -> Any:
    """The rich progress bar every long command draws on stderr (description, bar, n/total, elapsed, eta)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=real_console(err), transient=True)


def emit_report(report: Report, path: Path | None, fmt: str, *, quiet: bool) -> int:
    """Write the report, say where (unless quiet or on stdout) and return the exit code of the run.

    A journaled report is assembled from its journal, which is deleted once the report is written.
    """
    if report.finished is None:
        report.finish()
    if path is not None and str(path) == "-":
        report.write_to(sys.stdout, fmt=fmt)
    else:
        target = path or default_report_folder() / default_report_path(report.command, fmt)
        written = write_report_keeping_work(report, target, fmt)
        if not quiet:
            err.print(f"report: {literal(', '.join(str(p) for p in written))}")
    if report.journal is not None:
        report.journal.discard()
    failed = report.n_failed
    if failed:
        err.print(f"[yellow]{failed} of {report.n_inputs} inputs failed[/]; their reasons are in the report")
        return EXIT_SOME_FAILED
    return EXIT_OK


def write_report_keeping_work(report: Report, target: Path, fmt: str) -> list[Path]:
    """``report.write``; when the destination fails after the work (it was checked before), the finished results
    are not lost: a journal is kept for ``--resume``, else the report goes to a timestamped file in the working
    folder. Either way one line says where.
    """
    try:
        return report.write(target, fmt=fmt)
    except OSError as exc:
        reason = f"could not write the report {target} ({exc.strerror or exc})"
    if report.journal is not None:
        report.journal.close()
        raise CamforensicsError(
            f"{reason}; the finished results are kept in {report.journal.path}: make the path writable and run the "
            "same command with --resume"
        )
    fallback = default_report_path(report.command, fmt)
    try:
        written = report.write(fallback, fmt=fmt)
    except OSError:
        raise CamforensicsError(f"{reason}, nor {fallback} in the working folder") from None
    err.print(f"[yellow]{literal(reason)}[/]; written to {literal(fallback)} instead")
    if report.journal is not None:
        report.journal.discard()
    return written


def literal(text: Any) -> str:
    """``text`` shown as it is by rich (a file name such as ``[red]x.jpg`` is not markup)."""
    from rich.markup import escape

    return escape(str(text))


def show_errors(report: Report) -> None:
    """List failed inputs with their one-line reasons on stderr."""
    if not report.n_failed:
        return
    for r in report.iter_results():
        if r["status"] != "ok":
            err.print(f"[red]failed[/] {literal(r['input'].get('path'))}: {literal(r['error']['message'])}", highlight=False)


def human_output(path: Path | None, quiet: bool) -> bool:
    """Tables go to stdout unless quiet or the report itself goes to stdout."""
    return not quiet and not (path is not None and str(path) == "-")

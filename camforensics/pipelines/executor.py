"""One execution layer for every batch command: in this process, in worker processes, or on a Dask cluster.

A batch is described by two picklable things, so that the same algorithm runs unchanged wherever it runs:

- a *setup*: an object whose call ``setup()`` builds a worker's state (a library index, parameters, a partial
  fingerprint). Each worker builds it once and reuses it for every file it is given.
- a *task*: a top-level function ``task(path, state, record)`` that fills ``record`` for one file
  (``record["input"]`` as soon as the image is read, then its results). Keys starting with ``_`` are *extras*:
  they travel back to the caller (without the ``_``) and into the journal, but never into the report.

:func:`run_one` turns one call into a result exactly as the batch loop always did: any exception becomes that
file's ``error`` and the batch goes on. A state may define ``harvest()``: what a worker hands back after its last
file (enroll's partial fingerprint accumulator, merged by the caller).

Executors (chosen by :class:`Execution`): in this process (``workers=1``); a pool of ``workers`` processes
started with ``forkserver`` (``spawn`` where that is missing), fed through a bounded queue so memory stays flat,
results returned in input order; a Dask cluster (``scheduler=ADDRESS``), state cached per worker thread.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camforensics.errors import CamforensicsError, ParameterError
from camforensics.reports.report import clean, error_record

Task = Callable[[Path, Any, dict[str, Any]], None]
Setup = Callable[[], Any]
Outcome = tuple[dict[str, Any], dict[str, Any]]  # (result for the report, extras for the caller)

IN_FLIGHT_PER_WORKER = 4  # files queued per worker ahead of the oldest unfinished one: keeps workers busy, memory flat
POLL_S = 0.5  # how often the pool checks that its workers are alive while waiting for a result


@dataclass(frozen=True)
class Execution:
    """Where and how wide a batch runs (recorded in the report's ``run.execution``)."""

    workers: int | None = None  # worker processes; None: one per core; 1: in this process, no pool
    scheduler: str | None = None  # address of a Dask scheduler (e.g. tcp://host:8786); takes precedence over workers
    in_flight: int | None = None  # files handed out ahead of the oldest unfinished one; None: 4 per worker
    device: str = "cpu"  # compute device: "cpu" (numpy engine), "cuda"/"cuda:N" (torch backend; one process)

    def __post_init__(self) -> None:
        from camforensics.pipelines.device import check_device

        check_device(self.device)
        if self.workers is not None and self.workers < 1:
            raise ParameterError(f"workers must be >= 1, got {self.workers!r}; use 1 to run in this process")
        if self.in_flight is not None and self.in_flight < 1:
            raise ParameterError(f"in_flight must be >= 1, got {self.in_flight!r}")

    @property
    def n_workers(self) -> int:
        """Worker processes of a local run (the number of cores when not given; one process for a GPU)."""
        if self.device != "cpu":
            return 1
        return self.workers if self.workers is not None else max(1, os.cpu_count() or 1)

    def to_dict(self) -> dict[str, Any]:
        from camforensics.pipelines.device import describe

        device = describe(self.device)
        if self.scheduler is not None:
            return {"executor": "dask", "scheduler": self.scheduler, "device": device}
        n = self.n_workers
        return {"executor": "in-process" if n == 1 else "processes", "workers": n, "device": device}


IN_PROCESS = Execution(workers=1)


def run_one(task: Task, state: Any, path: Path) -> Outcome:
    """Run ``task`` on one file; an exception becomes the file's ``error`` (the batch must survive any file).

    Returns
    -------
    (result, extras)
        ``result`` has ``input``, ``status`` and the task's members, JSON-safe; ``extras`` the ``_`` members
        (named without the ``_``).
    """
    record: dict[str, Any] = {"input": {"path": str(path)}}
    try:
        task(path, state, record)
    except Exception as exc:  # noqa: BLE001 - a batch must survive any one file; the reason is reported
        failure: dict[str, Any] | None = error_record(exc)
    else:
        failure = None
    extras = {k[1:]: record.pop(k) for k in [k for k in record if k.startswith("_")]}
    result = {"input": record.pop("input"), "status": "ok" if failure is None else "error", **record}
    if failure is not None:
        result["error"] = failure
    return clean(result), clean(extras)


class Executor:
    """Runs ``task`` over files with one ``setup`` per worker; use as a context manager.

    Parameters
    ----------
    task : callable
        Top-level function ``task(path, state, record)``.
    setup : callable
        Picklable; ``setup()`` builds a worker's state.
    execution : Execution, keyword-only

    Raises
    ------
    CamforensicsError
        ``scheduler`` given but Dask is not installed, or the scheduler cannot be reached.
    """

    def __init__(self, task: Task, setup: Setup, *, execution: Execution = IN_PROCESS) -> None:
        self.execution = execution
        if execution.scheduler is not None:
            self._impl: _InProcess | _ProcessPool | _DaskPool = _DaskPool(task, setup, execution)
        elif execution.n_workers == 1:
            self._impl = _InProcess(task, setup)
        else:
            self._impl = _ProcessPool(task, setup, execution)

    def map(self, paths: Iterable[Path]) -> Iterator[Outcome]:
        """(result, extras) of every path, in input order."""
        return self._impl.map(paths)

    def harvest(self) -> list[Any]:
        """What each worker's state hands back (``state.harvest()``) after its last file; call once, at the end.

        Raises
        ------
        CamforensicsError
            If a worker died, so that its share is lost.
        """
        return [h for h in self._impl.harvest() if h is not None]

    def close(self, *, abort: bool = False) -> None:
        self._impl.close(abort=abort)

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(abort=exc_type is not None)


def _harvest_of(state: Any) -> Any:
    harvest = getattr(state, "harvest", None)
    return harvest() if callable(harvest) else None


class _InProcess:
    def __init__(self, task: Task, setup: Setup) -> None:
        self.task, self.setup = task, setup
        self.state: Any = None
        self.built = False

    def _state(self) -> Any:
        if not self.built:
            self.state, self.built = self.setup(), True
        return self.state

    def map(self, paths: Iterable[Path]) -> Iterator[Outcome]:
        for path in paths:
            yield run_one(self.task, self._state(), Path(path))

    def harvest(self) -> list[Any]:
        return [_harvest_of(self.state)] if self.built else []

    def close(self, *, abort: bool = False) -> None:
        self.state = None


# ---------------------------------------------------------------------------------------------- process pool


class _Outbox:
    """Worker -> parent messages, written synchronously (a pipe and a lock, no feeder thread): a message sent is
    in the pipe before the worker can die, so the parent always knows which file a dead worker was on."""

    def __init__(self, ctx: Any) -> None:
        self.reader, self.writer = ctx.Pipe(duplex=False)
        self.lock = ctx.Lock()

    def put(self, msg: tuple) -> None:
        with self.lock:
            self.writer.send(msg)

    def get(self, timeout: float) -> tuple | None:
        return self.reader.recv() if self.reader.poll(timeout) else None

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


def _worker_main(task: Task, setup: Setup, inbox: Any, outbox: _Outbox) -> None:
    """A pool worker: build the state once, run files until the stop sign, then hand back the harvest."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent decides
    outbox.reader.close()
    pid = os.getpid()
    from camforensics.runtime.heap import retain_freed_memory
    from camforensics.core.residual import set_channel_threads

    retain_freed_memory()  # as the command line does (camforensics.runtime.heap)
    set_channel_threads(False)  # one process per core already keeps the cores busy
    try:
        state = setup()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops the run with the reason
        outbox.put(("init_error", pid, f"{type(exc).__name__}: {exc}"))
        return
    while True:
        item = inbox.get()
        if item is None:
            break
        i, path = item
        outbox.put(("start", i, pid))
        result, extras = run_one(task, state, path)
        outbox.put(("result", i, result, extras))
    try:
        outbox.put(("final", pid, _harvest_of(state)))
    except BaseException as exc:  # noqa: BLE001
        outbox.put(("init_error", pid, f"harvest failed: {type(exc).__name__}: {exc}"))


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    # Never fork: the parent may already run threads (the denoiser's channel pool), and a forked lock can hang.
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class _ProcessPool:
    def __init__(self, task: Task, setup: Setup, execution: Execution) -> None:
        self.task, self.setup = task, setup
        self.n = execution.n_workers
        self.in_flight = execution.in_flight or IN_FLIGHT_PER_WORKER * self.n
        self.ctx = _context()
        if self.ctx.get_start_method() == "forkserver":
            self.ctx.set_forkserver_preload([task.__module__])  # ignored once the server runs
        self.inbox = self.ctx.Queue()
        self.outbox = _Outbox(self.ctx)
        self.procs: dict[int, Any] = {}
        self.working: dict[int, int] = {}  # pid -> index of the file it is on
        self.lost: list[str] = []  # files whose worker died
        self.finals: list[Any] = []
        self.stopped = False
        for _ in range(self.n):
            self._spawn()

    def _spawn(self) -> None:
        p = self.ctx.Process(target=_worker_main, args=(self.task, self.setup, self.inbox, self.outbox), daemon=True)
        p.start()
        self.procs[p.pid] = p

    def _get(self) -> tuple:
        """The next message; a worker that died is noticed while waiting (and replaced while files remain)."""
        while True:
            msg = self.outbox.get(POLL_S)
            if msg is not None:
                return msg
            for pid, p in list(self.procs.items()):
                if p.is_alive():
                    continue
                del self.procs[pid]
                i = self.working.pop(pid, None)
                if i is not None or self.stopped:
                    return ("died", i, pid, p.exitcode)
                self._spawn()

    def map(self, paths: Iterable[Path]) -> Iterator[Outcome]:
        todo = enumerate(paths)
        pending: dict[int, Path] = {}  # submitted and not yet yielded
        done: dict[int, Outcome] = {}
        next_out = 0
        exhausted = False

        def fill() -> None:
            nonlocal exhausted
            while not exhausted and len(pending) < self.in_flight:
                try:
                    i, path = next(todo)
                except StopIteration:
                    exhausted = True
                    return
                pending[i] = Path(path)
                self.inbox.put((i, Path(path)))

        fill()
        while pending:
            msg = self._get()
            kind = msg[0]
            if kind == "start":
                self.working[msg[2]] = msg[1]
            elif kind == "result":
                done[msg[1]] = (msg[2], msg[3])
                self.working = {pid: i for pid, i in self.working.items() if i != msg[1]}
            elif kind == "died":
                _, i, pid, code = msg
                path = pending[i]
                self.lost.append(str(path))
                exc = CamforensicsError(f"the worker process died (exit code {code}) while processing this file")
                done[i] = ({"input": {"path": str(path)}, "status": "error", "error": error_record(exc)}, {})
                self._spawn()
            elif kind == "init_error":
                raise CamforensicsError(f"a worker process could not start: {msg[2]}")
            while next_out in done:
                outcome = done.pop(next_out)
                del pending[next_out]
                next_out += 1
                yield outcome
            fill()

    def _stop(self) -> None:
        """Send the stop sign and collect every live worker's harvest."""
        if self.stopped:
            return
        self.stopped = True
        for _ in self.procs:
            self.inbox.put(None)
        expected = set(self.procs)
        while expected:
            msg = self._get()
            if msg[0] == "final":
                self.finals.append(msg[2])
                expected.discard(msg[1])
            elif msg[0] == "died" and msg[2] in expected:
                self.lost.append(f"(its last files: worker {msg[2]} exited with code {msg[3]})")
                expected.discard(msg[2])
            elif msg[0] == "init_error":
                raise CamforensicsError(f"a worker process failed: {msg[2]}")
        for p in self.procs.values():
            p.join(timeout=10)

    def harvest(self) -> list[Any]:
        self._stop()
        if self.lost:
            raise CamforensicsError(
                f"a worker process died while processing {', '.join(self.lost)}; its share of the work is lost. "
                "Remove that file (or run with --workers 1 to see the failure) and run again"
            )
        return self.finals

    def close(self, *, abort: bool = False) -> None:
        if abort or self.stopped:
            for p in self.procs.values():
                if p.is_alive() and abort:
                    p.terminate()
            for p in self.procs.values():
                p.join(timeout=10)
        else:
            try:
                self._stop()
            except CamforensicsError:
                pass  # a harvest nobody asked for
        self.procs.clear()
        self.inbox.close()
        self.inbox.cancel_join_thread()
        self.outbox.close()


# ---------------------------------------------------------------------------------------------- dask

_DASK_STATES: dict[tuple[str, int], Any] = {}  # (run id, thread id) -> state, in each Dask worker process
_DASK_LOCK = threading.Lock()


def _dask_call(task: Task, setup: Setup, run_id: str, path: Path) -> Outcome:
    """Runs on a Dask worker: the thread's state for this run (built once), then :func:`run_one`."""
    key = (run_id, threading.get_ident())
    with _DASK_LOCK:
        state = _DASK_STATES.get(key)
    if state is None:
        state = setup()
        with _DASK_LOCK:
            _DASK_STATES[key] = state
    return run_one(task, state, Path(path))


def _dask_harvest(run_id: str) -> list[Any]:
    """Runs on every Dask worker at the end: the harvests of this run's states in its process (and forgets them)."""
    with _DASK_LOCK:
        keys = [k for k in _DASK_STATES if k[0] == run_id]
        states = [_DASK_STATES.pop(k) for k in keys]
    return [_harvest_of(s) for s in states]


def _dask_forget(run_id: str) -> None:
    with _DASK_LOCK:
        for k in [k for k in _DASK_STATES if k[0] == run_id]:
            del _DASK_STATES[k]


def dask_client(address: str) -> Any:
    """A ``dask.distributed.Client`` connected to ``address``.

    Raises
    ------
    CamforensicsError
        Dask is not installed (the message says how to install it) or the scheduler cannot be reached.
    """
    try:
        from distributed import Client
    except ImportError:
        raise CamforensicsError(
            "--scheduler needs Dask: install it with pip install 'camforensics[dask]' (or run without --scheduler)"
        ) from None
    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise CamforensicsError(f"cannot reach the Dask scheduler at {address} ({exc}); is it running?") from None


class _DaskPool:
    def __init__(self, task: Task, setup: Setup, execution: Execution) -> None:
        self.task = task
        self.client = dask_client(str(execution.scheduler))
        self.run_id = uuid.uuid4().hex
        threads = sum(self.client.nthreads().values()) or 1
        self.in_flight = execution.in_flight or IN_FLIGHT_PER_WORKER * threads
        # Sent once to every worker; each task refers to it instead of carrying its own copy.
        [self.setup] = self.client.scatter([setup], broadcast=True, hash=False)
        self.pending: collections.deque = collections.deque()

    def _result(self) -> Outcome:
        path, future = self.pending.popleft()
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: that file fails, the batch goes on
            return {"input": {"path": str(path)}, "status": "error", "error": error_record(exc)}, {}

    def map(self, paths: Iterable[Path]) -> Iterator[Outcome]:
        for path in paths:
            future = self.client.submit(_dask_call, self.task, self.setup, self.run_id, Path(path), pure=False)
            self.pending.append((path, future))
            if len(self.pending) >= self.in_flight:
                yield self._result()
        while self.pending:
            yield self._result()

    def harvest(self) -> list[Any]:
        per_worker = self.client.run(_dask_harvest, self.run_id)
        return [h for parts in per_worker.values() for h in parts]

    def close(self, *, abort: bool = False) -> None:
        try:
            for _, future in self.pending:
                future.cancel()
            self.pending.clear()
            self.client.run(_dask_forget, self.run_id)
        finally:
            self.client.close()

"""A helper process forked at a command's start, to use the second core for GIL-bound work (drawing pictures).

A one-photo ``extract`` spends about 0.3 s of CPU importing matplotlib and 0.3 s drawing and encoding its two
pictures: Python code that holds the GIL, so a thread cannot run it beside the residual. :func:`start` forks a
helper (Linux; where nothing else runs in the process yet) that prepares (imports, builds) while the parent
decodes the photo and computes the residual; :meth:`Helper.submit` then hands it a call (a module-level function
and small arguments, pickled through a pipe), which the helper runs in a child of its own (``fork`` again: the
imports are shared), so that several calls run at once; :meth:`Helper.result` returns the call's value or raises
its error as a :class:`~camforensics.errors.CamforensicsError` that names it (a call never fails silently).

No process outlives its parent's use of it: the helper and its children ignore Ctrl-C (the parent decides), the
helper waits for its children and exits when the parent closes its end of the job pipe (:meth:`Helper.close`,
which then waits for it; a helper given no call is killed at once: it has nothing to finish), or when the parent
dies (the pipe's end closes with it). The children exit after their call. Helpers started and never claimed are
closed when the interpreter exits, or by :func:`discard`.

Nothing here knows about pictures: the caller says what to prepare and what to call.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import signal
import struct
import sys
import threading
from collections.abc import Callable
from typing import Any, Self

from camforensics.errors import CamforensicsError

_HEADER = struct.Struct("<Q")
_HELPERS: dict[str, Helper] = {}


class Helper:
    """The parent's handle on a forked helper (see the module's text); at most ``slots`` calls in its life."""

    def __init__(self, pid: int, jobs: int, results: list[int], owner: int) -> None:
        self.pid = pid  # the helper process
        self.owner = owner  # the process that forked it (a handle copied into another process is not its own)
        self._jobs = jobs  # write end of the job pipe
        self._results = results  # read ends, one per call
        self._next = 0
        self._writer: threading.Thread | None = None
        self._write_error: list[BaseException] = []
        self.children: list[int] = []  # the pids that ran the calls (reported by them)
        self.closed = False

    @property
    def slots(self) -> int:
        return len(self._results)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
        """Hand ``fn(*args, **kwargs)`` to the helper (in a background thread: the helper may still be importing);
        returns the call's slot for :meth:`result`."""
        if self.closed or self._next >= self.slots:
            raise CamforensicsError(f"helper process {self.pid} takes no more calls (it has {self.slots} slots)")
        payload = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        previous = self._writer

        def write() -> None:
            if previous is not None:
                previous.join()  # the calls in order
            try:
                _write(self._jobs, payload)
            except BaseException as exc:  # noqa: BLE001 - raised by result()
                self._write_error.append(exc)

        self._writer = threading.Thread(target=write, name="camforensics-helper-submit", daemon=True)
        self._writer.start()
        slot = self._next
        self._next += 1
        return slot

    def result(self, slot: int) -> Any:
        """The value of the call in ``slot``, or its error (as a CamforensicsError naming the helper's message)."""
        message = _read(self._results[slot])
        if message is None:
            writer = self._writer
            if writer is not None:
                writer.join()
            why = f": {self._write_error[0]}" if self._write_error else ""
            status = self._reap(block=False)
            raise CamforensicsError(
                f"the helper process {self.pid} stopped before returning its result{why}"
                + (f" ({status})" if status else "")
                + "; run again, or with --no-png to skip the pictures"
            )
        ok, value, pid = pickle.loads(message)
        self.children.append(pid)
        if not ok:
            raise CamforensicsError(f"in the helper process: {value}")
        return value

    def close(self) -> None:
        """Close the job pipe and the result pipes and wait for the helper (it waits for its children)."""
        if self.closed or os.getpid() != self.owner:
            return
        self.closed = True
        if self._next == 0:  # given no call: nothing to finish (it may still be preparing)
            self._kill()
        if self._writer is not None:
            self._writer.join(timeout=2.0)
            if self._writer.is_alive():  # the helper takes no job (still importing, or stuck): end it
                self._kill()
        for fd in [self._jobs, *self._results]:
            try:
                os.close(fd)
            except OSError:
                pass
        self._reap(block=True)

    def _kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _reap(self, *, block: bool) -> str:
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return ""
        if pid == 0:
            return ""
        if os.WIFSIGNALED(status):
            return f"killed by signal {os.WTERMSIG(status)}"
        return f"exit status {os.WEXITSTATUS(status)}" if os.WEXITSTATUS(status) else ""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def can_fork() -> bool:
    """Whether :func:`start` may fork here: Linux, and no other thread running (a fork copies only the calling
    thread, so a lock another thread holds would stay held in the child)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and threading.active_count() == 1


def idle_cores() -> int:
    """The cores this process may use that nothing else is running on now: its CPU affinity less the tasks the
    kernel counts as runnable at this instant (``/proc/loadavg``, this process included). 0 where unknown."""
    try:
        with open("/proc/loadavg", "rb") as f:
            runnable = int(f.read().split()[3].split(b"/")[0])
        return max(0, len(os.sched_getaffinity(0)) - runnable)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def start(name: str, *, prepare: Callable[[], object] | None = None, slots: int = 2) -> Helper | None:
    """Fork a helper registered as ``name`` that runs ``prepare()`` (imports, state its calls will use: the
    children inherit it; its errors are left to the calls, which then meet them) and then up to ``slots`` calls;
    None where :func:`can_fork` says no, no core is idle (:func:`idle_cores`: on a busy machine a second process
    only adds its overhead) or the fork fails (the caller then does the work itself)."""
    if name in _HELPERS or not can_fork() or idle_cores() < 1:
        return None
    jobs_r, jobs_w = os.pipe()
    pipes = [os.pipe() for _ in range(slots)]
    try:
        pid = os.fork()
    except OSError:
        for fd in (jobs_r, jobs_w, *[fd for p in pipes for fd in p]):
            os.close(fd)
        return None
    if pid == 0:  # the helper
        code = 1
        try:
            os.close(jobs_w)
            for r, _ in pipes:
                os.close(r)
            code = _serve(jobs_r, [w for _, w in pipes], prepare)
        finally:
            os._exit(code)
    os.close(jobs_r)
    for _, w in pipes:
        os.close(w)
    helper = Helper(pid, jobs_w, [r for r, _ in pipes], os.getpid())
    _HELPERS[name] = helper
    if len(_HELPERS) == 1:
        atexit.register(_close_all)
    return helper


def started(name: str) -> bool:
    """Whether a helper registered as ``name`` was started by this process and not claimed yet."""
    helper = _HELPERS.get(name)
    return helper is not None and helper.owner == os.getpid()


def claim(name: str) -> Helper | None:
    """The helper started as ``name`` in this process (once: the claimant closes it), or None."""
    helper = _HELPERS.pop(name, None)
    if helper is not None and helper.owner != os.getpid():
        return None  # a copy of the registry in a forked worker
    return helper


def discard(name: str) -> None:
    """Close the helper ``name`` if nobody claimed it (e.g. the run failed before it drew anything)."""
    helper = claim(name)
    if helper is not None:
        helper.close()


def _close_all() -> None:
    for name in list(_HELPERS):
        discard(name)


def _serve(jobs: int, results: list[int], prepare: Callable[[], object] | None) -> int:
    """The helper's life: prepare, then fork a child per call; wait for them when the parent closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if prepare is not None:
        with contextlib.suppress(Exception):  # the calls that need it fail with the same error, reported there
            prepare()
    children = []
    for slot, out in enumerate(results):
        payload = _read(jobs)
        if payload is None:
            break
        try:
            pid = os.fork()
        except OSError as exc:
            _write(out, pickle.dumps((False, f"could not fork: {exc}", os.getpid())))
            os.close(out)
            continue
        if pid == 0:
            code = 1
            try:
                for other in results[slot + 1 :]:
                    os.close(other)
                os.close(jobs)
                code = _call(payload, out)
            finally:
                os._exit(code)
        os.close(out)
        children.append(pid)
    for other in results[len(children) :]:
        try:
            os.close(other)
        except OSError:
            pass
    for pid in children:
        os.waitpid(pid, 0)
    return 0


def _call(payload: bytes, out: int) -> int:
    try:
        fn, args, kwargs = pickle.loads(payload)
        message = pickle.dumps((True, fn(*args, **kwargs), os.getpid()), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, raised there
        message = pickle.dumps((False, f"{type(exc).__name__}: {exc}", os.getpid()))
    try:
        _write(out, message)
    except OSError:
        return 1  # the parent is gone
    return 0


def _write(fd: int, payload: bytes) -> None:
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _read(fd: int) -> bytes | None:
    """One message from ``fd``, or None at the end of the pipe."""
    head = _read_exactly(fd, _HEADER.size)
    if head is None:
        return None
    return _read_exactly(fd, _HEADER.unpack(head)[0])


def _read_exactly(fd: int, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)

"""Ending the command-line process without the interpreter's teardown.

When a command is done, a normal interpreter exit still finalises every module and object it loaded: numpy,
OpenCV, onnxruntime's sessions, matplotlib. That took 0.05-0.2 s of wall time after a one-photo ``identify`` or
``extract`` (2-core machine; its output, reports and files were all written by then). :func:`leave` does what
that exit does for the program's results, then ends the process at once:

1. flushes ``sys.stdout`` and ``sys.stderr``;
2. waits for the threads that are not daemons, as the interpreter does (``threading._shutdown``: it also shuts
   down idle ``concurrent.futures`` pools);
3. runs the ``atexit`` handlers (helper processes closed, temporary folders removed, logging flushed);
4. flushes the two streams again and calls ``os._exit`` with the exit status.

What it skips: finalising modules and objects that are still alive. A file opened for writing and never closed
would lose what is still in its buffer: the command line closes every file it writes (reports and outputs through
:mod:`camforensics.reports.atomic`, the journal at the end of the run). Where the interpreter lacks
``threading._shutdown`` or a stream cannot be flushed (a closed pipe), the exit is the interpreter's own.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_status(code: object) -> int | None:
    """The process exit status of ``SystemExit(code)`` (None -> 0, int -> itself), or None where the interpreter
    would print ``code`` (a message) and exit with 1: left to it."""
    if code is None:
        return 0
    if isinstance(code, int) and not isinstance(code, bool):
        return code & 0xFF
    return None


def _flushed() -> bool:
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return False
    return True


def leave(code: object = 0) -> NoReturn:
    """End the process with the status of ``SystemExit(code)`` after the steps in the module's text; raises
    ``SystemExit(code)`` instead (the interpreter's own exit) where they cannot all be done."""
    status = exit_status(code)
    shutdown = getattr(threading, "_shutdown", None)
    if (
        status is None
        or shutdown is None
        or threading.current_thread() is not threading.main_thread()
        or not _flushed()
    ):
        raise SystemExit(code)
    shutdown()  # the non-daemon threads, and the pools of concurrent.futures
    atexit._run_exitfuncs()
    if not _flushed():
        status = status or 120  # what the interpreter returns when it cannot flush stdout at exit
    os._exit(status)

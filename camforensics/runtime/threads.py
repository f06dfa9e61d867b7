"""The engine's threads: one small pool for work on row strips and colour channels of one image.

OpenCV's filters and numpy's element-wise kernels release the GIL, so one image's passes can use every core from
threads, without the memory of a second image in flight. The batch commands' worker processes turn these threads
off (:func:`set_threads`): one process per core already keeps the cores busy.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

_POOL: ThreadPoolExecutor | None = None
_enabled = True
_limit = min(4, os.cpu_count() or 1)  # threads per piece of work (the pool's size)

# Below this many elements an array is processed in one piece: splitting it costs more than it saves.
STRIP_MIN_ELEMENTS = 1 << 18


_opencv_default: int | None = None  # OpenCV's own thread count before this module changed it


def set_threads(enabled: bool) -> None:
    """Allow or forbid the engine's threads in this process, OpenCV's own worker threads included (forbidden:
    one thread; allowed again: OpenCV's default)."""
    global _enabled, _opencv_default
    _enabled = bool(enabled)
    import cv2

    if _opencv_default is None:
        _opencv_default = cv2.getNumThreads()
    cv2.setNumThreads(_opencv_default if _enabled else 1)


@contextmanager
def opencv_single_threaded() -> Iterator[None]:
    """OpenCV runs each call on the calling thread only, for the duration: for work that already runs one piece
    per core in the engine's threads, where OpenCV's own threads would only oversubscribe the cores (process-wide
    while it lasts; restored after)."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


_BLAS: list[Any] = []  # the threadpoolctl controller, made on first use (scanning the loaded libraries: ~15 ms)


@contextmanager
def blas_single_threaded() -> Iterator[None]:
    """BLAS (OpenBLAS, MKL) runs each call on the calling thread only, for the duration: for many small matrix
    products issued from the engine's own threads, where BLAS's threads would spin beside them and burn several
    times the work's CPU (process-wide while it lasts; restored after). Without threadpoolctl (a dependency of
    scikit-learn), BLAS keeps its threads."""
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover (installed with scikit-learn)
        yield
        return
    if not _BLAS:
        _BLAS.append(threadpoolctl.ThreadpoolController())
    with _BLAS[0].limit(limits=1, user_api="blas"):
        yield


def threads_enabled() -> bool:
    """Whether this process may run the engine's threads."""
    return _enabled


_PREFIX = "camforensics"


_local = threading.local()


@contextmanager
def unsplit() -> Iterator[None]:
    """Work on this thread is not split over the pool for the duration: for a thread that runs beside pool tasks
    it submitted itself (its strips would queue behind them and wait)."""
    before = getattr(_local, "unsplit", False)
    _local.unsplit = True
    try:
        yield
    finally:
        _local.unsplit = before


def width() -> int:
    """How many threads one piece of work is split over here: 1 when threads are off, inside the pool's own
    threads (work already running in parallel there, e.g. one colour channel each, must not wait on the pool), and
    within :func:`unsplit`."""
    if not _enabled or getattr(_local, "unsplit", False) or in_pool():
        return 1
    return _limit


def in_pool() -> bool:
    """Whether this thread is one of the pool's (named ``camforensics_<n>`` by ThreadPoolExecutor). The program's
    other named threads (``camforensics-residual-ahead``, ``camforensics-prefetch-image``, ...) are not: work they
    run may be split over the pool (the residual computed ahead ran on one core, its row strips unsplit, while the
    other core waited: issue 21)."""
    return threading.current_thread().name.startswith(_PREFIX + "_")


def pool() -> ThreadPoolExecutor:
    """The process's shared pool (created on first use)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(2, _limit), thread_name_prefix=_PREFIX)
    return _POOL


def strip_bounds(n_rows: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` consecutive row ranges covering ``0..n_rows`` (sizes differ by at most one)."""
    edges = [n_rows * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1]) for i in range(parts) if edges[i + 1] > edges[i]]


def parts_for(shape: tuple[int, ...], halo: int = 0) -> int:
    """Number of row strips an array of ``shape`` is worth splitting into (1: do it in one piece)."""
    parts = width()
    if parts < 2 or int(np.prod(shape)) < STRIP_MIN_ELEMENTS or shape[0] < parts * max(8, 4 * halo):
        return 1
    return parts


def _run(fn: Callable[[int, int], None], bounds: list[tuple[int, int]]) -> None:
    # The first strip runs on this thread: one task fewer to hand over.
    futures = [pool().submit(fn, a, b) for a, b in bounds[1:]]
    if bounds:
        fn(*bounds[0])
    for f in futures:
        f.result()


def for_row_strips(fn: Callable[[int, int], None], n_rows: int, size: int) -> None:
    """Call ``fn(r0, r1)`` for row strips covering ``0..n_rows``, in threads when the work (``size`` elements in
    all) is worth splitting; ``fn`` writes its own strip of some output."""
    if n_rows > 0:
        _run(fn, strip_bounds(n_rows, parts_for((n_rows, max(1, size // n_rows)))))


def both(first: Callable[[], Any], second: Callable[[], Any], *, size: int) -> tuple[Any, Any]:
    """``(first(), second())``, the second in the pool while the first runs here, where threads are allowed and the
    work (``size`` elements in all) is worth splitting (:func:`parts_for`); one after the other otherwise. For two
    independent calls that let go of the GIL (OpenCV's, numpy's)."""
    if parts_for((max(1, size), 1)) < 2:
        return first(), second()
    other = pool().submit(second)
    return first(), other.result()


def for_col_strips(fn: Callable[[int, int], None], n_cols: int, size: int) -> None:
    """Call ``fn(c0, c1)`` for column strips covering ``0..n_cols`` (for filters along columns, which need no
    rows of context), in threads when the work (``size`` elements in all) is worth splitting."""
    if n_cols > 0:
        _run(fn, strip_bounds(n_cols, parts_for((n_cols, max(1, size // n_cols)))))


def map_row_strips(
    fn: Callable[[np.ndarray, slice, np.ndarray], None], src: np.ndarray, *, halo: int = 0
) -> np.ndarray:
    """A new float32 array of ``src``'s shape computed on row strips in threads, for an operation whose output
    row ``i`` depends only on input rows ``i - halo .. i + halo`` (a filter).

    ``fn(block, inner, dst)`` gets a strip of ``src`` with up to ``halo`` rows of context on either side, the
    rows ``inner`` of ``block`` that it must compute, and the view ``dst`` of the output to write them into. The
    result equals the operation on the whole array wherever it treats rows beyond the array the same way: the
    strips only cut inside the array, and their context rows are read, never written.
    """
    n = src.shape[0]
    out = np.empty(src.shape, np.float32)

    def job(r0: int, r1: int) -> None:
        a, b = max(0, r0 - halo), min(n, r1 + halo)
        fn(src[a:b], slice(r0 - a, r1 - a), out[r0:r1])

    if n > 0:
        _run(job, strip_bounds(n, parts_for(src.shape, halo)))
    return out

"""How the C allocator serves the engine's large arrays (glibc on Linux).

Each image's denoising allocates and frees a few hundred MB of float32 arrays of a few MB to tens of MB. glibc's
defaults give arrays above its mmap threshold (at most 32 MB) their own ``mmap`` and return them to the system on
``free``, and give each thread its own arena whose heaps are unmapped when they empty: so the next image's arrays
are fresh pages again, each zeroed by the kernel on its first touch, and the page faults of two threads serialise
on the process's memory map. Measured on the 2-core development machine (``bench/bench_prnu.py``, 10 images of 6 MP):
the terms of the 10 images took 1.5 s on one thread and no less on two with the defaults, 1.2 s and 0.7 s with the
settings below.

:func:`retain_freed_memory` makes the process keep freed memory for reuse: no ``mmap`` per array, no trimming of
the heap, one arena for all threads (the engine's threads allocate a few large arrays per image, so they do not
contend for it). The cost: the process keeps the memory of its largest working set until it exits (the peak is
unchanged). The command line and its worker processes call it at start; programs that use the engine as a
library may call it too. Elsewhere than glibc it does nothing.

:func:`small_pages_for_arrays` is for a short job (a few photos in this process): numpy asks the kernel for
transparent huge pages for every array of 4 MB or more (``madvise``), and where the kernel compacts memory to find
them at the first touch (``defrag`` set to ``madvise``, as on the development machine) that stall is paid once per
process: a 12 MP residual took 0.97 s of CPU in a fresh process with them, 0.61 s without, and 0.45 s against
0.52 s once its memory was mapped (``runs`` of ``extract_residual`` alternated, 2-core machine under load). A photo
or two come out ahead without; a long batch keeps them (the batch loop decides,
:func:`camforensics.pipelines.batch.run_tasks`).
"""

from __future__ import annotations

import ctypes
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8

_applied: dict[str, int] | None = None


def retain_freed_memory() -> dict[str, int]:
    """Tune glibc's allocator for the engine (see the module's text); returns the settings applied (empty where the
    allocator is not glibc's or refused them). Calling it again changes nothing."""
    global _applied
    if _applied is not None:
        return dict(_applied)
    settings = {"M_MMAP_MAX": (_M_MMAP_MAX, 0), "M_TRIM_THRESHOLD": (_M_TRIM_THRESHOLD, 2**31 - 1), "M_ARENA_MAX": (_M_ARENA_MAX, 1)}
    applied: dict[str, int] = {}
    if sys.platform.startswith("linux"):
        try:
            mallopt = ctypes.CDLL(None).mallopt
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        except (OSError, AttributeError):  # not glibc (musl has no mallopt)
            mallopt = None
        if mallopt is not None:
            for name, (param, value) in settings.items():
                if mallopt(param, value) == 1:
                    applied[name] = value
    _applied = applied
    return dict(applied)


# Heap bytes per pixel that one photo's residual and PRNU search touch (the channels, wavelet coefficients, Wiener
# gains, spectra; about 300 MB for 12 MP) and :func:`prefault` maps ahead, at most PREFAULT_MAX_BYTES.
WORK_BYTES_PER_PIXEL = 26
PREFAULT_MAX_BYTES = 1 << 30


def prefault(nbytes: int) -> bool:
    """Have the kernel map ``nbytes`` of heap now: allocate them, write every page, free them. With
    :func:`retain_freed_memory` applied the freed block stays in the process, so the arrays allocated next reuse
    pages already mapped instead of faulting fresh ones in (a 12 MP residual: 57,000 page faults and 0.62 s of CPU
    in a fresh process, 200 faults and 0.52 s after a 300 MB prefault). For a background thread while the caller
    does something else (the command imports its pipeline); ``ctypes`` lets go of the GIL in the C calls. False
    (nothing done) where the allocator settings are not applied or ``nbytes`` is not positive."""
    n = min(int(nbytes), PREFAULT_MAX_BYTES)
    if not _applied or _applied.get("M_MMAP_MAX") != 0 or n <= 0:
        return False
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
    block = libc.malloc(n)
    if not block:
        return False
    try:
        ctypes.memset(block, 0, n)
    finally:
        libc.free(block)
    return True


def small_pages_for_arrays() -> bool:
    """New numpy arrays in this process no longer ask for transparent huge pages (see the module's text); False
    where numpy offers no switch, or ``NUMPY_MADVISE_HUGEPAGE`` in the environment chose for the user."""
    import os

    if os.environ.get("NUMPY_MADVISE_HUGEPAGE") is not None:
        return False
    import numpy as np

    core = getattr(np, "_core", None) or getattr(np, "core", None)
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if switch is None:
        return False
    switch(False)
    return True


def retained() -> dict[str, int]:
    """The settings :func:`retain_freed_memory` applied in this process (empty if it was not called)."""
    return dict(_applied or {})

"""sha256 of files and buffers, streamed so large files do not need to fit in memory twice."""

from __future__ import annotations

import hashlib
import os

_CHUNK = 1 << 20  # 1 MiB reads


def sha256_bytes(data: bytes | memoryview) -> str:
    """Hex sha256 of an in-memory buffer."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks.

    Raises
    ------
    InputError
        ``path`` is not a regular file (a named pipe would block the read forever).
    OSError
        The file cannot be opened or read.
    """
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            from camforensics.errors import InputError

            raise InputError(f"{path}: not a regular file (a named pipe, device or socket); nothing read")
        h = hashlib.sha256()
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()

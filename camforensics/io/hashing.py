"""sha256 of files and buffers, streamed so large files do not need to fit in memory twice."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

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


def read_npy_hashed(path: str | os.PathLike[str]) -> tuple[np.ndarray, str]:
    """Read a .npy file once into memory; return the array and the sha256 of the whole file.

    The file is read into one buffer, hashed there and parsed from it (instead of hashed from disk and read a
    second time); the array lives in private memory, so it cannot change after it was hashed.

    Raises
    ------
    ValueError
        Not a .npy file (version 1 or 2) of a plain dtype whose size fits its header.
    OSError
        The file cannot be read.
    """
    import io

    import numpy as np

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        buf = np.empty(size, np.uint8)
        view = memoryview(buf)
        got = 0
        while got < size:
            n = f.readinto(view[got:])
            if not n:
                raise ValueError(f"{path}: file shorter than its size ({got} of {size} bytes)")
            got += n
    digest = sha256_bytes(view)
    head = io.BytesIO(view[: min(size, 65536)].tobytes())
    fmt = np.lib.format
    version = fmt.read_magic(head)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(head)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(head)
    else:
        raise ValueError(f"{path}: .npy format version {version} is not read")
    if dtype.hasobject:
        raise ValueError(f"{path}: object arrays are not read")
    offset = head.tell()
    count = int(np.prod(shape, dtype=np.int64))
    if offset + count * dtype.itemsize != size:
        raise ValueError(f"{path}: {size} bytes, not a {shape} {dtype} array")
    arr = buf[offset:].view(dtype)
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    return arr, digest

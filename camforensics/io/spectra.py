"""An on-disk cache of the library fingerprints' spectra, so that a search does not redo each fingerprint's FFT in
every process.

Layout (beside the entries, never inside them)::

    LIB/cache/spectra/<name>.npy    complex64, the conjugated half-plane DFT of K minus its mean
                                    (:func:`camforensics.core.pce.spectrum_of` with ``conjugate=True``)
    LIB/cache/spectra/<name>.json   what it was computed from: the fingerprint's sha256 (the one entry.json
                                    records), the fingerprint file's size, mtime and inode when it was read, the
                                    zero-mean norm, the array's sha256, the scipy version

A cached spectrum is used only when all of these hold; otherwise it is stale or damaged and the spectrum is
computed again from the hash-checked fingerprint (and the cache rewritten where the library is writable):

1. its sidecar names the fingerprint sha256 that entry.json records now, the same shape and format version, and
   the scipy version of this process (same FFT, same float32 rounding);
2. fingerprint.npy has the size, modification time and inode it had when the spectrum was computed from it (a
   fingerprint altered or replaced since is read and hash-checked again, so a corrupted one is still refused);
3. the array is the one whose sha256 the sidecar records: either its file has the size, inode, modification and
   status-change times it had when it was hashed (no write, rename or time-setting since: the file system changes
   them; trusted by stat as git trusts its index, and memory-mapped), or its sha256 is computed again and matches
   (a damaged cache file is never used).

The cache is written atomically (temporary file, then rename; the umask honoured) and never touches an entry's
files. A library on a read-only medium is searched without it: the spectra are computed in memory, as before the
cache existed; a library made by an older version gets its cache on first use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.pce import Spectrum, spectrum_of
from camforensics.io.hashing import read_npy_hashed

CACHE_FORMAT = "camforensics-spectrum"
CACHE_VERSION = 1
CACHE_DIR = Path("cache") / "spectra"


def _scipy_version() -> str:
    import scipy

    return str(scipy.__version__)


def cache_paths(library_root: Path, name: str) -> tuple[Path, Path]:
    """The array and sidecar files of one device's cached spectrum."""
    folder = Path(library_root) / CACHE_DIR
    return folder / f"{name}.npy", folder / f"{name}.json"


# A file changed less than this before its sidecar was written may have changed again within the same timestamp
# tick after it was recorded ("racily clean", as git calls it): its content is hashed instead of trusted by stat.
RACY_NS = 2_000_000_000


def _file_identity(path: Path) -> dict[str, int]:
    """What the file system changes whenever a file is written, replaced or has its times set: size, inode,
    device, modification and status-change times (the status-change time cannot be set back by a user)."""
    st = os.stat(path)
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns), "ctime_ns": int(st.st_ctime_ns),
            "inode": int(st.st_ino), "device": int(st.st_dev)}  # fmt: skip


def _sidecar_ok(meta: Any, fingerprint_sha256: str, shape: tuple[int, int], fingerprint: Path) -> bool:
    h, w = shape
    return bool(
        isinstance(meta, dict)
        and meta.get("format") == CACHE_FORMAT
        and meta.get("version") == CACHE_VERSION
        and meta.get("fingerprint_sha256") == fingerprint_sha256
        and meta.get("shape") == [h, w]
        and meta.get("scipy") == _scipy_version()
        and meta.get("fingerprint_file") == _file_identity(fingerprint)
        and isinstance(meta.get("norm"), float)
        and isinstance(meta.get("spectrum_sha256"), str)
    )


def load_cached_spectrum(library_root: Path, name: str, fingerprint_sha256: str, shape: tuple[int, int], fingerprint: Path) -> Spectrum | None:
    """The cached spectrum of a device when every check of the module docstring passes, else None.

    The array is memory-mapped (read-only) when its file is provably the one whose sha256 the sidecar records:
    the same size, inode, device, modification and status-change times as when it was hashed, and not changed
    within ``RACY_NS`` before that record was written. Otherwise it is read and hashed; a match is then recorded
    (where the library is writable), so the next run maps it without hashing.
    """
    arr_path, meta_path = cache_paths(library_root, name)
    h, w = shape
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not _sidecar_ok(meta, fingerprint_sha256, shape, fingerprint):
            return None
        ident = _file_identity(arr_path)
        trusted = meta.get("spectrum_file") == ident and ident["ctime_ns"] + RACY_NS < os.stat(meta_path).st_mtime_ns
        if trusted:
            f = np.load(arr_path, mmap_mode="r", allow_pickle=False)
            if _file_identity(arr_path) != ident:  # replaced while it was opened
                return None
        else:
            f, digest = read_npy_hashed(arr_path)
            if digest != meta["spectrum_sha256"]:
                return None
            if ident["ctime_ns"] + RACY_NS < time.time_ns():  # no longer racy: the next run maps it unhashed
                _record(meta_path, {**meta, "spectrum_file": ident})
    except (OSError, ValueError, TypeError):
        return None
    if f.dtype != np.complex64 or f.shape != (h, w // 2 + 1) or not f.flags.c_contiguous:
        return None
    return Spectrum(f=f, norm=float(meta["norm"]), shape=(h, w), conjugated=True)


def _record(meta_path: Path, meta: dict[str, Any]) -> None:
    """Rewrite a sidecar (atomically); silent where the library cannot be written."""
    from camforensics.reports.atomic import atomic_write_text

    with contextlib.suppress(OSError):
        atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")


def write_cached_spectrum(
    library_root: Path, name: str, fingerprint_sha256: str, spectrum: Spectrum, identity: dict[str, int]
) -> bool:
    """Store a fingerprint's conjugated spectrum (atomically: array first, then its sidecar); False where the
    library cannot be written (read-only medium, no permission, disk full): the search then runs without it."""
    from camforensics import __version__
    from camforensics.reports.atomic import atomic_open, atomic_write_text

    if not spectrum.conjugated:
        raise ValueError("a library spectrum is cached conjugated")
    arr_path, meta_path = cache_paths(library_root, name)
    f = np.ascontiguousarray(spectrum.f)
    try:
        with contextlib.suppress(FileNotFoundError):
            meta_path.unlink()  # a reader never pairs the new array with an old sidecar
        with atomic_open(arr_path, "wb", durable=False) as out:
            np.lib.format.write_array(out, f, allow_pickle=False)
        with open(arr_path, "rb") as written:  # the whole file's sha256, as a reader computes it: header + data
            h = hashlib.sha256(written.read(os.path.getsize(arr_path) - f.nbytes))
        h.update(memoryview(f).cast("B"))
        record: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "name": name,
            "fingerprint_sha256": fingerprint_sha256,
            "fingerprint_file": identity,
            "shape": list(spectrum.shape),
            "norm": float(spectrum.norm),
            "spectrum_sha256": h.hexdigest(),
            "spectrum_file": _file_identity(arr_path),
            "what": "conj(rfft2(K - mean(K))) in float32/complex64 (camforensics.core.pce.spectrum_of, conjugate=True)",
            "scipy": _scipy_version(),
            "tool_version": __version__,
        }
        atomic_write_text(meta_path, json.dumps(record, indent=2) + "\n")
    except OSError:
        return False
    return True


def fingerprint_spectrum(entry: Any, *, cache: bool = True) -> Spectrum:
    """The conjugated spectrum of a library entry's fingerprint: from the cache when it is valid, else computed
    from the hash-checked fingerprint (:meth:`camforensics.io.library.LibraryEntry.load`) and cached.

    Raises
    ------
    LibraryError
        The fingerprint is missing, altered or malformed (as ``entry.load()``).
    """
    root = entry.folder.parent.parent
    fp_path = entry.folder / "fingerprint.npy"
    if cache:
        hit = load_cached_spectrum(root, entry.name, entry.fingerprint_sha256, entry.shape, fp_path)
        if hit is not None:
            return hit
    try:
        identity = _file_identity(fp_path)
    except OSError:
        identity = None
    spectrum = spectrum_of(entry.load(), conjugate=True)
    if cache and identity is not None:
        with contextlib.suppress(OSError):
            if _file_identity(fp_path) == identity:  # unchanged while it was read and hash-checked
                write_cached_spectrum(root, entry.name, entry.fingerprint_sha256, spectrum, identity)
    return spectrum


def remove_cached_spectrum(library_root: Path, name: str) -> None:
    """Delete a device's cached spectrum (when its entry is replaced or removed); silent where absent."""
    for p in cache_paths(library_root, name):
        with contextlib.suppress(OSError):
            p.unlink()

"""An on-disk cache of the library fingerprints' spectra, so that a search does not redo each fingerprint's FFT in
every process.

Layout (beside the entries, never inside them)::

    LIB/cache/spectra/<name>.npy    complex64, the conjugated half-plane DFT of K minus its mean
                                    (:func:`camforensics.core.pce.spectrum_of` with ``conjugate=True``)
    LIB/cache/spectra/<name>.json   what it was computed from: the fingerprint's sha256 (the one entry.json
                                    records), the fingerprint file's size, mtime and inode when it was read, the
                                    zero-mean norm, the array's sha256, the scipy version
    LIB/cache/spectra/energy/<name>.npy    complex128, the fingerprint's block energy for the crop
                                    search's local normalisation (conj(rfft2) of K**2 summed over 8-pixel
                                    blocks, :func:`camforensics.core.cropsearch.energy_spectrum`), written at
                                    the first crop search against it
    LIB/cache/spectra/energy/<name>.json   its sidecar: the same fingerprint keys as the spectrum's, the block
                                    size, the numpy and OpenCV versions, the array's sha256

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

The block energy is checked as the spectrum is (1 to 3, with its own array and sha256, and the block size and
the numpy and OpenCV versions that compute it); when it is missing or stale it is computed from the spectrum, as
before it was cached.

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
ENERGY_FORMAT = "camforensics-block-energy"
ENERGY_VERSION = 1


def _scipy_version() -> str:
    import scipy

    return str(scipy.__version__)


def cache_paths(library_root: Path, name: str) -> tuple[Path, Path]:
    """The array and sidecar files of one device's cached spectrum."""
    folder = Path(library_root) / CACHE_DIR
    return folder / f"{name}.npy", folder / f"{name}.json"


def energy_paths(library_root: Path, name: str) -> tuple[Path, Path]:
    """The array and sidecar files of one device's cached block energy (beside its spectrum's)."""
    folder = Path(library_root) / CACHE_DIR / "energy"  # a folder of its own: device names may hold dots
    return folder / f"{name}.npy", folder / f"{name}.json"


def _energy_versions() -> dict[str, Any]:
    """What computes the block energy besides the spectrum: the block size, numpy's FFT, OpenCV's area resize."""
    import cv2

    from camforensics.core.cropsearch import VARIANCE_BLOCK

    return {"block": VARIANCE_BLOCK, "numpy": str(np.__version__), "opencv": str(cv2.__version__)}


# A file changed less than this before its sidecar was written may have changed again within the same timestamp
# tick after it was recorded ("racily clean", as git calls it): its content is hashed instead of trusted by stat.
RACY_NS = 2_000_000_000


def _file_identity(path: Path) -> dict[str, int]:
    """What the file system changes whenever a file is written, replaced or has its times set: size, inode,
    device, modification and status-change times (the status-change time cannot be set back by a user)."""
    st = os.stat(path)
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns), "ctime_ns": int(st.st_ctime_ns),
            "inode": int(st.st_ino), "device": int(st.st_dev)}  # fmt: skip


def _sidecar_ok(
    meta: Any, fingerprint_sha256: str, shape: tuple[int, int], fingerprint: Path, kind: tuple[str, int] = (CACHE_FORMAT, CACHE_VERSION)
) -> bool:
    h, w = shape
    return bool(
        isinstance(meta, dict)
        and (meta.get("format"), meta.get("version")) == kind
        and meta.get("fingerprint_sha256") == fingerprint_sha256
        and meta.get("shape") == [h, w]
        and meta.get("scipy") == _scipy_version()
        and meta.get("fingerprint_file") == _file_identity(fingerprint)
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
    got = _load_verified(arr_path, meta_path, fingerprint_sha256, shape, fingerprint, "spectrum")
    if got is None:
        return None
    f, meta = got
    if not isinstance(meta.get("norm"), float) or f.dtype != np.complex64 or f.shape != (h, w // 2 + 1) or not f.flags.c_contiguous:
        return None
    return Spectrum(f=f, norm=float(meta["norm"]), shape=(h, w), conjugated=True)


def _load_verified(
    arr_path: Path, meta_path: Path, fingerprint_sha256: str, shape: tuple[int, int], fingerprint: Path, what: str,
    extra: dict[str, Any] | None = None,
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """A cached array and its sidecar when checks 1 to 3 of the module docstring pass (``what``: "spectrum" or
    "energy", the prefix of the sidecar's ``_sha256`` and ``_file`` keys, and which format it must name;
    ``extra``: more sidecar items that must match), else None. Mapped when trusted by stat, else read, hashed and
    the match recorded."""
    kind = (CACHE_FORMAT, CACHE_VERSION) if what == "spectrum" else (ENERGY_FORMAT, ENERGY_VERSION)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not _sidecar_ok(meta, fingerprint_sha256, shape, fingerprint, kind) or not isinstance(meta.get(f"{what}_sha256"), str):
            return None
        if extra is not None and any(meta.get(k) != v for k, v in extra.items()):
            return None
        ident = _file_identity(arr_path)
        trusted = meta.get(f"{what}_file") == ident and ident["ctime_ns"] + RACY_NS < os.stat(meta_path).st_mtime_ns
        if trusted:
            f = np.load(arr_path, mmap_mode="r", allow_pickle=False)
            if _file_identity(arr_path) != ident:  # replaced while it was opened
                return None
        else:
            f, digest = read_npy_hashed(arr_path)
            if digest != meta[f"{what}_sha256"]:
                return None
            if ident["ctime_ns"] + RACY_NS < time.time_ns():  # no longer racy: the next run maps it unhashed
                _record(meta_path, {**meta, f"{what}_file": ident})
    except (OSError, ValueError, TypeError):
        return None
    return f, meta


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
    if not spectrum.conjugated:
        raise ValueError("a library spectrum is cached conjugated")
    arr_path, meta_path = cache_paths(library_root, name)
    return _store(
        arr_path, meta_path, np.ascontiguousarray(spectrum.f), "spectrum",
        {**_keys((CACHE_FORMAT, CACHE_VERSION), name, fingerprint_sha256, identity, spectrum.shape),
         "norm": float(spectrum.norm)},
        {"what": "conj(rfft2(K - mean(K))) in float32/complex64 (camforensics.core.pce.spectrum_of, conjugate=True)",
         "scipy": _scipy_version()},
    )  # fmt: skip


def _keys(
    kind: tuple[str, int], name: str, fingerprint_sha256: str, identity: dict[str, int], shape: tuple[int, int]
) -> dict[str, Any]:
    """The sidecar's first items, what :func:`_sidecar_ok` checks: format, version, the fingerprint, the shape."""
    return {"format": kind[0], "version": kind[1], "name": name, "fingerprint_sha256": fingerprint_sha256,
            "fingerprint_file": identity, "shape": [int(shape[0]), int(shape[1])]}  # fmt: skip


def _store(arr_path: Path, meta_path: Path, a: np.ndarray, what: str, head: dict[str, Any], tail: dict[str, Any]) -> bool:
    """Write a cached array and then its sidecar (``head``, the array's sha256 and file identity under ``what``'s
    keys, ``tail``, the tool's version); False where the library cannot be written."""
    from camforensics import __version__
    from camforensics.reports.atomic import atomic_write_text

    try:
        digest = _write_array(arr_path, meta_path, a)
        record = {**head, f"{what}_sha256": digest, f"{what}_file": _file_identity(arr_path), **tail,
                  "tool_version": __version__}  # fmt: skip
        atomic_write_text(meta_path, json.dumps(record, indent=2) + "\n")
    except OSError:
        return False
    return True


def load_cached_energy(
    library_root: Path, name: str, fingerprint_sha256: str, shape: tuple[int, int], fingerprint: Path
) -> np.ndarray | None:
    """The cached block energy of a device's fingerprint when every check passes (as the spectrum's, plus the
    block size and the numpy and OpenCV versions), else None."""
    from camforensics.core.cropsearch import energy_shape

    arr_path, meta_path = energy_paths(library_root, name)
    got = _load_verified(arr_path, meta_path, fingerprint_sha256, shape, fingerprint, "energy", _energy_versions())
    if got is None:
        return None
    e = got[0]
    if e.dtype != np.complex128 or e.shape != energy_shape(shape) or not e.flags.c_contiguous:
        return None
    return e


def write_cached_energy(
    library_root: Path, name: str, fingerprint_sha256: str, shape: tuple[int, int], energy: np.ndarray,
    identity: dict[str, int],
) -> bool:
    """Store a fingerprint's block energy (atomically: array first, then its sidecar) for the fingerprint file of
    ``identity`` it was computed from; False where the library cannot be written."""
    arr_path, meta_path = energy_paths(library_root, name)
    return _store(
        arr_path, meta_path, np.ascontiguousarray(energy, dtype=np.complex128), "energy",
        _keys((ENERGY_FORMAT, ENERGY_VERSION), name, fingerprint_sha256, identity, shape),
        {"what": "conj(rfft2(block sums of (K - mean(K))**2)) in complex128, blocks of `block` pixels "
                 "(camforensics.core.cropsearch.energy_spectrum)",
         "scipy": _scipy_version(), **_energy_versions()},
    )  # fmt: skip


def _write_array(arr_path: Path, meta_path: Path, a: np.ndarray) -> str:
    """Write ``a`` atomically after removing its sidecar (a reader never pairs a new array with an old sidecar);
    the whole file's sha256 as a reader computes it (header + data)."""
    from camforensics.reports.atomic import atomic_open

    with contextlib.suppress(FileNotFoundError):
        meta_path.unlink()
    with atomic_open(arr_path, "wb", durable=False) as out:
        np.lib.format.write_array(out, a, allow_pickle=False)
    with open(arr_path, "rb") as written:
        h = hashlib.sha256(written.read(os.path.getsize(arr_path) - a.nbytes))
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _attach_energy(root: Path, entry: Any, fp_path: Path, spectrum: Spectrum, identity: dict[str, int]) -> None:
    """Let the crop search read the fingerprint's block energy from the cache and write it there once computed,
    when the fingerprint file is still the one (``identity``) the spectrum came from."""
    from camforensics.core.cropsearch import attach_energy_store

    def load() -> np.ndarray | None:
        return load_cached_energy(root, entry.name, entry.fingerprint_sha256, entry.shape, fp_path)

    def store(energy: np.ndarray) -> None:
        with contextlib.suppress(OSError):
            if _file_identity(fp_path) == identity:
                write_cached_energy(root, entry.name, entry.fingerprint_sha256, entry.shape, energy, identity)

    attach_energy_store(spectrum, load, store)


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
            with contextlib.suppress(OSError):
                _attach_energy(root, entry, fp_path, hit, _file_identity(fp_path))
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
                _attach_energy(root, entry, fp_path, spectrum, identity)
    return spectrum


def remove_cached_spectrum(library_root: Path, name: str) -> None:
    """Delete a device's cached spectrum and block energy (when its entry is replaced or removed); silent where
    absent."""
    for p in (*cache_paths(library_root, name), *energy_paths(library_root, name)):
        with contextlib.suppress(OSError):
            p.unlink()

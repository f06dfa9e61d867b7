"""A fingerprint library: a folder of enrolled devices, each with its fingerprint and provenance.

Layout (format version 1)::

    LIB/
      library.json                 {"format": "camforensics-library", "version": 1}
      devices/<name>/fingerprint.npy   float32 HxW, K in stored sensor order
      devices/<name>/digest.npy        packed sign bits of K (1 bit per pixel), for fast library search
      devices/<name>/entry.json        name, shape, n_images, parameters, inputs with sha256, tool version,
                                       created, and the sha256 of fingerprint.npy and digest.npy (checked on
                                       every load)

Entries are written to a temporary folder and renamed into place, so a crash never leaves half an entry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from camforensics import __version__
from camforensics.errors import LibraryError, ParameterError
from camforensics.io.hashing import read_npy_hashed, sha256_file
from camforensics.reports.atomic import atomic_write_text
from camforensics.reports.escape import escape_tree

if TYPE_CHECKING:
    from camforensics.core.pce import Spectrum

LIBRARY_FORMAT = "camforensics-library"
LIBRARY_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+()-]{0,127}$")


def check_device_name(name: str) -> str:
    """Return ``name`` if it is usable as a device name (and folder name), else raise ParameterError."""
    if not _NAME.match(name) or ".." in name or name != name.strip():
        raise ParameterError(
            f"device name {name!r} is not allowed: use 1-128 letters, digits, spaces and . _ + ( ) -, "
            "starting with a letter or digit (e.g. 'Canon_Ixus70_0')"
        )
    return name


@dataclass(frozen=True)
class LibraryEntry:
    """One enrolled device as listed in the library (the fingerprint array is loaded on demand)."""

    name: str
    folder: Path
    meta: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.meta["shape"]
        return (int(h), int(w))

    @property
    def camera_model(self) -> str | None:
        """The camera model enroll recorded (EXIF make and model of the enrolled images, the most common pair),
        normalised (case and spaces) so that two bodies of one model compare equal; None when the entry records no
        model (no EXIF, or an entry enrolled before enroll recorded it): "model unknown"."""
        make, model = self.meta.get("exif_make"), self.meta.get("exif_model")
        if not isinstance(model, str) or not model.strip():
            return None
        words = f"{make if isinstance(make, str) else ''} {model}".split()
        return " ".join(words).casefold()

    @property
    def fingerprint_sha256(self) -> str:
        return str(self.meta["fingerprint_sha256"])

    def summary(self) -> dict[str, Any]:
        """What a report records about the entry it used."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "n_images": self.meta.get("n_images"),
            "reliability": (self.meta.get("reliability") or {}).get("reliability"),  # split-half; None: unknown
            "fingerprint_sha256": self.fingerprint_sha256,
            "created": self.meta.get("created"),
            "tool_version": self.meta.get("tool_version"),
        }

    def load(self) -> np.ndarray:
        """Load the fingerprint K after checking its sha256 against the entry.

        Raises
        ------
        LibraryError
            If the file is missing, altered or not a 2-D float32 array of the recorded shape.
        """
        path = self.folder / "fingerprint.npy"
        if not path.is_file():
            raise LibraryError(f"library entry {self.name!r}: {path} is missing; enroll the device again")
        try:
            k, digest = read_npy_hashed(path)  # one read: hashed and parsed from the same buffer
        except (ValueError, OSError) as exc:
            digest = sha256_file(path)
            if digest == self.fingerprint_sha256:
                raise LibraryError(f"library entry {self.name!r}: fingerprint.npy unreadable ({exc})") from None
            k = None
        if digest != self.fingerprint_sha256:
            raise LibraryError(
                f"library entry {self.name!r} is corrupted: fingerprint.npy has sha256 {digest[:16]}..., the entry "
                f"records {self.fingerprint_sha256[:16]}...; restore it from a backup or enroll the device again"
            )
        assert k is not None
        if k.ndim != 2 or tuple(k.shape) != self.shape or k.dtype != np.float32:
            raise LibraryError(
                f"library entry {self.name!r}: fingerprint has shape {k.shape} {k.dtype}, the entry records "
                f"{self.shape} float32"
            )
        return k

    def spectrum(self, *, cache: bool = True) -> Spectrum:
        """The conjugated spectrum of the fingerprint (:func:`camforensics.core.pce.spectrum_of`), from the
        library's verified on-disk cache when valid, else computed from the hash-checked fingerprint and cached
        (see :mod:`camforensics.io.spectra`).

        Raises
        ------
        LibraryError
            As :meth:`load`.
        """
        from camforensics.io.spectra import fingerprint_spectrum

        return fingerprint_spectrum(self, cache=cache)

    def load_digest(self) -> np.ndarray:
        """The packed sign digest of K (see :mod:`camforensics.core.digest`), hash-checked.

        Entries enrolled before digests existed get theirs computed from the (hash-checked) fingerprint.

        Raises
        ------
        LibraryError
            If the digest file was altered.
        """
        from camforensics.core.digest import sign_digest

        recorded = self.meta.get("digest_sha256")
        path = self.folder / "digest.npy"
        if recorded is None or not path.is_file():
            if recorded is not None:
                raise LibraryError(f"library entry {self.name!r}: {path} is missing; enroll the device again")
            return sign_digest(self.load())
        digest = sha256_file(path)
        if digest != recorded:
            raise LibraryError(
                f"library entry {self.name!r} is corrupted: digest.npy has sha256 {digest[:16]}..., the entry "
                f"records {recorded[:16]}...; restore it from a backup or enroll the device again"
            )
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise LibraryError(f"library entry {self.name!r}: digest.npy unreadable ({exc})") from None


    def verify(self) -> list[str]:
        """Check every file whose sha256 the entry records (fingerprint.npy, digest.npy) and their shapes.

        Returns
        -------
        list of str
            The files checked.

        Raises
        ------
        LibraryError
            The first file that is missing, altered or malformed.
        """
        self.load()
        checked = ["fingerprint.npy"]
        if self.meta.get("digest_sha256") is not None:
            d = self.load_digest()
            n_bytes = -(-(self.shape[0] * self.shape[1]) // 8)
            if d.ndim != 1 or d.dtype != np.uint8 or d.size != n_bytes + (-n_bytes) % 8:
                raise LibraryError(
                    f"library entry {self.name!r}: digest.npy has shape {d.shape} {d.dtype}, not the packed sign bits "
                    f"of a {self.shape[1]}x{self.shape[0]} fingerprint; enroll the device again"
                )
            checked.append("digest.npy")
        return checked


def _save_npy(path: Path, array: np.ndarray, *, durable: bool = True) -> str:
    """Write an array (no pickles), fsync it when ``durable`` and return its sha256."""
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    return sha256_file(path)


class FingerprintLibrary:
    """A folder of enrolled device fingerprints.

    Parameters
    ----------
    root : path-like
        The library folder.
    create : bool, keyword-only
        Create an empty library when the folder is missing or empty; otherwise a missing library is an error.
    """

    def __init__(self, root: str | os.PathLike[str], *, create: bool = False) -> None:
        self.root = Path(root)
        marker = self.root / "library.json"
        if not marker.is_file():
            if create and (not self.root.exists() or not any(self.root.iterdir())):
                self.root.mkdir(parents=True, exist_ok=True)
                atomic_write_text(
                    marker, json.dumps({"format": LIBRARY_FORMAT, "version": LIBRARY_VERSION}, indent=2) + "\n"
                )
            elif create:
                raise LibraryError(
                    f"{self.root} exists, is not empty and is not a camforensics library; choose another folder"
                )
            else:
                raise LibraryError(
                    f"{self.root} is not a camforensics library (no library.json); create one with "
                    "'camforensics enroll DIR --name DEVICE --library LIB'"
                )
        try:
            head = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LibraryError(f"{marker}: unreadable library header ({exc})") from None
        if head.get("format") != LIBRARY_FORMAT:
            raise LibraryError(f"{marker}: not a camforensics library header")
        if head.get("version") != LIBRARY_VERSION:
            raise LibraryError(
                f"{marker}: library format version {head.get('version')} is not supported by camforensics "
                f"{__version__} (expects {LIBRARY_VERSION})"
            )

    @property
    def devices_dir(self) -> Path:
        return self.root / "devices"

    def names(self) -> list[str]:
        if not self.devices_dir.is_dir():
            return []
        return sorted(p.name for p in self.devices_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def __contains__(self, name: str) -> bool:
        return (self.devices_dir / name / "entry.json").is_file()

    def entry(self, name: str) -> LibraryEntry:
        """The entry of one device.

        Raises
        ------
        LibraryError
            Unknown name (the message lists the enrolled ones) or an unreadable entry.
        """
        folder = self.devices_dir / name
        meta_path = folder / "entry.json"
        if not meta_path.is_file():
            known = ", ".join(self.names()) or "none"
            raise LibraryError(f"no device {name!r} in library {self.root} (enrolled: {known})")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LibraryError(f"library entry {name!r}: entry.json unreadable ({exc}); enroll again") from None
        if not isinstance(meta, dict):
            raise LibraryError(f"library entry {name!r}: entry.json is not a JSON object; enroll the device again")
        for key in ("name", "shape", "fingerprint_sha256"):
            if key not in meta:
                raise LibraryError(f"library entry {name!r}: entry.json lacks {key!r}; enroll the device again")
        shape = meta["shape"]
        if (
            not isinstance(shape, list)
            or len(shape) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
            or not isinstance(meta["fingerprint_sha256"], str)
        ):
            raise LibraryError(
                f"library entry {name!r}: entry.json has a malformed shape or fingerprint_sha256; enroll the device again"
            )
        return LibraryEntry(name=name, folder=folder, meta=meta)

    def entries(self) -> Iterator[LibraryEntry]:
        for name in self.names():
            yield self.entry(name)

    def add(
        self,
        name: str,
        k: np.ndarray,
        *,
        meta: dict[str, Any],
        overwrite: bool = False,
        durable: bool = True,
        cache_spectrum: bool = True,
    ) -> LibraryEntry:
        """Store a fingerprint under ``name`` with its provenance ``meta``; atomic.

        ``durable=False`` skips the fsync of the arrays (bulk imports that can be redone after a crash); the
        entry still appears all at once. ``cache_spectrum`` also stores the fingerprint's spectrum in the
        library's cache (:mod:`camforensics.io.spectra`), so the first search does not compute it; a replaced
        entry's cached spectrum is removed in any case.

        Raises
        ------
        LibraryError
            If ``name`` exists and ``overwrite`` is false.
        """
        check_device_name(name)
        k = np.ascontiguousarray(k, dtype=np.float32)
        if k.ndim != 2:
            raise ParameterError(f"a fingerprint is a 2-D array, got shape {k.shape}")
        final = self.devices_dir / name
        if final.exists() and not overwrite:
            raise LibraryError(
                f"device {name!r} is already enrolled in {self.root}; choose another --name or pass --overwrite"
            )
        self.devices_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.devices_dir))
        try:
            from camforensics.core.digest import sign_digest

            record = {
                "name": name,
                "shape": [int(k.shape[0]), int(k.shape[1])],
                "dtype": "float32",
                "fingerprint_sha256": _save_npy(tmp / "fingerprint.npy", k, durable=durable),
                "digest_sha256": _save_npy(tmp / "digest.npy", sign_digest(k), durable=durable),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "tool": "camforensics",
                "tool_version": __version__,
                **meta,
            }
            atomic_write_text(tmp / "entry.json", json.dumps(escape_tree(record), indent=2, ensure_ascii=False) + "\n")
            if final.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{name}.old.", dir=self.devices_dir))
                os.replace(final, old / "entry")
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        from camforensics.io.spectra import remove_cached_spectrum

        remove_cached_spectrum(self.root, name)  # an old entry's spectrum is stale now
        entry = self.entry(name)
        if cache_spectrum:
            entry.spectrum()
        return entry

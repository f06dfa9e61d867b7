"""Readers of camera data set folders: Dresden, VISION, Kaggle camera-model and the generic layout.

Each reader walks a folder, turns every image it understands into an :class:`ImageRecord` and lists every
other file as skipped, with the reason. Nothing is decoded here and nothing is written. The layouts, with
example trees, are described in ``docs/datasets.md``.
"""

from __future__ import annotations

import csv
import os
import re
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

from camforensics.errors import CamforensicsError, InputError, ParameterError
from camforensics.io.records import DatasetScan, ImageRecord, SkippedFile, is_hidden, is_image_name

LAYOUTS: tuple[str, ...] = ("dresden", "vision", "kaggle", "generic")

_LAYOUT_HELP = (
    "dresden (files named Make_Model_Device_Number.JPG), "
    "vision (Dxx_Brand_Model/images/<flat|nat|natWA|...>/*), "
    "kaggle (train/<Class>/*), "
    "generic (<Make>_<Model>_<index>/<flat|nat>/*)"
)

# Dresden: Make_Model_DeviceIndex_ImageNumber; the model may contain "_" (Olympus_mju_1050SW_0_1234.JPG)
# and "." (Praktica_DCZ5.9_0_1234.JPG), so the two numbers are taken from the right.
_DRESDEN_NAME = re.compile(r"^(?P<make>[^_]+)_(?P<model>.+)_(?P<device>\d+)_(?P<number>\d+)$")
# VISION device folders: D01_Samsung_GalaxyS3Mini (the model part may contain "_").
_VISION_DEVICE = re.compile(r"^(?P<id>D\d+)_(?P<make>[^_]+)_(?P<model>.+)$")
# Generic device folders: <Make>_<Model>_<index>; the model may contain "_".
_GENERIC_DEVICE = re.compile(r"^(?P<make>[^_]+)_(?P<model>.+)_(?P<index>\d+)$")
# Folder names that mark content kinds in Dresden-style trees (casefolded).
_FLAT_FOLDERS = frozenset({"flat", "flatfield", "flat-field", "flat_field", "ff"})
_DARK_FOLDERS = frozenset({"dark", "darkframe", "dark-frame", "dark_frame"})

# Kaggle "IEEE's Signal Processing Society - Camera Model Identification" (2018) classes: one phone each.
KAGGLE_CLASSES: dict[str, tuple[str, str]] = {
    "HTC-1-M7": ("HTC", "One M7"),
    "iPhone-4s": ("Apple", "iPhone 4s"),
    "iPhone-6": ("Apple", "iPhone 6"),
    "LG-Nexus-5x": ("LG", "Nexus 5X"),
    "Motorola-Droid-Maxx": ("Motorola", "Droid Maxx"),
    "Motorola-Nexus-6": ("Motorola", "Nexus 6"),
    "Motorola-X": ("Motorola", "Moto X"),
    "Samsung-Galaxy-Note3": ("Samsung", "Galaxy Note 3"),
    "Samsung-Galaxy-S4": ("Samsung", "Galaxy S4"),
    "Sony-NEX-7": ("Sony", "NEX-7"),
}

MANIFEST_NAME = "MANIFEST.csv"


def _nfc(text: str) -> str:
    # macOS writes decomposed (NFD) file names; manifests are usually composed (NFC).
    return unicodedata.normalize("NFC", text)


def _walk(top: Path) -> Iterator[tuple[Path, bool]]:
    """Yield ``(path, hidden)`` for every file under ``top`` in sorted order; hidden folders are not entered
    (they are yielded once, as hidden)."""
    for dirpath, dirnames, filenames in os.walk(top):
        hidden_dirs = sorted(d for d in dirnames if is_hidden(d))
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        base = Path(dirpath)
        for d in hidden_dirs:
            yield base / d, True
        for f in sorted(filenames):
            if not (base / f).is_file():  # a named pipe, socket, device or broken link is no image (a FIFO blocks)
                continue
            yield base / f, is_hidden(f)


class _Collector:
    """Records and skipped files of one scan."""

    def __init__(self, root: Path, layout: str) -> None:
        self.root, self.layout = root, layout
        self.records: list[ImageRecord] = []
        self.skipped: list[SkippedFile] = []

    def add(self, path: Path, *, make: str, model: str, device: str, content: str) -> None:
        self.records.append(ImageRecord(path, make, model, device, content, self.layout))

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.append(SkippedFile(path, reason))

    def check_file(self, path: Path, hidden: bool) -> bool:
        """True for an image file; otherwise record why it is skipped."""
        if hidden:
            self.skip(path, "hidden file or folder")
            return False
        if not is_image_name(path.name):
            self.skip(path, f"not an image file (suffix {path.suffix or 'none'!r})")
            return False
        return True

    def scan(self) -> DatasetScan:
        return DatasetScan(
            self.root,
            self.layout,
            tuple(sorted(self.records)),
            tuple(sorted(self.skipped, key=lambda s: s.path)),
        )


def _root(root: str | os.PathLike[str]) -> Path:
    path = Path(root).absolute()
    if not path.is_dir():
        raise InputError(f"data set folder {str(path)!r} does not exist or is not a folder")
    return path


def _scan_dresden(root: Path) -> DatasetScan:
    out = _Collector(root, "dresden")
    for path, hidden in _walk(root):
        if not out.check_file(path, hidden):
            continue
        m = _DRESDEN_NAME.match(path.stem)
        if m is None:
            out.skip(path, "name does not follow Make_Model_Device_Number (Dresden)")
            continue
        folders = {p.casefold() for p in path.relative_to(root).parts[:-1]}
        content = "flat" if folders & _FLAT_FOLDERS else "dark" if folders & _DARK_FOLDERS else "nat"
        make, model = m["make"], m["model"]
        out.add(path, make=make, model=model, device=f"{make}_{model}_{m['device']}", content=content)
    return out.scan()


def _scan_vision(root: Path) -> DatasetScan:
    out = _Collector(root, "vision")
    for path, hidden in _walk(root):
        rel = path.relative_to(root).parts
        m = _VISION_DEVICE.match(rel[0]) if len(rel) > 1 else None
        if m is not None and len(rel) > 1 and rel[1] == "videos":
            out.skip(path, "VISION video (videos are not read)")
            continue
        if not out.check_file(path, hidden):
            continue
        if m is None or len(rel) != 4 or rel[1] != "images":
            out.skip(path, "not under Dxx_Brand_Model/images/<kind>/ (VISION)")
            continue
        out.add(path, make=m["make"], model=m["model"], device=rel[0], content=rel[2])
    return out.scan()


def kaggle_make_model(name: str) -> tuple[str, str]:
    """Make and model of a Kaggle camera-model class folder name (``"Sony-NEX-7"`` -> ``("Sony", "NEX-7")``).

    The ten classes of the 2018 competition are looked up in :data:`KAGGLE_CLASSES`; other names are split at
    the first ``-`` (``iPhone...`` is an Apple).
    """
    if name in KAGGLE_CLASSES:
        return KAGGLE_CLASSES[name]
    if name.casefold().startswith("iphone"):
        return "Apple", name.replace("-", " ")
    make, _, model = name.partition("-")
    return (make, model) if model else ("", make)


def _scan_kaggle(root: Path) -> DatasetScan:
    out = _Collector(root, "kaggle")
    train = root / "train"
    if not train.is_dir():
        raise InputError(f"{str(root)!r} has no train/ folder; a Kaggle camera-model tree is train/<Class>/*")
    for path, hidden in _walk(root):
        rel = path.relative_to(root).parts
        if rel[0] != "train":
            if not hidden:
                out.skip(path, "outside train/<Class>/ (Kaggle test images carry no label)")
            else:
                out.skip(path, "hidden file or folder")
            continue
        if not out.check_file(path, hidden):
            continue
        if len(rel) != 3:
            out.skip(path, "not directly in train/<Class>/ (Kaggle)")
            continue
        make, model = kaggle_make_model(rel[1])
        # One phone per class and no device id in the data: the class stands for the device.
        out.add(path, make=make, model=model, device=rel[1], content="nat")
    return out.scan()


def read_manifest(path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """Rows of a ``MANIFEST.csv`` keyed by their ``file`` column (relative POSIX path, NFC).

    Raises
    ------
    InputError
        If the file has no ``file`` column or cannot be decoded.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or "file" not in reader.fieldnames:
                raise InputError(f"{str(path)!r} has no 'file' column; a manifest needs file,make,model,...")
            return {_nfc(row["file"].strip()).replace("\\", "/"): row for row in reader if row.get("file")}
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read manifest {str(path)!r}: {exc}; save it as UTF-8 CSV") from None


def _scan_generic(root: Path) -> DatasetScan:
    out = _Collector(root, "generic")
    manifest_path = root / MANIFEST_NAME
    manifest = read_manifest(manifest_path) if manifest_path.is_file() else {}
    for path, hidden in _walk(root):
        rel = path.relative_to(root).parts
        if len(rel) == 1:
            if path != manifest_path:
                out.skip(path, "hidden file or folder" if hidden else "not inside a device folder")
            continue
        if not out.check_file(path, hidden):
            continue
        device = rel[0]
        content = rel[1] if len(rel) > 2 else "unknown"
        row = manifest.get(_nfc("/".join(rel)))
        m = _GENERIC_DEVICE.match(device)
        make, model = (m["make"], m["model"]) if m else ("", device)
        if row is not None:  # the manifest knows better than the folder name
            make = (row.get("make") or "").strip() or make
            model = (row.get("model") or "").strip() or model
        out.add(path, make=make, model=model, device=device, content=content)
    return out.scan()


_SCANNERS: dict[str, Callable[[Path], DatasetScan]] = {
    "dresden": _scan_dresden,
    "vision": _scan_vision,
    "kaggle": _scan_kaggle,
    "generic": _scan_generic,
}


def _subdirs(path: Path) -> Iterator[Path]:
    with os.scandir(path) as it:
        for entry in sorted(it, key=lambda e: e.name):
            if entry.is_dir() and not is_hidden(entry.name):
                yield Path(entry.path)


def _has_image(path: Path) -> bool:
    with os.scandir(path) as it:
        return any(e.is_file() and is_image_name(e.name) for e in it)


def detect_layout(root: str | os.PathLike[str]) -> str:
    """Tell which layout a data set folder follows.

    Checked in this order: VISION (``Dxx_Brand_Model/images/``), Kaggle (``train/<Class>/`` with images),
    generic (``<device>/flat/`` or ``<device>/nat/``), Dresden (image names ``Make_Model_Device_Number``
    in the folder or one level below).

    Raises
    ------
    InputError
        If ``root`` is not a folder.
    CamforensicsError
        If no layout fits; the message lists the layouts understood.
    """
    path = _root(root)
    children = list(_subdirs(path))
    if any(_VISION_DEVICE.match(c.name) and (c / "images").is_dir() for c in children):
        return "vision"
    if (path / "train").is_dir() and any(_has_image(c) for c in _subdirs(path / "train")):
        return "kaggle"
    if any(g.name.casefold() in ("flat", "nat") for c in children for g in _subdirs(c)):
        return "generic"
    for folder in [path, *children]:
        with os.scandir(folder) as it:
            if any(e.is_file() and is_image_name(e.name) and _DRESDEN_NAME.match(Path(e.name).stem) for e in it):
                return "dresden"
    raise CamforensicsError(
        f"cannot tell the layout of {str(path)!r}; layouts understood: {_LAYOUT_HELP}. "
        "Rearrange the folder into one of them, or force one with layout=... (--layout)"
    )


def scan_dataset(root: str | os.PathLike[str], *, layout: str = "auto") -> DatasetScan:
    """Read a data set folder: its records, the files skipped and the layout used.

    Parameters
    ----------
    root : path-like
        The data set folder.
    layout : {"auto", "dresden", "vision", "kaggle", "generic"}
        ``"auto"`` detects it with :func:`detect_layout`.

    Returns
    -------
    DatasetScan
        Records and skipped files, sorted by path.

    Raises
    ------
    ParameterError
        If ``layout`` is not one of the names above.
    InputError, CamforensicsError
        If the folder is missing or its layout cannot be detected.
    """
    if layout != "auto" and layout not in _SCANNERS:
        raise ParameterError(f"unknown layout {layout!r}; choose one of {('auto', *LAYOUTS)}")
    path = _root(root)
    return _SCANNERS[detect_layout(path) if layout == "auto" else layout](path)


def read_dataset(root: str | os.PathLike[str], *, layout: str = "auto") -> list[ImageRecord]:
    """Records of a data set folder, sorted by path (see :func:`scan_dataset`)."""
    return list(scan_dataset(root, layout=layout).records)


def read_dresden(root: str | os.PathLike[str]) -> list[ImageRecord]:
    """Records of a Dresden Image Database folder (``Make_Model_Device_Number.JPG``, any depth)."""
    return list(_scan_dresden(_root(root)).records)


def read_vision(root: str | os.PathLike[str]) -> list[ImageRecord]:
    """Records of a VISION folder (``Dxx_Brand_Model/images/<kind>/*``; ``videos/`` is ignored)."""
    return list(_scan_vision(_root(root)).records)


def read_kaggle(root: str | os.PathLike[str]) -> list[ImageRecord]:
    """Records of a Kaggle camera-model folder (``train/<Class>/*``; one device per class)."""
    return list(_scan_kaggle(_root(root)).records)


def read_generic(root: str | os.PathLike[str]) -> list[ImageRecord]:
    """Records of a generic ``<device>/<flat|nat>/*`` folder, make/model from ``MANIFEST.csv`` when present."""
    return list(_scan_generic(_root(root)).records)

"""Image records of a camera data set: what a reader understood about each file.

A record names the file, the camera (make, model, device) that took it and the kind of content (flat-field or
natural scene). Readers in :mod:`camforensics.io.datasets` produce them; the splitter
(:mod:`camforensics.io.splits`) and the patch sampler (:mod:`camforensics.io.patches`) consume them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from camforensics.io.hashing import sha256_file

# File name suffixes decoded as still images (compared case-insensitively).
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})

# Canonical spelling of makes that data sets and EXIF write in several ways (keys are casefolded).
# EXIF Make is free text: "SAMSUNG", "samsung", "LG Electronics", "NIKON CORPORATION", "OLYMPUS IMAGING CORP." ...
_MAKE_ALIASES: dict[str, str] = {
    "apple": "Apple",
    "agfa": "Agfa",
    "asus": "Asus",
    "canon": "Canon",
    "casio": "Casio",
    "casio computer co.,ltd.": "Casio",
    "fujifilm": "FujiFilm",
    "htc": "HTC",
    "huawei": "Huawei",
    "kodak": "Kodak",
    "eastman kodak company": "Kodak",
    "lenovo": "Lenovo",
    "lg": "LG",
    "lge": "LG",
    "lg electronics": "LG",
    "microsoft": "Microsoft",
    "motorola": "Motorola",
    "nikon": "Nikon",
    "nikon corporation": "Nikon",
    "olympus": "Olympus",
    "olympus imaging corp.": "Olympus",
    "oneplus": "OnePlus",
    "panasonic": "Panasonic",
    "pentax": "Pentax",
    "pentax corporation": "Pentax",
    "praktica": "Praktica",
    "ricoh": "Ricoh",
    "rollei": "Rollei",
    "samsung": "Samsung",
    "sony": "Sony",
    "vivo": "vivo",
    "wiko": "Wiko",
    "xiaomi": "Xiaomi",
}


def normalize_make(make: str) -> str:
    """Canonical spelling of a camera make.

    Whitespace is collapsed; known makes are mapped case-insensitively to one spelling (``"SAMSUNG"``,
    ``"samsung"`` -> ``"Samsung"``; ``"LG Electronics"`` -> ``"LG"``); unknown makes are kept as written.
    """
    text = " ".join(make.split())
    return _MAKE_ALIASES.get(text.casefold(), text)


def normalize_model(make: str, model: str) -> str:
    """Canonical spelling of a camera model name.

    Whitespace is collapsed and a leading repetition of the make is dropped (EXIF often writes
    ``"Canon PowerShot A640"`` as the model of make ``"Canon"``). Underscores, dashes and case are kept: they
    are part of the names data sets use (``"mju_1050SW"``, ``"DSC-H50"``).
    """
    text = " ".join(model.split())
    words = text.split(" ", 1)
    if len(words) == 2 and normalize_make(words[0]) == normalize_make(make):
        text = words[1]
    return text


@dataclass(frozen=True, order=True)
class ImageRecord:
    """One image file of a data set and the camera that took it.

    Records sort by path, so a list of them has one deterministic order.
    """

    path: Path  # the image file (absolute, as found under the data set root)
    make: str  # camera make as the data set writes it (folder name, file name or manifest)
    model: str  # camera model as the data set writes it
    device: str  # one physical camera body, unique within the data set (e.g. "Canon_Ixus70_0", "D01_...")
    content: str  # content kind: "flat", "nat", or the data set's own kind ("natWA", "flatFBH", ...)
    dataset: str  # layout the record was read from: "dresden", "vision", "kaggle" or "generic"

    @property
    def model_id(self) -> str:
        """Camera-model label, ``"<Make> <Model>"`` after :func:`normalize_make` and :func:`normalize_model`.

        Two devices of the same model share it; it is the class label of camera-model attribution.
        """
        make = normalize_make(self.make)
        model = normalize_model(self.make, self.model)
        return f"{make} {model}" if make else model

    @property
    def is_flat(self) -> bool:
        """True for flat-field content (``flat`` and VISION's ``flatWA``/``flatFBH``...)."""
        return self.content.startswith("flat")

    def sha256(self) -> str:
        """Hex sha256 of the file (read on demand, never cached)."""
        return sha256_file(self.path)


@dataclass(frozen=True)
class SkippedFile:
    """A file a reader saw and did not turn into a record, with the reason."""

    path: Path
    reason: str


@dataclass(frozen=True)
class DatasetScan:
    """Everything a reader understood about a data set folder."""

    root: Path  # the folder that was read
    layout: str  # "dresden", "vision", "kaggle" or "generic"
    records: tuple[ImageRecord, ...]  # sorted by path
    skipped: tuple[SkippedFile, ...]  # sorted by path

    @property
    def devices(self) -> tuple[str, ...]:
        """Sorted distinct devices."""
        return tuple(sorted({r.device for r in self.records}))

    @property
    def models(self) -> tuple[str, ...]:
        """Sorted distinct model ids (:attr:`ImageRecord.model_id`)."""
        return tuple(sorted({r.model_id for r in self.records}))


_HIDDEN = re.compile(r"^[.~]|^(thumbs\.db|desktop\.ini)$", re.IGNORECASE)


def is_hidden(name: str) -> bool:
    """True for hidden and system files (``.DS_Store``, ``._x.jpg``, ``~$x``, ``Thumbs.db``)."""
    return bool(_HIDDEN.search(name))


def is_image_name(name: str) -> bool:
    """True when the file name has a still-image suffix (any case) and is not hidden."""
    return not is_hidden(name) and Path(name).suffix.lower() in IMAGE_SUFFIXES

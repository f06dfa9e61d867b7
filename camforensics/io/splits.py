"""Device-disjoint train / validation / test splits, saved to a versioned JSON file that training and
evaluation reuse.

Camera-model attribution that is trained and tested on images of the same physical device learns the device
(its PRNU, its lens dust) as much as the model and reports inflated accuracy (Kirchner & Gloe 2015, "Forensic
camera model identification", ch. 9 of *Handbook of Digital Forensics of Multimedia Data and Devices*). So
devices, not images, are split: no device ever appears in two splits, unless the caller asks for the one
documented exception (``single_device="split_images"``), which the split file states loudly.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from camforensics import __version__
from camforensics.errors import InputError, ParameterError
from camforensics.io.hashing import sha256_file
from camforensics.io.records import ImageRecord

SPLIT_NAMES: tuple[str, ...] = ("train", "validation", "test")
SPLIT_FORMAT = "camforensics.split"
SPLIT_FORMAT_VERSION = 1
SINGLE_DEVICE_POLICIES: tuple[str, ...] = ("train", "exclude", "split_images")
# Order in which a model with fewer devices than non-empty splits hands them out: an unseen-device test
# matters more than a validation device.
_SMALL_MODEL_PRIORITY: tuple[int, ...] = (0, 2, 1)


@dataclass(frozen=True, eq=False)
class Split:
    """A train / validation / test split of image records.

    Build it with :func:`split_by_device`; save and load it with :meth:`save` and :meth:`load`.
    """

    records: Mapping[str, tuple[ImageRecord, ...]]  # split name -> records sorted by path
    seed: int  # seed of the device shuffles
    fractions: tuple[float, float, float]  # target share of devices per split (train, validation, test)
    root: Path  # data set root; the split file stores paths relative to it
    layout: str  # data set layout the records were read with
    single_device: str = "train"  # policy for models with one device (see split_by_device)
    stratified: bool = True  # devices split per model (True) or all together (False)
    image_split_devices: tuple[str, ...] = ()  # devices whose images were spread over splits (not disjoint!)
    warnings: tuple[str, ...] = ()  # what a reader of the split must know (small models, image splits)
    hashes: Mapping[str, str] = field(default_factory=dict)  # relative path -> sha256, when stored

    def devices(self, name: str) -> tuple[str, ...]:
        """Sorted devices of one split."""
        return tuple(sorted({r.device for r in self._get(name)}))

    def models(self, name: str) -> tuple[str, ...]:
        """Sorted model ids of one split."""
        return tuple(sorted({r.model_id for r in self._get(name)}))

    @property
    def train(self) -> tuple[ImageRecord, ...]:
        return self._get("train")

    @property
    def validation(self) -> tuple[ImageRecord, ...]:
        return self._get("validation")

    @property
    def test(self) -> tuple[ImageRecord, ...]:
        return self._get("test")

    def _get(self, name: str) -> tuple[ImageRecord, ...]:
        if name not in SPLIT_NAMES:
            raise ParameterError(f"unknown split {name!r}; choose one of {SPLIT_NAMES}")
        return self.records.get(name, ())

    def to_dict(self, *, with_hashes: bool = False) -> dict:
        """The JSON document :meth:`save` writes (format described in ``docs/datasets.md``).

        With ``with_hashes`` the sha256 of every file is computed (or taken from :attr:`hashes`).
        """
        splits = {}
        for name in SPLIT_NAMES:
            images = []
            for r in self._get(name):
                rel = _relative(r.path, self.root)
                item = {"path": rel, "device": r.device, "make": r.make, "model": r.model, "content": r.content}
                if with_hashes:
                    item["sha256"] = self.hashes.get(rel) or r.sha256()
                images.append(item)
            splits[name] = {"devices": list(self.devices(name)), "models": list(self.models(name)), "images": images}
        return {
            "format": SPLIT_FORMAT,
            "format_version": SPLIT_FORMAT_VERSION,
            "tool": "camforensics",
            "tool_version": __version__,
            "seed": self.seed,
            "fractions": dict(zip(SPLIT_NAMES, self.fractions, strict=True)),
            "single_device": self.single_device,
            "stratified": self.stratified,
            "device_disjoint": not self.image_split_devices,
            "image_split_devices": list(self.image_split_devices),
            "warnings": list(self.warnings),
            "dataset": {"root": str(self.root), "layout": self.layout},
            "splits": splits,
        }

    def save(self, path: str | os.PathLike[str], *, with_hashes: bool = False) -> None:
        """Write the split as JSON, atomically (see :meth:`to_dict`)."""
        from camforensics.reports.atomic import atomic_write_text

        text = json.dumps(self.to_dict(with_hashes=with_hashes), indent=2, ensure_ascii=False)
        atomic_write_text(path, text + "\n")

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        root: str | os.PathLike[str] | None = None,
        check_files: bool = True,
        verify_hashes: bool = False,
    ) -> Split:
        """Read and validate a split file.

        Parameters
        ----------
        path : path-like
            A file written by :meth:`save`.
        root : path-like, optional
            Where the data set lives now, when it moved since the split was made.
        check_files : bool
            Refuse the split when any of its files is missing.
        verify_hashes : bool
            Recompute the sha256 of every file that has one stored and refuse a mismatch.

        Raises
        ------
        InputError
            If the file is not a camforensics split, is of a newer format, has devices in two splits (other
            than its declared ``image_split_devices``), or names files that are missing or changed.
        """
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read split file {str(path)!r}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != SPLIT_FORMAT:
            raise InputError(f"{str(path)!r} is not a camforensics split file (no format {SPLIT_FORMAT!r})")
        if doc.get("format_version", 0) > SPLIT_FORMAT_VERSION:
            raise InputError(
                f"{str(path)!r} has split format version {doc['format_version']}; this camforensics "
                f"({__version__}) reads up to {SPLIT_FORMAT_VERSION}: upgrade camforensics"
            )
        try:
            base = Path(root) if root is not None else Path(doc["dataset"]["root"])
            layout = doc["dataset"]["layout"]
            records, hashes = {}, {}
            for name in SPLIT_NAMES:
                items = doc["splits"][name]["images"]
                records[name] = tuple(
                    sorted(
                        ImageRecord(base / it["path"], it["make"], it["model"], it["device"], it["content"], layout)
                        for it in items
                    )
                )
                hashes.update({it["path"]: it["sha256"] for it in items if it.get("sha256")})
            split = cls(
                records=records,
                seed=int(doc["seed"]),
                fractions=tuple(float(doc["fractions"][n]) for n in SPLIT_NAMES),
                root=base,
                layout=layout,
                single_device=doc.get("single_device", "train"),
                stratified=bool(doc.get("stratified", True)),
                image_split_devices=tuple(doc.get("image_split_devices", ())),
                warnings=tuple(doc.get("warnings", ())),
                hashes=hashes,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"split file {str(path)!r} is malformed ({exc!r}); make a new one") from None
        _check_disjoint(split, path)
        if check_files or verify_hashes:
            _check_files(split, path, verify_hashes=verify_hashes)
        return split


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _check_disjoint(split: Split, path: str | os.PathLike[str]) -> None:
    seen: dict[str, str] = {}
    allowed = set(split.image_split_devices)
    for name in SPLIT_NAMES:
        for device in split.devices(name):
            if device in seen and device not in allowed:
                raise InputError(
                    f"split file {str(path)!r} puts device {device!r} in both {seen[device]!r} and {name!r}; "
                    "a device must stay in one split: make a new split with `camforensics datasets split`"
                )
            seen.setdefault(device, name)
    files: dict[Path, str] = {}
    for name in SPLIT_NAMES:
        for r in split._get(name):
            if r.path in files:
                raise InputError(
                    f"split file {str(path)!r} lists {str(r.path)!r} in both {files[r.path]!r} and {name!r}"
                )
            files[r.path] = name


def _check_files(split: Split, path: str | os.PathLike[str], *, verify_hashes: bool) -> None:
    all_records = [r for name in SPLIT_NAMES for r in split._get(name)]
    missing = [r.path for r in all_records if not r.path.is_file()]
    if missing:
        shown = ", ".join(repr(str(p)) for p in missing[:3])
        raise InputError(
            f"split file {str(path)!r}: {len(missing)} of {len(all_records)} files are missing (e.g. {shown}); "
            "if the data set moved, pass its new folder as root (--root), else make a new split"
        )
    if verify_hashes:
        changed = [
            str(r.path)
            for r in all_records
            if (h := split.hashes.get(_relative(r.path, split.root))) and sha256_file(r.path) != h
        ]
        if changed:
            raise InputError(
                f"split file {str(path)!r}: {len(changed)} files changed since the split was made "
                f"(e.g. {changed[0]!r}); results on them would not be comparable: make a new split"
            )


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(not math.isfinite(f) or f < 0 for f in values):
        raise ParameterError(f"fractions must be three non-negative numbers (train, validation, test), not {fractions}")
    if abs(sum(values) - 1.0) > 1e-6 or values[0] <= 0:
        raise ParameterError(
            f"fractions must sum to 1 with a positive train share, not {fractions} (e.g. 0.7,0.15,0.15)"
        )
    return values  # type: ignore[return-value]


def allocate_devices(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """How many of a model's ``n`` devices go to train, validation and test.

    With at least one device per non-empty split: ``floor(n * f)`` each, raised to 1, the rest to the split
    furthest below its target (ties to train, then validation). With fewer devices than non-empty splits the
    devices go to train first, then test, then validation (2 devices: one train, one test).
    """
    active = [i for i in _SMALL_MODEL_PRIORITY if fractions[i] > 0]
    counts = [0, 0, 0]
    if n < len(active):
        for i in active[:n]:
            counts[i] = 1
        return tuple(counts)  # type: ignore[return-value]
    counts = [max(1, math.floor(n * f)) if f > 0 else 0 for f in fractions]
    while sum(counts) > n:
        counts[max(range(3), key=lambda i: (counts[i], -i))] -= 1
    while sum(counts) < n:
        counts[max(range(3), key=lambda i: (n * fractions[i] - counts[i], -i))] += 1
    return tuple(counts)  # type: ignore[return-value]


def _common_root(records: Sequence[ImageRecord]) -> Path:
    return Path(os.path.commonpath([str(r.path.parent) for r in records]))


def split_by_device(
    records: Iterable[ImageRecord],
    *,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    single_device: str = "train",
    stratify: bool = True,
    root: str | os.PathLike[str] | None = None,
    layout: str | None = None,
) -> Split:
    """Split records into device-disjoint train / validation / test sets, stratified by camera model.

    Each model's devices are shuffled with a generator seeded by ``(seed, model)`` (so adding a model does not
    reshuffle the others) and handed out by :func:`allocate_devices`. Models with two devices get one train
    and one test device and no validation device.

    Parameters
    ----------
    records : iterable of ImageRecord
        The images to split (not modified).
    fractions : sequence of 3 floats
        Target shares of each model's devices for train, validation and test; they must sum to 1.
    seed : int
        Seed of the shuffles; the same records, fractions and seed always give the same split.
    single_device : {"train", "exclude", "split_images"}
        What to do with a model that has a single device: put it in train (it then cannot be evaluated on an
        unseen device), leave it out, or spread its *images* over the splits by ``fractions`` (the device is
        then in several splits: it is listed in ``image_split_devices``, the file says
        ``"device_disjoint": false`` and a warning says why results on it are optimistic). Each case is
        named in :attr:`Split.warnings`. Not applied with ``stratify=False``.
    stratify : bool
        Split each model's devices separately (default). ``False`` shuffles all devices together and splits
        them by ``fractions`` regardless of model: what same-device verification needs on a data set with
        one device per model (every test device is unseen, but its model may be too).
    root, layout : optional
        Data set root and layout written to the split file; by default the common folder of the records and
        their ``dataset`` field.

    Raises
    ------
    ParameterError
        If ``fractions`` or ``single_device`` are invalid, ``records`` is empty, or one device is labelled
        with two models.
    """
    fr = _check_fractions(fractions)
    if single_device not in SINGLE_DEVICE_POLICIES:
        raise ParameterError(f"unknown single_device policy {single_device!r}; choose one of {SINGLE_DEVICE_POLICIES}")
    recs = sorted(records)
    if not recs:
        raise ParameterError("no records to split; check the data set folder and its layout")
    by_device: dict[str, list[ImageRecord]] = defaultdict(list)
    model_of: dict[str, str] = {}
    for r in recs:
        by_device[r.device].append(r)
        if model_of.setdefault(r.device, r.model_id) != r.model_id:
            raise ParameterError(
                f"device {r.device!r} is labelled both {model_of[r.device]!r} and {r.model_id!r}; "
                "fix the manifest or folder names so each device has one model"
            )
    devices_of: dict[str, list[str]] = defaultdict(list)
    for device in sorted(by_device):
        devices_of[model_of[device] if stratify else "*all models*"].append(device)

    out: dict[str, list[ImageRecord]] = {name: [] for name in SPLIT_NAMES}
    warnings: list[str] = []
    image_split: list[str] = []
    for model in sorted(devices_of):
        devices = list(devices_of[model])
        rng = random.Random(f"camforensics-split:{seed}:{model}")
        rng.shuffle(devices)
        if stratify and len(devices) == 1 and single_device != "train":
            device = devices[0]
            if single_device == "exclude":
                warnings.append(f"model {model!r} has one device ({device!r}): left out of every split")
                continue
            images = list(by_device[device])
            rng.shuffle(images)
            counts = allocate_devices(len(images), fr)  # same rounding rule, applied to images
            start = 0
            for name, count in zip(SPLIT_NAMES, counts, strict=True):
                out[name].extend(images[start : start + count])
                start += count
            image_split.append(device)
            warnings.append(
                f"model {model!r} has one device ({device!r}): its IMAGES are split {counts[0]}/{counts[1]}/"
                f"{counts[2]}, so this device is in several splits and results on it are optimistic"
            )
            continue
        counts = allocate_devices(len(devices), fr)
        start = 0
        for name, count in zip(SPLIT_NAMES, counts, strict=True):
            for device in devices[start : start + count]:
                out[name].extend(by_device[device])
            start += count
        missing = [name for name, c, f in zip(SPLIT_NAMES, counts, fr, strict=True) if c == 0 and f > 0]
        if missing:
            group = f"model {model!r}" if stratify else "the data set"
            warnings.append(f"{group} has {len(devices)} device(s): none in {' or '.join(missing)}")
    layouts = sorted({r.dataset for r in recs})
    if not stratify:
        warnings.insert(0, "not stratified by model: devices were split regardless of their model")
    return Split(
        records={name: tuple(sorted(v)) for name, v in out.items()},
        seed=seed,
        fractions=fr,
        root=Path(root).absolute() if root is not None else _common_root(recs),
        layout=layout or "+".join(layouts),
        single_device=single_device,
        stratified=stratify,
        image_split_devices=tuple(sorted(image_split)),
        warnings=tuple(warnings),
    )


def split_named_devices(
    records: Iterable[ImageRecord],
    *,
    validation: Sequence[str],
    test: Sequence[str],
    root: str | os.PathLike[str] | None = None,
    layout: str | None = None,
) -> Split:
    """A device-disjoint split chosen by hand: the named devices go to validation and test, every other device to
    train (e.g. to hold out the two bodies of one camera model together, so the test holds a same-model pair).

    Raises
    ------
    ParameterError
        A named device is not in ``records``, or is named for both validation and test.
    """
    recs = sorted(records)
    present = sorted({r.device for r in recs})
    named = {"validation": sorted(set(validation)), "test": sorted(set(test))}
    unknown = sorted((set(named["validation"]) | set(named["test"])) - set(present))
    if unknown:
        raise ParameterError(f"no device {unknown} in the data set; it has: {', '.join(present)}")
    both = sorted(set(named["validation"]) & set(named["test"]))
    if both:
        raise ParameterError(f"devices {both} are named for both validation and test; a device goes to one split")
    where = {d: name for name, devices in named.items() for d in devices}
    out: dict[str, list[ImageRecord]] = {name: [] for name in SPLIT_NAMES}
    for r in recs:
        out[where.get(r.device, "train")].append(r)
    total = max(len(present), 1)
    fr = tuple(len({r.device for r in out[name]}) / total for name in SPLIT_NAMES)
    return Split(
        records={name: tuple(v) for name, v in out.items()},
        seed=0,
        fractions=fr,
        root=Path(root).absolute() if root is not None else _common_root(recs),
        layout=layout or "+".join(sorted({r.dataset for r in recs})),
        single_device="train",
        stratified=False,
        warnings=(f"devices chosen by hand: validation {named['validation']}, test {named['test']}, the rest train",),
    )



SPLIT_BY: tuple[str, ...] = ("device", "image")


def split_by_image(
    records: Iterable[ImageRecord],
    *,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    test_only: Iterable[Path] = (),
    root: str | os.PathLike[str] | None = None,
    layout: str | None = None,
) -> Split:
    """Split every device's IMAGES over train / validation / test (no device is disjoint: each body is in every
    split, so the figures measure images of bodies seen in training; the split says so).

    Each device's images are shuffled with a generator seeded by ``(seed, device)`` and handed out by the rounding
    rule of :func:`allocate_devices` (at least one image per non-empty split when the device has enough). Images in
    ``test_only`` (absolute paths; e.g. the crops of photos whose full frames are measured separately) never enter
    train or validation: they go to test, and the device's other images are split as usual.

    Raises
    ------
    ParameterError
        If ``fractions`` are invalid or ``records`` is empty.
    """
    fr = _check_fractions(fractions)
    recs = sorted(records)
    if not recs:
        raise ParameterError("no records to split; check the data set folders and their layout")
    forced = {Path(p).absolute() for p in test_only}
    by_device: dict[str, list[ImageRecord]] = defaultdict(list)
    for r in recs:
        by_device[r.device].append(r)
    out: dict[str, list[ImageRecord]] = {name: [] for name in SPLIT_NAMES}
    warnings: list[str] = []
    n_forced = 0
    for device in sorted(by_device):
        images = [r for r in by_device[device] if r.path.absolute() not in forced]
        held = [r for r in by_device[device] if r.path.absolute() in forced]
        n_forced += len(held)
        rng = random.Random(f"camforensics-image-split:{seed}:{device}")
        rng.shuffle(images)
        counts = allocate_devices(len(images), fr)
        start = 0
        for name, count in zip(SPLIT_NAMES, counts, strict=True):
            out[name].extend(images[start : start + count])
            start += count
        out["test"].extend(held)
        if counts[0] == 0:
            warnings.append(f"device {device!r} has no training image ({len(images)} image(s) to split)")
    devices = sorted(by_device)
    warnings.insert(
        0,
        "split by image within each device: every body is in training and test, so the figures are for new "
        "photos of bodies seen in training (not of unseen bodies of the same models)",
    )
    if n_forced:
        warnings.append(f"{n_forced} image(s) named test-only (kept out of training and validation)")
    return Split(
        records={name: tuple(sorted(v)) for name, v in out.items()},
        seed=seed,
        fractions=fr,
        root=Path(root).absolute() if root is not None else _common_root(recs),
        layout=layout or "+".join(sorted({r.dataset for r in recs})),
        single_device="split_images",
        stratified=True,
        image_split_devices=tuple(devices),
        warnings=tuple(warnings),
    )

"""enroll: estimate a device fingerprint from its reference images and store it in a library."""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camforensics.core.fingerprint import FingerprintAccumulator, HalvesAccumulator
from camforensics.core.params import FingerprintParams
from camforensics.errors import InputError, LibraryError, SizeMismatchError
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.io.library import FingerprintLibrary, LibraryEntry, check_device_name
from camforensics.pipelines.batch import common_size, gather_inputs, run_tasks
from camforensics.pipelines.device import as_numpy_accumulator, new_accumulator
from camforensics.pipelines.executor import IN_PROCESS, Execution
from camforensics.reports.report import Report

_USED_FIELDS = ("path", "sha256", "size_bytes", "width", "height", "exif_make", "exif_model")


@dataclass(frozen=True)
class AccumulateSetup:
    """What a fingerprinting worker needs; calling it gives the worker an empty partial accumulator."""

    params: FingerprintParams  # fingerprint estimation
    size: tuple[int, int] | None  # (width, height) every image must have; None: the first image decides
    max_pixels: int  # decompression-bomb guard
    device: str = "cpu"  # compute device of the accumulation (see camforensics.pipelines.device)
    halves: bool = False  # also accumulate split halves of a centre window to measure the estimate's reliability
    allow_digital_zoom: bool = False  # accept references whose EXIF records a digital zoom above 1 (refused by default)

    def __call__(self) -> AccumulateState:
        if self.halves:
            make = lambda p: new_accumulator(self.device, p)
            return AccumulateState(self, HalvesAccumulator(params=self.params, make=make))
        return AccumulateState(self, new_accumulator(self.device, self.params))


@dataclass
class AccumulateState:
    """A worker's share of a fingerprint: its own accumulator, handed back at the end and merged by the caller."""

    setup: AccumulateSetup
    acc: Any  # FingerprintAccumulator, the torch backend's equivalent, or a HalvesAccumulator of either

    def harvest(self) -> Any:
        """The worker's sums as numpy accumulators: one, or (full, first half, second half) with halves
        (a half None when empty)."""
        if not self.acc.n_images:
            return None
        if isinstance(self.acc, HalvesAccumulator):
            halves = tuple(h if h.n_images else None for h in self.acc.halves)
            return (as_numpy_accumulator(self.acc.full), *halves)
        return as_numpy_accumulator(self.acc)


def accumulate_one(path: Path, state: AccumulateState, record: dict[str, Any]) -> None:
    """Add one reference image to the worker's partial fingerprint (the per-file task of enroll and verify)."""
    setup = state.setup
    img = load_image(path, max_pixels=setup.max_pixels)
    record["input"] = img.info.to_dict()
    size = setup.size
    if size is not None and (img.info.width, img.info.height) != size:
        raise SizeMismatchError(
            f"{img.info.width}x{img.info.height} differs from the {size[0]}x{size[1]} of most reference images; "
            "a fingerprint needs camera originals of one size (rotated or resized copies are refused)"
        )
    zoom = img.info.exif_digital_zoom
    if zoom is not None and not setup.allow_digital_zoom:
        raise InputError(
            f"digitally zoomed {zoom:.2f}x (EXIF DigitalZoomRatio): an upscaled crop of the sensor, whose PRNU is not at "
            "the sensor's scale; refused as a reference (allow_digital_zoom / --allow-digital-zoom keeps it)"
        )
    state.acc.add(img.pixels)
    record["used"] = True


def merge_accumulators(parts: list[FingerprintAccumulator], *, params: FingerprintParams) -> FingerprintAccumulator:
    """One accumulator holding every part (the workers' shares of the images)."""
    acc = FingerprintAccumulator(params=params)
    for part in parts:
        acc.merge(part)
    return acc


def merge_halves(parts: list[tuple[Any, Any, Any]], *, params: FingerprintParams) -> HalvesAccumulator:
    """One :class:`HalvesAccumulator` holding every worker's sums (harvests of ``halves=True`` states)."""
    acc = HalvesAccumulator(params=params)
    for full, first, second in parts:
        acc.merge_parts(full, first, second)
    return acc


def enroll_device(
    paths: list[str | Path],
    *,
    name: str,
    library: str | Path,
    params: FingerprintParams = FingerprintParams(),
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allow_digital_zoom: bool = False,
    execution: Execution = IN_PROCESS,
    tick: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> tuple[Report, LibraryEntry | None]:
    """Fingerprint a device from the images under ``paths`` and store it as ``name`` in ``library``.

    Images whose size differs from the most common size among the inputs are refused (a fingerprint needs one
    sensor geometry); so are unreadable files and, unless ``allow_digital_zoom``, images whose EXIF records a
    digital zoom above 1 (upscaled crops of the sensor: the same size, another PRNU scale). Each input gets a result in the report. With several workers,
    each accumulates its share of the images and the shares are merged (memory independent of the number of
    images; the result equals a single accumulator's up to float32 summation order).

    Returns
    -------
    (Report, LibraryEntry or None)
        The entry is None when no image could be used (the report says why for each).

    Raises
    ------
    CamforensicsError
        Bad name, existing name without ``overwrite``, not a library, or no input files at all.
    """
    check_device_name(name)
    lib = FingerprintLibrary(library, create=True)
    if name in lib and not overwrite:
        raise LibraryError(f"device {name!r} is already enrolled in {lib.root}; choose another --name or pass --overwrite")
    files = gather_inputs(paths, on_start=on_start)
    size = common_size(files)
    report = Report(
        command="enroll",
        parameters={"name": name, "overwrite": overwrite, "max_pixels": max_pixels,
                    "allow_digital_zoom": allow_digital_zoom, "fingerprint": params.to_dict()},
    )
    used: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []

    def on_result(result: dict[str, Any], extras: dict[str, Any]) -> None:
        if result["status"] == "ok":
            used.append({k: result["input"].get(k) for k in _USED_FIELDS})
        else:
            refused.append({"path": result["input"]["path"], "reason": result["error"]["message"]})

    setup = AccumulateSetup(params, size, max_pixels, execution.device, halves=True, allow_digital_zoom=allow_digital_zoom)
    parts = run_tasks(files, accumulate_one, setup, report, execution=execution, on_result=on_result, tick=tick)
    acc = merge_halves(parts, params=params)
    entry = None
    if acc.n_images:
        fp, reliability = acc.finish()
        makes = collections.Counter((u["exif_make"], u["exif_model"]) for u in used)
        (make, model), _ = makes.most_common(1)[0]
        meta = {
            "n_images": fp.n_images,
            "image_size": [size[0], size[1]] if size else [int(fp.shape[1]), int(fp.shape[0])],
            "exif_make": make,
            "exif_model": model,
            "parameters": params.to_dict(),
            # None with a single image: the halves need one image each
            "reliability": reliability.to_dict() if reliability is not None else None,
            "inputs": used,
            "refused": refused,
        }
        entry = lib.add(name, fp.k, meta=meta, overwrite=overwrite)
        report.context["library"] = {"path": str(lib.root), "entry": entry.summary()}
    report.finish(enrolled=entry is not None, device=name, n_images_used=acc.n_images)
    return report, entry

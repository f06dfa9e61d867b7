"""camforensics profile: a camera model's traces estimated from sample photos, written as one profile file, and
the shipped profiles that ``anonymize --target NAME`` resolves.

A profile file (``.npz``, no pickled objects) holds the arrays of :mod:`camforensics.core.camera_profile` (the 12
demosaicing filters, the residual spectrum, the mean noise pattern) and a JSON header ``meta`` (format, camera
model, layout and its fit errors, JPEG tables, periodic peaks, the photos' names, sha256 and sizes, counts). Its
sha256 is recorded in every report that uses it, as a fingerprint's is.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.camera_profile import (
    BLOCK,
    FILTER,
    LAYOUTS,
    PERIOD,
    DemosaicAccumulator,
    block_spectrum,
    folded_pattern,
    grey,
    highpass,
    normalised_spectrum,
    spectrum_peaks,
)
from camforensics.errors import CamforensicsError, InputError, ParameterError
from camforensics.inference.anonymizer import class_key
from camforensics.inference.attribution import exif_model_id
from camforensics.io.folders import safe_file_part
from camforensics.io.hashing import sha256_bytes
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.io.jpeg_tables import JpegTables, read_jpeg_tables
from camforensics.io.safety import check_outputs
from camforensics.reports.atomic import atomic_write_bytes
from camforensics.reports.report import Report, error_record

FORMAT = "camforensics.camera-profile"
VERSION = 1
MIN_PHOTOS = 8
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "models" / "profiles"


@dataclass(frozen=True)
class CameraProfile:
    """A camera model's traces (see :mod:`camforensics.core.camera_profile`)."""

    name: str  # camera model, "<Make> <Model>" as attributors spell it
    layout: str  # CFA layout, one of LAYOUTS
    filters: np.ndarray  # 4 phases x 3 channels x FILTER x FILTER
    spectrum: np.ndarray  # BLOCK x BLOCK unit-mean residual power spectrum (grey)
    pattern: np.ndarray  # 3 x PERIOD x PERIOD mean residual folded from (0, 0)
    jpeg: JpegTables | None  # the most common tables of the photos (None: no JPEG among them)
    meta: dict[str, Any] = field(default_factory=dict)  # the rest of the header (photos, counts, errors, peaks)
    sha256: str = ""  # of the file it was read from ("" before it is written)
    path: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "sha256": self.sha256,
            "layout": self.layout,
            "n_photos": self.meta.get("n_photos"),
            "jpeg_subsampling": self.jpeg.subsampling if self.jpeg else None,
        }

    def to_bytes(self) -> bytes:
        header = {**self.meta, "format": FORMAT, "version": VERSION, "name": self.name, "layout": self.layout,
                  "jpeg": self.jpeg.to_dict() if self.jpeg else None}  # fmt: skip
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            meta=np.array(json.dumps(header, sort_keys=True)),
            filters=self.filters.astype(np.float32),
            spectrum=self.spectrum.astype(np.float32),
            pattern=self.pattern.astype(np.float32),
        )
        return buf.getvalue()


def read_profile(path: str | os.PathLike[str]) -> CameraProfile:
    """A profile file, checked.

    Raises
    ------
    InputError
        Missing, unreadable, not a camera profile, or arrays of the wrong shape.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read the camera profile ({exc.strerror or exc})") from None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            filters, spectrum, pattern = z["filters"], z["spectrum"], z["pattern"]
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: not a camera profile ({exc}); build one with 'camforensics profile DIR -o FILE'") from None
    if meta.get("format") != FORMAT or meta.get("layout") not in LAYOUTS:
        raise InputError(f"{p}: not a camera profile (format {meta.get('format')!r})")
    if filters.shape != (4, 3, FILTER, FILTER) or spectrum.shape != (BLOCK, BLOCK) or pattern.shape != (3, PERIOD, PERIOD):
        raise InputError(f"{p}: camera profile arrays of unexpected shapes; rebuild it with this version")
    jpeg = JpegTables.from_dict(meta["jpeg"]) if meta.get("jpeg") else None
    return CameraProfile(meta["name"], meta["layout"], filters, spectrum, pattern, jpeg, meta, sha256_bytes(data), str(p.resolve()))


@dataclass(frozen=True)
class ProfileParams:
    """How a profile is built (written into its header and the report)."""

    name: str | None = None  # camera model; None: the photos' common EXIF make and model
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_photos: int = MIN_PHOTOS
    fit_stride: int = 4  # every stride-th CFA site of each phase enters the demosaicing fit (~16000 per photo)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "min_photos": self.min_photos, "fit_stride": self.fit_stride,
                "filter": FILTER, "spectrum_block": BLOCK, "pattern_period": PERIOD}  # fmt: skip


def build_profile(
    files: list[Path], *, params: ProfileParams = ProfileParams(), on_photo: Callable[[int, int], None] | None = None
) -> tuple[CameraProfile, list[dict[str, Any]]]:
    """The profile of the photos in ``files`` and one record per file (used, or its error).

    Raises
    ------
    ParameterError
        Fewer than ``min_photos`` usable photos, no name and no common EXIF camera model, photos of several EXIF
        camera models without ``name``.
    """
    acc = DemosaicAccumulator()
    spec_sum = np.zeros((BLOCK, BLOCK))
    n_blocks = 0
    pat_sum = np.zeros((3, PERIOD, PERIOD))
    n_periods = 0
    std_sum = np.zeros(3)
    tables: Counter[tuple[Any, ...]] = Counter()
    by_key: dict[tuple[Any, ...], JpegTables] = {}
    models: Counter[str] = Counter()
    photos: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    for i, f in enumerate(files):
        try:
            img = load_image(f, max_pixels=params.max_pixels)
            if img.pixels.ndim != 3:
                raise InputError(f"{f}: a grey image has no CFA traces to profile")
            x = np.asarray(img.pixels, np.float32)
            if min(x.shape[:2]) < 2 * BLOCK:
                raise InputError(f"{f}: smaller than {2 * BLOCK} pixels; too small to profile")
            t = read_jpeg_tables(Path(f).read_bytes(), name=str(f))
        except CamforensicsError as exc:
            records.append({"file": str(f), "status": "error", "error": error_record(exc)})
            continue
        acc.add(x, stride=params.fit_stride)
        h = highpass(x)
        s, n = block_spectrum(grey(h))
        spec_sum += s
        n_blocks += n
        ps, npd = folded_pattern(h)
        pat_sum += ps
        n_periods += npd
        std_sum += h.reshape(-1, 3).std(axis=0)
        if t is not None:
            tables[t.key()] += 1
            by_key[t.key()] = t
        mid = exif_model_id(img.info.exif_make, img.info.exif_model)
        if mid:
            models[mid] += 1
        photos.append({"file": Path(f).name, "sha256": img.info.sha256, "width": x.shape[1], "height": x.shape[0],
                       "exif_model": mid, "jpeg_subsampling": t.subsampling if t else None})  # fmt: skip
        records.append({"file": str(f), "status": "ok", "sha256": img.info.sha256})
        if on_photo is not None:
            on_photo(i + 1, len(files))
    n = len(photos)
    if n < params.min_photos:
        raise ParameterError(f"a camera profile needs at least {params.min_photos} usable photos of one camera model; got {n}")
    name = params.name
    if name is None:
        if len(models) != 1:
            found = ", ".join(f"{m} ({c})" for m, c in models.most_common()) or "none"
            raise ParameterError(f"name the camera model with --name: the photos' EXIF camera models are {found}")
        name = next(iter(models))
    layout, filters, errors = acc.solve()
    spectrum = normalised_spectrum(spec_sum / max(1, n_blocks))
    common = tables.most_common(1)[0][0] if tables else None
    meta = {
        "n_photos": n,
        "photos": photos,
        "exif_models": dict(models),
        "layout_mse": errors,
        "peaks": spectrum_peaks(spectrum),
        "residual_std": (std_sum / n).tolist(),
        "jpeg_table_sets": len(tables),
        "jpeg_photos_with_common_tables": tables[common] if common else 0,
        "params": params.to_dict(),
    }
    prof = CameraProfile(name, layout, filters, spectrum, pat_sum / max(1, n_periods), by_key.get(common) if common else None, meta)
    return prof, records


def write_profile(profile: CameraProfile, out: str | os.PathLike[str]) -> CameraProfile:
    """Write ``profile`` atomically; the profile as written (path and sha256 set)."""
    data = profile.to_bytes()
    atomic_write_bytes(Path(out), data)
    return read_profile(out)


def profile_photos(
    paths: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    params: ProfileParams = ProfileParams(),
    on_start: Callable[[int], None] | None = None,
    tick: Callable[[], None] | None = None,
) -> Report:
    """``camforensics profile``: build the profile of the photos under ``paths`` into the file ``out``; one
    result per photo (used, or its error), the profile's summary and sha256 in ``summary.profile``.

    The output is checked before any photo is read (never an input, never over a file in an input folder).

    Raises
    ------
    CamforensicsError
        An output path among the inputs, no image files, fewer usable photos than ``params.min_photos``.
    """
    from camforensics.pipelines.batch import gather_inputs  # noqa: PLC0415 (pipelines.batch imports the executor)

    check_outputs(paths, files=[("--output", out)])
    files = gather_inputs(list(paths), on_start=on_start)
    report = Report(command="profile", parameters={**params.to_dict(), "output": str(out)})
    t0 = time.perf_counter()
    prof, records = build_profile(files, params=params, on_photo=(lambda i, n: tick()) if tick else None)
    for r in records:
        report.add({"input": {"path": r.pop("file")}, **r})
    written = write_profile(prof, out)
    report.finish(
        profile={**written.summary(), "layout_mse": prof.meta["layout_mse"], "peaks": prof.meta["peaks"],
                 "residual_std": prof.meta["residual_std"], "jpeg": prof.jpeg.to_dict() if prof.jpeg else None,
                 "jpeg_table_sets": prof.meta["jpeg_table_sets"]},
        seconds=time.perf_counter() - t0,
    )  # fmt: skip
    return report


def profile_file_name(name: str) -> str:
    return safe_file_part(name) + ".npz"


def known_profiles(folder: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Camera model -> profile file of a folder (default: the shipped ``models/profiles``)."""
    root = Path(folder) if folder is not None else SHIPPED_DIR
    out: dict[str, Path] = {}
    if root.is_dir():
        for f in sorted(root.glob("*.npz")):
            try:
                out[read_profile(f).name] = f
            except InputError:
                continue
    return out


def resolve_profile(target: str, folder: str | os.PathLike[str] | None = None) -> CameraProfile:
    """The profile of ``target``: a profile file's path, or a camera model of ``folder`` (case and spaces ignored).

    Raises
    ------
    ParameterError
        An unknown camera model (the known targets are listed).
    """
    if target.endswith(".npz") and Path(target).is_file():
        return read_profile(target)
    known = known_profiles(folder)
    by_key = {class_key(k): v for k, v in known.items()}
    if class_key(target) not in by_key:
        where = folder or "the shipped profiles (models/profiles)"
        listed = ", ".join(known) or "none"
        raise ParameterError(f"unknown target {target!r} in {where}; known targets: {listed} (or give a profile .npz "
                             "built by 'camforensics profile DIR -o FILE')")  # fmt: skip
    return read_profile(by_key[class_key(target)])

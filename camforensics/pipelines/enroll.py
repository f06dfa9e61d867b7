"""enroll: estimate a device fingerprint from its reference images and store it in a library."""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path
from typing import Any

from camforensics.core.fingerprint import FingerprintAccumulator
from camforensics.core.params import FingerprintParams
from camforensics.errors import LibraryError, SizeMismatchError
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.io.library import FingerprintLibrary, LibraryEntry, check_device_name
from camforensics.pipelines.batch import gather_inputs, common_size, run_batch
from camforensics.reports.report import Report


def enroll_device(
    paths: list[str | Path],
    *,
    name: str,
    library: str | Path,
    params: FingerprintParams = FingerprintParams(),
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    tick: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> tuple[Report, LibraryEntry | None]:
    """Fingerprint a device from the images under ``paths`` and store it as ``name`` in ``library``.

    Images whose size differs from the most common size among the inputs are refused (a fingerprint needs one
    sensor geometry); so are unreadable files. Each input gets a result in the report.

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
        parameters={"name": name, "overwrite": overwrite, "max_pixels": max_pixels, "fingerprint": params.to_dict()},
    )
    acc = FingerprintAccumulator(params=params)
    used: list[dict[str, Any]] = []

    def work(path: Path, record: dict[str, Any]) -> None:
        img = load_image(path, max_pixels=max_pixels)
        record["input"] = img.info.to_dict()
        if size is not None and (img.info.width, img.info.height) != size:
            raise SizeMismatchError(
                f"{img.info.width}x{img.info.height} differs from the {size[0]}x{size[1]} of most reference "
                "images; a fingerprint needs camera originals of one size (rotated or resized copies are refused)"
            )
        acc.add(img.pixels)
        used.append(
            {k: record["input"][k] for k in ("path", "sha256", "size_bytes", "width", "height", "exif_make", "exif_model")}
        )
        record["used"] = True

    run_batch(files, work, report, tick=tick)
    entry = None
    if acc.n_images:
        fp = acc.finish()
        makes = collections.Counter((u["exif_make"], u["exif_model"]) for u in used)
        (make, model), _ = makes.most_common(1)[0]
        meta = {
            "n_images": fp.n_images,
            "image_size": [size[0], size[1]] if size else [int(fp.shape[1]), int(fp.shape[0])],
            "exif_make": make,
            "exif_model": model,
            "parameters": params.to_dict(),
            "inputs": used,
            "refused": [
                {"path": r["input"]["path"], "reason": r["error"]["message"]} for r in report.results if r["status"] != "ok"
            ],
        }
        entry = lib.add(name, fp.k, meta=meta, overwrite=overwrite)
        report.context["library"] = {"path": str(lib.root), "entry": entry.summary()}
    report.finish(enrolled=entry is not None, device=name, n_images_used=acc.n_images)
    return report, entry

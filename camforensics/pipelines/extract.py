"""extract: noise residuals to .npy, with 8-bit pictures of the residual and of its spectrum."""

from __future__ import annotations

import os
from contextlib import nullcontext
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.params import ResidualParams
from camforensics.errors import CamforensicsError
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.io.safety import temporaries_swept, unique_stems
from camforensics.pipelines.ahead import residual_of
from camforensics.pipelines.batch import gather_inputs, run_tasks
from camforensics.pipelines.executor import IN_PROCESS, Execution
from camforensics.reports.atomic import atomic_open, atomic_write_bytes
from camforensics.reports.journal import Journal
from camforensics.reports.report import Report


def save_npy(path: Path, array: np.ndarray) -> None:
    """Save an array as .npy atomically (no pickles)."""
    with atomic_open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


@dataclass(frozen=True)
class ExtractSetup:
    """What an extract worker needs (it is its own state: nothing to build)."""

    params: ResidualParams  # residual extraction
    out_dir: str  # output folder, as the workers see it
    save_arrays: bool  # write .residual.npy
    save_pictures: bool  # write .residual.png and .spectrum.png
    max_pixels: int  # decompression-bomb guard
    device: str = "cpu"  # compute device of the residual (see camforensics.pipelines.device)
    stems: Mapping[str, str] = field(default_factory=dict)  # output stem of inputs sharing a file name (io.safety)

    def __call__(self) -> ExtractSetup:
        return self


def extract_one(path: Path, setup: ExtractSetup, record: dict[str, Any]) -> None:
    """Write one image's residual files (the per-file task of :func:`extract_residuals`).

    With pictures, they are drawn in the process that the command forked at its start for them
    (:func:`camforensics.core.figures.drawing_process_started`, one photo) from the decimated residual and the
    spectrum, while this process writes the .npy; its errors are this file's. Otherwise matplotlib is imported in a
    background thread while the image is decoded and denoised; then the .npy is written (and synced) in one thread
    and the spectrum computed (FFTs, the GIL let go) in another while the residual picture is drawn."""
    drawer = None
    if setup.save_pictures:
        from camforensics.core.figures import drawing_process, prefetch

        drawer = drawing_process()
        if drawer is None:
            prefetch()
    with drawer or nullcontext():  # no process outlives the file
        _extract_one(path, setup, record, drawer)


def _extract_one(path: Path, setup: ExtractSetup, record: dict[str, Any], drawer: Any) -> None:
    img = load_image(path, max_pixels=setup.max_pixels)
    record["input"] = img.info.to_dict()
    w = residual_of(img.pixels, setup.params, setup.device)  # started once decoded, where it was
    base = Path(setup.out_dir) / f"{setup.stems.get(str(path), path.stem)}_{img.info.sha256[:8]}"
    outputs: dict[str, str] = {}
    rms = None
    with ThreadPoolExecutor(max_workers=2) as helpers:
        saved = None
        if setup.save_arrays:
            saved = helpers.submit(save_npy, base.with_name(base.name + ".residual.npy"), w)
            outputs["residual_npy"] = str(base.with_name(base.name + ".residual.npy"))
        if setup.save_pictures:
            from camforensics.core import figures

            name, digest = path.name, img.info.sha256
            if drawer is not None:
                db = helpers.submit(figures.spectrum_db, w)  # FFTs (the GIL let go) while the view is taken
                drawn = drawer.submit(figures.draw_residual, figures.residual_view(w), name=name, sha256=digest)
                spectrum = drawer.submit(figures.spectrum_figure, None, name=name, sha256=digest, db=db.result())
                rms = _rms(w)  # while the pictures are drawn
                residual_png, spectrum_png = drawer.result(drawn), drawer.result(spectrum)
            else:
                db = helpers.submit(figures.spectrum_db, w)
                residual_png = figures.residual_figure(w, name=name, sha256=digest)
                spectrum_png = figures.spectrum_figure(None, name=name, sha256=digest, db=db.result())
            atomic_write_bytes(base.with_name(base.name + ".residual.png"), residual_png)
            atomic_write_bytes(base.with_name(base.name + ".spectrum.png"), spectrum_png)
            outputs["residual_png"] = str(base.with_name(base.name + ".residual.png"))
            outputs["spectrum_png"] = str(base.with_name(base.name + ".spectrum.png"))
        if rms is None:
            rms = _rms(w)
        if saved is not None:
            saved.result()  # its error, if any, is this file's
    record["outputs"] = outputs
    record["residual"] = {"rms": rms, "shape": list(w.shape)}


def _rms(w: np.ndarray) -> float:
    return float(np.sqrt(np.einsum("ij,ij->", w, w, dtype=np.float64) / max(w.size, 1)))


def extract_residuals(
    paths: list[str | Path],
    out_dir: str | Path,
    *,
    params: ResidualParams = ResidualParams(),
    save_arrays: bool = True,
    save_pictures: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    execution: Execution = IN_PROCESS,
    journal: str | os.PathLike[str] | None = None,
    resume: bool = False,
    tick: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Report:
    """Write the residual of every image under ``paths`` into ``out_dir``.

    Outputs are named ``<stem>_<first 8 hex of the input sha256>`` (``<stem>~<n>_...`` for inputs that share a
    file name, see :func:`camforensics.io.safety.unique_stems`) so that equal names from different folders never
    overwrite each other, even with equal contents: ``.residual.npy`` (float32, stored sensor order), ``.residual.png`` (matplotlib:
    contrast-stretched, colour bar, centre at full resolution) and ``.spectrum.png`` (mean power spectrum in dB with
    frequency axes, JPEG and CFA peak positions marked); both titled with the file name and its sha256 prefix.
    ``execution``, ``journal`` and ``resume`` as in :func:`~camforensics.pipelines.identify.identify_images`
    (on a cluster, ``out_dir`` must be a folder the workers can write).
    """
    files = gather_inputs(paths, on_start=on_start)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parameters = {
        "residual": params.to_dict(),
        "out_dir": str(out),
        "save_arrays": save_arrays,
        "save_pictures": save_pictures,
        "max_pixels": max_pixels,
    }
    report = Report(
        command="extract",
        parameters=parameters,
        journal=Journal(journal, command="extract", parameters=parameters, resume=resume) if journal else None,
    )
    setup = ExtractSetup(params, str(out), save_arrays, save_pictures, max_pixels, execution.device, unique_stems(files))
    with temporaries_swept(out):  # a worker stopped by Ctrl-C leaves no half-written output
        run_tasks(files, extract_one, setup, report, execution=execution, tick=tick)
    report.finish()
    return report


def model_spectra_figure(report: Report) -> bytes:
    """Per camera model (EXIF make and model; "EXIF names no model" otherwise) the mean power spectrum of the
    residuals that ``report``'s run wrote as .npy, side by side (the style analysis of cameraGAN, Li et al.).

    Raises
    ------
    CamforensicsError
        When no result has a residual .npy to read (run with --npy).
    """
    from camforensics.core.figures import mean_spectra_figure, spectrum_db

    sums: dict[str, list[Any]] = {}
    for r in report.iter_results():
        npy = (r.get("outputs") or {}).get("residual_npy") if r["status"] == "ok" else None
        if not npy:
            continue
        inp = r["input"]
        model = " ".join(x for x in (inp.get("exif_make"), inp.get("exif_model")) if x) or "EXIF names no model"
        power = 10.0 ** (spectrum_db(np.load(npy, mmap_mode="r", allow_pickle=False)) / 10.0)
        acc = sums.setdefault(model, [np.zeros_like(power), 0])
        if acc[0].shape == power.shape:
            acc[0] += power
            acc[1] += 1
    if not sums:
        raise CamforensicsError("no residual .npy was written to average (run extract with --npy)")
    spectra = {f"{m} ({n} images)": 10.0 * np.log10(s / n + 1e-12) for m, (s, n) in sorted(sums.items())}
    return mean_spectra_figure(spectra, title="mean residual spectrum per camera model (EXIF), dB")

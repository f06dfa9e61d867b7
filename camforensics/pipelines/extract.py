"""extract: noise residuals to .npy, with 8-bit pictures of the residual and of its spectrum."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.display import residual_picture, spectrum_picture
from camforensics.core.params import ResidualParams
from camforensics.core.residual import extract_residual
from camforensics.errors import CamforensicsError
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.pipelines.batch import gather_inputs, run_batch
from camforensics.reports.atomic import atomic_open, atomic_write_bytes
from camforensics.reports.report import Report


def save_npy(path: Path, array: np.ndarray) -> None:
    """Save an array as .npy atomically (no pickles)."""
    with atomic_open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def save_png(path: Path, picture: np.ndarray) -> None:
    """Save an 8-bit grey picture as PNG atomically."""
    import cv2

    ok, buf = cv2.imencode(".png", picture)
    if not ok:
        raise CamforensicsError(f"could not encode {path.name} as PNG")
    atomic_write_bytes(path, buf.tobytes())


def extract_residuals(
    paths: list[str | Path],
    out_dir: str | Path,
    *,
    params: ResidualParams = ResidualParams(),
    save_arrays: bool = True,
    save_pictures: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    tick: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Report:
    """Write the residual of every image under ``paths`` into ``out_dir``.

    Outputs are named ``<stem>_<first 8 hex of the input sha256>`` so that equal names from different folders
    never overwrite each other: ``.residual.npy`` (float32, stored sensor order), ``.residual.png`` (0 at grey
    128, +-3 std to white/black) and ``.spectrum.png`` (dB magnitude, 40 dB range, zero frequency centred).
    """
    files = gather_inputs(paths, on_start=on_start)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(
        command="extract",
        parameters={
            "residual": params.to_dict(),
            "out_dir": str(out),
            "save_arrays": save_arrays,
            "save_pictures": save_pictures,
            "max_pixels": max_pixels,
        },
    )

    def work(path: Path, record: dict[str, Any]) -> None:
        img = load_image(path, max_pixels=max_pixels)
        record["input"] = img.info.to_dict()
        w = extract_residual(img.pixels, params=params)
        base = out / f"{path.stem}_{img.info.sha256[:8]}"
        outputs: dict[str, str] = {}
        if save_arrays:
            save_npy(base.with_name(base.name + ".residual.npy"), w)
            outputs["residual_npy"] = str(base.with_name(base.name + ".residual.npy"))
        if save_pictures:
            save_png(base.with_name(base.name + ".residual.png"), residual_picture(w))
            save_png(base.with_name(base.name + ".spectrum.png"), spectrum_picture(w))
            outputs["residual_png"] = str(base.with_name(base.name + ".residual.png"))
            outputs["spectrum_png"] = str(base.with_name(base.name + ".spectrum.png"))
        record["outputs"] = outputs
        record["residual"] = {"rms": float(np.sqrt(np.mean(w.astype(np.float64) ** 2))), "shape": list(w.shape)}

    run_batch(files, work, report, tick=tick)
    report.finish()
    return report

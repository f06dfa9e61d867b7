"""Where a one-photo ``identify`` or ``extract`` spends its CPU: each part timed by itself, one after the other, in
one fresh process (wall and CPU seconds of each; no part overlaps another here, as they do in the command).

    python bench/bench_one_photo_parts.py extract PHOTO
    python bench/bench_one_photo_parts.py identify PHOTO --library LIB

The CPU seconds are the comparable figures on a shared machine. The command itself overlaps these parts on two
cores (docs/performance.md, issue 21): its wall time is at least its critical path, not their sum.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROWS: list[tuple[str, float, float]] = []


def timed(label: str, fn, *args, **kwargs):  # any call
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    ROWS.append((label, time.perf_counter() - t, time.process_time() - c))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["identify", "extract"])
    ap.add_argument("photo", type=Path)
    ap.add_argument("--library", type=Path)
    args = ap.parse_args()
    t0, c0 = time.perf_counter(), time.process_time()

    def imports() -> None:
        import cv2  # noqa: F401
        import numpy  # noqa: F401
        import rich.console  # noqa: F401
        import typer  # noqa: F401
        from PIL import Image  # noqa: F401

    timed("imports: typer, rich, numpy, cv2, PIL", imports)
    from camforensics.runtime.heap import retain_freed_memory, small_pages_for_arrays

    retain_freed_memory()
    small_pages_for_arrays()  # as a one-photo command sets them
    from camforensics.core.residual import extract_residual, to_grey
    from camforensics.io.images import load_image

    img = timed("read, sha256, decode", load_image, args.photo)
    w = timed("residual", extract_residual, img.pixels)
    if args.command == "extract":
        from camforensics.core import figures
        from camforensics.pipelines.extract import _rms, save_npy

        db = timed("spectrum (48 tiles of 512)", figures.spectrum_db, w)
        view = timed("residual view (decimated, centre)", figures.residual_view, w)
        timed("rms", _rms, w)
        with tempfile.TemporaryDirectory() as tmp:
            timed("write the .npy", save_npy, Path(tmp) / "w.npy", w)
        timed("import matplotlib", figures.import_for_drawing)
        timed("build the two frames", figures.prepare_drawing)
        name, digest = args.photo.name, img.info.sha256
        timed("draw + encode the residual picture", figures.draw_residual, view, name=name, sha256=digest)
        timed("draw + encode the spectrum picture", figures.spectrum_figure, None, name=name, sha256=digest, db=db)
    else:
        from camforensics.core.matching import Query
        from camforensics.core.params import MatchParams
        from camforensics.inference import panel
        from camforensics.inference.attribution import attribute_pixels
        from camforensics.inference.registry import ModelRegistry

        registry = ModelRegistry()
        loaded = timed("import onnxruntime, build the panel's sessions", panel.load_panel, registry, panel.default_panel(registry))
        timed("model attribution (panel members)", attribute_pixels, img.pixels, loaded)
        grey = timed("grey intensities", to_grey, img.pixels)
        query = timed("query W * I", Query, w, grey)
        timed("query spectrum (FFT)", query.spectrum, 0)
        timed("its half turn", query.spectrum, 180)
        if args.library is not None:
            from camforensics.io.library import FingerprintLibrary
            from camforensics.pipelines.search import FingerprintIndex

            index = FingerprintIndex(FingerprintLibrary(args.library), match=MatchParams())
            timed("rank the library (PCE, both orientations)", index.rank, w, grey)
    ROWS.append(("all of the above, one after the other", time.perf_counter() - t0, time.process_time() - c0))
    for label, wall, cpu in ROWS:
        print(f"{label:48s} wall {wall:6.3f} s  CPU {cpu:6.3f} s")


if __name__ == "__main__":
    main()

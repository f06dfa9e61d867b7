"""Do one device's photos share a sensor pattern? Pairwise PCE of their residuals (issue 20, fifth pass).

    python bench/bench_device_pairs.py ../shared/data/real-models/Apple_iPhone8_0 [--size 1024] [--search]

For every natural photo of the folder (``nat/`` when it has one): its EXIF orientation and DigitalZoomRatio, then
the grey residual of its centre ``--size`` x ``--size`` crop (the engine's default residual) and the zero-shift PCE
of every pair of residuals. A device whose photos hold a common PRNU shows pairs far above the null level (a PCE of
about 25 or more); photos that share nothing sit at 0-13. ``--search`` also takes, for every pair, the largest PCE
over 9 scales 0.97-1.03 of the second photo (resampled before its residual) and shifts of +-``--max-shift`` pixels:
the answer to "is there a rotation-free misalignment (zoom, stabilisation crop) to undo?" Under the null hypothesis
the maximum over that many hypotheses is itself about 20-40, so only values well above it mean anything.
Prints a table per photo and the distribution of pair PCEs; ``-o`` writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from camforensics.core.pce import compute_pce  # noqa: E402
from camforensics.core.residual import extract_residual  # noqa: E402
from camforensics.io.images import load_image  # noqa: E402

SCALES = tuple(round(0.97 + 0.0075 * k, 4) for k in range(9))  # 0.97 to 1.03, 1.0 among them


def centre(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(a[y : y + size, x : x + size])


def residual_of(pixels: np.ndarray, size: int, scale: float = 1.0) -> np.ndarray:
    """The residual of the centre ``size`` crop (the photo resampled by ``scale`` about its centre first)."""
    if scale != 1.0:
        h, w = pixels.shape[:2]
        side = min(h, w, round(size / scale) + 16)  # enough of the photo for a full crop after resampling
        pixels = centre(pixels, side) if min(h, w) > side else pixels
        pixels = cv2.resize(pixels, (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale)),
                            interpolation=cv2.INTER_CUBIC)
    return extract_residual(centre(pixels, min(size, *pixels.shape[:2]) // 16 * 16))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("device", type=Path, help="a device folder (its nat/ subfolder is used when present)")
    ap.add_argument("--size", type=int, default=1024, help="side of the centre crop (default 1024)")
    ap.add_argument("--search", action="store_true", help="also the best PCE over scales and shifts per pair")
    ap.add_argument("--max-shift", type=int, default=60)
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    folder = args.device / "nat" if (args.device / "nat").is_dir() else args.device
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff"))
    if len(paths) < 2:
        print(f"{folder}: fewer than two photos", file=sys.stderr)
        return 2
    images, residuals, rows = [], [], []
    for p in paths:
        loaded = load_image(p)
        info = loaded.info
        images.append(loaded.pixels)
        residuals.append(residual_of(loaded.pixels, args.size))
        rows.append({"photo": p.name, "size": f"{info.width}x{info.height}", "orientation": info.exif_orientation,
                     "digital_zoom": info.exif_digital_zoom})
    n = len(paths)
    zero = np.full((n, n), np.nan)
    best = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i + 1, n):
            zero[i, j] = zero[j, i] = compute_pce(residuals[i], residuals[j]).pce
    if args.search:
        shift = (args.max_shift, args.max_shift)
        side = int(args.size * min(SCALES)) // 16 * 16  # the window every scale covers (a photo as small as the crop)
        fixed = [centre(r, side) for r in residuals]
        for j in range(n):
            scaled = {s: centre(residual_of(images[j], args.size, s), side) for s in SCALES}
            for i in range(j):
                b = max(compute_pce(fixed[i], scaled[s], shift_range=shift).pce for s in SCALES)
                best[i, j] = best[j, i] = b  # the second photo of the pair rescaled; the first at sensor scale
    print(f"{folder}: {n} photos, centre {args.size} px crops, zero-shift PCE of each pair")
    print(f"{'photo':<16} {'size':<11} {'orient':>6} {'zoom':>5} {'median':>7} {'max':>7}" + ("  best-search" if args.search else ""))
    for i, r in enumerate(rows):
        others = np.delete(zero[i], i)
        r["pair_pce_median"], r["pair_pce_max"] = float(np.median(others)), float(np.max(others))
        zoom = f"{r['digital_zoom']:.2f}" if r["digital_zoom"] else "-"
        line = (f"{r['photo']:<16} {r['size']:<11} {r['orientation'] or '-':>6} {zoom:>5} "
                f"{r['pair_pce_median']:7.1f} {r['pair_pce_max']:7.1f}")
        if args.search:
            r["search_pce_max"] = float(np.nanmax(np.delete(best[i], i)))
            line += f"  {r['search_pce_max']:9.1f}"
        print(line)
    upper = zero[np.triu_indices(n, 1)]
    print(f"pairs: {upper.size}, zero-shift PCE min {upper.min():.1f} median {np.median(upper):.1f} max {upper.max():.1f},"
          f" under 25: {int((upper < 25).sum())}")
    if args.search:
        b = best[np.triu_indices(n, 1)]
        print(f"best over {len(SCALES)} scales x shifts +-{args.max_shift}: min {b.min():.1f} median {np.median(b):.1f} max {b.max():.1f}")
    if args.output:
        args.output.write_text(json.dumps({"folder": str(folder), "size": args.size, "photos": rows,
                                           "zero_shift_pce": np.round(zero, 2).tolist(),
                                           "search_pce": np.round(best, 2).tolist() if args.search else None}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

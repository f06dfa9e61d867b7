"""Small crops (issue 20), second round: query residuals and detectors at an unknown position, measured on the
crops of bench_crop_ideas.py (same library, seed and positions), each crop's correlation planes computed once
per query variant and every detector read from them.

    nice -n 10 python bench/bench_crop_detectors.py --data ../shared/data --crops 3 -o runs/crop-detectors

Query variants (``--queries``; every search here runs with ``MatchParams.crop_scene_window=0`` so that each
variant is what it says): ``base`` (the engine's residual, the default before issue 20's fourth pass), ``enhance<a>`` (Li's enhancement at alpha
``a`` before the CFA zero-mean and the Wiener filter: ``ResidualParams.enhance_alpha``), ``lvar<w>`` / ``lstd<w>``
(the query signal divided by the local variance / standard deviation of its residual over ``w`` pixels, relative
to the median: the matched filter for noise whose variance follows the scene; ``lstd15`` is what the engine's
crop search now does by default), ``bm3d`` (the grey image's BM3D residual, hard-thresholding
stage, sigma 2, then the CFA zero-mean and the Wiener filter; needs the ``bm3d`` package on ``--bm3d-path``; about
7 s per 512 crop on one core), ``bm3d-lstd<w>`` (that residual scene-weighted as ``lstd<w>``).

Enrolment (``--enrol``, a variant of bench_crop_ideas.py, e.g. ``loo1``; ``--enrol-all-others``: the
natural-enrolled devices from every photo but their queries instead of 2/3 of them).

Detectors at an unknown position (the default search's offsets: the query's JPEG grid when found, else every
offset), each with its own threshold at the engine's P_FA (the grid test's, 60 at one offset corrected for twice
the offsets it takes the maximum over):

- ``pce``: the engine's ranking statistic (``match_query``'s PCE, the grid test's when the grid is found);
- ``zgrid``: the peak over the tested offsets standardised by the median and MAD of the correlation over those
  offsets (instead of the energy of the whole plane): a per-plane calibration of the null;
- ``gap``: the peak's z minus the second-highest tested z outside the exclusion square (ranking only);
- ``hp<s>``: the tested offsets' correlation less its local mean over ``s`` x ``s`` tested offsets (a hill of
  correlation over many grid offsets flattened, a single peak kept), on the PCE scale.

Also the wrong-fingerprint distribution of each detector's statistic (as a signed z**2, the PCE scale) against
its theoretical null (the maximum of N standard normals): the share above the theoretical 90 and 99 % points.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import scipy.fft

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_crop_ideas import crops_of, enrol_with
from bench_small_crops import library_and_queries

from camforensics.core.cropsearch import corrected_threshold
from camforensics.core.jpeggrid import grid_offsets
from camforensics.core.matching import Query, crop_plan, match_query
from camforensics.core.metrics import roc_auc
from camforensics.core.params import PCE_THRESHOLD, MatchParams, ResidualParams
from camforensics.core.pce import spectrum_of
from camforensics.core.residual import extract_residual, local_scale, to_grey

_BM3D: dict = {}  # the BM3D residual of each crop, computed once for the bm3d variants


def query_signal(crop: np.ndarray, variant: str, bm3d_path: str | None) -> Query:
    grey = to_grey(crop)
    if variant == "base":
        return Query(extract_residual(crop), grey)
    if variant.startswith("enhance"):
        return Query(extract_residual(crop, params=ResidualParams(enhance_alpha=float(variant[7:]))), grey)
    if variant.startswith(("lvar", "lstd")):
        w = extract_residual(crop)
        s = local_scale(w, int(variant[4:]))
        return Query(w / (s * s if variant.startswith("lvar") else s), grey)
    if variant.startswith("bm3d"):
        if bm3d_path:
            sys.path.append(bm3d_path)
        import bm3d

        from camforensics.core.residual import finish_residual

        key = (crop.__array_interface__["data"][0], crop.shape)  # a view into the photo: its address names the crop
        if key not in _BM3D:
            g = grey.astype(np.float32)
            noise = g - bm3d.bm3d(g, sigma_psd=2.0, stage_arg=bm3d.BM3DStages.HARD_THRESHOLDING).astype(np.float32)
            _BM3D[key] = finish_residual(np.ascontiguousarray(noise, np.float32), overwrite=True)
        w = _BM3D[key]
        if variant.startswith("bm3d-lstd"):
            w = w / local_scale(w, int(variant[9:]))
        return Query(w, grey)
    raise SystemExit(f"unknown query variant {variant!r}")


def plane_stats(q: Query, spectrum, exclusion: int = 11) -> dict:
    """The detectors' statistics of one crop against one fingerprint at an unknown position."""
    hyp = crop_plan(q.shape, spectrum.shape, match=MatchParams(rotations="none"))[0][0]
    padded = q.padded(hyp, spectrum.shape)
    hh, ww = spectrum.shape
    cc = scipy.fft.irfft2(np.conjugate(padded.f * spectrum.conj_f()), s=(hh, ww), workers=1)
    grid = q.grid()
    window = grid_offsets(grid.phase, hyp.window) if grid is not None and grid.found else hyp.window
    vals = cc[window]
    energy = float(np.mean(cc.astype(np.float64) ** 2))
    z = vals / math.sqrt(energy)
    flat = z.ravel()
    i = int(np.argmax(flat))
    iy, ix = np.unravel_index(i, z.shape)
    step_y, step_x = window[0].step or 1, window[1].step or 1
    half = exclusion // 2
    ys = np.abs(np.arange(z.shape[0]) - iy)[:, None] * step_y
    xs = np.abs(np.arange(z.shape[1]) - ix)[None, :] * step_x
    outside = ~((ys <= half) & (xs <= half))
    second = float(np.max(z[outside]))
    med = float(np.median(flat))
    mad = 1.4826 * float(np.median(np.abs(flat - med)))
    out = {"z_max": float(flat[i]), "z_second": second, "zgrid": (float(flat[i]) - med) / mad,
           "n": int(flat.size), "peak": (window[0].start + int(iy) * step_y, window[1].start + int(ix) * step_x)}
    for side in (3, 5, 9):  # the tested offsets' correlation less its local mean over side x side tested offsets
        local = cv2.blur(np.ascontiguousarray(z, np.float32), (side, side), borderType=cv2.BORDER_REFLECT)
        out[f"hp{side}"] = float(np.max(z - local))
    return out


def signed_sq(z: float) -> float:
    return math.copysign(z * z, z)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--crops", type=int, default=3)
    ap.add_argument("--max-queries", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--queries", default="base")
    ap.add_argument("--enrol", default="", help="enrolment variant of bench_crop_ideas (empty: the engine's)")
    ap.add_argument("--enrol-all-others", action="store_true",
                    help="natural-enrolled devices enrolled from every photo but their queries (not 2/3 of them)")
    ap.add_argument("--bm3d-path", default=None)
    ap.add_argument("--every", type=int, default=1, help="every n-th crop only (a subset for slow variants)")
    ap.add_argument("--first", type=int, default=0, help="with --every: the first crop taken (0 .. every - 1)")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    t0 = time.time()
    pixels: dict = {}
    library, queries = library_and_queries(args.data, args.max_queries, enrol_with(args.enrol, pixels),
                                           all_others=args.enrol_all_others)
    spectra = {d: spectrum_of(k, conjugate=True) for d, k in library.items()}
    crops = crops_of(queries, pixels, args.size, args.crops, args.seed, set())
    indices = list(range(len(crops)))[args.first :: args.every]
    crops = [crops[i] for i in indices]
    print(f"library + {len(crops)} crops: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    records = []
    for variant in args.queries.split(","):
        t1 = time.time()
        for ci, (dev, y, x, crop) in enumerate(crops):
            q = query_signal(crop, variant, args.bm3d_path)
            at = MatchParams(crop_anchor=(y, x), rotations="none", crop_scene_window=0)
            rec = {"variant": variant, "crop": indices[ci], "device": dev, "aligned": {}, "found": {}, "stats": {}}
            for d, s in spectra.items():
                rec["aligned"][d] = match_query(q, s, match=at).pce
                r = match_query(q, s, match=MatchParams(rotations="none", crop_scene_window=0))
                rec["found"][d] = {"pce": r.pce, "threshold": r.threshold, "grid_test": bool(r.jpeg_grid and r.jpeg_grid["peak_on_grid_test"])}
                rec["stats"][d] = plane_stats(q, s)
            records.append(rec)
        print(f"{variant}: {time.time() - t1:.0f} s", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "records.json").write_text(json.dumps(records))
    lines = summarise(records)
    (args.out / "crop_detectors.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def summarise(records: list[dict]) -> list[str]:
    """Table rows: per query variant and detector, aligned AUC / top-1, unknown-position top-1, identified,
    false-alarm queries, and the wrong-fingerprint tail against the theoretical null."""
    header = ("| query | detector | crops | aligned AUC | aligned top-1 | unknown top-1 | identified | false-alarm queries "
              "| wrong > null 90 % / 99 % |")
    lines = [header, "|---" * 9 + "|"]
    for variant in dict.fromkeys(r["variant"] for r in records):
        rs = [r for r in records if r["variant"] == variant]
        own = [r["aligned"][r["device"]] for r in rs]
        other = [v for r in rs for d, v in r["aligned"].items() if d != r["device"]]
        auc = roc_auc(np.r_[own, other], np.r_[np.ones(len(own)), np.zeros(len(other))].astype(bool))
        top_al = np.mean([max(r["aligned"], key=r["aligned"].get) == r["device"] for r in rs])
        for det in ("pce", "zgrid", "gap", "hp3", "hp5", "hp9"):
            top = ident = fa = 0
            wrong_tail = [0, 0, 0]
            for r in rs:
                score, hit = {}, {}
                for d, st in r["stats"].items():
                    n = st["n"]
                    thr = corrected_threshold(PCE_THRESHOLD, 2 * n)
                    if det == "pce":
                        score[d], hit[d] = r["found"][d]["pce"], r["found"][d]["pce"] > r["found"][d]["threshold"]
                        s2 = signed_sq(st["z_max"])
                    elif det == "zgrid":
                        score[d] = s2 = signed_sq(st["zgrid"])
                        hit[d] = s2 > thr
                    elif det.startswith("hp"):
                        score[d] = s2 = signed_sq(st[det])
                        hit[d] = s2 > thr
                    else:
                        score[d], hit[d] = st["z_max"] - st["z_second"], False
                        s2 = signed_sq(st["z_max"])
                    if d != r["device"]:
                        wrong_tail[0] += 1
                        wrong_tail[1] += s2 > null_quantile(0.90, n)
                        wrong_tail[2] += s2 > null_quantile(0.99, n)
                best = max(score, key=score.get)
                top += best == r["device"]
                ident += best == r["device"] and hit[best]
                fa += any(hit[d] for d in score if d != r["device"])
            tail = f"{wrong_tail[1] / wrong_tail[0]:.3f} / {wrong_tail[2] / wrong_tail[0]:.4f}"
            lines.append(f"| {variant} | {det} | {len(rs)} | {auc:.3f} | {top_al:.3f} | {top / len(rs):.3f} | "
                         f"{ident / len(rs):.3f} | {fa} | {tail} |")
    return lines


def null_quantile(p: float, n: int) -> float:
    """The ``p`` quantile of max(z)**2 over ``n`` independent standard normals (z > 0)."""
    from scipy.special import ndtri

    return float(ndtri(p ** (1.0 / n)) ** 2)


if __name__ == "__main__":
    raise SystemExit(main())

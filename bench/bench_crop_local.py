"""512-pixel crops at an unknown position (issue 20, sixth pass): a failure analysis of the default crop search and
what locally normalised statistics of the same correlation plane buy, chosen on validation crops, read on the test
crops.

    nice -n 10 python bench/bench_crop_local.py --data ../shared/data --sets val1,val2 \
        --variants plain,box,var,varS15,varS63,excl31,clip5,clip5+varS15,clip4+box -o runs/crop-local-val
    nice -n 10 python bench/bench_crop_local.py --data ../shared/data --sets val1,val2,test \
        --variants plain,varS15,engine15 -o runs/crop-local-engine
    nice -n 10 python bench/bench_crop_local.py --data ../shared/data --sets val1,val2 \
        --variants plain,engine15,engine15m,mf,mfS15,mfB15 -o runs/crop-local-mf-val

Library and crop sets are bench_crop_rank.py's (18 fingerprints; ``test`` = the 150 crops of the issue's command,
``val1`` / ``val2`` = seeds 1 and 2 on held-out photos 4-6 where a device has them, 138 crops each); enrolment
leaves out digitally zoomed photos as ``enroll`` does (``--keep-digital-zoom`` keeps them). Every crop's
scene-weighted signal s (the default query) is correlated with every fingerprint k over all circular offsets o,
``r(o) = sum_y s(y) k(y + o)``, once; the statistics read from that plane (variants joined by ``+``):

- ``plain``: the engine's PCE before the local normalisation (peak against the plane's energy outside an 11-pixel
  square), the default search's decision (JPEG-grid test and every offset, each at half the P_FA) and the aligned
  PCE at the crop's true offset; it reproduces ``match_query`` with ``crop_variance_window=0`` (checked on the
  first ``--check`` crops of each set);
- ``box``: r(o) divided by ``sqrt(E(o))``, E(o) the energy of k under the query's window at o (a circular box sum
  of k**2): the normalised cross-correlation's denominator, right when the query's signal is white and stationary;
- ``var``: r(o) divided by ``sqrt(V(o))``, ``V(o) = sum_y m(y) k(y + o)**2`` with ``m = s**2``: the variance of
  r(o) under the null of query noise independent from pixel to pixel with variance m(y); ``varS<w>``: the same
  with m averaged over w x w pixels (so that the query's own PRNU does not raise V at the true offset), computed
  exactly at full resolution;
- ``excl<N>``: an N-pixel square left out of the noise floor; ``clip<c>``: k clipped at c standard deviations;
- ``engine<w>``: the product's search (``match_query``) with ``MatchParams.crop_variance_window=w``: the
  ``varS<w>`` statistic computed on 8-pixel blocks and interpolated (``core.cropsearch.local_variance``);
  ``engine<w>m``: the same search, the aligned score with ``MatchParams.crop_offset_statistic="matched"``;
- aligned only (issue 20, seventh pass; the ranking columns are ``plain``'s): ``mf`` the matched-filter score at the
  true offset, ``sign(z) z**2`` with ``z = r(o) / sqrt(V(o))`` and ``m = s**2`` (exact, full resolution),
  ``mfS<w>`` with m averaged over w x w pixels, ``mfB<w>`` with V from the engine's blocks
  (``core.cropsearch.local_variance``, what ``engine<w>m`` reads);

then the PCE of the normalised plane is read as the engine's (same windows, exclusion, decision and threshold).
A wrong fingerprint above its threshold is a false alarm (``false alarm queries``; ``largest wrong PCE`` is the
largest ranking PCE of a wrong fingerprint over the set). The JSON lists every crop the ``plain`` search ranks
wrong (own PCE and rank, the winner), and the npz files every score; for every variant the aligned null (the
wrong fingerprints' aligned scores: their mean and the share above 5.41, 9.55 and 13.83, where a chi-square of one
degree, the P_FA's null, puts 1e-2, 1e-3 and 1e-4 of them) and which devices' crops hold the aligned AUC down (each
own score's share of the wrong scores at or above it, summed by device: the shares sum to 1 - AUC).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_crop_ideas import aligned_breakdown, crops_of
from bench_crop_rank import build_library

from camforensics.core.cropsearch import local_variance, offset_window, padded_spectrum, query_energy
from camforensics.core.jpeggrid import grid_offsets
from camforensics.core.matching import CropHypotheses, Query, _crop_decision, match_query
from camforensics.core.metrics import roc_auc
from camforensics.core.params import MatchParams
from camforensics.core.pce import pce_result, spectrum_of
from camforensics.core.residual import extract_residual, to_grey
from camforensics.runtime import fft

SIZE = 512


def correlate(a_f: np.ndarray, b_conj_f: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``r(o) = sum_y a(y) b(y + o)`` over every circular offset, from rfft2(a) and conj(rfft2(b))."""
    prod = a_f * b_conj_f
    np.conjugate(prod, out=prod)
    return fft.irfft2(prod, s=shape, workers=1)


def peak_pce(cc: np.ndarray, total: float, window: tuple[slice, slice], exclusion: int):
    """The engine's crop PCE (``cropsearch.crop_pces``) of a plane over one window of offsets."""
    hh, ww = cc.shape
    searched = cc[window]
    iy, ix = np.unravel_index(int(np.argmax(searched)), searched.shape)
    py, px = window[0].start + int(iy) * (window[0].step or 1), window[1].start + int(ix) * (window[1].step or 1)
    half = exclusion // 2
    rows = np.unique(np.arange(py - half, py + half + 1) % hh)
    cols = np.unique(np.arange(px - half, px + half + 1) % ww)
    near = cc[np.ix_(rows, cols)].astype(np.float64)
    energy = (total - float(np.sum(near * near))) / (hh * ww - near.size)
    n = len(range(window[0].start, window[0].stop, window[0].step or 1)) * len(
        range(window[1].start, window[1].stop, window[1].step or 1))
    return pce_result(float(cc[py, px]), energy, (py, px), n)


def read_plane(cc: np.ndarray, hyp: CropHypotheses, grid_window, anchor: tuple[int, int], exclusion: int,
               match: MatchParams) -> tuple[float, float, float]:
    """(search PCE as ranked, its threshold, aligned PCE at ``anchor``)."""
    total = float(np.einsum("i,i->", cc.ravel(), cc.ravel(), dtype=np.float64))
    best = peak_pce(cc, total, hyp.window, exclusion)
    on_grid = None
    if grid_window is not None:
        g = peak_pce(cc, total, grid_window, exclusion)
        on_grid = (hyp, g) if g.n_shifts else None
    _, res, thr, _, _ = _crop_decision((hyp, best), on_grid, best.n_shifts, match)
    aligned = peak_pce(cc, total, (slice(anchor[0], anchor[0] + 1), slice(anchor[1], anchor[1] + 1)), exclusion)
    return res.pce, thr, aligned.pce


def parse_variant(v: str) -> tuple[float, str, int]:
    """(clip of k in standard deviations or 0, normalisation '' / 'box' / 'var' / 'varS<w>', exclusion)."""
    clip, norm, excl = 0.0, "", MatchParams().exclusion
    for part in v.split("+"):
        if part.startswith("clip"):
            clip = float(part[4:])
        elif part.startswith("excl"):
            excl = int(part[4:])
        elif part in ("box", "var") or part.startswith("varS"):
            norm = part
        elif part != "plain":
            raise ValueError(v)
    return clip, norm, excl


def clipped(k: np.ndarray, c: float) -> np.ndarray:
    """``k`` (zero-mean) with every value beyond ``c`` standard deviations brought to ``+-c`` of them."""
    k = k.astype(np.float64) - k.mean(dtype=np.float64)
    if c <= 0:
        return k.astype(np.float32)
    lim = c * k.std()
    return np.clip(k, -lim, lim).astype(np.float32)


def score(crops, names: list[str], fps: dict, variants: list[str], check: int) -> dict:
    match = MatchParams(rotations="none", crop_variance_window=0)
    shape = next(iter(fps.values())).shape
    engine = [v for v in variants if v.startswith("engine")]
    matched = [v for v in variants if v.startswith("mf")]
    parsed = {v: parse_variant(v) for v in variants if v not in engine and v not in matched}
    if matched and "plain" not in parsed:
        raise SystemExit("the mf* variants read their ranking from the plain plane: add 'plain' to --variants")
    box_f = fft.rfft2(np.pad(np.ones((SIZE, SIZE), np.float32), ((0, shape[0] - SIZE), (0, shape[1] - SIZE))), workers=1)
    refs = {}  # (clip, name) -> (spectrum, conj spectrum of k**2, box energy)
    for c in sorted({0.0} | {p[0] for p in parsed.values()}):
        for n in names:
            k = clipped(fps[n], c)
            sq = np.conj(fft.rfft2(k * k, workers=1))
            refs[c, n] = (spectrum_of(k, conjugate=True), sq, np.maximum(correlate(box_f, sq, shape), 1e-12))
    hyp = CropHypotheses(0, False, 1.0, (SIZE, SIZE), offset_window((SIZE, SIZE), shape))
    out = {v: {"unknown": [], "thr": [], "aligned": []} for v in variants}
    devs = []
    for ci, (dev, y, x, crop) in enumerate(crops):
        q = Query(extract_residual(crop), to_grey(crop))
        grid = q.grid()
        grid_window = grid_offsets(grid.phase, hyp.window) if grid is not None and grid.found else None
        s = q.scene_weighted(match.crop_scene_window)
        qspec = q.padded(hyp, shape, scene_window=match.crop_scene_window)
        sc = (s - s.mean(dtype=np.float64)).astype(np.float32)
        s2 = {}  # window -> (padded spectrum of the zero-mean variance map, its mean)
        for p in parsed.values():
            if p[1].startswith("var") and p[1] not in s2:
                w = int(p[1][4:]) if p[1].startswith("varS") else 1
                m = sc * sc if w == 1 else cv2.blur(sc * sc, (w, w), borderType=cv2.BORDER_REFLECT)
                s2[p[1]] = (padded_spectrum(m, shape), float(np.mean(m, dtype=np.float64)))
        rows = {v: ([], [], []) for v in variants}
        for n in names:
            planes = {}
            for v, (c, norm, excl) in parsed.items():
                spec, sq, box = refs[c, n]
                if c not in planes:
                    planes[c] = correlate(qspec.f, spec.conj_f(), shape)
                cc = planes[c]
                if norm == "box":
                    cc = cc / np.sqrt(box)
                elif norm:
                    f, mean = s2[norm]
                    cc = cc / np.sqrt(np.maximum(correlate(f.f, sq, shape) + mean * box, 1e-12))
                u, t, a = read_plane(cc, hyp, grid_window, (y, x), excl, match)
                for lst, val in zip(rows[v], (u, t, a)):
                    lst.append(val)
            for v in matched:  # aligned only: r(o) / sqrt(V(o)) at the true offset, the ranking plain's
                kw = fps[n][y : y + SIZE, x : x + SIZE].astype(np.float64) - float(np.mean(fps[n], dtype=np.float64))
                r = float(np.sum(sc.astype(np.float64) * kw))
                w = int(v[3:]) if len(v) > 3 else 1
                if v.startswith("mfB"):  # the engine's block approximation of V (core.cropsearch.local_variance)
                    var = float(local_variance(query_energy(s, shape, w), refs[0.0, n][0])[y, x])
                else:
                    m = sc.astype(np.float64) ** 2
                    if w > 1:
                        m = cv2.blur(m, (w, w), borderType=cv2.BORDER_REFLECT)
                    var = float(np.sum(m * kw * kw))
                t2 = math.copysign(r * r / var, r) if var > 0 else 0.0
                for lst, val in zip(rows[v], (rows["plain"][0][-1], rows["plain"][1][-1], t2)):
                    lst.append(val)
            searched = {}
            for v in engine:  # the product's search, local normalisation over this window (engine0: off)
                matched_stat = v.endswith("m")  # engine<w>m: the aligned score crop_offset_statistic="matched"
                params = MatchParams(rotations="none", crop_variance_window=int(v[6:].rstrip("m")))
                spec = refs[0.0, n][0]
                if params.crop_variance_window not in searched:
                    searched[params.crop_variance_window] = match_query(q, spec, match=params)
                r = searched[params.crop_variance_window]
                al = match_query(q, spec, match=dataclasses.replace(
                    params, crop_anchor=(y, x), crop_offset_statistic="matched" if matched_stat else "pce"))
                for lst, val in zip(rows[v], (r.pce, r.threshold, al.pce)):
                    lst.append(val)
            if ci < check and "plain" in rows:
                ref = match_query(q, refs[0.0, n][0], match=match)
                al = match_query(q, refs[0.0, n][0], match=dataclasses.replace(match, crop_anchor=(y, x)))
                got = rows["plain"]
                assert math.isclose(got[0][-1], ref.pce, rel_tol=1e-3, abs_tol=1e-3), (got[0][-1], ref.pce)
                assert math.isclose(got[1][-1], ref.threshold, rel_tol=1e-6), (got[1][-1], ref.threshold)
                assert math.isclose(got[2][-1], al.pce, rel_tol=1e-3, abs_tol=1e-3), (got[2][-1], al.pce)
        for v in variants:
            for key, lst in zip(("unknown", "thr", "aligned"), rows[v]):
                out[v][key].append(lst)
        devs.append(dev)
        if ci % 20 == 0:
            print(f"  crop {ci}/{len(crops)}", file=sys.stderr, flush=True)
    return {"devs": devs, "positions": [(y, x) for _, y, x, _ in crops],
            **{v: {k: np.array(a) for k, a in d.items()} for v, d in out.items()}}


def evaluate(sc: dict, v: str, names: list[str]) -> dict:
    """AUC and top-1 aligned, top-1 / identified / false alarms at an unknown position, per-device misses."""
    d = sc[v]
    devs = sc["devs"]
    col = {n: i for i, n in enumerate(names)}
    own_al, other_al, top_al, top_un, ident, fa, misses, wrong_max = [], [], 0, 0, 0, 0, {}, -np.inf
    for i, dev in enumerate(devs):
        j = col[dev]
        al, un, thr = d["aligned"][i], d["unknown"][i], d["thr"][i]
        own_al.append(al[j])
        other_al += [al[m] for m in range(len(names)) if m != j]
        top_al += int(np.argmax(al)) == j
        best = int(np.argmax(un))
        top_un += best == j
        ident += int(best == j and un[best] > thr[best])
        wrong = [m for m in range(len(names)) if m != j]
        fa += int(any(un[m] > thr[m] for m in wrong))
        wrong_max = max(wrong_max, max(un[m] for m in wrong))
        if best != j:
            misses[dev] = misses.get(dev, 0) + 1
    n = len(devs)
    y = np.r_[np.ones(len(own_al)), np.zeros(len(other_al))].astype(bool)
    breakdown = aligned_breakdown(devs, own_al, other_al)
    return {"crops": n, "aligned_auc": round(roc_auc(np.r_[own_al, other_al], y), 4), "aligned_top1": top_al,
            "unknown_top1": top_un, "identified": ident, "false_alarm_queries": fa,
            "largest_wrong_unknown": round(float(wrong_max), 1), "median_threshold": round(float(np.median(d["thr"])), 1),
            "misses": dict(sorted(misses.items())),
            "aligned_auc_deficit_by_device": breakdown["auc_deficit_by_device"],
            "aligned_misses": _aligned_misses(d["aligned"], devs, col), "aligned_null": breakdown["null"]}


def _aligned_misses(aligned: np.ndarray, devs: list[str], col: dict[str, int]) -> dict[str, int]:
    """Crops whose own fingerprint is not first at the true offset, by device."""
    out: dict[str, int] = {}
    for i, dev in enumerate(devs):
        if int(np.argmax(aligned[i])) != col[dev]:
            out[dev] = out.get(dev, 0) + 1
    return dict(sorted(out.items()))


def failures(sc: dict, names: list[str]) -> list[dict]:
    """Every crop the default search ranks wrong: own PCE and rank, the best wrong fingerprint, aligned PCE."""
    d = sc["plain"]
    col = {n: i for i, n in enumerate(names)}
    rows = []
    for i, dev in enumerate(sc["devs"]):
        j, un = col[dev], d["unknown"][i]
        order = np.argsort(-un)
        if order[0] != j:
            rows.append({"dev": dev, "pos": sc["positions"][i], "own": round(float(un[j]), 1),
                         "rank": int(np.where(order == j)[0][0]) + 1, "own_aligned": round(float(d["aligned"][i][j]), 1),
                         "winner": names[order[0]], "winner_pce": round(float(un[order[0]]), 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--sets", default="val1,val2", help="comma-separated: test, val1, val2")
    ap.add_argument("--variants", default="plain,box,var,excl31")
    ap.add_argument("--keep-digital-zoom", action="store_true")
    ap.add_argument("--check", type=int, default=2, help="crops of each set checked against match_query")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    t0 = time.time()
    entries, test, val, _, log = build_library(args.data, "", not args.keep_digital_zoom, [])
    names = list(entries)
    fps = {n: entries[n][1] for n in names}
    print(f"library: {time.time() - t0:.0f} s, {len(names)} entries", file=sys.stderr, flush=True)
    seeds = {"test": (test, 0), "val1": (val, 1), "val2": (val, 2)}
    variants = args.variants.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"command": "python bench/bench_crop_local.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "log": log, "names": names, "sets": {}}
    for s in args.sets.split(","):
        photos, seed = seeds[s]
        crops = crops_of(photos, {}, SIZE, 3, seed, set())
        sc = score(crops, names, fps, variants, args.check)
        np.savez_compressed(args.out / f"scores_{s}.npz", devs=np.array(sc["devs"]), names=np.array(names),
                            positions=np.array(sc["positions"]),
                            **{f"{v}_{k}": sc[v][k] for v in variants for k in ("unknown", "thr", "aligned")})
        result["sets"][s] = {"variants": {v: evaluate(sc, v, names) for v in variants}, "failures": failures(sc, names) if "plain" in variants else []}
        print(f"{s}: {len(crops)} crops, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    result["seconds"] = round(time.time() - t0, 1)
    (args.out / "crop_local.json").write_text(json.dumps(result, indent=1))
    lines = ["| set | variant | aligned AUC | aligned top-1 | aligned null: mean, > 5.41, > 9.55, max | unknown top-1 | "
             "identified | false-alarm queries | largest wrong PCE | misses by device |", "|---" * 10 + "|"]
    for s, r in result["sets"].items():
        for v, e in r["variants"].items():
            nl = e["aligned_null"]
            lines.append(f"| {s} | {v} | {e['aligned_auc']:.4f} | {e['aligned_top1']}/{e['crops']} | "
                         f"{nl['mean']}, {nl['rate_above_5.41']:.4f}, {nl['rate_above_9.55']:.4f}, {nl['max']} | "
                         f"{e['unknown_top1']}/{e['crops']} | {e['identified']} | {e['false_alarm_queries']} | "
                         f"{e['largest_wrong_unknown']} | {', '.join(f'{k} {m}' for k, m in e['misses'].items())} |")
    (args.out / "crop_local.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

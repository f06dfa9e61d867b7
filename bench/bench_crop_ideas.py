"""What the ideas for small crops buy (issue 20): 512-pixel crops of natural photos against the 18-fingerprint
library of bench_small_crops.py, with the enrolment, the query signal or the search changed one at a time.

    nice -n 10 python bench/bench_crop_ideas.py --data ../shared/data --crops 3 -o runs/crop-ideas

Every variant is measured on the same crops in one run (``--crops`` seeded positions on the 16-pixel MCU grid per
query photo, up to ``--max-queries`` photos per device), with:

- aligned (offset known): AUC of own against other PCEs, top-1, the largest PCE of a wrong fingerprint; in the
  JSON, the aligned top-1 misses by device, each device's share of the AUC's shortfall and the aligned null
  against the P_FA's chi-square (``aligned_breakdown``);
- unknown position (the default crop search, JPEG-grid test on): top-1, identified above the P_FA threshold, and
  queries where a wrong fingerprint crosses it;
- ``full_own``: each natural-enrolled device's own PCE median over all its held-out 1024x1024 photos (what the
  change does to whole photos).

Variants (``--variants``, comma-separated ``enrol:query:search``; empty parts are the engine's default):

- enrolment ``texture15`` (core.enrollweights.texture_weighted), ``imgrms`` (each image's channel noise and
  weight divided by the rms of that channel's noise: one variance per image), ``imgrms-texture63`` (both, the
  local scale over 63 pixels), ``sigma4`` (the fingerprint's denoiser at sigma0 4 instead of 3), ``enhance7``
  (Li's enhancement of each image's noise before it is folded in), ``loo<p>`` (each image counts
  ``max(its leave-one-out PCE, 1) ** p`` relative to the median image: images that do not agree with the others
  count less), ``klstd<w>`` (the fingerprint divided by its own local scale over ``w`` pixels);
- query ``whiten15`` (the query signal's Fourier magnitudes divided by their 15-bin local mean: whitened
  correlation), ``sigma3`` (the query's denoiser at sigma0 3 instead of 2), ``scene0`` (the search's scene
  weighting, ``MatchParams.crop_scene_window``, turned off: the default before issue 20's fourth pass);
- ``--no-queries-from``: devices whose photos are not queried (their fingerprints stay in the library as
  decoys), e.g. the two iPhones, whose natural-photo fingerprints have a split-half reliability of 0.010-0.030;
- search ``var0``: the search's local normalisation (``MatchParams.crop_variance_window``) turned off: the default
  before issue 20's sixth pass (bench_crop_local.py);
- search ``mf``: a crop at its known offset (the aligned columns) scored by the matched-filter statistic
  (``MatchParams.crop_offset_statistic="matched"``: the correlation there over its null standard deviation there,
  as ``sign(z) z**2``) instead of the PCE; the unknown-position search is the default's; whole photos are matched
  with the same setting (they stay on the PCE: the check that they do not change);
- search ``grid16``: the ranking peak taken over the offsets on the true 16-pixel MCU grid only (an oracle: the
  crops sit on it by construction), against the 8-pixel JPEG grid of the default; what fewer hypotheses could buy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_natural_enroll import files_of
from bench_small_crops import library_and_queries

from camforensics.core.cropsearch import crop_pces
from camforensics.core.enrollweights import leave_one_out_pces, texture_weighted
from camforensics.core.fingerprint import FingerprintAccumulator
from camforensics.core.matching import Query, crop_plan, match_query
from camforensics.core.metrics import roc_auc
from camforensics.core.params import FingerprintParams, MatchParams, ResidualParams
from camforensics.core.pce import spectrum_of
from camforensics.core.residual import enhance_spn, extract_residual, local_scale, to_grey
from camforensics.io.images import load_image

DEFAULT_VARIANTS = "::,:scene0:,texture15::,imgrms::,imgrms-texture63::,sigma4::,:whiten15:,:sigma3:,::grid16"


def scaled(terms: tuple[list, list], window: int | None) -> tuple[list, list]:
    """Each channel's noise and weight divided by the rms of its noise (and by its local scale over ``window``)."""
    out_n, out_w = [], []
    for n, w in zip(*terms):
        a = np.ascontiguousarray(n, np.float32)
        s = np.float32(1.0 / max(float(np.sqrt(np.mean(np.square(a, dtype=np.float64)))), 1e-6))
        if window:
            s = s / local_scale(a, window)
        out_n.append(a * s)
        out_w.append(np.asarray(w, np.float32) * s)
    return out_n, out_w


def enrol_with(variant: str, cache: dict):
    params = FingerprintParams(residual=ResidualParams(sigma0=4.0)) if variant == "sigma4" else FingerprintParams()

    def enrol(paths: list[Path]) -> np.ndarray:
        acc = FingerprintAccumulator(params=params)
        if variant.startswith("loo"):
            return loo_weighted(paths, params, float(variant[3:]), cache)
        for p in paths:
            if p not in cache:
                cache[p] = load_image(p).pixels
            terms = acc.terms_of(cache[p])
            if variant == "texture15":
                terms = texture_weighted(terms, window=15)
            elif variant.startswith("imgrms"):
                terms = scaled(terms, 63 if variant == "imgrms-texture63" else None)
            elif variant == "enhance7":
                terms = ([enhance_spn(n, alpha=7.0) for n in terms[0]], terms[1])
            elif variant not in ("", "sigma4") and not variant.startswith("klstd"):
                raise SystemExit(f"unknown enrolment variant {variant!r}")
            acc.add_terms(terms)
        k = acc.finish().k
        if variant.startswith("klstd"):  # the fingerprint divided by its own local scale
            k = k / local_scale(k, int(variant[5:]))
        return k

    return enrol


def loo_weighted(paths: list[Path], params: FingerprintParams, power: float, cache: dict) -> np.ndarray:
    """Each image's terms scaled so that it counts ``max(its leave-one-out PCE, 1) ** power`` (relative to the
    median image) in the fingerprint: images whose residual does not agree with the others count less."""
    acc = FingerprintAccumulator(params=params)
    all_terms = []
    for p in paths:
        if p not in cache:
            cache[p] = load_image(p).pixels
        all_terms.append(acc.terms_of(cache[p]))
        acc.add_terms(all_terms[-1])
    if len(all_terms) < 3:
        return acc.finish().k
    loo = np.maximum(np.asarray(leave_one_out_pces(all_terms, acc=acc)), 1.0) ** power
    scale = np.sqrt(loo / np.median(loo))
    out = FingerprintAccumulator(params=params)
    for (noise, weights), f in zip(all_terms, scale):
        out.add_terms(([np.asarray(n, np.float32) * np.float32(f) for n in noise],
                       [np.asarray(w, np.float32) * np.float32(f) for w in weights]))
    return out.finish().k


def whiten(signal: np.ndarray, window: int) -> np.ndarray:
    f = scipy.fft.rfft2(signal)
    local = ndimage.uniform_filter(np.abs(f), window, mode="nearest")
    return scipy.fft.irfft2(f / np.maximum(local, 1e-12), s=signal.shape).astype(np.float32)


def query_of(crop: np.ndarray, variant: str) -> Query:
    grey = to_grey(crop)
    if variant == "sigma3":
        return Query(extract_residual(crop, params=ResidualParams(sigma0=3.0)), grey)
    if variant == "scene0":  # the engine's residual; the search's scene weighting is turned off in main
        return Query(extract_residual(crop), grey)
    q = Query(extract_residual(crop), grey)
    if variant == "whiten15":
        q.signal = whiten(q.signal, 15)
    elif variant:
        raise SystemExit(f"unknown query variant {variant!r}")
    return q


def grid16_pce(q: Query, spectrum) -> float:
    """Peak PCE over the offsets on the 16-pixel grid (the crops' true MCU phase, 0)."""
    hyp = crop_plan(q.shape, spectrum.shape, match=MatchParams(rotations="none"))[0][0]
    wy, wx = hyp.window
    window = (slice(wy.start, wy.stop, 16), slice(wx.start, wx.stop, 16))
    padded = q.padded(hyp, spectrum.shape, scene_window=MatchParams().crop_scene_window)
    return crop_pces(padded, hyp.shape, spectrum, [window])[0].pce


def aligned_breakdown(own_devs: list[str], own: list[float], other: list[float]) -> dict:
    """Which devices' crops hold the aligned AUC down, and the aligned null against the P_FA's.

    ``auc_deficit_by_device``: each own score's share of the wrong scores at or above it (ties half), summed by
    device over the own scores (the shares sum to 1 - AUC). ``null``: the wrong fingerprints' scores, their mean
    absolute value and the share above 5.41, 9.55 and 13.83, where a chi-square of one degree (the null of the
    one-sided P_FA, P(score > t) = Q(sqrt(t))) puts 1e-2, 1e-3 and 1e-4 of them.
    """
    others = np.sort(np.asarray(other, np.float64))
    deficit: dict[str, float] = {}
    for dev, o in zip(own_devs, own):
        hi, lo = np.searchsorted(others, o, side="right"), np.searchsorted(others, o, side="left")
        deficit[dev] = deficit.get(dev, 0.0) + (len(others) - hi + 0.5 * (hi - lo)) / len(others) / len(own)
    null = {f"rate_above_{t}": round(float(np.mean(others > t)), 5) for t in (5.41, 9.55, 13.83)}
    return {"auc_deficit_by_device": {k: round(v, 5) for k, v in sorted(deficit.items(), key=lambda kv: -kv[1]) if v > 0},
            "null": {"pairs": len(others), "mean": round(float(np.mean(np.abs(others))), 3),
                     "max": round(float(others[-1]), 1), **null}}


def crops_of(queries: dict[str, list[Path]], pixels: dict, size: int, per_photo: int, seed: int,
             skip: set[str]) -> list[tuple[str, int, int, np.ndarray]]:
    """(device, y, x, crop) of ``per_photo`` seeded positions on the 16-pixel MCU grid in each query photo; the
    positions of ``skip``'s photos are drawn all the same (the other devices' crops stay where they were) but not
    returned."""
    rng = np.random.default_rng(seed)
    out = []
    for dev, paths in queries.items():
        for p in paths:
            if p not in pixels:
                pixels[p] = load_image(p).pixels
            px = pixels[p]
            for _ in range(per_photo):
                y = int(rng.integers(0, (px.shape[0] - size) // 16 + 1)) * 16
                x = int(rng.integers(0, (px.shape[1] - size) // 16 + 1)) * 16
                if dev not in skip:
                    out.append((dev, y, x, px[y : y + size, x : x + size]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--crops", type=int, default=3, help="crops per query photo")
    ap.add_argument("--max-queries", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default=DEFAULT_VARIANTS)
    ap.add_argument("--no-queries-from", default="",
                    help="comma-separated devices whose photos are not queried (their fingerprints stay in the library)")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    t0 = time.time()
    pixels: dict = {}
    libraries: dict[str, tuple[dict, dict]] = {}
    rows = []
    for spec in args.variants.split(","):
        enrol_v, query_v, search_v = (spec.split(":") + ["", ""])[:3]
        if enrol_v not in libraries:
            libraries[enrol_v] = library_and_queries(args.data, args.max_queries, enrol_with(enrol_v, pixels))
        library, queries = libraries[enrol_v]
        spectra = {d: spectrum_of(k, conjugate=True) for d, k in library.items()}
        own, other, top, n = [], [], 0, 0
        own_devs, aligned_misses = [], {}
        un = {"top": 0, "identified": 0, "false_alarm_queries": 0}
        wrong_max = -np.inf
        skip = set(filter(None, args.no_queries_from.split(",")))
        for dev, y, x, crop in crops_of(queries, pixels, args.size, args.crops, args.seed, skip):
            q = query_of(crop, query_v)
            scene = 0 if query_v == "scene0" else MatchParams().crop_scene_window
            var = 0 if search_v == "var0" else MatchParams().crop_variance_window
            statistic = "matched" if search_v == "mf" else MatchParams().crop_offset_statistic
            at = MatchParams(crop_anchor=(y, x), rotations="none", crop_scene_window=scene, crop_variance_window=var,
                             crop_offset_statistic=statistic)
            aligned = {d: match_query(q, s, match=at).pce for d, s in spectra.items()}
            n += 1
            own.append(aligned[dev])
            own_devs.append(dev)
            other += [v for d, v in aligned.items() if d != dev]
            top += max(aligned, key=aligned.get) == dev
            if max(aligned, key=aligned.get) != dev:
                aligned_misses[dev] = aligned_misses.get(dev, 0) + 1
            search = MatchParams(rotations="none", crop_scene_window=scene, crop_variance_window=var)
            found = {d: match_query(q, s, match=search) for d, s in spectra.items()}
            rank = ({d: grid16_pce(q, s) for d, s in spectra.items()} if search_v == "grid16"
                    else {d: r.pce for d, r in found.items()})
            best = max(rank, key=rank.get)
            un["top"] += best == dev
            un["identified"] += best == dev and found[dev].is_match
            un["false_alarm_queries"] += any(r.is_match for d, r in found.items() if d != dev)
            wrong_max = max(wrong_max, max(r.pce for d, r in found.items() if d != dev))
        y_true = np.r_[np.ones(len(own)), np.zeros(len(other))].astype(bool)
        full_own = {}
        if not query_v and search_v in ("", "var0", "mf"):
            for dev, paths in queries.items():
                if not paths or library_source(args.data, dev) == "flat":
                    continue
                held = [f for i, f in enumerate(files_of(paths[0].parent)) if i % 3 == 2]
                scores = []
                for f in held:
                    px = pixels.setdefault(f, load_image(f).pixels)
                    whole = MatchParams(rotations="none", crop_offset_statistic="matched" if search_v == "mf" else "pce")
                    scores.append(match_query(Query(extract_residual(px), to_grey(px)), spectra[dev], match=whole).pce)
                if scores:
                    full_own[dev] = round(float(np.median(scores)), 1)
        row = {"variant": spec, "crops": n, "aligned_auc": round(roc_auc(np.r_[own, other], y_true), 4),
               "aligned_top1": round(top / n, 3), "aligned_other_max": round(float(np.max(other)), 1),
               **{f"unknown_{k}": (round(v / n, 3) if k != "false_alarm_queries" else v) for k, v in un.items()},
               "unknown_wrong_max": round(float(wrong_max), 1),
               "aligned_misses": dict(sorted(aligned_misses.items())), **aligned_breakdown(own_devs, own, other),
               "full_own_median": full_own}
        rows.append(row)
        print(json.dumps(row), f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    out = {"command": "python bench/bench_crop_ideas.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "rows": rows, "seconds": round(time.time() - t0, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "crop_ideas.json").write_text(json.dumps(out, indent=1))
    base = next((r["full_own_median"] for r in rows if r["variant"] == "::"), {})
    header = ("| variant (enrol:query:search) | crops | aligned AUC | aligned top-1 | aligned wrong max | unknown top-1 | "
              "unknown identified | false-alarm queries | unknown wrong max | whole-photo own PCE vs baseline, worst / best device |")
    lines = [header, "|---" * 10 + "|"]
    for r in rows:
        change = {d: v / base[d] - 1 for d, v in r["full_own_median"].items() if base.get(d, 0) > 0}
        span = (f"{min(change.values()):+.0%} / {max(change.values()):+.0%}" if change else "-")
        lines.append(f"| {r['variant']} | {r['crops']} | {r['aligned_auc']:.3f} | {r['aligned_top1']:.3f} | "
                     f"{r['aligned_other_max']} | {r['unknown_top']:.3f} | {r['unknown_identified']:.3f} | "
                     f"{r['unknown_false_alarm_queries']} | {r['unknown_wrong_max']} | {span} |")
    (args.out / "crop_ideas.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def library_source(data: Path, dev: str) -> str:
    """'flat' for a real-dev device enrolled from its flat fields, else 'natural'."""
    return "flat" if any((data / "real-dev" / dev / "flat").glob("*")) else "natural"


if __name__ == "__main__":
    raise SystemExit(main())

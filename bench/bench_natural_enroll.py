"""Fingerprints from natural photos (issue 20): every real-models device enrolled from 2/3 of its photos, the rest
identified against all of them plus real-dev's fingerprints, with what the enroll-time reliability predicted.

    nice -n 10 python bench/bench_natural_enroll.py --data ../shared/data -o runs/natural-enroll

real-models devices: photos sorted by name, every third one (index % 3 == 2) is a query, the others enroll.
real-dev devices join the library from their flat fields (the two vivo bodies, which have none, from the same
2/3 of their natural photos; their other third are queries too). Queries are matched with Goljan's detector
(residual W against I*K), rotation 0 only (photos in stored sensor order), at 1024x1024. The reliability is the
split-half estimate enroll stores (:func:`camforensics.core.fingerprint.split_half_reliability`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from camforensics.core.enrollweights import leave_one_out_pces, texture_weighted
from camforensics.core.fingerprint import FingerprintAccumulator, split_half_reliability
from camforensics.core.matching import Query, match_query
from camforensics.core.params import PCE_THRESHOLD, FingerprintParams, MatchParams
from camforensics.core.pce import spectrum_of
from camforensics.core.residual import extract_residual, to_grey
from camforensics.io.images import load_image

SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def files_of(folder: Path) -> list[Path]:
    return sorted(f for f in folder.glob("*") if f.suffix.lower() in SUFFIXES) if folder.is_dir() else []


def enroll(paths: list[Path], *, texture: int | None = None, reject_below: float | None = None,
           axis_notch: int | None = None) -> tuple[np.ndarray, dict]:
    """Fingerprint of ``paths`` and its split-half reliability; ``texture``: content-adaptive pixel weights
    (core.enrollweights.texture_weighted, this window); ``reject_below``: images whose leave-one-out PCE against the
    others is below this are left out (all kept when fewer than 2 would remain); ``axis_notch``: the fingerprint's
    ``FingerprintParams.axis_notch`` (None: the default)."""
    params = FingerprintParams() if axis_notch is None else FingerprintParams(axis_notch=axis_notch)
    full = FingerprintAccumulator(params=params)
    halves = (FingerprintAccumulator(params=params), FingerprintAccumulator(params=params))
    all_terms = []
    for p in paths:
        terms = full.terms_of(load_image(p).pixels)
        all_terms.append(texture_weighted(terms, window=texture) if texture else terms)
    info: dict = {}
    if reject_below is not None and len(all_terms) > 2:
        loo = leave_one_out_pces(all_terms)
        keep = [t for t, v in zip(all_terms, loo) if v >= reject_below]
        info = {"loo_pce": [round(v, 1) for v in loo], "n_rejected": len(all_terms) - len(keep) if len(keep) >= 2 else 0}
        all_terms = keep if len(keep) >= 2 else all_terms
    for i, terms in enumerate(all_terms):
        full.add_terms(terms)
        halves[i % 2].add_terms(terms)
    rel = split_half_reliability(halves[0].finish().k, halves[0].n_images, halves[1].finish().k, halves[1].n_images)
    return full.finish().k, {"n_enroll": len(all_terms), "reliability": round(rel.reliability, 4),
                             "split_half_correlation": round(rel.correlation, 5), **info}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--equalize", type=float, default=None,
                    help="spectrum-equalize every library fingerprint with this ratio (core.nonunique)")
    ap.add_argument("--equalize-shared", type=float, default=None,
                    help="spectrum-equalize with this ratio only at the peaks another library fingerprint has too")
    ap.add_argument("--texture", type=int, default=None, help="content-adaptive weights over this window (odd)")
    ap.add_argument("--reject-below", type=float, default=None,
                    help="leave out enroll images whose leave-one-out PCE is below this")
    ap.add_argument("--axis-notch", type=int, default=None,
                    help="fingerprints with this FingerprintParams.axis_notch (default: the engine's, 0)")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    t0 = time.time()
    library, info, queries = {}, {}, {}
    for root in (args.data / "real-models", args.data / "real-dev"):
        for dev in sorted(p for p in root.iterdir() if p.is_dir()):
            nat, flat = files_of(dev / "nat"), files_of(dev / "flat")
            if flat and root.name == "real-dev":
                library[dev.name], info[dev.name] = enroll(flat, texture=args.texture, reject_below=args.reject_below,
                                                             axis_notch=args.axis_notch)
                info[dev.name]["source"] = "real-dev flat"
                continue
            library[dev.name], info[dev.name] = enroll([f for i, f in enumerate(nat) if i % 3 != 2], texture=args.texture,
                                                       reject_below=args.reject_below, axis_notch=args.axis_notch)
            info[dev.name]["source"] = f"{root.name} natural"
            queries[dev.name] = [f for i, f in enumerate(nat) if i % 3 == 2]
            print(f"{dev.name}: {time.time() - t0:.0f} s", file=sys.stderr)
    if args.equalize is not None:
        from camforensics.core.nonunique import spectral_equalize

        library = {d: spectral_equalize(k, ratio=args.equalize) for d, k in library.items()}
    if args.equalize_shared is not None:
        from camforensics.core.nonunique import peak_mask, shared_peaks, spectral_equalize

        masks = {d: peak_mask(k, ratio=args.equalize_shared) for d, k in library.items()}
        library = {d: spectral_equalize(k, ratio=args.equalize_shared, only=shared_peaks([m for e, m in masks.items() if e != d]))
                   for d, k in library.items()}
    spectra = {d: spectrum_of(k, conjugate=True) for d, k in library.items()}
    match = MatchParams(rotations="none")
    rows, per_query = [], []
    for dev, paths in queries.items():
        own, top1, ident, other_max = [], 0, 0, -np.inf
        for p in paths:
            px = load_image(p).pixels
            q = Query(extract_residual(px), to_grey(px))
            scores = {d: match_query(q, s, match=match).pce for d, s in spectra.items()}
            best = max(scores, key=scores.get)
            own.append(scores[dev])
            top1 += best == dev
            ident += best == dev and scores[dev] > PCE_THRESHOLD
            other_max = max(other_max, max(v for d, v in scores.items() if d != dev))
            per_query.append({"device": dev, "file": p.name, "best": best, "scores": scores})
        rows.append({"device": dev, **info[dev], "n_query": len(paths), "own_pce_median": float(np.median(own)),
                     "own_pce_min": float(np.min(own)), "top1": top1 / len(paths), "identified": ident / len(paths),
                     "other_max": float(other_max)})
    out = {"command": "python bench/bench_natural_enroll.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "library": info, "rows": rows, "queries": per_query, "seconds": round(time.time() - t0, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "natural_enroll.json").write_text(json.dumps(out, indent=1))
    lines = ["| device | enrolled (natural) | reliability | queries | own PCE median / min | top-1 | identified (PCE > 60) | max PCE vs others |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        left_out = f" ({r['n_rejected']} left out)" if r.get("n_rejected") else ""
        lines.append(f"| {r['device']} | {r['n_enroll']}{left_out} | {r['reliability']:.3f} | {r['n_query']} | "
                     f"{r['own_pce_median']:.0f} / {r['own_pce_min']:.0f} | {r['top1']:.2f} | {r['identified']:.2f} | {r['other_max']:.1f} |")
    (args.out / "natural_enroll.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

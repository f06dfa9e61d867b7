"""PRNU identification of simulated devices: fingerprints from flat fields, natural images as queries.

Prints a device x device table of PCE (rows: query device, columns: fingerprint) with the min/median/max over
each device's natural images, then the smallest own-device PCE, the largest other-device PCE and the largest
same-model (sibling) PCE. Compare with real-dev: own PCE hundreds to thousands at 1024x1024 with 10-20 flats,
unrelated pairs < 60.

Run from the repository root:  python bench/bench_sim_prnu.py [--size 1024] [--flat 15] [--nat 6] [--models 3] [--devices 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # use this checkout's camforensics

import numpy as np
from PIL import Image

from camforensics.core.fingerprint import estimate_fingerprint
from camforensics.core.matching import match_image
from camforensics.core.params import MatchParams
from camforensics.sim import SimulationSpec, simulate_corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--flat", type=int, default=15)
    ap.add_argument("--nat", type=int, default=6)
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--devices", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    spec = SimulationSpec(
        n_models=args.models, n_devices=args.devices, n_flat=args.flat, n_nat=args.nat,
        width=args.size, height=args.size, seed=args.seed,
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rows = simulate_corpus(tmp, spec)
        t_sim = time.perf_counter() - t0
        devices = list(dict.fromkeys(r["device"] for r in rows))
        model_of = {r["device"]: r["model"] for r in rows}
        load = lambda r: np.asarray(Image.open(Path(tmp) / r["file"]).convert("RGB"))
        t0 = time.perf_counter()
        fps = {d: estimate_fingerprint(load(r) for r in rows if r["device"] == d and r["content"] == "flat").k for d in devices}
        queries = {d: [load(r) for r in rows if r["device"] == d and r["content"] == "nat"] for d in devices}
        match = MatchParams(rotations="none")
        pce = {(q, f): [match_image(img, fps[f], match=match).pce for img in queries[q]] for q in devices for f in devices}
        t_prnu = time.perf_counter() - t0
    print(f"spec: {spec}")
    print(f"simulated {len(rows)} images in {t_sim:.1f} s; fingerprints + {len(devices) ** 2 * args.nat} matches in {t_prnu:.1f} s")
    print("PCE min/median/max of each query device's natural images (rows) against each fingerprint (columns)")
    print(" " * 18 + "".join(f"{f[-10:]:>22}" for f in devices))
    for q in devices:
        cells = "".join(f"{min(v):7.0f}/{np.median(v):6.0f}/{max(v):7.0f}" for v in (pce[q, f] for f in devices))
        print(f"{q:>18}{cells}")
    own = [p for d in devices for p in pce[d, d]]
    other = [p for q in devices for f in devices if q != f for p in pce[q, f]]
    sibling = [p for q in devices for f in devices if q != f and model_of[q] == model_of[f] for p in pce[q, f]]
    print(f"own device:    min {min(own):.0f}  median {np.median(own):.0f}  max {max(own):.0f}  (n={len(own)})")
    print(f"other devices: max {max(other):.1f}  median {np.median(other):.1f}  (n={len(other)})")
    if sibling:
        print(f"same-model siblings: max {max(sibling):.1f}  median {np.median(sibling):.1f}  (n={len(sibling)})")
    print(f"identified (own > 60): {np.mean(np.array(own) > 60):.3f}; false matches (other > 60): {np.mean(np.array(other) > 60):.3f}")


if __name__ == "__main__":
    main()

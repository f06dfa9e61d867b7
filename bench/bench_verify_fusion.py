"""verify's fused decision on real photos at 1, 6 and 11.4 MP: PRNU alone, the Siamese verifier alone, and the
fusions (the shipped one without and with the PRNU floor, refits on real-dev pairs with the raw and with the
pixel-normalised PCE), issue 20.

    nice -n 10 python bench/bench_verify_fusion.py --data ../shared/data -o runs/verify-fusion

Pairs are scored as ``camforensics verify`` scores them (one fingerprint per set, PCE between them; Siamese mean
logit over the model's 128 positions of the common area), with two simplifications stated in the output: the
PCE is taken at rotation 0 only (all photos are in stored sensor order) and the sets are centre crops of one size
per tier, so the fingerprints and the Siamese inputs cover the same pixels.

Tiers:
- ``real-full`` photos (2 per device, 10 devices), centre-cropped to 1024x1024 (1 MP), 3000x2000 (6 MP) and
  4000x2840 (11.4 MP: the 7 devices whose frames hold it); 1 image per side.
- ``real-dev`` (8 devices, flat and natural; the calibration pairs of the refits) and ``real-models`` (10
  devices, natural) 1024x1024 crops, 1 image per side (6 images per device) and 4 per side (two disjoint sets).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

from camforensics.core.fingerprint import FingerprintAccumulator
from camforensics.core.metrics import roc_auc
from camforensics.core.params import PCE_THRESHOLD
from camforensics.core.pce import pce_from_spectra, spectrum_of
from camforensics.inference.registry import ModelRegistry
from camforensics.inference.verification import Fusion, SiameseGraph, fit_fusion, spread_positions
from camforensics.io.images import load_image

TIERS = {"1MP": (1024, 1024), "6MP": (2000, 3000), "11.4MP": (2840, 4000)}  # (height, width)


def centre(pixels: np.ndarray, hw: tuple[int, int]) -> np.ndarray | None:
    h, w = pixels.shape[:2]
    if h < hw[0] or w < hw[1]:
        return None
    y, x = (h - hw[0]) // 4 * 2, (w - hw[1]) // 4 * 2
    return pixels[y : y + hw[0], x : x + hw[1]]


class SetScorer:
    """Fingerprint spectrum and averaged Siamese inputs of one set of equally sized images."""

    def __init__(self, graph: SiameseGraph, hw: tuple[int, int]) -> None:
        self.graph, self.hw = graph, hw
        self.positions = spread_positions(hw, crop=graph.crop, n=graph.n_positions)

    def __call__(self, images: list[np.ndarray]) -> tuple[object, np.ndarray]:
        acc = FingerprintAccumulator()
        c = self.graph.crop
        ww = np.zeros((len(self.positions), 3, c, c), np.float64)
        for im in images:
            noise, weights = acc.terms_of(im)
            acc.add_terms((noise, weights))
            enc = np.clip(np.stack(noise, axis=2) * 8.0 + 128.0, 0.0, 255.0)  # the WW encoding (modelinput)
            for i, (py, px) in enumerate(self.positions):
                ww[i] += enc[py : py + c, px : px + c].transpose(2, 0, 1)
        return spectrum_of(acc.finish().k), (ww / len(images)).astype(np.float32)


def score_pairs(sets: dict[str, list], pairs: list[tuple[str, str, bool]], graph: SiameseGraph) -> dict:
    pce, siam, y = [], [], []
    conj = {}
    for a, b, same in pairs:
        if a not in conj:
            s = sets[a][0]
            conj[a] = type(s)(f=np.conj(s.f), norm=s.norm, shape=s.shape, conjugated=True)
        pce.append(pce_from_spectra(sets[b][0], conj[a], exclusion=11).pce)
        siam.append(float(graph.logits(sets[a][1], sets[b][1]).mean()))
        y.append(same)
    return {"pce": np.array(pce), "siamese": np.array(siam), "labels": np.array(y, bool)}


def device_images(root: Path, per_device: int) -> dict[str, list[Path]]:
    out = {}
    for dev in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted((dev / "nat").glob("*")) + sorted((dev / "flat").glob("*"))
        out[dev.name] = [f for f in files if f.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif")][:per_device]
    return out


def sets_of(images: dict[str, list[Path]], size: int, hw, scorer: SetScorer) -> dict[str, list]:
    sets = {}
    for dev, files in images.items():
        for j in range(len(files) // size):
            pix = [centre(load_image(f).pixels, hw) for f in files[j * size : (j + 1) * size]]
            if all(p is not None for p in pix):
                sets[f"{dev}#{j}"] = list(scorer(pix))
    return sets


def all_pairs(sets: dict[str, list], *, cross_index_only: bool) -> list[tuple[str, str, bool]]:
    """Every same-device pair of sets; different-device pairs of sets with one index (1 per side) or set 0
    against set 1 (sets of 4)."""
    out = []
    for a, b in itertools.combinations(sorted(sets), 2):
        da, ia = a.split("#")
        db, ib = b.split("#")
        if da == db:
            out.append((a, b, True))
        elif (ia == ib) if cross_index_only else {ia, ib} == {"0", "1"}:
            out.append((a, b, False))
    return out


def rates(scores: np.ndarray, y: np.ndarray, decided: np.ndarray) -> dict:
    return {
        "auc": round(roc_auc(scores, y), 4),
        "tpr": round(float(decided[y].mean()), 4),
        "fpr": round(float(decided[~y].mean()), 4),
    }


def evaluate(scored: dict, pixels: int, fusions: dict[str, tuple[Fusion, bool]], siamese_threshold: float) -> dict:
    pce, s, y = scored["pce"], scored["siamese"], scored["labels"]
    prnu_ok = pce > PCE_THRESHOLD
    row = {"n_positive": int(y.sum()), "n_negative": int((~y).sum()), "pixels": pixels}
    row["prnu"] = rates(pce, y, prnu_ok)
    row["siamese"] = rates(s, y, s > siamese_threshold)
    for name, (fusion, floor) in fusions.items():
        p = fusion.probability(pce, s, pixels=pixels) if floor else fusion.logistic(pce, s, pixels=pixels)
        p = np.asarray(p, np.float64)
        decided = p > fusion.threshold
        row[name] = {**rates(p, y, decided), "prnu_accepted_rejected": int((prnu_ok & ~decided).sum())}
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--models-dir", type=Path, default=Path(__file__).resolve().parents[1] / "models")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--sets", default="real-dev,real-models,real-full", help="comma-separated sets to score")
    args = ap.parse_args(argv)
    args.sets = set(args.sets.split(","))
    t0 = time.time()
    registry = ModelRegistry(args.models_dir)
    model = registry.load(registry.resolve(None, "same-device-verification").name, threads=1)
    graph = SiameseGraph.from_loaded(model)
    shipped = Fusion.from_dict(model.entry.decision.fusion)
    siamese_threshold = model.entry.decision.siamese_threshold

    hw1 = TIERS["1MP"]
    scorer1 = SetScorer(graph, hw1)
    scored: dict[str, tuple[dict, int]] = {}
    dev_images = device_images(args.data / "real-dev", 12)
    models_images = device_images(args.data / "real-models", 8)
    for name, images in (("real-dev", dev_images), ("real-models", models_images)):
        for size in (1, 4):
            if name not in args.sets and (name, size) != ("real-dev", 1):  # real-dev 1v1: the refits' calibration
                continue
            picked = {d: f[:6] for d, f in images.items()} if size == 1 else images
            sets = sets_of(picked, size, hw1, scorer1)
            scored[f"{name} 1MP {size}v{size}"] = (score_pairs(sets, all_pairs(sets, cross_index_only=size == 1), graph), hw1[0] * hw1[1])
            print(f"{name} {size}v{size}: {len(sets)} sets, {time.time() - t0:.0f} s", file=sys.stderr)
    full = {
        d.name: sorted(f for f in d.rglob("*") if f.suffix.lower() in (".jpg", ".jpeg"))
        for d in sorted((args.data / "real-full").iterdir())
        if d.is_dir() and "real-full" in args.sets
    }
    for tier, hw in TIERS.items() if full else ():
        sets = sets_of(full, 1, hw, SetScorer(graph, hw))
        scored[f"real-full {tier} 1v1"] = (score_pairs(sets, all_pairs(sets, cross_index_only=False), graph), hw[0] * hw[1])
        print(f"real-full {tier}: {len(sets)} sets, {time.time() - t0:.0f} s", file=sys.stderr)

    cal, cal_pixels = scored["real-dev 1MP 1v1"]
    n = len(cal["pce"])
    fusions = {
        "shipped, no floor (before)": (shipped, False),
        "shipped + floor": (shipped, True),
        "refit raw + floor": (fit_fusion(cal["pce"], cal["siamese"], cal["labels"]), True),
        "refit normalised + floor": (
            fit_fusion(cal["pce"], cal["siamese"], cal["labels"], pixels=np.full(n, cal_pixels)),
            True,
        ),
    }
    rows = {k: evaluate(v, px, fusions, siamese_threshold) for k, (v, px) in scored.items()}
    out = {
        "command": "python bench/bench_verify_fusion.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": model.entry.name,
        "siamese_threshold": siamese_threshold,
        "fusions": {k: f.to_dict() for k, (f, _) in fusions.items()},
        "notes": "PCE at rotation 0 (stored order); refits calibrated on the real-dev 1MP 1v1 pairs (their rows are "
        "optimistic for the refits); 11.4 MP = 4000x2840 centre crops of the 7 real-full devices that hold it",
        "rows": rows,
        "seconds": round(time.time() - t0, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "verify_fusion.json").write_text(json.dumps(out, indent=1))
    names = ["prnu", "siamese", *fusions]
    lines = ["| pairs | +/- | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    for k, r in rows.items():
        cells = []
        for nme in names:
            c = r[nme]
            extra = f", lost {c['prnu_accepted_rejected']}" if "prnu_accepted_rejected" in c else ""
            cells.append(f"AUC {c['auc']:.3f} TPR {c['tpr']:.2f} FPR {c['fpr']:.3f}{extra}")
        lines.append(f"| {k} | {r['n_positive']}/{r['n_negative']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    (args.out / "verify_fusion.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

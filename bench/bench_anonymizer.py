"""Learned anonymizer judged by independent attributors, on held-out images of its training run's split.

    python bench/bench_anonymizer.py RUN --model NAME [--judges attributor-hp,attributor-cc,attributor-rgb]
                                     [--split test] [--models-dir DIR] [--tile 512] [--json OUT]

RUN is the ``train anonymizer`` run folder (its ``split.json`` names the held-out images; with the default split
settings and seed it is the split of the shipped attributors, so neither the anonymizer nor the judges saw these
images). For every held-out image of a known model and every target model other than its own, the image is
anonymized (tiled, as ``anonymize_image`` does) and attributed by each judge (the shipped ONNX attributors, never
the evaluator used inside training). Targeted anonymizers; an eraser is measured with its untargeted figure only.

Figures per judge:
- accuracy on the original images (how good the judge is to begin with);
- targeted success rate (TSR): share of (image, target) pairs whose top-1 model is the target; baseline: the share
  of (original image, target) pairs whose top-1 model already is that target;
- untargeted success rate (USR): share whose top-1 model is not the true one (original images: 1 - accuracy);
- the same TSR with the judge's open-set decision ("unknown" counts as a failure).
And the mean PSNR (dB, 8-bit) of the anonymized images against the originals.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]  # this checkout, not another installed copy


def main() -> None:
    from camforensics.core.quality import psnr  # inf for an unchanged image, as every report gives it
    from camforensics.inference.anonymizer import TASK_TARGETED, anonymize_image
    from camforensics.inference.attribution import attribute_pixels
    from camforensics.inference.registry import ModelRegistry
    from camforensics.io.images import load_image
    from camforensics.io.splits import Split
    from camforensics.sim.cfa import demosaic, mosaic

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--model", required=True)
    ap.add_argument("--judges", default="attributor-hp,attributor-cc,attributor-rgb")
    ap.add_argument("--split", default="test", choices=("validation", "test"))
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0, help="First N held-out images only (0 = all).")
    ap.add_argument("--targets-per-image", type=int, default=0, help="Seeded choice of K targets per image (0 = all).")
    ap.add_argument(
        "--remosaic-baseline",
        action="store_true",
        help="Instead of the model: RGGB re-mosaic + OpenCV bilinear demosaic only (the generator's fixed input stage).",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    reg = ModelRegistry(args.models_dir)
    model = reg.load(args.model, device="cpu", threads=args.threads)
    judges = {n: reg.load(n, device="cpu", threads=args.threads) for n in args.judges.split(",")}
    split = Split.load(args.run / "split.json")
    classes = list(model.entry.classes)
    targeted = model.entry.task == TASK_TARGETED
    records = [r for r in split.records[args.split] if r.model_id in classes][: args.limit or None]
    counts = {n: {"orig_hits": 0, "tsr": 0, "tsr_open": 0, "usr": 0, "base_tsr": 0, "pairs": 0} for n in judges}
    psnrs, t0 = [], time.perf_counter()
    for i, r in enumerate(records):
        pixels = load_image(r.path).pixels
        orig = {n: attribute_pixels(pixels, j)["top_k"][0]["model"] for n, j in judges.items()}
        for n in judges:
            counts[n]["orig_hits"] += orig[n] == r.model_id
        targets = [c for c in classes if c != r.model_id] if targeted else [None]
        if args.targets_per_image and len(targets) > args.targets_per_image:
            pick = np.random.default_rng([0, i]).choice(len(targets), args.targets_per_image, replace=False)
            targets = [targets[k] for k in sorted(pick)]
        for t in targets:
            if args.remosaic_baseline:
                out = demosaic(mosaic(pixels, "RGGB"), "RGGB", "bilinear")
            else:
                out = anonymize_image(pixels, model, target=t, tile=args.tile)
            psnrs.append(psnr(out, pixels))
            for n, j in judges.items():
                res = attribute_pixels(out, j)
                top = res["top_k"][0]["model"]
                c = counts[n]
                c["pairs"] += 1
                c["usr"] += top != r.model_id
                if t is not None:
                    c["tsr"] += top == t
                    c["tsr_open"] += res["decision"]["model"] == t
                    c["base_tsr"] += orig[n] == t
        print(f"{i + 1}/{len(records)} {r.path.name}: mean PSNR so far {np.mean(psnrs):.2f} dB "
              f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)  # fmt: skip
    result = {
        "model": "remosaic-bilinear baseline (no model)" if args.remosaic_baseline else args.model,
        "model_sha256": None if args.remosaic_baseline else model.entry.sha256,
        "split": args.split,
        "n_images": len(records),
        "n_anonymized": len(psnrs),
        "mean_psnr_db": float(np.mean(psnrs)),
        "min_psnr_db": float(np.min(psnrs)),
        "tile": args.tile,
        "targets_per_image": args.targets_per_image or "all",
        "judges": {},
        "seconds": time.perf_counter() - t0,
    }
    for n, c in counts.items():
        p = max(c["pairs"], 1)
        result["judges"][n] = {
            "sha256": judges[n].entry.sha256,
            "accuracy_on_originals": c["orig_hits"] / max(len(records), 1),
            "untargeted_success": c["usr"] / p,
            **(
                {
                    "targeted_success": c["tsr"] / p,
                    "targeted_success_open_set": c["tsr_open"] / p,
                    "targeted_baseline_on_originals": c["base_tsr"] / p,
                }
                if targeted
                else {}
            ),
            "pairs": c["pairs"],
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Synthetic images given a target camera's traces (SpoC's case), judged like the photos.

    python bench/bench_synthetic_transplant.py [--n 6] [--models-dir models] [--refine] [--seed 0]

Each image is a natural-looking scene of the simulator rendered with no camera stage at all (no optics, sensor,
CFA, demosaicing or JPEG: ``camforensics.sim.scenes.render_natural_scene``, display gamma applied, 1024x1024,
8 bits). It gets a seeded target among the camera models that every judge knows and that have a shipped profile,
is transplanted toward it (``anonymize --target``, optionally ``--refine surrogates``), and every camera-model
attributor of ``--models-dir`` gives its top-1 before (the bare render) and after. Prints one JSON object with the
per-judge targeted success rate (and the share of bare renders already called the target).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--refine", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from PIL import Image

    from camforensics.core.quality import psnr
    from camforensics.inference.anonymizer import class_key
    from camforensics.pipelines.anonymize.judges import judge_panel, top1
    from camforensics.pipelines.anonymize.refine import refine_options
    from camforensics.pipelines.anonymize.transplant import transplant_options
    from camforensics.pipelines.profile import known_profiles
    from camforensics.sim.scenes import render_natural_scene

    panel = judge_panel("all", args.models_dir, threads=0)
    judges = panel.load() if panel is not None else []
    keys = set.intersection(*({class_key(c) for c in j.entry.classes} for j in judges)) if judges else set()
    targets = [n for n in known_profiles() if class_key(n) in keys]
    refine = refine_options("surrogates", epsilon=4, iterations=10) if args.refine else None
    rng = np.random.default_rng(args.seed)
    counts = {j.entry.name: {"before": 0, "after": 0} for j in judges}
    rows = []
    for i in range(args.n):
        lin = render_natural_scene(rng, 1024, 1024)
        bare = np.clip(np.rint(255 * np.power(np.clip(lin, 0, 1), 1 / 2.2)), 0, 255).astype(np.uint8)
        target = targets[int(rng.integers(len(targets)))]
        opts = transplant_options("transplant", target, refine=refine)
        loaded = opts.load()
        out, _ = opts.alter(bare, loaded)
        written = np.asarray(Image.open(io.BytesIO(opts.encode(out, loaded))).convert("RGB"))
        row = {"target": target, "psnr": round(psnr(bare, written), 2), "judges": {}}
        for j in judges:
            b, a = top1(bare, j, panel.params)["model"], top1(written, j, panel.params)["model"]
            counts[j.entry.name]["before"] += class_key(b) == class_key(target)
            counts[j.entry.name]["after"] += class_key(a) == class_key(target)
            row["judges"][j.entry.name] = {"before": b, "after": a}
        rows.append(row)
    summary = {name: {"tsr": c["after"] / args.n, "tsr_bare_render": c["before"] / args.n} for name, c in counts.items()}
    print(json.dumps({"n": args.n, "refine": bool(args.refine), "per_judge": summary, "images": rows}, indent=2))


if __name__ == "__main__":
    main()

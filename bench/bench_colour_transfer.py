"""Would a camera model's colour statistics move the RGB judge? A global colour transfer after the transplant.

    python bench/bench_colour_transfer.py DATA17 [--threads 1]

For each (photo, target) pair of ``camforensics evaluate anonymization DATA17 --images 1`` (seed 0; see
bench/bench_refine.py) the photo is transplanted toward the target and then, globally, given the target's colour
statistics: the per-channel mean (``mean s1``), or mean and standard deviation at half or full strength
(``meanstd s0.5`` / ``s1``), of the natural photos the target's profile learned from (never an evaluated photo).
Each result is saved with the target's tables and judged; prints targeted success % (untargeted in brackets) per
judge and the PSNR against the photo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

VARIANTS = ("transplant", "mean s1", "meanstd s0.5", "meanstd s1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import numpy as np
    from bench_refine import held_out_items

    from camforensics.core.quality import psnr
    from camforensics.inference.anonymizer import class_key
    from camforensics.inference.attribution import AttributionParams
    from camforensics.io.datasets import scan_dataset
    from camforensics.io.hashing import sha256_file
    from camforensics.io.images import load_image
    from camforensics.pipelines.anonymize.judges import judge_panel, top1
    from camforensics.pipelines.anonymize.transplant import jpeg_round_trip, transplant_options
    from camforensics.pipelines.profile import known_profiles, read_profile

    judges = judge_panel("all", None, threads=args.threads).load()
    items, _ = held_out_items(args.data, judges)
    nat = {sha256_file(r.path): r for r in scan_dataset(args.data).records if r.content.lower().startswith("nat")}
    stats = {}
    for name, f in known_profiles(None).items():
        px = [load_image(nat[p["sha256"]].path).pixels.reshape(-1, 3)[::7].astype(np.float64)
              for p in read_profile(f).meta["photos"] if p["sha256"] in nat]  # fmt: skip
        stats[class_key(name)] = (np.mean([x.mean(0) for x in px], 0), np.mean([x.std(0) for x in px], 0))
    params = AttributionParams(top_k=1)
    rows: dict[str, list] = {v: [] for v in VARIANTS}
    for rec, target in items:
        a = load_image(rec.path).pixels
        opts = transplant_options("transplant", target)
        loaded = opts.load()
        t, _ = opts.alter(a, loaded)
        mu_t, sd_t = stats[class_key(target)]
        x = t.astype(np.float64)
        mu, sd = x.reshape(-1, 3).mean(0), x.reshape(-1, 3).std(0)
        for v in VARIANTS:
            if v == "transplant":
                y = x
            elif v == "mean s1":
                y = x + (mu_t - mu)
            else:
                y = x + float(v.split("s")[-1]) * ((x - mu) / sd * sd_t + mu_t - x)
            out = jpeg_round_trip(np.clip(np.rint(y), 0, 255).astype(np.uint8), loaded[0].jpeg)
            rows[v].append((rec.model_id, target, psnr(a, out), {j.entry.name: top1(out, j, params)["model"] for j in judges}))
        print(rec.path.name, "->", target, [(v, round(rows[v][-1][2], 1)) for v in VARIANTS], flush=True)
    for v in VARIANTS:
        r = rows[v]
        cells = [f"{j.entry.name.replace('attributor-', '')} {100 * np.mean([x[3][j.entry.name] == x[1] for x in r]):.1f} "
                 f"({100 * np.mean([x[3][j.entry.name] != x[0] for x in r]):.1f})" for j in judges]  # fmt: skip
        print(f"{v:14s} {' | '.join(cells)} | PSNR {np.mean([x[2] for x in r]):.2f}/{min(x[2] for x in r):.2f}")


if __name__ == "__main__":
    main()

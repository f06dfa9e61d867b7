"""Does the refinement's attack fool the surrogates themselves (white-box)? One held-out crop, each surrogate alone
and the ensemble, several step sizes.

    python bench/bench_refine_whitebox.py DATA17 [--index 12] [--side 512] [--threads 1] \
        --config "key=value,key=value" [--config ...]

The (photo, target) pair is the ``--index``-th of ``camforensics evaluate anonymization DATA17 --images 1`` (seed
0; bench/bench_refine.py), transplanted toward its target; the attack (``transfer_attack``, keys as in
bench/bench_refine.py, no JPEG save, no PSNR floor) runs on the top-left ``--side`` pixels with every grid patch of
them. Prints, per configuration and per surrogate set, the RMS change and each surrogate's top-1 and share of patches
on the target afterwards: a surrogate that its own gradient cannot move to the target cannot be expected to carry a
judge there.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--index", type=int, default=12)
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", action="append", default=[])
    args = ap.parse_args()
    import numpy as np
    import torch
    from bench_refine import held_out_items, parse_config

    from camforensics.io.images import load_image
    from camforensics.pipelines.anonymize.judges import judge_panel
    from camforensics.pipelines.anonymize.refine import read_surrogates, refine_options
    from camforensics.pipelines.anonymize.transplant import transplant_options
    from camforensics.training.transfer import transfer_attack

    torch.set_num_threads(args.threads)
    judges = judge_panel("all", None, threads=args.threads).load()
    rec, target = held_out_items(args.data, judges)[0][args.index]
    opts = transplant_options("transplant", target)
    trans, _ = opts.alter(load_image(rec.path).pixels, opts.load())
    crop = trans[: args.side, : args.side]
    names = [r.name for r in read_surrogates()]
    print(f"{rec.path.name} ({rec.model_id}) -> {target}, top-left {args.side} px")
    for text in args.config:
        _, kw = parse_config("c:" + text)
        for spec in [*names, "surrogates"]:
            t0 = time.perf_counter()
            out, info = transfer_attack(crop, refine_options(spec).load(), target=target, window=0, **kw)
            rms = float(np.sqrt(np.mean((out.astype(float) - crop) ** 2)))
            after = [(s["preprocessor"], s["after"]["image_top1"], round(s["after"]["patch_share_target"], 2))
                     for s in info["surrogates"]]  # fmt: skip
            print(f"  {text:48s} {spec:22s} RMS {rms:4.2f}  {time.perf_counter() - t0:4.0f} s  {after}", flush=True)


if __name__ == "__main__":
    main()

"""Choosing the transplant's refinement on a subset: each configuration of the transfer attack x the three judges.

    python bench/bench_refine.py DATA17 [--every 3] [--surrogates NAME,...] [--threads 1] \
        --config "NAME:key=value,key=value" [--config ...]

DATA17 is the 17-model data set of the evaluation (real-dev and real-models linked into one folder with both
MANIFEST.csv merged, as ``models/build_surrogates.sh`` builds ``runs/surrogate-data``). The images and targets are
those of ``camforensics evaluate anonymization DATA17 --images 1`` (seed 0: one natural photo per device, none
that a camera profile learned from, one seeded target each); ``--every K`` keeps every K-th of them (the subset
the settings are chosen on; ``--offset J`` starts at the J-th: ``--every 2 --offset 1`` is the other half). Each
image is transplanted toward its target once; each configuration then refines it
(``camforensics.training.transfer.transfer_attack``: keys ``loss, epsilon, iterations, step, patches_per_step, ti,
cover, psnr_floor, momentum, shift, dih4, norm, jpeg`` (0/1), ``domain, surrogates`` (names joined by +),
``weights`` (joined by +), ``sample_cover, confidence, fuse, ghost, resize``), the result is saved with the target's JPEG
tables as anonymize saves it,
and the registry's judges decide. ``transplant`` (no refinement) is always the first row.

Prints one line per configuration: targeted success per judge (untargeted in brackets), mean / min PSNR against the
photo before the transplant, mean seconds of the refinement per image; ``-o FILE`` writes every verdict as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEYS = {"loss": str, "epsilon": float, "iterations": int, "step": float, "patches_per_step": int, "ti": int,
        "cover": int, "psnr_floor": float, "momentum": float, "jpeg": int, "shift": int, "dih4": int, "norm": str,
        "domain": str, "surrogates": str, "weights": str, "sample_cover": int, "confidence": float, "fuse": str, "ghost": float, "resize": float}  # fmt: skip


def parse_config(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    kw: dict = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        k, _, v = item.partition("=")
        if k not in KEYS:
            raise SystemExit(f"unknown key {k!r}; keys: {', '.join(KEYS)}")
        kw[k] = KEYS[k](v)
    return name, kw


def held_out_items(data: str, judges: list) -> tuple[list, list]:
    """The (record, target) pairs of ``evaluate anonymization DATA --images 1`` (seed 0), and every natural photo
    no camera profile learned from (the held-out pool)."""
    from camforensics.io.datasets import scan_dataset
    from camforensics.pipelines.anonymize.evaluate import (
        EvalAnonParams,
        LearnedOptions,
        TransferRun,
        draw_targets,
        select_images,
    )  # fmt: skip

    scan = scan_dataset(data)
    transfer = TransferRun(LearnedOptions(), ["transplant"], judges)
    taught = frozenset(transfer.profile_photos(scan.records))
    images = select_images(scan.records, EvalAnonParams(images_per_device=1), taught)
    classes = transfer.classes(list(judges[0].entry.classes))
    targets = [draw_targets(r.model_id, classes, 1, seed=0, index=i)[0] for i, r in enumerate(images)]
    return list(zip(images, targets)), select_images(scan.records, EvalAnonParams(), taught)


def transplanted(path, target: str) -> tuple:
    """A photo's pixels, its transplant toward ``target`` (as anonymize makes it), the target's JPEG tables and the
    encoder-decoder of the save with them (uint8 RGB -> uint8 RGB)."""
    from camforensics.io.images import load_image
    from camforensics.pipelines.anonymize.transplant import jpeg_round_trip, transplant_options

    pixels = load_image(path).pixels
    opts = transplant_options("transplant", target)
    loaded = opts.load()
    trans, _ = opts.alter(pixels, loaded)
    tables = loaded[0].jpeg

    def jpeg(a, tables=tables):
        return jpeg_round_trip(a, tables)

    return pixels, trans, tables, jpeg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--offset", type=int, default=0, help="with --every K: start at this item (0..K-1)")
    ap.add_argument("--surrogates", default="surrogates")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", action="append", default=[])
    ap.add_argument("-o", "--output")
    args = ap.parse_args()
    import numpy as np
    import torch

    from camforensics.core.quality import psnr
    from camforensics.inference.attribution import AttributionParams, attribute_pixels
    from camforensics.pipelines.anonymize.judges import judge_panel
    from camforensics.pipelines.anonymize.refine import refine_options
    from camforensics.training.transfer import transfer_attack

    torch.set_num_threads(args.threads)
    judges = judge_panel("all", None, threads=args.threads).load()
    chosen = held_out_items(args.data, judges)[0][args.offset :: args.every]
    opts_s = refine_options(args.surrogates)
    surrogates = dict(zip((r.name for r in opts_s.surrogates), opts_s.load()))
    configs = [("transplant", None)] + [parse_config(c) for c in args.config]
    params = AttributionParams(top_k=len(judges[0].entry.classes))
    rows: dict[str, list[dict]] = {name: [] for name, _ in configs}
    for rec, target in chosen:
        pixels, trans, tables, jpeg = transplanted(rec.path, target)
        for name, kw in configs:
            t0 = time.perf_counter()
            out, info = trans, {}
            if kw is not None:
                kw = dict(kw)
                use_jpeg = bool(kw.pop("jpeg", 1))
                names = kw.pop("surrogates", "").split("+")
                chosen_s = [surrogates[n] for n in names] if names != [""] else list(surrogates.values())
                if "weights" in kw:
                    kw["weights"] = [float(v) for v in kw["weights"].split("+")]
                out, info = transfer_attack(trans, chosen_s, target=target, window=1024, reference=pixels,
                                            jpeg=jpeg if use_jpeg else None, tables=tables, **kw)  # fmt: skip
            dt = time.perf_counter() - t0
            written = jpeg(out)
            verdicts, ranks = {}, {}
            for j in judges:
                top = attribute_pixels(written, j, params=params)["top_k"]
                verdicts[j.entry.name] = top[0]["model"]
                ranks[j.entry.name] = next((k for k, t in enumerate(top) if t["model"] == target), len(top))
            rows[name].append({"image": rec.path.name, "model": rec.model_id, "target": target, "seconds": dt,
                               "psnr": psnr(pixels, written), "verdicts": verdicts, "ranks": ranks,
                               "surrogates_after": [s["after"]["image_top1"] for s in info.get("surrogates", [])]})  # fmt: skip
            print(f"  {rec.path.name[:24]:24s} {name:14s} -> {target:28s} {rows[name][-1]['psnr']:.1f} dB "
                  f"{dt:5.1f} s  {verdicts} ranks {list(ranks.values())}  surr {rows[name][-1]['surrogates_after']}", flush=True)  # fmt: skip
    print(f"{len(chosen)} images; targeted success % (untargeted) per judge, PSNR mean/min, refinement s/image")
    for name, kw in configs:
        r = rows[name]
        cells = []
        for j in judges:
            n = j.entry.name
            hit = np.mean([x["verdicts"][n] == x["target"] for x in r]) * 100
            away = np.mean([x["verdicts"][n] != x["model"] for x in r]) * 100
            cells.append(f"{n.replace('attributor-', '')} {hit:5.1f} ({away:5.1f})")
        ps = [x["psnr"] for x in r]
        mean_tsr = np.mean([np.mean([x["verdicts"][j.entry.name] == x["target"] for x in r]) for j in judges]) * 100
        rank = np.mean([[x["ranks"][j.entry.name] + 1 for j in judges] for x in r])
        print(f"{name:16s} {' | '.join(cells)} | mean TSR {mean_tsr:5.1f} | target rank {rank:4.2f} | PSNR {np.mean(ps):.2f}/{min(ps):.2f} | "
              f"{np.mean([x['seconds'] for x in r]):.1f} s  {kw or ''}")  # fmt: skip
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

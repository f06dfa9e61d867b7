"""Which trace do the judges key on? Band swaps between a held-out photo and a photo of its target camera.

    python bench/bench_judge_traces.py DATA17 [--sigma 1.0] [-o FILE]

For each (photo A, target model T) pair of ``camforensics evaluate anonymization DATA17 --images 1`` (seed 0; see
bench/bench_refine.py), B is the first held-out natural photo of T (never one a camera profile learned from). The
registry's judges decide on:

- ``untouched``: A as it is; ``retable``: A saved with T's tables;
- ``transplant``: A transplanted toward T's profile and saved with T's tables (the shipped method);
- ``A-low + B-high``: A's low-pass (Gaussian, ``--sigma`` pixels) plus B's high-pass residual (the same window of
  both 1024 x 1024 crops), saved with T's tables: the scene of A with the fine-scale traces of a real T photo;
- ``B-low + A-high``: the reverse;
- ``A + B-high/2``: half of B's residual added on top of A's.

Targeted success (the judge names T), how often the judge still names A's model, and the mean rank of T among the
judge's 17 classes (1: its top-1), with the PSNR against A. If
the judges follow the high-pass band, the traces they read are the fine-scale residual of the photo (noise,
demosaicing and JPEG artefacts in the scene's texture), which a transplant built from stationary statistics (5 x 5
demosaicing filters, a mean spectrum and an 8 x 8 pattern) does not reproduce.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--output")
    args = ap.parse_args()
    import cv2
    import numpy as np
    from bench_refine import held_out_items

    from camforensics.core.quality import psnr
    from camforensics.inference.anonymizer import class_key
    from camforensics.inference.attribution import AttributionParams, attribute_pixels
    from camforensics.io.images import load_image
    from camforensics.pipelines.anonymize.judges import judge_panel
    from camforensics.pipelines.anonymize.transplant import jpeg_round_trip, transplant_options

    judges = judge_panel("all", None, threads=args.threads).load()
    items, pool = held_out_items(args.data, judges)
    params = AttributionParams(top_k=len(judges[0].entry.classes))

    def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = x.astype(np.float32)
        low = cv2.GaussianBlur(f, (0, 0), args.sigma, borderType=cv2.BORDER_REFLECT)
        return low, f - low

    rows: dict[str, list[dict]] = {}
    for rec, target in items:
        photos_b = [r for r in pool if class_key(r.model_id) == class_key(target) and r.path != rec.path]
        if not photos_b:
            continue
        a = load_image(rec.path).pixels
        b = load_image(photos_b[0].path).pixels
        h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
        a, b = a[:h, :w], b[:h, :w]
        opts = transplant_options("transplant", target)
        loaded = opts.load()
        trans, _ = opts.alter(a, loaded)
        (a_low, a_high), (b_low, b_high) = split(a), split(b)

        def u8(x: np.ndarray) -> np.ndarray:
            return np.clip(np.rint(x), 0, 255).astype(np.uint8)

        variants = {"untouched": None, "retable": a, "transplant": trans, "A-low + B-high": u8(a_low + b_high), "B-low + A-high": u8(b_low + a_high),
                    "A + B-high/2": u8(a.astype(np.float32) + b_high / 2)}  # fmt: skip
        for name, img in variants.items():
            written = a if img is None else jpeg_round_trip(img, loaded[0].jpeg)
            ranked = {j.entry.name: [t["model"] for t in attribute_pixels(written, j, params=params)["top_k"]]
                      for j in judges}  # fmt: skip
            v = {n: order[0] for n, order in ranked.items()}
            rank = {n: 1 + [class_key(c) for c in order].index(class_key(target)) for n, order in ranked.items()}
            rows.setdefault(name, []).append({"image": rec.path.name, "model": rec.model_id, "target": target,
                                              "b": photos_b[0].path.name, "psnr": psnr(a, written), "verdicts": v,
                                              "target_rank": rank})  # fmt: skip
        print(f"  {rec.path.name[:24]:24s} {rec.model_id[:20]:20s} -> {target[:20]:20s} "
              f"{ {k: list(r[-1]['verdicts'].values()) for k, r in rows.items()} }", flush=True)  # fmt: skip
    print(f"{len(rows['transplant'])} pairs; per judge: names the target % / still names A's model % / mean rank of "
          "the target; PSNR vs A")
    for name, r in rows.items():
        cells = []
        for j in judges:
            n = j.entry.name
            hit = np.mean([class_key(x["verdicts"][n]) == class_key(x["target"]) for x in r]) * 100
            kept = np.mean([class_key(x["verdicts"][n]) == class_key(x["model"]) for x in r]) * 100
            rank = np.mean([x["target_rank"][n] for x in r])
            cells.append(f"{n.replace('attributor-', '')} {hit:5.1f} / {kept:5.1f} / {rank:4.1f}")
        finite = [x["psnr"] for x in r if np.isfinite(x["psnr"])]
        print(f"{name:16s} {' | '.join(cells)} | PSNR {np.mean(finite) if finite else float('inf'):.2f} dB")
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

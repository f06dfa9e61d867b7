"""Where does a white-box targeted attack on a surrogate get lost between the optimised tensor and the judged file?

    python bench/bench_refine_stages.py DATAHELD [--items 0,1,2] [--surrogates NAME[,NAME]] [--threads 1] \
        [--epsilon 8] [--iterations 30] [--step 1]

For each (photo, target) pair of ``evaluate anonymization DATAHELD --images 1`` (seed 0; bench/bench_refine.py) the
photo is transplanted toward its target, then a plain white-box targeted PGD (sign steps, the mean cross-entropy of
the patches toward the target, no input diversity, no PSNR floor) runs on the 128 decision patches of the centred
1024 window (chosen by the judges' rule on the transplant). Each surrogate's verdict (top-1 of the mean patch
log-probability, as the judges aggregate) and its share of patches on the target are measured at every stage:

(a) the float tensor at the end of the attack, on the attacked patches;
(b) after rounding to uint8;
(c) after the JPEG save with the target's tables (decoded as anonymize measures the output);
(d) the saved file's own decision patches, re-selected by the judges' rule (quality filter, best Bondi scores);
(e) as (d) but with every grid patch of the window.

The same pipeline with ``--jpeg-aware`` steps through the save (BPDA, as the refinement does).
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
    ap.add_argument("--items", default="0,1,2")
    ap.add_argument("--surrogates", default="surrogates")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epsilon", type=float, default=8.0)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--step", type=float, default=1.0)
    ap.add_argument("--jpeg-aware", action="store_true")
    ap.add_argument("--judges", action="store_true", help="also print the judges' verdicts on the saved file")
    ap.add_argument("--production", action="append", default=[],
                    help="instead of the plain PGD: transfer_attack with these keys (bench/bench_refine.py), each surrogate alone")
    args = ap.parse_args()
    import numpy as np
    import torch
    from bench_refine import held_out_items, parse_config

    from camforensics.inference.anonymizer import class_key
    from camforensics.inference.attribution import AttributionParams
    from camforensics.inference.patches import centre_window, decision_patches
    from camforensics.io.images import load_image
    from camforensics.pipelines.anonymize.judges import judge_panel, top1
    from camforensics.pipelines.anonymize.refine import refine_options
    from camforensics.pipelines.anonymize.transplant import jpeg_round_trip, transplant_options

    torch.set_num_threads(args.threads)
    judges = judge_panel("all", None, threads=args.threads).load()
    items = held_out_items(args.data, judges)[0]
    surrogates = refine_options(args.surrogates).load()
    params = AttributionParams(top_k=1)

    def verdict(s, batch: torch.Tensor, label: int) -> str:
        with torch.no_grad():
            lp = torch.cat([s.net(batch[i : i + 64]) for i in range(0, len(batch), 64)])
        top = int(lp.mean(0).argmax())
        share = float((lp.argmax(1) == label).float().mean())
        return f"{'T' if top == label else '-'} {share:4.2f} ({s.classes[top][:14]})"

    for k in (int(v) for v in args.items.split(",")):
        rec, target = items[k]
        pixels = load_image(rec.path).pixels
        opts = transplant_options("transplant", target)
        loaded = opts.load()
        trans, _ = opts.alter(pixels, loaded)
        tables = loaded[0].jpeg
        top, left = centre_window(trans.shape, 1024)
        win = trans[top : top + 1024, left : left + 1024]
        _, pos = decision_patches(win, preprocessor="RGB", size=64, n=128, window=0)
        print(f"[{k}] {rec.path.name} ({rec.model_id}) -> {target}", flush=True)
        for s in surrogates:
            label = [class_key(c) for c in s.classes].index(class_key(target))
            x0 = torch.from_numpy(np.stack([win[y : y + 64, x : x + 64] for y, x in pos]).transpose(0, 3, 1, 2).astype(np.float32))
            x = x0.clone()
            t0 = time.perf_counter()

            def assemble(p: torch.Tensor) -> np.ndarray:
                out = trans.copy()
                q = np.clip(np.rint(p.numpy()), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
                for (y, xx), patch in zip(pos, q):
                    out[top + y : top + y + 64, left + xx : left + xx + 64] = patch
                return out

            def reread(img: np.ndarray) -> torch.Tensor:
                w = img[top : top + 1024, left : left + 1024]
                return torch.from_numpy(np.stack([w[y : y + 64, x : x + 64] for y, x in pos]).transpose(0, 3, 1, 2).astype(np.float32))

            for text in args.production:
                from camforensics.training.transfer import transfer_attack

                _, kw = parse_config("c:" + text)
                use_jpeg = bool(kw.pop("jpeg", 1))
                t0 = time.perf_counter()
                out, _ = transfer_attack(trans, [s], target=target, window=1024, reference=pixels,
                                         jpeg=(lambda a: jpeg_round_trip(a, tables)) if use_jpeg else None, tables=tables, **kw)
                saved = jpeg_round_trip(out, tables)
                d, _ = decision_patches(saved, preprocessor="RGB", size=64, n=128, window=1024)
                rms = float(np.sqrt(np.mean((saved.astype(float) - pixels) ** 2)))
                print(f"   {Path(s.path).stem:22s} {text:50s} b {verdict(s, reread(out), label)} | d "
                      f"{verdict(s, torch.from_numpy(d), label)} | {20 * np.log10(255 / max(rms, 1e-9)):.1f} dB "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
            if args.production:
                continue
            for _ in range(args.iterations):
                xs = (reread(jpeg_round_trip(assemble(x), tables)) if args.jpeg_aware else x.clone()).requires_grad_(True)
                loss = -s.net(xs)[:, label].mean()
                (g,) = torch.autograd.grad(loss, xs)
                x = torch.minimum(torch.maximum(x - args.step * g.sign(), x0 - args.epsilon), x0 + args.epsilon).clamp(0, 255)
            dt = time.perf_counter() - t0
            q = assemble(x)
            saved = jpeg_round_trip(q, tables)
            d, _ = decision_patches(saved, preprocessor="RGB", size=64, n=128, window=1024)
            dall, _ = decision_patches(saved, preprocessor="RGB", size=64, n=256, window=1024)
            rms = float(np.sqrt(np.mean((saved.astype(float) - pixels) ** 2)))
            psnr = 20 * np.log10(255 / max(rms, 1e-9))
            cells = [verdict(s, x0, label), verdict(s, x, label), verdict(s, reread(q), label), verdict(s, reread(saved), label),
                     verdict(s, torch.from_numpy(d), label), verdict(s, torch.from_numpy(dall), label)]  # fmt: skip
            print(f"   {Path(s.path).stem:22s} start {cells[0]} | a {cells[1]} | b {cells[2]} | c {cells[3]} | "
                  f"d {cells[4]} | e {cells[5]} | {psnr:.1f} dB {dt:.0f} s", flush=True)  # fmt: skip
            if args.judges:
                print("      judges:", {j.entry.name[11:]: top1(saved, j, params)["model"][:16] for j in judges}, flush=True)


if __name__ == "__main__":
    main()

"""Camera-model attribution speed (issue 5 targets), with onnxruntime on the CPU.

    python bench/bench_attribution.py [--model NAME] [--models-dir DIR]

Figures:
1. One batch of 64 patches of 64x64 (a 512x512 region) through the model: median of 20 runs (target <= 20 ms).
2. Attribution of one 12 MP image (4000x3000 JPEG, decode included, the model's patch count): median of 5 runs
   (target <= 0.5 s), with its parts: decode, patch selection, inference.
3. The default panel (all members on the same patches of the centred window): per-member batch time, the 12 MP JPEG,
   and the real full frames of ../shared/data/real-full (12-20 MP) when present.
Baseline in the same run: the same network in torch (eager, CPU), when torch is installed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def median_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="registry name (default: the default attributor)")
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = all cores)")
    ap.add_argument("--panel", default=None, help="panel name (default: the registry's default panel)")
    ap.add_argument("--real-full", default=None, help="folder of real full frames (default: ../shared/data/real-full)")
    args = ap.parse_args()

    import cv2

    from camforensics.inference.attribution import attribute_pixels
    from camforensics.inference.patches import decision_patches
    from camforensics.inference.registry import ModelRegistry
    from camforensics.io.images import load_image

    reg = ModelRegistry(args.models_dir)
    name = args.model or reg.default("camera-model-attribution")
    if name is None:
        print(f"no attributor registered in {reg.root}; train one (models/build.sh)")
        return 2
    model = reg.load(name, device="cpu", threads=args.threads)
    size = model.entry.patch_size
    print(f"model {name} ({model.entry.meta.get('architecture')}, {model.entry.preprocessor}), providers {model.providers}")

    batch = np.random.default_rng(0).uniform(0, 255, (64, 3, size, size)).astype(np.float32)
    t_batch = median_time(lambda: model.run(batch), 20)
    line = f"64-patch batch (512x512 region): onnxruntime {t_batch * 1e3:.1f} ms (target <= 20 ms)"
    try:
        import torch

        from camforensics.training.nets import Attributor

        net = Attributor(model.entry.preprocessor, model.entry.meta.get("architecture", "bondi"), len(model.entry.classes),
                         width=int(model.entry.meta.get("width", 16))).eval()
        xb = torch.from_numpy(batch)
        with torch.no_grad():
            t_torch = median_time(lambda: net(xb), 10)
        line += f"; torch eager baseline {t_torch * 1e3:.1f} ms ({t_torch / t_batch:.1f}x)"
    except ImportError:
        line += "; torch not installed (no baseline)"
    print(line)

    rng = np.random.default_rng(1)
    coarse = rng.uniform(30, 220, (50, 66, 3)).astype(np.float32)
    img = cv2.resize(coarse, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 2.0, img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "12mp.jpg"
        cv2.imwrite(str(path), img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        t_decode = median_time(lambda: load_image(path), 5)
        pixels = load_image(path).pixels
        n = int(model.entry.meta.get("decision", {}).get("patches_per_image", 64))
        window = int(model.entry.meta.get("decision", {}).get("window", 1024))
        t_select = median_time(
            lambda: decision_patches(pixels, preprocessor=model.entry.preprocessor, size=size, n=n, window=window), 5
        )
        t_pixels = median_time(lambda: attribute_pixels(pixels, model), 5)
        t_total = median_time(lambda: attribute_pixels(load_image(path).pixels, model), 5)
    print(
        f"12 MP image, {n} patches: {t_total:.3f} s end to end (target <= 0.5 s): decode {t_decode:.3f} s, "
        f"attribution of the decoded pixels {t_pixels:.3f} s (of which patch selection {t_select:.3f} s)"
    )
    bench_panel(reg, args, path_of_12mp=img)
    return 0


def bench_panel(reg, args, *, path_of_12mp) -> None:  # noqa: ANN001
    """The default panel (every member on the same patches): the synthetic 12 MP JPEG, and real camera frames of
    ../shared/data/real-full when present (12-20 MP, decode included)."""
    import cv2

    from camforensics.inference.attribution import attribute_pixels
    from camforensics.inference.panel import default_panel, load_panel
    from camforensics.io.images import load_image

    name = args.panel or default_panel(reg)
    if name is None:
        print("no panel registered: panel figures skipped")
        return
    panel = load_panel(reg, name, device="cpu", threads=args.threads)
    batch = np.random.default_rng(0).uniform(0, 255, (64, 3, 64, 64)).astype(np.float32)
    per = {m.entry.name: median_time(lambda m=m: m.run(batch), 20) for m in panel.members}
    print(f"panel {name}: 64-patch batch per member " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in per.items())
          + " (target <= 20 ms each)")
    n = panel.entry.meta.get("decision", {}).get("patches_per_image")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "12mp.jpg"
        cv2.imwrite(str(path), path_of_12mp[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        t = median_time(lambda: attribute_pixels(load_image(path).pixels, panel), 5)
        px = load_image(path).pixels
        t_px = median_time(lambda: attribute_pixels(px, panel), 5)
    print(f"panel {name}, 12 MP synthetic JPEG, {n} patches x {len(panel.members)} members: {t:.3f} s end to end "
          f"(target <= 0.5 s), of which attribution of the decoded pixels {t_px:.3f} s")
    full = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-full"
    if args.real_full:
        full = Path(args.real_full)
    frames = sorted(full.glob("*/nat/*")) if full.is_dir() else []
    if frames:
        times = []
        for f in frames:
            times.append((median_time(lambda f=f: attribute_pixels(load_image(f).pixels, panel), 3), f))
        mp = [load_image(f).pixels.shape[:2] for _, f in times]
        twelve = [t for (t, _), (h, w) in zip(times, mp) if 11e6 <= h * w <= 13e6]
        print(f"panel {name}, {len(frames)} real full frames ({min(h * w for h, w in mp) / 1e6:.0f}-"
              f"{max(h * w for h, w in mp) / 1e6:.0f} MP), end to end: median {statistics.median(t for t, _ in times):.3f} s, "
              f"max {max(t for t, _ in times):.3f} s; the 12 MP ones ({len(twelve)}): median "
              f"{statistics.median(twelve) if twelve else float('nan'):.3f} s")


if __name__ == "__main__":
    sys.exit(main())

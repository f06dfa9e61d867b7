"""Camera-model attribution speed (issue 5 targets), with onnxruntime on the CPU.

    python bench/bench_attribution.py [--model NAME] [--models-dir DIR]

Figures:
1. One batch of 64 patches of 64x64 (a 512x512 region) through the model: median of 20 runs (target <= 20 ms).
2. Attribution of one 12 MP image (4000x3000 JPEG, decode included, the model's patch count): median of 5 runs
   (target <= 1 s), with its parts: decode, patch selection, inference.
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
        t_select = median_time(lambda: decision_patches(pixels, preprocessor=model.entry.preprocessor, size=size, n=n), 5)
        t_pixels = median_time(lambda: attribute_pixels(pixels, model), 5)
        t_total = median_time(lambda: attribute_pixels(load_image(path).pixels, model), 5)
    print(
        f"12 MP image, {n} patches: {t_total:.3f} s end to end (target <= 1 s): decode {t_decode:.3f} s, "
        f"attribution of the decoded pixels {t_pixels:.3f} s (of which patch selection {t_select:.3f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time per 12 MP residual and per 12 MP PCE: numpy engine vs torch on the CPU vs torch on CUDA (when visible).

All backends run in this one process on the same arrays; each time is the median of --repeat runs after one
warm-up run (CUDA timings synchronise the device). The agreement with the numpy engine is printed beside each
time (residual: correlation and max |difference|; PCE: relative difference and peak shift).

Run from the repository root:  python bench/bench_torch_backend.py [--size 3000x4000] [--repeat 3] [--no-torch-cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # use this checkout's camforensics

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from camforensics.core.pce import compute_pce  # noqa: E402
from camforensics.core.residual import extract_residual  # noqa: E402


def synthetic_photo(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 RGB photo (smooth content with edges, 1% PRNU, noise) and its PRNU factor K."""
    rng = np.random.default_rng(seed)
    k = rng.normal(0, 0.005, (h, w)).astype(np.float32)
    coarse = rng.uniform(30, 220, (max(h // 64, 2), max(w // 64, 2), 3)).astype(np.float32)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    img *= 1.0 + k[:, :, None]
    img += rng.normal(0, 2.0, img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), k


def timed(fn: Callable[[], object], repeat: int, sync: Callable[[], None] = lambda: None) -> tuple[float, object]:
    out = fn()  # warm-up (allocator, FFT plans, CUDA context)
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="3000x4000", help="HxW of the test image (default 12 MP)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-torch-cpu", action="store_true", help="skip torch on the CPU (slow; a reference only)")
    ap.add_argument("--torch-threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    image, k = synthetic_photo(h, w)
    print(f"image {h}x{w}x3 uint8 ({h * w / 1e6:.1f} MP), median of {args.repeat} runs after a warm-up")
    print(f"{os.cpu_count()} CPUs, load average before the run {os.getloadavg()[0]:.2f} (other work skews CPU timings)")

    t_np, ref_w = timed(lambda: extract_residual(image), args.repeat)
    signal = ref_w * image.mean(axis=2, dtype=np.float32)
    t_np_pce, ref_pce = timed(lambda: compute_pce(signal, k, shift_range=(8, 8)), args.repeat)
    rows = [("numpy (pywt + OpenCV + scipy.fft)", t_np, "reference", t_np_pce, f"PCE {ref_pce.pce:.1f} at {ref_pce.peak_shift}")]

    try:
        import torch

        from camforensics.accel import extract_residual_torch, pce_torch
    except ImportError as exc:
        print(f"torch backend not available ({exc}); numpy only")
        torch = None
    devices = []
    if torch is not None:
        if args.torch_threads > 0:
            torch.set_num_threads(args.torch_threads)
        if not args.no_torch_cpu:
            devices.append(("cpu", f"torch {torch.__version__} CPU ({torch.get_num_threads()} threads)", lambda: None))
        if torch.cuda.is_available():
            devices.append(("cuda", f"torch CUDA {torch.cuda.get_device_name(0)}", torch.cuda.synchronize))
        else:
            print("no CUDA device visible: no CUDA timings in this run")
    for dev, label, sync in devices:
        t_res, ours = timed(lambda dev=dev: extract_residual_torch(image, device=dev), args.repeat, sync)
        corr = float(np.corrcoef(ours.ravel(), ref_w.ravel())[0, 1])
        diff = float(np.abs(ours - ref_w).max())
        t_pce, res = timed(lambda dev=dev: pce_torch(signal, k, shift_range=(8, 8), device=dev), args.repeat, sync)
        rel = abs(res.pce - ref_pce.pce) / abs(ref_pce.pce)
        rows.append((label, t_res, f"corr {corr:.7f}, max|d| {diff:.1e}", t_pce, f"rel.diff {rel:.1e} at {res.peak_shift}"))

    print(f"{'backend':44s} {'residual s':>10s}  {'agreement':28s} {'PCE s':>7s}  agreement")
    for label, t_res, agree_res, t_pce, agree_pce in rows:
        print(f"{label:44s} {t_res:10.3f}  {agree_res:28s} {t_pce:7.3f}  {agree_pce}")


if __name__ == "__main__":
    main()

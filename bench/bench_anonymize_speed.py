"""Time to anonymize one 12-megapixel photo on the CPU (issue 7's target: <= 10 s), per method.

    python bench/bench_anonymize_speed.py             # every method (about 3 minutes on 2 cores; torch for the nets)
    python bench/bench_anonymize_speed.py --skip nets # the methods without a network only

A 4000x3000 RGB photo with a planted PRNU (the camera-like image of bench_prnu.py) and its sensor's fingerprint:

- remove-fingerprint as ``anonymize`` runs it: the alpha fit (three residuals) and the subtraction; spoof the
  same with the strength fit; the baselines (median, Gaussian, JPEG, wavelet denoise);
- the learned anonymizers' architectures through the tiled ONNX inference of ``anonymize --target`` /
  ``--method erase`` (onnxruntime, 512-pixel tiles with 32 pixels of overlap): the Cama generator at width 16 (our
  CPU training width) and 64 (Cama's), the DnCNN-like eraser at width 32. Their weights are random: a network's
  inference time does not depend on its weights, so no trained model is needed to time the architecture. Beside
  each, the same graph run once on the whole image (no tiling, when memory allows) as the same-run baseline.

Each figure is the best of --repeat runs (default 1; the nets take tens of seconds each); threads: onnxruntime's
default (every core) and the engine's thread pool.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # this checkout, not another installed copy

TARGET_S = 10.0

from bench_prnu import camera_image, timed  # noqa: E402  (the bench folder is on the path above)


@dataclass
class Row:
    method: str
    seconds: float
    note: str = ""


def classical_rows(img: np.ndarray, k: np.ndarray, k_other: np.ndarray, repeat: int) -> list[Row]:
    from camforensics.core.anonymize import (
        BASELINES,
        PlantParams,
        RemovalParams,
        apply_plant,
        apply_removal,
        fit_plant,
        fit_removal,
    )
    from camforensics.core.quality import psnr

    rows = []

    def remove():
        # K is the planted pattern itself (reliability 1): no debiasing, which changes alpha, not the work.
        fit = fit_removal(img, k, params=RemovalParams())
        return apply_removal(img, k, fit.alpha)

    t, out = timed(remove, repeat)
    rows.append(Row("remove-fingerprint (alpha fit + subtraction)", t, f"PSNR {psnr(img, out):.1f} dB"))

    def spoof():
        plant = fit_plant(img, k_other, params=PlantParams())
        return apply_plant(img, k_other, plant.strength)

    t, out = timed(spoof, repeat)
    rows.append(Row("spoof (strength fit + plant)", t, f"PSNR {psnr(img, out):.1f} dB"))
    for name, fn in BASELINES.items():
        t, out = timed(lambda fn=fn: fn(img), repeat)
        rows.append(Row(f"baseline {name}", t, f"PSNR {psnr(img, out):.1f} dB"))
    return rows


def net_rows(img: np.ndarray, repeat: int, whole: bool) -> list[Row]:
    try:
        import torch
    except ImportError:
        print("nets: torch is not installed (pip install -e '.[train]' && pip install torch==2.13.0); skipped")
        return []
    from camforensics.inference.anonymizer import TASK_ERASE, TASK_TARGETED, anonymize_image
    from camforensics.inference.session import new_session
    from camforensics.training.anonymizer_nets import CamaGenerator, TraceEraser
    from camforensics.training.onnx_graph import onnx_bytes

    torch.manual_seed(0)
    classes = tuple(f"Model {i}" for i in range(7))  # the 7 camera models of real-dev
    nets = [
        ("Cama generator, width 16 (2 residual blocks)", CamaGenerator(len(classes), width=16), TASK_TARGETED),
        ("Cama generator, width 64 (Cama's)", CamaGenerator(len(classes), width=64), TASK_TARGETED),
        ("DnCNN-like eraser, width 32, depth 6", TraceEraser(width=32, depth=6), TASK_ERASE),
    ]
    rows = []
    for label, net, task in nets:
        net.eval()
        example: tuple = (torch.zeros(1, 3, 64, 64),)
        names: tuple = ("image",)
        if task == TASK_TARGETED:
            for p in net.body.net[-1].parameters():  # random, not the zero start: the timing must not shortcut
                torch.nn.init.normal_(p, std=0.01)
            example += (torch.zeros(1, len(classes), 64, 64),)
            names += ("target",)
        data = onnx_bytes(net, example, input_names=names, output_name="output", spatial_output=True)
        session = new_session(data, device="cpu")
        entry = SimpleNamespace(name=label, task=task, classes=classes)
        model = SimpleNamespace(entry=entry, session=session, providers=("CPUExecutionProvider",))
        target = classes[3] if task == TASK_TARGETED else None
        n_params = sum(p.numel() for p in net.parameters())
        t, _ = timed(lambda m=model, tg=target: anonymize_image(img, m, target=tg, tile=512, overlap=32), repeat)
        rows.append(Row(f"{label}: tiled 512 / overlap 32", t, f"{n_params / 1e6:.2f} M parameters"))
        print(f"  {label}: {t:.1f} s tiled", flush=True)
        if whole:
            try:
                t, _ = timed(lambda m=model, tg=target: anonymize_image(img, m, target=tg, tile=None), 1)
                rows.append(Row(f"{label}: whole image at once (baseline)", t))
            except Exception as exc:  # noqa: BLE001  (onnxruntime out of memory on a whole 12 MP image: say so)
                rows.append(Row(f"{label}: whole image at once (baseline)", float("nan"), f"failed: {exc}"[:120]))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip", default="", help="comma list: classical,nets")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-whole", action="store_true", help="leave out the untiled whole-image baselines")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    img = camera_image(3000, 4000, 0)
    rng = np.random.default_rng(5)
    k = np.random.default_rng(1).normal(0, 0.01, (3000, 4000)).astype(np.float32)  # the planted pattern
    k_other = rng.normal(0, 0.01, (3000, 4000)).astype(np.float32)
    print(f"# 12 MP anonymization on the CPU ({img.shape[1]}x{img.shape[0]} RGB), target <= {TARGET_S:g} s\n")
    rows: list[Row] = []
    if "classical" not in skip:
        rows += classical_rows(img, k, k_other, args.repeat)
    if "nets" not in skip:
        rows += net_rows(img, args.repeat, not args.no_whole)
    print("| method | s per 12 MP image | <= 10 s | note |")
    print("| --- | ---: | --- | --- |")
    for r in rows:
        ok = "-" if "baseline)" in r.method or r.seconds != r.seconds else ("yes" if r.seconds <= TARGET_S else "no")
        print(f"| {r.method} | {r.seconds:.1f} | {ok} | {r.note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Batch throughput, memory flatness and parallel fingerprinting, measured in one run.

    python bench/bench_batch.py [--n-identify 24] [--size 1024x768] [--n-tiny 2000] [--fp-size 3000x2000]

Prints:
1. images/s of identify and extract over a folder of synthetic JPEGs with --workers 1 and 2 (same run);
2. resident memory of this process after 200 and after N tiny images of a journaled (streaming) extract run,
   to show that it stays flat;
3. wall time of a fingerprint (enroll) from 10 images of 6 MP with 1 and 2 workers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout, not another installed copy
import synth  # noqa: E402  (seeded synthetic camera of the tests)

from camforensics.core.params import ResidualParams  # noqa: E402
from camforensics.pipelines.enroll import enroll_device  # noqa: E402
from camforensics.pipelines.executor import Execution  # noqa: E402
from camforensics.pipelines.extract import extract_residuals  # noqa: E402
from camforensics.pipelines.identify import identify_images  # noqa: E402


def rss_mb() -> float:
    """Current resident set size of this process (Linux /proc), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def size_arg(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def write_photos(folder: Path, k: np.ndarray, n: int, *, flat: bool, seed: int) -> None:
    folder.mkdir(parents=True)
    for j in range(n):
        synth.write_jpeg(folder / f"{j:04d}.jpg", synth.shoot(k, seed + j, flat=flat), exif={0x0110: "bench"})


def timed(fn) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-identify", type=int, default=24)
    ap.add_argument("--size", type=size_arg, default=(1024, 768))
    ap.add_argument("--n-tiny", type=int, default=2000)
    ap.add_argument("--fp-size", type=size_arg, default=(3000, 2000))
    ap.add_argument("--fp-images", type=int, default=10)
    args = ap.parse_args()
    from camforensics.runtime import native
    from camforensics.runtime.heap import retain_freed_memory

    print(f"allocator: {retain_freed_memory() or 'system defaults'} (as the command line sets it); "
          f"denoiser engine: {native.engine()}")
    print(f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        root = Path(tmp)
        w, h = args.size
        k = synth.make_prnu((h, w), 1)
        write_photos(root / "flat", k, 8, flat=True, seed=0)
        write_photos(root / "nat", k, args.n_identify, flat=False, seed=100)
        enroll_device([root / "flat"], name="cam", library=root / "lib")

        print(f"\n1. throughput over {args.n_identify} images of {w}x{h} (JPEG), same run")
        for cmd in ("identify", "extract"):
            for workers in (1, 2):
                ex = Execution(workers=workers)
                if cmd == "identify":
                    t = timed(lambda: identify_images([root / "nat"], library=root / "lib", execution=ex))
                else:
                    out = root / f"out{workers}"
                    t = timed(lambda: extract_residuals([root / "nat"], out, execution=ex))
                print(f"   {cmd:8s} workers={workers}: {args.n_identify / t:6.2f} images/s ({t:.2f} s, incl. pool start)")

        print(f"\n2. memory of a streaming (journaled) extract over {args.n_tiny} images of 128x128, in this process")
        tiny = root / "tiny"
        tiny.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.n_tiny):
            cv2.imwrite(str(tiny / f"{i:05d}.png"), rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
        marks: dict[int, float] = {}
        count = 0

        def tick() -> None:
            nonlocal count
            count += 1
            if count in (200, 1000, args.n_tiny):
                marks[count] = rss_mb()

        before = rss_mb()
        t = timed(
            lambda: extract_residuals(
                [tiny], root / "tiny_out", save_arrays=False, save_pictures=False, params=ResidualParams(),
                journal=root / "tiny.json.partial.jsonl", tick=tick, execution=Execution(workers=1),
            ).write(root / "tiny.json")
        )
        print(f"   RSS before {before:.1f} MB; " + "; ".join(f"after {n}: {mb:.1f} MB" for n, mb in sorted(marks.items())))
        print(f"   {args.n_tiny / t:.0f} images/s; report {os.path.getsize(root / 'tiny.json') / 1e6:.1f} MB on disk")

        fw, fh = args.fp_size
        print(f"\n3. fingerprint from {args.fp_images} images of {fw}x{fh} ({fw * fh / 1e6:.0f} MP), enroll end to end")
        kf = synth.make_prnu((fh, fw), 2)
        write_photos(root / "big", kf, args.fp_images, flat=True, seed=500)
        for workers in (1, 2):
            t = timed(
                lambda: enroll_device([root / "big"], name=f"big{workers}", library=root / "lib",
                                      execution=Execution(workers=workers))
            )
            print(f"   workers={workers}: {t:.2f} s wall ({args.fp_images / t:.2f} images/s)")


if __name__ == "__main__":
    main()

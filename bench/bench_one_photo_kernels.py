"""The eighth issue-21 session's CPU cuts, each timed beside what it replaces, in alternation (median CPU seconds):

    python bench/bench_one_photo_kernels.py PHOTO [--repeat 9]

1. ``to_grey`` of the 8-bit photo: the native pass (``cf_grey_u8``) against numpy's three passes.
2. ``zero_mean_cfa`` of its residual: the native subtraction with the reductions at once, against the numpy passes
   (``CAMFORENSICS_NATIVE=0`` for that call: the same function's other branch).
3. The residual computed in a thread named as the one-photo commands' (``camforensics-residual-ahead``): its row
   strips unsplit (``threads.unsplit()``, what that thread got before this session: ``threads.width()`` took it for
   one of the pool's) against split over the pool (now); the thread's own CPU, the other threads' CPU, wall time.
4. The drawing helper's start, each in a fresh process: numpy, PIL and matplotlib imported and the frames built
   as the helper did before (everything imported after the fork) and as it does now (numpy and PIL already
   imported before the fork, matplotlib without its 3-D projection); only the helper's own CPU counts.

Results are bit for bit the same either way (``tests/test_one_photo_bits.py``); this only times them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HELPER = r"""
import sys, time
sys.path.insert(0, {repo!r})
{pre}
c = time.process_time()
{post}
from camforensics.core import figures
figures.import_for_drawing(drawing_process={lean})
figures.prepare_spectrum_figure(draw=False)
figures.prepare_residual_figure(draw=False)
print(time.process_time() - c)
"""


def cpu(fn) -> float:
    c = time.process_time()
    fn()
    return time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", type=Path)
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    import numpy as np

    from camforensics.core.params import GREY_WEIGHTS
    from camforensics.core.residual import extract_residual, to_grey, zero_mean_cfa
    from camforensics.io.images import load_image
    from camforensics.runtime import native

    img = load_image(args.photo).pixels
    w = extract_residual(img)
    x = w * np.float32(1.7) + np.float32(0.3)

    def numpy_grey() -> None:
        out = np.multiply(img[:, :, 0], np.float32(GREY_WEIGHTS[0]), dtype=np.float32)
        for c in (1, 2):
            out += np.multiply(img[:, :, c], np.float32(GREY_WEIGHTS[c]), dtype=np.float32)

    def numpy_zero_mean() -> None:
        os.environ[native.ENV] = "0"
        try:
            zero_mean_cfa(x)
        finally:
            del os.environ[native.ENV]

    import threading

    from camforensics.runtime import threads

    def ahead(split: bool) -> tuple[float, float, float]:
        box: dict[str, float] = {}

        def run() -> None:
            c, t = time.thread_time(), time.perf_counter()
            if split:
                extract_residual(img)
            else:
                with threads.unsplit():
                    extract_residual(img)
            box["own"], box["wall"] = time.thread_time() - c, time.perf_counter() - t

        c = time.process_time()
        thread = threading.Thread(target=run, name="camforensics-residual-ahead")
        thread.start()
        thread.join()
        return box["own"], time.process_time() - c - box["own"], box["wall"]

    rows: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for split in (False, True):
            own, others, wall = ahead(split)
            tag = "split over the pool (now)" if split else "unsplit (before)"
            rows.setdefault(f"residual ahead, {tag}: the thread's CPU", []).append(own)
            rows.setdefault(f"residual ahead, {tag}: other threads' CPU", []).append(others)
            rows.setdefault(f"residual ahead, {tag}: wall", []).append(wall)
        for label, fn in (("grey: numpy's three passes", numpy_grey), ("grey: native pass", lambda: to_grey(img)),
                          ("zero-mean: numpy passes", numpy_zero_mean), ("zero-mean: native", lambda: zero_mean_cfa(x))):  # fmt: skip
            rows.setdefault(label, []).append(cpu(fn))
        for label, pre, post, lean in (
            ("helper start: before (numpy, PIL, matplotlib after the fork)", "", "import numpy\nfrom PIL import Image", False),
            ("helper start: now (numpy, PIL before the fork, no 3-D)", "import numpy\nfrom PIL import Image", "", True),
        ):
            code = HELPER.format(repo=str(REPO), pre=pre, post=post, lean=lean)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            rows.setdefault(label, []).append(float(done.stdout.split()[-1]))
    print(f"{args.photo.name}: median s of {args.repeat} alternating runs (CPU unless marked wall; load now {os.getloadavg()[0]:.1f})")
    for label, values in rows.items():
        print(f"{label:62s} {statistics.median(values):.3f}  (min {min(values):.3f})")


if __name__ == "__main__":
    main()

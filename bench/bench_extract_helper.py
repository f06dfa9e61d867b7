"""extract's drawing process (issue 21): whole-process runs of a one-photo ``extract`` alternating between
variants, with the command's own CPU, its helper's and the command's wait for the pictures.

    python bench/bench_extract_helper.py [--photo JPG] [--runs 5] [--baseline DIR]

Variants: ``baseline`` (another source tree, e.g. main, if given), ``default`` (this tree: the helper where a core
is idle), ``in-process`` (never the helper), ``forced`` (the helper whatever the load), ``imports-only`` (forced,
the frames not prepared beforehand). On a shared machine compare only within one run.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data" / "real-full" / "Apple_iPhone6s_0" / "nat" / "IMG_0374.JPG"


def child(variant: str, argv: list[str]) -> None:
    """Run the command line in this process, the variant's patches applied; report to stderr."""
    waited = [0.0]
    if variant != "baseline":
        from camforensics.core import figures
        from camforensics.runtime import forked

        if variant in ("forced", "imports-only"):
            forked.idle_cores = lambda: 1
        if variant == "in-process":
            forked.idle_cores = lambda: 0
        if variant == "imports-only":

            def imports_only() -> None:
                import matplotlib.backends.backend_agg
                import matplotlib.colorbar
                import matplotlib.figure  # noqa: F401

            figures.prepare_drawing = imports_only
        result = forked.Helper.result

        def timed(self, slot):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return result(self, slot)
            finally:
                waited[0] += time.perf_counter() - t

        forked.Helper.result = timed
    import camforensics.runtime.leave as ending

    def leave(code: object = 0) -> None:
        raise SystemExit(code)  # back here, for the usage figures

    ending.leave = leave  # type: ignore[assignment]
    sys.argv = ["camforensics", *argv]
    try:
        runpy.run_module("camforensics", run_name="__main__")
    except SystemExit:
        pass
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"SELF {me.ru_utime + me.ru_stime:.3f} CHILD {kids.ru_utime + kids.ru_stime:.3f} WAIT {waited[0]:.3f}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=Path, default=PHOTO)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--baseline", type=Path, help="another source tree (native kernels built there)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.child:
        child(args.child, rest)
        return
    variants = [("default", REPO), ("in-process", REPO), ("forced", REPO), ("imports-only", REPO)]
    if args.baseline:
        variants.insert(0, ("baseline", args.baseline.resolve()))
    rows: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name, _ in variants}
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for name, tree in variants:
                shutil.rmtree(Path(tmp) / "out", ignore_errors=True)
                t0 = time.perf_counter()
                cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "extract", str(args.photo),
                       "-o", str(Path(tmp) / "out"), "-q"]  # fmt: skip
                res = subprocess.run(cmd, env=dict(env, PYTHONPATH=str(tree)), cwd=tree, capture_output=True, text=True, check=True)
                wall = time.perf_counter() - t0
                m = re.search(r"SELF (\S+) CHILD (\S+) WAIT (\S+)", res.stderr)
                assert m, res.stderr
                rows[name].append((wall, float(m[1]), float(m[2]), float(m[3])))
            print(i, " ".join(f"{k}={v[-1][0]:.2f}" for k, v in rows.items()), f"load {os.getloadavg()[0]:.1f}", flush=True)
    print("variant: median wall s, CPU s (all), own CPU s, wait for pictures s; all walls")
    for name, v in rows.items():
        med = [statistics.median(x[j] for x in v) for j in range(4)]
        total = statistics.median(x[1] + x[2] for x in v)
        print(f"{name}: {med[0]:.2f}, {total:.2f}, {med[1]:.2f}, {med[3]:.2f};", " ".join(f"{x[0]:.2f}" for x in v))


if __name__ == "__main__":
    main()

"""Before and after on a shared machine: whole one-photo commands from two source trees, alternating, with extract's
drawing path fixed (issue 21).

    python bench/bench_one_photo_ab.py --baseline DIR [--runs 9] [--path helper|process] extract PHOTO
    python bench/bench_one_photo_ab.py --baseline DIR [--runs 9] identify PHOTO --library LIB

A one-photo ``extract`` draws its pictures in a forked helper only where a core is idle when it starts
(``camforensics.runtime.forked.idle_cores``): on a loaded machine most runs draw in process, some not, and a
whole-process comparison mixes the two paths. Here a ``sitecustomize`` module on the children's ``PYTHONPATH`` fixes
``idle_cores`` for every run: ``--path helper`` (1, the path of an idle machine, the default) or ``process`` (0).
Prints the median and minimum wall and CPU seconds (user + system of the command and its children) of each tree;
the CPU seconds are the comparable figures under load. The trees need their native kernels built.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SITECUSTOMIZE = '''
import importlib.abc, os, sys
IDLE = int(os.environ["CF_BENCH_IDLE_CORES"])
class _Fix(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "camforensics.runtime.forked":
            return None
        for finder in sys.meta_path:
            if finder is not self and (spec := getattr(finder, "find_spec", lambda *a: None)(name, path, target)):
                run = spec.loader.exec_module
                def exec_module(module):
                    run(module)
                    module.idle_cores = lambda: IDLE
                spec.loader.exec_module = exec_module
                return spec
        return None
sys.meta_path.insert(0, _Fix())
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True, help="the other source tree (kernels built)")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--path", choices=["helper", "process"], default="helper")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="extract PHOTO | identify PHOTO --library LIB")
    args = ap.parse_args()
    if not args.command or args.command[0] not in ("extract", "identify"):
        raise SystemExit("give the command: extract PHOTO, or identify PHOTO --library LIB")
    trees = {"this tree": REPO, "baseline": args.baseline.resolve()}
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as shim:
        Path(shim, "sitecustomize.py").write_text(SITECUSTOMIZE)
        for tree in trees.values():  # bytecode compiled once, as an installed package has it
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "camforensics")], check=True)
        for _ in range(args.runs):
            for name, tree in trees.items():
                with tempfile.TemporaryDirectory() as tmp:
                    out = ["-o", str(Path(tmp) / "out")] if args.command[0] == "extract" else []
                    cmd = [sys.executable, "-m", "camforensics", *args.command, *out, "-r", str(Path(tmp) / "r.json"), "-q"]
                    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{shim}", "COLUMNS": "80",
                           "CAMFORENSICS_REPORTS": tmp, "CF_BENCH_IDLE_CORES": "1" if args.path == "helper" else "0"}  # fmt: skip
                    t0, r0 = time.perf_counter(), os.times()
                    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
                    r1 = os.times()
                    if done.returncode not in (0, 1):
                        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
                    cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
                    rows[name].append((time.perf_counter() - t0, cpu))
    print(f"{' '.join(args.command[:1])}, path {args.path}, {args.runs} alternating runs, load now {os.getloadavg()[0]:.1f}")
    for name, runs in rows.items():
        wall, cpu = [r[0] for r in runs], [r[1] for r in runs]
        print(f"{name:10s} wall median {statistics.median(wall):.3f} s (min {min(wall):.3f})   "
              f"CPU median {statistics.median(cpu):.3f} s (min {min(cpu):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()

"""What an examiner waits for: whole-process wall times of the everyday commands (issue 21), median of 5, each
beside a prnu-python-style script doing the same job in the same run, and where a worker pool starts to pay.

    python bench/bench_examiner.py [--data ../shared/data/real-full] [--repeat 5] [--out bench_examiner.json]
                                   [--baseline DIR] [--skip help,identify,extract,anonymize,pool]

Figures (whole process: interpreter start, imports, reading, work, writing):
1. ``camforensics --help``.
2. ``camforensics identify PHOTO --library LIB``: a 12 MP photo (4032x3024) against a library of 10 fingerprints
   of its size (one enrolled from another photo of the same camera, nine random decoys), camera-model
   attribution included (the registry's default attributor); in-process (the default for one photo) and with a
   forced pool of 2 workers. Beside it: prnu-python's way (wavelet residual, then crosscorr_2d + PCE against
   each of the 10 fingerprints, float64 numpy FFTs), as its own process.
3. ``camforensics extract PHOTO -o OUT`` (residual .npy and the two matplotlib pictures) and ``--no-png``; beside
   it: prnu-python's ``extract_single`` + ``np.save``.
4. ``camforensics anonymize PHOTO -o OUT --method remove-fingerprint --remove-fingerprint LIB:DEVICE``, the other
   options default (anonymize has no default method).
5. Pool break-even: ``extract`` of 1, 2 and 4 photos of 12 MP with ``-j 1`` against ``-j 2``.
6. ``camforensics identify CROP --library LIB --no-model``: a 512x512 crop of the photo (cut at (1024, 1024) of the
   decoded frame, saved as PNG) searched at an unknown position against the same 10 fingerprints of 12 MP (every
   offset and orientation: the crop search, issue 20).

The machine is shared: the load average before and after each figure is recorded; compare figures of one run.
Each row also has the median CPU seconds (user + system of the command and its children), less sensitive to the
load than wall time. ``--baseline DIR`` (another source tree of camforensics, native kernels built there, e.g. a
``git worktree`` of an earlier commit; several, comma-separated) runs every camforensics command from it too,
alternating with this tree's runs, and records its figures under "baseline" ("baseline2", ... for the next ones):
a before/after in one run. The library's fingerprint spectra are
cached at enrolment (``LIB/cache/spectra``), as ``enroll`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the library is made by this tree's code, as its commands are run from it

PRNU_PYTHON_IDENTIFY = r"""
import sys, numpy as np
from PIL import Image
from camforensics.core.reference import reference_residual
from camforensics.io.library import FingerprintLibrary
img = np.asarray(Image.open(sys.argv[1]).convert("RGB"), dtype=np.float32)
w = reference_residual(img)                      # prnu-python extract_single: per-channel wavelet Wiener, rgb2gray
grey = img @ np.array([0.299, 0.587, 0.114], np.float32)
q = w * grey
lib = FingerprintLibrary(sys.argv[2])
best = []
for name in lib.names():
    k = lib.entry(name).load().astype(np.float64)
    a = q - q.mean(); b = k - k.mean()          # crosscorr_2d: full complex FFTs, float64, no cache
    cc = np.real(np.fft.ifft2(np.fft.fft2(a) * np.conj(np.fft.fft2(b)))) / (np.linalg.norm(a) * np.linalg.norm(b))
    peak = cc[0, 0]                              # pce: energy outside an 11x11 neighbourhood of the peak
    mask = np.ones_like(cc, bool); mask[np.ix_(np.r_[-5:6] % cc.shape[0], np.r_[-5:6] % cc.shape[1])] = False
    best.append((peak ** 2 / np.mean(cc[mask] ** 2), name))
print(max(best))
"""

PRNU_PYTHON_EXTRACT = r"""
import sys, numpy as np
from PIL import Image
from camforensics.core.reference import reference_residual
img = np.asarray(Image.open(sys.argv[1]).convert("RGB"), dtype=np.float32)
np.save(sys.argv[2], reference_residual(img))
"""


def load() -> float:
    return os.getloadavg()[0]


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system, the process and its children) seconds of one whole-process run."""
    t0 = time.perf_counter()
    r0 = os.times()
    # run in the tree's own folder: "python -m camforensics" imports from the working folder before PYTHONPATH
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=env["PYTHONPATH"])
    r1 = os.times()
    if res.returncode not in (0, 1):
        raise SystemExit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0, (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)


def wall(cmd: list[str], *, repeat: int, env: dict[str, str], baseline: list[dict[str, str]] | None = None) -> dict:
    """Median (and all) wall seconds of ``cmd`` as a whole process, and its median CPU seconds.

    ``baseline``: the environments of other source trees (``--baseline``); their runs of the same command alternate
    with this tree's, so all see the same load, and are reported under "baseline" (the first), "baseline2", ..."""
    bases = baseline or []
    times, cpus = [], []
    base_times: list[list[float]] = [[] for _ in bases]
    base_cpus: list[list[float]] = [[] for _ in bases]
    before = load()
    for _ in range(repeat):
        for i, b in enumerate(bases):
            t, c = _run(cmd, b)
            base_times[i].append(t)
            base_cpus[i].append(c)
        t, c = _run(cmd, env)
        times.append(t)
        cpus.append(c)
    row = {"median_s": round(statistics.median(times), 3), "all_s": [round(t, 3) for t in times],
           "median_cpu_s": round(statistics.median(cpus), 3),
           "load_before": round(before, 2), "load_after": round(load(), 2)}  # fmt: skip
    for i, b in enumerate(bases):
        row["baseline" if i == 0 else f"baseline{i + 1}"] = {
            "tree": b["PYTHONPATH"], "median_s": round(statistics.median(base_times[i]), 3),
            "all_s": [round(t, 3) for t in base_times[i]], "median_cpu_s": round(statistics.median(base_cpus[i]), 3)}  # fmt: skip
    return row


def make_library(photo_for_fingerprint: Path, lib: Path) -> None:
    from camforensics.io.library import FingerprintLibrary
    from camforensics.pipelines.enroll import enroll_device

    enroll_device([photo_for_fingerprint], name="same_camera", library=lib)
    library = FingerprintLibrary(lib)
    shape = library.entry("same_camera").shape
    rng = np.random.default_rng(1)
    for i in range(9):
        library.add(f"decoy_{i}", rng.normal(0, 1, shape).astype(np.float32), meta={}, durable=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "real-full")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--reference-repeat", type=int, default=None, help="runs of the prnu-python scripts (default: --repeat)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--skip", default="", help="comma-separated figures to skip: help,identify,extract,anonymize,pool,crop")
    ap.add_argument("--baseline", default=None,
                    help="another source tree of camforensics (e.g. 'git worktree add /tmp/base HEAD~5', native kernels "
                         "built there), or several, comma-separated: each camforensics command is also run from them, "
                         "alternating with this tree's runs")  # fmt: skip
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    ref_repeat = args.reference_repeat or args.repeat
    photos = sorted((args.data / "Apple_iPhone6s_0" / "nat").glob("*.JPG"))
    more = sorted((args.data / "Apple_iPhone8_0" / "nat").glob("*.JPG"))
    if len(photos) < 2:
        raise SystemExit(f"needs two photos of {args.data}/Apple_iPhone6s_0/nat (12 MP)")
    query, enrolled = photos[0], photos[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80"}
    base_trees = [Path(b).resolve() for b in args.baseline.split(",") if b] if args.baseline else []
    base_envs = [{**env, "PYTHONPATH": str(b)} for b in base_trees]
    cf = [sys.executable, "-m", "camforensics"]
    rows: dict[str, dict] = {
        "conditions": {"cpus": os.cpu_count(), "load_at_start": round(load(), 2), "repeat": args.repeat,
                       "nice": os.nice(0), "note": "shared machine: other jobs may run; compare within this run"}  # fmt: skip
    }

    def record(name: str, value: dict) -> None:
        rows[name] = value
        print(json.dumps({name: value}), flush=True)

    # An installed package has its bytecode compiled; Python writes it at the first import unless
    # PYTHONDONTWRITEBYTECODE is set (as in some sandboxes), where every run would compile the modules again.
    for tree in (REPO, *base_trees):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(tree).resolve() / "camforensics")], check=True)
    rows["conditions"]["bytecode"] = "compiled (python -m compileall) in each tree before the runs"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env["CAMFORENSICS_REPORTS"] = str(tmp / "reports")
        for b in base_envs:
            b["CAMFORENSICS_REPORTS"] = str(tmp / "reports")
        cmp = {"baseline": base_envs}
        if "help" not in skip:
            record("help", wall([*cf, "--help"], repeat=args.repeat, env=env, **cmp))
            record("help identify", wall([*cf, "identify", "--help"], repeat=args.repeat, env=env, **cmp))
        if {"identify", "anonymize", "crop"} - skip:
            make_library(enrolled, tmp / "lib")
        if "identify" not in skip:
            base = [*cf, "identify", str(query), "--library", str(tmp / "lib"), "-r", str(tmp / "id.json")]
            record("identify (auto: in-process)", wall(base, repeat=args.repeat, env=env, **cmp))
            record("identify -j 2 (pool)", wall([*base, "-j", "2"], repeat=args.repeat, env=env, **cmp))
            record("identify --no-model", wall([*base, "--no-model"], repeat=args.repeat, env=env, **cmp))
            record("prnu-python identify (10 fingerprints)",
                   wall([sys.executable, "-c", PRNU_PYTHON_IDENTIFY, str(query), str(tmp / "lib")], repeat=ref_repeat, env=env))  # fmt: skip
        if "extract" not in skip:
            out = tmp / "ex"
            record("extract", wall([*cf, "extract", str(query), "-o", str(out), "-r", str(tmp / "ex.json")], repeat=args.repeat, env=env, **cmp))  # fmt: skip
            record("extract --no-png", wall([*cf, "extract", str(query), "-o", str(out), "--no-png", "-r", str(tmp / "ex.json")], repeat=args.repeat, env=env, **cmp))  # fmt: skip
            record("prnu-python extract", wall([sys.executable, "-c", PRNU_PYTHON_EXTRACT, str(query), str(tmp / "w.npy")], repeat=ref_repeat, env=env))  # fmt: skip
        if "anonymize" not in skip:
            cmd = [*cf, "anonymize", str(query), "-o", str(tmp / "an"), "-r", str(tmp / "an.json"), "--method", "remove-fingerprint",
                   "--remove-fingerprint", f"{tmp / 'lib'}:same_camera"]  # fmt: skip
            record("anonymize --method remove-fingerprint (other options default)", wall(cmd, repeat=args.repeat, env=env, **cmp))
        if "crop" not in skip:
            from PIL import Image

            with Image.open(query) as im:
                im.convert("RGB").crop((1024, 1024, 1536, 1536)).save(tmp / "crop.png")
            cmd = [*cf, "identify", str(tmp / "crop.png"), "--library", str(tmp / "lib"), "--no-model", "-r", str(tmp / "crop.json")]
            record("identify a 512 crop, unknown position, 10 fingerprints of 12 MP (--no-model)",
                   wall(cmd, repeat=max(3, args.repeat // 2 + 1), env=env, **cmp))
        if "pool" not in skip and len(more) >= 2:
            sets = {1: [query], 2: [query, enrolled], 4: [query, enrolled, *more[:2]]}
            for n, files in sets.items():
                for j in (1, 2):
                    cmd = [*cf, "extract", *map(str, files), "-o", str(tmp / f"pool{n}"), "--no-png", "-j", str(j), "-r", str(tmp / "p.json")]  # fmt: skip
                    record(f"pool: extract {n} x 12 MP -j {j}", wall(cmd, repeat=max(3, args.repeat // 2 + 1), env=env, **cmp))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

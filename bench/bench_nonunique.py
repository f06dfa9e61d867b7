"""Non-unique artefact suppression, measured (issue 20): what each step does to the PCE between different bodies
of one camera model and to the own-device PCE.

    nice -n 10 python bench/bench_nonunique.py --data ../shared/data -o runs/nonunique

Every device gets two independent fingerprints (its images split alternately into two halves, or its two frames
for real-full); a PCE is between one half of a device and the other half of the same (own) or of another device
(rotation 0, exclusion 11, fingerprint against fingerprint). Each step is applied to both fingerprints:

- baseline: the engine's fingerprint (CFA sub-lattice zero-mean and DFT Wiener filter already applied);
- project: the mean of the other devices' fingerprints (the library, leaving out the two compared) projected out;
- sea: Lin & Li's spectrum equalization (window 7, ratio 2); sea-shared: ratio 3, only at the peaks that another
  device of the set (not one of the pair compared) has too;
- jpeg8 / cfa2: the same equalization only at the frequencies of the 8x8 JPEG grid / the 2x2 CFA period;
- axes1 / axes2 / axes3: the Fourier bins within 1, 2, 3 of the zero-frequency axes zeroed (``nonunique.axis_notch``,
  what ``FingerprintParams.axis_notch`` does at estimation; the fingerprints here are estimated with
  ``--axis-notch``, 0 by default, the engine's default);
- axes1-siblings / axes2-siblings: the axis notch only on the fingerprints of devices whose camera model has
  another body in the set (a library that knows each fingerprint's model, as enroll's EXIF make and model give
  it): one body of a model keeps its own row and column pattern;
- library-off / library: the product path: the first halves enrolled in a library (``FingerprintLibrary.add``, the
  EXIF make and model of each device's images in the entry, as enroll records them) and each second half ranked
  as a query by ``FingerprintIndex`` (rotation 0, exhaustive): ``SearchParams(sibling_notch=0)`` / the default
  (width 2 on the entries whose EXIF model the library holds more than once);
- combinations.

Sets: ``real-dev`` (8 devices at 1024x1024; flat fields, natural images for the two vivo iQOO U1x bodies, the one
same-model pair), the simulator (2 models x 3 bodies, 8 flat fields each, 1024x1024; ``--sim-seed``,
``--sim-bodies``), and ``real-full`` frames
centre-cropped to 3000x2000 (10 devices, one natural frame per half: no same-model bodies there; the Nikon
D3000/D70/D90 and the Canon bodies are the camera families).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from camforensics.core.fingerprint import estimate_fingerprint
from camforensics.core.nonunique import axis_notch, lattice_notch, peak_mask, project_out, shared_peaks, spectral_equalize
from camforensics.core.params import FingerprintParams
from camforensics.core.pce import pce_from_spectra, spectrum_of
from camforensics.io.images import load_image

Step = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _unit(k: np.ndarray) -> np.ndarray:
    return k / np.float32(np.linalg.norm(k) or 1.0)


PAIRWISE = {"project", "project+sea", "project+jpeg8"}  # steps that depend on the library mean of the pair

STEPS: dict[str, Step] = {
    "baseline": lambda k, m: k,
    "project": lambda k, m: project_out(k, m),
    "sea": lambda k, m: spectral_equalize(k),
    "sea-r3": lambda k, m: spectral_equalize(k, ratio=3.0),
    "jpeg8": lambda k, m: lattice_notch(k, 8),
    "cfa2": lambda k, m: lattice_notch(k, 2),
    "jpeg8+cfa2": lambda k, m: lattice_notch(lattice_notch(k, 8), 2),
    "project+sea": lambda k, m: spectral_equalize(project_out(k, m)),
    "project+jpeg8": lambda k, m: lattice_notch(project_out(k, m), 8),
    # ratio 3, only at the peaks that another device of the set (not one of the pair) has too: measure() builds
    # the mask of shared peaks for each pair and hands it in as the second argument.
    "sea-shared": lambda k, mask: spectral_equalize(k, ratio=3.0, only=mask),
    # the bins within 1, 2, 3 of the zero-frequency axes zeroed (axes1 = FingerprintParams.axis_notch's default)
    "axes1": lambda k, m: axis_notch(k, 1),
    "axes2": lambda k, m: axis_notch(k, 2),
    "axes3": lambda k, m: axis_notch(k, 3),
    # the same, only on the fingerprints of devices whose camera model has another body in the set (SIBLINGS)
    "axes1-siblings": lambda k, m: axis_notch(k, 1),
    "axes2-siblings": lambda k, m: axis_notch(k, 2),
}
SIBLINGS = {"axes1-siblings", "axes2-siblings"}  # applied only where the set holds another body of the model
LIBRARY = {"library-off": 0, "library": None}  # through FingerprintIndex: sibling_notch 0 / SearchParams' default
STEPS.update({name: STEPS["baseline"] for name in LIBRARY})  # placeholders: measure() ranks through the library
SHARED = {"sea-shared"}  # steps whose second argument is the mask of the peaks other devices share


def pce(a: np.ndarray, b: np.ndarray) -> float:
    return pce_from_spectra(spectrum_of(b), spectrum_of(a, conjugate=True), exclusion=11).pce


def measure(halves: tuple[dict, dict], model_of: dict[str, str], steps: dict[str, Step]) -> dict:
    """Own, same-model and other-device PCE of every step."""
    f0, f1 = halves
    devices = sorted(f0)
    units = {d: _unit(f0[d]) for d in devices}
    masks: list[tuple[str, np.ndarray]] = []
    if SHARED & set(steps):
        masks = [(d, peak_mask(f[d], ratio=3.0)) for f in (f0, f1) for d in devices]
    out = {}
    for name, step in steps.items():
        own, same, other = {}, {}, {}
        if name in LIBRARY:
            lib_pce = through_library(halves, LIBRARY[name])
        elif name not in PAIRWISE | SHARED:  # one filtered copy of each fingerprint serves every pair
            siblings = {d: sum(model_of[e] == model_of[d] for e in devices) > 1 for d in devices}
            g0 = {d: step(f0[d], None) if name not in SIBLINGS or siblings[d] else f0[d] for d in devices}
            g1 = {d: step(f1[d], None) if name not in SIBLINGS or siblings[d] else f1[d] for d in devices}
        for a, b in itertools.product(devices, devices):
            if name in LIBRARY:
                v = lib_pce[(a, b)]
            elif name in SHARED:
                mask = shared_peaks([m for d, m in masks if d not in (a, b)])
                v = pce(step(f0[a], mask), step(f1[b], mask))
            elif name in PAIRWISE:
                rest = [units[d] for d in devices if d not in (a, b)]
                m = np.mean(rest, axis=0) if rest else np.zeros_like(f0[a])
                v = pce(step(f0[a], m), step(f1[b], m))
            else:
                v = pce(g0[a], g1[b])
            if a == b:
                own[a] = v
            elif model_of[a] == model_of[b]:
                same[f"{a} / {b}"] = v
            else:
                other[f"{a} / {b}"] = v
        out[name] = {"own": own, "same_model": same, "other": other}
    return out


EXIF: dict[str, tuple[str | None, str | None]] = {}  # device -> its images' most common EXIF (make, model)


def through_library(halves: tuple[dict, dict], sibling_notch: int | None) -> dict[tuple[str, str], float]:
    """PCE of every (enrolled first half, queried second half) through the library search; notch as in measure()."""
    from camforensics.core.params import MatchParams
    from camforensics.io.library import FingerprintLibrary
    from camforensics.pipelines.search import FingerprintIndex, SearchParams

    f0, f1 = halves
    search = SearchParams(prefilter="off") if sibling_notch is None else SearchParams("off", sibling_notch=sibling_notch)
    with tempfile.TemporaryDirectory() as tmp:
        lib = FingerprintLibrary(Path(tmp) / "lib", create=True)
        for d, k in f0.items():
            make, model = EXIF.get(d, (None, None))
            lib.add(d, k, meta={"exif_make": make, "exif_model": model}, durable=False)
        index = FingerprintIndex(lib, match=MatchParams(rotations="none"), search=search, disk_cache=False)
        print(f"  library: notched {sorted(index.notch)}", file=sys.stderr)
        out = {}
        for b, k in f1.items():
            for c in index.rank(k, np.ones_like(k)).candidates:
                out[(c["device"], b)] = c["pce"]
        return out


def summary(res: dict) -> list[dict]:
    base = res["baseline"]["own"]
    rows = []
    for name, r in res.items():
        own = np.array(list(r["own"].values()))
        ratio = min(r["own"][d] / base[d] for d in base if base[d] > 0)
        matching = [r["own"][d] / base[d] for d in base if base[d] > 60]  # devices whose halves match at all
        rows.append({
            "step": name,
            "own_min": float(own.min()),
            "own_median": float(np.median(own)),
            "own_worst_ratio_to_baseline": float(ratio),
            "own_worst_ratio_matching": float(min(matching)) if matching else None,
            "same_model_max": max(r["same_model"].values()) if r["same_model"] else None,
            "other_max": max(r["other"].values()),
            "other_median": float(np.median(list(r["other"].values()))),
        })
    return rows


FP_PARAMS = FingerprintParams()  # main() sets the axis_notch of --axis-notch


def halves_of(files: dict[str, list[Path]], crop: tuple[int, int] | None = None) -> tuple[dict, dict]:
    f0, f1 = {}, {}
    for dev, paths in files.items():
        pix, exif = [], []
        for p in paths:
            img = load_image(p)
            x = img.pixels
            exif.append((img.info.exif_make, img.info.exif_model))
            if crop is not None:
                h, w = x.shape[:2]
                y0, x0 = (h - crop[0]) // 4 * 2, (w - crop[1]) // 4 * 2
                x = x[y0 : y0 + crop[0], x0 : x0 + crop[1]]
            pix.append(x)
        f0[dev] = estimate_fingerprint(pix[0::2], params=FP_PARAMS).k
        f1[dev] = estimate_fingerprint(pix[1::2], params=FP_PARAMS).k
        EXIF[dev] = max(set(exif), key=exif.count)
    return f0, f1


def real_dev(root: Path, per_device: int) -> tuple[dict, dict, dict]:
    files = {}
    for dev in sorted(p for p in root.iterdir() if p.is_dir()):
        flat = sorted((dev / "flat").glob("*"))
        files[dev.name] = (flat or sorted((dev / "nat").glob("*")))[:per_device]
    return *halves_of(files), {d: d.rsplit("_", 1)[0] for d in files}


def simulated(size: int, flats: int, *, seed: int = 0, bodies: int = 3) -> tuple[dict, dict, dict]:
    from camforensics.sim import SimulationSpec, simulate_corpus

    spec = SimulationSpec(n_models=2, n_devices=2 * bodies, n_flat=flats, n_nat=0, width=size, height=size, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        rows = simulate_corpus(tmp, spec)
        files: dict[str, list[Path]] = {}
        for r in rows:
            files.setdefault(r["device"], []).append(Path(tmp) / r["file"])
        model_of = {r["device"]: r["model"] for r in rows}
        return *halves_of(files), model_of


def real_full(root: Path, crop: tuple[int, int]) -> tuple[dict, dict, dict]:
    files = {
        d.name: sorted(f for f in d.rglob("*") if f.suffix.lower() in (".jpg", ".jpeg"))[:2]
        for d in sorted(root.iterdir())
        if d.is_dir()
    }
    return *halves_of(files, crop), {d: d for d in files}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--sets", default="real-dev,sim,real-full")
    ap.add_argument("--per-device", type=int, default=16, help="real-dev images per device (both halves)")
    ap.add_argument("--sim-size", type=int, default=1024)
    ap.add_argument("--sim-flats", type=int, default=8)
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps (baseline always)")
    ap.add_argument("--axis-notch", type=int, default=0,
                    help="the fingerprints' FingerprintParams.axis_notch (0: the engine's default)")
    ap.add_argument("--sim-seed", type=int, default=0)
    ap.add_argument("--sim-bodies", type=int, default=3, help="bodies per simulated model (2 models)")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    global FP_PARAMS
    FP_PARAMS = FingerprintParams(axis_notch=args.axis_notch)
    t0 = time.time()
    results = {}
    for name in args.sets.split(","):
        if name == "real-dev":
            f0, f1, model_of = real_dev(args.data / "real-dev", args.per_device)
        elif name == "sim":
            f0, f1, model_of = simulated(args.sim_size, args.sim_flats, seed=args.sim_seed, bodies=args.sim_bodies)
        elif name == "real-full":
            f0, f1, model_of = real_full(args.data / "real-full", (2000, 3000))
        else:
            raise SystemExit(f"unknown set {name!r}")
        steps = {k: v for k, v in STEPS.items() if k == "baseline" or k in args.steps.split(",")}
        res = measure((f0, f1), model_of, steps)
        results[name] = {"summary": summary(res), "pairs": res}
        print(f"{name}: {time.time() - t0:.0f} s", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nonunique.json").write_text(json.dumps(
        {"command": "python bench/bench_nonunique.py " + " ".join(argv if argv is not None else sys.argv[1:]),
         "results": results, "seconds": round(time.time() - t0, 1)}, indent=1))
    lines = ["| set | step | own min | own median | own worst vs baseline | own worst, devices matching at baseline (PCE > 60) "
             "| same-model max | other max | other median |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        for s in r["summary"]:
            sm = "-" if s["same_model_max"] is None else f"{s['same_model_max']:.1f}"
            wm = "-" if s["own_worst_ratio_matching"] is None else f"{100 * (s['own_worst_ratio_matching'] - 1):+.1f} %"
            lines.append(
                f"| {name} | {s['step']} | {s['own_min']:.0f} | {s['own_median']:.0f} | "
                f"{100 * (s['own_worst_ratio_to_baseline'] - 1):+.1f} % | {wm} | {sm} | {s['other_max']:.1f} | "
                f"{s['other_median']:.1f} |"
            )
    (args.out / "nonunique.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Crop search benchmark: real-dev crops attributed from full flat-field fingerprints, and the time per query.

    python bench/bench_crop.py                       # table + timing (about 2-4 minutes on 2 cores)
    python bench/bench_crop.py --crops 6 --seed 1    # more crops per device, other positions
    python bench/bench_crop.py --skip table          # timing only (no corpus needed)
    python bench/bench_crop.py --variance-window 0   # the table without the crop search's local normalisation

1. Table (needs ../shared/data/real-dev or CAMFORENSICS_REAL_DEV): every device with flat-field images is
   enrolled from them (1024x1024, the corpus's lossless crops of the sensor); from each device's natural images
   ``--crops`` 512x512 crops are cut at random positions on the 16-pixel MCU grid, written losslessly (PNG) to a
   temporary folder and identified against the library with the default crop search (every offset, stored order
   first, then the 8 orientations). The two vivo bodies have no flat-field images: their crops are unenrolled
   queries that must match nothing. In this corpus a device's flat and natural images share one crop geometry
   (MANIFEST.csv), so a crop cut at (y, x) of a natural image sits at (y, x) of its device's fingerprint: the
   table checks the offset found against that.
   The crops are cut from the decoded JPEG: this stands in for jpegtran's lossless -crop on MCU boundaries
   (not installed here). Luma is the same either way (8x8 blocks decode independently); chroma may differ in
   the outermost pixel ring, where libjpeg's fancy upsampling sees neighbours that a cropped file no longer has.
2. Time per query on one core (process pinned to one CPU, OMP_NUM_THREADS=1): a 512x512 query signal against a
   12 MP (3000x4000) fingerprint whose spectrum is cached, as identify does (match_query in the stored order,
   every offset searched), and the same search without the local normalisation (``crop_variance_window=0``,
   alternated with it); baseline in the same run: a naive search, full-size zero-padded float64 numpy FFTs of
   both arrays for every query, then the same peak and energy.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy: one BLAS thread for the timing section

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REAL_DEV = Path(os.environ.get("CAMFORENSICS_REAL_DEV", Path(__file__).resolve().parents[2] / "shared" / "data" / "real-dev"))
CROP = 512
MCU = 16  # 4:2:0 JPEG minimum coded unit: jpegtran -crop is lossless on this grid


def cut_crops(nat: list[Path], n: int, rng: np.random.Generator, out: Path) -> list[tuple[Path, tuple[int, int]]]:
    """``n`` 512x512 crops at random MCU-aligned positions of the natural images (round robin), saved as PNG."""
    from PIL import Image

    from camforensics.io.images import load_image

    crops = []
    for i in range(n):
        src = nat[i % len(nat)]
        rgb = load_image(src).pixels  # stored (sensor) order, EXIF orientation not applied
        h, w = rgb.shape[:2]
        y = int(rng.integers(0, (h - CROP) // MCU + 1)) * MCU
        x = int(rng.integers(0, (w - CROP) // MCU + 1)) * MCU
        path = out / f"{src.parent.parent.name}__{src.stem}__{y}_{x}.png"
        Image.fromarray(rgb[y : y + CROP, x : x + CROP]).save(path)
        crops.append((path, (y, x)))
    return crops


def table(args: argparse.Namespace) -> None:
    from camforensics.core.params import MatchParams
    from camforensics.pipelines.enroll import enroll_device
    from camforensics.pipelines.identify import identify_images

    if not args.real_dev.is_dir():
        print(f"table: real-dev corpus not found at {args.real_dev}; skipped")
        return
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench_crop_") as tmp:
        tmp = Path(tmp)
        lib = tmp / "lib"
        truth: dict[str, tuple[str, tuple[int, int]]] = {}
        enrolled = []
        t0 = time.perf_counter()
        for folder in sorted(p for p in args.real_dev.iterdir() if p.is_dir()):
            flat = sorted((folder / "flat").glob("*.jpg")) if (folder / "flat").is_dir() else []
            if flat:
                enroll_device(flat, name=folder.name, library=lib)
                enrolled.append(folder.name)
            for path, offset in cut_crops(sorted((folder / "nat").glob("*.jpg")), args.crops, rng, tmp):
                truth[path.name] = (folder.name, offset)
        t_enroll = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = identify_images(sorted(tmp / name for name in truth), library=lib,
                              match=MatchParams(crop_variance_window=args.variance_window))
        t_identify = time.perf_counter() - t0
    rows: dict[str, dict] = {}
    for r in rep.results:
        device, offset = truth[Path(r["input"]["path"]).name]
        row = rows.setdefault(device, {"crops": 0, "correct": 0, "wrong": 0, "none": 0, "offset_ok": 0, "pce": [], "thr": []})
        row["crops"] += 1
        d = r["decision"]
        row["thr"].append(d["threshold"])
        if not d["match"]:
            row["none"] += 1
            best = r["candidates"][0]
            row["pce"].append(f"{best['pce']:.0f}({'own' if best['device'] == device else best['device']})")
            continue
        row["pce"].append(f"{d['pce']:.0f}")
        if d["device"] == device:
            row["correct"] += 1
            row["offset_ok"] += d["crop_offset"] == list(offset) and d["rotation"] == 0 and not d["mirrored"]
        else:
            row["wrong"] += 1
    print(f"\nreal-dev: {len(enrolled)} devices enrolled from their flat-field images (enroll {t_enroll:.0f} s); "
          f"{len(truth)} crops of {CROP}x{CROP} identified in {t_identify:.0f} s "
          f"({t_identify / len(truth):.2f} s per crop against {len(enrolled)} fingerprints, 2 cores)\n")
    print("| device | enrolled | crops | correct | wrong device | no match | offset = true | threshold | PCE of the decision |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for device, row in rows.items():
        print(
            f"| {device} | {'yes' if device in enrolled else 'no'} | {row['crops']} | {row['correct']} | {row['wrong']} | "
            f"{row['none']} | {row['offset_ok']}/{row['correct']} | {statistics.median(row['thr']):.1f} | {' '.join(row['pce'])} |"
        )
    print("\n(no match: the best candidate's PCE and device in brackets, 'own' for the crop's device; threshold: "
          "median over the crops, raised for the offsets and orientations searched)")


def naive_search(q: np.ndarray, k: np.ndarray, exclusion: int = 11) -> tuple[float, tuple[int, int]]:
    """Reference-style crop search: zero-padded float64 numpy FFTs of both arrays, every time."""
    hh, ww = k.shape
    h, w = q.shape
    pad = np.zeros((hh, ww))
    pad[:h, :w] = q - q.mean()
    cc = np.fft.irfft2(np.conj(np.fft.rfft2(pad)) * np.fft.rfft2(k - k.mean()), s=(hh, ww))
    window = cc[: hh - h + 1, : ww - w + 1]
    py, px = np.unravel_index(int(np.argmax(window)), window.shape)
    half = exclusion // 2
    near = cc[np.ix_(np.arange(py - half, py + half + 1) % hh, np.arange(px - half, px + half + 1) % ww)]
    energy = (np.sum(cc**2) - np.sum(near**2)) / (cc.size - near.size)
    return float(cc[py, px] ** 2 / energy), (int(py), int(px))


def timing(args: argparse.Namespace) -> None:
    from camforensics.core.cropsearch import energy_spectrum
    from camforensics.core.matching import Query, match_query
    from camforensics.core.params import MatchParams
    from camforensics.core.pce import spectrum_of
    from camforensics.core.residual import extract_residual, to_grey

    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    rng = np.random.default_rng(0)
    hh, ww = 3000, 4000
    k = rng.normal(0, 0.01, (hh, ww)).astype(np.float32)
    y, x = 1232, 2048
    img = np.clip(rng.uniform(60, 200, (CROP, CROP, 3)) * (1 + k[y : y + CROP, x : x + CROP, None]), 0, 255).astype(np.uint8)
    t0 = time.perf_counter()
    residual, grey = extract_residual(img), to_grey(img)
    t_residual = time.perf_counter() - t0
    spectrum = spectrum_of(k, conjugate=True)  # cached per fingerprint by identify (SpectrumCache)
    match = MatchParams(rotations="none")
    plain = MatchParams(rotations="none", crop_variance_window=0)  # without the local normalisation (issue 20)
    times, plain_times = [], []
    t0 = time.perf_counter()
    energy_spectrum(spectrum)  # the fingerprint's coarse energy map: once per fingerprint, cached with its spectrum
    t_energy = time.perf_counter() - t0
    for _ in range(args.repeat):  # alternated, so that both see the same load
        t0 = time.perf_counter()
        res = match_query(Query(residual, grey), spectrum, match=match)  # a fresh query: its padded FFT counted
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        res_plain = match_query(Query(residual, grey), spectrum, match=plain)
        plain_times.append(time.perf_counter() - t0)
    base = []
    for _ in range(max(2, args.repeat // 2)):
        t0 = time.perf_counter()
        base_pce, base_offset = naive_search(residual * grey, k)
        base.append(time.perf_counter() - t0)
    print(f"\ntime per query, one core (CPU {cpu}), {CROP}x{CROP} query vs {ww}x{hh} fingerprint, every offset "
          f"({res.n_hypotheses} hypotheses); load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores:")
    print("| method | s per query (median) | min | PCE | offset |")
    print("| --- | ---: | ---: | ---: | --- |")
    print(f"| camforensics match_query (cached fingerprint spectrum, complex64, pruned padded FFT) | "
          f"{statistics.median(times):.3f} | {min(times):.3f} | {res.pce:.0f} | {list(res.crop_offset)} |")
    print(f"| the same without the local normalisation (crop_variance_window=0) | {statistics.median(plain_times):.3f} | "
          f"{min(plain_times):.3f} | {res_plain.pce:.0f} | {list(res_plain.crop_offset)} |")
    print(f"| baseline: naive zero-padded float64 numpy FFT search | {statistics.median(base):.3f} | {min(base):.3f} | "
          f"{base_pce:.0f} | {list(base_offset)} |")
    print(f"speed-up {statistics.median(base) / statistics.median(times):.1f}x; true offset {[y, x]}; the query's "
          f"residual extraction (not included above) {t_residual:.3f} s; the fingerprint's energy map for the local "
          f"normalisation, once per fingerprint (not included above) {t_energy:.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real-dev", type=Path, default=REAL_DEV, help="the real-dev corpus folder")
    ap.add_argument("--crops", type=int, default=4, help="512x512 crops per device")
    ap.add_argument("--seed", type=int, default=0, help="seed of the crop positions")
    ap.add_argument("--variance-window", type=int, default=15,
                    help="the table's MatchParams.crop_variance_window (0: the crop search before issue 20's local normalisation)")
    ap.add_argument("--repeat", type=int, default=7, help="timed repetitions of the per-query search")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: table,timing")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if "table" not in skip:
        table(args)
    if "timing" not in skip:
        timing(args)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

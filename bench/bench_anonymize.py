"""Anonymization benchmark on the real-dev corpus: fingerprint removal, fingerprint-copy attack, baselines.

    python bench/bench_anonymize.py            # about 7 minutes on 2 shared cores (14 under load)
    python bench/bench_anonymize.py --keep DIR # keep the libraries, outputs and reports in DIR
    python bench/bench_anonymize.py --skip spoof,baselines  # the removal table only

Needs ../shared/data/real-dev (or CAMFORENSICS_REAL_DEV); prints a note and exits 0 when it is absent. Nothing is
written into the repository: libraries, anonymized images and reports go to a temporary folder.

Every device with flat-field images is enrolled three times: from all of them (library ``all``, the analyst's
and the attacker's fingerprint of the task's main table), from the even-numbered and from the odd-numbered ones
(``even``: the attacker's, ``odd``: an independent analyst's). The natural images of those devices are then
anonymized through the same pipeline as ``camforensics anonymize`` (:func:`anonymize_images`):

1. remove-fingerprint with the ``all`` fingerprint, measured against the same fingerprint, then removal with
   ``even`` measured against ``odd`` (an analyst whose fingerprint estimate the attacker never saw): plain
   (overshoot 1, not debiased), debiased by the ``even`` fingerprint's split-half reliability at overshoot 1, and
   the default (debiased, overshoot 1.15);
2. spoof: each device's natural images made to match the next device (cyclic order), the source's own
   fingerprint removed first; planted ``all`` / checked ``all`` at the default target PCE 120, then planted
   ``even`` / checked ``odd`` at target PCE 120, 1000 and 4000;
3. baselines (median 5x5, Gaussian 5x5, JPEG q75, wavelet denoise sigma0 3), measured against ``all``.

PCE threshold 60 everywhere; PSNR and SSIM (mean over R, G, B) of each written PNG against its input.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REAL_DEV = Path(os.environ.get("CAMFORENSICS_REAL_DEV", Path(__file__).resolve().parents[2] / "shared" / "data" / "real-dev"))
THRESHOLD = 60.0
# (fingerprint removed, fingerprint checked, overshoot, debias): against the estimate removed, then an analyst with
# an independent estimate: plain, debiased, and the defaults (debiased, overshoot 1.15).
REMOVAL_SETTINGS = (
    ("all", "all", 1.0, False),
    ("even", "odd", 1.0, False),
    ("even", "odd", 1.0, True),
    ("even", "odd", 1.15, True),
)
# (fingerprint planted, fingerprint checked, target PCE of the fitted strength).
SPOOF_SETTINGS = (("all", "all", 120.0), ("even", "odd", 120.0), ("even", "odd", 1000.0), ("even", "odd", 4000.0))


def enroll_libraries(devices: list[Path], root: Path) -> dict[str, Path]:
    """Libraries ``all``, ``even``, ``odd`` of the devices' flat-field images."""
    from camforensics.pipelines.enroll import enroll_device

    libs = {name: root / f"lib_{name}" for name in ("all", "even", "odd")}
    for dev in devices:
        flat = sorted((dev / "flat").glob("*.jpg"))
        for name, subset in (("all", flat), ("even", flat[0::2]), ("odd", flat[1::2])):
            enroll_device(subset, name=dev.name, library=libs[name])
    return libs


def run(nat: list[Path], out: Path, options, **kwargs) -> list[dict]:
    """anonymize_images over ``nat`` with AnonymizeParams(options, **kwargs); the ok results (errors are raised)."""
    from camforensics.pipelines.anonymize import AnonymizeParams, anonymize_images

    report = anonymize_images(nat, out, params=AnonymizeParams(options, **kwargs))
    results = list(report.iter_results())
    bad = [r for r in results if r["status"] != "ok"]
    if bad:
        raise SystemExit(f"failed: {bad[0]['input'].get('path')}: {bad[0]['error']['message']}")
    return results


def own(result: dict, device: str) -> dict:
    """The library_check record of ``device``."""
    return next(c for c in result["library_check"] if c["device"] == device)


def fmt_row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def removal_table(libs: dict[str, Path], nat: dict[str, list[Path]], work: Path) -> None:
    from camforensics.core.anonymize import RemovalParams
    from camforensics.pipelines.anonymize.fingerprint import DeviceRef, FingerprintOptions

    print("\n## remove-fingerprint (natural images of the enrolled devices)\n")
    print(fmt_row(["device", "images", "removed / checked", "overshoot", "debias", "PCE before (median)",
                   "PCE after (median / max)", "below 60 after", "PSNR mean / min (dB)", "SSIM mean", "s per image"]))
    print(fmt_row(["---"] * 11))
    totals: dict[str, list] = {}
    for removed, checked, overshoot, debias in REMOVAL_SETTINGS:
        setting = f"removed {removed} / checked {checked}, overshoot {overshoot:g}, debias {'on' if debias else 'off'}"
        totals[setting] = []
        for dev, files in nat.items():
            t0 = time.perf_counter()
            results = run(files, work / f"rm_{removed}_{overshoot:g}_{debias}_{dev}", FingerprintOptions(
                              "remove-fingerprint", remove=DeviceRef(str(libs[removed]), dev),
                              removal=RemovalParams(overshoot=overshoot), debias=debias),
                          verify_library=str(libs[checked]))
            dt = (time.perf_counter() - t0) / len(files)
            rows = [(own(r, dev), r["quality"]) for r in results]
            totals[setting] += rows
            before = statistics.median(c["pce_before"] for c, _ in rows)
            after = [c["pce_after"] for c, _ in rows]
            below = sum(a < THRESHOLD for a in after)
            psnrs = [q["psnr"] for _, q in rows]
            print(fmt_row([dev, len(rows), f"{removed} / {checked}", f"{overshoot:g}", "on" if debias else "off",
                           f"{before:.0f}",
                           f"{statistics.median(after):.1f} / {max(after):.1f}",
                           f"{below}/{len(rows)}", f"{statistics.mean(psnrs):.1f} / {min(psnrs):.1f}",
                           f"{statistics.mean(q['ssim'] for _, q in rows):.4f}", f"{dt:.1f}"]))
    print()
    for setting, rows in totals.items():
        below = sum(c["pce_after"] < THRESHOLD for c, _ in rows)
        before_ok = sum(c["pce_before"] > THRESHOLD for c, _ in rows)
        psnrs = [q["psnr"] for _, q in rows]
        print(f"- {setting}: {below}/{len(rows)} images below PCE 60 after removal ({100 * below / len(rows):.0f} %); "
              f"{before_ok}/{len(rows)} matched before; PSNR mean {statistics.mean(psnrs):.1f} dB, min "
              f"{min(psnrs):.1f} dB; SSIM mean {statistics.mean(q['ssim'] for _, q in rows):.4f}")


def spoof_table(libs: dict[str, Path], nat: dict[str, list[Path]], work: Path) -> None:
    from camforensics.core.anonymize import PlantParams
    from camforensics.pipelines.anonymize.fingerprint import DeviceRef, FingerprintOptions

    print("\n## spoof (fingerprint-copy attack, source fingerprint removed first)\n")
    print(fmt_row(["source -> target", "images", "planted / checked", "target PCE", "target PCE before (max)",
                   "target PCE after (min)", "target > 60 after", "source PCE after (max)", "PSNR mean / min (dB)"]))
    print(fmt_row(["---"] * 9))
    names = list(nat)
    totals: dict[str, list] = {}
    for planted, checked, target_pce in SPOOF_SETTINGS:
        setting = f"planted {planted} / checked {checked}, target PCE {target_pce:g}"
        totals[setting] = []
        for i, src in enumerate(names):
            tgt = names[(i + 1) % len(names)]
            results = run(nat[src], work / f"sp_{planted}_{target_pce:g}_{src}", FingerprintOptions(
                              "spoof", spoof=DeviceRef(str(libs[planted]), tgt), remove=DeviceRef(str(libs[planted]), src),
                              plant=PlantParams(target_pce=target_pce)),
                          verify_library=str(libs[checked]))
            t = [own(r, tgt) for r in results]
            s = [own(r, src) for r in results]
            psnrs = [r["quality"]["psnr"] for r in results]
            ok = [c["pce_after"] > THRESHOLD for c in t]
            totals[setting] += [(o, p) for o, p in zip(ok, psnrs)]
            print(fmt_row([f"{src} -> {tgt}", len(results), f"{planted} / {checked}", f"{target_pce:g}",
                           f"{max(c['pce_before'] for c in t):.1f}", f"{min(c['pce_after'] for c in t):.0f}",
                           f"{sum(ok)}/{len(ok)}", f"{max(c['pce_after'] for c in s):.1f}",
                           f"{statistics.mean(psnrs):.1f} / {min(psnrs):.1f}"]))
    print()
    for setting, rows in totals.items():
        ok = [o for o, _ in rows]
        psnrs = [p for _, p in rows]
        print(f"- {setting}: {sum(ok)}/{len(ok)} spoofed images above PCE 60 against the target; PSNR mean "
              f"{statistics.mean(psnrs):.1f} dB, min {min(psnrs):.1f} dB")


def baseline_table(libs: dict[str, Path], nat: dict[str, list[Path]], work: Path) -> None:
    from camforensics.pipelines.anonymize.baselines import BaselineOptions

    print("\n## baselines (own-device PCE against the 'all' fingerprints)\n")
    print(fmt_row(["method", "images", "below 60 after", "PCE after median / max", "PSNR mean / min (dB)", "SSIM mean"]))
    print(fmt_row(["---"] * 6))
    files = [f for fs in nat.values() for f in fs]
    for method, label in (("median", "median 5x5"), ("gaussian", "Gaussian 5x5"), ("jpeg", "JPEG q75"),
                          ("denoise", "wavelet denoise sigma0 3")):
        results = run(files, work / f"bl_{method}", BaselineOptions(method), verify_library=str(libs["all"]))
        after = [own(r, Path(r["input"]["path"]).parts[-3])["pce_after"] for r in results]
        psnrs = [r["quality"]["psnr"] for r in results]
        print(fmt_row([label, len(results), f"{sum(a < THRESHOLD for a in after)}/{len(after)}",
                       f"{statistics.median(after):.0f} / {max(after):.0f}",
                       f"{statistics.mean(psnrs):.1f} / {min(psnrs):.1f}",
                       f"{statistics.mean(r['quality']['ssim'] for r in results):.4f}"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", type=Path, help="keep libraries, outputs and reports in this folder")
    ap.add_argument("--skip", default="", help="comma list of sections to leave out: removal,spoof,baselines")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    unknown = skip - {"removal", "spoof", "baselines"}
    if unknown:
        ap.error(f"unknown section(s) to skip: {', '.join(sorted(unknown))}")
    if not REAL_DEV.is_dir():
        print(f"skipped: the real-dev corpus is not at {REAL_DEV} (set CAMFORENSICS_REAL_DEV)")
        return 0
    devices = sorted(d for d in REAL_DEV.iterdir() if d.is_dir() and any((d / "flat").glob("*.jpg")))
    nat = {d.name: sorted((d / "nat").glob("*.jpg")) for d in devices}
    nat = {k: v for k, v in nat.items() if v}
    if not nat:
        print(f"skipped: no device in {REAL_DEV} has both flat/ and nat/ images")
        return 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_anon_") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        libs = enroll_libraries(devices, work)
        print(f"# bench_anonymize: {len(devices)} devices enrolled from flat/, {sum(map(len, nat.values()))} natural "
              f"images ({REAL_DEV})")
        if "removal" not in skip:
            removal_table(libs, nat, work)
        if "spoof" not in skip:
            spoof_table(libs, nat, work)
        if "baselines" not in skip:
            baseline_table(libs, nat, work)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

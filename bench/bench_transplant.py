"""Speed of the camera-trace transplant (issue 19's targets: a profile from 8-30 photos in <= 30 s; a 12 MP photo
anonymized in <= 10 s on 2 cores).

    python bench/bench_transplant.py [--data ../shared/data] [--refine]

- profile: ``build_profile`` on the natural photos of three models of real-dev / real-models (8, 15 and 30 of
  them; 1024x1024 crops), wall time of the whole build (decoding included);
- anonymize: one 12 MP frame of real-full (Canon PowerShot S100, 4000x3000) through ``anonymize_one`` toward the
  shipped Canon IXUS 125 HS profile, as ``camforensics anonymize --target ... --judges none`` runs it (read,
  transplant, JPEG with the target's tables, PSNR/SSIM); with ``--refine``, also with the transfer refinement on the
  shipped surrogates (its defaults, core/params.py: centred 1024 window, 30 steps, epsilon 8, PSNR floor 36.5 dB; ``--threads``
  torch threads).

Prints one JSON object. Skips (exit 0, a line on stderr) when the shared data are absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--refine", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    data = Path(args.data)
    if not (data / "real-full").is_dir():
        print(f"skipped: {data}/real-full is absent", file=sys.stderr)
        return
    from camforensics.pipelines.anonymize.batch import AnonymizeParams, AnonymizeSetup, anonymize_one
    from camforensics.pipelines.anonymize.refine import refine_options
    from camforensics.pipelines.anonymize.transplant import transplant_options
    from camforensics.pipelines.profile import ProfileParams, build_profile

    out: dict = {"profile": [], "anonymize": []}
    for folder, n in (("real-models/Apple_iPhone8_0", 8), ("real-models/Nikon_D90_0", 15), ("real-dev/LG_D605_0", 30)):
        files = sorted((data / folder).rglob("*.[jJ][pP]*[gG]"))[:n]
        t0 = time.perf_counter()
        prof, _ = build_profile(files, params=ProfileParams(min_photos=1))
        out["profile"].append({"model": prof.name, "n_photos": len(files), "seconds": round(time.perf_counter() - t0, 2)})
    frame = data / "real-full/Canon_PowerShotS100_0/nat/img_4074.jpg"
    variants = [("transplant", None)]
    if args.refine:
        variants.append(("transplant+refine", refine_options("surrogates", threads=args.threads)))
    for name, refine in variants:
        opts = transplant_options("transplant", "Canon IXUS 125 HS", refine=refine)
        with tempfile.TemporaryDirectory() as tmp:
            setup = AnonymizeSetup(AnonymizeParams(options=opts, image_format="jpeg", check=False), tmp, frozenset())
            state = setup()
            record: dict = {}
            t0 = time.perf_counter()
            anonymize_one(frame, state, record)
            dt = time.perf_counter() - t0
        w, h = record["input"]["width"], record["input"]["height"]
        out["anonymize"].append({"method": name, "megapixels": round(w * h / 1e6, 1), "seconds": round(dt, 2),
                                 "psnr": round(record["quality"]["psnr"], 2), "ssim": round(record["quality"]["ssim"], 4)})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""FGSM / PGD against a surrogate attributor, judged by the registered attributor panel on unseen images.

    camforensics train attributor ../shared/data/real-dev -o runs/surrogate-fd --preprocessor FD \
        --architecture bondi --width 16 --epochs 8 --seed 0 --threads 1 --quiet        # the attacked surrogate
    python bench/bench_adversarial.py runs/surrogate-fd [--epsilon 2] [--target "Wiko RIDGE 4G"]

The surrogate is trained with the shipped attributors' split (same seed and split settings) but another
preprocessor (FD), so its test images are unseen by it and by the judges, and the judges are not the attacked
network (a transfer attack, as Cama's comparison). For each of FGSM, PGD and targeted PGD the script runs
``camforensics anonymize`` on the run's test images and prints, per judge, the accuracy (top-1 = true camera
model) before and after, and for the targeted attack the share of images (not already of the target model) whose
top-1 became the target; plus PSNR and the surrogate's own success. Outputs go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def summarise(report: Path, target: str | None) -> list[str]:
    doc = json.loads(report.read_text())
    results = [r for r in doc["results"] if r["status"] == "ok"]
    s = doc["summary"]
    cells = [f"{s['psnr_mean']:.1f} / {s['psnr_min']:.1f}", f"{s['surrogate']['success_rate']:.2f}"]
    for judge in sorted(s.get("judges", {})):
        verdicts = [next(q for q in r["judges"] if q["judge"] == judge) for r in results]
        before = sum(q["before"]["model"] == q["true_class"] for q in verdicts) / len(verdicts)
        after = sum(q["after"]["model"] == q["true_class"] for q in verdicts) / len(verdicts)
        cell = f"{before:.2f} -> {after:.2f}"
        if target is not None:
            eligible = [q for q in verdicts if q["true_class"] != target]
            hits = sum(bool(q.get("after_is_target")) for q in eligible)
            cell += f"; target {hits}/{len(eligible)}"
        cells.append(cell)
    return cells


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="surrogate training run (best.pt, split.json)")
    ap.add_argument("--epsilon", type=float, default=2.0, help="L_inf radius, 0..255 units")
    ap.add_argument("--target", default="Wiko RIDGE 4G", help="target class of the targeted PGD")
    args = ap.parse_args()
    split = json.loads((args.run / "split.json").read_text())
    root = Path(split["dataset"]["root"])
    images = [str(root / im["path"]) for im in split["splits"]["test"]["images"]]
    if not images:
        print("the run's split has no test images", file=sys.stderr)
        return 1
    runs = [("fgsm", "fgsm", None), ("pgd", "pgd", None), ("pgd targeted", "pgd", args.target)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, method, target in runs:
            report = Path(tmp) / f"{label.replace(' ', '_')}.json"
            cmd = ["camforensics", "anonymize", *images, "-o", str(Path(tmp) / label.replace(" ", "_")),
                   "--method", method, "--attack-model", str(args.run / "best.pt"), "--epsilon", str(args.epsilon),
                   "-r", str(report), "-q"]  # fmt: skip
            if target:
                cmd += ["--target", target]
            subprocess.run(cmd, check=True)
            rows.append([label, *summarise(report, target)])
            judges = sorted(json.loads(report.read_text())["summary"]["judges"])
    print(f"{len(images)} test images of {args.run}, epsilon {args.epsilon:g}; judges: accuracy before -> after")
    print("| attack | PSNR mean / min | surrogate success | " + " | ".join(judges) + " |")
    print("| --- " * (3 + len(judges)) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

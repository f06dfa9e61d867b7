"""The ceiling of a targeted anonymization: how often the judges name the true camera model of genuine held-out
photos of each target model (a perfect transplant makes a photo *of* the target camera, and the judges cannot be
expected to name the target of an anonymized photo much more often than they name it on the camera's own photos).

    python bench/bench_judge_ceiling.py FOLDER [FOLDER ...] [--report OUT/report.json ...] [--threads 1] [-o FILE]

Each FOLDER is a labelled data set (``<device>/<content>/<file>`` with a MANIFEST.csv, as
``bench/judge_heldout_folder.py`` links the judges' test split, or ``real-full/``): every natural photo in it is
attributed by each registered judge (the shipped panel's members, as ``evaluate anonymization`` reads them) and
counted per true camera model. Photos a judge trained on must not be in the folders: use the judges' test split and
the real-full frames (``--test-only`` for the judges). With ``--report`` (an ``evaluate anonymization`` report.json),
the (photo, target) pairs of its targeted methods are read and the ceiling of that table is printed: per judge, the
mean over the pairs of the judge's accuracy on genuine photos of the pair's target (pairs whose target has no genuine
photo in the folders are counted apart).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def per_class_accuracy(verdicts: list[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    """(hits, photos) per true class key from (true class, verdict) pairs, classes compared by their key."""
    from camforensics.inference.anonymizer import class_key

    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for true, said in verdicts:
        k = class_key(true)
        out[k][0] += int(class_key(said) == k)
        out[k][1] += 1
    return {k: (h, n) for k, (h, n) in out.items()}


def ceiling(accuracy: dict[str, tuple[int, int]], targets: list[str]) -> tuple[float | None, int]:
    """Mean over ``targets`` of the accuracy on genuine photos of each (None when no target has a genuine photo),
    and how many targets had none (left out of the mean)."""
    from camforensics.inference.anonymizer import class_key

    rates = [accuracy[class_key(t)][0] / accuracy[class_key(t)][1] for t in targets if class_key(t) in accuracy]
    return (sum(rates) / len(rates) if rates else None), len(targets) - len(rates)


def report_targets(path: Path) -> list[str]:
    """The targets of the (photo, target) pairs of a report's targeted methods (one per photo: the first such method)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    first: dict[str, str] = {}
    for r in doc.get("results", []):
        target = ((r.get("method") or {}).get("parameters") or {}).get("target")
        if r.get("status") == "ok" and target:
            first.setdefault(r["input"]["path"], target)
    return list(first.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--report", action="append", default=[], type=Path, help="an evaluate anonymization report.json")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--output", type=Path)
    a = ap.parse_args(argv)

    from camforensics.inference.attribution import AttributionParams
    from camforensics.io.datasets import scan_dataset
    from camforensics.io.images import load_image
    from camforensics.pipelines.anonymize.judges import judge_panel, top1

    judges = judge_panel("all", None, threads=a.threads).load()
    params = AttributionParams(top_k=1)
    verdicts: dict[str, list[tuple[str, str]]] = {j.entry.name: [] for j in judges}
    for folder in a.folders:
        for rec in sorted(scan_dataset(folder).records):
            if not rec.content.lower().startswith("nat"):
                continue
            pixels = load_image(rec.path).pixels
            for j in judges:
                verdicts[j.entry.name].append((rec.model_id, top1(pixels, j, params)["model"]))
    acc = {name: per_class_accuracy(v) for name, v in verdicts.items()}
    out: dict = {"folders": [str(f) for f in a.folders], "accuracy": {n: {k: list(v) for k, v in c.items()} for n, c in acc.items()}}
    print(f"{len(next(iter(verdicts.values())))} genuine natural photos; accuracy (top-1 = true model) per judge:")
    for name, c in acc.items():
        hits, n = sum(h for h, _ in c.values()), sum(m for _, m in c.values())
        per = ", ".join(f"{k} {h}/{m}" for k, (h, m) in sorted(c.items()))
        print(f"  {name}: {100 * hits / n:.1f} % over photos, {100 * sum(h / m for h, m in c.values()) / len(c):.1f} % "
              f"mean over {len(c)} models  [{per}]")  # fmt: skip
    for rep in a.report:
        targets = report_targets(rep)
        cells = {name: ceiling(c, targets) for name, c in acc.items()}
        out.setdefault("ceilings", {})[str(rep)] = {n: {"ceiling": v, "targets_without_photos": m} for n, (v, m) in cells.items()}
        text = " | ".join(f"{n.replace('attributor-', '')} {'-' if v is None else f'{100 * v:.1f} %'}" for n, (v, _) in cells.items())
        vals = [v for v, _ in cells.values() if v is not None]
        mean = f"{100 * sum(vals) / len(vals):.1f} %" if vals else "-"
        print(f"{rep}: {len(targets)} pairs; ceiling {text} | mean {mean}; targets without genuine photos: "
              f"{next(iter(cells.values()))[1]}")  # fmt: skip
    if a.output:
        a.output.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

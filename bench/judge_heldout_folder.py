"""Link the natural photos of the judges' test split into one folder, for `camforensics evaluate anonymization`.

    python bench/judge_heldout_folder.py runs/judge-split.json OUT [--data ../shared/data] [--part validation|full]

The split is the one the shipped 17-model judges were trained with (`models/build_surrogates.sh` writes it to
runs/judge-split.json). OUT gets ``<device>/nat/<file>`` symbolic links to the test split's natural photos (never
copies of the photos) and a MANIFEST.csv with their rows from real-dev's and real-models' manifests; evaluate then
skips the photos a camera profile recorded, so what it measures is held out from the judges and from the profiles.
``--part validation`` links the validation split's photos instead (the judges chose their checkpoint on them but
never trained on them): the set the refinement's settings are chosen on, apart from the test photos they are
measured on.
``--part full`` links whole camera frames instead: the second frame of each body of ``real-full`` (in its
MANIFEST.csv's order; the split is not read), the frames no judge and no shipped profile saw (`runs/heldout-full`
of docs/models.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def _link_full_frames(full: Path, out: Path) -> int:
    """Link the second frame of each real-full body (manifest order) with its manifest row."""
    with open(full / "MANIFEST.csv", newline="") as f:
        reader = csv.DictReader(f)
        header, seen, rows = reader.fieldnames, {}, []
        for r in reader:
            seen[r["device"]] = seen.get(r["device"], 0) + 1
            if seen[r["device"]] == 2:
                rows.append(r)
    if not rows:
        print(f"error: no body of {full} has a second frame", file=sys.stderr)
        return 1
    for r in rows:
        link = out / r["file"]
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(full / r["file"])
    with open(out / "MANIFEST.csv", "w", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} full frames of {len(rows)} bodies linked under {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("split", type=Path, help="the judges' split JSON (runs/judge-split.json)")
    ap.add_argument("out", type=Path, help="a new folder for the links")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    ap.add_argument("--part", choices=("test", "validation", "full"), default="test", help="which split's photos to link")
    a = ap.parse_args(argv)
    if a.out.exists():
        print(f"error: {a.out} exists; name a new folder", file=sys.stderr)
        return 2
    data = a.data.resolve()
    if a.part == "full":
        return _link_full_frames(data / "real-full", a.out)
    split = json.loads(a.split.read_text())
    wanted = {}
    for im in split["splits"][a.part]["images"]:
        if im["content"] == "nat":
            corpus, rel = im["path"].split("/", 1)
            wanted[(corpus, rel)] = im
    rows, header = [], None
    for corpus in ("real-dev", "real-models"):
        with open(data / corpus / "MANIFEST.csv", newline="") as f:
            reader = csv.DictReader(f)
            header = header or reader.fieldnames
            for r in reader:
                if wanted.pop((corpus, r["file"]), None) is not None:
                    rows.append(r)
    if wanted:
        print(f"error: {len(wanted)} {a.part} photos have no manifest row, e.g. {next(iter(wanted))}", file=sys.stderr)
        return 1
    for r in rows:
        corpus = "real-dev" if (data / "real-dev" / r["file"]).exists() else "real-models"
        link = a.out / r["file"]
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(data / corpus / r["file"])
    with open(a.out / "MANIFEST.csv", "w", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} natural {a.part} photos of {len({r['device'] for r in rows})} bodies linked under {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""bench/judge_heldout_folder.py --part full: links (never copies) the second frame of each real-full body, in the
manifest's order, with its manifest row; refuses an existing output folder."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "judge_heldout_folder.py"
HEADER = ["file", "device", "make", "model", "content", "original_size", "crop", "sha256", "source"]


def _data(tmp_path: Path) -> Path:
    full = tmp_path / "data" / "real-full"
    rows = []
    for dev, names in (("A_x_0", ["a1.jpg", "a2.jpg", "a3.jpg"]), ("B_y_0", ["b1.jpg"]), ("C_z_0", ["c1.jpg", "c2.jpg"])):
        for n in names:
            p = full / dev / "nat" / n
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(n.encode())
            rows.append({"file": f"{dev}/nat/{n}", "device": dev, "make": dev[0], "model": dev[2], "content": "nat",
                         "original_size": "4x4", "crop": "", "sha256": "0", "source": "t"})
    with open(full / "MANIFEST.csv", "w", newline="") as f:
        w = csv.DictWriter(f, HEADER)
        w.writeheader()
        w.writerows(rows)
    return tmp_path / "data"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=60)


def test_full_links_the_second_frame_of_each_body(tmp_path):
    data, out = _data(tmp_path), tmp_path / "out"
    res = _run("unused-split.json", str(out), "--data", str(data), "--part", "full")
    assert res.returncode == 0, res.stderr
    links = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert links == ["A_x_0/nat/a2.jpg", "C_z_0/nat/c2.jpg"]  # B has one frame only
    assert all((out / rel).is_symlink() for rel in links)
    assert (out / "A_x_0/nat/a2.jpg").read_bytes() == b"a2.jpg"
    with open(out / "MANIFEST.csv", newline="") as f:
        assert [r["file"] for r in csv.DictReader(f)] == links
    again = _run("unused-split.json", str(out), "--data", str(data), "--part", "full")
    assert again.returncode == 2 and "exists" in again.stderr

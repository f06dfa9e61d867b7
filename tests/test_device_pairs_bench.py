"""bench/bench_device_pairs.py: photos sharing a multiplicative pattern correlate pairwise, unrelated ones do not,
and the scale/shift search keeps the shared pairs far above the strangers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_device_pairs.py"


def _scene(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    base = 90 + 60 * np.sin(6 * x + rng.uniform(0, 6)) * np.cos(4 * y + rng.uniform(0, 6))
    return np.repeat(base[:, :, None], 3, axis=2)


def test_pairs_of_one_pattern_stand_out_and_strangers_do_not(tmp_path):
    rng = np.random.default_rng(3)
    size = 256
    pattern = 1 + 0.08 * rng.standard_normal((size, size, 1))
    folder = tmp_path / "dev" / "nat"
    folder.mkdir(parents=True)
    for k in range(3):  # three photos with the pattern, one without
        img = _scene(rng, size) * pattern + rng.normal(0, 1.0, (size, size, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"p{k}.png")
    stranger = _scene(rng, size) * (1 + 0.08 * rng.standard_normal((size, size, 1)))
    Image.fromarray(np.clip(stranger, 0, 255).astype(np.uint8)).save(folder / "q.png")
    out = tmp_path / "pairs.json"
    subprocess.run([sys.executable, str(BENCH), str(tmp_path / "dev"), "--size", "256", "--search", "--max-shift", "8",
                    "-o", str(out)], check=True, capture_output=True, text=True)
    d = json.loads(out.read_text())
    names = [p["photo"] for p in d["photos"]]
    zero = np.array(d["zero_shift_pce"], dtype=float)
    i = names.index("q.png")
    shared = [zero[a, b] for a in range(4) for b in range(a + 1, 4) if i not in (a, b)]
    strangers = [zero[i, b] for b in range(4) if b != i]
    assert min(shared) > 100, shared
    assert max(strangers) < 30, strangers
    search = np.array(d["search_pce"], dtype=float)
    # scale 1 and zero shift are among the hypotheses: shared pairs stay far above the strangers' null maximum
    assert min(search[a, b] for a in range(4) for b in range(a + 1, 4) if i not in (a, b)) > 100
    assert max(search[i, b] for b in range(4) if b != i) < 40

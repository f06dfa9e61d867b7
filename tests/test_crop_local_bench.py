"""bench/bench_crop_local.py: the plane statistics reproduce the engine's search (normalisation off), the product's
block computation follows the exact full-resolution statistic, and the evaluation counts ranks and false alarms."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import synth

from camforensics.core.fingerprint import estimate_fingerprint

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def local():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_crop_local", BENCH / "bench_crop_local.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


def test_variants_parse_and_clip(local):
    assert local.parse_variant("plain") == (0.0, "", 11)
    assert local.parse_variant("clip5+varS15") == (5.0, "varS15", 11)
    assert local.parse_variant("excl31") == (0.0, "", 31)
    with pytest.raises(ValueError):
        local.parse_variant("nonsense")
    k = np.r_[np.zeros(99), 100.0].astype(np.float32)
    c = local.clipped(k, 3.0)
    assert c.max() == pytest.approx(3.0 * (k - k.mean()).std(), rel=1e-5) and abs(c.mean()) < 1.0


def test_scores_reproduce_the_engine_and_rank_the_true_device_first(local):
    """Two synthetic devices' flat-field fingerprints of 576 x 576, two 512 crops of a natural shot of the first:
    ``plain`` equals match_query with the normalisation off (asserted inside ``score``), the product's block
    version (engine15) is within a few per cent of the exact one (varS15), and both rank the true device first."""
    shape = (576, 576)
    ks = {"A": synth.make_prnu(shape, 61), "B": synth.make_prnu(shape, 62)}
    fps = {d: estimate_fingerprint([synth.shoot(k, 6100 + 10 * i + j, flat=True) for j in range(4)]).k
           for i, (d, k) in enumerate(ks.items())}
    shot = synth.shoot(ks["A"], 6200)
    crops = [("A", 0, 0, shot[:512, :512]), ("A", 64, 48, shot[64:, 48:560])]
    names = ["A", "B"]
    sc = local.score(crops, names, fps, ["plain", "varS15", "engine15", "box"], check=2)
    for v in ("plain", "varS15", "engine15", "box"):
        e = local.evaluate(sc, v, names)
        assert e["unknown_top1"] == 2 and e["aligned_top1"] == 2 and e["false_alarm_queries"] == 0, (v, e)
    exact, block = sc["varS15"]["unknown"], sc["engine15"]["unknown"]
    assert np.allclose(block[:, 0], exact[:, 0], rtol=0.05), (block, exact)
    assert np.array_equal(sc["plain"]["thr"], sc["engine15"]["thr"])  # the same offsets and P_FA
    assert local.failures(sc, names) == []


def test_evaluate_counts_misses_and_false_alarms(local):
    sc = {"devs": ["A", "B"], "positions": [(0, 0), (0, 0)],
          "plain": {"unknown": np.array([[30.0, 20.0], [90.0, 25.0]]), "thr": np.full((2, 2), 78.0),
                    "aligned": np.array([[9.0, 1.0], [0.5, 3.0]])}}
    e = local.evaluate(sc, "plain", ["A", "B"])
    assert e["unknown_top1"] == 1 and e["aligned_top1"] == 2 and e["identified"] == 0
    assert e["false_alarm_queries"] == 1 and e["largest_wrong_unknown"] == 90.0 and e["misses"] == {"B": 1}
    assert local.failures(sc, ["A", "B"])[0]["winner"] == "A"

"""bench/bench_crop_rank.py and bench/train_spn_refiner.py: the clustering of enrolment photos, the cohort
normalisations, the per-device evaluation and the refiner's start as the engine's own signal."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def rank():
    return _load("bench_crop_rank")


def test_average_linkage_splits_two_groups_that_agree_only_within(rank):
    pces = np.full((6, 6), 1.0)
    pces[:3, :3] = 40.0
    pces[3:, 3:] = 30.0
    np.fill_diagonal(pces, 0.0)
    clusters = sorted(sorted(c) for c in rank.average_linkage(pces, 10.0))
    assert clusters == [[0, 1, 2], [3, 4, 5]]
    assert sorted(len(c) for c in rank.average_linkage(pces, 0.5)) == [6]  # every pair above tau: one cluster
    assert len(rank.average_linkage(pces, 50.0)) == 6  # none above: singletons


def test_normalisations_rescale_each_fingerprint_by_its_own_impostors(rank):
    imp = [np.array([10.0, 20.0, 30.0]), np.array([1.0, 2.0, 3.0])]
    s = np.array([40.0, 4.0])
    assert np.allclose(rank.normalised(s, imp, "ratio"), [2.0, 2.0])
    assert np.allclose(rank.normalised(s, imp, "median"), [20.0, 2.0])
    assert np.allclose(rank.normalised(s, imp, "mean"), [20.0, 2.0])
    z = rank.normalised(s, imp, "z")
    assert z[0] == pytest.approx(z[1]) and z[0] == pytest.approx(20.0 / np.std([10.0, 20.0, 30.0]))


def test_evaluate_ranks_devices_by_their_best_entry_and_counts_false_alarms(rank):
    owner = ["A", "B", "B"]  # B has two entries (sub-fingerprints)
    rows = [
        {"dev": "A", "aligned": np.array([9.0, 1.0, 2.0]), "unknown": np.array([30.0, 20.0, 35.0]),
         "thr": np.array([78.0, 78.0, 78.0])},
        {"dev": "B", "aligned": np.array([0.5, 3.0, 12.0]), "unknown": np.array([25.0, 22.0, 90.0]),
         "thr": np.array([78.0, 78.0, 78.0])},
    ]  # fmt: skip
    both = rank.evaluate(rows, owner, [0, 1, 2], None, "")
    assert both["unknown_hits"] == 1 and both["misses"] == {"A": 1}  # A's crop loses to B's second entry
    assert both["identified"] == 0.5 and both["false_alarm_queries"] == 0
    first = rank.evaluate(rows, owner, [0, 1], None, "")  # without B's second entry
    assert first["unknown_hits"] == 1 and first["misses"] == {"B": 1}
    assert both["aligned_auc"] == 1.0 and both["aligned_top1"] == 1.0


def test_refiner_starts_as_the_engines_signal_and_its_loss_rewards_correlation():
    torch = pytest.importorskip("torch")
    spn = _load("train_spn_refiner")
    net = spn.Refiner()
    x = torch.randn(2, 2, 32, 32)
    assert torch.equal(net(x), x[:, 1:2])  # the last layer is zero: S = S0
    k = torch.randn(2, 1, 32, 32)
    assert spn.loss_of(k, k).item() == pytest.approx(-1e4, rel=1e-5)  # perfect correlation
    assert spn.loss_of(-k, k).item() == pytest.approx(1e4, rel=1e-5)  # anti-correlated: penalised
    assert abs(spn.loss_of(torch.randn(2, 1, 32, 32), k).item()) < 1e3

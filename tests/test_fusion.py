"""The fused PRNU + Siamese decision never rejects a pair that PRNU alone accepts (issue 20), at every image size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from camforensics.core.params import PCE_THRESHOLD
from camforensics.errors import ParameterError
from camforensics.inference.verification import Fusion, fit_fusion, normalised_pce

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "manifest.json"
SIZES_MP = (1, 6, 12)


def shipped_fusion() -> Fusion:
    models = json.loads(SHIPPED.read_text())["models"]
    entry = next(e for e in models.values() if e["task"] == "same-device-verification")
    return Fusion.from_dict(entry["decision"]["fusion"])


def fitted_fusion(rng: np.random.Generator, *, normalise: bool) -> Fusion:
    """A fusion fitted on 1 MP pairs whose Siamese score carries most of the evidence (the hard case for PRNU)."""
    n = 400
    y = rng.random(n) < 0.5
    pce = np.where(y, rng.lognormal(4.0, 1.0, n), rng.normal(0.0, 3.0, n))
    siam = np.where(y, rng.normal(1.0, 0.5, n), rng.normal(-1.0, 0.5, n))
    pixels = np.full(n, 1 << 20) if normalise else None
    return fit_fusion(pce, siam, y, pixels=pixels)


@pytest.mark.parametrize("which", ["shipped", "raw", "normalised"])
def test_a_pair_prnu_accepts_is_never_rejected_by_the_fusion(which):
    rng = np.random.default_rng(1)
    fusion = shipped_fusion() if which == "shipped" else fitted_fusion(rng, normalise=which == "normalised")
    pce = np.concatenate([[PCE_THRESHOLD + 1e-6, 61.0, 86.0, 99.0], rng.uniform(PCE_THRESHOLD, 1e5, 500)])
    for mp in SIZES_MP:
        for logit in (-20.0, -3.0, -0.118, -0.111, 0.0, 5.0):
            p = fusion.probability(pce, logit, pixels=mp * 1e6)
            assert (p > fusion.threshold).all(), (which, mp, logit)
    # A crop search raises the PRNU threshold: the floor follows the run's threshold, not the default one.
    assert fusion.probability(70.0, -20.0, pixels=6e6, prnu_threshold=75.0) < fusion.floor
    assert fusion.probability(80.0, -20.0, pixels=6e6, prnu_threshold=75.0) > fusion.threshold


def test_the_shipped_fusion_needed_the_floor_for_the_pairs_of_the_issue():
    """The 6 MP same-device pairs of issue 20 (PCE 61, 86, 99, Siamese logit about -0.115): the calibrated
    logistic alone rejects them; the floored fusion accepts them, and still rejects what PRNU rejects."""
    fusion = shipped_fusion()
    for pce in (61.0, 86.0, 99.0):
        assert fusion.logistic(pce, -0.115) < fusion.threshold < fusion.probability(pce, -0.115, pixels=6e6)
        assert fusion.floored(pce, -0.115, pixels=6e6)
    assert fusion.probability(5.0, -0.115, pixels=6e6) < fusion.threshold
    assert not fusion.floored(5.0, -0.115)


@pytest.mark.parametrize("mp", SIZES_MP)
def test_the_fused_probability_is_monotone_in_the_pce_at_every_size(mp):
    rng = np.random.default_rng(2)
    for fusion in (shipped_fusion(), fitted_fusion(rng, normalise=True), fitted_fusion(rng, normalise=False)):
        grid = np.linspace(-100.0, 3000.0, 4001)
        for logit in (-5.0, -0.1, 0.0, 2.0):
            p = fusion.probability(grid, logit, pixels=mp * 1e6)
            assert (np.diff(p) >= 0).all()


def test_the_pce_is_scaled_down_for_larger_images_and_never_up():
    assert normalised_pce(600.0, 6 << 20, 1 << 20) == pytest.approx(100.0)
    assert normalised_pce(30.0, 1 << 18, 1 << 20) == pytest.approx(30.0)  # a quarter MP: unchanged
    assert normalised_pce(30.0, None, 1 << 20) == 30.0 and normalised_pce(30.0, 5e6, None) == 30.0
    with pytest.raises(ParameterError, match="positive"):
        normalised_pce(30.0, 0, 1 << 20)
    with pytest.raises(ParameterError, match="pixel count"):
        fit_fusion([1.0, 100.0], [0.0, 1.0], [False, True], reference_pixels=1 << 20)


def test_a_normalised_fusion_reads_a_large_pair_on_its_calibration_scale():
    rng = np.random.default_rng(3)
    fusion = fitted_fusion(rng, normalise=True)
    assert fusion.reference_pixels == 1 << 20
    # PCE 600 at 6 MP is the evidence of PCE 100 at 1 MP (PCE grows with the pixels of a true match).
    assert fusion.logistic(600.0, 0.0, pixels=6 << 20) == pytest.approx(fusion.logistic(100.0, 0.0, pixels=1 << 20))
    again = Fusion.from_dict(json.loads(json.dumps(fusion.to_dict())))
    assert again == fusion and "min(1, 1048576 / pixels)" in fusion.to_dict()["features"]["prnu"]
    assert "floor" in fusion.to_dict() and fusion.fit["tpr_at_threshold"] > 0.9

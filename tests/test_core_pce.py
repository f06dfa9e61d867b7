import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camforensics.core.pce import compute_pce, cross_correlate, log10_false_alarm, log_ndtr
from camforensics.errors import SizeMismatchError


def _pattern(seed, shape=(96, 128)):
    return np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32)


@settings(max_examples=30, deadline=None)
@given(dy=st.integers(-47, 47), dx=st.integers(-63, 63), seed=st.integers(0, 2**16))
def test_peak_found_at_the_planted_shift_also_near_the_borders(dy, dx, seed):
    k = _pattern(seed)
    noise = np.random.default_rng(seed + 1).normal(0, 3, k.shape).astype(np.float32)
    query = np.roll(k, (dy, dx), axis=(0, 1)) + noise
    res = compute_pce(query, k, shift_range=(47, 63))
    assert res.peak_shift == (dy, dx)
    assert res.pce > 60
    assert res.n_shifts == 95 * 127


def test_zero_shift_only_reads_the_zero_shift():
    k = _pattern(5)
    shifted = np.roll(k, (3, 4), axis=(0, 1))
    assert compute_pce(shifted, k).pce < 60  # aligned test misses a shifted copy
    assert compute_pce(shifted, k, shift_range=(5, 5)).pce > 1000


def test_unrelated_pairs_stay_below_threshold():
    pces = [compute_pce(_pattern(2 * i), _pattern(2 * i + 1)).pce for i in range(40)]
    assert max(pces) < 60
    # Under the null, PCE at a fixed shift is chi-square(1)-like: mean about 1.
    assert 0.3 < float(np.mean(np.abs(pces))) < 3


def test_negative_correlation_gives_negative_pce_and_high_p_fa():
    k = _pattern(7)
    res = compute_pce(-k + 0.1 * _pattern(8), k)
    assert res.pce < -1000 and res.p_fa > 0.99


def test_inputs_not_modified_and_shape_checked():
    a, b = _pattern(1), _pattern(2)
    a0, b0 = a.copy(), b.copy()
    compute_pce(a, b, shift_range=(3, 3))
    assert np.array_equal(a, a0) and np.array_equal(b, b0)
    with pytest.raises(SizeMismatchError):
        cross_correlate(a, b[:, :-1])


def test_cross_correlation_zero_shift_is_ncc():
    a, b = _pattern(3), _pattern(4)
    mixed = a + 0.5 * b
    cc = cross_correlate(mixed, a)
    ref = np.corrcoef(mixed.ravel(), a.ravel())[0, 1]
    assert math.isclose(float(cc[0, 0]), ref, rel_tol=1e-4)


def test_false_alarm_probability():
    # One shift: P_FA = Q(sqrt(PCE)); Q(sqrt(60)) = 4.66e-15.
    assert math.isclose(log10_false_alarm(60, 1), math.log10(4.664e-15), abs_tol=0.01)
    # Searching more shifts raises P_FA about n-fold while it is small.
    assert math.isclose(log10_false_alarm(60, 1000) - log10_false_alarm(60, 1), 3.0, abs_tol=1e-3)
    # Finite far beyond float underflow, monotone in PCE.
    assert math.isfinite(log10_false_alarm(1e6, 1)) and log10_false_alarm(1e6, 1) < -1e5
    assert log10_false_alarm(10, 1) > log10_false_alarm(20, 1)
    # Nothing searched can beat certainty.
    assert log10_false_alarm(0.0, 10**6) == pytest.approx(0.0, abs=1e-9)


def test_log_ndtr_equals_scipy_special_from_the_far_lower_tail_to_the_upper():
    import scipy.special

    xs = np.concatenate([np.linspace(-3000.0, 40.0, 30001), -np.sqrt(np.geomspace(1e-6, 1e7, 20001)),
                         np.sqrt(np.geomspace(1e-6, 1e7, 20001)), [-38.0, -36.78, -1.0, 0.0, 1.0, 8.0]])  # fmt: skip
    worst_low = worst_high = 0.0
    for x in xs:
        ours, ref = log_ndtr(float(x)), float(scipy.special.log_ndtr(x))
        if abs(ref) < 1e-290:  # scipy flushes erfc of the far upper tail to 0 there: both are 0 to any use
            assert abs(ours) < 1e-290
            continue
        rel = abs(ours - ref) / abs(ref)
        if x < 8:
            worst_low = max(worst_low, rel)
        else:
            worst_high = max(worst_high, rel)
    assert worst_low < 1e-14  # the lower tail, where P_FA is decided: within a few ulp
    assert worst_high < 1e-12  # log Phi near 0 (log1p of a tiny erfc): a few ulp of that tiny erfc
    assert log_ndtr(-math.inf) == -math.inf and log_ndtr(math.inf) == 0.0 and math.isnan(log_ndtr(math.nan))


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(40, 90),
    w=st.integers(40, 90),
    strength=st.sampled_from([0.0, 0.05, 0.3, 3.0]),
    dy=st.integers(-3, 3),
    dx=st.integers(-3, 3),
    r=st.integers(0, 6),
    seed=st.integers(0, 2**16),
)
def test_direct_pce_from_spectra_equals_the_full_inverse_fft(h, w, strength, dy, dx, r, seed):
    from camforensics.core.pce import correlate_spectra, pce_from_spectra, spectrum_of

    rng = np.random.default_rng(seed)
    k = rng.normal(size=(h, w)).astype(np.float32)
    q = strength * np.roll(k, (dy, dx), axis=(0, 1)) + rng.normal(size=(h, w)).astype(np.float32)
    qs, ks = spectrum_of(q), spectrum_of(k)
    full = compute_pce(None, None, cc=correlate_spectra(qs, ks), shift_range=(r, r))
    direct = pce_from_spectra(qs, ks, shift_range=(r, r))
    assert direct.peak_shift == full.peak_shift
    assert direct.n_shifts == full.n_shifts
    assert direct.pce == pytest.approx(full.pce, rel=1e-4, abs=1e-4)
    assert direct.ncc == pytest.approx(full.ncc, rel=1e-4, abs=1e-6)

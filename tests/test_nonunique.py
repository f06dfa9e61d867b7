"""Non-unique artefact suppression steps (camforensics.core.nonunique): each removes what it names and keeps a
device's own pattern."""

from __future__ import annotations

import numpy as np
import pytest

from camforensics.core.fingerprint import estimate_fingerprint
from camforensics.core.nonunique import (
    axis_notch,
    lattice_mask,
    lattice_notch,
    peak_mask,
    project_out,
    shared_peaks,
    spectral_equalize,
)
from camforensics.core.params import FingerprintParams
from camforensics.core.pce import compute_pce
from camforensics.errors import ParameterError


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.fixture
def planted():
    rng = np.random.default_rng(0)
    own = rng.normal(0, 1, (256, 384)).astype(np.float32)
    y, x = np.mgrid[0:256, 0:384]
    grid = (np.cos(2 * np.pi * x / 8) + np.cos(2 * np.pi * y / 8)).astype(np.float32)  # an 8x8 block trace
    return own, grid


def test_projecting_out_a_common_fingerprint_removes_it_and_keeps_the_rest(planted):
    own, _ = planted
    common = np.random.default_rng(1).normal(0, 1, own.shape).astype(np.float32)
    k = own + 2 * common
    out = project_out(k, common)
    assert abs(ncc(out, common)) < 1e-3 and ncc(out, own) > 0.99
    assert np.array_equal(project_out(k, np.zeros_like(k)), k)
    with pytest.raises(ParameterError, match="cannot project"):
        project_out(k, common[:10])


@pytest.mark.parametrize("step", [lambda k: spectral_equalize(k, ratio=3.0), lambda k: lattice_notch(k, 8)])
def test_equalization_takes_out_a_periodic_trace_and_keeps_the_noise_pattern(planted, step):
    own, grid = planted
    k = own + 0.5 * grid
    out = step(k)
    assert abs(ncc(out, grid)) < 0.2 * abs(ncc(k, grid))
    assert ncc(out, own) > 0.98 and out.shape == k.shape and out.dtype == np.float32
    assert ncc(step(own), own) > 0.98  # nothing periodic: (almost) unchanged


def test_lattice_mask_marks_the_period_frequencies_only():
    m = lattice_mask((64, 64), 8, width=0)
    assert m[8, 8] and m[0, 8] and m[8, 0] and not m[0, 0] and not m[4, 4]
    assert m.sum() == 8 * 5 - 1  # rows 0, 8, ..., 56; half-plane columns 0, 8, ..., 32; DC left out
    with pytest.raises(ParameterError, match="period"):
        lattice_notch(np.zeros((8, 8)), 1)
    with pytest.raises(ParameterError, match="window"):
        spectral_equalize(np.zeros((8, 8)), window=4)


def test_equalizing_only_shared_peaks_keeps_a_trace_no_other_device_has(planted):
    own, grid = planted
    y, x = np.mgrid[0:256, 0:384]
    private = (np.cos(2 * np.pi * x / 6)).astype(np.float32)  # a periodic trace of this body alone
    rng = np.random.default_rng(3)
    k = own + 0.5 * grid + 0.5 * private
    others = [rng.normal(0, 1, own.shape).astype(np.float32) + 0.5 * grid for _ in range(2)]  # share the 8x8 trace
    shared = shared_peaks([peak_mask(o) for o in others])
    out = spectral_equalize(k, ratio=3.0, only=shared)
    assert abs(ncc(out, grid)) < 0.2 * abs(ncc(k, grid))  # the shared trace is gone
    assert ncc(out, private) > 0.9 * ncc(k, private)  # the body's own peaks are kept
    assert abs(ncc(spectral_equalize(k, ratio=3.0), private)) < 0.2 * ncc(k, private)  # plain SEA takes them too
    assert not shared_peaks([peak_mask(o) for o in others], min_count=3).any()
    with pytest.raises(ParameterError, match="mask"):
        spectral_equalize(k, only=shared[:10])
    with pytest.raises(ParameterError):
        shared_peaks([])


def test_axis_notch_takes_out_a_column_pattern_under_vignetting_that_two_bodies_share():
    # Two bodies of one model: each its own white pattern, both a column pattern times the model's vignetting
    # (what the CFA zero-mean leaves: its row and column means are zero, the envelope spreads it next to the axis).
    rng = np.random.default_rng(3)
    h, w = 384, 512
    y, x = np.mgrid[0:h, 0:w]
    envelope = (1 - 0.4 * ((y - h / 2) ** 2 + (x - w / 2) ** 2) / (h * h / 4 + w * w / 4)).astype(np.float32)
    columns = rng.normal(0, 1, w).astype(np.float32)[None, :] * (envelope - envelope.mean(axis=0))
    shared = 0.6 * columns / columns.std()
    bodies = [rng.normal(0, 1, (h, w)).astype(np.float32) + shared for _ in range(2)]
    noisy = [b + rng.normal(0, 3, b.shape).astype(np.float32) for b in bodies]  # a second estimate of each

    def pce(a, b):
        return compute_pce(a, b).pce

    assert pce(noisy[0], bodies[1]) > 60  # the shared pattern alone makes a false match
    assert pce(axis_notch(noisy[0]), axis_notch(bodies[1])) < 20
    own_before, own_after = pce(noisy[0], bodies[0]), pce(axis_notch(noisy[0]), axis_notch(bodies[0]))
    assert own_after > 0.9 * own_before
    spectrum = np.fft.fft2(axis_notch(bodies[0], 2))
    assert np.abs(spectrum[[0, 1, 2, -2, -1], :]).max() < 1e-2 and np.abs(spectrum[:, [0, 1, 2, -2, -1]]).max() < 1e-2
    assert np.abs(spectrum[3:-2, 3:-2]).min() > 0
    np.testing.assert_allclose(axis_notch(bodies[0], 0), bodies[0])
    with pytest.raises(ParameterError):
        axis_notch(bodies[0], -1)


def test_a_fingerprint_gets_the_axis_notch_when_asked_and_not_by_default():
    rng = np.random.default_rng(4)
    images = [np.clip(rng.normal(128, 20, (128, 160, 3)), 0, 255).astype(np.uint8) for _ in range(2)]
    k = estimate_fingerprint(images, params=FingerprintParams(axis_notch=1)).k
    off = estimate_fingerprint(images).k
    assert FingerprintParams().axis_notch == 0
    f, f_off = np.abs(np.fft.fft2(k)), np.abs(np.fft.fft2(off))
    scale = f_off.mean()
    assert f[[1, -1], :].max() < 1e-4 * scale and f[:, [1, -1]].max() < 1e-4 * scale
    assert f_off[[1, -1], :].max() > 0.1 * scale  # without the notch those bins hold their share
    np.testing.assert_allclose(f[3:-2, 3:-2], f_off[3:-2, 3:-2], rtol=1e-3, atol=1e-3 * scale)
    with pytest.raises(ParameterError):
        FingerprintParams(axis_notch=-1)

"""CFA mosaic and OpenCV demosaicing: patterns map to the right colours for every algorithm."""

from __future__ import annotations

import numpy as np
import pytest

from camforensics.errors import ParameterError
from camforensics.sim.camera import CFA_PATTERNS, DEMOSAIC_METHODS
from camforensics.sim.cfa import cfa_channels, demosaic, mosaic


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_mosaic_keeps_the_filtered_colour(pattern):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30
    raw = mosaic(rgb, pattern)
    channels = cfa_channels(pattern)
    for dy in (0, 1):
        for dx in (0, 1):
            assert np.all(raw[dy::2, dx::2] == (10, 20, 30)[channels[dy, dx]])
    assert rgb[0, 0, 0] == 10  # input untouched


@pytest.mark.parametrize("method", DEMOSAIC_METHODS)
@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_demosaic_restores_a_constant_colour(pattern, method):
    rgb = np.empty((16, 16, 3), np.uint8)
    rgb[...] = (200, 100, 50)
    out = demosaic(mosaic(rgb, pattern), pattern, method)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[4:-4, 4:-4], rgb[4:-4, 4:-4])


def test_demosaic_methods_leave_different_traces():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    raw = mosaic(rgb, "RGGB")
    outs = [demosaic(raw, "RGGB", m) for m in DEMOSAIC_METHODS]
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[1], outs[2])


def test_demosaic_rejects_bad_input():
    with pytest.raises(ParameterError, match="unknown CFA"):
        demosaic(np.zeros((4, 4), np.uint8), "RGBG", "bilinear")
    with pytest.raises(ParameterError, match="unknown demosaicing"):
        demosaic(np.zeros((4, 4), np.uint8), "RGGB", "ahd")
    with pytest.raises(ParameterError, match="uint8"):
        demosaic(np.zeros((4, 4), np.uint16), "RGGB", "vng")

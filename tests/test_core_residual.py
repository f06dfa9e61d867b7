import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camforensics.core.denoise import denoise_channel, min_image_side, wiener_noise_gain
from camforensics.core.params import ResidualParams
from camforensics.core.residual import enhance_spn, extract_residual, to_grey, wiener_dft, zero_mean_cfa
from camforensics.errors import ParameterError


def test_constant_image_has_zero_residual():
    w = extract_residual(np.full((128, 160, 3), 117, np.uint8))
    assert w.dtype == np.float32 and w.shape == (128, 160)
    assert np.abs(w).max() < 1e-3


def test_residual_keeps_added_noise_and_drops_smooth_content():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:256]
    smooth = 100 + 60 * np.sin(xx / 40.0) * np.cos(yy / 55.0)
    noise = rng.normal(0, 2.0, smooth.shape)
    w = extract_residual(smooth + noise, params=ResidualParams(zero_mean=False, wiener_dft=False))
    corr = np.corrcoef(w.ravel(), noise.ravel())[0, 1]
    assert corr > 0.8  # the residual is mostly the noise
    assert np.corrcoef(w.ravel(), smooth.ravel())[0, 1] < 0.05


def test_inputs_are_not_modified():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (128, 128, 3)).astype(np.uint8)
    before = img.copy()
    extract_residual(img)
    assert np.array_equal(img, before)
    f = rng.normal(size=(64, 64)).astype(np.float32)
    f0 = f.copy()
    zero_mean_cfa(f)
    wiener_dft(f, 1.0)
    enhance_spn(f)
    wiener_noise_gain(f, 1.0)
    assert np.array_equal(f, f0)


def test_too_small_image_is_refused_with_the_way_out():
    p = ResidualParams()
    side = min_image_side(p)
    assert side == 112  # (8 - 1) * 2**4 for db4 and 4 levels
    with pytest.raises(ParameterError, match="fewer levels"):
        denoise_channel(np.zeros((side - 1, 200), np.float32), params=p)
    denoise_channel(np.zeros((side, side), np.float32), params=p)  # the smallest allowed works


def test_odd_sizes_are_cropped_back():
    w = extract_residual(np.random.default_rng(2).integers(0, 255, (131, 117)).astype(np.uint8))
    assert w.shape == (131, 117)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(4, 40), w=st.integers(4, 40), seed=st.integers(0, 2**16))
def test_zero_mean_cfa_leaves_every_lattice_row_and_column_at_zero(h, w, seed):
    a = np.random.default_rng(seed).normal(3.0, 2.0, (h, w)).astype(np.float32)
    z = zero_mean_cfa(a)
    for dy in (0, 1):
        for dx in (0, 1):
            sub = z[dy::2, dx::2].astype(np.float64)
            assert np.abs(sub.mean(axis=0)).max() < 1e-4
            assert np.abs(sub.mean(axis=1)).max() < 1e-4


def test_zero_mean_cfa_removes_a_lattice_pattern():
    rng = np.random.default_rng(3)
    pattern = np.zeros((64, 64), np.float32)
    pattern[0::2, 1::2] += rng.normal(0, 1, 32)[None, :]  # column pattern on one sub-lattice only
    assert np.abs(zero_mean_cfa(pattern)).max() < 1e-5


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), freq=st.integers(3, 20), amp=st.floats(2.0, 8.0))
def test_wiener_dft_removes_periodic_peaks_and_keeps_white_noise(seed, freq, amp):
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (128, 128)).astype(np.float32)
    xx = np.arange(128)[None, :]
    periodic = (amp * np.cos(2 * np.pi * freq * xx / 128)).astype(np.float32) * np.ones((128, 1), np.float32)
    out = wiener_dft(noise + periodic, float(np.std(noise + periodic)))
    assert out.shape == noise.shape and out.dtype == np.float32
    # The periodic component is strongly attenuated; the white noise mostly passes.
    assert abs(np.vdot(out, periodic)) / np.vdot(periodic, periodic) < 0.1
    assert np.corrcoef(out.ravel(), noise.ravel())[0, 1] > 0.9


def test_enhance_spn_bounds_and_sign():
    n = np.array([-20.0, -1.0, 0.5, 3.0, 30.0], np.float32)
    e = enhance_spn(n, alpha=7.0)
    assert np.all(np.abs(e) <= 1) and np.array_equal(np.sign(e), np.sign(n))
    assert abs(e[-1]) < abs(e[2])  # strong (scene) components are attenuated most


def test_grey_weights():
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 1] = 100
    assert np.allclose(to_grey(img), 58.704307, atol=1e-4)


def _wiener_dft_full_plane(w, sigma, windows=(3, 5, 7, 9)):
    """The reference formulation: full complex FFT, gain over the whole plane, real part of the inverse."""
    import scipy.fft

    h, wd = w.shape
    f = scipy.fft.fft2(w.astype(np.float64))
    mag = np.abs(f) / np.sqrt(h * wd)
    gain = wiener_noise_gain(mag.astype(np.float32), sigma**2, windows=windows)
    return np.real(scipy.fft.ifft2(f * gain))


@pytest.mark.parametrize("shape", [(64, 64), (61, 97), (100, 33), (48, 130)])
def test_half_plane_wiener_dft_equals_the_full_plane_formulation(shape):
    rng = np.random.default_rng(sum(shape))
    w = rng.normal(0, 2, shape).astype(np.float32)
    w[:, ::8] += 3.0  # a periodic artefact for the filter to act on
    w += np.linspace(-4, 4, shape[1], dtype=np.float32)[None, :]  # low-frequency content
    w = zero_mean_cfa(w)  # as in the pipeline: empties the spectrum's DC row and column
    fast = wiener_dft(w, float(w.std()))
    ref = _wiener_dft_full_plane(w, float(w.std()))
    assert np.abs(fast - ref).max() < 1e-4 * np.abs(ref).max()


def test_grey_noise_in_the_wavelet_domain_equals_per_channel_noise():
    from camforensics.core.residual import extract_channel_noise, extract_grey_noise, grey_from_channels

    img = np.random.default_rng(7).integers(0, 255, (150, 203, 3)).astype(np.uint8)
    a = extract_grey_noise(img)
    b = grey_from_channels(extract_channel_noise(img))
    assert np.abs(a - b).max() < 1e-3


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_grey_in_row_strips_equals_the_whole_array_formula(dtype):
    from camforensics.core.params import GREY_WEIGHTS
    from camforensics.core.residual import to_grey

    rng = np.random.default_rng(5)
    img = (rng.integers(0, 256, (1501, 1203, 3)) if dtype == np.uint8 else rng.normal(100, 40, (1501, 1203, 3))).astype(dtype)
    whole = np.multiply(img[:, :, 0], np.float32(GREY_WEIGHTS[0]), dtype=np.float32)
    for c in (1, 2):
        whole += np.multiply(img[:, :, c], np.float32(GREY_WEIGHTS[c]), dtype=np.float32)
    assert np.array_equal(to_grey(img), whole)

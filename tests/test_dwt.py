"""The engine's own periodic DWT, its Wiener rule and their threaded passes against pywt / plain numpy, in both
implementations: the native kernels (camforensics/runtime/_kernels.c) and the OpenCV one."""

from __future__ import annotations

import numpy as np
import pytest
import pywt

from camforensics.core import dwt
from camforensics.runtime import native, threads
from camforensics.core.denoise import noise_coefficients, reconstruct_noise, wiener_noise, wiener_noise_gain
from camforensics.core.params import ResidualParams
from camforensics.core.residual import std_of, zero_mean_cfa


@pytest.fixture(params=["one thread", "strips"])
def strips(request, monkeypatch):
    """Run a test single-threaded, then with every array split into strips over several threads."""
    if request.param == "strips":
        monkeypatch.setattr(threads, "STRIP_MIN_ELEMENTS", 0)
        monkeypatch.setattr(threads, "_limit", 3)
    else:
        monkeypatch.setattr(threads, "_limit", 1)
    return request.param


@pytest.fixture(params=["native", "opencv"])
def engine(request, monkeypatch):
    """Run a test with the native kernels (skipped where they are not built), then with the OpenCV code."""
    if request.param == "native":
        monkeypatch.delenv(native.ENV, raising=False)
        if not native.available():
            pytest.skip("the native kernels are not built on this machine")
    else:
        monkeypatch.setenv(native.ENV, "0")
    assert native.engine() == request.param
    return request.param


def _assert_coeffs_close(got, ref, atol):
    assert len(got) == len(ref)
    np.testing.assert_allclose(got[0], ref[0], atol=atol, rtol=0)
    for g_level, r_level in zip(got[1:], ref[1:]):
        assert len(g_level) == 3
        for g, r in zip(g_level, r_level):
            assert g.shape == r.shape and g.dtype == np.float32
            np.testing.assert_allclose(g, r, atol=atol, rtol=0)


@pytest.mark.filterwarnings("ignore:Level value of .* is too high")  # pywt's note on small test arrays
@pytest.mark.parametrize("wavelet", ["haar", "db2", "db4", "db8", "sym4", "coif2"])
@pytest.mark.parametrize(("shape", "level"), [((64, 96), 1), ((112, 80), 4), ((256, 160), 3)])
def test_wavedec2_and_waverec2_equal_pywt_periodization(wavelet, shape, level, strips, engine):
    x = np.random.default_rng(0).normal(0, 50, shape).astype(np.float32)
    ref = pywt.wavedec2(x.astype(np.float64), wavelet, mode="periodization", level=level)
    got = dwt.wavedec2(x, wavelet, level)
    _assert_coeffs_close(got, ref, atol=2e-4)  # float32 on values of about 50..1000
    np.testing.assert_allclose(dwt.waverec2(got, wavelet), x, atol=2e-4, rtol=0)
    ref[0][...] = 0
    np.testing.assert_allclose(
        dwt.waverec2(got, wavelet, zero_approximation=True),
        pywt.waverec2(ref, wavelet, mode="periodization"),
        atol=2e-4,
        rtol=0,
    )


def test_wavedec2_refuses_sides_that_are_not_multiples_of_the_block():
    with pytest.raises(ValueError, match="multiples of 2"):
        dwt.wavedec2(np.zeros((100, 64), np.float32), "db4", 3)
    with pytest.raises(ValueError, match="even sides"):
        dwt.dwt2(np.zeros((10, 7), np.float32), "db4")


def test_wiener_noise_on_strips_equals_the_whole_array(monkeypatch, engine):
    c = np.random.default_rng(1).normal(0, 4, (300, 257)).astype(np.float32)
    c[100:140, 50:90] *= 20  # a textured region across a strip border
    monkeypatch.setattr(threads, "_limit", 1)
    whole_gain = wiener_noise_gain(c, 4.0)
    whole_noise = wiener_noise(c, 4.0)
    monkeypatch.setattr(threads, "STRIP_MIN_ELEMENTS", 0)
    monkeypatch.setattr(threads, "_limit", 4)
    np.testing.assert_allclose(wiener_noise_gain(c, 4.0), whole_gain, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wiener_noise(c, 4.0), whole_noise, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(whole_noise, c * whole_gain, rtol=1e-5, atol=1e-5)


def test_denoised_channel_is_the_same_with_and_without_threads(monkeypatch, engine):
    rng = np.random.default_rng(2)
    channel = np.clip(rng.normal(128, 30, (515, 389)), 0, 255).astype(np.uint8)
    params = ResidualParams()
    monkeypatch.setattr(threads, "_limit", 1)
    one = reconstruct_noise(noise_coefficients(channel, params=params), channel.shape, params=params)
    monkeypatch.setattr(threads, "STRIP_MIN_ELEMENTS", 0)
    monkeypatch.setattr(threads, "_limit", 2)
    two = reconstruct_noise(noise_coefficients(channel, params=params), channel.shape, params=params)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-4)


def _wiener_reference(c: np.ndarray, noise_var: float, windows) -> np.ndarray:
    """Binghamton's rule in float64 with scipy: min over windows of max(0, mean(c^2) - s2), zeros past the border."""
    from scipy.ndimage import uniform_filter

    c64 = c.astype(np.float64)
    var = np.min([np.maximum(0.0, uniform_filter(c64**2, w, mode="constant") - noise_var) for w in windows], axis=0)
    return noise_var / (var + noise_var)


@pytest.mark.parametrize("shape", [(300, 203), (7, 9), (1, 30), (64, 8), (40, 1)])
@pytest.mark.parametrize("windows", [(3, 5, 7, 9), (1, 3), (5,), (9, 3)])
def test_wiener_gain_and_noise_equal_the_float64_reference(shape, windows, engine):
    rng = np.random.default_rng(5)
    c = (rng.normal(0, 1, shape) * rng.uniform(0, 20, shape)).astype(np.float32)  # texture of many scales
    ref = _wiener_reference(c, 9.0, windows)
    gain = wiener_noise_gain(c, 9.0, windows=windows)
    assert gain.dtype == np.float32 and gain.shape == c.shape
    np.testing.assert_allclose(gain, ref, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(wiener_noise(c, 9.0, windows=windows), c * ref, rtol=2e-5, atol=2e-5)


def test_native_and_opencv_engines_give_the_same_residual_and_fingerprint(monkeypatch):
    if not native.available():
        pytest.skip("the native kernels are not built on this machine")
    from camforensics.core.fingerprint import estimate_fingerprint
    from camforensics.core.residual import extract_residual

    rng = np.random.default_rng(6)
    images = [np.clip(rng.normal(120, 40, (240, 330, 3)), 0, 255).astype(np.uint8) for _ in range(3)]
    native_w, native_k = extract_residual(images[0]), estimate_fingerprint(images).k
    monkeypatch.setenv(native.ENV, "0")
    assert native.engine() == "opencv"
    opencv_w, opencv_k = extract_residual(images[0]), estimate_fingerprint(images).k
    for a, b in ((native_w, opencv_w), (native_k, opencv_k)):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.999999
        np.testing.assert_allclose(a, b, atol=2e-4 * float(np.abs(b).max()), rtol=0)


def test_native_kernels_refuse_bad_arguments():
    if not native.available():
        pytest.skip("the native kernels are not built on this machine")
    with pytest.raises(ValueError, match="odd sizes"):
        native.wiener(np.zeros((8, 8), np.float32), 1.0, (4,), noise=True)
    lib = native._library()
    radii = np.array([2, 1], np.int32)  # not increasing: the kernel refuses, the wrapper raises
    x = np.zeros((4, 4), np.float32)
    with pytest.raises(RuntimeError, match="status -1"):
        native._call(lib.cf_wiener, x.ctypes.data, x.ctypes.data, 4, 4, 0, 4, 1.0, radii.ctypes.data, 2, 1)


def test_native_fold_adds_the_mle_terms_of_padded_views(monkeypatch):
    if not native.available():
        pytest.skip("the native kernels are not built on this machine")
    monkeypatch.setattr(threads, "STRIP_MIN_ELEMENTS", 0)
    monkeypatch.setattr(threads, "_limit", 3)  # row strips in threads
    rng = np.random.default_rng(7)
    padded = rng.normal(0, 2, (70, 96)).astype(np.float32)
    noise, weight = padded[:67, :93], rng.uniform(0, 1, (67, 93)).astype(np.float32)  # a view and an array
    num, den = rng.normal(0, 1, (2, 67, 93)).astype(np.float32)
    num0, den0 = num.copy(), den.copy()
    native.fold(noise, weight, num, den)
    np.testing.assert_allclose(num, num0 + noise * weight, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(den, den0 + weight * weight, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        native.fold(noise[:5], weight, num, den)


def test_native_switch_is_read_at_each_call(monkeypatch):
    monkeypatch.setenv(native.ENV, "0")
    assert not native.available() and native.engine() == "opencv"
    monkeypatch.setenv(native.ENV, "off")
    assert native.engine() == "opencv"


def _zero_mean_loops(x: np.ndarray) -> np.ndarray:
    out = x.astype(np.float64)
    for dy in (0, 1):
        for dx in (0, 1):
            sub = out[dy::2, dx::2]
            sub -= sub.mean(axis=1, keepdims=True)
            sub -= sub.mean(axis=0, keepdims=True)
    return out


@pytest.mark.parametrize("shape", [(64, 96), (31, 40), (40, 31), (2, 2), (600, 512)])
def test_zero_mean_cfa_equals_the_reference_loops(shape, strips):
    rng = np.random.default_rng(3)
    x = (rng.normal(0, 3, shape) + rng.normal(0, 2, (shape[0], 1)) + rng.normal(0, 2, (1, shape[1]))).astype(np.float32)
    before = x.copy()
    got = zero_mean_cfa(x)
    np.testing.assert_array_equal(x, before)  # not modified unless asked
    np.testing.assert_allclose(got, _zero_mean_loops(x), atol=2e-5, rtol=0)
    same = zero_mean_cfa(x, overwrite=True)
    assert same is x
    np.testing.assert_allclose(x, got, atol=1e-6, rtol=0)


def test_std_of_equals_numpy():
    x = np.random.default_rng(4).normal(0.3, 2.5, (700, 900)).astype(np.float32)
    assert std_of(x) == pytest.approx(float(np.std(x.astype(np.float64))), rel=1e-9)
    assert std_of(x[:, ::2]) == pytest.approx(float(np.std(x[:, ::2].astype(np.float64))), rel=1e-9)
    assert std_of(np.zeros((0, 3), np.float32)) == 0.0


def test_strips_cover_every_row_once():
    for n in (1, 2, 7, 100, 1001):
        for parts in (1, 2, 3, 4):
            bounds = threads.strip_bounds(n, parts)
            rows = [r for a, b in bounds for r in range(a, b)]
            assert rows == list(range(n))


def test_pool_threads_do_not_split_their_work_again():
    # Work already running in the pool (a colour channel each) must not queue strips behind itself.
    assert threads.pool().submit(threads.width).result() == 1


def test_retain_freed_memory_applies_glibc_settings_once_in_a_fresh_process():
    import subprocess
    import sys

    code = (
        "from camforensics.runtime import heap; import json; "
        "a = heap.retain_freed_memory(); b = heap.retain_freed_memory(); "
        "print(json.dumps([a, b, heap.retained()]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    import json

    first, again, kept = json.loads(out)
    assert first == again == kept
    if sys.platform.startswith("linux") and "glibc" in " ".join(__import__("platform").libc_ver()):
        assert first == {"M_MMAP_MAX": 0, "M_TRIM_THRESHOLD": 2**31 - 1, "M_ARENA_MAX": 1}


def test_a_short_job_turns_numpy_huge_pages_off_unless_the_environment_chose(tmp_path):
    import os
    import subprocess
    import sys

    import cv2

    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 255, (128, 160, 3)).astype(np.uint8))
    code = (
        "import sys, numpy as np\n"
        "from camforensics.pipelines.extract import extract_residuals\n"
        "core = getattr(np, '_core', None) or np.core\n"
        "before = core.multiarray._get_madvise_hugepage()\n"
        "extract_residuals([sys.argv[1]], sys.argv[2], save_pictures=False)\n"
        "print(before, core.multiarray._get_madvise_hugepage())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}

    def flags(**extra: str) -> str:
        run = [sys.executable, "-c", code, str(photo), str(tmp_path / "out")]
        return subprocess.run(run, capture_output=True, text=True, check=True, env={**env, **extra}).stdout.split()

    before, after = flags()
    assert after == "False"  # one photo in this process: small pages (camforensics.runtime.heap)
    assert flags(NUMPY_MADVISE_HUGEPAGE="1") == ["True", "True"]  # the user's choice stands


def test_prefault_maps_the_heap_that_the_next_arrays_reuse():
    import subprocess
    import sys

    code = (
        "import json, resource, numpy as np\n"
        "from camforensics.runtime import heap\n"
        "refused = heap.prefault(64 << 20)\n"  # the allocator keeps nothing yet: nothing done
        "applied = heap.retain_freed_memory()\n"
        "np._core.multiarray._set_madvise_hugepage(False) if hasattr(np, '_core') else None\n"
        "done = heap.prefault(64 << 20)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "a = np.ones((48 << 20) // 4, np.float32)\n"
        "faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before\n"
        "print(json.dumps([refused, done, bool(applied), faults]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    import json

    refused, done, applied, faults = json.loads(out)
    assert refused is False and done is applied
    if applied:  # glibc: 48 MB written in pages already mapped (12,288 pages of 4 KiB otherwise)
        assert faults < 1000

"""The torch backend computes what the numpy engine computes (torch CPU always; CUDA where a GPU is visible).

torch's CPU build runs the same code path as CUDA (same ops, other kernels), so the CPU cases check the
definitions; the ``cuda`` cases repeat the equivalence checks on a GPU and skip without one.
"""

from __future__ import annotations

import numpy as np
import pytest
import pywt

torch = pytest.importorskip("torch")

import synth

from camforensics import accel
from camforensics.accel import (
    FingerprintAccumulatorTorch,
    channel_noise_torch,
    estimate_fingerprint_torch,
    extract_residual_torch,
    pce_torch,
)
from camforensics.accel.torch_fingerprint import (
    saturation_mask as saturation_mask_torch,
)
from camforensics.accel.torch_residual import _mirror_pad_end, wiener_noise_gain
from camforensics.accel.torch_wavelet import PeriodizedDwt2
from camforensics.core import denoise
from camforensics.core.fingerprint import FingerprintAccumulator, saturation_mask
from camforensics.core.params import FingerprintParams, ResidualParams
from camforensics.core.pce import compute_pce
from camforensics.core.residual import extract_channel_noise, extract_residual
from camforensics.errors import ParameterError, SizeMismatchError

CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA device visible"))]


def _photo(shape: tuple[int, int], seed: int, *, flat: bool = False) -> np.ndarray:
    """A realistic synthetic photo: smooth content with edges, PRNU, shot/read noise, CFA, demosaic, JPEG q92."""
    return synth.shoot(synth.make_prnu(shape, seed), seed, flat=flat)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# --- wavelet transform: coefficient for coefficient against pywt -------------------------------------------------


@pytest.mark.parametrize("wavelet", ["db4", "db2", "sym8", "haar"])
@pytest.mark.parametrize("shape", [(112, 160), (128, 96)])
def test_dwt_coefficients_equal_pywt_periodization(wavelet, shape):
    x = np.random.default_rng(1).normal(0, 40, (2, *shape)).astype(np.float32)
    levels = min(3, pywt.dwt_max_level(min(shape), wavelet))  # deeper levels make pywt warn of boundary effects
    dwt = PeriodizedDwt2(wavelet, torch.device("cpu"), dtype=torch.float64)
    approx, details = dwt.wavedec(torch.from_numpy(x).double(), levels)
    for b in range(2):
        ref = pywt.wavedec2(x[b].astype(np.float64), wavelet, mode="periodization", level=levels)
        np.testing.assert_allclose(approx[b].numpy(), ref[0], rtol=0, atol=1e-9)
        for lev in range(levels):  # ours finest first, pywt coarsest first; (cH, cV, cD) in both
            for band in range(3):
                np.testing.assert_allclose(details[lev][b, band].numpy(), ref[levels - lev][band], rtol=0, atol=1e-9)


def test_inverse_dwt_equals_pywt_and_reconstructs():
    x = np.random.default_rng(2).normal(0, 40, (3, 144, 112)).astype(np.float32)
    dwt = PeriodizedDwt2("db4", torch.device("cpu"), dtype=torch.float64)
    approx, details = dwt.wavedec(torch.from_numpy(x).double(), 4)
    np.testing.assert_allclose(dwt.waverec(approx, details).numpy(), x, rtol=0, atol=1e-9)
    # Approximation zeroed, as the denoiser does: equal to pywt's waverec2 of the same coefficients.
    ref = pywt.wavedec2(x[1].astype(np.float64), "db4", mode="periodization", level=4)
    ref[0] = np.zeros_like(ref[0])
    ours = dwt.waverec(torch.zeros_like(approx), details)[1].numpy()
    np.testing.assert_allclose(ours, pywt.waverec2(ref, "db4", mode="periodization"), rtol=0, atol=1e-9)


def test_float32_dwt_is_within_rounding_of_pywt():
    x = np.random.default_rng(3).uniform(0, 255, (1, 160, 208)).astype(np.float32)
    approx, details = PeriodizedDwt2("db4", torch.device("cpu")).wavedec(torch.from_numpy(x), 4)
    ref = pywt.wavedec2(x[0].astype(np.float64), "db4", mode="periodization", level=4)
    assert np.abs(approx[0].numpy() - ref[0]).max() < 1e-3  # approximation ~ 255 * 4 here
    assert max(np.abs(details[3][0, i].numpy() - ref[1][i]).max() for i in range(3)) < 1e-3


def test_mirror_padding_equals_numpy_symmetric():
    x = np.arange(2 * 19 * 23, dtype=np.float32).reshape(2, 19, 23)
    ours = _mirror_pad_end(torch.from_numpy(x), 16).numpy()
    np.testing.assert_array_equal(ours, np.pad(x, ((0, 0), (0, 13), (0, 9)), mode="symmetric"))


def test_wiener_gain_equals_numpy_box_filter_gain():
    c = np.random.default_rng(4).normal(0, 3, (57, 83)).astype(np.float32)
    c[20:30, 40:60] *= 10  # strong local signal: gain well below 1 there
    ours = wiener_noise_gain(torch.from_numpy(c)[None, None], 4.0, windows=(3, 5, 7, 9))[0, 0].numpy()
    ref = denoise.wiener_noise_gain(c, 4.0, windows=(3, 5, 7, 9))
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


# --- residual -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(256, 384), (301, 397)])
@pytest.mark.parametrize(
    "params",
    [ResidualParams(), ResidualParams(sigma0=3.0, enhance_alpha=7.0), ResidualParams(zero_mean=False, wiener_dft=False)],
    ids=["default", "sigma3-enhanced", "raw"],
)
def test_residual_equals_numpy_engine(device, shape, params):
    image = _photo(shape, seed=shape[1])
    before = image.copy()
    ref = extract_residual(image, params=params)
    ours = extract_residual_torch(image, params=params, device=device)
    assert ours.dtype == np.float32 and ours.shape == shape
    assert _corr(ours, ref) >= 0.9999
    assert np.abs(ours - ref).max() < 1e-3 * max(1.0, float(np.abs(ref).max()))
    np.testing.assert_array_equal(image, before)  # input not modified


@pytest.mark.parametrize("device", DEVICES)
def test_channel_noise_and_grey_input_equal_numpy_engine(device):
    image = _photo((240, 208), seed=7)
    ours = channel_noise_torch(image, device=device)
    ref = extract_channel_noise(image)
    assert len(ours) == 3
    for o, r in zip(ours, ref):
        assert o.dtype == np.float32 and o.shape == r.shape
        assert np.abs(o - r).max() < 1e-3
    grey = image[:, :, 1]
    assert _corr(extract_residual_torch(grey, device=device), extract_residual(grey)) >= 0.9999


def test_too_small_image_is_refused_with_the_numpy_message():
    with pytest.raises(ParameterError, match="too small"):
        extract_residual_torch(np.zeros((100, 200), np.uint8), device="cpu")


# --- fingerprint ----------------------------------------------------------------------------------------------


def test_saturation_mask_equals_numpy():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 240, (3, 64, 80)).astype(np.float32)
    image[0, 10:14, 20:30] = 255  # clipped plateau in R
    image[1, 5, 5] = 252  # a lone bright G pixel: not a plateau
    image[2, 30:32, 40] = 249  # B maximum below the level: nothing masked
    ours = saturation_mask_torch(torch.from_numpy(image), level=250.0).numpy()
    for c in range(3):
        np.testing.assert_array_equal(ours[c], saturation_mask(image[c], level=250.0))
    assert not ours[0].all() and ours[1].all() and ours[2].all()


@pytest.mark.parametrize("device", DEVICES)
def test_fingerprint_equals_numpy_accumulator(device):
    k = synth.make_prnu((256, 320), 11)
    images = [synth.shoot(k, j, flat=True) for j in range(4)]
    images[1] = images[1].copy()
    images[1][40:60, 100:140] = 255  # a saturated patch exercises the mask
    params = FingerprintParams()
    ref_acc = FingerprintAccumulator(params=params)
    acc = FingerprintAccumulatorTorch(params=params, device=device)
    for image in images:
        ref_acc.add(image)
        acc.add(image)
    assert acc.shape == ref_acc.shape == (256, 320, 3)
    ref, ours = ref_acc.finish(), acc.finish()
    assert ours.n_images == ref.n_images == 4 and ours.params == params
    assert ours.k.dtype == np.float32 and ours.k.shape == ref.k.shape
    assert _corr(ours.k, ref.k) >= 0.9999
    assert np.abs(ours.k - ref.k).max() < 1e-3 * float(np.abs(ref.k).max())
    assert _corr(ours.k, k) > 0.3  # and it is the planted fingerprint


def test_fingerprint_accumulator_refuses_mismatch_and_empty():
    acc = FingerprintAccumulatorTorch(device="cpu")
    with pytest.raises(ParameterError, match="at least one image"):
        acc.finish()
    acc.add(_photo((128, 128), 1))
    with pytest.raises(SizeMismatchError, match="does not match"):
        acc.add(_photo((128, 144), 2))
    assert estimate_fingerprint_torch([_photo((128, 128), 3)], device="cpu").n_images == 1


# --- PCE ------------------------------------------------------------------------------------------------------


def _assert_same_pce(ours, ref):
    assert ours.peak_shift == ref.peak_shift
    assert ours.n_shifts == ref.n_shifts
    assert abs(ours.pce - ref.pce) <= 1e-3 * abs(ref.pce) + 1e-6
    assert abs(ours.ncc - ref.ncc) <= 1e-4 * abs(ref.ncc) + 1e-9
    assert abs(ours.log10_p_fa - ref.log10_p_fa) <= 1e-3 * abs(ref.log10_p_fa) + 1e-6


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shift", [(0, 0), (7, -5), (-12, 3)])
@pytest.mark.parametrize("shape", [(256, 384), (301, 397)])
def test_pce_equals_compute_pce_with_planted_shift(device, shift, shape):
    rng = np.random.default_rng(shape[0] + shift[0])
    k = rng.normal(0, 1, shape).astype(np.float32)
    query = 0.05 * np.roll(k, shift, axis=(0, 1)) + rng.normal(0, 1, shape).astype(np.float32)
    before = query.copy()
    for shift_range in ((0, 0), (15, 15)):
        ref = compute_pce(query, k, shift_range=shift_range)
        ours = pce_torch(query, k, shift_range=shift_range, device=device)
        _assert_same_pce(ours, ref)
    assert ours.peak_shift == shift and ours.pce > 60  # the planted shift is found in the search
    np.testing.assert_array_equal(query, before)


@pytest.mark.parametrize("device", DEVICES)
def test_pce_of_real_residual_against_fingerprint(device):
    k = synth.make_prnu((256, 256), 21)
    fingerprint = FingerprintAccumulator()
    for j in range(4):
        fingerprint.add(synth.shoot(k, j, flat=True))
    kk = fingerprint.finish().k
    image = synth.shoot(k, 99)
    signal = extract_residual(image) * image.mean(axis=2, dtype=np.float32)
    other = extract_residual(_photo((256, 256), 5)) * 128.0
    for query in (signal, other):
        _assert_same_pce(pce_torch(query, kk, exclusion=7, device=device), compute_pce(query, kk, exclusion=7))
    assert pce_torch(signal, kk, device=device).pce > 60 > pce_torch(other, kk, device=device).pce


def test_pce_refuses_shape_mismatch():
    with pytest.raises(SizeMismatchError):
        pce_torch(np.zeros((8, 8), np.float32), np.zeros((8, 9), np.float32), device="cpu")


# --- device choice --------------------------------------------------------------------------------------------


def test_resolve_device_follows_cuda_availability(monkeypatch):
    import camforensics.accel.device as device_module

    monkeypatch.setattr(device_module, "_nvidia_driver_present", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert accel.resolve_device("auto") == "cuda"
    assert accel.resolve_device("cuda") == "cuda"
    assert accel.resolve_device("CUDA:0") == "cuda:0"
    assert accel.resolve_device("cpu") == "cpu"
    with pytest.raises(ParameterError, match="only 1 CUDA device"):
        accel.resolve_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert accel.resolve_device("auto") == "cpu"
    assert accel.resolve_device("cpu") == "cpu"
    with pytest.raises(ParameterError, match="sees no CUDA device.*--device cpu"):
        accel.resolve_device("cuda")
    with pytest.raises(ParameterError, match="choose one of auto, cpu, cuda"):
        accel.resolve_device("tpu")


def test_auto_without_a_gpu_driver_does_not_ask_torch(monkeypatch):
    import camforensics.accel.device as device_module

    monkeypatch.setattr(device_module, "_nvidia_driver_present", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # would say cuda if it were asked
    assert accel.resolve_device("auto") == "cpu"


def test_describe_device_reports_versions():
    info = accel.describe_device("cpu")
    assert info == {"device": "cpu", "engine": "numpy", "torch": torch.__version__, "cuda": torch.version.cuda, "name": "cpu"}


@pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without CUDA")
def test_torch_functions_refuse_cuda_without_a_gpu():
    with pytest.raises(ParameterError, match="sees no CUDA device"):
        extract_residual_torch(np.zeros((128, 128), np.uint8), device="cuda")
    with pytest.raises(ParameterError, match="unknown torch device"):
        pce_torch(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32), device="gpu0")


@pytest.mark.skipif(not CUDA, reason="no CUDA device visible")
def test_describe_cuda_device():
    info = accel.describe_device("cuda")
    assert info["engine"] == "torch" and info["cuda"] and info["name"] != "cpu"


def test_pipelines_run_the_torch_backend_with_the_numpy_engine_results(tmp_path, device_tree):
    """The --device wiring: enroll and identify through the torch backend (on the CPU build) agree with numpy."""
    from camforensics.pipelines.enroll import enroll_device
    from camforensics.pipelines.executor import Execution
    from camforensics.pipelines.identify import identify_images

    reports = {}
    for device in ("cpu", "torch-cpu"):
        lib = tmp_path / device
        execution = Execution(workers=1, device=device)
        for name in ("cam_a", "cam_b"):
            _, entry = enroll_device([device_tree / name / "flat"], name=name, library=lib, execution=execution)
            assert entry is not None
        reports[device] = identify_images([device_tree / "cam_a" / "nat"], library=lib, execution=execution)
    numpy_run, torch_run = reports["cpu"].results, reports["torch-cpu"].results
    assert reports["torch-cpu"].context["execution"]["device"]["device"] == "torch-cpu"
    for a, b in zip(numpy_run, torch_run):
        assert a["decision"]["device"] == b["decision"]["device"] == "cam_a"
        assert b["decision"]["pce"] == pytest.approx(a["decision"]["pce"], rel=2e-3)


def test_halves_of_torch_accumulators_give_the_numpy_fingerprint_and_reliability():
    """enroll's split halves with the torch backend (here on the CPU): the full sums on torch, the halves of the
    centre window by the numpy engine, harvested and merged as AccumulateState.harvest and merge_halves do."""
    from camforensics.core.fingerprint import HalvesAccumulator
    from camforensics.pipelines.enroll import AccumulateSetup, merge_halves

    images = [_photo((128, 128), 40 + i) for i in range(5)]
    ref = HalvesAccumulator()
    for img in images:
        ref.add(img)
    fp_ref, rel_ref = ref.finish()
    state = AccumulateSetup(FingerprintParams(), None, 10**8, "cpu", halves=True)()
    state.acc = HalvesAccumulator(make=lambda p: FingerprintAccumulatorTorch(params=p, device="cpu"))
    for img in images:
        state.acc.add(img)
    fp, rel = merge_halves([state.harvest()], params=FingerprintParams()).finish()
    assert fp.n_images == 5 and (rel.n_a, rel.n_b) == (rel_ref.n_a, rel_ref.n_b) == (3, 2)
    assert _corr(fp.k, fp_ref.k) >= 0.9999
    assert rel.reliability == pytest.approx(rel_ref.reliability, abs=1e-3)

"""camforensics.runtime.fft: scipy.fft's pocketfft called without importing scipy.fft, with the same results."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.fft

from camforensics.runtime import fft

SHAPES = [((64, 48), np.float32), ((61, 47), np.float32), ((5, 32, 33), np.float32), ((31, 17), np.float64), ((1, 9), np.float32)]


@pytest.mark.parametrize("shape,dtype", SHAPES)
def test_the_same_transforms_as_scipy_fft_bit_for_bit(shape, dtype):
    a = np.random.default_rng(sum(shape)).normal(size=shape).astype(dtype)
    half = fft.rfft2(a, workers=-1)
    assert half.dtype == scipy.fft.rfft2(a).dtype
    assert np.array_equal(half, scipy.fft.rfft2(a, workers=-1))
    back = fft.irfft2(half, s=shape[-2:], workers=-1)
    assert back.dtype == a.dtype and back.shape == a.shape
    assert np.array_equal(back, scipy.fft.irfft2(half, s=shape[-2:], workers=-1))
    np.testing.assert_allclose(back, a, atol=1e-4 if dtype == np.float32 else 1e-12)
    assert np.array_equal(fft.rfft2(a, workers=1), half)  # one thread or all: the same numbers


def test_the_extension_is_the_one_scipy_fft_uses():
    assert fft.backend() == "pocketfft"
    assert fft._pocketfft() is sys.modules["scipy.fft._pocketfft.pypocketfft"]


def test_without_the_extension_or_when_it_refuses_scipy_fft_does_the_work(monkeypatch):
    a = np.random.default_rng(1).normal(size=(40, 30)).astype(np.float32)
    expected = scipy.fft.rfft2(a, workers=-1)
    monkeypatch.setattr(fft, "_module", [None])
    assert fft.backend() == "scipy.fft"
    assert np.array_equal(fft.rfft2(a), expected)

    class Refusing:
        def r2c(self, *args):
            raise TypeError("incompatible function arguments")

        c2r = r2c

    monkeypatch.setattr(fft, "_module", [Refusing()])
    assert np.array_equal(fft.rfft2(a), expected)
    assert fft.backend() == "scipy.fft"  # refused once: scipy.fft from then on
    assert np.array_equal(fft.irfft2(expected, s=a.shape), scipy.fft.irfft2(expected, s=a.shape, workers=-1))


def test_other_shapes_and_dtypes_go_to_scipy_fft():
    ints = np.arange(48).reshape(6, 8)
    assert np.array_equal(fft.rfft2(ints), scipy.fft.rfft2(ints, workers=-1))
    half = scipy.fft.rfft2(np.ones((8, 8), np.float32))
    # a requested size that differs from the spectrum's (scipy pads or crops): handed to scipy.fft as it is
    assert np.array_equal(fft.irfft2(half, s=(8, 10)), scipy.fft.irfft2(half, s=(8, 10), workers=-1))


def test_identify_and_extract_never_import_scipy_fft_or_scipy_special():
    code = (
        "import sys, numpy as np\n"
        "import camforensics.pipelines.identify, camforensics.pipelines.extract\n"
        "from camforensics.core.residual import extract_residual\n"
        "from camforensics.core.pce import log10_false_alarm, spectrum_of\n"
        "from camforensics.core.figures import spectrum_db\n"
        "w = extract_residual(np.random.default_rng(0).integers(0, 255, (128, 160, 3)).astype(np.uint8))\n"
        "spectrum_of(w); spectrum_db(w, side=32); log10_false_alarm(70.0, 4)\n"
        "print(sorted(m for m in ('scipy.fft', 'scipy.special', 'numpy.f2py') if m in sys.modules))\n"
        "from camforensics.runtime import fft\n"
        "import scipy.fft\n"  # imported later all the same: it takes the extension already loaded
        "print(scipy.fft._pocketfft.basic.pfft is fft._pocketfft())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "True"]

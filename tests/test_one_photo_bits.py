"""The one-photo speed-ups of issue 21 give the bits of the code they replace: each new path is compared, bit for bit,
with the formulation it stands for (numpy's passes, the whole-plane operation, matplotlib's full import)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from camforensics.core.params import GREY_WEIGHTS
from camforensics.runtime import native

ROOT = Path(__file__).resolve().parents[1]


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _numpy_grey(img: np.ndarray) -> np.ndarray:
    """grey_from_channels' three passes on the whole image."""
    out = np.multiply(img[:, :, 0], np.float32(GREY_WEIGHTS[0]), dtype=np.float32)
    for c in (1, 2):
        out += np.multiply(img[:, :, c], np.float32(GREY_WEIGHTS[c]), dtype=np.float32)
    return out


def _needs_native(name: str) -> None:
    if not native.available() or getattr(native._library(), name, None) is None:
        pytest.skip(f"the native kernel {name} is not built here")


@pytest.mark.parametrize("view", ["plain", "rgba", "flipped", "cropped"])
def test_native_grey_of_an_8_bit_photo_has_numpy_bits(view):
    from camforensics.core.residual import to_grey

    _needs_native("cf_grey_u8")
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (517, 389, 4), dtype=np.uint8)
    img = {"plain": np.ascontiguousarray(img[:, :, :3]), "rgba": img[:, :, :3], "flipped": img[::-1, :, :3],
           "cropped": img[5:300, 7:201, :3]}[view]  # fmt: skip
    assert np.array_equal(_bits(to_grey(img)), _bits(_numpy_grey(img)))


def test_zero_mean_cfa_native_pass_has_the_numpy_passes_bits(monkeypatch):
    from camforensics.core.residual import zero_mean_cfa

    _needs_native("cf_cfa_centre")
    rng = np.random.default_rng(11)
    for shape in [(64, 96), (502, 1006), (1500, 2002)]:
        x = (rng.standard_normal(shape) * 3).astype(np.float32)
        x[::7, ::5] *= np.float32(1e-9)  # tiny values: float rounding where the sums are not exact
        monkeypatch.delenv(native.ENV, raising=False)
        ours = zero_mean_cfa(x)
        monkeypatch.setenv(native.ENV, "0")  # numpy's two broadcast passes
        theirs = zero_mean_cfa(x)
        assert np.array_equal(_bits(ours), _bits(theirs)), shape


def test_half_turn_and_centring_in_row_strips_equal_the_whole_plane_operations():
    from camforensics.core.pce import half_turn, spectrum_of
    from camforensics.runtime import fft

    rng = np.random.default_rng(2)
    a = (rng.standard_normal((1100, 1302)) * 2).astype(np.float32)
    s = spectrum_of(a)
    h, w = s.shape
    col = np.exp(2j * np.pi * np.arange(h) / h).astype(np.complex64)[:, None]
    row = np.exp(2j * np.pi * np.arange(s.f.shape[1]) / w).astype(np.complex64)[None, :]
    f = np.conjugate(s.f)
    f *= col
    f *= row
    assert np.array_equal(_bits(half_turn(s).f.view(np.float32)), _bits(f.view(np.float32)))
    for arr in (a, np.rot90(a), a[:, ::-1]):  # C-contiguous, and turned views (numpy's own subtraction)
        centred = arr - np.float32(arr.mean(dtype=np.float64))
        norm = float(np.sqrt(np.einsum("ij,ij->", centred, centred, dtype=np.float64)))
        got = spectrum_of(arr)
        assert got.norm == norm
        assert np.array_equal(_bits(got.f.view(np.float32)), _bits(fft.rfft2(centred, workers=-1).view(np.float32)))


_DRAW = r"""
import hashlib, json, sys
import numpy as np
from camforensics.core import figures
figures.import_for_drawing(drawing_process={lean})
rng = np.random.default_rng(4)
w = (rng.standard_normal((700, 900)) * 2).astype(np.float32)
view, db = figures.residual_view(w), figures.spectrum_db(w, side=256)
pictures = [figures.draw_residual(view, name="a.jpg", sha256="0" * 64),
            figures.spectrum_figure(None, name="a.jpg", sha256="0" * 64, db=db)]
print(json.dumps({{"png": [hashlib.sha256(p).hexdigest() for p in pictures], "mplot3d": "mpl_toolkits.mplot3d" in sys.modules}}))
"""


def test_a_drawing_process_leaves_out_the_3d_projection_and_draws_the_same_pictures(tmp_path):
    """The drawing helper imports matplotlib without mpl_toolkits.mplot3d (figures.import_for_drawing(
    drawing_process=True)); its pictures are the same bytes as a full import's."""
    out = {}
    for lean in (False, True):
        done = subprocess.run([sys.executable, "-c", _DRAW.format(lean=lean)], cwd=tmp_path, capture_output=True,
                              text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=True)  # fmt: skip
        out[lean] = json.loads(done.stdout)
    assert out[True]["png"] == out[False]["png"]
    assert out[False]["mplot3d"] and not out[True]["mplot3d"]

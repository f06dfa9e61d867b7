"""ROC and confusion plots (matplotlib): PNGs of the asked size that draw what they are given, bad input refused."""

import io

import numpy as np
import pytest
from PIL import Image

from camforensics.core.plots import abbreviate, confusion_plot, roc_plot
from camforensics.errors import ParameterError


def picture(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_roc_plot_is_a_png_of_the_asked_size_and_draws_the_curves():
    perfect = ([0, 0, 1], [0, 1, 1], 1.0, 0.0)
    chance = ([0, 1], [0, 1], 0.5, 0.5)
    empty = picture(roc_plot({}, title="t"))
    both = picture(roc_plot({"perfect": perfect, "chance": chance}, title="t"))
    assert both.shape == (800, 800, 3) and both.dtype == np.uint8
    assert picture(roc_plot({}, width=400, height=300)).shape == (300, 400, 3)
    # The curves add coloured (non-grey) pixels to the same axes.
    def coloured(img):
        return int((img.max(axis=2).astype(int) - img.min(axis=2) > 60).sum())

    assert coloured(both) > coloured(empty) + 500


def test_roc_plot_refuses_bad_curves():
    with pytest.raises(ParameterError, match="200"):
        roc_plot({}, width=100)
    with pytest.raises(ParameterError, match="one length"):
        roc_plot({"x": ([0, 1], [0], None, None)})
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        roc_plot({"x": ([0, 2], [0, 1], None, None)})


def test_confusion_plot_shades_cells_by_their_share_of_the_row():
    light = picture(confusion_plot([[1, 4], [4, 1]], ["a", "b"], ["a", "b"]))
    dark = picture(confusion_plot([[5, 0], [0, 5]], ["a", "b"], ["a", "b"]))
    assert light.shape == (800, 800, 3)
    assert (dark.sum(axis=2) < 200).sum() > (light.sum(axis=2) < 200).sum()  # full cells are dark blue


def test_confusion_plot_refuses_bad_input():
    with pytest.raises(ParameterError, match="do not fit"):
        confusion_plot([[1, 2]], ["a"], ["a"])
    with pytest.raises(ParameterError, match="non-empty"):
        confusion_plot(np.zeros((0, 0)), [], [])
    with pytest.raises(ParameterError, match="negative"):
        confusion_plot([[-1]], ["a"], ["a"])
    with pytest.raises(ParameterError, match="one column index"):
        confusion_plot([[2, 3]], ["x"], ["y", "unknown"], right_columns=[2])


def test_confusion_plot_frames_the_right_cells():
    m = [[2, 3]]
    default = picture(confusion_plot(m, ["x"], ["y", "unknown"]))  # "x" names no column: nothing framed
    framed = picture(confusion_plot(m, ["x"], ["y", "unknown"], right_columns=[1]))
    changed = np.nonzero((default != framed).any(axis=2))[1]
    assert changed.size and changed.mean() > default.shape[1] // 2  # the frame is on the right-hand cell


def test_abbreviate_keeps_both_ends_and_any_script():
    short = abbreviate("Samsung_GT-I9300_1_with_a_long_tail_1", 20)
    assert ".." in short and short.startswith("Samsung") and short.endswith("_1") and len(short) == 20
    assert abbreviate("ok") == "ok"
    assert abbreviate("café") == "café"


@pytest.mark.parametrize("shape,side", [((600, 1300), 256), ((99, 77), 512), ((1100, 1700), 128)])
def test_spectrum_db_equals_the_per_tile_float64_formulation(shape, side):
    """The batched float32 half-plane FFT (mirrored to the full plane) gives the Welch spectrum of the old per-tile
    float64 loop, tile order and the 48-tile cap included, away from the zero frequency (power ~0 there after the
    mean is removed: its dB is rounding noise)."""
    from camforensics.core.figures import spectrum_db

    w = np.random.default_rng(7).normal(2, 1, shape).astype(np.float32)
    w[:, ::8] += 0.5  # a periodic artefact: peaks at multiples of 1/8
    s = min(side, *shape)
    acc, n = np.zeros((s, s)), 0
    for y in range(0, shape[0] - s + 1, s):
        for x in range(0, shape[1] - s + 1, s):
            if n < 48:
                t = w[y : y + s, x : x + s].astype(np.float64)
                acc += np.abs(np.fft.fft2(t - t.mean())) ** 2
                n += 1
    expected = 10 * np.log10(np.fft.fftshift(acc / n) + 1e-12)
    got = spectrum_db(w, side=side)
    got[s // 2, s // 2] = expected[s // 2, s // 2] = 0
    assert got.shape == (s, s) and np.abs(got - expected).max() < 1e-3


def test_a_drawing_command_skips_matplotlib_s_property_docstrings_but_leaves_a_user_s_matplotlib_alone():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "{first}"
        "from camforensics.core.figures import import_for_drawing, residual_figure\n"
        "import numpy as np\n"
        "import_for_drawing()\n"
        "from matplotlib.lines import Line2D\n"
        "png = residual_figure(np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32), name='x', sha256=None)\n"
        "print(png[:4] == b'\\x89PNG', 'see matplotlib' in (Line2D.set.__doc__ or ''))\n"
    )
    fresh = subprocess.run([sys.executable, "-c", code.format(first="")], capture_output=True, text=True, timeout=120)
    assert fresh.stdout.split() == ["True", "True"], fresh.stderr
    theirs = subprocess.run([sys.executable, "-c", code.format(first="import matplotlib.lines\n")], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert theirs.stdout.split() == ["True", "False"], theirs.stderr


@pytest.mark.parametrize("shape,side", [((600, 1300), 256), ((99, 77), 512), ((5000, 600), 100), ((1030, 1540), 512)])
def test_spectrum_db_a_few_tiles_at_a_time_equals_all_tiles_at_once_bit_for_bit(shape, side):
    """The tiles transformed a few at a time (reused buffers) give the bits of the batch of all tiles at once."""
    from camforensics.core.figures import spectrum_db
    from camforensics.runtime import fft

    w = np.random.default_rng(3).normal(0, 3, shape).astype(np.float32)
    s = min(side, *shape)
    ny, nx = shape[0] // s, shape[1] // s
    rows = min(ny, -(-48 // nx))
    tiles = w[: rows * s, : nx * s].reshape(rows, s, nx, s).swapaxes(1, 2).reshape(-1, s, s)[:48].copy()
    tiles -= tiles.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(np.float32)
    half = fft.rfft2(tiles, workers=-1)
    p = np.square(half.real)
    p += np.square(half.imag)
    power = p.sum(axis=0, dtype=np.float64) / len(tiles)
    full = np.empty((s, s), np.float64)
    nh = power.shape[1]
    full[:, :nh] = power
    full[:, nh:] = power[(-np.arange(s)) % s][:, s - np.arange(nh, s)]
    assert np.array_equal(spectrum_db(w, side=side), 10.0 * np.log10(np.fft.fftshift(full) + 1e-12))

"""ROC and confusion plots: pictures of the right size, with the curve and the cells where they belong."""

import numpy as np
import pytest

from camforensics.core.plots import HEAT_TOP, PALETTE, abbreviate, confusion_plot, roc_plot
from camforensics.errors import ParameterError


def plot_box(img):
    """Pixel bounds (x0, x1, y0, y1) of the plot frame: the long black lines of the picture."""
    black = (img == 0).all(axis=2)
    rows = np.flatnonzero(black.sum(axis=1) > img.shape[1] // 2)
    cols = np.flatnonzero(black.sum(axis=0) > img.shape[0] // 2)
    return cols[0], cols[-1], rows[0], rows[-1]


def test_roc_plot_draws_each_curve_where_its_points_are():
    perfect = ([0, 0, 1], [0, 1, 1], 1.0, 0.0)
    chance = ([0, 1], [0, 1], 0.5, 0.5)
    img = roc_plot({"perfect": perfect, "chance": chance}, title="t")
    assert img.shape == (800, 800, 3) and img.dtype == np.uint8
    x0, x1, y0, y1 = plot_box(roc_plot({}))  # the frame of the same layout, not hidden by curves
    assert x1 - x0 > 500 and y1 - y0 > 500
    # The perfect curve runs along the top edge; the chance curve through the centre.
    assert (img[y0 - 2 : y0 + 3, (x0 + x1) // 2] == PALETTE[0]).all(axis=1).any()
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    assert (img[cy - 2 : cy + 3, cx - 2 : cx + 3] == PALETTE[1]).all(axis=2).any()
    assert not (img[cy - 2 : cy + 3, cx - 2 : cx + 3] == PALETTE[0]).all(axis=2).any()


def test_roc_plot_sizes_and_bad_curves():
    assert roc_plot({}, width=400, height=300).shape == (300, 400, 3)
    with pytest.raises(ParameterError, match="200"):
        roc_plot({}, width=100)
    with pytest.raises(ParameterError, match="one length"):
        roc_plot({"x": ([0, 1], [0], None, None)})
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        roc_plot({"x": ([0, 2], [0, 1], None, None)})


def test_confusion_plot_colours_cells_by_their_share_of_the_row():
    m = [[5, 0, 0], [0, 0, 4]]
    img = confusion_plot(m, ["a", "b"], ["a", "b", "unknown"])
    assert img.shape == (800, 800, 3)
    heat_top = tuple(int(v) for v in HEAT_TOP)
    full = (img == heat_top).all(axis=2)
    ys, xs = np.nonzero(full)
    # Two full cells: (a, a) top-left and (b, unknown) bottom-right of the grid.
    assert xs.size and ys.size
    left_cell = full[:, : (xs.min() + xs.max()) // 2]
    right_cell = full[:, (xs.min() + xs.max()) // 2 :]
    assert np.nonzero(left_cell)[0].mean() < np.nonzero(right_cell)[0].mean()


def test_confusion_plot_refuses_bad_input():
    with pytest.raises(ParameterError, match="does not fit"):
        confusion_plot([[1, 2]], ["a"], ["a"])
    with pytest.raises(ParameterError, match="non-empty"):
        confusion_plot(np.zeros((0, 0)), [], [])
    with pytest.raises(ParameterError, match="negative"):
        confusion_plot([[-1]], ["a"], ["a"])


def test_abbreviate_keeps_both_ends():
    short = abbreviate("Samsung_GT-I9300_1", 80, scale=0.5)
    assert ".." in short and short.startswith("Sam") and short.endswith("_1")
    assert abbreviate("ok", 80, scale=0.5) == "ok"
    assert abbreviate("caf\u00e9", 200, scale=0.5) == "caf?"


def test_confusion_plot_frames_the_right_cells():
    m = [[2, 3]]
    default = confusion_plot(m, ["x"], ["y", "unknown"])  # "x" names no column: nothing framed
    framed = confusion_plot(m, ["x"], ["y", "unknown"], right_columns=[1])  # an open-set row: rejection is right
    changed = np.nonzero((default != framed).any(axis=2))[1]
    assert changed.size and changed.min() > default.shape[1] // 2  # only the right-hand cell changed
    with pytest.raises(ParameterError, match="one column index"):
        confusion_plot(m, ["x"], ["y", "unknown"], right_columns=[2])

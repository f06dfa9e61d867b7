"""Plots for people, drawn with OpenCV into numpy arrays: ROC curves and confusion matrices.

Pure: every function returns an RGB ``uint8`` array of shape (height, width, 3) and writes nothing (encode it
with ``cv2.imencode(".png", picture[:, :, ::-1])``). Text uses OpenCV's Hershey font, which has ASCII only:
other characters are drawn as ``?``. Sizes are tuned to stay legible at the default 800 x 800.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from camforensics.errors import ParameterError

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRID = (225, 225, 225)
GREY = (150, 150, 150)
# Curve colours (RGB), the "tab10" palette: distinguishable, also in grey print.
PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
HEAT_TOP = np.array((8, 48, 107), np.float64)  # dark blue of a full cell; an empty cell is white


def _ascii(text: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in str(text))


def _text_size(text: str, scale: float, thickness: int = 1) -> tuple[int, int]:
    (w, h), _ = cv2.getTextSize(_ascii(text), FONT, scale, thickness)
    return w, h


def _put(
    img: np.ndarray,
    text: str,
    xy: tuple[float, float],
    *,
    scale: float,
    color: tuple[int, int, int] = BLACK,
    thickness: int = 1,
    ha: str = "left",
    va: str = "baseline",
) -> None:
    """Draw text with its anchor at ``xy``: ``ha`` left/center/right, ``va`` baseline/center/top."""
    text = _ascii(text)
    w, h = _text_size(text, scale, thickness)
    x = xy[0] - {"left": 0, "center": w / 2, "right": w}[ha]
    y = xy[1] + {"baseline": 0, "center": h / 2, "top": h}[va]
    cv2.putText(img, text, (round(x), round(y)), FONT, scale, color, thickness, cv2.LINE_AA)


def _put_vertical(img: np.ndarray, text: str, center: tuple[float, float], *, scale: float, thickness: int = 1) -> None:
    """Dark text turned 90 degrees counter-clockwise (read bottom to top), centred at ``center``."""
    text = _ascii(text)
    w, h = _text_size(text, scale, thickness)
    pad = max(2, h // 2)
    strip = np.full((h + 2 * pad, w + 2 * pad, 3), 255, np.uint8)
    cv2.putText(strip, text, (pad, h + pad), FONT, scale, BLACK, thickness, cv2.LINE_AA)
    strip = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
    sh, sw = strip.shape[:2]
    y0, x0 = round(center[1] - sh / 2), round(center[0] - sw / 2)
    # Clip to the picture; dark-on-light text merges with np.minimum.
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(img.shape[0], y0 + sh), min(img.shape[1], x0 + sw)
    if ye > ys and xe > xs:
        img[ys:ye, xs:xe] = np.minimum(img[ys:ye, xs:xe], strip[ys - y0 : ye - y0, xs - x0 : xe - x0])


def _dashed(img: np.ndarray, p: tuple[float, float], q: tuple[float, float], color, *, dash: int = 8) -> None:
    length = float(np.hypot(q[0] - p[0], q[1] - p[1]))
    n = max(1, int(length // dash))
    for i in range(0, n, 2):
        a, b = i / n, min(1.0, (i + 1) / n)
        pa = (round(p[0] + a * (q[0] - p[0])), round(p[1] + a * (q[1] - p[1])))
        pb = (round(p[0] + b * (q[0] - p[0])), round(p[1] + b * (q[1] - p[1])))
        cv2.line(img, pa, pb, color, 1, cv2.LINE_AA)


def abbreviate(text: str, max_width: int, *, scale: float) -> str:
    """Shorten ``text`` in the middle (``Samsung..I9300_1``) until it is at most ``max_width`` pixels wide.

    The middle goes because device names of one model differ at their ends.
    """
    text = _ascii(text)
    if _text_size(text, scale)[0] <= max_width:
        return text
    keep = len(text)
    while keep > 2:
        keep -= 1
        head = (keep + 1) // 2
        short = text[:head] + ".." + text[len(text) - (keep - head) :]
        if _text_size(short, scale)[0] <= max_width:
            return short
    return text[:1] + ".."


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"


def roc_plot(
    curves: Mapping[str, Sequence[Any]],
    *,
    title: str = "ROC",
    width: int = 800,
    height: int = 800,
) -> np.ndarray:
    """ROC curves on one set of axes, with grid, chance diagonal, EER line and a legend of AUC and EER.

    Parameters
    ----------
    curves : mapping of str to (fpr, tpr, auc, eer)
        Per label: the curve's points (e.g. from :func:`camforensics.core.metrics.roc_curve`) and its AUC and
        EER (None when undefined). The EER is marked on the curve where FPR = FNR. Curves are drawn in the
        mapping's order, ten colours then repeating.
    title : str, keyword-only
    width, height : int, keyword-only
        Picture size in pixels (at least 200 each).

    Returns
    -------
    ndarray
        RGB uint8, shape (height, width, 3).

    Raises
    ------
    ParameterError
        A size below 200 pixels, or a curve whose fpr and tpr differ in length or leave [0, 1].
    """
    if width < 200 or height < 200:
        raise ParameterError(f"a ROC plot needs at least 200 x 200 pixels, not {width} x {height}")
    img = np.full((height, width, 3), 255, np.uint8)
    k = max(0.6, min(width, height) / 800.0)  # text scale follows the picture size, legible when small
    small, normal = 0.5 * k, 0.6 * k
    left, right, top, bottom = round(86 * k), round(28 * k), round(60 * k), round(76 * k)
    x0, x1, y0, y1 = left, width - right, top, height - bottom

    def at(f: float, t: float) -> tuple[float, float]:
        return x0 + f * (x1 - x0), y1 - t * (y1 - y0)

    for i in range(11):
        v = i / 10
        color = GRID if i % 2 else (205, 205, 205)
        cv2.line(img, tuple(map(round, at(v, 0))), tuple(map(round, at(v, 1))), color, 1)
        cv2.line(img, tuple(map(round, at(0, v))), tuple(map(round, at(1, v))), color, 1)
        if i % 2 == 0:
            bx, by = at(v, 0)
            cv2.line(img, (round(bx), round(by)), (round(bx), round(by + 6 * k)), BLACK, 1)
            _put(img, f"{v:.1f}", (bx, by + 10 * k), scale=small, ha="center", va="top")
            lx, ly = at(0, v)
            cv2.line(img, (round(lx - 6 * k), round(ly)), (round(lx), round(ly)), BLACK, 1)
            _put(img, f"{v:.1f}", (lx - 10 * k, ly), scale=small, ha="right", va="center")
    _dashed(img, at(0, 0), at(1, 1), GREY)  # chance
    _dashed(img, at(0, 1), at(1, 0), (200, 200, 200), dash=4)  # FPR = FNR: curves cross it at their EER
    cv2.rectangle(img, (x0, y0), (x1, y1), BLACK, 1)

    legend = []
    for n, (label, curve) in enumerate(curves.items()):
        fpr, tpr, area, eer = curve
        fpr, tpr = np.asarray(fpr, np.float64).ravel(), np.asarray(tpr, np.float64).ravel()
        if fpr.shape != tpr.shape or fpr.size == 0:
            raise ParameterError(f"curve {label!r}: fpr and tpr must be non-empty and of one length")
        if not (np.all((fpr >= 0) & (fpr <= 1)) and np.all((tpr >= 0) & (tpr <= 1))):
            raise ParameterError(f"curve {label!r}: rates must lie in [0, 1]")
        color = PALETTE[n % len(PALETTE)]
        pts = np.array([at(f, t) for f, t in zip(fpr, tpr)], np.float64)
        cv2.polylines(img, [np.round(pts).astype(np.int32)], False, color, max(1, round(2 * k)), cv2.LINE_AA)
        if eer is not None and np.isfinite(eer):
            cx, cy = at(float(eer), 1.0 - float(eer))
            cv2.circle(img, (round(cx), round(cy)), max(3, round(5 * k)), color, -1, cv2.LINE_AA)
        legend.append((f"{label}: AUC {_fmt(area)}, EER {_fmt(eer)}", color))

    if legend:
        line_h = round(24 * k)
        swatch = round(26 * k)
        max_text = (x1 - x0) - swatch - round(30 * k)
        texts = [abbreviate(t, max_text, scale=small) for t, _ in legend]
        box_w = swatch + round(22 * k) + max(_text_size(t, small)[0] for t in texts)
        box_h = line_h * len(texts) + round(10 * k)
        bx1, by1 = x1 - round(10 * k), y1 - round(10 * k)
        bx0, by0 = bx1 - box_w, by1 - box_h
        cv2.rectangle(img, (bx0, by0), (bx1, by1), WHITE, -1)
        cv2.rectangle(img, (bx0, by0), (bx1, by1), GREY, 1)
        for i, (text, (_, color)) in enumerate(zip(texts, legend)):
            cy = by0 + round(5 * k) + line_h * i + line_h / 2
            sx = bx0 + round(8 * k)
            cv2.line(img, (sx, round(cy)), (sx + swatch, round(cy)), color, max(1, round(3 * k)), cv2.LINE_AA)
            _put(img, text, (sx + swatch + round(8 * k), cy), scale=small, va="center")

    _put(img, title, (width / 2, top / 2), scale=0.75 * k, thickness=2 if k >= 0.75 else 1, ha="center", va="center")
    _put(img, "false positive rate", ((x0 + x1) / 2, height - 18 * k), scale=normal, ha="center")
    _put_vertical(img, "true positive rate", (22 * k, (y0 + y1) / 2), scale=normal)
    return img


def _heat(v: float) -> tuple[int, int, int]:
    c = (1.0 - v) * 255.0 + v * HEAT_TOP
    return tuple(int(x) for x in np.rint(c))  # type: ignore[return-value]


def confusion_plot(
    matrix: Any,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    title: str = "confusion matrix",
    right_columns: Sequence[int | None] | None = None,
    width: int = 800,
    height: int = 800,
) -> np.ndarray:
    """Heat map of a confusion matrix: rows true labels, columns predicted labels, counts in the cells.

    A cell's colour is its share of its row (white 0 to dark blue 1), so each row reads as that label's
    recall and errors; the count is written in every cell large enough to hold it. Long labels are
    shortened in the middle; column labels are turned to read bottom to top.

    Parameters
    ----------
    matrix : array_like of int, shape (n_rows, n_cols)
    row_labels, col_labels : sequence of str
    title : str, keyword-only
    right_columns : sequence of int or None, optional, keyword-only
        Per row, the column of the right prediction, framed in black (None: no right column). Default: the
        column of the same label. Open-set matrices pass the rejection column for labels outside the classes
        (see :class:`camforensics.core.metrics.ConfusionMatrix`).
    width, height : int, keyword-only
        Picture size in pixels (at least 200 each).

    Returns
    -------
    ndarray
        RGB uint8, shape (height, width, 3).

    Raises
    ------
    ParameterError
        An empty or negative matrix, labels or ``right_columns`` that do not fit its shape, or a size below
        200 pixels.
    """
    m = np.asarray(matrix)
    if m.ndim != 2 or m.size == 0:
        raise ParameterError(f"a confusion matrix must be a non-empty 2-D array, not shape {m.shape}")
    if (m < 0).any():
        raise ParameterError("a confusion matrix holds counts; negative values are not allowed")
    if m.shape != (len(row_labels), len(col_labels)):
        raise ParameterError(
            f"matrix shape {m.shape} does not fit {len(row_labels)} row and {len(col_labels)} column labels"
        )
    if right_columns is not None and (
        len(right_columns) != m.shape[0] or any(j is not None and not 0 <= j < m.shape[1] for j in right_columns)
    ):
        raise ParameterError(f"right_columns must give one column index (or None) per row of the {m.shape} matrix")
    if width < 200 or height < 200:
        raise ParameterError(f"a confusion plot needs at least 200 x 200 pixels, not {width} x {height}")
    img = np.full((height, width, 3), 255, np.uint8)
    k = max(0.6, min(width, height) / 800.0)  # as in roc_plot
    n_rows, n_cols = m.shape
    top, right, axis = round(60 * k), round(20 * k), round(34 * k)  # axis: room for "true" / "predicted"
    label_scale = 0.5 * k if max(n_rows, n_cols) <= 20 else 0.4 * k
    max_label = round(0.3 * min(width, height))
    rows = [abbreviate(r, max_label, scale=label_scale) for r in row_labels]
    cols = [abbreviate(c, max_label, scale=label_scale) for c in col_labels]
    left = axis + max(_text_size(r, label_scale)[0] for r in rows) + round(12 * k)
    bottom = axis + max(_text_size(c, label_scale)[0] for c in cols) + round(16 * k)
    cell = max(1, min((width - left - right) // n_cols, (height - top - bottom) // n_rows))
    gx0 = left + ((width - left - right) - cell * n_cols) // 2
    gy0 = top
    gx1, gy1 = gx0 + cell * n_cols, gy0 + cell * n_rows

    row_sums = m.sum(axis=1)
    widest = _text_size(str(int(m.max())), 1.0)[0]
    count_scale = min(0.7 * k, 0.7 * cell / max(widest, 1), cell / 40.0)  # fits the cell
    for i in range(n_rows):
        for j in range(n_cols):
            v = m[i, j] / row_sums[i] if row_sums[i] else 0.0
            p, q = (gx0 + j * cell, gy0 + i * cell), (gx0 + (j + 1) * cell, gy0 + (i + 1) * cell)
            cv2.rectangle(img, p, q, _heat(float(v)), -1)
            if count_scale >= 0.3:
                color = WHITE if v > 0.5 else BLACK if m[i, j] else GREY  # zeros recede
                _put(
                    img,
                    str(int(m[i, j])),
                    ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2),
                    scale=count_scale,
                    color=color,
                    ha="center",
                    va="center",
                )
    for i in range(n_rows + 1):
        cv2.line(img, (gx0, gy0 + i * cell), (gx1, gy0 + i * cell), (190, 190, 190), 1)
    for j in range(n_cols + 1):
        cv2.line(img, (gx0 + j * cell, gy0), (gx0 + j * cell, gy1), (190, 190, 190), 1)
    cv2.rectangle(img, (gx0, gy0), (gx1, gy1), BLACK, 1)

    # Frame the cells of right predictions (rows and columns need not share an order).
    if right_columns is None:
        col_of = {c: j for j, c in enumerate(col_labels)}
        right_columns = [col_of.get(r) for r in row_labels]
    for i, j in enumerate(right_columns):
        if j is not None:
            inset = 1 if cell >= 12 else 0  # a 2-pixel frame inside the cell, over the grey grid
            p, q = (
                (gx0 + j * cell + inset, gy0 + i * cell + inset),
                (gx0 + (j + 1) * cell - inset, gy0 + (i + 1) * cell - inset),
            )
            cv2.rectangle(img, p, q, BLACK, 2 if inset else 1)

    row_w = max(_text_size(r, label_scale)[0] for r in rows)
    col_w = max(_text_size(c, label_scale)[0] for c in cols)
    for i, r in enumerate(rows):
        _put(img, r, (gx0 - 8 * k, gy0 + (i + 0.5) * cell), scale=label_scale, ha="right", va="center")
    for j, c in enumerate(cols):
        w, _ = _text_size(c, label_scale)
        _put_vertical(img, c, (gx0 + (j + 0.5) * cell, gy1 + 8 * k + w / 2), scale=label_scale)
    _put(img, title, (width / 2, top / 2), scale=0.75 * k, thickness=2 if k >= 0.75 else 1, ha="center", va="center")
    _put(img, "predicted", ((gx0 + gx1) / 2, min(height - 8 * k, gy1 + col_w + 36 * k)), scale=0.6 * k, ha="center")
    _put_vertical(img, "true", (max(12 * k, gx0 - row_w - 28 * k), (gy0 + gy1) / 2), scale=0.6 * k)
    return img

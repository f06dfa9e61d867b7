"""ROC and confusion plots of ``camforensics evaluate``, drawn with matplotlib (Agg, imported when drawing).

Both return PNG bytes of about ``width`` x ``height`` pixels. Names are drawn as they are (non-ASCII included);
long labels are shortened in the middle (:func:`abbreviate`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from camforensics.errors import ParameterError

DPI = 100
MAX_LABEL = 24  # characters of an axis label before it is shortened in the middle


def abbreviate(text: str, max_chars: int = MAX_LABEL) -> str:
    """``text`` shortened in the middle to ``max_chars`` (both ends kept: model and device suffix)."""
    if len(text) <= max_chars:
        return text
    keep = max_chars - 2
    return text[: (keep + 1) // 2] + ".." + text[len(text) - keep // 2 :]


def _size(width: int, height: int, what: str) -> tuple[float, float]:
    if width < 200 or height < 200:
        raise ParameterError(f"a {what} needs at least 200 x 200 pixels, not {width} x {height}")
    return width / DPI, height / DPI


def _png(fig: Any) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def roc_plot(
    curves: Mapping[str, Sequence[Any]], *, title: str = "ROC", width: int = 800, height: int = 800
) -> bytes:
    """ROC curves on one set of axes, with grid, chance diagonal, the EER point and a legend of AUC and EER.

    Parameters
    ----------
    curves : mapping of str to (fpr, tpr, auc, eer)
        Per label: the curve's points (e.g. from :func:`camforensics.core.metrics.roc_curve`) and its AUC and
        EER (None when undefined). The EER is marked on the curve where FPR = FNR.
    title : str, keyword-only
    width, height : int, keyword-only
        Picture size in pixels (at least 200 each).

    Raises
    ------
    ParameterError
        A size below 200 pixels, or a curve whose fpr and tpr differ in length or leave [0, 1].
    """
    figsize = _size(width, height, "ROC plot")
    checked = []
    for label, curve in curves.items():
        fpr, tpr, area, eer = curve
        fpr, tpr = np.asarray(fpr, np.float64).ravel(), np.asarray(tpr, np.float64).ravel()
        if fpr.shape != tpr.shape or fpr.size == 0:
            raise ParameterError(f"curve {label!r}: fpr and tpr must be non-empty and of one length")
        if not (np.all((fpr >= 0) & (fpr <= 1)) and np.all((tpr >= 0) & (tpr <= 1))):
            raise ParameterError(f"curve {label!r}: rates must lie in [0, 1]")
        checked.append((label, fpr, tpr, area, eer))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=0.8, label="chance")
    ax.plot([0, 1], [1, 0], ls="--", color="#bbb", lw=0.6)  # FPR = FNR: the EER points lie on it
    for label, fpr, tpr, area, eer in checked:
        legend = abbreviate(str(label), 40)
        if area is not None:
            legend += f", AUC {area:.3f}"
        if eer is not None:
            legend += f", EER {eer:.3f}"
        (line,) = ax.plot(fpr, tpr, lw=1.6, label=legend, drawstyle="default")
        if eer is not None:
            ax.plot([eer], [1 - eer], "o", mfc="none", mec=line.get_color(), ms=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.005)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def confusion_plot(
    matrix: Any,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    title: str = "confusion matrix",
    right_columns: Sequence[int | None] | None = None,
    width: int = 800,
    height: int = 800,
) -> bytes:
    """Heat map of a confusion matrix: rows true labels, columns predicted labels, counts in the cells.

    A cell's colour is its share of its row (white 0 to dark blue 1), so each row reads as that label's recall
    and errors. The cell of the right prediction of each row is framed in black.

    Parameters
    ----------
    matrix : array_like of int, shape (n_rows, n_cols)
    row_labels, col_labels : sequence of str
    title : str, keyword-only
    right_columns : sequence of int or None, optional, keyword-only
        Per row, the column of the right prediction (None: no right column). Default: the column of the same
        label. Open-set matrices pass the rejection column for labels outside the classes.
    width, height : int, keyword-only

    Raises
    ------
    ParameterError
        An empty or negative matrix, labels that do not fit its shape, bad ``right_columns``, or a size below
        200 pixels.
    """
    m = np.asarray(matrix)
    if m.ndim != 2 or m.size == 0:
        raise ParameterError(f"a confusion matrix must be a non-empty 2-D array, not shape {m.shape}")
    if (m < 0).any():
        raise ParameterError("a confusion matrix holds counts; negative values are not allowed")
    if m.shape != (len(row_labels), len(col_labels)):
        raise ParameterError(
            f"labels ({len(row_labels)} rows, {len(col_labels)} columns) do not fit the matrix of shape {m.shape}"
        )
    if right_columns is not None and (
        len(right_columns) != m.shape[0] or any(j is not None and not 0 <= j < m.shape[1] for j in right_columns)
    ):
        raise ParameterError(f"right_columns must give one column index (or None) per row of the {m.shape} matrix")
    figsize = _size(width, height, "confusion plot")
    if right_columns is None:
        right_columns = [list(col_labels).index(r) if r in col_labels else None for r in row_labels]
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    small = max(m.shape) > 20
    ax.set_xticks(range(m.shape[1]), labels=[abbreviate(str(c)) for c in col_labels], rotation=90, fontsize=6 if small else 8)
    ax.set_yticks(range(m.shape[0]), labels=[abbreviate(str(r)) for r in row_labels], fontsize=6 if small else 8)
    if max(m.shape) <= 30:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if m[i, j]:
                    ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=6 if small else 8,
                            color="white" if share[i, j] > 0.5 else "black")  # fmt: skip
    for i, j in enumerate(right_columns):
        if j is not None:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=1.5))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true label's items")
    ax.set_title(title, fontsize=10)
    return _png(fig)

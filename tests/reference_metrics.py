"""The hand-written ROC of camforensics before scikit-learn: the reference its replacement is tested against."""

from __future__ import annotations

from typing import Any

import numpy as np

from camforensics.core.metrics import RocCurve


def roc_curve(scores: Any, labels: Any) -> RocCurve:
    """Step ROC curve of the detector ``score > threshold``, one point per distinct score (ties together).

    Tied scores move the curve diagonally in one step, as a threshold cannot separate them; the area under
    that step counts each tied (positive, negative) pair as half a correct ordering.

    Parameters
    ----------
    scores : array_like of float
        Detector scores (higher means "more likely a match"); +-inf allowed, NaN refused.
    labels : array_like of bool or {0, 1}
        True where the pair really matches.

    Returns
    -------
    RocCurve
        ``fpr``, ``tpr`` and ``thresholds`` of ``k + 1`` points for ``k`` distinct scores: point 0 is
        ``(0, 0)`` at the largest score (nothing is above it), the last is ``(1, 1)`` at ``-inf``.

    Raises
    ------
    ParameterError
        Empty input, lengths that differ, NaN scores, labels not boolean, or labels of one class only (a
        rate with no pair to count is undefined).

    References
    ----------
    T. Fawcett, "An introduction to ROC analysis", Pattern Recognition Letters 27 (2006) 861-874.
    """
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # Last index of each group of equal scores (``!=`` rather than ``diff``: inf - inf is NaN).
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    tp = np.cumsum(y)[ends]
    fp = ends + 1 - tp
    n_pos, n_neg = tp[-1], fp[-1]
    tpr = np.r_[0, tp] / n_pos
    fpr = np.r_[0, fp] / n_neg
    thresholds = np.r_[s[ends], -np.inf]
    return (fpr.astype(np.float64), tpr.astype(np.float64), thresholds)

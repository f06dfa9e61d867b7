"""The hand-written ROC of camforensics before scikit-learn: the reference its replacement is tested against."""

from __future__ import annotations

from typing import Any

import numpy as np

from camforensics.core.metrics import RocCurve


def roc_curve(scores: Any, labels: Any) -> RocCurve:
    """The hand-written step ROC (its contract: :func:`camforensics.core.metrics.roc_curve`, Fawcett 2006)."""
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

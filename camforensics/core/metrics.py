"""Detection and classification metrics: ROC, AUC, EER, rates at a threshold, confusion matrices.

Pure numpy. A detector here says "positive" when ``score > threshold`` (strictly), as the PRNU rule PCE > 60
does; every curve and rate in this module follows that one rule, so a point of :func:`roc_curve` and
:func:`rates_at_threshold` at its threshold always agree.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from camforensics.errors import ParameterError

UNKNOWN = "unknown"  # the column of predictions that name no class (None, or a rejected query)


class RocCurve(NamedTuple):
    """A step ROC curve: point ``i`` is the detector ``score > thresholds[i]``."""

    fpr: np.ndarray  # false positive rate of each point, non-decreasing from 0 to 1
    tpr: np.ndarray  # true positive rate of each point, non-decreasing from 0 to 1
    thresholds: np.ndarray  # decreasing: the largest score first (nothing above it), -inf last (everything)


class EqualErrorRate(NamedTuple):
    """Where the false positive rate equals the false negative rate (1 - TPR) on the ROC curve."""

    eer: float  # the common error rate, 0..1
    threshold: float  # the score threshold there (interpolated, see equal_error_rate)


@dataclass(frozen=True)
class Rates:
    """Counts and rates of the detector ``score > threshold``."""

    threshold: float
    tp: int  # positives above the threshold
    fp: int  # negatives above the threshold
    tn: int  # negatives at or below the threshold
    fn: int  # positives at or below the threshold
    tpr: float | None  # tp / (tp + fn); None without positives (undefined)
    fpr: float | None  # fp / (fp + tn); None without negatives (undefined)

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "tp": self.tp,
            "fp": self.fp,
            "tn": self.tn,
            "fn": self.fn,
            "tpr": self.tpr,
            "fpr": self.fpr,
        }


def _scores_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 scores and boolean labels of one length (at least one pair)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    raw = np.asarray(labels).ravel()
    if s.size == 0:
        raise ParameterError("no scores given: ROC, AUC, EER and rates need at least one scored pair")
    if raw.shape != s.shape:
        raise ParameterError(f"{s.size} scores but {raw.size} labels; give one label per score")
    if np.isnan(s).any():
        raise ParameterError(f"{int(np.isnan(s).sum())} scores are NaN; drop them (or fix their source) first")
    if raw.dtype != np.bool_:
        if not np.isin(raw, (0, 1)).all():
            raise ParameterError("labels must be booleans or 0/1 (1: the pair is a true match)")
        raw = raw.astype(bool)
    return s, raw


def _both_classes(y: np.ndarray, what: str) -> None:
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        only = "positive (matching)" if n_pos else "negative (non-matching)"
        raise ParameterError(
            f"{what} is undefined: all {y.size} pairs are {only}; it needs both matching and non-matching pairs"
        )


def roc_curve(scores: Any, labels: Any) -> RocCurve:
    """Step ROC curve of the detector ``score > threshold``, one point per distinct score (ties together).

    Tied scores move the curve diagonally in one step, as a threshold cannot separate them; the area under
    that step counts each tied (positive, negative) pair as half a correct ordering. Computed by
    ``sklearn.metrics.roc_curve`` (all points kept).

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
    s, y = _scores_labels(scores, labels)
    _both_classes(y, "the ROC curve")
    from sklearn.metrics import roc_curve as sk_roc_curve

    # scikit-learn takes finite scores only: +-inf stand in as values beyond every finite one (order kept), and
    # are put back in the thresholds. Its thresholds (">= t", first +inf) become ours ("> t", last -inf).
    finite = s[np.isfinite(s)]
    hi = float(finite.max()) if finite.size else 0.0
    lo = float(finite.min()) if finite.size else 0.0
    top, bottom = hi + 1.0 + abs(hi), lo - 1.0 - abs(lo)
    stand_in = np.where(s == np.inf, top, np.where(s == -np.inf, bottom, s))
    fpr, tpr, th = sk_roc_curve(y, stand_in, drop_intermediate=False)
    thresholds = np.r_[th[1:], -np.inf]
    thresholds = np.where(thresholds == top, np.inf, np.where(thresholds == bottom, -np.inf, thresholds))
    return RocCurve(fpr.astype(np.float64), tpr.astype(np.float64), thresholds.astype(np.float64))


def auc(fpr: Any, tpr: Any) -> float:
    """Area under a ROC curve by the trapezoid rule.

    On the curve of :func:`roc_curve` this equals the Mann-Whitney statistic ``U / (n_pos * n_neg)``: the
    probability that a random matching pair scores above a random non-matching one, ties counted 1/2.

    Parameters
    ----------
    fpr, tpr : array_like of float
        Points of the curve in order of increasing ``fpr``.

    Raises
    ------
    ParameterError
        Fewer than two points, lengths that differ, or ``fpr`` decreasing.

    References
    ----------
    J. A. Hanley, B. J. McNeil, "The meaning and use of the area under a ROC curve", Radiology 143 (1982).
    """
    x = np.asarray(fpr, dtype=np.float64).ravel()
    y = np.asarray(tpr, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size < 2:
        raise ParameterError(f"a ROC curve needs at least two (fpr, tpr) points of one length, not {x.size}, {y.size}")
    if (np.diff(x) < 0).any():
        raise ParameterError("fpr must be non-decreasing along the curve (give the points of roc_curve in order)")
    from sklearn.metrics import auc as sk_auc

    return float(sk_auc(x, y))


def roc_auc(scores: Any, labels: Any) -> float:
    """AUC of the scores: ``auc(*roc_curve(scores, labels)[:2])`` (see both)."""
    curve = roc_curve(scores, labels)
    return auc(curve.fpr, curve.tpr)


def equal_error_rate(fpr: Any, tpr: Any, thresholds: Any) -> EqualErrorRate:
    """Equal error rate: where the ROC curve crosses FPR = FNR (= 1 - TPR).

    Along the curve ``d = FPR - FNR`` rises strictly from -1 to 1, so it crosses 0 once. When the crossing
    falls between two points, the EER is read on the straight segment between them (the rates of a detector
    that picks either threshold at random in the right proportion); it is exact when a point lies on the
    crossing (e.g. 0 for perfectly separated scores). The threshold is interpolated between the thresholds
    of the segment's two ends in the same proportion (or taken from the finite end when the other is -inf):
    a value to quote, while the rates of ``score > threshold`` at it are those of one of the two ends.

    Parameters
    ----------
    fpr, tpr, thresholds : array_like
        A curve from :func:`roc_curve`.

    Returns
    -------
    EqualErrorRate
        ``eer`` in 0..1 and ``threshold``.

    Raises
    ------
    ParameterError
        A curve that does not run from (0, 0) to (1, 1) or arrays of different lengths.
    """
    x = np.asarray(fpr, dtype=np.float64).ravel()
    y = np.asarray(tpr, dtype=np.float64).ravel()
    t = np.asarray(thresholds, dtype=np.float64).ravel()
    if not (x.shape == y.shape == t.shape) or x.size < 2:
        raise ParameterError("fpr, tpr and thresholds must be the arrays of one roc_curve")
    if x[0] != 0 or y[0] != 0 or x[-1] != 1 or y[-1] != 1:
        raise ParameterError("the curve must run from (0, 0) to (1, 1); give a whole curve from roc_curve")
    d = x - (1.0 - y)
    i = int(np.argmax(d >= 0))  # the first point at or past the crossing; d[0] = -1 < 0, so i >= 1
    if d[i] == 0:
        return EqualErrorRate(float(x[i]), float(t[i]))
    a = -d[i - 1] / (d[i] - d[i - 1])  # fraction of the way from point i - 1 to point i
    eer = x[i - 1] + a * (x[i] - x[i - 1])
    if np.isfinite(t[i - 1]) and np.isfinite(t[i]):
        threshold = t[i - 1] + a * (t[i] - t[i - 1])
    else:
        threshold = t[i - 1] if np.isfinite(t[i - 1]) else t[i]
    return EqualErrorRate(float(eer), float(threshold))


def rates_at_threshold(scores: Any, labels: Any, threshold: float) -> Rates:
    """Counts and rates of the decision ``score > threshold`` (strict, as PCE > 60).

    Parameters
    ----------
    scores : array_like of float
    labels : array_like of bool or {0, 1}
    threshold : float

    Returns
    -------
    Rates
        ``tpr`` is None when there are no positives, ``fpr`` None when there are no negatives.

    Raises
    ------
    ParameterError
        Empty input, lengths that differ, NaN scores or threshold, labels not boolean.
    """
    s, y = _scores_labels(scores, labels)
    if np.isnan(threshold):
        raise ParameterError("the threshold is NaN")
    above = s > threshold
    tp, fp = int((above & y).sum()), int((above & ~y).sum())
    fn, tn = int((~above & y).sum()), int((~above & ~y).sum())
    return Rates(
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        tpr=tp / (tp + fn) if tp + fn else None,
        fpr=fp / (fp + tn) if fp + tn else None,
    )


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of (true label, predicted label); rows are true labels, columns predicted ones.

    Open-set aware: the right answer for an item whose true label is one of ``classes`` is that label; for an
    item of any other label (a device that was not enrolled, a camera model the classifier was not trained on)
    it is a rejection (the ``unknown_label`` column), unless a prediction names that very label.
    """

    matrix: np.ndarray  # int64 counts, shape (len(row_labels), len(col_labels))
    row_labels: tuple[str, ...]  # true labels: the classes, then any other true label seen (sorted)
    col_labels: tuple[str, ...]  # predicted labels: the classes, other predictions (sorted), then unknown_label
    classes: tuple[str, ...]  # the labels the predictor can name
    unknown_label: str = UNKNOWN  # the rejection column's name

    def _right_column(self, label: str) -> int | None:
        """Column of the right prediction for an item of true ``label`` (None: no column holds it)."""
        cols = self.col_labels
        if label in cols:
            return cols.index(label)
        if label not in self.classes and self.unknown_label in cols:
            return cols.index(self.unknown_label)
        return None

    @property
    def total(self) -> int:
        return int(self.matrix.sum())

    @property
    def correct(self) -> int:
        """Items predicted right: their own label, or a rejection for a label outside the classes."""
        cols = [self._right_column(r) for r in self.row_labels]
        return int(sum(self.matrix[i, j] for i, j in enumerate(cols) if j is not None))

    @property
    def accuracy(self) -> float | None:
        """Fraction of items predicted right (open-set, see the class); None for an empty matrix."""
        return self.correct / self.total if self.total else None

    def recall(self) -> dict[str, float | None]:
        """Per true label: the fraction of its items predicted right (for labels outside the classes: rejected).

        None for a label with no items.
        """
        out: dict[str, float | None] = {}
        for i, r in enumerate(self.row_labels):
            n = int(self.matrix[i].sum())
            j = self._right_column(r)
            out[r] = (int(self.matrix[i, j]) / n if j is not None else 0.0) if n else None
        return out

    def precision(self) -> dict[str, float | None]:
        """Per predicted label: the fraction of its predictions that were right (None if never predicted).

        For the rejection column: the fraction of rejections whose true label is outside the classes.
        """
        out: dict[str, float | None] = {}
        for j, c in enumerate(self.col_labels):
            n = int(self.matrix[:, j].sum())
            right = sum(int(self.matrix[i, j]) for i, r in enumerate(self.row_labels) if self._right_column(r) == j)
            out[c] = right / n if n else None
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_true": list(self.row_labels),
            "columns_predicted": list(self.col_labels),
            "classes": list(self.classes),
            "counts": self.matrix.tolist(),
            "accuracy": self.accuracy,
            "recall": self.recall(),
            "precision": self.precision(),
        }


def confusion_matrix(
    true: Sequence[Hashable],
    predicted: Sequence[Hashable | None],
    classes: Iterable[str],
    *,
    unknown_label: str = UNKNOWN,
) -> ConfusionMatrix:
    """Confusion matrix of predictions against true labels, with an "unknown" column for rejections.

    Parameters
    ----------
    true : sequence of str
        The true label of each item.
    predicted : sequence of str or None
        The predicted label of each item; None (or ``unknown_label``) means the item was rejected.
    classes : iterable of str
        The labels a predictor can name, in display order. True or predicted labels outside them get their
        own rows / columns after them (sorted), so nothing is dropped; an item whose true label is outside them
        is right when rejected (see :class:`ConfusionMatrix`).
    unknown_label : str, keyword-only
        Name of the rejection column, added when any prediction is a rejection.

    Returns
    -------
    ConfusionMatrix

    Raises
    ------
    ParameterError
        No items, lengths that differ, or a true label that is None.
    """
    true, predicted = list(true), list(predicted)
    if not true:
        raise ParameterError("no items given: a confusion matrix needs at least one (true, predicted) pair")
    if len(true) != len(predicted):
        raise ParameterError(f"{len(true)} true labels but {len(predicted)} predictions; give one of each per item")
    if any(t is None for t in true):
        raise ParameterError("a true label is None; every item needs its true label")
    classes = [str(c) for c in dict.fromkeys(classes)]
    truth = [str(t) for t in true]
    pred = [unknown_label if p is None else str(p) for p in predicted]
    known = set(classes)
    rows = [*classes, *sorted(set(truth) - known)]
    extra_cols = sorted(set(pred) - known - {unknown_label})
    cols = [*classes, *extra_cols] + ([unknown_label] if unknown_label in pred and unknown_label not in known else [])
    ri = {r: i for i, r in enumerate(rows)}
    ci = {c: j for j, c in enumerate(cols)}
    m = np.zeros((len(rows), len(cols)), dtype=np.int64)
    for t, p in zip(truth, pred):
        m[ri[t], ci[p]] += 1
    return ConfusionMatrix(m, tuple(rows), tuple(cols), tuple(classes), unknown_label)


def accuracy(true: Sequence[Hashable], predicted: Sequence[Hashable | None]) -> float:
    """Fraction of items whose prediction equals the true label (None never equals a label).

    Raises
    ------
    ParameterError
        No items or lengths that differ.
    """
    true, predicted = list(true), list(predicted)
    if not true:
        raise ParameterError("no items given: accuracy needs at least one (true, predicted) pair")
    if len(true) != len(predicted):
        raise ParameterError(f"{len(true)} true labels but {len(predicted)} predictions; give one of each per item")
    return sum(p is not None and p == t for t, p in zip(true, predicted)) / len(true)


def summarize_scores(scores: Any, labels: Any, *, thresholds: Iterable[float] = ()) -> dict[str, Any]:
    """Everything about one set of scored pairs, JSON-ready, with undefined figures as None and a reason.

    Parameters
    ----------
    scores : array_like of float
        NaN scores are dropped and counted.
    labels : array_like of bool
    thresholds : iterable of float, keyword-only
        Decision thresholds to report the rates of ``score > threshold`` at.

    Returns
    -------
    dict
        ``n_pairs``, ``n_positive``, ``n_negative``, ``n_nan_dropped``, ``auc``, ``eer``, ``eer_threshold``,
        ``undefined_reason`` (why AUC and EER are None, else None), ``at_threshold`` (a list of
        :meth:`Rates.to_dict`, one per distinct threshold) and ``roc`` (``fpr``, ``tpr``, ``thresholds`` lists,
        or None).

    Raises
    ------
    ParameterError
        Scores and labels of different lengths or labels not boolean.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ParameterError(f"{s.size} scores but {y.size} labels; give one label per score")
    keep = ~np.isnan(s)
    s, y = s[keep], y[keep]
    out: dict[str, Any] = {
        "n_pairs": int(s.size),
        "n_positive": int(np.count_nonzero(y)),
        "n_negative": int(s.size - np.count_nonzero(y)),
        "n_nan_dropped": int((~keep).sum()),
        "auc": None,
        "eer": None,
        "eer_threshold": None,
        "undefined_reason": None,
        "at_threshold": [],
        "roc": None,
    }
    if s.size == 0:
        out["undefined_reason"] = "no scored pairs"
        return out
    try:
        curve = roc_curve(s, y)
    except ParameterError as exc:
        out["undefined_reason"] = str(exc)
    else:
        eer = equal_error_rate(*curve)
        out |= {
            "auc": auc(curve.fpr, curve.tpr),
            "eer": eer.eer,
            "eer_threshold": eer.threshold,
            "roc": {"fpr": curve.fpr.tolist(), "tpr": curve.tpr.tolist(), "thresholds": curve.thresholds.tolist()},
        }
    out["at_threshold"] = [rates_at_threshold(s, y, t).to_dict() for t in sorted({float(t) for t in thresholds})]
    return out

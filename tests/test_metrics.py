"""ROC / AUC / EER / rates / confusion matrices on hand-made scores with known answers, and their invariants."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camforensics.core.metrics import (
    UNKNOWN,
    accuracy,
    auc,
    confusion_matrix,
    equal_error_rate,
    rates_at_threshold,
    roc_auc,
    roc_curve,
    summarize_scores,
)
from camforensics.errors import ParameterError


def mann_whitney(scores, labels):
    """U / (n_pos n_neg) by brute force over every (positive, negative) pair, ties counted 1/2."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    pos, neg = s[y], s[~y]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (pos.size * neg.size)


def test_perfect_separation_gives_auc_1_and_eer_0():
    scores, labels = [5.0, 7.0, 1.0, 2.0], [1, 1, 0, 0]
    curve = roc_curve(scores, labels)
    assert auc(curve.fpr, curve.tpr) == 1.0
    eer = equal_error_rate(*curve)
    assert eer.eer == 0.0
    # Any threshold in [2, 5) separates them; the ROC point at the crossing has threshold 2 (score > 2).
    assert eer.threshold == 2.0
    # Reversed scores: everything wrong.
    rev = roc_curve([-s for s in scores], labels)
    assert auc(rev.fpr, rev.tpr) == 0.0 and equal_error_rate(*rev).eer == 1.0


def test_hand_computed_4_plus_4_with_a_tie():
    # positives 0.9 0.8 0.6 0.4, negatives 0.8 0.5 0.3 0.2 (0.8 is tied across the classes)
    scores = [0.9, 0.8, 0.6, 0.4, 0.8, 0.5, 0.3, 0.2]
    labels = [True] * 4 + [False] * 4
    curve = roc_curve(scores, labels)
    np.testing.assert_array_equal(curve.thresholds, [0.9, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, -np.inf])
    np.testing.assert_array_equal(curve.tpr, [0, 0.25, 0.5, 0.75, 0.75, 1, 1, 1])
    # The tie moves the curve diagonally: from (0, .25) to (.25, .5) in one step.
    np.testing.assert_array_equal(curve.fpr, [0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 1])
    # U: 0.9 beats 4, 0.8 beats 3 and ties 1, 0.6 beats 3, 0.4 beats 2 -> 12.5 / 16.
    assert auc(curve.fpr, curve.tpr) == pytest.approx(12.5 / 16)
    # FPR = FNR = 0.25 exactly at the point of threshold 0.5.
    assert equal_error_rate(*curve) == (0.25, 0.5)
    r = rates_at_threshold(scores, labels, 0.5)
    assert (r.tp, r.fp, r.tn, r.fn, r.tpr, r.fpr) == (3, 1, 3, 1, 0.75, 0.25)
    # Strict rule: a score equal to the threshold is not a match (0.8 vs threshold 0.8).
    r = rates_at_threshold(scores, labels, 0.8)
    assert (r.tp, r.fp) == (1, 0)


def test_eer_between_points_is_interpolated_on_the_segment():
    # positives 1, 0.5; negatives 0.5, 0: points (0,0) (0,.5) (.5,1) (1,1); the crossing is half-way along
    # the tie's diagonal step, at FPR = FNR = 0.25; the threshold half-way between 0.5 and 0.
    curve = roc_curve([1.0, 0.5, 0.5, 0.0], [1, 1, 0, 0])
    assert equal_error_rate(*curve) == (pytest.approx(0.25), pytest.approx(0.25))
    assert roc_auc([1.0, 0.5, 0.5, 0.0], [1, 1, 0, 0]) == pytest.approx(0.875)


def test_all_tied_scores_are_chance():
    curve = roc_curve([3.0] * 6, [1, 0, 1, 0, 0, 1])
    assert len(curve.fpr) == 2 and auc(curve.fpr, curve.tpr) == 0.5
    assert equal_error_rate(*curve).eer == pytest.approx(0.5)


def test_infinite_scores_are_ordered_and_tied_correctly():
    scores = [np.inf, np.inf, 10.0, -np.inf]
    curve = roc_curve(scores, [1, 0, 1, 0])
    assert list(curve.thresholds[:2]) == [np.inf, 10.0]  # the two infs are one tie group
    assert auc(curve.fpr, curve.tpr) == pytest.approx(mann_whitney(scores, [1, 0, 1, 0]))


@pytest.mark.parametrize(
    "scores, labels, match",
    [
        ([], [], "no scores"),
        ([1.0, 2.0], [1], "2 scores but 1 labels"),
        ([1.0, np.nan], [1, 0], "NaN"),
        ([1.0, 2.0], [1, 2], "booleans or 0/1"),
        ([1.0, 2.0], [1, 1], "undefined: all 2 pairs are positive"),
        ([1.0, 2.0], [0, 0], "undefined: all 2 pairs are negative"),
    ],
)
def test_roc_refuses_what_has_no_curve(scores, labels, match):
    with pytest.raises(ParameterError, match=match):
        roc_curve(scores, labels)


def test_rates_with_one_class_give_the_defined_rate_and_none():
    r = rates_at_threshold([70.0, 10.0, 80.0], [0, 0, 0], 60.0)
    assert r.fpr == pytest.approx(2 / 3) and r.tpr is None
    with pytest.raises(ParameterError, match="no scores"):
        rates_at_threshold([], [], 60.0)


scores_st = st.lists(st.integers(-3, 3), min_size=2, max_size=40)  # few values: many ties


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_auc_is_the_mann_whitney_statistic(data):
    ints = data.draw(scores_st)
    labels = data.draw(st.lists(st.booleans(), min_size=len(ints), max_size=len(ints)))
    if all(labels) or not any(labels):
        labels[0] = not labels[0]
    scores = np.asarray(ints, float) * 1.5
    curve = roc_curve(scores, labels)
    area = auc(curve.fpr, curve.tpr)
    assert area == pytest.approx(mann_whitney(scores, labels), abs=1e-12)
    # Negating the scores mirrors the ordering.
    assert roc_auc(-scores, labels) == pytest.approx(1.0 - area, abs=1e-12)
    # Every ROC point is the strict decision at its threshold.
    for f, t, thr in zip(curve.fpr, curve.tpr, curve.thresholds):
        r = rates_at_threshold(scores, labels, thr)
        assert (r.fpr, r.tpr) == pytest.approx((f, t))
    # The EER is where the polyline meets FPR = 1 - TPR; found here by bisection along the polyline instead.
    eer = equal_error_rate(*curve)
    assert eer.eer == pytest.approx(eer_by_bisection(curve.fpr, curve.tpr), abs=1e-9)


def eer_by_bisection(fpr, tpr):
    """FPR where FPR - (1 - TPR), rising along the piecewise-linear curve, crosses 0 (curve parameter u)."""
    u = np.arange(len(fpr), dtype=float)
    lo, hi = 0.0, u[-1]
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.interp(mid, u, fpr) - (1 - np.interp(mid, u, tpr)) < 0:
            lo = mid
        else:
            hi = mid
    return float(np.interp(hi, u, fpr))


def test_confusion_matrix_with_unknown_and_labels_outside_the_classes():
    true = ["a", "a", "b", "b", "c", "a"]
    pred = ["a", None, "b", "a", "unknown", "a"]
    cm = confusion_matrix(true, pred, ["a", "b"])
    assert cm.row_labels == ("a", "b", "c")  # c: a true label the predictor cannot name
    assert cm.col_labels == ("a", "b", UNKNOWN)
    np.testing.assert_array_equal(cm.matrix, [[2, 0, 1], [1, 1, 0], [0, 0, 1]])
    # Right: a->a twice, b->b, and c (not a class) rejected: open-set accuracy 4/6.
    assert cm.total == 6 and cm.correct == 4 and cm.accuracy == pytest.approx(4 / 6)
    assert cm.recall() == {"a": pytest.approx(2 / 3), "b": 0.5, "c": 1.0}
    # "unknown" was predicted twice: once rightly (c), once for an a.
    assert cm.precision() == {"a": pytest.approx(2 / 3), "b": 1.0, UNKNOWN: 0.5}
    d = cm.to_dict()
    assert d["counts"][2] == [0, 0, 1] and d["columns_predicted"][-1] == "unknown" and d["classes"] == ["a", "b"]


def test_confusion_matrix_without_rejections_has_no_unknown_column_and_keeps_extra_predictions():
    cm = confusion_matrix(["x", "y"], ["x", "z"], ["x", "y"])
    assert cm.col_labels == ("x", "y", "z")
    assert cm.precision()["z"] == 0.0 and cm.recall()["y"] == 0.0 and cm.accuracy == 0.5
    with pytest.raises(ParameterError, match="no items"):
        confusion_matrix([], [], ["x"])
    with pytest.raises(ParameterError, match="2 true labels but 1"):
        confusion_matrix(["x", "y"], ["x"], ["x"])


def test_accuracy():
    assert accuracy(["a", "b", "c", "d"], ["a", None, "c", "x"]) == 0.5
    with pytest.raises(ParameterError):
        accuracy([], [])


def test_summarize_scores_gives_reasons_instead_of_nan():
    d = summarize_scores([70.0, 10.0, np.nan], [True, True, False], thresholds=[60.0, 60])
    assert d["n_pairs"] == 2 and d["n_nan_dropped"] == 1 and d["n_positive"] == 2 and d["n_negative"] == 0
    assert d["auc"] is None and d["eer"] is None and d["roc"] is None
    assert "undefined" in d["undefined_reason"] and "positive" in d["undefined_reason"]
    assert d["at_threshold"] == [{"threshold": 60.0, "tp": 1, "fp": 0, "tn": 0, "fn": 1, "tpr": 0.5, "fpr": None}]
    d = summarize_scores([0.9, 0.8, 0.6, 0.4, 0.8, 0.5, 0.3, 0.2], [1] * 4 + [0] * 4)
    assert d["auc"] == pytest.approx(12.5 / 16) and (d["eer"], d["eer_threshold"]) == (0.25, 0.5)
    assert d["roc"]["thresholds"][-1] == -np.inf and d["at_threshold"] == []
    assert summarize_scores([], [])["undefined_reason"] == "no scored pairs"

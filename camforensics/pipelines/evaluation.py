"""Metric blocks of ``camforensics evaluate``: labelled identify queries and verify pairs in, JSON-ready dicts out.

Pure: no file is read here. :mod:`camforensics.pipelines.evaluate` reads the reports, finds the truth of every
input and builds the :class:`IdentifyQuery` and :class:`VerifyPair` items these functions measure. The layout
of the blocks is documented in docs/reports.md ("evaluate").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from camforensics.core.metrics import confusion_matrix, summarize_scores
from camforensics.reports.reader import number

NO_MATCH = "no match"  # the rejection column of the PRNU device confusion matrix
PCE_SCORE = "prnu_pce"  # name of the PRNU score of a verify report
OUTCOMES = ("correct_match", "wrong_match", "false_match", "missed", "correct_reject")


@dataclass(frozen=True)
class PrnuDecision:
    """The PRNU part of one identify result, device names already mapped to the truth's."""

    pairs: tuple[tuple[str, float | None], ...]  # (candidate device, PCE) for every fingerprint compared
    top: str | None  # the best-ranked candidate, matched or not
    predicted: str | None  # the matched device; None when nothing exceeded the threshold
    threshold: float | None  # the PCE threshold the decision used
    enrolled: frozenset[str]  # devices of the library this query was searched in


@dataclass(frozen=True)
class IdentifyQuery:
    """One successful identify result whose input was found in the truth data set."""

    report: str  # the report file it came from
    path: str | None  # the input as the report names it
    device: str  # truth device
    model: str  # truth camera model ("<Make> <Model>", ImageRecord.model_id)
    prnu: PrnuDecision | None  # None when the result has no PRNU part
    model_attribution: Mapping[str, Any] | None  # the result's model_attribution member, as written


@dataclass(frozen=True)
class VerifyPair:
    """One verify report whose two sets each come from one known device."""

    report: str  # the report file
    device_a: str  # truth device of set A
    device_b: str  # truth device of set B
    set_size: str  # "NA+NB", images used on each side
    scores: Mapping[str, float | None]  # score name -> value (prnu_pce, and e.g. siamese, fused)
    thresholds: Mapping[str, float]  # score name -> decision threshold, where known
    decision_same_device: bool | None  # the report's own verdict

    @property
    def same_device(self) -> bool:
        return self.device_a == self.device_b

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": self.report,
            "device_a": self.device_a,
            "device_b": self.device_b,
            "same_device": self.same_device,
            "set_size": self.set_size,
            "scores": dict(self.scores),
            "decision_same_device": self.decision_same_device,
        }


def _fraction(hits: int, n: int) -> float | None:
    return hits / n if n else None


def identify_prnu_metrics(queries: Sequence[IdentifyQuery]) -> dict[str, Any] | None:
    """PRNU metrics of identify queries; None when no query has a PRNU part.

    Every (query, candidate) pair is one score, labelled true when the candidate is the query's device. The
    decision of each query is one of: ``correct_match``; ``wrong_match`` (another device, although the query's
    device is enrolled); ``false_match`` (a device matched, the query's device is not enrolled); ``missed``
    (no match although enrolled); ``correct_reject`` (no match, not enrolled). ``accuracy`` counts correct
    matches and correct rejects; ``top1_accuracy_enrolled`` the top-ranked candidate of enrolled queries,
    whatever the threshold.
    """
    qs = [q for q in queries if q.prnu is not None]
    if not qs:
        return None
    scores, labels, outcomes = [], [], Counter()
    for q in qs:
        p = q.prnu
        for device, pce in p.pairs:
            scores.append(float("nan") if pce is None else pce)
            labels.append(device == q.device)
        enrolled = q.device in p.enrolled
        if p.predicted is None:
            outcomes["missed" if enrolled else "correct_reject"] += 1
        elif p.predicted == q.device:
            outcomes["correct_match"] += 1
        else:
            outcomes["wrong_match" if enrolled else "false_match"] += 1
    enrolled_qs = [q for q in qs if q.device in q.prnu.enrolled]
    classes = sorted(frozenset().union(*(q.prnu.enrolled for q in qs)))
    cm = confusion_matrix([q.device for q in qs], [q.prnu.predicted for q in qs], classes, unknown_label=NO_MATCH)
    return {
        "n_queries": len(qs),
        "n_queries_device_enrolled": len(enrolled_qs),
        "enrolled_devices": classes,
        "pce": summarize_scores(scores, labels, thresholds={q.prnu.threshold for q in qs} - {None}),
        "outcomes": {k: outcomes[k] for k in OUTCOMES},
        "accuracy": cm.accuracy,
        "top1_accuracy_enrolled": _fraction(sum(q.prnu.top == q.device for q in enrolled_qs), len(enrolled_qs)),
        "confusion": cm.to_dict(),
    }


def _predicted_model(ma: Mapping[str, Any]) -> str | None:
    d = ma["decision"]
    return None if d.get("unknown") or not d.get("model") else str(d["model"])


def _top1_model(ma: Mapping[str, Any]) -> str | None:
    top = ma.get("top_k") or []
    return str(top[0]["model"]) if top and isinstance(top[0], dict) and "model" in top[0] else None


def _open_set_score(ma: Mapping[str, Any]) -> float:
    score = number(ma["decision"].get("score"))
    return float("nan") if score is None else score


def model_attribution_metrics(queries: Sequence[IdentifyQuery]) -> dict[str, dict[str, Any]]:
    """Camera-model attribution metrics of identify queries, one block per model name.

    ``closed_set_accuracy``: top-1 among queries whose true model is one of the model's classes.
    ``open_set_accuracy``: the decision, right when it names the true model or rejects ("unknown") a query
    whose model is outside the classes. ``unknown_rejection_rate``: rejected among queries outside the
    classes; ``known_rejection_rate``: rejected among those inside. ``open_set_score``: the decision score
    (higher = a known model; the attributor says "unknown" below its threshold) as a detector of "the true
    model is one of the classes", with its ROC, AUC, EER and rates at the decision thresholds. Results whose
    attribution holds an ``error`` (or no decision) are counted in ``n_errors``.
    """
    groups: dict[str, list[tuple[IdentifyQuery, Mapping[str, Any]]]] = {}
    for q in queries:
        if isinstance(q.model_attribution, Mapping):
            groups.setdefault(str(q.model_attribution.get("model") or "unnamed"), []).append((q, q.model_attribution))
    out = {}
    for name, items in sorted(groups.items()):
        ok = [(q, ma) for q, ma in items if "error" not in ma and isinstance(ma.get("decision"), Mapping)]
        classes = list(dict.fromkeys(str(c) for _, ma in ok for c in ma.get("classes") or []))
        inside = [(q, ma) for q, ma in ok if q.model in classes]
        outside = [(q, ma) for q, ma in ok if q.model not in classes]
        cm = confusion_matrix([q.model for q, _ in ok], [_predicted_model(ma) for _, ma in ok], classes) if ok else None
        out[name] = {
            "model_sha256": sorted({str(ma["model_sha256"]) for _, ma in items if ma.get("model_sha256")}),
            "classes": classes,
            "n_queries": len(ok),
            "n_errors": len(items) - len(ok),
            "n_in_classes": len(inside),
            "n_outside_classes": len(outside),
            "closed_set_accuracy": _fraction(sum(_top1_model(ma) == q.model for q, ma in inside), len(inside)),
            "open_set_accuracy": cm.accuracy if cm is not None else None,
            "unknown_rejection_rate": _fraction(sum(_predicted_model(ma) is None for _, ma in outside), len(outside)),
            "known_rejection_rate": _fraction(sum(_predicted_model(ma) is None for _, ma in inside), len(inside)),
            "open_set_score": summarize_scores(
                [_open_set_score(ma) for _, ma in ok],
                [q.model in classes for q, _ in ok],
                thresholds={t for _, ma in ok if (t := number(ma["decision"].get("threshold"))) is not None},
            ),
            "confusion": cm.to_dict() if cm is not None else None,
        }
    return out


def _verify_block(pairs: Sequence[VerifyPair]) -> dict[str, Any]:
    scores = {}
    for name in sorted({n for p in pairs for n in p.scores}):
        have = [p for p in pairs if p.scores.get(name) is not None]
        scores[name] = summarize_scores(
            [p.scores[name] for p in have],
            [p.same_device for p in have],
            thresholds={p.thresholds[name] for p in have if name in p.thresholds},
        )
    decided = [p for p in pairs if isinstance(p.decision_same_device, bool)]
    return {
        "n_pairs": len(pairs),
        "n_same_device": sum(p.same_device for p in pairs),
        "n_different_device": sum(not p.same_device for p in pairs),
        "decision_accuracy": _fraction(sum(p.decision_same_device == p.same_device for p in decided), len(decided)),
        "scores": scores,
    }


def _set_size_order(key: str) -> tuple[int, ...]:
    return tuple(int(x) if x.isdigit() else 0 for x in key.split("+"))


def verify_metrics(pairs: Sequence[VerifyPair], skipped: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Verify metrics of labelled pairs, overall and per set size ("NA+NB"); None without any verify report.

    Per score name: :func:`~camforensics.core.metrics.summarize_scores` (ROC, AUC, EER, rates at its
    thresholds). ``decision_accuracy``: the reports' own verdicts (``summary.decision.same_device``).
    """
    if not pairs and not skipped:
        return None
    sizes = sorted({p.set_size for p in pairs}, key=_set_size_order)
    return {
        **_verify_block(pairs),
        "by_set_size": {s: _verify_block([p for p in pairs if p.set_size == s]) for s in sizes},
        "n_pairs_skipped": len(skipped),
        "skipped": list(skipped),
        "pairs": [p.to_dict() for p in pairs],
    }

"""The table of ``evaluate anonymization``: per method, per judge, targeted and untargeted success; picture quality;
the share of images whose PCE with their own device stays below the threshold (the PRNU view).

Success rates follow Cama (Andrews et al., "Cama: camera model anonymization", 2020): a judge's *untargeted*
success is the share of outputs it does not attribute to the image's true camera model; its *targeted* success
the share of (image, target) pairs it attributes to the drawn target. Images whose true model the judge does not
know are left out of its untargeted count, targets it does not know out of its targeted count (the counts say
how many were measured). The judges' verdicts on the unaltered inputs are counted beside them
(``rate_before``): an anonymization only helps where ``rate`` exceeds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camforensics.inference.anonymizer import class_key


def judge_outcomes(judged: dict[str, Any], true_model: str, targets: Sequence[str], classes: Sequence[str]) -> None:
    """Add the data set's truth to one judge record of :func:`judge_before_after` (in place, no-op on errors):
    ``true_class`` (the judge's spelling of the image's camera model, None when it does not know it),
    ``untargeted_success`` and ``misattributed_before`` (None without a known true class), and ``targets``: per
    drawn target, ``hit`` (the output's top-1 is the target; None when the judge does not know the target)."""
    if "error" in judged:
        return
    known = {class_key(c): c for c in classes}
    true = known.get(class_key(true_model))
    after, before = class_key(judged["after"]["model"]), class_key(judged["before"]["model"])
    judged["true_class"] = true
    judged["true_class_source"] = "data set labels"
    judged["true_class_kept"] = None if true is None else after == class_key(true)
    judged["untargeted_success"] = None if true is None else after != class_key(true)
    judged["misattributed_before"] = None if true is None else before != class_key(true)
    judged["targets"] = [
        {
            "target": t,
            "hit": (after == class_key(t)) if class_key(t) in known else None,
            "hit_before": (before == class_key(t)) if class_key(t) in known else None,
        }
        for t in targets
    ]


def _rate(n: int, d: int) -> float | None:
    return n / d if d else None


@dataclass
class _JudgeCounts:
    n_judged: int = 0  # results this judge gave a verdict on
    n_failed: int = 0  # results it could not judge (e.g. image smaller than its patch)
    n_true_class_known: int = 0  # of the judged: the image's camera model is one of its classes
    n_untargeted_success: int = 0  # of those: output not attributed to the true model
    n_misattributed_before: int = 0  # of those: the unaltered input already not attributed to it
    n_target_pairs: int = 0  # (image, target) pairs with a target among its classes
    n_targeted_success: int = 0  # of those: output attributed to the target

    def add(self, j: dict[str, Any]) -> None:
        if "error" in j:
            self.n_failed += 1
            return
        self.n_judged += 1
        if j.get("untargeted_success") is not None:
            self.n_true_class_known += 1
            self.n_untargeted_success += bool(j["untargeted_success"])
            self.n_misattributed_before += bool(j["misattributed_before"])
        for t in j.get("targets", []):
            if t["hit"] is not None:
                self.n_target_pairs += 1
                self.n_targeted_success += bool(t["hit"])

    def summary(self) -> dict[str, Any]:
        return {
            "n_judged": self.n_judged,
            "n_failed": self.n_failed,
            "untargeted": {
                "n": self.n_true_class_known,
                "n_success": self.n_untargeted_success,
                "rate": _rate(self.n_untargeted_success, self.n_true_class_known),
                "n_misattributed_before": self.n_misattributed_before,
                "rate_before": _rate(self.n_misattributed_before, self.n_true_class_known),
            },
            "targeted": {
                "n": self.n_target_pairs,
                "n_success": self.n_targeted_success,
                "rate": _rate(self.n_targeted_success, self.n_target_pairs),
            },
        }


@dataclass
class MethodTally:
    """Counts of one method over its results."""

    n_results: int = 0
    n_failed: int = 0
    images: set[str] = field(default_factory=set)  # input sha256 of the measured images
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    judges: dict[str, _JudgeCounts] = field(default_factory=dict)
    pce_before: list[float] = field(default_factory=list)  # own device, check fingerprint
    pce_after: list[float] = field(default_factory=list)
    n_prnu_unchecked: int = 0  # measured results without an own-device PCE (no fingerprint, or sizes differ)

    def add(self, result: dict[str, Any], *, threshold: float) -> None:
        self.n_results += 1
        if result["status"] != "ok":
            self.n_failed += 1
            return
        self.images.add(result["input"]["sha256"])
        self.psnr.append(float(result["quality"]["psnr"]))
        self.ssim.append(float(result["quality"]["ssim"]))
        for j in result.get("judges", []):
            self.judges.setdefault(j["judge"], _JudgeCounts()).add(j)
        own = result.get("own_device_check")
        if own is None:
            self.n_prnu_unchecked += 1
        else:
            self.pce_before.append(float(own["pce_before"]))
            self.pce_after.append(float(own["pce_after"]))

    def summary(self, *, threshold: float) -> dict[str, Any]:
        finite = [v for v in self.psnr if np.isfinite(v)]
        before, after = np.array(self.pce_before), np.array(self.pce_after)
        n = len(before)
        below_b, below_a = int((before < threshold).sum()), int((after < threshold).sum())
        return {
            "status": "measured",
            "n_results": self.n_results,
            "n_failed": self.n_failed,
            "n_ok": self.n_results - self.n_failed,
            "n_images": len(self.images),
            "quality": {
                "n": len(self.psnr),
                "psnr_mean": float(np.mean(finite)) if finite else None,
                "psnr_min": float(min(self.psnr)) if self.psnr else None,
                "n_psnr_infinite": len(self.psnr) - len(finite),
                "ssim_mean": float(np.mean(self.ssim)) if self.ssim else None,
            },
            "judges": {name: c.summary() for name, c in self.judges.items()},
            "prnu": {
                "threshold": threshold,
                "n_checked": n,
                "n_unchecked": self.n_prnu_unchecked,
                "n_below_before": below_b,
                "n_below_after": below_a,
                "share_below_before": _rate(below_b, n),
                "share_below_after": _rate(below_a, n),
                "pce_median_before": float(np.median(before)) if n else None,
                "pce_median_after": float(np.median(after)) if n else None,
            },
        }


@dataclass
class InputsTally:
    """The judges' verdicts and the own-device PCE of the unaltered inputs, each image counted once (the
    reference row: a method only helps where its rates exceed these)."""

    seen: set[str] = field(default_factory=set)
    counts: dict[str, list[int]] = field(default_factory=dict)  # judge -> [n known, n wrong, n pairs, n hits]
    pce: list[float] = field(default_factory=list)

    def add(self, result: dict[str, Any]) -> None:
        if result["status"] != "ok" or result["input"]["sha256"] in self.seen:
            return
        self.seen.add(result["input"]["sha256"])
        for j in result.get("judges", []):
            if "error" in j:
                continue
            c = self.counts.setdefault(j["judge"], [0, 0, 0, 0])
            if j.get("misattributed_before") is not None:
                c[0] += 1
                c[1] += bool(j["misattributed_before"])
            for t in j.get("targets", []):
                if t.get("hit_before") is not None:
                    c[2] += 1
                    c[3] += bool(t["hit_before"])
        own = result.get("own_device_check")
        if own is not None:
            self.pce.append(float(own["pce_before"]))

    def summary(self, *, threshold: float) -> dict[str, Any]:
        below = sum(p < threshold for p in self.pce)
        return {
            "n_images": len(self.seen),
            "judges": {
                name: {
                    "untargeted": {"n": c[0], "n_success": c[1], "rate": _rate(c[1], c[0])},
                    "targeted": {"n": c[2], "n_success": c[3], "rate": _rate(c[3], c[2])},
                }
                for name, c in self.counts.items()
            },
            "prnu": {
                "threshold": threshold,
                "n_checked": len(self.pce),
                "n_below": below,
                "share_below": _rate(below, len(self.pce)),
            },
        }


def _pct(block: dict[str, Any]) -> str:
    return "-" if block["rate"] is None else f"{100 * block['rate']:.1f}%"


def table_cells(
    methods: dict[str, Any], judges: Sequence[str], inputs: dict[str, Any] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the table: first the judges' verdicts on the unaltered ``inputs`` (the reference), then
    per method the judges' "TSR (USR)", PSNR mean / min, SSIM, and the share of
    images below the PCE threshold after (before); a skipped method's row says why."""
    header = ["method", *judges, "PSNR dB mean / min", "SSIM", "PCE < thr after (before)", "n"]
    rows = []
    if inputs is not None:
        cells = []
        for j in judges:
            b = inputs["judges"].get(j)
            cells.append("-" if b is None else f"{_pct(b['targeted'])} ({_pct(b['untargeted'])})")
        p = inputs["prnu"]
        prnu = f"{p['n_below']}/{p['n_checked']}" if p["n_checked"] else "-"
        rows.append(["(unaltered inputs)", *cells, "-", "-", prnu, str(inputs["n_images"])])
    for name, m in methods.items():
        if m["status"] != "measured":
            rows.append([name, *(["-"] * len(judges)), "-", "-", "-", f"skipped: {m['reason']}"])
            continue
        cells = []
        for j in judges:
            b = m["judges"].get(j)
            cells.append("-" if b is None else f"{_pct(b['targeted'])} ({_pct(b['untargeted'])})")
        q, p = m["quality"], m["prnu"]
        psnr = "-" if q["psnr_mean"] is None else f"{q['psnr_mean']:.2f} / {q['psnr_min']:.2f}"
        ssim = "-" if q["ssim_mean"] is None else f"{q['ssim_mean']:.4f}"
        if p["n_checked"]:
            prnu = f"{p['n_below_after']}/{p['n_checked']} ({p['n_below_before']}/{p['n_checked']})"
        else:
            prnu = "-"
        fails = f", {m['n_failed']} failed" if m["n_failed"] else ""
        rows.append([name, *cells, psnr, ssim, prnu, f"{m['n_ok']}{fails}"])
    return header, rows


def markdown_table(metrics: dict[str, Any]) -> str:
    """``table.md``: the table, then how to read it and what was skipped."""
    judges = [j["name"] for j in metrics["judges"]]
    header, rows = table_cells(metrics["methods"], judges, metrics.get("inputs"))
    esc = [[c.replace("|", "\\|") for c in r] for r in [header, *rows]]
    lines = [
        f"# Anonymization on {metrics['data']['root']}",
        "",
        "| " + " | ".join(esc[0]) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        *("| " + " | ".join(r) + " |" for r in esc[1:]),
        "",
        (
            "Judge cells: targeted success rate (untargeted success rate in brackets), Cama's definitions: the share "
            "of (image, target) pairs the judge attributes to the drawn target, and the share of images it does not "
            "attribute to their true camera model. The first row gives the same rates on the unaltered inputs: a "
            "method helps only where it exceeds them. PSNR and SSIM against the input. PCE column: images whose PCE "
            f"with their own device is below {metrics['prnu']['threshold']:g} after the method (before it), measured "
            "with a fingerprint independent of the one remove-fingerprint subtracts."
        ),
        "",
        f"- PRNU fingerprints: {metrics['prnu']['source']}",
        f"- targets: {metrics['targets']['rule']}",
    ]
    for note in metrics.get("notes", []):
        lines.append(f"- note: {note}")
    return "\n".join(lines) + "\n"

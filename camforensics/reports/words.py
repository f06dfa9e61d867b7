"""Verdicts and evidence in words an examiner reads: shared by the terminal (cli/render.py) and the HTML case
report (pipelines/case_report.py). Pure functions of report members; nothing imported."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

P_FA_FLOOR_LOG10 = -300.0  # below this a probability is shown as "< 1e-300" (double precision and meaning both end)
ENROLL_MIN_IMAGES = 20  # below this a fingerprint is weak (Chen et al. 2008 use 50 natural or ~20 flat images)
ENROLL_LOW_RELIABILITY = 0.5  # below this, half or more of the fingerprint's variance is estimation noise


def summary_line(n_total: int, counts: Sequence[tuple[int, str]], n_failed: int) -> str:
    """The closing line of a batch: ``"7 of 43 matched, 36 no match, 0 failed"``.

    ``counts`` is ``[(n, words), ...]``; the first is said "of" the total.
    """
    parts = []
    for i, (n, words) in enumerate(counts):
        parts.append(f"{n} of {n_total} {words}" if i == 0 else f"{n} {words}")
    parts.append(f"{n_failed} failed")
    return ", ".join(parts)


def p_fa_words(log10_p_fa: float | None) -> str:
    """A false-alarm probability in words: ``"< 1e-300"``, ``"1 in 10^42"``, ``"1 in 2,900"`` or ``"0.31"``."""
    if log10_p_fa is None or (isinstance(log10_p_fa, float) and math.isnan(log10_p_fa)):
        return "-"
    if log10_p_fa <= P_FA_FLOOR_LOG10:
        return "< 1e-300"
    if log10_p_fa <= -6:
        return f"1 in 10^{int(math.floor(-log10_p_fa))}"
    if log10_p_fa <= -1:
        return f"1 in {10 ** -log10_p_fa:,.0f}"
    return f"{10 ** log10_p_fa:.2g}"


def prnu_verdict(decision: dict[str, Any] | None) -> str:
    """identify's PRNU decision in words."""
    if decision is None:
        return "no fingerprint of this size"
    if decision.get("ambiguous"):
        return "ambiguous: two devices match"
    return "same camera" if decision.get("match") else "no match"


def where_words(decision: dict[str, Any]) -> str:
    """Where the photo sits on the sensor: ``full frame`` or ``crop at x,y`` (with the scale when not 1)."""
    offset = decision.get("crop_offset")
    if offset is None:
        return "full frame"
    words = f"crop at {offset[0]},{offset[1]}"
    if decision.get("scale", 1.0) != 1.0:
        words += f" x{decision['scale']:g}"
    return words


def rotation_words(decision: dict[str, Any]) -> str:
    rot = int(decision.get("rotation") or 0)
    words = "as stored" if rot == 0 else f"turned {rot} deg"
    return words + (", mirrored" if decision.get("mirrored") else "")


def model_lead(attribution: dict[str, Any]) -> str:
    """The camera model the attributor leads with, with ``?`` when it is below its open-set threshold (unsure:
    possibly a model it was not trained on)."""
    top = attribution["top_k"][0]
    if attribution["decision"].get("unknown"):
        return f"{top['model']}?"
    return top["model"]


def exif_sentence(attribution: dict[str, Any] | None) -> str | None:
    """What EXIF says against the attributor, in a sentence; None when there is nothing to say."""
    if not attribution:
        return None
    exif = attribution.get("exif") or {}
    claimed = exif.get("model_id") or " ".join(x for x in (exif.get("make"), exif.get("model")) if x)
    lead = attribution["top_k"][0]["model"]
    consistent = exif.get("consistent")
    if not claimed:
        return "EXIF names no camera model (removed or never written)."
    unknown_camera = exif.get("in_classes") is False  # EXIF names a camera outside the attributor's classes
    if consistent is True and unknown_camera:
        return f"EXIF says {claimed}, a model the attributor was not trained on, and it calls the photo unknown: they agree."
    if consistent is True:
        return f"EXIF says {claimed}; the attributor agrees."
    if consistent is False and unknown_camera:
        return (f"EXIF says {claimed}, a model the attributor was not trained on, yet it names {lead}: the two "
                "contradict each other (a camera outside its classes, or changed metadata).")
    if consistent is False and (attribution.get("decision") or {}).get("unknown"):
        return (f"EXIF says {claimed}, a model the attributor knows, but it calls the photo unknown (its lead, {lead}, "
                "is below the threshold): the pixels or the metadata were changed, or the attributor errs.")
    if consistent is False:
        return f"EXIF says {claimed}, but the attributor's lead is {lead}: the metadata or the pixels were changed, or the attributor errs."
    if exif.get("in_classes") is False:
        return f"EXIF says {claimed}, a model the attributor was not trained on: it cannot confirm it (its lead, {lead}, means nothing here)."
    return f"EXIF says {claimed}; the attributor is unsure ({lead}?), so it neither confirms nor contradicts it."


def same_device_words(same: bool) -> str:
    return "same camera" if same else "different cameras, or too little evidence"


def verify_lines(summary: dict[str, Any]) -> list[str]:
    """verify's verdicts: the PRNU test's own, each model verifier's own, and the fused one, one line each."""
    d = summary["decision"]
    lines = [
        f"PRNU: {same_device_words(d['same_device'])} (PCE {d['pce']:.1f}, threshold {d['threshold']:.1f}; chance of "
        f"this by accident {p_fa_words(d.get('log10_p_fa'))}; {rotation_words(d)}; from {d['n_images_a']} + "
        f"{d['n_images_b']} images)"
    ]
    if d.get("crop_offset") is not None:
        lines.append(
            f"  set {d['query_set']} is a crop of the other's sensor at {d['crop_offset'][0]},{d['crop_offset'][1]} "
            f"(scale {d['scale']:g}, {d['n_hypotheses']} positions searched)"
        )
    s = summary.get("siamese")
    if s is not None:
        own = s.get("same_device", s["mean_logit"] > s["threshold"])
        lines.append(
            f"Siamese verifier {s['model']}: {same_device_words(own)} (score {s['mean_logit']:.2f} against its "
            f"threshold {s['threshold']:.2f}, {'steady' if s['std_logit'] < 1 else 'varying'} over {s['n_positions']} "
            "positions)"
        )
        lines.append(
            f"fused verdict: {same_device_words(s['fused_same_device'])} (probability {s['fused_probability']:.3f}, "
            f"threshold {s['fused_threshold']:.3f})"
        )
    return lines


ENROLL_MIN_IMAGES = 20  # below this a fingerprint is weak (Chen et al. 2008 use 50 natural or ~20 flat images)
ENROLL_LOW_RELIABILITY = 0.5  # below this, half or more of the fingerprint's variance is estimation noise


def enroll_warnings(n_images: int, reliability: float | None) -> list[str]:
    """What an examiner must know about a new fingerprint, in words."""
    notes = []
    if n_images < ENROLL_MIN_IMAGES:
        notes.append(
            f"only {n_images} images: a fingerprint from fewer than {ENROLL_MIN_IMAGES} is weak, so photos from this "
            "camera may score below the threshold and read as 'no match'. Enroll 20 or more flat, bright, "
            "unsaturated images (sky, a white wall) or 50 or more natural photos."
        )
    if reliability is not None and reliability < ENROLL_LOW_RELIABILITY:
        notes.append(
            f"reliability {reliability:.2f}: only about {reliability:.0%} of this fingerprint is the camera's own "
            "pattern, the rest is estimation noise (two halves of the images disagree). Matches will score lower "
            "than they should; add more images, preferably flat and bright ones."
        )
    return notes

"""identify: which enrolled device took each image? PCE against every fingerprint of a compatible size."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from camforensics.core.params import MatchParams, ResidualParams
from camforensics.core.pce import log10_false_alarm
from camforensics.core.residual import extract_residual, to_grey
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.io.library import FingerprintLibrary
from camforensics.pipelines.batch import gather_inputs, run_batch
from camforensics.pipelines.search import FingerprintIndex, SearchParams
from camforensics.reports.report import Report

# Published empirical false-alarm rate of the PCE > 60 rule (Goljan, Fridrich, Filler 2009, ~1M images).
EMPIRICAL_FAR_AT_60 = 2.4e-5


def decision_context(match: MatchParams) -> dict[str, Any]:
    """What the report says about the decision rule and its false-alarm figures."""
    n_shifts = (2 * match.shift_range[0] + 1) * (2 * match.shift_range[1] + 1)
    return {
        "threshold_pce": match.threshold,
        "p_fa_at_threshold_per_hypothesis": 10.0 ** log10_false_alarm(match.threshold, 1),
        "p_fa_at_threshold_per_fingerprint": 10.0 ** log10_false_alarm(match.threshold, 4 * n_shifts),
        "empirical_false_alarm_rate_at_60": EMPIRICAL_FAR_AT_60,
        "empirical_source": "Goljan, Fridrich, Filler, Proc. SPIE 7254 (2009), ~1 million images",
    }


def identify_images(
    paths: list[str | Path],
    *,
    library: str | Path,
    residual_params: ResidualParams = ResidualParams(),
    match: MatchParams = MatchParams(),
    search: SearchParams = SearchParams(),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    tick: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Report:
    """Rank the library's devices for every image under ``paths`` by PCE and decide at ``match.threshold``.

    Each image's residual W (sigma0 of ``residual_params``) is correlated with ``grey(image) * K`` of every
    fingerprint whose shape fits the image in an allowed rotation. Candidates are ranked by PCE; the decision
    names the top device when its PCE exceeds the threshold. ``p_fa`` is corrected for the rotations and shifts
    searched for that fingerprint.

    Raises
    ------
    CamforensicsError
        Not a library, an empty library, no input files.
    """
    lib = FingerprintLibrary(library)
    index = FingerprintIndex(lib, match=match, search=search)
    files = gather_inputs(paths, on_start=on_start)
    report = Report(
        command="identify",
        parameters={
            "residual": residual_params.to_dict(),
            "match": match.to_dict(),
            "search": search.to_dict(),
            "max_pixels": max_pixels,
        },
    )
    used: set[str] = set()

    def work(path: Path, record: dict[str, Any]) -> None:
        img = load_image(path, max_pixels=max_pixels)
        record["input"] = img.info.to_dict()
        index.require_fit(img.pixels.shape)  # before the residual: a size that fits nothing costs nothing
        outcome = index.rank(extract_residual(img.pixels, params=residual_params), to_grey(img.pixels))
        used.update(outcome.used)
        candidates = outcome.candidates
        top = candidates[0]
        matches = [c["device"] for c in candidates if c["pce"] > match.threshold]
        record["decision"] = {
            "match": bool(matches),
            "device": top["device"] if matches else None,
            "pce": top["pce"],
            "rotation": top["rotation"],
            "peak_shift": top["peak_shift"],
            "p_fa": top["p_fa"],
            "log10_p_fa": top["log10_p_fa"],
            "threshold": match.threshold,
            "ambiguous": len(matches) > 1,
        }
        record["matches"] = matches
        record["n_fingerprints_compared"] = outcome.n_compared
        if outcome.prefilter is not None:
            record["prefilter"] = outcome.prefilter
        record["candidates"] = candidates

    run_batch(files, work, report, tick=tick)
    report.context["library"] = {
        "path": str(lib.root),
        "n_entries": len(index.entries),
        "entries_used": [e.summary() for e in index.entries if e.name in used],
    }
    report.context["decision_rule"] = decision_context(match)
    ok = [r for r in report.results if r["status"] == "ok"]
    report.finish(n_matched=sum(1 for r in ok if r["decision"]["match"]), n_unmatched=sum(1 for r in ok if not r["decision"]["match"]))
    return report

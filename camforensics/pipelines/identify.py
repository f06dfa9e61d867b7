"""identify: which enrolled device took each image? PCE against every fingerprint of a compatible size."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camforensics.core.params import MatchParams, ResidualParams
from camforensics.core.pce import log10_false_alarm
from camforensics.core.residual import to_grey
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.io.library import FingerprintLibrary
from camforensics.pipelines.device import residual_extractor
from camforensics.pipelines.batch import gather_inputs, run_tasks
from camforensics.pipelines.executor import IN_PROCESS, Execution
from camforensics.pipelines.search import FingerprintIndex, SearchParams
from camforensics.reports.journal import Journal
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


@dataclass(frozen=True)
class IdentifySetup:
    """What an identify worker needs; calling it builds the worker's state once (the library index)."""

    library: str  # library folder, as the workers see it
    residual: ResidualParams  # query residual extraction
    match: MatchParams  # rotations, shifts, threshold
    search: SearchParams  # library search (prefilter)
    max_pixels: int  # decompression-bomb guard
    device: str = "cpu"  # compute device of the residual (see camforensics.pipelines.device)

    def __call__(self) -> IdentifyState:
        index = FingerprintIndex(FingerprintLibrary(self.library), match=self.match, search=self.search)
        return IdentifyState(self, index)


@dataclass
class IdentifyState:
    """A worker's identify state: its setup and the library index (with its cache of fingerprint spectra)."""

    setup: IdentifySetup
    index: FingerprintIndex


def identify_one(path: Path, state: IdentifyState, record: dict[str, Any]) -> None:
    """Rank the library's devices for one image and decide (the per-file task of :func:`identify_images`)."""
    setup, index, match = state.setup, state.index, state.setup.match
    img = load_image(path, max_pixels=setup.max_pixels)
    record["input"] = img.info.to_dict()
    index.require_fit(img.pixels.shape)  # before the residual: a size that fits nothing costs nothing
    residual = residual_extractor(setup.device)(img.pixels, params=setup.residual)
    outcome = index.rank(residual, to_grey(img.pixels))
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
    record["_used"] = list(outcome.used)  # extras: for run.library.entries_used, not a result member


def identify_images(
    paths: list[str | Path],
    *,
    library: str | Path,
    residual_params: ResidualParams = ResidualParams(),
    match: MatchParams = MatchParams(),
    search: SearchParams = SearchParams(),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    execution: Execution = IN_PROCESS,
    journal: str | os.PathLike[str] | None = None,
    resume: bool = False,
    tick: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Report:
    """Rank the library's devices for every image under ``paths`` by PCE and decide at ``match.threshold``.

    Each image's residual W (sigma0 of ``residual_params``) is correlated with ``grey(image) * K`` of every
    fingerprint whose shape fits the image in an allowed rotation. Candidates are ranked by PCE; the decision
    names the top device when its PCE exceeds the threshold. ``p_fa`` is corrected for the rotations and shifts
    searched for that fingerprint.

    Parameters
    ----------
    execution : Execution, keyword-only
        In this process (default), in worker processes, or on a Dask cluster; results are the same.
    journal : path-like, optional, keyword-only
        Stream results to this journal (memory stays flat); the caller writes the report, then
        ``report.journal.discard()``.
    resume : bool, keyword-only
        Reuse the successful results of an interrupted run's ``journal`` (same parameters required).

    Raises
    ------
    CamforensicsError
        Not a library, an empty library, no input files; on resume, a journal of other parameters.
    """
    lib = FingerprintLibrary(library)
    index = FingerprintIndex(lib, match=match, search=search)  # checks the library before any worker starts
    files = gather_inputs(paths, on_start=on_start)
    parameters = {
        "residual": residual_params.to_dict(),
        "match": match.to_dict(),
        "search": search.to_dict(),
        "max_pixels": max_pixels,
    }
    report = Report(
        command="identify",
        parameters=parameters,
        journal=Journal(journal, command="identify", parameters=parameters, resume=resume) if journal else None,
    )
    used: set[str] = set()
    counts = {"n_matched": 0, "n_unmatched": 0}

    def on_result(result: dict[str, Any], extras: dict[str, Any]) -> None:
        used.update(extras.get("used", ()))
        if result["status"] == "ok":
            counts["n_matched" if result["decision"]["match"] else "n_unmatched"] += 1

    setup = IdentifySetup(str(lib.root), residual_params, match, search, max_pixels, execution.device)
    run_tasks(files, identify_one, setup, report, execution=execution, on_result=on_result, tick=tick)
    report.context["library"] = {
        "path": str(lib.root),
        "n_entries": len(index.entries),
        "entries_used": [e.summary() for e in index.entries if e.name in used],
    }
    report.context["decision_rule"] = decision_context(match)
    report.finish(**counts)
    return report

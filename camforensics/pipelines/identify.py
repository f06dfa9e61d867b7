"""identify: which enrolled device took each image? PCE against every fingerprint of a compatible size."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from camforensics.core.matching import Query, candidate_rotations, match_query
from camforensics.core.params import MatchParams, ResidualParams
from camforensics.core.pce import Spectrum, log10_false_alarm, spectrum_of
from camforensics.core.residual import extract_residual, to_grey
from camforensics.errors import CamforensicsError, LibraryError, SizeMismatchError
from camforensics.io.folders import collect_images
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.io.library import FingerprintLibrary, LibraryEntry
from camforensics.pipelines.batch import run_batch
from camforensics.reports.report import Report

# Published empirical false-alarm rate of the PCE > 60 rule (Goljan, Fridrich, Filler 2009, ~1M images).
EMPIRICAL_FAR_AT_60 = 2.4e-5


class FingerprintCache:
    """Spectra of loaded fingerprints, least recently used first out, within a byte budget."""

    def __init__(self, budget_bytes: int = 4 << 30) -> None:
        self.budget = budget_bytes
        self._items: OrderedDict[str, Spectrum] = OrderedDict()
        self._bytes = 0

    def get(self, entry: LibraryEntry) -> Spectrum:
        k = self._items.get(entry.name)
        if k is not None:
            self._items.move_to_end(entry.name)
            return k
        k = spectrum_of(entry.load())
        self._items[entry.name] = k
        self._bytes += k.nbytes
        while self._bytes > self.budget and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes
        return k


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
    entries = list(lib.entries())
    if not entries:
        raise LibraryError(f"library {lib.root} has no enrolled device; enroll one with 'camforensics enroll'")
    files = collect_images(list(paths))
    if not files:
        raise CamforensicsError(f"no image files found in {', '.join(str(p) for p in paths)}")
    if on_start is not None:
        on_start(len(files))
    report = Report(
        command="identify",
        parameters={"residual": residual_params.to_dict(), "match": match.to_dict(), "max_pixels": max_pixels},
    )
    cache = FingerprintCache()
    used: dict[str, dict[str, Any]] = {}
    sizes = sorted({f"{e.shape[1]}x{e.shape[0]}" for e in entries})

    def work(path: Path, record: dict[str, Any]) -> None:
        img = load_image(path, max_pixels=max_pixels)
        record["input"] = img.info.to_dict()
        fits = [e for e in entries if candidate_rotations(img.pixels.shape, e.shape, mode=match.rotations)]
        if not fits:
            raise SizeMismatchError(
                f"image of {img.info.width}x{img.info.height} matches no fingerprint size in the library "
                f"(enrolled sizes: {', '.join(sizes)}; rotations tried: {match.rotations})"
            )
        query = Query(extract_residual(img.pixels, params=residual_params), to_grey(img.pixels))
        candidates = []
        for entry in fits:
            spectrum = cache.get(entry)
            used[entry.name] = entry.summary()
            res = match_query(query, spectrum, match=match)
            candidates.append({"device": entry.name, **res.to_dict()})
        candidates.sort(key=lambda c: c["pce"], reverse=True)
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
        record["n_fingerprints_compared"] = len(candidates)
        record["candidates"] = candidates

    run_batch(files, work, report, tick=tick)
    report.context["library"] = {"path": str(lib.root), "n_entries": len(entries), "entries_used": list(used.values())}
    report.context["decision_rule"] = decision_context(match)
    ok = [r for r in report.results if r["status"] == "ok"]
    report.finish(n_matched=sum(1 for r in ok if r["decision"]["match"]), n_unmatched=sum(1 for r in ok if not r["decision"]["match"]))
    return report

"""identify: which enrolled device took each image? PCE against every fingerprint of a compatible size."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from camforensics.core.params import MatchParams, ResidualParams
from camforensics.core.pce import log10_false_alarm
from camforensics.core.residual import to_grey
from camforensics.errors import InputError, ParameterError, SizeMismatchError
from camforensics.inference.attribution import CodingEvidence, attribute_pixels, fuse_decision
from camforensics.inference.panel import LoadedPanel
from camforensics.inference.registry import LoadedModel
from camforensics.io.images import DEFAULT_MAX_PIXELS, LoadedImage, load_image
from camforensics.io.jpeg_signature import read_jpeg_signature
from camforensics.io.library import FingerprintLibrary
from camforensics.pipelines.ahead import residual_of
from camforensics.pipelines.batch import gather_inputs, run_tasks
from camforensics.pipelines.executor import IN_PROCESS, Execution
from camforensics.pipelines.model_choice import ModelChoice
from camforensics.pipelines.search import FingerprintIndex, LibraryListing, SearchParams
from camforensics.pipelines.signatures import SignatureTable, coding_evidence, match_signature
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
        "crop_search": {
            "anchor": match.crop_anchor if isinstance(match.crop_anchor, str) else list(match.crop_anchor),
            "scales": list(match.scales),
            "rotations": match.rotations,
            "scene_window": match.crop_scene_window,  # the crop's residual over its local std over this many px (0: off)
            "variance_window": match.crop_variance_window,  # correlation over its local null std (0: off)
            "offset_statistic": match.crop_offset_statistic,  # a crop at one known offset: "pce" or "matched"
            "threshold_rule": (
                "queries smaller than a fingerprint are searched over offsets, scales and orientations; their "
                "threshold is the PCE whose false-alarm probability over the n_hypotheses searched equals that "
                "of threshold_pce at one hypothesis (each candidate reports its threshold and n_hypotheses)"
            ),
        }
        if match.searches_crops
        else None,
    }


@dataclass(frozen=True)
class IdentifySetup:
    """What an identify worker needs; calling it builds the worker's state once (library index, model session)."""

    library: LibraryListing | None  # the library's entries as the caller listed them (None: model attribution only)
    residual: ResidualParams  # query residual extraction
    match: MatchParams  # rotations, shifts, threshold
    search: SearchParams  # library search (prefilter)
    max_pixels: int  # decompression-bomb guard
    device: str = "cpu"  # compute device of the residual (see camforensics.pipelines.device)
    model: ModelChoice | None = None  # camera-model attribution beside PRNU
    signatures: str | None = None  # JPEG signature table (camforensics.pipelines.signatures); None: not matched
    # The state the caller built for its own checks (index, verified session, table): an in-process run uses it
    # instead of building the same again; never pickled, so a worker process or a Dask worker builds its own.
    built: IdentifyState | None = field(default=None, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "built": None}

    def __call__(self) -> IdentifyState:
        if self.built is not None:
            return self.built
        index = None
        if self.library is not None:
            index = FingerprintIndex(self.library, match=self.match, search=self.search)
        table = SignatureTable.load(self.signatures) if self.signatures is not None else None
        return IdentifyState(self, index, self.model.load() if self.model is not None else None, table)


@dataclass
class IdentifyState:
    """A worker's identify state: its setup, the library index (with its cache of fingerprint spectra) and the
    attributor's verified onnxruntime session."""

    setup: IdentifySetup
    index: FingerprintIndex | None
    attributor: LoadedModel | LoadedPanel | None = None
    signatures: SignatureTable | None = None


def identify_one(path: Path, state: IdentifyState, record: dict[str, Any]) -> None:
    """Rank the library's devices for one image and decide (the per-file task of :func:`identify_images`)."""
    setup, index = state.setup, state.index
    img = load_image(path, max_pixels=setup.max_pixels)
    record["input"] = img.info.to_dict()
    if state.attributor is not None:
        record["model_attribution"] = attribute_pixels(
            img.pixels,
            state.attributor,
            params=setup.model.params,  # type: ignore[union-attr]
            exif_make=img.info.exif_make,
            exif_model=img.info.exif_model,
        )
    if state.signatures is not None:
        record["jpeg_signature"], evidence = signature_of(path, state, record.get("model_attribution"))
        if "model_attribution" in record:
            record["camera_model"] = fuse_decision(
                record["model_attribution"], evidence, fused_threshold=fused_threshold(state.attributor)
            )
    if index is None:
        return
    try:
        index.require_fit(img.pixels.shape)  # before the residual: a size that fits nothing costs nothing
    except SizeMismatchError as exc:
        if state.attributor is None:
            raise
        # The model attribution stands on its own; PRNU had no fingerprint of this size to compare with.
        record["decision"] = None
        record["prnu_skipped"] = str(exc)
        record["matches"], record["candidates"], record["n_fingerprints_compared"] = [], [], 0
        return
    prnu_one(img, setup, index, record)


def signature_of(
    path: Path, state: IdentifyState, attribution: dict[str, Any] | None
) -> tuple[dict[str, Any], CodingEvidence]:
    """The JPEG coding signature matched against the table, and its evidence for the fused camera-model decision
    (a file that is not a JPEG gets a note and ``unusable`` evidence, not an error: its other results stand)."""
    table: SignatureTable = state.signatures  # type: ignore[assignment]
    try:
        sig = read_jpeg_signature(path)
    except InputError as exc:
        note = f"no JPEG coding signature: {exc}"
        return {"known": None, "note": note}, coding_evidence(None, table, why_none=note)
    decided = attribution["decision"]["model"] if attribution is not None else None
    classes = attribution["classes"] if attribution is not None else ()
    return match_signature(sig, table, cnn_model=decided, cnn_classes=classes), coding_evidence(sig, table)


def fused_threshold(model: LoadedModel | LoadedPanel | None) -> float | None:
    """The fused decision's open-set threshold: calibrated with the model (``decision.fusion.threshold`` of its
    manifest entry, models/measure_attribution.py --record), else the model's own CNN threshold (same scale: a mean
    log-probability)."""
    if model is None:
        return None
    fusion = (model.entry.meta.get("decision") or {}).get("fusion") or {}
    if fusion.get("threshold") is not None:
        return float(fusion["threshold"])
    return model.entry.decision.open_set_threshold


def prnu_one(img: LoadedImage, setup: IdentifySetup, index: FingerprintIndex, record: dict[str, Any]) -> None:
    """The PRNU part of :func:`identify_one`: rank the library's fingerprints by PCE and decide."""
    grey = to_grey(img.pixels)  # while a residual started ahead may still be computed
    residual = residual_of(img.pixels, setup.residual, setup.device)  # started once decoded, where it was
    outcome = index.rank(residual, grey)
    candidates = outcome.candidates
    # Each candidate carries its own threshold: match.threshold for a same-size search, raised for the offsets,
    # scales and orientations of a crop search (core.cropsearch.corrected_threshold).
    matches = [c["device"] for c in candidates if c["pce"] > c["threshold"]]
    top = next(c for c in candidates if c["device"] == matches[0]) if matches else candidates[0]
    record["decision"] = {
        "match": bool(matches),
        "device": top["device"] if matches else None,
        "pce": top["pce"],
        "rotation": top["rotation"],
        "peak_shift": top["peak_shift"],
        "p_fa": top["p_fa"],
        "log10_p_fa": top["log10_p_fa"],
        "threshold": top["threshold"],
        "ambiguous": len(matches) > 1,
        "search": top["search"],
        "n_hypotheses": top["n_hypotheses"],
        "mirrored": top["mirrored"],
        "scale": top["scale"],
        "crop_offset": top["crop_offset"],
    }
    record["matches"] = matches
    record["n_fingerprints_compared"] = outcome.n_compared
    if outcome.prefilter is not None:
        record["prefilter"] = outcome.prefilter
    record["candidates"] = candidates
    record["_used"] = list(outcome.used)  # extras: for run.library.entries_used, not a result member
    if outcome.skipped:
        record["library_warnings"] = [f"entry {name!r} left out: {why}" for name, why in sorted(outcome.skipped.items())]
        record["_skipped"] = dict(outcome.skipped)


def identify_images(
    paths: list[str | Path],
    *,
    library: str | Path | None = None,
    model: ModelChoice | None = None,
    signatures: str | Path | None = None,
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

    With ``model``, each image is also attributed to a camera model by a registered attributor or panel (open-set,
    with the EXIF make/model checked against the attribution); with a model and no ``library``, only that is done.
    With ``signatures`` (a table from ``camforensics signatures build``), each JPEG's coding signature is matched:
    which known cameras share it, whether it agrees with EXIF and with the attribution, re-saved/edited flags; with
    both, ``camera_model`` is the fused decision (:func:`camforensics.inference.attribution.fuse_decision`: the CNN
    restricted to the cameras that write the file's JPEG coding, the CNN alone for files without their camera's
    coding; ``by`` names the cues that decided).

    Each image's residual W (sigma0 of ``residual_params``) is correlated with ``grey(image) * K`` of every
    fingerprint whose shape fits the image in an allowed rotation. Candidates are ranked by PCE; the decision
    names the top device when its PCE exceeds the threshold. ``p_fa`` is corrected for the rotations and shifts
    searched for that fingerprint.

    An image smaller than a fingerprint (a crop, possibly downscaled, turned or mirrored) is searched as a crop
    (see ``match.crop_anchor``, ``match.scales`` and :func:`camforensics.core.matching.match_crop`): the
    candidate reports the offset found (``crop_offset``), the ``scale`` and orientation, the ``n_hypotheses``
    searched and the raised ``threshold`` its PCE is compared with.

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
    if library is None and model is None:
        raise ParameterError("nothing to identify with: give a fingerprint library, a camera-model attributor, or both")
    lib = LibraryListing.of(FingerprintLibrary(library)) if library is not None else None  # opened and listed once
    parallel = execution.scheduler is not None or (execution.workers or os.cpu_count() or 1) > 1
    if model is not None and parallel and model.threads == 0:
        model = replace(model, threads=1)  # one process per core: no intra-op threads on top
    # Check the library and the model (sha256) before any worker starts.
    index = FingerprintIndex(lib, match=match, search=search) if lib is not None else None
    loaded = model.load() if model is not None else None
    table = SignatureTable.load(signatures) if signatures is not None else None  # refused before any worker starts
    files = gather_inputs(paths, on_start=on_start)
    parameters: dict[str, Any] = {"max_pixels": max_pixels}
    if lib is not None:
        parameters |= {"residual": residual_params.to_dict(), "match": match.to_dict(), "search": search.to_dict()}
    if table is not None:
        parameters["jpeg_signatures"] = {"table": str(signatures), "cameras": len(table.cameras)}
    if loaded is not None:
        parameters["attribution"] = {
            "model": loaded.entry.name,
            "model_sha256": loaded.entry.sha256,
            **model.params.to_dict(),  # type: ignore[union-attr]
        }
        if table is not None:
            parameters["attribution"]["fusion"] = {
                "cues": ["cnn", "jpeg_signature"],
                "fused_threshold": fused_threshold(loaded),
                "calibrated": bool(((loaded.entry.meta.get("decision") or {}).get("fusion") or {}).get("threshold")
                                   is not None),
            }
    report = Report(
        command="identify",
        parameters=parameters,
        journal=Journal(journal, command="identify", parameters=parameters, resume=resume) if journal else None,
    )
    used: set[str] = set()
    counts = {"n_matched": 0, "n_unmatched": 0}

    skipped: dict[str, str] = dict(index.skipped) if index is not None else {}

    def on_result(result: dict[str, Any], extras: dict[str, Any]) -> None:
        used.update(extras.get("used", ()))
        skipped.update(extras.get("skipped", {}))
        if result["status"] != "ok":
            return
        if result.get("decision") is not None:
            counts["n_matched" if result["decision"]["match"] else "n_unmatched"] += 1
        attribution = result.get("model_attribution")
        if attribution is not None:
            combined = result.get("camera_model")  # the fused decision where there is one, else the CNN's
            final = combined if combined is not None else attribution["decision"]
            counts["n_model_unknown" if final["unknown"] else "n_model_attributed"] += 1
            if combined is not None and combined["unknown"] and not attribution["decision"]["unknown"]:
                counts["n_model_unknown_by_signature"] = counts.get("n_model_unknown_by_signature", 0) + 1
            if combined is not None and "jpeg_signature" in combined["by"] and not combined["unknown"]:
                counts["n_model_named_with_signature"] = counts.get("n_model_named_with_signature", 0) + 1
            if (combined or attribution)["exif"]["consistent"] is False:
                counts["n_exif_inconsistent"] += 1
        sig = result.get("jpeg_signature")
        if sig is not None and sig.get("resaved", {}).get("flag"):
            counts["n_resaved_flagged"] = counts.get("n_resaved_flagged", 0) + 1

    if loaded is not None:
        counts |= {"n_model_attributed": 0, "n_model_unknown": 0, "n_exif_inconsistent": 0}
    setup = IdentifySetup(
        lib, residual_params, match, search, max_pixels, execution.device, model,
        str(signatures) if signatures is not None else None,
    )
    setup = replace(setup, built=IdentifyState(setup, index, loaded, table))  # in this process: no second load
    listed = list(index.entries) if index is not None else []  # before an in-process run leaves out corrupted ones
    run_tasks(files, identify_one, setup, report, execution=execution, on_result=on_result, tick=tick)
    if lib is not None and index is not None:
        report.context["library"] = {
            "path": str(lib.root),
            "n_entries": len(listed),
            "entries_used": [e.summary() for e in listed if e.name in used],
            # why a candidate reports axis_notch > 0: its camera model has another body in the library
            "sibling_notch": {
                "width": search.sibling_notch,
                "models": {m: names for m, names in sorted(index.siblings.items())},
                "model_unknown": [e.name for e in listed if e.camera_model is None],
            },
        }
        if skipped:  # corrupted or malformed entries: left out, the intact ones used
            report.context["library"]["skipped_entries"] = [{"name": n, "reason": r} for n, r in sorted(skipped.items())]
        report.context["decision_rule"] = decision_context(match)
    if loaded is not None:
        e = loaded.entry
        report.context["models"] = [
            {
                **e.summary(),
                **({"members": [m.entry.summary() for m in loaded.members]} if isinstance(loaded, LoadedPanel) else {}),
                "providers": list(loaded.providers),
                "open_set_threshold": e.decision.open_set_threshold,
                "patches_per_image": e.decision.patches_per_image,
                "validation_metrics": {k: s.image_accuracy for k, s in e.metrics.splits.items()},
            }
        ]
    report.finish(**counts)
    return report

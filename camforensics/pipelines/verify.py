"""verify: were two sets of images taken by the same device? Classical PRNU, and a Siamese model when one is
registered (its score, and a calibrated fusion of both)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.fingerprint import Fingerprint
from camforensics.core.matching import Query, fits, match_query, match_residual
from camforensics.core.params import FingerprintParams, MatchParams, ResidualParams
from camforensics.core.pce import Spectrum, spectrum_of
from camforensics.core.residual import to_grey
from camforensics.errors import CamforensicsError, ParameterError, SizeMismatchError
from camforensics.inference.manifest import Decision
from camforensics.inference.registry import LoadedModel, ModelRegistry, onnxruntime_device
from camforensics.inference.verification import TASK as TASK_VERIFICATION
from camforensics.io.folders import collect_images
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.reports.escape import recorded_path
from camforensics.pipelines.batch import common_size, run_tasks
from camforensics.pipelines.device import new_accumulator, residual_extractor
from camforensics.pipelines.enroll import AccumulateState, merge_accumulators
from camforensics.pipelines.executor import IN_PROCESS, Execution, Executor
from camforensics.pipelines.identify import decision_context
from camforensics.reports.report import Report


def _check_size(info: Any, size: tuple[int, int] | None, side: str) -> None:
    if size is not None and (info.width, info.height) != size:
        raise SizeMismatchError(
            f"{info.width}x{info.height} differs from the {size[0]}x{size[1]} of most images of set {side}; "
            "a set's images must come from one sensor geometry"
        )


@dataclass(frozen=True)
class SetSetup:
    """What a worker needs to fingerprint its share of one set."""

    side: str  # "A" or "B"
    params: FingerprintParams  # fingerprint estimation
    size: tuple[int, int] | None  # (width, height) of most images of the set
    max_pixels: int  # decompression-bomb guard
    device: str = "cpu"  # compute device (see camforensics.pipelines.device)

    def __call__(self) -> AccumulateState:
        return AccumulateState(self, new_accumulator(self.device, self.params))  # type: ignore[arg-type]


def read_set_one(path: Path, state: AccumulateState, record: dict[str, Any]) -> None:
    """Add one image of a set to the worker's partial fingerprint of that set."""
    setup: SetSetup = state.setup  # type: ignore[assignment]
    record["set"] = setup.side
    img = load_image(path, max_pixels=setup.max_pixels)
    record["input"] = img.info.to_dict()
    _check_size(img.info, setup.size, setup.side)
    state.acc.add(img.pixels)


@dataclass(frozen=True, eq=False)
class AgainstSetup:
    """What a worker needs to match images against the other set's fingerprint."""

    k: np.ndarray  # the other set's fingerprint
    residual: ResidualParams  # query residual extraction
    match: MatchParams  # rotations, exclusion
    max_pixels: int  # decompression-bomb guard
    device: str = "cpu"  # compute device of the residual

    def __call__(self) -> AgainstState:
        return AgainstState(self, spectrum_of(self.k, conjugate=True))


@dataclass
class AgainstState:
    setup: AgainstSetup
    spectrum: Spectrum  # of the other set's fingerprint, computed once per worker


def match_against_one(path: Path, state: AgainstState, record: dict[str, Any]) -> None:
    """Goljan's detector for one image against the other set's fingerprint."""
    setup = state.setup
    img = load_image(path, max_pixels=setup.max_pixels)
    query = Query(residual_extractor(setup.device)(img.pixels, params=setup.residual), to_grey(img.pixels))
    if fits(query.shape, state.spectrum.shape, match=setup.match) or not fits(setup.k.shape, query.shape, match=setup.match):
        record["vs_other_set"] = match_query(query, state.spectrum, match=setup.match).to_dict()
    else:
        # The image is larger than the other set's fingerprint (that set is a crop of this sensor): search the
        # fingerprint as a crop of the image's signal W*I; the correlation is the same detector, roles swapped.
        res = match_query(Query(setup.k), spectrum_of(query.signal, conjugate=True), match=setup.match)
        record["vs_other_set"] = {**res.to_dict(), "roles_swapped": True}


@dataclass(frozen=True)
class VerifierChoice:
    """Which Siamese verifier verify runs beside PRNU, and how."""

    name: str  # registry name
    models_dir: str  # registry folder
    positions: int | None = None  # patch positions of extended inference; None = the model's own (calibrated so)
    device: str = "auto"  # onnxruntime device: auto, cpu, cuda
    threads: int = 0  # onnxruntime intra-op threads (0 = all cores)

    def load(self) -> LoadedModel:
        return ModelRegistry(self.models_dir).load(self.name, device=self.device, threads=self.threads)


def verifier_choice(
    name: str | None,
    models_dir: str | os.PathLike[str] | None,
    *,
    positions: int | None = None,
    threads: int = 0,
    device: str = "auto",
) -> VerifierChoice | None:
    """The Siamese verifier verify should run: ``name``, else the registry's default same-device verifier, else
    None (PRNU only).

    Raises
    ------
    ModelError
        Unknown ``name`` (the message lists the available models).
    ParameterError
        ``name`` is a model of another task, or ``positions`` < 1.
    """
    if positions is not None and positions < 1:
        raise ParameterError(f"positions must be >= 1, not {positions}")
    registry = ModelRegistry(models_dir)
    entry = registry.resolve(name, TASK_VERIFICATION)
    if entry is None:
        return None
    return VerifierChoice(entry.name, str(registry.root), positions, onnxruntime_device(device), threads)


def _calibration_warnings(
    decision: Decision,
    fingerprint: FingerprintParams,
    match: MatchParams,
    n_images: tuple[int, int],
    area: tuple[int, int],
    *,
    normalised: bool = False,
) -> list[str]:
    """Where this run differs from the conditions the model's fusion was calibrated in."""
    from camforensics.reports.report import clean

    cal = decision.prnu_parameters
    out = []
    if "fingerprint" in cal and clean(fingerprint.to_dict()) != cal["fingerprint"]:
        out.append("the fingerprint parameters differ from those the fusion was calibrated with")
    if "match" in cal:
        # Search settings added after a model was calibrated count as equal when they keep their defaults.
        defaults = clean(MatchParams().to_dict())
        ours = {
            k: v
            for k, v in clean(match.to_dict()).items()
            if k != "threshold" and (k in cal["match"] or v != defaults.get(k))
        }
        theirs = {k: v for k, v in cal["match"].items() if k != "threshold"}
        if ours != theirs:
            out.append("the PCE search (rotations, shifts, exclusion) differs from the one the fusion was calibrated with")
    trained = decision.set_sizes_trained or []
    if len(trained) == 2 and max(n_images) > trained[1]:
        out.append(f"a set has {max(n_images)} images; the model was trained and calibrated with {trained[0]}..{trained[1]}")
    cal_area = decision.calibration_area_pixels or []
    pixels = area[0] * area[1]
    # A fusion whose PCE is normalised for the pixel count reads larger images on its own scale; smaller ones are
    # never scaled up (their PCE is weaker evidence, which the fusion sees as such).
    if len(cal_area) == 3 and not cal_area[0] / 4 <= pixels <= cal_area[2] * 4 and not (normalised and pixels > cal_area[2]):
        out.append(
            f"the images ({pixels / 1e6:.2f} MP in common) are far from the sizes the fusion was calibrated on "
            f"({cal_area[0] / 1e6:.2f}..{cal_area[2] / 1e6:.2f} MP): the PCE grows with the area, so the fused "
            "probability is less reliable; calibrate a model on images like these"
        )
    return out


def siamese_step(
    report: Report,
    model: LoadedModel,
    choice: VerifierChoice,
    *,
    pce: float,
    prnu_rotation: int,
    max_pixels: int,
    prnu_threshold: float | None = None,
    prnu_pixels: int | None = None,
    fingerprint: FingerprintParams,
    match: MatchParams,
) -> dict[str, Any]:
    """Extended inference of the Siamese model on the images of both sets that PRNU used, and the fusion.

    Set B is compared in A's orientation (:func:`camforensics.inference.verification.siamese_rotation`).

    Returns the ``summary.siamese`` member: the score (mean logit over positions, their spread, the common area),
    its threshold and decision, the fused probability, its threshold and decision, and warnings.
    """
    from camforensics.inference.verification import (
        Fusion,
        SetAverager,
        SiameseGraph,
        common_area,
        rotate_image,
        score_set_inputs,
        siamese_rotation,
        spread_positions,
    )

    graph = SiameseGraph.from_loaded(model, n_positions=choice.positions)
    decision = model.entry.decision
    fusion = Fusion.from_dict(decision.fusion)
    siamese_threshold = decision.siamese_threshold
    used = {side: [r for r in report.results if r["status"] == "ok" and r["set"] == side] for side in ("A", "B")}
    shapes = {side: sorted({(r["input"]["height"], r["input"]["width"]) for r in recs}) for side, recs in used.items()}
    rotation = siamese_rotation(
        shapes["A"][0], shapes["B"][0], prnu_rotation=prnu_rotation, prnu_pce=pce, threshold=match.threshold
    )
    if rotation in (90, 270):
        shapes["B"] = [(w, h) for h, w in shapes["B"]]
    area = common_area([*shapes["A"], *shapes["B"]])
    warnings: list[str] = []
    if shapes["A"] != shapes["B"]:
        warnings.append(
            f"the sets differ in size (A {shapes['A']}, B {shapes['B']}, height x width): both were centre-cropped "
            f"to {area[0]}x{area[1]}, which keeps the pixel correspondence only for centred crops of one sensor"
        )
    positions = spread_positions(area, crop=graph.crop, n=graph.n_positions)
    sides, counts = [], []
    for side in ("A", "B"):
        avg = SetAverager(positions, crop=graph.crop, preprocessor=graph.preprocessor, area=area)
        turn = rotation if side == "B" else 0
        for r in used[side]:
            try:
                avg.add(rotate_image(load_image(recorded_path(r["input"]), max_pixels=max_pixels).pixels, turn))
            except CamforensicsError as exc:  # it was readable a moment ago; say so and go on without it
                warnings.append(f"{r['input']['path']}: left out of the Siamese score ({exc})")
        sides.append(avg.mean())
        counts.append(avg.n_images)
    score = score_set_inputs(sides[0], sides[1], graph, n_images=(counts[0], counts[1]), area=area)
    prnu_threshold = match.threshold if prnu_threshold is None else prnu_threshold
    pixels = prnu_pixels if prnu_pixels is not None else area[0] * area[1]
    fused = float(fusion.probability(pce, score.mean_logit, pixels=pixels, prnu_threshold=prnu_threshold))
    logistic = float(fusion.logistic(pce, score.mean_logit, pixels=pixels))
    warnings += _calibration_warnings(
        decision, fingerprint, match, (score.n_images_a, score.n_images_b), area, normalised=fusion.reference_pixels is not None
    )
    return {
        "model": model.entry.name,
        "model_sha256": model.entry.sha256,
        **score.to_dict(),
        "rotation_b": rotation,
        "threshold": siamese_threshold,
        "same_device": score.mean_logit > siamese_threshold,
        "fused_probability": fused,
        "fused_threshold": fusion.threshold,
        "fused_same_device": fused > fusion.threshold,
        # The calibrated logistic part alone, and whether the PRNU floor lifted the fused probability above it
        # (PCE above the PRNU threshold: the fused decision never rejects what PRNU alone accepts).
        "fused_logistic_probability": logistic,
        "fused_prnu_floor": fused > logistic,
        "fused_prnu_threshold": prnu_threshold,
        "fused_prnu_pixels": int(pixels),
        "fusion": fusion.to_dict(),
        "size_policy": decision.size_policy,
        "warnings": warnings,
    }


def model_context(model: LoadedModel, siamese: dict[str, Any]) -> dict[str, Any]:
    """``run.models[0]`` of a verify report: the model's name, sha256, providers and decision parameters."""
    e = model.entry
    validation = e.metrics.split("validation")
    return {
        **e.summary(),
        "providers": list(model.providers),
        "positions": siamese["n_positions"],
        "crop": e.patch_size,
        "set_sizes_trained": e.decision.set_sizes_trained,
        "siamese_threshold": siamese["threshold"],
        "fusion": siamese["fusion"],
        "validation_auc": validation.auc,
    }


def verify_sets(
    set_a: list[str | Path],
    set_b: list[str | Path],
    *,
    fingerprint_params: FingerprintParams = FingerprintParams(),
    residual_params: ResidualParams = ResidualParams(),
    match: MatchParams = MatchParams(),
    per_image: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    model: VerifierChoice | None = None,
    execution: Execution = IN_PROCESS,
    tick: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Report:
    """Decide whether the images of ``set_a`` and ``set_b`` share a sensor.

    A fingerprint is estimated from each set (any number of images, one size per set); the decision statistic
    is the PCE between the two fingerprints, best over the rotations their shapes allow, compared with
    ``match.threshold``. Sets of different sizes (one cropped or downscaled from the other's sensor) are matched
    by a crop search of the smaller fingerprint in the larger (``decision.query_set`` names the smaller set;
    the threshold is raised for the hypotheses searched, ``decision.threshold``). With ``per_image``, every image of one set is also matched against the other set's
    fingerprint (Goljan's detector, W vs I*K), which shows whether one image disagrees with the rest.

    With ``model`` (a registered Siamese verifier), the images PRNU used are also scored by the model (extended
    inference over patch positions of the sets' common centred area, see
    :func:`camforensics.inference.verification.siamese_score`) and the PCE and the Siamese score are fused into a
    calibrated same-device probability with the model's fusion parameters.

    Returns
    -------
    Report
        One result per input image (with its set and, with ``per_image``, its PCE against the other set);
        ``summary["decision"]`` holds the PRNU verdict (and, with a model, ``fused_same_device`` and
        ``fused_probability``); ``summary["scores"]`` and ``summary["thresholds"]`` hold ``prnu_pce`` (and
        ``siamese``, ``fused``); ``summary["siamese"]`` the model's details.

    Raises
    ------
    CamforensicsError
        A set without image files, or a set where no image could be used.
    """
    files = {"A": collect_images(list(set_a)), "B": collect_images(list(set_b))}
    for side, found in files.items():
        if not found:
            raise CamforensicsError(f"set {side} holds no image files")
    if on_start is not None:
        on_start((2 if per_image else 1) * (len(files["A"]) + len(files["B"])))
    sizes = {side: common_size(found) for side, found in files.items()}
    loaded = model.load() if model is not None else None  # the sha256 is checked before any image is read
    parameters: dict[str, Any] = {
        "fingerprint": fingerprint_params.to_dict(),
        "residual": residual_params.to_dict(),
        "match": match.to_dict(),
        "per_image": per_image,
        "max_pixels": max_pixels,
    }
    if loaded is not None and model is not None:
        parameters["siamese"] = {
            "model": loaded.entry.name,
            "model_sha256": loaded.entry.sha256,
            "positions": model.positions or loaded.entry.decision.positions,
            "crop": loaded.entry.patch_size,
            "preprocessor": loaded.entry.preprocessor,
            "device": model.device,
            "threads": model.threads,
        }
    report = Report(command="verify", parameters=parameters)
    fingerprints: dict[str, Fingerprint] = {}
    for side, found in files.items():
        setup = SetSetup(side, fingerprint_params, sizes[side], max_pixels, execution.device)
        parts = run_tasks(found, read_set_one, setup, report, execution=execution, tick=tick)
        acc = merge_accumulators(parts, params=fingerprint_params)
        if acc.n_images == 0:
            report.finish()
            raise CamforensicsError(f"no image of set {side} could be used; see the per-file reasons in the report")
        fingerprints[side] = acc.finish()

    fa, fb = fingerprints["A"], fingerprints["B"]
    # The smaller fingerprint is the query (a crop of the larger one's sensor when the sizes differ).
    searched = "A" if not fits(fb.shape, fa.shape, match=match) and fits(fa.shape, fb.shape, match=match) else "B"
    try:
        if searched == "B":
            res = match_residual(fb.k, None, fa.k, match=match)
        else:
            res = match_residual(fa.k, None, fb.k, match=match)
    except SizeMismatchError:
        raise CamforensicsError(
            f"set A images are {fa.shape[1]}x{fa.shape[0]}, set B images {fb.shape[1]}x{fb.shape[0]}: neither fits "
            f"the other in any rotation, as the same size or as a crop at the scales searched {list(match.scales)} "
            "(crop search needs --crop-anchor other than none; downscaled sets need --scales)"
        ) from None
    decision = {
        "same_device": res.is_match,
        "statistic": "PCE between the fingerprints of set A and set B",
        **res.to_dict(),
        "threshold": res.threshold,
        "query_set": searched,
        "n_images_a": fa.n_images,
        "n_images_b": fb.n_images,
    }

    if per_image:
        for side, other in (("A", fb), ("B", fa)):
            records = [r for r in report.results if r["status"] == "ok" and r["set"] == side]
            pces = []
            setup = AgainstSetup(other.k, residual_params, match, max_pixels, execution.device)
            with Executor(match_against_one, setup, execution=execution) as ex:
                for record, (result, _) in zip(records, ex.map(Path(recorded_path(r["input"])) for r in records)):
                    if result["status"] == "ok":
                        record["vs_other_set"] = result["vs_other_set"]
                        pces.append(result["vs_other_set"]["pce"])
                    else:
                        record["vs_other_set"] = {"error": result["error"]}
                    if tick is not None:
                        tick()
            pces.sort()
            decision[f"median_pce_{side.lower()}_images_vs_fingerprint_{'b' if side == 'A' else 'a'}"] = (
                pces[len(pces) // 2] if pces else None
            )
    report.context["decision_rule"] = decision_context(match)
    scores: dict[str, Any] = {"prnu_pce": res.pce}
    thresholds: dict[str, Any] = {"prnu_pce": res.threshold}
    extra: dict[str, Any] = {}
    if loaded is not None and model is not None:
        siamese = siamese_step(
            report,
            loaded,
            model,
            pce=res.pce,
            prnu_rotation=res.rotation,
            max_pixels=max_pixels,
            prnu_threshold=res.threshold,
            prnu_pixels=int(np.prod((fb if searched == "B" else fa).shape[:2])),
            fingerprint=fingerprint_params,
            match=match,
        )
        scores |= {"siamese": siamese["mean_logit"], "fused": siamese["fused_probability"]}
        thresholds |= {"siamese": siamese["threshold"], "fused": siamese["fused_threshold"]}
        decision |= {"fused_same_device": siamese["fused_same_device"], "fused_probability": siamese["fused_probability"]}
        extra["siamese"] = siamese
        report.context["models"] = [model_context(loaded, siamese)]
    report.finish(decision=decision, scores=scores, thresholds=thresholds, **extra)
    return report

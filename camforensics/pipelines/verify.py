"""verify: were two sets of images taken by the same device? (classical PRNU)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.fingerprint import Fingerprint
from camforensics.core.matching import Query, match_query, match_residual
from camforensics.core.pce import Spectrum, spectrum_of
from camforensics.core.params import FingerprintParams, MatchParams, ResidualParams
from camforensics.core.residual import to_grey
from camforensics.errors import CamforensicsError, SizeMismatchError
from camforensics.io.folders import collect_images
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.pipelines.device import new_accumulator, residual_extractor
from camforensics.pipelines.batch import common_size, run_tasks
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
    record["vs_other_set"] = match_query(query, state.spectrum, match=setup.match).to_dict()


def verify_sets(
    set_a: list[str | Path],
    set_b: list[str | Path],
    *,
    fingerprint_params: FingerprintParams = FingerprintParams(),
    residual_params: ResidualParams = ResidualParams(),
    match: MatchParams = MatchParams(),
    per_image: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    execution: Execution = IN_PROCESS,
    tick: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Report:
    """Decide whether the images of ``set_a`` and ``set_b`` share a sensor.

    A fingerprint is estimated from each set (any number of images, one size per set); the decision statistic
    is the PCE between the two fingerprints, best over the rotations their shapes allow, compared with
    ``match.threshold``. With ``per_image``, every image of one set is also matched against the other set's
    fingerprint (Goljan's detector, W vs I*K), which shows whether one image disagrees with the rest.

    Returns
    -------
    Report
        One result per input image (with its set and, with ``per_image``, its PCE against the other set);
        ``summary["decision"]`` holds the verdict.

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
    report = Report(
        command="verify",
        parameters={
            "fingerprint": fingerprint_params.to_dict(),
            "residual": residual_params.to_dict(),
            "match": match.to_dict(),
            "per_image": per_image,
            "max_pixels": max_pixels,
        },
    )
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
    try:
        res = match_residual(fb.k, None, fa.k, match=match)
    except SizeMismatchError:
        raise CamforensicsError(
            f"set A images are {fa.shape[1]}x{fa.shape[0]}, set B images {fb.shape[1]}x{fb.shape[0]}: no rotation "
            "aligns them (cropped or resized images are not supported by the classical verify yet)"
        ) from None
    decision = {
        "same_device": res.pce > match.threshold,
        "statistic": "PCE between the fingerprints of set A and set B",
        "threshold": match.threshold,
        **res.to_dict(),
        "n_images_a": fa.n_images,
        "n_images_b": fb.n_images,
    }

    if per_image:
        for side, other in (("A", fb), ("B", fa)):
            records = [r for r in report.results if r["status"] == "ok" and r["set"] == side]
            pces = []
            setup = AgainstSetup(other.k, residual_params, match, max_pixels, execution.device)
            with Executor(match_against_one, setup, execution=execution) as ex:
                for record, (result, _) in zip(records, ex.map(Path(r["input"]["path"]) for r in records)):
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
    report.finish(decision=decision)
    return report

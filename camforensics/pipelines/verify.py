"""verify: were two sets of images taken by the same device? (classical PRNU)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from camforensics.core.fingerprint import Fingerprint, FingerprintAccumulator
from camforensics.core.matching import Query, match_query, match_residual
from camforensics.core.pce import spectrum_of
from camforensics.core.params import FingerprintParams, MatchParams, ResidualParams
from camforensics.core.residual import extract_residual, to_grey
from camforensics.errors import CamforensicsError, SizeMismatchError
from camforensics.io.folders import collect_images
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.pipelines.batch import common_size, run_batch
from camforensics.pipelines.identify import decision_context
from camforensics.reports.report import Report, clean


def _check_size(info: Any, size: tuple[int, int] | None, side: str) -> None:
    if size is not None and (info.width, info.height) != size:
        raise SizeMismatchError(
            f"{info.width}x{info.height} differs from the {size[0]}x{size[1]} of most images of set {side}; "
            "a set's images must come from one sensor geometry"
        )


def verify_sets(
    set_a: list[str | Path],
    set_b: list[str | Path],
    *,
    fingerprint_params: FingerprintParams = FingerprintParams(),
    residual_params: ResidualParams = ResidualParams(),
    match: MatchParams = MatchParams(),
    per_image: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
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
        acc = FingerprintAccumulator(params=fingerprint_params)

        def work(path: Path, record: dict[str, Any], side: str = side, acc: FingerprintAccumulator = acc) -> None:
            record["set"] = side
            img = load_image(path, max_pixels=max_pixels)
            record["input"] = img.info.to_dict()
            _check_size(img.info, sizes[side], side)
            acc.add(img.pixels)

        run_batch(found, work, report, tick=tick)
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
        index = {(r["set"], r["input"]["path"]): r for r in report.results if r["status"] == "ok"}
        for side, other in (("A", fb), ("B", fa)):
            other_spectrum = spectrum_of(other.k)
            pces = []
            for (s, p), record in index.items():
                if s != side:
                    continue
                img = load_image(p, max_pixels=max_pixels)
                query = Query(extract_residual(img.pixels, params=residual_params), to_grey(img.pixels))
                m = match_query(query, other_spectrum, match=match)
                record["vs_other_set"] = clean(m.to_dict())
                pces.append(m.pce)
                if tick is not None:
                    tick()
            pces.sort()
            decision[f"median_pce_{side.lower()}_images_vs_fingerprint_{'b' if side == 'A' else 'a'}"] = (
                pces[len(pces) // 2] if pces else None
            )
    report.context["decision_rule"] = decision_context(match)
    report.finish(decision=decision)
    return report

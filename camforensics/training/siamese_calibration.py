"""Pairs of held-out image sets scored exactly as ``camforensics verify`` scores them, and their figures.

Used at the end of a Siamese verifier's training: the fusion with PRNU and the thresholds are fitted on scored
validation pairs, and the test split is measured the same way. Each pair's PRNU score is the PCE between the
fingerprints of its two sets of whole images; its Siamese score the mean logit of extended inference over the
sets' common area (set B in A's orientation). Numpy and onnxruntime-free: the graph is any
:class:`camforensics.inference.verification.SiameseGraph` (the torch model during training).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.fingerprint import FingerprintAccumulator
from camforensics.core.matching import match_residual
from camforensics.core.metrics import summarize_scores
from camforensics.core.params import FingerprintParams, MatchParams
from camforensics.errors import CamforensicsError
from camforensics.inference.verification import (
    Fusion,
    SetAverager,
    SiameseGraph,
    common_area,
    image_crops,
    rotate_image,
    score_set_inputs,
    siamese_rotation,
    spread_positions,
)
from camforensics.io.images import load_image
from camforensics.io.records import ImageRecord
from camforensics.training.siamese_pairs import PairSpec, spec_paths


def _probe_shape(path: Path) -> tuple[int, int]:
    from camforensics.io.images import read_header

    # Header only (a regular file: a named pipe is refused, never opened); the size is the stored (sensor) order,
    # never EXIF-rotated. The pixel limit is applied when the image is decoded.
    _, width, height = read_header(path, max_pixels=1 << 62)
    return height, width


CROP_CACHE_BYTES = 1_000_000_000  # model inputs of calibration images kept for the pairs that reuse them
# Each image's fingerprint terms (per-channel wavelet noise and weights, 24 bytes per pixel) kept for the pairs that
# reuse it: its denoising is the expensive part of the PRNU score.
TERMS_CACHE_BYTES = 1_500_000_000


class CropCache:
    """Model inputs of images at a pair's positions, kept up to a memory budget (calibration images recur in
    several pairs; their wavelet residual is the expensive part)."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = int(budget_bytes)
        self.used = 0
        self._items: dict[tuple, np.ndarray] = {}

    def get(self, key: tuple) -> np.ndarray | None:
        return self._items.get(key)

    def put(self, key: tuple, value: Any, nbytes: int | None = None) -> None:
        """Keep ``value`` (an array, or anything whose size is given as ``nbytes``) while the budget allows."""
        size = int(value.nbytes if nbytes is None else nbytes)
        if self.used + size <= self.budget:
            self._items[key] = value
            self.used += size


def pair_scores(
    paths_a: Sequence[Path],
    paths_b: Sequence[Path],
    graph: SiameseGraph,
    *,
    fingerprint: FingerprintParams | None = None,
    match: MatchParams | None = None,
    crops: CropCache | None = None,
    terms: CropCache | None = None,
) -> tuple[float, float, int]:
    """(PRNU PCE, Siamese mean logit, pixels of the common area) of two sets of image files, computed as
    ``camforensics verify`` does.

    PRNU: a fingerprint per set from whole images, PCE between them at the best allowed rotation
    (:func:`camforensics.core.matching.match_residual`). Siamese: extended inference over ``graph.n_positions``
    positions of the sets' common centred area, set B in A's orientation
    (:func:`camforensics.inference.verification.siamese_rotation`). Each image is decoded once (B's again only when
    it must be turned); its model inputs at the positions come from ``crops``, and its fingerprint terms (wavelet
    noise and weights, :meth:`FingerprintAccumulator.terms_of`) from ``terms``, when an earlier pair computed them;
    an image whose both are cached is not decoded again.
    """
    match = match or MatchParams()
    shapes = [_probe_shape(p) for p in paths_a], [_probe_shape(p) for p in paths_b]
    area = common_area([*shapes[0], *shapes[1]])
    positions = spread_positions(area, crop=graph.crop, n=graph.n_positions)
    crops = crops if crops is not None else CropCache(0)
    terms = terms if terms is not None else CropCache(0)
    fp_params = fingerprint or FingerprintParams()

    def side_input(paths: Sequence[Path], acc: FingerprintAccumulator | None, area: tuple[int, int], turn: int):
        avg = SetAverager(positions, crop=graph.crop, preprocessor=graph.preprocessor, area=area)
        for p in paths:
            pixels = None
            if acc is not None:
                tkey = (str(p), fp_params)
                contribution = terms.get(tkey)
                if contribution is None:
                    pixels = load_image(p).pixels
                    contribution = acc.terms_of(pixels)
                    terms.put(tkey, contribution, sum(a.nbytes for part in contribution for a in part))
                acc.add_terms(contribution)
            key = (str(p), area, graph.crop, len(positions), turn)
            cut = crops.get(key)
            if cut is None:
                if pixels is None:
                    pixels = load_image(p).pixels
                cut = image_crops(
                    rotate_image(pixels, turn), positions, crop=graph.crop, preprocessor=graph.preprocessor, area=area
                )
                crops.put(key, cut)
            avg.add_crops(cut)
        return avg.mean()

    fps, sides = [], []
    for paths in (paths_a, paths_b):
        acc = FingerprintAccumulator(params=fp_params)
        sides.append(side_input(paths, acc, area, 0))
        fps.append(acc.finish())
    res = match_residual(fps[1].k, None, fps[0].k, match=match)
    turn = siamese_rotation(
        shapes[0][0], shapes[1][0], prnu_rotation=res.rotation, prnu_pce=res.pce, threshold=match.threshold
    )
    if turn:
        turned = [(w, h) if turn in (90, 270) else (h, w) for h, w in shapes[1]]
        area = common_area([*shapes[0], *turned])
        positions = spread_positions(area, crop=graph.crop, n=graph.n_positions)
        sides = [side_input(paths_a, None, area, 0), side_input(paths_b, None, area, turn)]
    return float(res.pce), score_set_inputs(sides[0], sides[1], graph, area=area).mean_logit, area[0] * area[1]


def score_pairs(
    specs: Sequence[PairSpec], records: Sequence[ImageRecord], graph: SiameseGraph, *, on_pair: Callable[[], None]
) -> dict[str, Any]:
    """PRNU and Siamese scores of labelled pairs of whole images; pairs that cannot be scored are counted."""
    pce, siam, labels, same_model, sizes, skipped, pixels = [], [], [], [], [], [], []
    crops = CropCache(CROP_CACHE_BYTES)
    terms = CropCache(TERMS_CACHE_BYTES)
    for spec in specs:
        pa, pb = spec_paths(spec, records)
        try:
            p, s, n_pixels = pair_scores(pa, pb, graph, crops=crops, terms=terms)
        except (CamforensicsError, OSError) as exc:
            skipped.append(f"{[x.name for x in pa]} vs {[x.name for x in pb]}: {exc}")
            continue
        finally:
            on_pair()
        pce.append(p)
        siam.append(s)
        labels.append(spec.same_device)
        same_model.append(spec.same_model)
        sizes.append((len(pa), len(pb)))
        pixels.append(n_pixels)
    return {
        "pixels": pixels,
        "pce": np.asarray(pce),
        "siamese": np.asarray(siam),
        "labels": np.asarray(labels, bool),
        "same_model": np.asarray(same_model, bool),
        "set_sizes": sizes,
        "skipped": skipped,
    }


def pair_metrics(scored: dict[str, Any], *, siamese_threshold: float, fusion: Fusion) -> dict[str, Any]:
    """Score blocks (:func:`camforensics.core.metrics.summarize_scores`, without the curve) of the PRNU PCE, the
    Siamese mean logit and the fused probability of scored pairs, with the rates at their thresholds, also among
    same-model negatives (the hard case)."""
    y = scored["labels"]
    hard = ~y & scored["same_model"]
    out: dict[str, Any] = {
        "n_same_model_negatives": int(hard.sum()),
        "n_skipped": len(scored["skipped"]),
        "skipped": scored["skipped"][:20],
        "set_sizes": sorted({f"{a}+{b}" for a, b in scored["set_sizes"]}),
    }
    fused = np.asarray(
        fusion.probability(scored["pce"], scored["siamese"], pixels=scored["pixels"] or None), np.float64
    ).reshape(-1)
    for name, s, t in (
        ("prnu_pce", scored["pce"], MatchParams().threshold),
        ("siamese", scored["siamese"], siamese_threshold),
        ("fused", fused, fusion.threshold),
    ):
        block = summarize_scores(s, y, thresholds=[t])
        block.pop("roc", None)
        if hard.any():
            block["fpr_same_model_negatives"] = float((s[hard] > t).mean())
        out[name] = block
    return out

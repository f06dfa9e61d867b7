"""camforensics evaluate verification: same-device verification measured on labelled pairs of held-out devices.

For each set size k (1+1, 4+4, 10+10 by default) pairs of image sets are drawn from the devices of a labelled data
set: same-device pairs are two disjoint sets of k images of one device, different-device pairs k images of each of
two devices (every pair of two devices of one camera model is among them whenever the data allow it: the hard
case). Each pair is scored exactly as ``camforensics verify`` scores two folders
(:func:`camforensics.training.siamese_calibration.pair_scores`: the PCE between the fingerprints of the two sets'
whole images, the Siamese verifier's extended inference, and the fusion of both with the model's calibrated
coefficients), and the scores are measured with the metric blocks of ``camforensics evaluate``
(:func:`camforensics.pipelines.evaluation.verify_metrics`): ROC, AUC, EER and the rates at each score's threshold,
overall and per set size, plus the false-positive rate among same-model negatives.

Held-out devices: by default the devices of the data set that the verifier never saw in training or calibration
(read from its manifest entry when the data set is the one it was trained on; every device otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from camforensics import __version__
from camforensics.core.params import FingerprintParams, MatchParams
from camforensics.errors import CamforensicsError, ParameterError
from camforensics.io.datasets import scan_dataset
from camforensics.io.hashing import sha256_file
from camforensics.io.records import ImageRecord
from camforensics.pipelines.evaluation import VerifyPair, verify_metrics
from camforensics.reports.report import Report, error_record

SCORES = ("prnu_pce", "siamese", "fused")  # score names, as verify reports write them
_PAIR_STREAM = 0xE7A1  # seed-sequence tag of the evaluation's pair draws


@dataclass(frozen=True)
class PairDrawParams:
    """How the evaluation pairs are drawn (written into the report so a run can be repeated)."""

    set_sizes: tuple[int, ...] = (1, 4, 10)  # images per side; one block of pairs per size
    pairs_per_size: int = 40  # pairs per set size, half same-device (fewer when the devices cannot give them)
    content: str = "all"  # images used: "all", "nat" (natural scenes only) or "flat" (flat fields only)
    seed: int = 0  # seed of every draw

    def __post_init__(self) -> None:
        if not self.set_sizes or any(k < 1 for k in self.set_sizes):
            raise ParameterError(f"set sizes must be >= 1, got {list(self.set_sizes)}")
        if self.pairs_per_size < 2:
            raise ParameterError(f"pairs per set size must be >= 2, not {self.pairs_per_size}")
        if self.content not in ("all", "nat", "flat"):
            raise ParameterError(f"unknown content {self.content!r}; choose all, nat or flat")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DrawnPair:
    """One labelled pair of image sets."""

    a: tuple[ImageRecord, ...]
    b: tuple[ImageRecord, ...]

    @property
    def same_device(self) -> bool:
        return self.a[0].device == self.b[0].device

    @property
    def same_model(self) -> bool:
        return self.a[0].model_id == self.b[0].model_id

    @property
    def set_size(self) -> str:
        return f"{len(self.a)}+{len(self.b)}"


def _by_device(records: Sequence[ImageRecord]) -> dict[str, list[ImageRecord]]:
    out: dict[str, list[ImageRecord]] = {}
    for r in sorted(records):
        out.setdefault(r.device, []).append(r)
    return out


def draw_pairs(
    records: Sequence[ImageRecord], *, set_size: int, n_pairs: int, rng: np.random.Generator
) -> tuple[list[DrawnPair], list[str]]:
    """Labelled pairs of ``set_size`` images per side from ``records``, and notes on what could not be drawn.

    Half the pairs (rounded down) are same-device pairs, spread round robin over the devices with at least
    ``2 * set_size`` images (two disjoint random subsets); the rest pair two devices with at least ``set_size``
    images each, every pair of devices of one camera model first, then the other device pairs in random order,
    round robin. Images are drawn at random within a device; sides are swapped at random.
    """
    devices = _by_device(records)
    notes: list[str] = []
    pos_devices = sorted(d for d, recs in devices.items() if len(recs) >= 2 * set_size)
    neg_devices = sorted(d for d, recs in devices.items() if len(recs) >= set_size)
    device_pairs = list(combinations(neg_devices, 2))
    model = {d: devices[d][0].model_id for d in devices}
    hard = [p for p in device_pairs if model[p[0]] == model[p[1]]]
    rest = [p for p in device_pairs if model[p[0]] != model[p[1]]]
    rest = [rest[i] for i in rng.permutation(len(rest))]
    n_pos = n_pairs // 2 if pos_devices else 0
    n_neg = n_pairs - n_pos if device_pairs else 0
    if not pos_devices:
        notes.append(f"{set_size}+{set_size}: no device has {2 * set_size} images, so no same-device pair")
    if not device_pairs:
        notes.append(f"{set_size}+{set_size}: fewer than two devices have {set_size} images: no different-device pair")
    short = sorted(set(devices) - set(pos_devices))
    if pos_devices and short:
        notes.append(f"{set_size}+{set_size}: same-device pairs leave out {', '.join(short)} (< {2 * set_size} images)")
    pairs: list[DrawnPair] = []
    order = [pos_devices[i] for i in rng.permutation(len(pos_devices))]
    for i in range(n_pos):
        recs = devices[order[i % len(order)]]
        pick = rng.permutation(len(recs))[: 2 * set_size]
        pairs.append(DrawnPair(tuple(recs[j] for j in pick[:set_size]), tuple(recs[j] for j in pick[set_size:])))
    cycle = hard + rest
    for i in range(n_neg):
        d1, d2 = cycle[i % len(cycle)]
        if rng.random() < 0.5:
            d1, d2 = d2, d1
        s1 = rng.permutation(len(devices[d1]))[:set_size]
        s2 = rng.permutation(len(devices[d2]))[:set_size]
        pairs.append(DrawnPair(tuple(devices[d1][j] for j in s1), tuple(devices[d2][j] for j in s2)))
    return pairs, notes


def held_out_devices(
    records: Sequence[ImageRecord], root: Path, training_data: dict[str, Any], devices: Sequence[str] | None
) -> tuple[list[str], str]:
    """The devices to evaluate on and why: ``devices`` when given (each must exist), else those of the data set
    the verifier never saw in training or validation (from its manifest's data summary) when the data set has the
    name of the one it was trained on, else all of them."""
    present = sorted({r.device for r in records})
    if devices:
        unknown = sorted(set(devices) - set(present))
        if unknown:
            raise ParameterError(f"no device {unknown} in the data set; it has: {', '.join(present)}")
        return sorted(set(devices)), "chosen with --devices"
    seen: set[str] = set()
    if training_data.get("dataset") == root.name:
        for part in ("train", "validation"):
            seen |= set((training_data.get(part) or {}).get("devices", []))
        kept = [d for d in present if d not in seen]
        if not kept:
            raise ParameterError(
                f"the verifier saw every device of {root.name!r} in training or calibration; name held-out devices "
                "with --devices or evaluate on another data set"
            )
        return kept, f"the devices of {root.name!r} outside the verifier's training and validation splits"
    return present, f"every device: the verifier was not trained on a data set named {root.name!r}"


def evaluate_verifier(
    data: str | os.PathLike[str],
    *,
    model: Any,
    layout: str = "auto",
    devices: Sequence[str] | None = None,
    draw: PairDrawParams | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    plots: bool = True,
    plot_size: int = 800,
    on_pair: Callable[[int, int], None] | None = None,
) -> Report:
    """Score labelled pairs of held-out devices like ``verify`` and measure PRNU, Siamese and fused scores.

    Parameters
    ----------
    data : path-like
        A labelled data set folder (any layout of :func:`camforensics.io.datasets.scan_dataset`).
    model : LoadedModel, keyword-only
        The registered same-device verifier (:meth:`camforensics.inference.registry.ModelRegistry.load`).
    layout : str, keyword-only
        Layout of ``data``; ``"auto"`` detects it.
    devices : sequence of str, optional, keyword-only
        Devices to draw pairs from; default: the held-out ones (:func:`held_out_devices`).
    draw : PairDrawParams, optional, keyword-only
        Set sizes, pairs per size, content and seed.
    output_dir : path-like, optional, keyword-only
        Where ``metrics.json`` and the ROC PNGs go; None writes nothing.
    plots : bool, keyword-only
        Draw ``roc_verify.png`` and one ``roc_verify_<k+k>.png`` per set size.
    plot_size : int, keyword-only
        Side of the square plots, pixels.
    on_pair : callable, optional, keyword-only
        Called with (pairs done, pairs in all) after each pair (progress).

    Returns
    -------
    Report
        One result per pair (both sets' files with sha256, truth devices, the three scores, thresholds and
        decisions; or the error that kept it from being scored); ``summary`` holds the metrics without ROC point
        lists (``metrics.json`` keeps them) and ``outputs``.

    Raises
    ------
    CamforensicsError
        Data set missing or empty, unknown devices, or devices that cannot give a single pair.
    """
    from camforensics.inference.verification import Fusion, SiameseGraph
    from camforensics.pipelines.evaluate import strip_roc, write_metrics
    from camforensics.training.siamese_calibration import CROP_CACHE_BYTES, TERMS_CACHE_BYTES, CropCache, pair_scores

    draw = draw or PairDrawParams()
    scan = scan_dataset(data, layout=layout)
    if not scan.records:
        raise CamforensicsError(f"the data set {str(scan.root)!r} holds no image records (layout {scan.layout})")
    entry = model.entry
    decision = entry.decision
    chosen, why = held_out_devices(scan.records, Path(scan.root), entry.training_data, devices)
    records = [
        r
        for r in scan.records
        if r.device in chosen and (draw.content == "all" or r.content.lower().startswith(draw.content))
    ]
    graph = SiameseGraph.from_loaded(model)
    fusion = Fusion.from_dict(decision.fusion)
    match = MatchParams()
    fingerprint = FingerprintParams()
    thresholds = {
        "prnu_pce": match.threshold,
        "siamese": decision.siamese_threshold,
        "fused": fusion.threshold,
    }
    rng = np.random.default_rng(np.random.SeedSequence([draw.seed, _PAIR_STREAM]))
    drawn: list[DrawnPair] = []
    notes: list[str] = []
    for k in draw.set_sizes:
        pairs, why_not = draw_pairs(records, set_size=k, n_pairs=draw.pairs_per_size, rng=rng)
        drawn += pairs
        notes += why_not
    if not drawn:
        raise CamforensicsError(
            f"the devices {chosen} cannot give any pair of {list(draw.set_sizes)} images per side; "
            "choose smaller --set-sizes or more devices"
        )

    out = Path(output_dir) if output_dir is not None else None
    report = Report(
        command="evaluate verification",
        parameters={
            "data": str(scan.root),
            "layout": scan.layout,
            "devices": chosen,
            "devices_rule": why,
            "draw": draw.to_dict(),
            "fingerprint": fingerprint.to_dict(),
            "match": match.to_dict(),
            "positions": graph.n_positions,
            "output_dir": str(out) if out is not None else None,
            "plots": plots,
            "plot_size": plot_size,
        },
        context={"models": [{**entry.summary(), "providers": list(model.providers), "thresholds": thresholds}]},
    )
    hashes: dict[Path, str] = {}

    def files(recs: Sequence[ImageRecord]) -> list[dict[str, str]]:
        for r in recs:
            if r.path not in hashes:
                hashes[r.path] = sha256_file(r.path)
        return [{"path": str(r.path), "sha256": hashes[r.path]} for r in recs]

    crops = CropCache(CROP_CACHE_BYTES)
    terms = CropCache(TERMS_CACHE_BYTES)
    scored: list[VerifyPair] = []
    skipped: list[dict[str, Any]] = []
    same_model_flags: list[bool] = []
    for i, pair in enumerate(drawn):
        base = {
            "pair": i,
            "device_a": pair.a[0].device,
            "device_b": pair.b[0].device,
            "same_device": pair.same_device,
            "same_model": pair.same_model,
            "set_size": pair.set_size,
        }
        try:
            item = {"set_a": files(pair.a), "set_b": files(pair.b)}
            pce, logit, pixels = pair_scores(
                [r.path for r in pair.a], [r.path for r in pair.b], graph, fingerprint=fingerprint, match=match,
                crops=crops, terms=terms,
            )
        except (CamforensicsError, OSError) as exc:
            skipped.append({"report": f"pair {i}", "reason": str(exc)})
            report.add({"input": {"pair": i}, "status": "error", **base, "error": error_record(exc)})
        else:
            fused = float(fusion.probability(pce, logit, pixels=pixels, prnu_threshold=match.threshold))
            scores = {"prnu_pce": pce, "siamese": logit, "fused": fused}
            decisions = {name: scores[name] > thresholds[name] for name in SCORES}
            scored.append(
                VerifyPair(
                    report=f"pair {i}",
                    device_a=pair.a[0].device,
                    device_b=pair.b[0].device,
                    set_size=pair.set_size,
                    scores=scores,
                    thresholds=thresholds,
                    decision_same_device=decisions["fused"],
                )
            )
            same_model_flags.append(pair.same_model)
            report.add(
                {"input": item, "status": "ok", **base, "common_area_pixels": pixels, "scores": scores,
                 "thresholds": thresholds, "same_device_decision": decisions}
            )
        if on_pair is not None:
            on_pair(i + 1, len(drawn))

    metrics: dict[str, Any] = {
        "schema": "camforensics-verification-evaluation",
        "schema_version": "1.0",
        "tool_version": __version__,
        "data": {"root": str(scan.root), "layout": scan.layout, "devices": chosen, "devices_rule": why},
        "model": {"name": entry.name, "sha256": entry.sha256},
        "thresholds": thresholds,
        "notes": notes,
        "verify": verify_metrics(scored, skipped),
        "same_model_negatives": _same_model_block(scored, same_model_flags, thresholds),
        "plots": {},
    }
    metrics, outputs = write_metrics(metrics, out, plots=plots, plot_size=plot_size)
    summary = strip_roc({k: v for k, v in metrics.items() if k not in ("schema", "schema_version", "tool_version")})
    summary.pop("plots", None)
    report.finish(**summary, outputs=outputs)
    return report


def _same_model_block(
    pairs: Sequence[VerifyPair], same_model: Sequence[bool], thresholds: dict[str, float]
) -> dict[str, Any]:
    """Different-device pairs of one camera model (the hard negatives): how many per set size, their scores, and
    the share of each score above its threshold (a false "same device")."""
    out: dict[str, Any] = {}
    for size in sorted({p.set_size for p in pairs}, key=lambda s: tuple(int(x) for x in s.split("+"))):
        hard = [p for p, m in zip(pairs, same_model, strict=True) if m and not p.same_device and p.set_size == size]
        if not hard:
            continue
        block: dict[str, Any] = {"n_pairs": len(hard), "devices": sorted({f"{p.device_a} vs {p.device_b}" for p in hard})}
        for name in SCORES:
            s = np.array([p.scores[name] for p in hard], np.float64)
            block[name] = {
                "max": float(s.max()),
                "median": float(np.median(s)),
                "false_positive_rate": float((s > thresholds[name]).mean()),
            }
        out[size] = block
    return out

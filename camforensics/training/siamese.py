"""Training of the Siamese same-device verifier: device-disjoint split -> pairs of image sets -> twin CNN ->
calibrated fusion with PRNU.

Everything a run needs is in :class:`SiameseConfig`; a run writes to one output folder, like the attributor's:

- ``last.pt`` (every epoch; ``--resume`` continues from it) and ``best.pt`` (best validation AUC; at the end it
  also holds the calibration: the fusion with PRNU, the thresholds and the validation and test figures),
- ``train_log.jsonl`` (one line per epoch: loss, accuracy, validation AUC and EER, seconds),
- ``split.json`` (the split used, with file hashes), ``summary.json`` (final metrics, calibration).

Devices, not images, are split (``stratify=False``: verification tests devices never seen in training, whatever
their model). Extra data sets (``extra_train``, e.g. simulator corpora) add devices to training only. Validation
per epoch scores a fixed set of pairs of held-out devices over ``val_positions`` positions of the images' cached
centred squares. The final calibration scores ``calibration_pairs`` pairs of held-out devices exactly as
``camforensics verify`` does (:mod:`camforensics.training.siamese_calibration`: PCE between the two sets'
fingerprints of the whole images; Siamese extended inference over ``positions`` positions of their common area)
and fits the fusion on them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camforensics.core.metrics import equal_error_rate, roc_auc, roc_curve
from camforensics.core.modelinput import check_preprocessor
from camforensics.core.params import FingerprintParams, MatchParams
from camforensics.errors import ParameterError
from camforensics.inference.verification import (
    SiameseGraph,
    fit_fusion,
    operating_threshold,
    parse_operating_point,
)
from camforensics.io.datasets import scan_dataset
from camforensics.io.records import ImageRecord
from camforensics.io.splits import Split, split_by_device
from camforensics.reports.atomic import atomic_write_text
from camforensics.training.checkpoint import load_checkpoint, restore_training, save_checkpoint
from camforensics.training.loop import ProgressHook, TrainingRun
from camforensics.training.nets import COMPARISONS, SiameseVerifier
from camforensics.training.preprocess import constrain_all
from camforensics.training.siamese_calibration import pair_metrics, score_pairs
from camforensics.training.siamese_pairs import (
    InputCache,
    PairPolicy,
    PairSampler,
    PairSpec,
    cache_records,
    group_devices,
)

KIND = "siamese"
_VAL_TAG, _CALIBRATION_TAG, _TEST_TAG = 1, 2, 3  # seed-sequence tags of the fixed pair sets


@dataclass(frozen=True)
class SiameseConfig:
    """Hyper-parameters of a Siamese verifier run (written into checkpoints, logs and the model manifest)."""

    preprocessor: str = "WW"  # WW: wavelet Wiener residual (numpy, before the graph); HP, FD or CC: in the graph
    comparison: str = "aligned"  # "aligned": compare feature maps position by position; "pooled": pooled vectors
    width: int = 16  # channels of the first layer of the twin feature extractor
    crop: int = 64  # patch side in pixels (training and extended inference)
    cache_side: int = 512  # side of the centred square of each image kept in memory (float16 for WW)
    set_size_min: int = 1  # images per side, drawn uniformly in [min, max] per side and pair
    set_size_max: int = 8
    same_model_fraction: float = 0.3  # share of different-device pairs that pair two devices of one model
    pairs_per_epoch: int = 2048
    epochs: int = 10
    batch_size: int = 32  # pairs per optimiser step
    learning_rate: float = 1e-3  # Adam, cosine-annealed to 0 over the epochs
    weight_decay: float = 1e-4
    seed: int = 0  # split, pairs and torch
    val_pairs: int = 128  # fixed validation pairs of held-out devices, half of them same-device
    val_set_size: int = 4  # images per side of validation pairs (Skrabec's 4+4)
    val_positions: int = 16  # positions averaged per validation pair and epoch
    positions: int = 128  # positions of extended inference (calibration, test, verify)
    calibration_pairs: int = 128  # held-out pairs scored like verify to fit the fusion (set sizes as in training)
    operating_point: str = "eer"  # where the thresholds are set on calibration pairs: "eer" or "fpr:R"
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # devices: train/validation/test
    extra_train: tuple[str, ...] = ()  # further data set folders whose devices join training only (simulator)
    device: str = "auto"  # torch device: auto (CUDA when present), cpu, cuda
    threads: int = 0  # torch CPU threads; 0 = all cores

    def __post_init__(self) -> None:
        pre = check_preprocessor(self.preprocessor)
        if pre == "RGB":
            raise ParameterError(
                "preprocessor RGB is not offered for verification: averaging the raw pixels of a set blurs scenes "
                "together; choose WW (default), HP, FD or CC"
            )
        object.__setattr__(self, "preprocessor", pre)
        if self.comparison not in COMPARISONS:
            raise ParameterError(f"unknown comparison {self.comparison!r}; choose one of {COMPARISONS}")
        for name in ("width", "crop", "pairs_per_epoch", "epochs", "batch_size", "val_pairs", "val_set_size",
                     "val_positions", "positions", "calibration_pairs", "set_size_min"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"{name} must be >= 1, not {getattr(self, name)!r}")
        if self.crop < 8 or self.crop % 2:
            raise ParameterError(f"crop must be an even number >= 8, not {self.crop}")
        if self.cache_side < self.crop:
            raise ParameterError(f"cache_side ({self.cache_side}) must be at least the crop ({self.crop})")
        if self.val_pairs < 4 or self.calibration_pairs < 4:
            raise ParameterError("val_pairs and calibration_pairs must be >= 4 (half same-device, half not)")
        PairPolicy((self.set_size_min, self.set_size_max), self.same_model_fraction)
        parse_operating_point(self.operating_point)
        object.__setattr__(self, "split_fractions", tuple(float(f) for f in self.split_fractions))
        object.__setattr__(self, "extra_train", tuple(str(p) for p in self.extra_train))

    @property
    def policy(self) -> PairPolicy:
        return PairPolicy((self.set_size_min, self.set_size_max), self.same_model_fraction)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["split_fractions"] = list(self.split_fractions)
        d["extra_train"] = list(self.extra_train)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SiameseConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known})


@dataclass
class EpochRecord:
    """One line of ``train_log.jsonl`` (the loop adds ``seconds``)."""

    epoch: int
    train_loss: float
    train_accuracy: float  # pairs with the right sign of the logit
    val_auc: float | None
    val_eer: float | None
    learning_rate: float


def build_model(config: SiameseConfig) -> SiameseVerifier:
    return SiameseVerifier(config.preprocessor, width=config.width, comparison=config.comparison)


def torch_graph(model: SiameseVerifier, config: SiameseConfig, device: torch.device) -> SiameseGraph:
    """The torch model behind the same extended-inference code as an exported graph."""

    @torch.no_grad()
    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        model.eval()
        return model(torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)).cpu().numpy()

    return SiameseGraph(run, config.preprocessor, config.crop, config.positions)


def eer_of(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate of labelled scores (:func:`camforensics.core.metrics.equal_error_rate`)."""
    return equal_error_rate(*roc_curve(scores, labels)).eer


@torch.no_grad()
def validation_scores(
    model: SiameseVerifier, sampler: PairSampler, specs: Sequence[PairSpec], n_positions: int, device: torch.device
) -> np.ndarray:
    """Mean logit of each fixed validation pair over ``n_positions`` positions of the cached squares."""
    model.eval()
    out = []
    for spec in specs:
        a, b = sampler.positions_inputs(spec, n_positions)
        out.append(float(model(torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)).mean()))
    return np.asarray(out)


def _split(root: Path, layout: str, config: SiameseConfig, split_file: Path | None) -> Split:
    if split_file is not None:
        return Split.load(split_file)
    scan = scan_dataset(root, layout=layout)
    return split_by_device(
        scan.records, fractions=config.split_fractions, seed=config.seed, stratify=False, root=root, layout=scan.layout
    )


def _data_summary(split: Split, root: Path, extra: dict[str, Any], failures: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"dataset": root.name, "layout": split.layout}
    for name, recs in split.records.items():
        out[name] = {
            "n_images": len(recs),
            "n_devices": len({r.device for r in recs}),
            "devices": sorted({r.device for r in recs}),
            "models": sorted({r.model_id for r in recs}),
        }
    out["device_disjoint"] = not split.image_split_devices
    out["stratified_by_model"] = split.stratified
    out["warnings"] = list(split.warnings)
    out["extra_train"] = extra
    out["unreadable"] = dict(list(failures.items())[:50])
    return out


def train_siamese(
    data: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    config: SiameseConfig = SiameseConfig(),
    **options: Any,
) -> dict[str, Any]:
    """Train a Siamese same-device verifier on a data set folder; returns the run summary (also summary.json).

    Parameters
    ----------
    data : path-like
        Data set root in any layout of :mod:`camforensics.io.datasets` (device labels are what matters).
    output : path-like
        Run folder. An existing run is continued only with ``resume``.
    config : SiameseConfig
        Hyper-parameters (``extra_train`` names further data sets whose devices join training only).
    **options
        ``layout``, ``split_file``, ``resume``, ``command`` and ``on_progress`` of the run
        (:class:`~camforensics.training.loop.TrainingRun`); without ``split_file``, a device-disjoint split (not
        stratified by model). Progress events: ``"setup"``, ``"step"``, ``"epoch"``, ``"scoring"`` (pairs of
        whole images of a split, scored like verify), ``"pair"`` (one scored), ``"done"``.

    Raises
    ------
    ParameterError
        An existing run without ``resume``, other settings on resume, or a split whose training or validation
        devices cannot give both kinds of pairs.
    """
    root = Path(data)
    run = TrainingRun(output, kind=KIND, config=config, **options)
    hook = run.hook
    device = run.device
    split = run.split(lambda: _split(root, run.layout, config, run.split_file))

    # Model inputs of every training and validation image, computed once.
    train_cache = InputCache(config.preprocessor, side=config.cache_side, min_side=config.crop)
    groups = cache_records(train_cache, split.train, "data")
    extra: dict[str, Any] = {}
    for i, folder in enumerate(config.extra_train):
        recs = scan_dataset(folder, layout=run.layout).records
        added = cache_records(train_cache, recs, f"extra{i}")
        extra[folder] = {"n_images": int(sum(len(g.images) for g in added)), "n_devices": len(added)}
        groups += added
    val_cache = InputCache(config.preprocessor, side=config.cache_side, min_side=config.crop)
    val_groups = cache_records(val_cache, split.validation, "data")
    try:
        sampler = PairSampler(groups, config.crop, config.policy, config.seed, train_cache)
    except ParameterError as exc:
        raise ParameterError(f"training split: {exc}; give more devices or another split") from None
    try:
        val_sampler = PairSampler(val_groups, config.crop, config.policy, config.seed, val_cache)
    except ParameterError as exc:
        raise ParameterError(f"validation split: {exc}; give more devices or another split") from None
    val_specs = val_sampler.fixed_pairs(config.val_pairs, set_size=config.val_set_size, seed_tag=_VAL_TAG)
    val_labels = np.array([s.same_device for s in val_specs])
    failures = {**train_cache.failures, **val_cache.failures}
    data_summary = _data_summary(split, root, extra, failures)
    data_summary["pairs"] = {"train": sampler.describe(), "validation": val_sampler.describe()}

    run.seed()
    model = build_model(config).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    if run.state is not None:
        restore_training(run.state, model, opt, sched, config.epochs)

    steps = math.ceil(config.pairs_per_epoch / config.batch_size)
    hook(
        "setup",
        {
            "device": str(device),
            "epochs": config.epochs,
            "start_epoch": run.start_epoch,
            "steps_per_epoch": steps,
            "n_train_images": len(train_cache.records),
            "n_train_devices": len(groups),
            "n_val_images": len(val_cache.records),
            "n_val_devices": len(val_groups),
            "cache_mb": (train_cache.nbytes + val_cache.nbytes) / 1e6,
        },
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def train_epoch(epoch: int) -> dict[str, Any]:
        model.train()
        loss_sum, hits, seen = 0.0, 0, 0
        for step in range(steps):
            n = min(config.batch_size, config.pairs_per_epoch - step * config.batch_size)
            a, b, y = sampler.batch([sampler.pair(epoch, step * config.batch_size + i) for i in range(n)])
            ta, tb, ty = (torch.from_numpy(v).to(device) for v in (a, b, y))
            logits = model(ta, tb)
            loss = loss_fn(logits, ty)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            constrain_all(model)
            loss_sum += loss.item() * n
            hits += int(((logits > 0).float() == ty).sum())
            seen += n
            hook("step", {"epoch": epoch, "step": step, "loss": loss.item()})
        lr = opt.param_groups[0]["lr"]
        sched.step()
        scores = validation_scores(model, val_sampler, val_specs, config.val_positions, device)
        rec = EpochRecord(
            epoch=epoch,
            train_loss=loss_sum / max(seen, 1),
            train_accuracy=hits / max(seen, 1),
            val_auc=roc_auc(scores, val_labels),
            val_eer=eer_of(scores, val_labels),
            learning_rate=lr,
        )
        return asdict(rec)

    run.epochs(
        train_epoch=train_epoch,
        members=lambda: {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()},
        score=lambda rec: rec["val_auc"] or 0.0,
        best_member="best_val_auc",
        data=data_summary,
    )

    def final(best: Path) -> dict[str, Any]:
        return finalize(
            best, split, config, val_records=val_cache.records, device=device, history=run.history, hook=hook
        )

    return run.finish(final)


def _fixed_pairs(records: Sequence[ImageRecord], config: SiameseConfig, tag: int) -> list[PairSpec] | None:
    groups = group_devices(records, range(len(records)), "data")
    try:
        sampler = PairSampler(groups, config.crop, config.policy, config.seed)
    except ParameterError:
        return None
    return sampler.fixed_pairs(config.calibration_pairs, set_size=None, seed_tag=tag)


def finalize(
    checkpoint: Path,
    split: Split,
    config: SiameseConfig,
    *,
    val_records: Sequence[ImageRecord],
    device: torch.device,
    history: list[dict[str, Any]],
    hook: ProgressHook | None = None,
) -> dict[str, Any]:
    """Fit the fusion and the thresholds on validation pairs scored like verify; measure the test split; store
    everything in the checkpoint and ``summary.json``."""
    hook = hook or (lambda event, info: None)
    state = load_checkpoint(checkpoint)
    model = build_model(config).to(device)
    model.load_state_dict(state["model"])
    graph = torch_graph(model, config, device)

    def tick() -> None:
        hook("pair", {})

    specs = _fixed_pairs(list(val_records), config, _CALIBRATION_TAG)
    if specs is None:
        raise ParameterError("the validation devices cannot give both same- and different-device pairs")
    hook("scoring", {"split": "validation", "pairs": len(specs)})
    val = score_pairs(specs, list(val_records), graph, on_pair=tick)
    if not (val["labels"].any() and (~val["labels"]).any()):
        raise ParameterError(f"calibration pairs of only one class could be scored ({len(val['skipped'])} skipped)")
    # The PCE normalised for the pixel count (to the median calibration area): verify reads larger images on the
    # calibration scale; the PRNU floor keeps every pair PRNU alone accepts.
    fusion = fit_fusion(
        val["pce"], val["siamese"], val["labels"], operating_point=config.operating_point, pixels=val["pixels"]
    )
    siamese_op = operating_threshold(val["siamese"], val["labels"], config.operating_point)
    metrics: dict[str, Any] = {"validation": pair_metrics(val, siamese_threshold=siamese_op["threshold"], fusion=fusion)}
    metrics["validation"]["note"] = (
        "the fusion and the thresholds were fitted on these pairs: their figures here are optimistic; see test"
    )
    test_records = sorted(split.test)
    test_specs = _fixed_pairs(test_records, config, _TEST_TAG) if test_records else None
    if test_specs is not None:
        hook("scoring", {"split": "test", "pairs": len(test_specs)})
        test = score_pairs(test_specs, test_records, graph, on_pair=tick)
        metrics["test"] = pair_metrics(test, siamese_threshold=siamese_op["threshold"], fusion=fusion)
    else:
        metrics["test"] = {"note": "the test split cannot give both same- and different-device pairs"}
    calibration = {
        "fusion": fusion.to_dict(),
        "siamese_threshold": siamese_op,
        "prnu_threshold": MatchParams().threshold,
        "positions": config.positions,
        "crop": config.crop,
        "set_sizes": [config.set_size_min, config.set_size_max],
        # PCE grows with the area compared: the fusion holds for images of about these sizes
        "area_pixels": [int(min(val["pixels"])), int(np.median(val["pixels"])), int(max(val["pixels"]))],
        "prnu_parameters": {"fingerprint": FingerprintParams().to_dict(), "match": MatchParams().to_dict()},
        "calibrated_on": "validation split: pairs of held-out devices, whole images, scored as verify scores them",
    }
    state["calibration"] = calibration
    state["metrics"] = metrics
    state["history"] = list(history)
    save_checkpoint(checkpoint, state)
    summary = {
        "checkpoint": str(checkpoint),
        "best_epoch": int(state["epoch"]),
        "calibration": calibration,
        "metrics": metrics,
        "data": state["data"],
        "config": config.to_dict(),
    }
    atomic_write_text(checkpoint.parent / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary

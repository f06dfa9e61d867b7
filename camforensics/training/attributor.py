"""Training of the camera-model attributor: device-disjoint split -> balanced patches -> CNN -> calibrated decision.

Everything a run needs is in :class:`AttributorConfig`; a run writes to one output folder:

- ``last.pt`` (every epoch; ``--resume`` continues from it) and ``best.pt`` (best validation image accuracy),
- ``train_log.jsonl`` (one line per epoch: loss, patch and image accuracy on validation, seconds),
- ``split.json`` (the split used, with file hashes), ``summary.json`` (final metrics, calibration).

The image decision is the mean of patch log-probabilities over the best ``eval_patches`` grid patches
(:func:`camforensics.inference.patches.decision_patches`), exactly as ``identify`` computes it; the open-set score
is the largest mean log-probability, and its threshold keeps ``open_set_accept`` of the validation images of known
models (held-out devices where the split has them).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camforensics.core.modelinput import check_preprocessor, encode_input
from camforensics.errors import InputError, ParameterError
from camforensics.inference.patches import aggregate_log_probs, decision_patches
from camforensics.io.datasets import scan_dataset
from camforensics.io.images import load_image
from camforensics.io.patch_stream import PatchSampling, PatchStream
from camforensics.io.records import ImageRecord
from camforensics.io.splits import Split, split_by_device
from camforensics.reports.atomic import atomic_write_text
from camforensics.training.checkpoint import load_checkpoint, restore_training, save_checkpoint
from camforensics.training.loop import TrainingRun, labelled_data_summary
from camforensics.training.nets import ARCHITECTURES, Attributor
from camforensics.training.preprocess import constrain_all


@dataclass(frozen=True)
class AttributorConfig:
    """Hyper-parameters of an attributor run (written into checkpoints, logs and the model manifest)."""

    preprocessor: str = "HP"  # RGB, HP, FD, CC or WW (DESIGN.md section 3)
    architecture: str = "bondi"  # "bondi" (Bondi et al. 2017, narrowed) or "resnet" (small ResNet)
    width: int = 16  # channels of the first layer; the others scale with it
    patch_size: int = 64  # training patch side (Bondi et al. 2017: 64)
    patches_per_image: int = 32  # patches per image draw (Bondi et al. keep 32 per image)
    mix_images: int = 8  # image draws pooled and shuffled into batches (1: a batch holds one or two images' patches)
    images_per_epoch: int = 256  # class-balanced image draws per epoch
    epochs: int = 15
    batch_size: int = 64
    learning_rate: float = 1e-3  # Adam, cosine-annealed to 0 over the epochs
    weight_decay: float = 1e-4
    seed: int = 0  # torch, patch sampling and split seed
    eval_patches: int = 64  # grid patches per image for image-level decisions (validation and identify)
    open_set_accept: float = 0.95  # share of known-model validation images the "unknown" threshold accepts
    split_fractions: tuple[float, float, float] = (
        0.7,
        0.15,
        0.15,
    )  # devices per model: train/validation/test
    single_device: str = "split_images"  # models with one device: "split_images", "train" or "exclude"
    device: str = "auto"  # torch device: auto (CUDA when present), cpu, cuda
    threads: int = 0  # torch CPU threads; 0 = all cores

    def __post_init__(self) -> None:
        object.__setattr__(self, "preprocessor", check_preprocessor(self.preprocessor))
        if self.architecture not in ARCHITECTURES:
            raise ParameterError(f"unknown architecture {self.architecture!r}; choose one of {ARCHITECTURES}")
        for name in (
            "width",
            "patch_size",
            "patches_per_image",
            "mix_images",
            "images_per_epoch",
            "epochs",
            "batch_size",
        ):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"{name} must be >= 1, not {getattr(self, name)!r}")
        if self.patch_size < 32:
            raise ParameterError(f"patch_size must be >= 32 for these networks, not {self.patch_size}")
        if not 0.5 <= self.open_set_accept < 1.0:
            raise ParameterError(f"open_set_accept must lie in [0.5, 1), not {self.open_set_accept}")
        object.__setattr__(self, "split_fractions", tuple(float(f) for f in self.split_fractions))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["split_fractions"] = list(self.split_fractions)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttributorConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if k == "split_fractions" else v) for k, v in d.items() if k in known})


@dataclass
class EpochRecord:
    """One line of ``train_log.jsonl`` (the loop adds ``seconds``)."""

    epoch: int
    train_loss: float
    train_patch_accuracy: float
    val_patch_accuracy: float | None
    val_image_accuracy: float | None
    learning_rate: float


@dataclass
class HeldOut:
    """Decision patches of held-out images, encoded once and kept in memory for per-epoch validation."""

    records: list[ImageRecord]
    batches: list[np.ndarray]  # per image: (n, 3, s, s) float32
    labels: np.ndarray  # class index per image; -1 for a model outside the classes
    failures: dict[str, str] = field(default_factory=dict)


def _loader_for(preprocessor: str) -> Callable[[Path], np.ndarray]:
    def load(path: Path) -> np.ndarray:
        pixels = load_image(path).pixels
        return encode_input(pixels, preprocessor) if preprocessor == "WW" else pixels

    return load


def held_out(records: Sequence[ImageRecord], classes: Sequence[str], config: AttributorConfig) -> HeldOut:
    """Decision patches of each record (unreadable images are listed in ``failures``, not fatal)."""
    label = {c: i for i, c in enumerate(classes)}
    out = HeldOut([], [], np.zeros(0, np.int64))
    labels = []
    for r in records:
        try:
            pixels = load_image(r.path).pixels
            batch, _ = decision_patches(
                pixels,
                preprocessor=config.preprocessor,
                size=config.patch_size,
                n=config.eval_patches,
            )
        except (InputError, ValueError, OSError) as exc:
            out.failures[str(r.path)] = str(exc)
            continue
        out.records.append(r)
        out.batches.append(batch)
        labels.append(label.get(r.model_id, -1))
    out.labels = np.asarray(labels, dtype=np.int64)
    return out


@torch.no_grad()
def image_log_probs(model: torch.nn.Module, data: HeldOut, device: torch.device) -> list[np.ndarray]:
    """Patch log-probabilities (n, C) of every held-out image."""
    model.eval()
    return [model(torch.from_numpy(b).to(device)).cpu().numpy() for b in data.batches]


def decision_scores(per_image: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class and open-set score (largest mean log-probability) of each image."""
    preds, scores = [], []
    for lp in per_image:
        mean, _ = aggregate_log_probs(lp)
        preds.append(int(np.argmax(mean)))
        scores.append(float(mean.max()))
    return np.asarray(preds, np.int64), np.asarray(scores)


def held_out_metrics(per_image: list[np.ndarray], data: HeldOut, classes: Sequence[str]) -> dict[str, Any]:
    """Image and patch accuracy and the confusion matrix of held-out images of known models."""
    known = data.labels >= 0
    preds, _ = decision_scores(per_image)
    n_known = int(known.sum())
    patch_hits = sum(int((lp.argmax(axis=1) == y).sum()) for lp, y, k in zip(per_image, data.labels, known) if k)
    patch_total = sum(len(lp) for lp, k in zip(per_image, known) if k)
    confusion = np.zeros((len(classes), len(classes)), np.int64)
    for y, p in zip(data.labels[known], preds[known]):
        confusion[y, p] += 1
    per_class = {
        c: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None) for i, c in enumerate(classes)
    }
    return {
        "n_images": n_known,
        "image_accuracy": float((preds[known] == data.labels[known]).mean()) if n_known else None,
        "patch_accuracy": float(patch_hits / patch_total) if patch_total else None,
        "per_class_recall": per_class,
        "confusion": {
            "classes": list(classes),
            "matrix": confusion.tolist(),
            "rows": "truth",
            "cols": "predicted",
        },
        "devices": sorted({r.device for r, k in zip(data.records, known) if k}),
    }


def calibrate_open_set(scores: np.ndarray, accept: float) -> float:
    """Threshold on the open-set score that accepts ``accept`` of known-model images (lower quantile)."""
    if len(scores) == 0:
        raise ParameterError("no validation images of known models to calibrate the open-set threshold on")
    return float(np.quantile(np.asarray(scores, np.float64), 1.0 - accept, method="lower"))


def make_split(root: Path, layout: str, config: AttributorConfig, split_file: Path | None) -> Split:
    if split_file is not None:
        return Split.load(split_file)
    scan = scan_dataset(root, layout=layout)
    return split_by_device(
        scan.records,
        fractions=config.split_fractions,
        seed=config.seed,
        single_device=config.single_device,
        root=root,
        layout=scan.layout,
    )


def train_attributor(
    data: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    config: AttributorConfig = AttributorConfig(),
    **options: Any,
) -> dict[str, Any]:
    """Train a camera-model attributor on a data set folder; returns the run summary (also in summary.json).

    Parameters
    ----------
    data : path-like
        Data set root in any layout of :mod:`camforensics.io.datasets`.
    output : path-like
        Run folder (checkpoints, log, split, summary). An existing run is continued only with ``resume``.
    config : AttributorConfig
        Hyper-parameters.
    **options
        ``layout``, ``split_file``, ``resume``, ``command`` and ``on_progress`` of the run
        (:class:`~camforensics.training.loop.TrainingRun`); without ``split_file``, a device-disjoint split made
        from ``config``. Progress events: ``"setup"``, ``"step"``, ``"epoch"``, ``"done"``.

    Raises
    ------
    ParameterError
        If ``output`` holds a run and ``resume`` is not given, or the configuration differs from the run's.
    """
    root = Path(data)
    run = TrainingRun(output, kind="attributor", config=config, **options)
    hook = run.hook
    device = run.device
    split = run.split(lambda: make_split(root, run.layout, config, run.split_file))
    train_recs, val_recs = split.train, split.validation
    if not train_recs:
        raise ParameterError("the split has no training images")
    classes = tuple(sorted({r.model_id for r in train_recs}))
    if len(classes) < 2:
        raise ParameterError(f"attribution needs at least 2 camera models in the training split, found {list(classes)}")
    if not val_recs:
        raise ParameterError("the split has no validation images: the open-set threshold cannot be calibrated")

    run.seed()
    model = Attributor(config.preprocessor, config.architecture, len(classes), width=config.width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    if run.state is not None:
        restore_training(run.state, model, opt, sched, config.epochs)
        classes = tuple(run.state["classes"])

    sampling = PatchSampling(size=config.patch_size, per_image=config.patches_per_image)
    stream = PatchStream(
        train_recs,
        sampling=sampling,
        seed=config.seed,
        balance=True,
        images_per_epoch=config.images_per_epoch,
        classes=classes,
        loader=_loader_for(config.preprocessor),
    )
    val = held_out(val_recs, classes, config)
    steps = math.ceil(config.images_per_epoch * config.patches_per_image / config.batch_size)
    hook(
        "setup",
        {
            "classes": classes,
            "device": str(device),
            "epochs": config.epochs,
            "start_epoch": run.start_epoch,
            "steps_per_epoch": steps,
            "n_train": len(train_recs),
            "n_val": len(val.records),
        },
    )

    def train_epoch(epoch: int) -> dict[str, Any]:
        model.train()
        loss_sum, hits, seen = 0.0, 0, 0
        for step, batch in enumerate(stream.batches(config.batch_size, epoch=epoch, mix=config.mix_images)):
            x = torch.from_numpy(np.ascontiguousarray(batch.pixels.transpose(0, 3, 1, 2), dtype=np.float32)).to(device)
            y = torch.from_numpy(batch.labels).to(device)
            log_probs = model(x)
            loss = torch.nn.functional.nll_loss(log_probs, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            constrain_all(model)
            loss_sum += loss.item() * len(y)
            hits += int((log_probs.argmax(1) == y).sum())
            seen += len(y)
            hook("step", {"epoch": epoch, "step": step, "loss": loss.item()})
        lr = opt.param_groups[0]["lr"]
        sched.step()
        metrics = held_out_metrics(image_log_probs(model, val, device), val, classes)
        rec = EpochRecord(
            epoch=epoch,
            train_loss=loss_sum / max(seen, 1),
            train_patch_accuracy=hits / max(seen, 1),
            val_patch_accuracy=metrics["patch_accuracy"],
            val_image_accuracy=metrics["image_accuracy"],
            learning_rate=lr,
        )
        return asdict(rec)

    run.epochs(
        train_epoch=train_epoch,
        members=lambda: {
            "classes": list(classes),
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
        },
        score=lambda rec: rec["val_image_accuracy"] or 0.0,
        best_member="best_val_image_accuracy",
        data=labelled_data_summary(split, classes, root),
    )
    return run.finish(lambda best: finalize(best, split, config, device=device, history=run.history))


def finalize(
    checkpoint: Path, split: Split, config: AttributorConfig, *, device: torch.device, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """Calibrate the open-set threshold on validation and measure the test split; store both in the checkpoint."""
    state = load_checkpoint(checkpoint)
    classes = tuple(state["classes"])
    model = Attributor(config.preprocessor, config.architecture, len(classes), width=config.width).to(device)
    model.load_state_dict(state["model"])
    val = held_out(split.validation, classes, config)
    val_lp = image_log_probs(model, val, device)
    _, val_scores = decision_scores(val_lp)
    threshold = calibrate_open_set(val_scores[val.labels >= 0], config.open_set_accept)
    metrics: dict[str, Any] = {"validation": held_out_metrics(val_lp, val, classes)}
    test = held_out(split.test, classes, config)
    if test.records:
        test_lp = image_log_probs(model, test, device)
        m = held_out_metrics(test_lp, test, classes)
        _, test_scores = decision_scores(test_lp)
        known = test.labels >= 0
        m["open_set_false_reject_rate"] = float((test_scores[known] < threshold).mean()) if known.any() else None
        if (~known).any():
            m["unknown_model_rejection_rate"] = float((test_scores[~known] < threshold).mean())
        metrics["test"] = m
    open_set = {
        "score": "max_mean_log_prob",
        "threshold": threshold,
        "accept_rate_target": config.open_set_accept,
        "calibrated_on": "validation split (held-out devices where the split has them, else held-out images)",
        "n_calibration_images": int((val.labels >= 0).sum()),
    }
    state["open_set"] = open_set
    state["metrics"] = metrics
    state["history"] = list(history)  # the whole run's log, also the epochs after the best one
    save_checkpoint(checkpoint, state)
    summary = {
        "checkpoint": str(checkpoint),
        "classes": list(classes),
        "best_epoch": int(state["epoch"]),
        "open_set": open_set,
        "metrics": metrics,
        "data": state["data"],
        "config": config.to_dict(),
    }
    atomic_write_text(checkpoint.parent / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary

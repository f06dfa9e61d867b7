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
from collections.abc import Callable, Iterator, Sequence
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
from camforensics.io.patch_stream import PatchBatch, PatchSampling, PatchStream
from camforensics.io.records import ImageRecord
from camforensics.io.splits import SPLIT_BY, Split, split_by_device, split_by_image
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
    split_by: str = "device"  # "device" (device-disjoint, single_device for one-body models) or "image" (per body)
    eval_window: int = 1024  # decision patches come from the centred window of this side (0: the whole image)
    dih4: bool = True  # random flips/quarter turns of training patches
    unknown_models: tuple[str, ...] = ()  # models kept out of training and validation (open-set folds): test only
    device: str = "auto"  # torch device: auto (CUDA when present), cpu, cuda
    threads: int = 0  # torch CPU threads; 0 = all cores
    # Fast adversarial training (Wong, Rice & Kolter 2020): each batch is replaced by its one-step random-start FGSM
    # example within this L_inf budget on the 0..255 pixels (before the preprocessor); 0 = off. A tiny budget gives
    # "slightly robust" surrogates for targeted transfer (Springer, Mitchell & Kenyon 2021).
    adversarial_eps: float = 0.0

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
        if self.split_by not in SPLIT_BY:
            raise ParameterError(f"unknown split_by {self.split_by!r}; choose one of {SPLIT_BY}")
        if self.eval_window < 0 or 0 < self.eval_window < self.patch_size:
            raise ParameterError(f"eval_window must be 0 (whole image) or >= patch_size, not {self.eval_window}")
        object.__setattr__(self, "unknown_models", tuple(str(m) for m in self.unknown_models))
        if not 0.5 <= self.open_set_accept < 1.0:
            raise ParameterError(f"open_set_accept must lie in [0.5, 1), not {self.open_set_accept}")
        object.__setattr__(self, "split_fractions", tuple(float(f) for f in self.split_fractions))
        eps = float(self.adversarial_eps)
        if not math.isfinite(eps) or eps < 0:
            raise ParameterError(f"adversarial_eps must be >= 0 grey levels, not {self.adversarial_eps!r}")
        if eps > 0 and self.preprocessor == "WW":
            raise ParameterError("adversarial_eps needs a pixel input: the WW model reads an encoded residual")
        object.__setattr__(self, "adversarial_eps", eps)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["split_fractions"] = list(self.split_fractions)
        d["unknown_models"] = list(self.unknown_models)
        if not self.adversarial_eps:
            # off: the settings (checkpoints, manifests, resume checks) stay those of runs made before the option
            del d["adversarial_eps"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttributorConfig:
        known = {f.name for f in fields(cls)}
        tuples = ("split_fractions", "unknown_models")
        return cls(**{k: (tuple(v) if k in tuples else v) for k, v in d.items() if k in known})


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


def adversarial_batch(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, generator: torch.Generator
) -> torch.Tensor:
    """One-step random-start FGSM examples of a training batch (Wong, Rice & Kolter 2020, "fast is better than free").

    ``delta_0 ~ U(-eps, eps)``, ``delta = clip_[-eps, eps](delta_0 + 1.25 eps sign(grad_x NLL(model(x + delta_0), y)))``,
    returned as ``clip_[0, 255](x + delta)`` (detached). ``x``: (N, 3, H, W) pixels on 0..255 (the input of
    :class:`~camforensics.training.nets.Attributor`, before its preprocessor), so the budget is in grey levels of
    the image. The model's mode is left as it is; its parameter gradients are not touched. ``eps`` <= 0 returns
    ``x`` itself.
    """
    if eps <= 0:
        return x
    start = (torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1).to(x.device) * eps
    delta = start.requires_grad_(True)
    loss = torch.nn.functional.nll_loss(model(x + delta), y)
    (grad,) = torch.autograd.grad(loss, delta)
    with torch.no_grad():
        delta = (delta + 1.25 * eps * grad.sign()).clamp_(-eps, eps)
        return (x + delta).clamp_(0.0, 255.0)


def _loader_for(preprocessor: str) -> Callable[[Path], np.ndarray]:
    def load(path: Path) -> np.ndarray:
        pixels = load_image(path).pixels
        return encode_input(pixels, preprocessor) if preprocessor == "WW" else pixels

    return load


def training_stream(
    records: Sequence[ImageRecord], classes: Sequence[str], config: AttributorConfig, *, seed: int | None = None
) -> PatchStream:
    """The class-balanced stream of training patches of an attributor run (``config``: patch side, patches per
    image draw, flips and turns, image draws per epoch, input preprocessor); ``seed`` defaults to the run's."""
    sampling = PatchSampling(size=config.patch_size, per_image=config.patches_per_image, dih4=config.dih4)
    return PatchStream(
        records,
        sampling=sampling,
        seed=config.seed if seed is None else int(seed),
        balance=True,
        images_per_epoch=config.images_per_epoch,
        classes=tuple(classes),
        loader=_loader_for(config.preprocessor),
    )


def batch_tensors(batch: PatchBatch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of the stream as the network reads it: (N, 3, s, s) float pixels and the class labels."""
    x = torch.from_numpy(np.ascontiguousarray(batch.pixels.transpose(0, 3, 1, 2), dtype=np.float32)).to(device)
    return x, torch.from_numpy(batch.labels).to(device)


def training_step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on the patches' cross-entropy (the constrained CC layer projected back after it); the
    loss and the patch log-probabilities (before the step)."""
    log_probs = model(x)
    loss = torch.nn.functional.nll_loss(log_probs, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    constrain_all(model)
    return loss, log_probs


def steps_per_epoch(config: AttributorConfig) -> int:
    """Optimiser steps in one epoch of ``config``'s draws (image draws x patches per draw / batch size, rounded up)."""
    return math.ceil(config.images_per_epoch * config.patches_per_image / config.batch_size)


def adversarial_generator(config: AttributorConfig, seed: int) -> torch.Generator | None:
    """The random starts of fast adversarial training (``config.adversarial_eps`` > 0; None otherwise): their own
    stream, seeded from ``seed`` (the global one drives dropout)."""
    return torch.Generator().manual_seed(seed + 7919) if config.adversarial_eps > 0 else None


def training_epoch(
    model: torch.nn.Module, opt: torch.optim.Optimizer, stream: PatchStream, epoch: int, config: AttributorConfig,
    device: torch.device, adv_rng: torch.Generator | None,
) -> Iterator[tuple[int, float, int, int]]:
    """One epoch of optimiser steps on ``stream``'s batches (``config``: batch size, draws mixed; with ``adv_rng``
    each batch replaced by its fast adversarial example within ``config.adversarial_eps``): yields, per batch, the
    step, its loss, the patches it got right (before the step) and the patches it held."""
    for step, batch in enumerate(stream.batches(config.batch_size, epoch=epoch, mix=config.mix_images)):
        x, y = batch_tensors(batch, device)
        if adv_rng is not None:
            x = adversarial_batch(model, x, y, config.adversarial_eps, adv_rng)
        loss, log_probs = training_step(model, opt, x, y)
        yield step, loss.item(), int((log_probs.argmax(1) == y).sum()), len(y)


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
                window=config.eval_window,
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


def data_roots(data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """One or several data set folders as a list of paths (several folders train one model on all of them)."""
    roots = [Path(data)] if isinstance(data, (str, os.PathLike)) else [Path(d) for d in data]
    if not roots:
        raise ParameterError("no data set folder given")
    names = [r.absolute() for r in roots]
    if len(set(names)) != len(names):
        raise ParameterError("a data set folder is named twice")
    return roots


def test_only_paths(records: Sequence[ImageRecord], folders: Sequence[str | os.PathLike[str]], layout: str) -> list[Path]:
    """Records that are the same photos as images of ``folders`` (same device and file name, e.g. the crops of the
    full frames in ``real-full``): they must stay out of training when those folders are measured."""
    keys = set()
    for folder in folders:
        for r in scan_dataset(folder, layout=layout).records:
            keys.add((r.device, r.path.name))
    return [r.path for r in records if (r.device, r.path.name) in keys]


def make_split(
    root: Path | Sequence[Path],
    layout: str,
    config: AttributorConfig,
    split_file: Path | None,
    test_only: Sequence[str | os.PathLike[str]] = (),
) -> Split:
    """The run's split: from ``split_file``, else by device or by image (``config.split_by``) over all the data
    folders; ``config.unknown_models`` are moved to test (open-set folds), ``test_only`` folders' photos too."""
    import dataclasses

    if split_file is not None:
        return Split.load(split_file)
    roots = data_roots(root)
    records: list[ImageRecord] = []
    layouts = []
    devices: dict[str, Path] = {}
    for r in roots:
        scan = scan_dataset(r, layout=layout)
        records.extend(scan.records)
        layouts.append(scan.layout)
        for rec in scan.records:
            if devices.setdefault(rec.device, r) != r:
                raise ParameterError(
                    f"device {rec.device!r} is in two data folders ({devices[rec.device]} and {r}); rename one"
                )
    common = Path(os.path.commonpath([str(r.absolute()) for r in roots])) if len(roots) > 1 else roots[0]
    joined = "+".join(sorted(set(layouts)))
    forced = test_only_paths(records, test_only, layout) if test_only else []
    # Other training loops (anonymizer) share this function with configs that have no split_by / unknown_models.
    split_by = getattr(config, "split_by", "device")
    unknown_models = tuple(getattr(config, "unknown_models", ()))
    if split_by == "image":
        split = split_by_image(
            records, fractions=config.split_fractions, seed=config.seed, test_only=forced, root=common, layout=joined
        )
    else:
        if forced:
            raise ParameterError("--test-only needs --split-by image (a device-disjoint split has no shared photos)")
        split = split_by_device(
            records,
            fractions=config.split_fractions,
            seed=config.seed,
            single_device=config.single_device,
            root=common,
            layout=joined,
        )
    if not unknown_models:
        return split
    present = {r.model_id for r in records}
    missing = sorted(set(unknown_models) - present)
    if missing:
        raise ParameterError(f"unknown_models {missing} are not models of the data (it has: {', '.join(sorted(present))})")
    left = set(unknown_models)
    moved = [r for name in ("train", "validation") for r in split.records[name] if r.model_id in left]
    recs = {
        "train": tuple(r for r in split.train if r.model_id not in left),
        "validation": tuple(r for r in split.validation if r.model_id not in left),
        "test": tuple(sorted((*split.test, *moved))),
    }
    note = f"models left out of training and validation (open-set fold, test only): {sorted(left)}"
    return dataclasses.replace(split, records=recs, warnings=(*split.warnings, note))


def train_attributor(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    config: AttributorConfig = AttributorConfig(),
    test_only: Sequence[str | os.PathLike[str]] = (),
    **options: Any,
) -> dict[str, Any]:
    """Train a camera-model attributor on a data set folder; returns the run summary (also in summary.json).

    Parameters
    ----------
    data : path-like or sequence of path-like
        Data set root(s) in any layout of :mod:`camforensics.io.datasets`; several folders are split and trained
        on together (device names must differ between them).
    output : path-like
        Run folder (checkpoints, log, split, summary). An existing run is continued only with ``resume``.
    config : AttributorConfig
        Hyper-parameters.
    test_only : sequence of path-like
        Folders whose photos (same device and file name) are kept out of training and validation (``split_by``
        image only): e.g. ``real-full``, whose full frames are the photos of some crops in ``real-models``.
    **options
        ``layout``, ``split_file``, ``resume``, ``command`` and ``on_progress`` of the run
        (:class:`~camforensics.training.loop.TrainingRun`); without ``split_file``, a device-disjoint split made
        from ``config`` (``split_by``). Progress events: ``"setup"``, ``"step"``, ``"epoch"``, ``"done"``.

    Raises
    ------
    ParameterError
        If ``output`` holds a run and ``resume`` is not given, or the configuration differs from the run's.
    """
    roots = data_roots(data)
    run = TrainingRun(output, kind="attributor", config=config, **options)
    hook = run.hook
    device = run.device
    split = run.split(lambda: make_split(roots, run.layout, config, run.split_file, test_only))
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

    stream = training_stream(train_recs, classes, config)
    val = held_out(val_recs, classes, config)
    adv_rng = adversarial_generator(config, config.seed)
    steps = steps_per_epoch(config)
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
        for step, loss, n_hit, n in training_epoch(model, opt, stream, epoch, config, device, adv_rng):
            loss_sum += loss * n
            hits += n_hit
            seen += n
            hook("step", {"epoch": epoch, "step": step, "loss": loss})
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
        data=labelled_data_summary(split, classes, roots),
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

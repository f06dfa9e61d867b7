"""LGV surrogates: weight snapshots of a trained attributor around its loss basin, for the transfer refinement.

Gubri, Cordy, Papadakis, Le Traon and Sen (ECCV 2022) continue the training of a surrogate with a high constant
learning rate (SGD) for a few epochs and collect snapshots of the weights along the way (4 per epoch for 10 epochs);
the attack then differentiates one snapshot per iteration, so an ensemble of many points of the basin costs what
one network costs. :func:`train_lgv` does this for a ``camforensics train attributor`` checkpoint (or a shipped
surrogate, ``models/surrogates/NAME.pt``): the same training patches as the attributor trainer
(:func:`~camforensics.training.attributor.training_stream` of the start net's settings, another seed), the same
step (:func:`~camforensics.training.attributor.training_epoch`; a slightly robust start net, trained with
``adversarial_eps``, goes on with its fast adversarial training at that budget), ``snapshots_per_epoch`` snapshots per epoch at
equal step intervals, each one's image accuracy on the validation split (as the attributor trainer measures it).

The run folder holds ``lgv.pt`` (a checkpoint of kind ``attributor``: the start net's settings, classes and weights
as ``model``, the snapshots' weights as ``snapshots``, the collection's settings and figures as ``lgv``; read by
:func:`~camforensics.training.adversarial.load_surrogate`, shipped by
:func:`~camforensics.training.transfer.ship_surrogate`), ``train_log.jsonl`` (one line per snapshot) and
``summary.json``.

Reference
---------
M. Gubri, M. Cordy, M. Papadakis, Y. Le Traon, K. Sen, "LGV: Boosting adversarial example transferability from
large geometric vicinity", ECCV 2022.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from camforensics.errors import ParameterError
from camforensics.io.hashing import sha256_file
from camforensics.io.splits import Split
from camforensics.reports.atomic import atomic_write_text
from camforensics.training.attributor import (
    AttributorConfig,
    adversarial_generator,
    data_roots,
    held_out,
    held_out_metrics,
    image_log_probs,
    steps_per_epoch,
    training_epoch,
    training_stream,
)
from camforensics.training.checkpoint import git_commit, load_checkpoint, resolve_torch_device, save_checkpoint
from camforensics.training.loop import ProgressHook, labelled_data_summary, no_progress
from camforensics.training.nets import Attributor

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class LGVConfig:
    """Settings of an LGV collection (the patches and the network are the start net's)."""

    epochs: int = 5
    snapshots_per_epoch: int = 2
    learning_rate: float = 5e-4  # constant (no schedule); the rate measured to keep the Bondi nets' accuracy (docs/models.md)
    optimizer: str = "sgd"  # "sgd" (Gubri et al.: momentum 0.9, weight decay 1e-4) or "adam"
    momentum: float = 0.9  # SGD only
    weight_decay: float = 1e-4
    images_per_epoch: int = 256  # class-balanced image draws per epoch
    seed: int = 1  # patch sampling, dropout (torch)
    device: str = "auto"
    threads: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "snapshots_per_epoch", "images_per_epoch"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"{name} must be >= 1, not {getattr(self, name)!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ParameterError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ParameterError(f"learning_rate must be > 0, not {self.learning_rate!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _optimizer(model: torch.nn.Module, config: LGVConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)


def snapshot_steps(steps: int, per_epoch: int) -> list[int]:
    """The steps (0-based, within an epoch of ``steps``) after which a snapshot is taken: ``per_epoch`` at equal
    intervals, the last one at the end of the epoch."""
    if per_epoch > steps:
        raise ParameterError(f"{per_epoch} snapshots per epoch need at least as many steps per epoch, not {steps}")
    return [math.ceil(steps * (k + 1) / per_epoch) - 1 for k in range(per_epoch)]


def train_lgv(
    start: str | os.PathLike[str],
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    split_file: str | os.PathLike[str],
    config: LGVConfig = LGVConfig(),
    command: str | None = None,
    on_progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """Collect LGV snapshots from the attributor checkpoint ``start``; returns the summary (also in summary.json).

    Parameters
    ----------
    start : path-like
        An attributor checkpoint (``RUN/best.pt`` or a shipped ``models/surrogates/NAME.pt``) of an RGB, HP, FD or
        CC net.
    data : path-like or sequence of path-like
        The data set folder(s) the start net trained on.
    output : path-like
        Run folder (``lgv.pt``, ``train_log.jsonl``, ``summary.json``); it must not hold a collection already.
    split_file : path-like
        The split the start net trained on (e.g. the judges' split): its training part trains, its validation
        part measures each snapshot.
    config : LGVConfig
        Epochs, snapshots per epoch, optimiser and its constant learning rate, image draws, seed.
    command, on_progress
        The command line (provenance), the progress hook (``"setup"``, ``"step"``,
        ``"epoch"`` per snapshot, ``"done"``).

    Raises
    ------
    ParameterError
        ``start`` is no attributor (or reads WW), the split's training models are not the start net's classes,
        ``output`` already holds a collection.
    """
    hook = on_progress or no_progress
    start_path = Path(start)
    state = load_checkpoint(start_path)
    if state.get("kind") != "attributor":
        raise ParameterError(f"{start_path}: not a camera-model attributor checkpoint (kind {state.get('kind')!r})")
    if state.get("snapshots"):
        raise ParameterError(f"{start_path}: already an LGV collection; start from a single network")
    base = AttributorConfig.from_dict(state["config"])
    if base.preprocessor == "WW":
        raise ParameterError(f"{start_path}: a WW attributor cannot be attacked (its residual is outside the graph)")
    out = Path(output)
    if (out / "lgv.pt").exists():
        raise ParameterError(f"{out} already holds an LGV collection (lgv.pt); choose another --output")
    out.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_torch_device(config.device)
    roots = data_roots(data)
    split = Split.load(split_file)
    classes = tuple(state["classes"])
    trained = {r.model_id for r in split.train}
    if trained != set(classes):
        raise ParameterError(
            f"{start_path}: its classes are not the models of the split's training part "
            f"(missing {sorted(trained - set(classes))}, extra {sorted(set(classes) - trained)})"
        )
    split.save(out / "split.json", with_hashes=True)

    torch.manual_seed(config.seed)
    model = Attributor(base.preprocessor, base.architecture, len(classes), width=base.width).to(device)
    model.load_state_dict(state["model"])
    opt = _optimizer(model, config)
    draws = AttributorConfig.from_dict({**base.to_dict(), "images_per_epoch": config.images_per_epoch})
    stream = training_stream(split.train, classes, draws, seed=config.seed)
    steps = steps_per_epoch(draws)
    takes = snapshot_steps(steps, config.snapshots_per_epoch)
    val = held_out(split.validation, classes, base)
    # a slightly robust start net (fast adversarial training) goes on with its own objective: the same budget, the
    # random starts from their own seeded stream, as the attributor trainer draws them
    adv_rng = adversarial_generator(base, config.seed)

    def accuracy() -> float | None:
        return held_out_metrics(image_log_probs(model, val, device), val, classes)["image_accuracy"]

    start_accuracy = accuracy()
    hook(
        "setup",
        {
            "classes": classes,
            "device": str(device),
            "epochs": config.epochs,
            "start_epoch": 0,
            "steps_per_epoch": steps,
            "n_train": len(split.train),
            "n_val": len(val.records),
        },
    )
    snapshots: list[dict[str, torch.Tensor]] = []
    log: list[dict[str, Any]] = []
    for epoch in range(config.epochs):
        model.train()
        t0 = time.perf_counter()
        loss_sum, hits, seen = 0.0, 0, 0
        for step, loss, n_hit, n in training_epoch(model, opt, stream, epoch, draws, device, adv_rng):
            loss_sum += loss * n
            hits += n_hit
            seen += n
            hook("step", {"epoch": epoch, "step": step, "loss": loss})
            if step in takes:
                snapshots.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
                rec = {
                    "epoch": epoch,
                    "snapshot": len(snapshots) - 1,
                    "step": step,
                    "train_loss": loss_sum / max(seen, 1),
                    "train_patch_accuracy": hits / max(seen, 1),
                    "val_image_accuracy": accuracy(),
                    "val_patch_accuracy": None,
                    "seconds": time.perf_counter() - t0,
                }
                model.train()
                loss_sum, hits, seen = 0.0, 0, 0
                log.append(rec)
                with open(out / "train_log.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")
                hook("epoch", rec)
    accs = [r["val_image_accuracy"] for r in log if r["val_image_accuracy"] is not None]
    lgv = {
        "method": "LGV (Gubri et al. 2022): snapshots of a constant-learning-rate continuation of the start net",
        "start": str(start_path),
        "start_sha256": sha256_file(start_path),
        "start_val_image_accuracy": start_accuracy,
        "config": config.to_dict(),
        "n_snapshots": len(snapshots),
        "snapshot_val_image_accuracy": [r["val_image_accuracy"] for r in log],
        "val_image_accuracy_range": [min(accs), max(accs)] if accs else None,
    }
    ckpt = {
        "kind": "attributor",
        "config": state["config"],
        "classes": list(classes),
        "model": state["model"],
        "epoch": state.get("epoch"),
        "metrics": state.get("metrics"),
        "best_val_image_accuracy": state.get("best_val_image_accuracy"),
        "snapshots": snapshots,
        "lgv": lgv,
        "data": labelled_data_summary(split, classes, roots),
        "provenance": {"command": command, **git_commit(), "torch": str(torch.__version__)},
    }
    save_checkpoint(out / "lgv.pt", ckpt)
    summary = {"checkpoint": str(out / "lgv.pt"), **lgv, "log": log}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    hook("done", summary)
    return summary

"""The one training loop of camforensics: the run folder, resume with the settings enforced, the split kept with
the run, the epoch log, the best and last checkpoints, the seeds and the summary.

Each trainer (:mod:`~camforensics.training.attributor`, :mod:`~camforensics.training.siamese`,
:mod:`~camforensics.training.anonymizer`) supplies what is its own: its networks and optimisers, one epoch of
training with its validation (a record of figures), the score that picks ``best.pt``, and the final evaluation.
A run folder holds:

- ``last.pt`` (every epoch; ``resume`` continues from it) and ``best.pt`` (the epoch with the best score),
- ``train_log.jsonl`` (one line per epoch, the trainer's record plus ``seconds``),
- ``split.json`` (the split used, with file hashes), ``summary.json`` (the final evaluation).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from camforensics.io.splits import Split
from camforensics.reports.atomic import atomic_write_text
from camforensics.training.checkpoint import git_commit, open_run, resolve_torch_device, save_checkpoint

ProgressHook = Callable[[str, dict[str, Any]], None]


class RunConfig(Protocol):
    """What the loop reads of a trainer's configuration."""

    seed: int
    epochs: int
    device: str
    threads: int

    def to_dict(self) -> dict[str, Any]: ...


def no_progress(event: str, info: dict[str, Any]) -> None:
    """The progress hook of a run nobody watches."""


class TrainingRun:
    """One run folder: opened (or resumed, its settings checked) on creation, trained by :meth:`epochs`, closed by
    :meth:`finish`.

    Parameters
    ----------
    output : path-like
        The run folder. An existing run is continued only with ``resume``.
    kind : str
        The checkpoints' ``kind`` (attributor, siamese, anonymizer): a run of another kind is not resumed.
    config : RunConfig
        The trainer's hyper-parameters; a resumed run must have the same ones except ``epochs``.
    resume : bool, keyword-only
        Continue the run from its ``last.pt`` (same settings; ``epochs`` may grow).
    command : str, optional, keyword-only
        The command line, recorded as provenance.
    layout : str, keyword-only
        Layout of the data set(s), ``auto`` to detect (:mod:`camforensics.io.datasets`).
    split_file : path-like, optional, keyword-only
        A split saved by ``camforensics datasets split``; default: the trainer's own seeded split.
    on_progress : callable, optional, keyword-only
        ``hook(event, info)``: ``"setup"``, ``"step"``, ``"epoch"``, ``"done"`` and the trainer's own events.

    The trainers' ``train_*(data, output, *, config, **options)`` pass ``options`` on to here.

    Raises
    ------
    ParameterError
        ``output`` holds a run and ``resume`` is false; another kind of run or other settings; nothing to resume.
    """

    def __init__(
        self,
        output: str | os.PathLike[str],
        *,
        kind: str,
        config: RunConfig,
        resume: bool = False,
        command: str | None = None,
        layout: str = "auto",
        split_file: str | os.PathLike[str] | None = None,
        on_progress: ProgressHook | None = None,
    ) -> None:
        self.out = Path(output)
        self.kind = kind
        self.config = config
        self.settings = config.to_dict()
        self.command = command
        self.layout = layout
        self.split_file = Path(split_file) if split_file else None
        self.hook = on_progress or no_progress
        self.state = open_run(self.out, kind=kind, settings=self.settings, resume=resume)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = resolve_torch_device(config.device)
        self.history: list[dict[str, Any]] = list(self.state["history"]) if self.state is not None else []
        self.start_epoch = int(self.state["epoch"]) + 1 if self.state is not None else 0

    @property
    def last(self) -> Path:
        return self.out / "last.pt"

    @property
    def best(self) -> Path:
        return self.out / "best.pt"

    def split(self, make: Callable[[], Split]) -> Split:
        """The run's split: ``split.json`` of a resumed run, else ``make()`` saved there (with file hashes)."""
        path = self.out / "split.json"
        if self.state is not None:
            return Split.load(path)
        split = make()
        split.save(path, with_hashes=True)
        return split

    def seed(self) -> None:
        """Seed torch with the configuration's seed (before the networks are built)."""
        torch.manual_seed(self.config.seed)

    def epochs(
        self,
        *,
        train_epoch: Callable[[int], dict[str, Any]],
        members: Callable[[], dict[str, Any]],
        score: Callable[[dict[str, Any]], Any],
        best_member: str,
        data: dict[str, Any],
    ) -> None:
        """Train the epochs still to do: log each, keep ``last.pt`` and, when ``score`` improves, ``best.pt``.

        Parameters
        ----------
        train_epoch : callable
            One epoch of training and validation; returns its record (``seconds`` is added here).
        members : callable
            The trainer's own checkpoint members (weights, optimisers, classes, ...).
        score : callable
            The record's score (higher is better; None: the epoch cannot be the best one).
        best_member : str
            The checkpoint member that keeps the best score so far (a resumed run starts from it).
        data : dict
            The training data's summary, stored in every checkpoint.

        ``on_progress("epoch", record)`` is called after each epoch.
        """
        provenance = {"command": self.command, **git_commit(), "torch": str(torch.__version__)}
        best = self.state.get(best_member) if self.state is not None else None
        best = tuple(best) if isinstance(best, list) else best
        for epoch in range(self.start_epoch, self.config.epochs):
            t0 = time.perf_counter()
            rec = train_epoch(epoch)
            rec["seconds"] = time.perf_counter() - t0
            self.history.append(rec)
            with open(self.out / "train_log.jsonl", "a", encoding="utf-8") as log:
                log.write(json.dumps(rec) + "\n")
            value = score(rec)
            improved = value is not None and (best is None or value > best)
            if improved:
                best = value
            ckpt = {
                "kind": self.kind,
                "config": self.settings,
                **members(),
                "torch_rng": torch.get_rng_state(),
                "epoch": epoch,
                "history": self.history,
                best_member: list(best) if isinstance(best, tuple) else best,
                "provenance": provenance,
                "data": data,
            }
            if improved:
                save_checkpoint(self.best, ckpt)
            save_checkpoint(self.last, ckpt)
            self.hook("epoch", rec)

    def finish(self, finalize: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """The trainer's final evaluation of ``best.pt`` (``last.pt`` when no epoch was the best), with the number
        of epochs trained, written to ``summary.json``."""
        summary = finalize(self.best if self.best.exists() else self.last)
        summary["epochs_trained"] = len(self.history)
        atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        self.hook("done", summary)
        return summary


def labelled_data_summary(split: Split, classes: Sequence[str], root: Path | Sequence[Path]) -> dict[str, Any]:
    """The data a camera-model run trained on (one data folder or several): the split's images, devices and images
    per model, per part."""
    roots = [root] if isinstance(root, Path) else list(root)
    out: dict[str, Any] = {
        "dataset": "+".join(r.name for r in roots),
        "layout": split.layout,
        "classes": list(classes),
    }
    for name, recs in split.records.items():
        per_model: dict[str, int] = {}
        for r in recs:
            per_model[r.model_id] = per_model.get(r.model_id, 0) + 1
        out[name] = {
            "n_images": len(recs),
            "n_devices": len({r.device for r in recs}),
            "devices": sorted({r.device for r in recs}),
            "images_per_model": dict(sorted(per_model.items())),
        }
    out["device_disjoint"] = not split.image_split_devices
    out["image_split_devices"] = list(split.image_split_devices)
    out["warnings"] = list(split.warnings)
    return out

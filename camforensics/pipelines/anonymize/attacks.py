"""The adversarial baselines of anonymize: FGSM and PGD against a camera-model attributor checkpoint.

The attacks (:mod:`camforensics.training.adversarial`) need torch and the attributor's training checkpoint
(``RUN/best.pt`` of ``camforensics train attributor``), the white-box *surrogate*; they are the baselines that
Cama (Andrews et al., ECCV 2020 workshops) is compared with. torch is imported only when a choice is made or
loaded, never at ``--help``. Everything here is picklable so process-pool workers can load the surrogate
themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.errors import CamforensicsError, InputError, ParameterError

ATTACK_METHODS: tuple[str, ...] = ("fgsm", "pgd")
TORCH_MISSING = 'the fgsm and pgd methods need torch: pip install "camforensics[train]"'


def _missing(exc: ModuleNotFoundError) -> Exception:
    """The one-line error for a missing torch; any other missing module is a bug and is raised as it is."""
    return CamforensicsError(TORCH_MISSING) if (exc.name or "").split(".")[0] == "torch" else exc


@dataclass(frozen=True)
class AttackChoice:
    """Which attack runs against which surrogate checkpoint, how strongly (written into the report)."""

    method: str  # fgsm or pgd
    checkpoint: str  # the surrogate's training checkpoint (RUN/best.pt), absolute path as the workers see it
    sha256: str  # of the checkpoint file when the run started (checked again on every load)
    classes: tuple[str, ...]  # the surrogate's classes
    epsilon: float = 2.0  # L_inf radius, grey levels on the 0..255 scale
    step: float = 0.5  # PGD step, grey levels
    iterations: int = 10  # PGD steps
    target: str | None = None  # a class of the surrogate (targeted attack), as the checkpoint spells it
    seed: int = 0  # PGD random start
    threads: int = 0  # torch CPU threads (0 = torch's default; 1 in each process-pool worker)

    def load(self) -> Any:
        """The surrogate (:class:`camforensics.training.adversarial.Surrogate`), its file's sha256 checked."""
        try:
            import torch

            from camforensics.training.adversarial import load_surrogate
        except ModuleNotFoundError as exc:
            raise _missing(exc) from None
        if self.threads:
            torch.set_num_threads(self.threads)
        surrogate = load_surrogate(self.checkpoint)
        if surrogate.sha256 != self.sha256:
            raise InputError(
                f"{self.checkpoint}: the checkpoint changed during the run (sha256 {surrogate.sha256}, expected "
                f"{self.sha256}); refusing to attack with another model"
            )
        return surrogate

    def attack(self, pixels: np.ndarray, surrogate: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """The attacked 8-bit image and what the surrogate said of input and output (``method.fitted``)."""
        from camforensics.training.adversarial import attack_image

        result = attack_image(
            pixels,
            surrogate,
            attack=self.method,
            epsilon=self.epsilon,
            step=self.step,
            iterations=self.iterations,
            target=self.target,
            seed=self.seed,
        )
        return result.pixels, {"surrogate": result.to_dict()}

    def parameters(self) -> dict[str, Any]:
        """The parameters that shape the output (written with every result)."""
        return self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        pgd = self.method == "pgd"
        return {
            "attack": self.method,
            "attack_model": self.checkpoint,
            "attack_model_sha256": self.sha256,
            "attack_model_kind": "attributor training checkpoint",
            "classes": list(self.classes),
            "targeted": self.target is not None,
            "target": self.target,
            "epsilon": self.epsilon,
            "step": self.step if pgd else None,
            "iterations": self.iterations if pgd else None,
            "random_start": pgd,
            "seed": self.seed if pgd else None,
            "norm": "L_inf, grey levels on the 0..255 scale",
            "loss": "mean cross-entropy of the grid patches' log-probabilities",
            "patches": "every whole patch of the attributor's non-overlapping grid from (0, 0)",
            "rounding": "nearest integer (half to even), then 0..255: |out - in| <= round(epsilon)",
        }


def attack_choice(
    method: str,
    checkpoint: str | os.PathLike[str] | None,
    *,
    epsilon: float = 2.0,
    step: float = 0.5,
    iterations: int = 10,
    target: str | None = None,
    seed: int = 0,
    threads: int = 0,
) -> AttackChoice:
    """The attack of ``--method fgsm|pgd``: the surrogate checkpoint is read (kind checked), hashed, and the target
    checked against its classes here, before any image is read.

    Raises
    ------
    CamforensicsError
        torch is not installed (the message says how to install it).
    ParameterError
        No checkpoint, a checkpoint of another kind, epsilon/step/iterations out of range, an unknown target (the
        surrogate's classes are listed).
    InputError
        The checkpoint file is missing or unreadable.
    """
    if method not in ATTACK_METHODS:
        raise ParameterError(f"{method!r} is not an attack; choose one of {', '.join(ATTACK_METHODS)}")
    if checkpoint is None:
        raise ParameterError(
            f"--method {method} needs --attack-model RUN/best.pt (a 'camforensics train attributor' checkpoint)"
        )
    if not 0 < epsilon <= 255:
        raise ParameterError(f"--epsilon must lie in (0, 255] grey levels, got {epsilon!r}")
    if not step > 0:
        raise ParameterError(f"--pgd-step must be > 0 grey levels, got {step!r}")
    if iterations < 1:
        raise ParameterError(f"--pgd-iterations must be >= 1, got {iterations!r}")
    if threads < 0:
        raise ParameterError(f"--model-threads must be >= 0, got {threads}")
    try:
        from camforensics.training.adversarial import load_surrogate, resolve_class
    except ModuleNotFoundError as exc:
        raise _missing(exc) from None
    path = Path(checkpoint).resolve()
    surrogate = load_surrogate(path)
    canonical = None
    if target is not None:
        canonical = surrogate.classes[resolve_class(target, surrogate.classes)]
    return AttackChoice(
        method, str(path), surrogate.sha256, surrogate.classes, float(epsilon), float(step), int(iterations),
        canonical, int(seed), int(threads),
    )  # fmt: skip


def attack_context(choice: AttackChoice) -> dict[str, Any]:
    """The ``run.models[]`` member of the surrogate."""
    return {
        "name": Path(choice.checkpoint).name,
        "file": choice.checkpoint,
        "sha256": choice.sha256,
        "task": "camera-model-attribution",
        "classes": list(choice.classes),
        "role": "surrogate",
        "format": "torch training checkpoint",
    }

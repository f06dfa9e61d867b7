"""Adversarial baselines against a camera-model attributor: FGSM and PGD over the whole image.

The attacked model (the *surrogate*) is a camera-model attributor read from a ``camforensics train attributor``
checkpoint (``RUN/best.pt``): white-box gradients need the torch graph, not the exported ONNX file. The attacks
read the image as the attributor does: a non-overlapping grid of ``patch_size`` x ``patch_size`` patches from
(0, 0), aligned to the 2x2 CFA phase (:func:`camforensics.io.patches.grid_positions`). Every whole grid patch is
attacked (identify keeps the best-scored ones of the same grid, so attacking all of them covers whichever it
keeps); the right and bottom margins narrower than one patch are left unchanged.

Loss: the mean cross-entropy of the patch log-probabilities against one label ``y`` for every patch,
``L(x) = -1/N sum_i log p(y | patch_i(x))``. Untargeted, ``y`` is the surrogate's own image decision on the
input (top-1 of the mean patch log-probability, the "true" class as far as the attacker knows) and the attack
ascends L; targeted, ``y`` is the target class and the attack descends L. With ``s = +1`` (untargeted) or ``-1``
(targeted):

- FGSM (Goodfellow, Shlens, Szegedy 2015): ``x' = clip_[0,255](x + s eps sign(grad L(x)))``.
- PGD (Madry, Makelov, Schmidt, Tsipras, Vladu 2018): random start ``x_0 = clip(x + U(-eps, eps))`` (seeded),
  then ``x_{k+1} = clip_[0,255](clip_[x-eps, x+eps](x_k + s step sign(grad L(x_k))))``, ``iterations`` times;
  the last iterate is kept.

``eps`` and ``step`` are on the 0..255 scale of the pixels. The output is 8-bit: the last iterate is rounded to
the nearest integer (half to even), so ``|out - in| <= round(eps)``: at most ``eps`` for a whole-number ``eps``,
and never more than ``eps + 0.5``. An ``eps`` below 0.5 rounds back to the input. Inputs are never modified.

References
----------
I. J. Goodfellow, J. Shlens, C. Szegedy, "Explaining and harnessing adversarial examples", ICLR 2015.
A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu, "Towards deep learning models resistant to adversarial
attacks", ICLR 2018.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camforensics.errors import CamforensicsError, ParameterError
from camforensics.inference.anonymizer import class_key
from camforensics.io.hashing import sha256_file
from camforensics.training.attributor import AttributorConfig
from camforensics.training.checkpoint import load_checkpoint
from camforensics.training.nets import Attributor

ATTACKS: tuple[str, ...] = ("fgsm", "pgd")
BATCH_SIZE = 64  # patches per forward/backward pass (memory vs call overhead)


@dataclass(frozen=True)
class Surrogate:
    """A camera-model attributor loaded from a training checkpoint: the model the attacks differentiate."""

    net: Attributor  # in eval mode, weights frozen
    classes: tuple[str, ...]  # class names, in the order of the network's outputs
    patch_size: int  # side of the patches the attributor reads (its training patch size)
    preprocessor: str  # RGB, HP, FD or CC (inside the graph)
    architecture: str  # bondi or resnet
    path: str  # the checkpoint file
    sha256: str  # of the checkpoint file's bytes
    epoch: int | None = None  # the training epoch the checkpoint holds
    # LGV collection (Gubri et al. 2022, :mod:`camforensics.training.lgv`): the snapshots' networks (eval mode,
    # frozen), of which the transfer refinement differentiates one per step; () for a single network. ``net`` is
    # then the collection's start network: the verdicts are read on it.
    snapshots: tuple[Attributor, ...] = ()

    def summary(self) -> dict[str, Any]:
        """What a report needs to name the surrogate."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "kind": "attributor",
            "classes": list(self.classes),
            "patch_size": self.patch_size,
            "preprocessor": self.preprocessor,
            "architecture": self.architecture,
            "epoch": self.epoch,
            **({"lgv_snapshots": len(self.snapshots)} if self.snapshots else {}),
        }


def load_surrogate(checkpoint: str | os.PathLike[str]) -> Surrogate:
    """The attributor of a ``camforensics train attributor`` checkpoint (``RUN/best.pt``; ``last.pt`` works too),
    on the CPU, in eval mode, with its file's sha256; of an LGV collection (``camforensics train lgv``: ``lgv.pt``
    or its shipped file), the start network and the snapshots' networks (:attr:`Surrogate.snapshots`).

    Raises
    ------
    InputError
        The file is missing or is not a camforensics checkpoint.
    ParameterError
        A checkpoint of another kind (Siamese verifier, anonymizer), or an attributor whose input is the WW
        residual: that residual is computed outside the graph (numpy wavelet denoiser), so no gradient reaches the
        pixels.
    """
    path = Path(checkpoint)
    state = load_checkpoint(path)
    if state.get("kind") != "attributor":
        raise ParameterError(
            f"{path}: not a camera-model attributor checkpoint (kind {state.get('kind')!r}); give the best.pt of a "
            "'camforensics train attributor' run"
        )
    cfg = AttributorConfig.from_dict(state["config"])
    if cfg.preprocessor == "WW":
        raise ParameterError(
            f"{path}: this attributor reads the WW wavelet residual, computed outside the graph, so gradients cannot "
            "reach the pixels; attack an attributor trained with --preprocessor RGB, HP, FD or CC"
        )
    classes = tuple(state["classes"])

    def frozen(weights: dict[str, torch.Tensor]) -> Attributor:
        net = Attributor(cfg.preprocessor, cfg.architecture, len(classes), width=cfg.width)
        net.load_state_dict(weights)
        net.eval()
        net.requires_grad_(False)
        return net

    return Surrogate(
        frozen(state["model"]),
        classes,
        cfg.patch_size,
        cfg.preprocessor,
        cfg.architecture,
        str(path),
        sha256_file(path),
        int(state["epoch"]) if state.get("epoch") is not None else None,
        tuple(frozen(w) for w in state.get("snapshots") or ()),
    )


def resolve_class(name: str, classes: tuple[str, ...]) -> int:
    """Index of ``name`` among the surrogate's classes (exact, else ignoring case, spaces and underscores).

    Raises
    ------
    ParameterError
        An unknown name; the message lists the classes.
    """
    if name in classes:
        return classes.index(name)
    keys = [class_key(c) for c in classes]
    if keys.count(class_key(name)) == 1:
        return keys.index(class_key(name))
    raise ParameterError(f"unknown target {name!r} for the attack model; it knows: {', '.join(classes)}")


@dataclass(frozen=True)
class AttackResult:
    """The attacked image and what the surrogate says of input and output (both measured on 8-bit pixels)."""

    pixels: np.ndarray  # uint8, the input's shape
    attack: str  # fgsm or pgd
    label: str  # the class whose cross-entropy was ascended (untargeted) or descended (targeted)
    targeted: bool
    n_patches: int  # grid patches attacked
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "targeted": self.targeted,
            "label": self.label,
            "n_patches": self.n_patches,
            **self.stats,
        }


class _Grid:
    """The whole patches of the attributor's grid as one (N, C, s, s) tensor, and the way back into the image."""

    def __init__(self, pixels: np.ndarray, size: int) -> None:
        a = np.asarray(pixels)
        if a.dtype != np.uint8:
            raise ParameterError(f"the attacks take 8-bit pixels, not {a.dtype}; round the image to uint8 first")
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim != 3 or a.shape[2] not in (1, 3):
            raise ParameterError(f"expected an HxW grey or HxWx3 RGB image, got shape {np.shape(pixels)}")
        h, w, c = a.shape
        if min(h, w) < size:
            raise ParameterError(f"image of {w}x{h} pixels is smaller than one {size}x{size} patch of the attack model")
        self.shape, self.size = np.shape(pixels), size
        self.gh, self.gw, self.c = h // size, w // size, c
        self.image = a
        block = a[: self.gh * size, : self.gw * size].astype(np.float32)
        cells = block.reshape(self.gh, size, self.gw, size, c).transpose(0, 2, 4, 1, 3)
        self.patches = torch.from_numpy(np.ascontiguousarray(cells.reshape(-1, c, size, size)))

    def to_image(self, patches: torch.Tensor) -> np.ndarray:
        """uint8 image: the patches rounded into a copy of the input (margins outside the grid unchanged)."""
        s = self.size
        q = np.clip(np.rint(patches.detach().cpu().numpy()), 0, 255).astype(np.uint8)
        cells = q.reshape(self.gh, self.gw, self.c, s, s).transpose(0, 3, 1, 4, 2)
        out = self.image.copy()
        out[: self.gh * s, : self.gw * s] = cells.reshape(self.gh * s, self.gw * s, self.c)
        return out.reshape(self.shape)


def _forward(net: Attributor, x: torch.Tensor) -> torch.Tensor:
    return net(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)  # grey: the graph sees three equal channels


def _gradient(net: Attributor, x: torch.Tensor, label: int, batch: int) -> torch.Tensor:
    """Gradient of the mean patch cross-entropy against ``label`` with respect to the patches."""
    n = x.shape[0]
    grad = torch.empty_like(x)
    for i in range(0, n, batch):
        xb = x[i : i + batch].clone().requires_grad_(True)
        lp = _forward(net, xb)
        loss = -lp[:, label].sum() / n
        (grad[i : i + batch],) = torch.autograd.grad(loss, xb)
    return grad


@torch.no_grad()
def _log_probs(net: Attributor, x: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([_forward(net, x[i : i + batch]) for i in range(0, x.shape[0], batch)])


def _verdict(lp: torch.Tensor, label: int, classes: tuple[str, ...]) -> dict[str, Any]:
    """The surrogate's image decision (top-1 of the mean patch log-probability), the share of patches whose top-1
    is ``label``, and the mean cross-entropy against ``label``."""
    mean = lp.mean(dim=0)
    return {
        "image_top1": classes[int(mean.argmax())],
        "patch_share_label": float((lp.argmax(dim=1) == label).float().mean()),
        "loss": float(-lp[:, label].mean()),
    }


def _prepare(
    pixels: np.ndarray, surrogate: Surrogate, epsilon: float, target: str | None, batch: int
) -> tuple[_Grid, int, bool, dict[str, Any]]:
    if not 0 < float(epsilon) <= 255:
        raise ParameterError(f"epsilon must lie in (0, 255] grey levels, got {epsilon!r}")
    if batch < 1:
        raise ParameterError(f"batch_size must be >= 1, got {batch}")
    grid = _Grid(pixels, surrogate.patch_size)
    lp = _log_probs(surrogate.net, grid.patches, batch)
    source = int(lp.mean(dim=0).argmax())
    label = resolve_class(target, surrogate.classes) if target is not None else source
    before = _verdict(lp, label, surrogate.classes)
    return grid, label, target is not None, before


def _finish(
    name: str, grid: _Grid, x: torch.Tensor, surrogate: Surrogate, label: int, targeted: bool, before: dict, batch: int
) -> AttackResult:
    out = grid.to_image(x)
    measured = _Grid(out, surrogate.patch_size).patches  # the 8-bit output, as written
    after = _verdict(_log_probs(surrogate.net, measured, batch), label, surrogate.classes)
    changed = int(np.abs(out.astype(np.int16) - grid.image.reshape(grid.shape).astype(np.int16)).max())
    stats = {"before": before, "after": after, "max_abs_change": changed}
    return AttackResult(out, name, surrogate.classes[label], targeted, int(grid.patches.shape[0]), stats)


def fgsm(
    pixels: np.ndarray,
    surrogate: Surrogate,
    *,
    epsilon: float,
    target: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> AttackResult:
    """Fast gradient sign method over the attributor's whole patch grid (one step of ``epsilon``).

    Parameters
    ----------
    pixels : ndarray, uint8, (H, W) or (H, W, 3)
        The image in stored pixel order; not modified.
    surrogate : Surrogate
        The attacked attributor (:func:`load_surrogate`).
    epsilon : float
        L_inf radius on the 0..255 scale.
    target : str, optional
        A class of the surrogate: targeted attack toward it; None: untargeted, away from the surrogate's own
        decision on the input.
    batch_size : int
        Patches per forward/backward pass.

    Returns
    -------
    AttackResult
        ``pixels`` (uint8, the input's shape; ``|out - in| <= round(epsilon)``) and the surrogate's verdict on the
        input and on the 8-bit output.

    Raises
    ------
    ParameterError
        Not uint8, smaller than one patch, epsilon outside (0, 255], an unknown target (the classes are listed).

    References
    ----------
    Goodfellow, Shlens, Szegedy, "Explaining and harnessing adversarial examples", ICLR 2015.
    """
    grid, label, targeted, before = _prepare(pixels, surrogate, epsilon, target, batch_size)
    sign = -1.0 if targeted else 1.0
    x0 = grid.patches
    x = (x0 + sign * float(epsilon) * _gradient(surrogate.net, x0, label, batch_size).sign()).clamp_(0.0, 255.0)
    return _finish("fgsm", grid, x, surrogate, label, targeted, before, batch_size)


def pgd(
    pixels: np.ndarray,
    surrogate: Surrogate,
    *,
    epsilon: float,
    step: float,
    iterations: int,
    target: str | None = None,
    seed: int = 0,
    random_start: bool = True,
    batch_size: int = BATCH_SIZE,
) -> AttackResult:
    """Projected gradient descent (L_inf, sign steps) over the attributor's whole patch grid.

    Parameters
    ----------
    pixels, surrogate, epsilon
        As :func:`fgsm`: the uint8 image in stored pixel order (not modified), the attacked attributor, the L_inf
        radius on the 0..255 scale.
    step : float
        Step size per iteration, 0..255 scale (Madry et al. use about 2.5 epsilon / iterations).
    iterations : int
        Number of steps.
    target, batch_size
        As :func:`fgsm`.
    seed : int
        Seed of the uniform random start in the epsilon ball.
    random_start : bool
        Start from a random point of the ball (Madry et al.); False starts from the input.

    Returns
    -------
    AttackResult
        As :func:`fgsm`; the last iterate, rounded to 8 bits.

    Raises
    ------
    ParameterError
        As :func:`fgsm`, and step <= 0 or iterations < 1.

    References
    ----------
    Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards deep learning models resistant to adversarial attacks",
    ICLR 2018.
    """
    if not float(step) > 0:
        raise ParameterError(f"the PGD step must be > 0 grey levels, got {step!r}")
    if int(iterations) < 1:
        raise ParameterError(f"PGD needs at least 1 iteration, got {iterations!r}")
    grid, label, targeted, before = _prepare(pixels, surrogate, epsilon, target, batch_size)
    sign = -1.0 if targeted else 1.0
    eps = float(epsilon)
    x0 = grid.patches
    low, high = (x0 - eps).clamp(min=0.0), (x0 + eps).clamp(max=255.0)
    x = x0.clone()
    if random_start:
        gen = torch.Generator().manual_seed(int(seed))
        x = torch.minimum(torch.maximum(x0 + (torch.rand(x0.shape, generator=gen) * 2 - 1) * eps, low), high)
    for _ in range(int(iterations)):
        x = x + sign * float(step) * _gradient(surrogate.net, x, label, batch_size).sign()
        x = torch.minimum(torch.maximum(x, low), high)  # the epsilon ball and 0..255 in one projection
    return _finish("pgd", grid, x, surrogate, label, targeted, before, batch_size)


def attack_image(
    pixels: np.ndarray,
    surrogate: Surrogate,
    *,
    attack: str,
    epsilon: float,
    step: float = 0.5,
    iterations: int = 10,
    target: str | None = None,
    seed: int = 0,
) -> AttackResult:
    """:func:`fgsm` or :func:`pgd` by name (``step``, ``iterations`` and ``seed`` are PGD's)."""
    if attack == "fgsm":
        return fgsm(pixels, surrogate, epsilon=epsilon, target=target)
    if attack == "pgd":
        return pgd(pixels, surrogate, epsilon=epsilon, step=step, iterations=iterations, target=target, seed=seed)
    raise CamforensicsError(f"unknown attack {attack!r}; choose one of {', '.join(ATTACKS)}")

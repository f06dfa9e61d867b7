"""Training of the learned anonymizers: Cama's targeted camera-model anonymizer and a SiamTE-style trace eraser.

``train_anonymizer(data, out, config=AnonymizerConfig(kind=...))`` runs in the loop every trainer shares
(:mod:`camforensics.training.loop`), with the attributor's seeded split (device-disjoint where a model has enough devices;
with the default settings exactly the split the shipped attributors were trained on, so their test images are
unseen by both), 64x64 patches at even offsets (the 2x2 CFA phase is kept; no flips or rotations, which would
move it), and in the run folder ``split.json``, ``train_log.jsonl`` (one line per epoch), ``last.pt`` (every
epoch; ``resume`` continues it), ``best.pt`` and ``summary.json``.

A run has two phases.

1. ``evaluator_epochs``: the internal judge is trained on real patches. Targeted: Cama's evaluator, E0 by L2 to
   the per-channel wavelet Wiener residual (the WW residual, :func:`camforensics.core.residual.extract_channel_noise`,
   sigma0 = 3) and the streams E_H (on E0(x)) and E_L (on x - E0(x)) by cross-entropy. Erase: the trace embedding
   and its classifier head by cross-entropy.
2. The remaining epochs train the anonymizer. Targeted (Cama): per batch a target model y' != y is drawn for each
   patch; the discriminator steps on ``L_D`` (matching-aware least squares), the generator on
   ``L_adv + 10 L1(x', x) + 0.01 L_clf`` with the evaluator frozen. Erase (SiamTE-style, see :func:`_erase_step`):
   the embedding keeps learning to classify real and erased patches (cross-entropy), the eraser steps on
   ``L_ES + ce_weight * CE_uniform + fidelity_weight * truncated L1``.

Validation (each epoch, fixed grid patches of the validation images, fixed targets): PSNR of the output patches
against the input patches (0..255, rounded to 8 bits) and the success rate judged by the internal evaluator
(targeted: the evaluator's decision is the target; erase: it is not the true model). ``best.pt`` is the
anonymizer epoch with the highest success among those whose mean PSNR reaches ``min_psnr`` (else the highest
PSNR). The internal evaluator is not an independent judge: measure a finished model with separately trained
attributors.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camforensics.errors import InputError, ParameterError
from camforensics.io.images import load_image
from camforensics.io.patch_stream import PatchSampling, PatchStream
from camforensics.io.patches import QualityFilter, extract_patches, grid_positions, select_patches
from camforensics.io.records import ImageRecord
from camforensics.io.splits import Split
from camforensics.reports.atomic import atomic_write_text
from camforensics.training.anonymizer_losses import (
    cama_generator_loss,
    discriminator_loss,
    embedded_similarity_loss,
    truncated_l1,
    uniform_cross_entropy,
)
from camforensics.training.anonymizer_nets import (
    GENERATOR_MULTIPLE,
    RESIDUAL_LIMIT,
    CamaDiscriminator,
    CamaEvaluator,
    CamaGenerator,
    TraceEmbedding,
    TraceEraser,
    label_planes,
)
from camforensics.training.attributor import make_split
from camforensics.training.checkpoint import load_checkpoint, save_checkpoint
from camforensics.training.loop import TrainingRun, labelled_data_summary
from camforensics.training.preprocess import constrain_all

KIND = "anonymizer"
KINDS: tuple[str, ...] = ("targeted", "erase")
PIXEL_SCALE = 127.5  # [-1, 1] <-> 0..255: x = pixel / 127.5 - 1


@dataclass(frozen=True)
class AnonymizerConfig:
    """Hyper-parameters of an anonymizer run (written into checkpoints, logs and the model manifest)."""

    kind: str = "targeted"  # "targeted" (Cama) or "erase" (SiamTE-style untargeted trace eraser)
    width: int = 16  # channels of the first layer of every network (Cama: 64); the others scale with it
    blocks: int = 2  # residual blocks of the Cama generator and of E0 (Cama: 2)
    global_skip: bool = True  # generator output = demosaiced input + tanh correction (False: Cama's plain tanh)
    depth: int = 6  # convolution layers of the eraser (DnCNN-like)
    patch_size: int = 64  # training patch side (Cama: 64); a multiple of 4
    patches_per_image: int = 16  # patches per image draw
    mix_images: int = 8  # image draws pooled and shuffled into batches (1: each batch from one image, as before)
    images_per_epoch: int = 64  # class-balanced image draws per epoch
    epochs: int = 10  # all epochs, evaluator phase included
    evaluator_epochs: int = 3  # first epochs: train the internal evaluator / embedding only
    batch_size: int = 16
    learning_rate: float = 2e-4  # Adam, generator / eraser and discriminator (Cama: 2e-4)
    beta1: float = 0.5  # Adam beta1 (Cama: 0.5)
    evaluator_learning_rate: float = 1e-3  # Adam, evaluator / embedding
    fidelity_weight: float = 10.0  # Cama: 10 * L1; erase: weight of the truncated L1
    classifier_weight: float = 0.01  # Cama: 0.01 * L_clf
    similarity_weight: float = 1.0  # erase: weight of the embedded-similarity loss
    ce_weight: float = 0.1  # erase: weight of the cross-entropy to the uniform distribution
    erase_threshold: float = 2.0  # erase: truncated-L1 threshold, grey levels of 0..255
    erase_max_change: float = 3.0  # erase: bound of the eraser's change per pixel, grey levels (0: unbounded)
    val_patches: int = 8  # grid patches per validation image (best Bondi quality scores)
    min_psnr: float = 30.0  # dB; the best epoch must reach it (Cama's quality bar is about 35 dB)
    seed: int = 0  # torch, patch sampling, targets and split seed
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)  # devices per model: train/validation/test
    single_device: str = "split_images"  # models with one device: "split_images", "train" or "exclude"
    device: str = "auto"  # torch device: auto (CUDA when present), cpu, cuda
    threads: int = 0  # torch CPU threads; 0 = all cores

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"unknown anonymizer kind {self.kind!r}; choose one of {KINDS}")
        if self.erase_threshold < 0 or self.erase_max_change < 0:
            raise ParameterError("erase_threshold and erase_max_change must be >= 0 grey levels")
        for name in ("width", "blocks", "depth", "patches_per_image", "mix_images", "images_per_epoch", "epochs", "batch_size", "val_patches"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"{name} must be >= 1, not {getattr(self, name)!r}")
        if self.patch_size < 48 or self.patch_size % GENERATOR_MULTIPLE:
            raise ParameterError(f"patch_size must be a multiple of {GENERATOR_MULTIPLE} and >= 48, not {self.patch_size}")
        if not 0 <= self.evaluator_epochs < self.epochs:
            raise ParameterError(
                f"evaluator_epochs ({self.evaluator_epochs}) must be >= 0 and leave anonymizer epochs (epochs {self.epochs})"
            )
        object.__setattr__(self, "split_fractions", tuple(float(f) for f in self.split_fractions))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["split_fractions"] = list(self.split_fractions)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnonymizerConfig:
        known = {f.name for f in fields(cls)}
        # runs from before the bound existed trained an unbounded eraser
        d = {"erase_max_change": 0.0, **d}
        return cls(**{k: (tuple(v) if k == "split_fractions" else v) for k, v in d.items() if k in known})


def build_networks(config: AnonymizerConfig, n_classes: int) -> dict[str, torch.nn.Module]:
    """The run's networks by name: ``generator``, ``discriminator``, ``evaluator`` (targeted) or ``eraser``,
    ``embedding`` (erase). The first one is the model that is exported."""
    if config.kind == "targeted":
        return {
            "generator": CamaGenerator(n_classes, width=config.width, blocks=config.blocks, global_skip=config.global_skip),
            "discriminator": CamaDiscriminator(n_classes, width=config.width),
            "evaluator": CamaEvaluator(n_classes, width=config.width, blocks=config.blocks),
        }
    return {
        "eraser": TraceEraser(width=2 * config.width, depth=config.depth, max_change=config.erase_max_change / PIXEL_SCALE),
        "embedding": TraceEmbedding(n_classes, width=config.width),
    }


def exported_network(config: AnonymizerConfig) -> str:
    return "generator" if config.kind == "targeted" else "eraser"


def to_unit(pixels: np.ndarray) -> torch.Tensor:
    """(N, h, w, 3) 0..255 -> (N, 3, h, w) float32 on [-1, 1]."""
    x = np.ascontiguousarray(np.asarray(pixels, np.float32).transpose(0, 3, 1, 2))
    return torch.from_numpy(x) * (1.0 / PIXEL_SCALE) - 1.0


def to_pixels(x: torch.Tensor) -> np.ndarray:
    """(N, 3, h, w) on [-1, 1] -> (N, h, w, 3) float64 on 0..255, rounded to 8 bits as a saved image would be."""
    p = np.round((x.detach().cpu().numpy().transpose(0, 2, 3, 1) + 1.0) * PIXEL_SCALE)
    return np.clip(p, 0.0, 255.0)


def psnr(a: np.ndarray, b: np.ndarray, *, peak: float = 255.0) -> np.ndarray:
    """PSNR in dB of each pair of (N, ...) images on a 0..``peak`` scale (identical images: 100 dB, a cap)."""
    mse = ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    return np.where(mse > 0, 10.0 * np.log10(peak**2 / np.maximum(mse, 1e-12)), 100.0)


def validation_targets(labels: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """A fixed target model != the true one for every validation patch (uniform over the others)."""
    rng = np.random.default_rng([seed, 0x7A67])
    shift = rng.integers(1, n_classes, size=len(labels))
    return (labels + shift) % n_classes


def random_targets(labels: torch.Tensor, n_classes: int, generator: torch.Generator) -> torch.Tensor:
    """A target model != the true one for each label, uniform over the others."""
    shift = torch.randint(1, n_classes, labels.shape, generator=generator)
    return (labels + shift) % n_classes


class _PixelQuality(QualityFilter):
    """The quality filter on the first three channels only (the loader may append the residual channels)."""

    def scores(self, patches: np.ndarray) -> np.ndarray:
        return super().scores(np.asarray(patches)[..., :3])


def _with_residual(path: Path) -> np.ndarray:
    """HxWx6 float32: the pixels, then the per-channel wavelet Wiener residual (0..255 scale)."""
    from camforensics.core.params import ResidualParams
    from camforensics.core.residual import extract_channel_noise

    pixels = load_image(path).pixels
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    noise = extract_channel_noise(pixels, params=ResidualParams(sigma0=3.0))
    return np.concatenate([pixels.astype(np.float32), np.stack(noise, axis=2).astype(np.float32)], axis=2)


def _pixels_only(path: Path) -> np.ndarray:
    return load_image(path).pixels


@dataclass
class ValidationPatches:
    """Grid patches of the validation images (0..255, (N, s, s, 3)), their labels and fixed targets."""

    pixels: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    failures: dict[str, str]


def validation_patches(records: list[ImageRecord], classes: tuple[str, ...], config: AnonymizerConfig) -> ValidationPatches:
    """The ``val_patches`` best grid patches (from (0, 0): the CFA phase is the image's) of each known-model image."""
    label = {c: i for i, c in enumerate(classes)}
    batches, labels, failures = [], [], {}
    for r in records:
        if r.model_id not in label:
            continue
        try:
            pixels = load_image(r.path).pixels
        except (InputError, OSError, ValueError) as exc:
            failures[str(r.path)] = str(exc)
            continue
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=2)
        pos = grid_positions(pixels.shape, size=config.patch_size)
        patches, _, _ = select_patches(extract_patches(pixels, pos, size=config.patch_size), pos, keep=config.val_patches)
        batches.append(patches)
        labels += [label[r.model_id]] * len(patches)
    if not batches:
        raise ParameterError("no usable validation patches: the validation split has no readable images of known models")
    y = np.asarray(labels, np.int64)
    return ValidationPatches(np.concatenate(batches), y, validation_targets(y, len(classes), config.seed), failures)


def _batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


@torch.no_grad()
def evaluate(
    nets: dict[str, torch.nn.Module],
    val: ValidationPatches,
    config: AnonymizerConfig,
    device: torch.device,
    *,
    anonymizer: bool = True,
) -> dict[str, Any]:
    """Figures on fixed patches: the internal judge's accuracy on the real patches, and (``anonymizer``) the mean
    PSNR of the output patches and the success rate the internal judge gives them (``targeted_success``: decided as
    the target; ``untargeted_success``: not decided as the true model)."""
    for m in nets.values():
        m.eval()
    judge = nets["evaluator"] if config.kind == "targeted" else nets["embedding"]
    real_hits, hits, psnrs = 0, 0, []
    n = len(val.labels)
    for sl in _batches(n, 64):
        x = to_unit(val.pixels[sl]).to(device)
        y = torch.from_numpy(val.labels[sl]).to(device)
        real_hits += int((_decide(judge, x, config) == y).sum())
        if not anonymizer:
            continue
        if config.kind == "targeted":
            t = torch.from_numpy(val.targets[sl]).to(device)
            out = nets["generator"](x, label_planes(t, nets["generator"].n_classes, x))
            hits += int((_decide(judge, out, config) == t).sum())
        else:
            out = nets["eraser"](x)
            hits += int((_decide(judge, out, config) != y).sum())
        psnrs.append(psnr(to_pixels(out), val.pixels[sl]))
    result: dict[str, Any] = {"judge_accuracy_real": real_hits / n, "n_patches": n}
    name = "targeted_success" if config.kind == "targeted" else "untargeted_success"
    result[name] = hits / n if anonymizer else None
    result["psnr"] = float(np.concatenate(psnrs).mean()) if psnrs else None
    return result


def _decide(judge: torch.nn.Module, x: torch.Tensor, config: AnonymizerConfig) -> torch.Tensor:
    if config.kind == "targeted":
        lp_h, lp_l = judge(x)
        return (lp_h + lp_l).argmax(1)
    return judge(x).argmax(1)


Nets = dict[str, torch.nn.Module]
Optimisers = dict[str, torch.optim.Optimizer]


def _evaluator_step(nets: Nets, opt: torch.optim.Optimizer, x: torch.Tensor, residual: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Targeted phase 1: E0 by L2 to the residual (in units of RESIDUAL_LIMIT), E_H and E_L by cross-entropy."""
    ev = nets["evaluator"]
    r = ev.e0(x)
    l2 = (((r - residual) / RESIDUAL_LIMIT) ** 2).mean()
    lp_h, lp_l = ev.streams(x, r.detach())
    ce = torch.nn.functional.nll_loss(lp_h, y) + torch.nn.functional.nll_loss(lp_l, y)
    loss = l2 + ce
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item(), "e0_l2": l2.item(), "clf_ce": ce.item()}


def _embedding_step(
    nets: Nets, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, erased: torch.Tensor | None
) -> dict[str, float]:
    """Erase: the embedding's classifier on real patches (and on erased ones in phase 2)."""
    emb = nets["embedding"]
    loss = torch.nn.functional.nll_loss(emb(x), y)
    if erased is not None:
        loss = 0.5 * (loss + torch.nn.functional.nll_loss(emb(erased.detach()), y))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    constrain_all(emb)
    return {"embedding_ce": loss.item()}


def _cama_step(
    nets: Nets, opts: Optimisers, x: torch.Tensor, y: torch.Tensor, n_classes: int, config: AnonymizerConfig,
    gen: torch.Generator,
) -> dict[str, float]:
    """One discriminator step and one generator step (Cama)."""
    g, d, ev = nets["generator"], nets["discriminator"], nets["evaluator"]
    t = random_targets(y.cpu(), n_classes, gen).to(x.device)
    fake = g(x, label_planes(t, n_classes, x))
    loss_d = discriminator_loss(d(x, y), d(fake.detach(), t), d(x, t))
    opts["discriminator"].zero_grad(set_to_none=True)
    loss_d.backward()
    opts["discriminator"].step()
    constrain_all(d)
    lp_h, lp_l = ev(fake)
    parts = cama_generator_loss(
        d(fake, t), fake, x, lp_h, lp_l, t,
        fidelity_weight=config.fidelity_weight, classifier_weight=config.classifier_weight,
    )  # fmt: skip
    opts["generator"].zero_grad(set_to_none=True)
    parts["total"].backward()
    opts["generator"].step()
    return {"loss": parts["total"].item(), "loss_d": loss_d.item(), **{f"g_{k}": v.item() for k, v in parts.items() if k != "total"}}


def _erase_step(nets: Nets, opts: Optimisers, x: torch.Tensor, y: torch.Tensor, config: AnonymizerConfig) -> dict[str, float]:
    """SiamTE-style step: the embedding classifies real and erased patches; then the eraser minimises
    ``similarity_weight * L_ES(embed(x'), y) + ce_weight * CE(classifier(x'), uniform)
    + fidelity_weight * truncated_L1(x', x; erase_threshold)``."""
    er, emb = nets["eraser"], nets["embedding"]
    erased = er(x)
    info = _embedding_step(nets, opts["embedding"], x, y, erased)
    es = embedded_similarity_loss(emb.embed(erased), y)
    ce = uniform_cross_entropy(emb(erased))
    tf = truncated_l1(erased, x, config.erase_threshold / PIXEL_SCALE)
    loss = config.similarity_weight * es + config.ce_weight * ce + config.fidelity_weight * tf
    opts["eraser"].zero_grad(set_to_none=True)
    loss.backward()
    opts["eraser"].step()
    return {"loss": loss.item(), "e_similarity": es.item(), "e_uniform_ce": ce.item(), "e_truncated_l1": tf.item(), **info}


def _optimisers(nets: Nets, config: AnonymizerConfig) -> Optimisers:
    out = {}
    for name, m in nets.items():
        judge = name in ("evaluator", "embedding")
        lr = config.evaluator_learning_rate if judge else config.learning_rate
        out[name] = torch.optim.Adam(m.parameters(), lr=lr, betas=(config.beta1, 0.999))
    return out


def _best_key(rec: dict[str, Any], config: AnonymizerConfig) -> tuple:
    success = rec.get("val_targeted_success", rec.get("val_untargeted_success")) or 0.0
    p = rec.get("val_psnr") or 0.0
    return (p >= config.min_psnr, success if p >= config.min_psnr else 0.0, p)


def train_anonymizer(
    data: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    config: AnonymizerConfig = AnonymizerConfig(),
    **options: Any,
) -> dict[str, Any]:
    """Train a targeted anonymizer (Cama) or a trace eraser (SiamTE-style) on a data set folder.

    Parameters
    ----------
    data, output : path-like
        The data set root (any layout of :mod:`camforensics.io.datasets`) and the run folder, as the attributor's.
    config : AnonymizerConfig
        Hyper-parameters, ``kind`` included.
    **options
        ``layout``, ``split_file``, ``resume``, ``command`` and ``on_progress`` of the run
        (:class:`~camforensics.training.loop.TrainingRun`); without ``split_file``, the attributor's seeded
        device split. Progress events: ``"setup"``, ``"step"``, ``"epoch"``, ``"done"``.

    Returns
    -------
    dict
        The run summary (also written to ``summary.json``).

    Raises
    ------
    ParameterError
        Fewer than two camera models to train on, no validation images, or a run folder / resume conflict.

    References
    ----------
    Andrews, Zhang, Griffin (Cama), ECCV 2020 workshops; Chen, Xiong, Liu, Wu, "Camera trace erasing", CVPR 2020.
    """
    root = Path(data)
    run = TrainingRun(output, kind=KIND, config=config, **options)
    hook = run.hook
    device = run.device
    split = run.split(lambda: make_split(root, run.layout, config, run.split_file))  # type: ignore[arg-type]
    if not split.train:
        raise ParameterError("the split has no training images")
    classes = tuple(sorted({r.model_id for r in split.train}))
    if len(classes) < 2:
        raise ParameterError(f"anonymization needs at least 2 camera models in the training split, found {list(classes)}")
    if not split.validation:
        raise ParameterError("the split has no validation images: the anonymizer cannot be validated")

    run.seed()
    nets = {k: m.to(device) for k, m in build_networks(config, len(classes)).items()}
    opts = _optimisers(nets, config)
    if run.state is not None:
        classes = tuple(run.state["classes"])
        for k, m in nets.items():
            m.load_state_dict(run.state["nets"][k])
            opts[k].load_state_dict(run.state["optimizers"][k])
        torch.set_rng_state(run.state["torch_rng"])

    def stream(with_residual: bool) -> PatchStream:
        sampling = PatchSampling(size=config.patch_size, per_image=config.patches_per_image, dih4=False, quality=_PixelQuality())
        loader = _with_residual if with_residual else _pixels_only
        return PatchStream(split.train, sampling=sampling, seed=config.seed, balance=True,
                           images_per_epoch=config.images_per_epoch, classes=classes, loader=loader)  # fmt: skip

    val = validation_patches(list(split.validation), classes, config)
    steps = math.ceil(config.images_per_epoch * config.patches_per_image / config.batch_size)
    hook("setup", {"classes": classes, "device": str(device), "epochs": config.epochs, "start_epoch": run.start_epoch,
                   "steps_per_epoch": steps, "n_train": len(split.train), "n_val": len(split.validation)})  # fmt: skip
    gen = torch.Generator().manual_seed(config.seed)

    def train_epoch(epoch: int) -> dict[str, Any]:
        phase = "evaluator" if epoch < config.evaluator_epochs else "anonymizer"
        gen.manual_seed(config.seed * 1000 + epoch)
        for m in nets.values():
            m.train()
        if phase == "anonymizer":
            judge = nets["evaluator"] if config.kind == "targeted" else None
            if judge is not None:
                judge.eval().requires_grad_(False)  # frozen: the generator is judged by it, never trains it
        sums: dict[str, float] = {}
        seen = 0
        src = stream(config.kind == "targeted" and phase == "evaluator")
        for step, batch in enumerate(src.batches(config.batch_size, epoch=epoch, mix=config.mix_images)):
            x = to_unit(batch.pixels[..., :3]).to(device)
            y = torch.from_numpy(batch.labels).to(device)
            if phase == "evaluator" and config.kind == "targeted":
                residual = torch.from_numpy(np.ascontiguousarray(batch.pixels[..., 3:].transpose(0, 3, 1, 2)))
                info = _evaluator_step(nets, opts["evaluator"], x, residual.to(device) / PIXEL_SCALE, y)
            elif phase == "evaluator":
                info = _embedding_step(nets, opts["embedding"], x, y, None)
            elif config.kind == "targeted":
                info = _cama_step(nets, opts, x, y, len(classes), config, gen)
            else:
                info = _erase_step(nets, opts, x, y, config)
            for k, v in info.items():
                sums[k] = sums.get(k, 0.0) + v * len(y)
            seen += len(y)
            hook("step", {"epoch": epoch, "step": step, "loss": info.get("loss", next(iter(info.values())))})
        if not seen:
            reasons = "; ".join(f"{p.name}: {why}" for p, why in list(src.failures.items())[:3])
            raise ParameterError(f"epoch {epoch + 1} drew no usable training patches ({reasons or 'all rejected'})")
        if config.kind == "targeted":
            nets["evaluator"].requires_grad_(True)
        metrics = evaluate(nets, val, config, device, anonymizer=phase == "anonymizer")
        return {"epoch": epoch, "phase": phase, **{f"train_{k}": v / max(seen, 1) for k, v in sums.items()},
                **{f"val_{k}": v for k, v in metrics.items()}}  # fmt: skip

    run.epochs(
        train_epoch=train_epoch,
        members=lambda: {
            "classes": list(classes),
            "nets": {k: m.state_dict() for k, m in nets.items()},
            "optimizers": {k: o.state_dict() for k, o in opts.items()},
        },
        score=lambda rec: _best_key(rec, config) if rec["phase"] == "anonymizer" else None,
        best_member="best_key",
        data=labelled_data_summary(split, classes, root),
    )
    return run.finish(lambda best: finalize(best, split, config, device=device, history=run.history))


def load_networks(state: dict[str, Any], device: torch.device | str = "cpu") -> tuple[AnonymizerConfig, dict[str, torch.nn.Module]]:
    """The configuration and networks (eval mode) of an anonymizer checkpoint."""
    config = AnonymizerConfig.from_dict(state["config"])
    nets = build_networks(config, len(state["classes"]))
    for k, m in nets.items():
        m.load_state_dict(state["nets"][k])
        m.to(device).eval()
    return config, nets


def finalize(
    checkpoint: Path, split: Split, config: AnonymizerConfig, *, device: torch.device, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """Validation and test figures of the chosen checkpoint (internal judge), stored in it and in the summary."""
    state = load_checkpoint(checkpoint)
    classes = tuple(state["classes"])
    _, nets = load_networks(state, device)
    metrics: dict[str, Any] = {"judge": "internal evaluator (trained in this run: not an independent judge)"}
    val = validation_patches(list(split.validation), classes, config)
    metrics["validation"] = evaluate(nets, val, config, device)
    test_recs = [r for r in split.test if r.model_id in classes]
    if test_recs:
        metrics["test"] = evaluate(nets, validation_patches(test_recs, classes, config), config, device)
    state["metrics"] = metrics
    state["history"] = list(history)
    save_checkpoint(checkpoint, state)
    summary = {
        "checkpoint": str(checkpoint),
        "kind": config.kind,
        "classes": list(classes),
        "best_epoch": int(state["epoch"]),
        "metrics": metrics,
        "data": state["data"],
        "config": config.to_dict(),
    }
    atomic_write_text(checkpoint.parent / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary

"""A transfer-friendly targeted attack against an ensemble of surrogate attributors, for the bounded refinement of a
camera-trace transplant (``anonymize --target MODEL --refine surrogates``).

The surrogates are camera-model attributors of ``camforensics train attributor`` (torch checkpoints; several
preprocessors and architectures), trained independently of the judges that later decide (other seeds, and other
preprocessors or architectures). What the literature proposes for *targeted* transfer is available, and what the
measurements kept is the default (docs/algorithms.md, docs/models.md):

- loss: the judges' decision rule (``loss="judge"``, the refinement's default): the margin of the target's mean
  patch log-probability over the best other class's, over the patches read in one graph (the judges name the top-1
  of that mean); the cross-entropy of the patches toward the target (``"ce"``, this function's default), a per-patch
  margin (``"margin"``) or the simple logit loss (Zhao, Liu, Larson 2021; ``"logit"``: raise the target's raw
  score). On these small forensic CNNs the raw scores of all classes rise together and the logit loss did not even
  fool the white-box surrogate;
- momentum (MI-FGSM, Dong et al. 2018; ``momentum``, default 0): the L1-normalised gradient is accumulated and the
  step is its sign;
- the step's geometry (``norm``): ``linf`` takes sign steps (FGSM's, which spend the same change on every pixel),
  ``l2`` steps along the (accumulated) gradient scaled to ``step`` grey levels RMS, which puts the change where the
  surrogates are sensitive: the budget that binds here is the PSNR floor, an L2 bound, so L2 steps reach further
  within it (the L_inf ``epsilon`` still caps every pixel);
- input diversity (Xie et al. 2019), in forms that keep the traces the attributors read (resizing would destroy
  them): a random flip / quarter turn of the patches at every step (``dih4``, default on; the attributors are
  trained with them), a random subset of the patches (``patches_per_step``, default 64 in the refinement) and
  random grid shifts in multiples of ``shift`` pixels (default 0: these CNNs read the exact pixel phase, and
  shifted grids kept even the white-box surrogate from the target); Xie et al.'s own resize-and-pad (``resize``:
  the probability per step; default 0, off: on the judges' validation photos it lost a verdict, docs/models.md);
- translation invariance (Dong et al. 2019): the gradient smoothed by a ``ti``-wide Gaussian (default 0: off);
- an ensemble: every surrogate's gradient is normalised to unit mean magnitude and multiplied by its weight
  (``weights``, default 1 each) before they are summed, so no surrogate dominates by the scale of its scores;
- LGV (Gubri et al. 2022): a surrogate that is a collection of weight snapshots around its loss basin
  (:mod:`camforensics.training.lgv`) is differentiated through one snapshot per step, drawn with the attack's
  seeded generator: many points of the basin for the cost of one network;
- with ``cover``, the patches a step reads are drawn among the covered ones only (``sample_cover``; the others get
  no step, so their gradient would be wasted);
- the JPEG save: with ``jpeg`` (the encoder-decoder of the output: the target's quantization tables), every step reads
  the surrogates on the JPEG-decoded image and passes the gradient straight through the quantizer (BPDA, Athalye
  et al. 2018), so the perturbation that survives the save is what is optimised.

Budget: ``|x - x0| <= epsilon`` (L_inf, grey levels) around the transplant's pixels, and, with ``psnr_floor``, the
PSNR of the attacked window against ``reference`` (the photo before the transplant) is kept at or above the floor:
each step's change is scaled back onto the floor, and at the end the change is scaled (bisection) so that the
*saved* (JPEG-decoded) window meets it. Only the centred ``window`` x ``window`` pixels (aligned like the
attributors' decision window, :func:`camforensics.inference.patches.centre_window`) are changed, and with
``cover`` > 0 only the ``cover`` best-scored grid patches of that window (the rule by which attributors pick the
patches they decide on: quality-filtered, best Bondi scores); the rest of the image is untouched.

References
----------
Y. Dong, F. Liao, T. Pang, H. Su, J. Zhu, X. Hu, J. Li, "Boosting adversarial attacks with momentum", CVPR 2018.
C. Xie, Z. Zhang, Y. Zhou, S. Bai, J. Wang, Z. Ren, A. Yuille, "Improving transferability of adversarial examples
with input diversity", CVPR 2019.
Y. Dong, T. Pang, H. Su, J. Zhu, "Evading defenses to transferable adversarial examples by translation-invariant
attacks", CVPR 2019.
Z. Zhao, Z. Liu, M. Larson, "On success and simplicity: a second look at transferable targeted attacks",
NeurIPS 2021.
A. Athalye, N. Carlini, D. Wagner, "Obfuscated gradients give a false sense of security", ICML 2018.
M. Gubri, M. Cordy, M. Papadakis, Y. Le Traon, K. Sen, "LGV: Boosting adversarial example transferability from
large geometric vicinity", ECCV 2022.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from camforensics.errors import ParameterError
from camforensics.inference.anonymizer import class_key
from camforensics.inference.patches import centre_window, decision_patches
from camforensics.training.adversarial import Surrogate

BATCH = 64
LOSSES = ("logit", "ce", "margin", "judge")
NORMS = ("linf", "l2")
DOMAINS = ("pixels", "dct")
FUSES = ("gradients", "logits")
MARGIN = 2.0  # the margin loss stops pushing a patch once the target leads the next class by this (log-probability)
PEAK = 255.0


def _patches(x: torch.Tensor, size: int, dy: int, dx: int) -> torch.Tensor:
    """The whole ``size`` patches of (3, H, W) from offset (dy, dx), as (N, 3, size, size) (differentiable)."""
    _, h, w = x.shape
    gh, gw = (h - dy) // size, (w - dx) // size
    v = x[:, dy : dy + gh * size, dx : dx + gw * size]
    return v.reshape(3, gh, size, gw, size).permute(1, 3, 0, 2, 4).reshape(-1, 3, size, size)


def _target_index(s: Surrogate, target: str) -> int | None:
    keys = [class_key(c) for c in s.classes]
    return keys.index(class_key(target)) if class_key(target) in keys else None


def _ghost_hook(rate: float, gen: torch.Generator) -> Callable[..., torch.Tensor]:
    """A forward hook dropping a module's outputs with probability ``rate`` (the rest scaled by 1 / (1 - rate)):
    dropout erosion of a ghost network (Li et al. 2020), drawn from ``gen``."""

    def hook(module: torch.nn.Module, inputs: Any, out: torch.Tensor) -> torch.Tensor:
        keep = (torch.rand(out.shape, generator=gen) >= rate).to(out.dtype)
        return out * keep / (1.0 - rate)

    return hook


def _resize_pad(p: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Xie et al. 2019's input diversity on a batch of (N, 3, S, S) patches: resized (nearest neighbour) to a random
    side r in [S, S + S / 8) and padded at a random place to S + S / 8 (reflected borders, not black ones, which the
    high-pass readers would see as edges); differentiable (the gradient of the duplicated pixels is summed)."""
    side = p.shape[-1]
    big = side + max(1, side // 8)
    r = int(torch.randint(side, big, (1,), generator=gen))
    q = torch.nn.functional.interpolate(p, size=(r, r), mode="nearest")
    top, left = (int(v) for v in torch.randint(0, big - r + 1, (2,), generator=gen))
    return torch.nn.functional.pad(q, (left, big - r - left, top, big - r - top), mode="reflect")


def _scores(net: torch.nn.Module, p: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-patch class scores of one network: raw logits (``loss="logit"``) or log-probabilities (``"ce"``)."""
    if loss == "ce":
        return net(p)
    return net.net(net.pre(net.normalise(p)))


def _step_net(s: Surrogate, gen: torch.Generator) -> torch.nn.Module:
    """The network a step differentiates: the surrogate's own, or of an LGV collection one snapshot drawn from
    ``gen`` (uniformly, with replacement; a one-snapshot collection draws nothing and uses its snapshot)."""
    if not s.snapshots:
        return s.net
    if len(s.snapshots) == 1:
        return s.snapshots[0]
    return s.snapshots[int(torch.randint(len(s.snapshots), (1,), generator=gen))]


@torch.no_grad()
def _share(s: Surrogate, x: torch.Tensor, label: int) -> dict[str, Any]:
    p = _patches(x, s.patch_size, 0, 0)
    lp = torch.cat([s.net(p[i : i + BATCH]) for i in range(0, len(p), BATCH)])
    return {"image_top1": s.classes[int(lp.mean(0).argmax())], "patch_share_target": float((lp.argmax(1) == label).float().mean())}


def _weights(surrogates: list[Surrogate], used: list[tuple[Surrogate, int]], weights: Sequence[float] | None) -> list[float]:
    """Each used surrogate's weight in the ensemble's gradient (``weights``: one per surrogate, in order; None: 1)."""
    if weights is None:
        return [1.0] * len(used)
    if len(weights) != len(surrogates) or any(not w >= 0 for w in weights) or not any(w > 0 for w in weights):
        raise ParameterError(f"give one weight >= 0 per surrogate ({len(surrogates)}), not all 0; got {list(weights)}")
    by_id = {id(s): float(w) for s, w in zip(surrogates, weights)}
    return [by_id[id(s)] for s, _ in used]


def _covered(mask: torch.Tensor, size: int) -> torch.Tensor | None:
    """Indices (in :func:`_patches` order, no shift) of the grid patches ``mask`` covers whole; None: all of them."""
    h, w = mask.shape
    gh, gw = h // size, w // size
    whole = mask[: gh * size, : gw * size].reshape(gh, size, gw, size).amin((1, 3)).flatten() > 0
    return None if bool(whole.all()) or not bool(whole.any()) else torch.nonzero(whole).flatten()


def _gaussian(width: int) -> torch.Tensor:
    """A (3, 1, k, k) normalised Gaussian of side ``width`` (odd), sigma = width / 4, for depthwise smoothing."""
    r = torch.arange(width, dtype=torch.float32) - (width - 1) / 2
    g = torch.exp(-(r**2) / (2 * (width / 4) ** 2))
    k = torch.outer(g, g)
    return (k / k.sum()).expand(3, 1, width, width).contiguous()


def _cover_mask(region: np.ndarray, size: int, cover: int) -> torch.Tensor:
    """(H, W) 0/1 mask of the ``cover`` best-scored grid patches of ``region`` (all ones when ``cover`` is 0)."""
    h, w = region.shape[:2]
    mask = torch.zeros((h, w), dtype=torch.float32)
    if cover <= 0:
        mask[:] = 1.0
        return mask
    _, pos = decision_patches(region, preprocessor="RGB", size=size, n=cover, window=0)
    for y, x in pos:
        mask[y : y + size, x : x + size] = 1.0
    return mask


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * float(np.log10(PEAK**2 / mse))


def _floor_scale(base: torch.Tensor, d: torch.Tensor, budget: float) -> float:
    """The largest s in [0, 1] with mean((base + s d)^2) <= budget (the PSNR floor's MSE)."""
    n = base.numel()
    a, b, c = float((d * d).sum()), float((base * d).sum()), float((base * base).sum()) - budget * n
    if a == 0.0 or float(((base + d) ** 2).mean()) <= budget:
        return 1.0
    if c >= 0.0:
        return 0.0
    return float(min(1.0, max(0.0, (-b + np.sqrt(b * b - a * c)) / a)))


def _onto_floor(base: torch.Tensor, d: torch.Tensor, budget: float) -> torch.Tensor:
    """``d`` scaled by the largest s in [0, 1] with mean((base + s d)^2) <= budget (the PSNR floor's MSE)."""
    return d * _floor_scale(base, d, budget)


_SUBSAMPLING = {"4:4:4": (1, 1), "4:2:2": (1, 2), "4:2:0": (2, 2)}  # chroma (rows, columns) per sample


def _dct_matrix() -> torch.Tensor:
    """The 8x8 orthonormal DCT-II matrix: JPEG's forward DCT of a block B is ``D @ B @ D.T``."""
    k = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    return d.float()


class _JpegLattice:
    """A change of the window written as changes of its JPEG file's quantised DCT coefficients (the target's tables),
    so that what the attack builds is what the save keeps: each coefficient moves by whole quantisation steps.

    The attack keeps continuous amplitudes ``a`` (one plane per YCbCr component, in the DCT domain, grey levels);
    the change it applies is ``synth(Q * round(a / Q))``: the inverse DCT of the rounded coefficients, chroma
    replicated over its subsampling cell, YCbCr -> RGB (JFIF). ``grad`` maps a gradient on the RGB pixels to the
    same planes (the adjoint of ``synth`` without the rounding), so a step spends the budget on coefficients in
    proportion to what they buy, and a coefficient only changes once its amplitude reaches half a step.
    A window side must be a multiple of 8 x the chroma subsampling (the refinement's windows are MCU-aligned)."""

    def __init__(self, qtables: Any, subsampling: str, shape: tuple[int, int]) -> None:
        h, w = shape
        self.sub = _SUBSAMPLING.get(str(subsampling), (2, 2))
        fy, fx = self.sub
        if h % (8 * fy) or w % (8 * fx):
            raise ParameterError(f"a {w}x{h} window is not a whole number of JPEG blocks")
        tables = [torch.tensor(t, dtype=torch.float32).reshape(8, 8) for t in qtables]
        self.q = [tables[0], tables[min(1, len(tables) - 1)], tables[min(1, len(tables) - 1)]]
        self.shapes = [(h, w), (h // fy, w // fx), (h // fy, w // fx)]
        self.d = _dct_matrix()

    def _blocks(self, p: torch.Tensor, forward: bool) -> torch.Tensor:
        h, w = p.shape
        b = p.reshape(h // 8, 8, w // 8, 8).permute(0, 2, 1, 3)
        b = self.d @ b @ self.d.T if forward else self.d.T @ b @ self.d
        return b.permute(0, 2, 1, 3).reshape(h, w)

    def _tile(self, i: int) -> torch.Tensor:
        h, w = self.shapes[i]
        return self.q[i].repeat(h // 8, w // 8)

    def zeros(self) -> list[torch.Tensor]:
        return [torch.zeros(s) for s in self.shapes]

    def rounded(self, a: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self._tile(i) * torch.round(c / self._tile(i)) for i, c in enumerate(a)]

    def synth(self, c: list[torch.Tensor]) -> torch.Tensor:
        """(3, H, W) RGB change of the DCT-domain planes ``c``."""
        fy, fx = self.sub
        y, cb, cr = (self._blocks(p, False) for p in c)
        if (fy, fx) != (1, 1):  # the decoder's "fancy" upsampling: a triangle filter (3/4, 1/4), edges clamped
            cb, cr = torch.nn.functional.interpolate(torch.stack([cb, cr])[None], scale_factor=(fy, fx), mode="bilinear",
                                                     align_corners=False)[0]  # fmt: skip
        return torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb])

    def grad(self, g: torch.Tensor) -> list[torch.Tensor]:
        """The gradient on the planes of a gradient ``g`` (3, H, W) on the RGB change (``synth`` is linear)."""
        c = [p.requires_grad_(True) for p in self.zeros()]
        with torch.enable_grad():
            return list(torch.autograd.grad((self.synth(c) * g).sum(), c))

    def mask(self, m: torch.Tensor) -> list[torch.Tensor]:
        """Per plane, 1 where the pixel mask ``m`` (H, W) covers the whole 8 x 8 (chroma: MCU) block."""
        fy, fx = self.sub
        h, w = m.shape
        luma = (m.reshape(h // 8, 8, w // 8, 8).amin((1, 3)) > 0).float()
        chroma = (m.reshape(h // (8 * fy), 8 * fy, w // (8 * fx), 8 * fx).amin((1, 3)) > 0).float()
        return [luma.repeat_interleave(8, 0).repeat_interleave(8, 1), *2 * [chroma.repeat_interleave(8, 0).repeat_interleave(8, 1)]]


def _describe(loss: str, momentum: float, shift: int, dih4: bool, per_step: int, ti: int, jpeg: bool, n: int,
              norm: str = "linf", fuse: str = "gradients") -> str:
    """The attack in words, from its settings (written into the report)."""
    kind = "sign steps" if norm == "linf" else "L2 gradient steps"
    steps = f"{kind} with momentum {momentum:g} (MI-FGSM)" if momentum else f"iterative {kind} (I-FGSM)"
    loss_words = {"logit": "logit loss (Zhao et al. 2021)", "ce": "cross-entropy",
                  "margin": "margin loss (Carlini & Wagner 2017)",
                  "judge": "margin of the mean patch log-probability (the judges' decision rule)"}[loss]
    diversity = [w for w, on in ((f"grid shifts of {shift} px", shift), ("flips / quarter turns", dih4),
                                 (f"{per_step} random patches per step", per_step)) if on]  # fmt: skip
    extras = [w for w, on in (("translation-invariant gradient", ti), ("read through the JPEG save (BPDA)", jpeg)) if on]
    fusion = "one margin on their mean log-probabilities" if fuse == "logits" else "gradients normalised per surrogate"
    return (f"{steps}, {loss_words} toward the target, {n} surrogate(s), {fusion}; input "
            f"diversity: {', '.join(diversity) or 'none'}" + "".join(f"; {e}" for e in extras))


def transfer_attack(
    pixels: np.ndarray,
    surrogates: list[Surrogate],
    *,
    target: str,
    epsilon: float,
    iterations: int = 10,
    momentum: float = 0.0,
    window: int = 1024,
    seed: int = 0,
    loss: str = "ce",
    step: float | None = None,
    patches_per_step: int = 0,
    ti: int = 0,
    cover: int = 0,
    psnr_floor: float | None = None,
    reference: np.ndarray | None = None,
    jpeg: Callable[[np.ndarray], np.ndarray] | None = None,
    shift: int = 0,
    dih4: bool = True,
    norm: str = "linf",
    domain: str = "pixels",
    tables: Any = None,
    weights: Sequence[float] | None = None,
    sample_cover: bool = True,
    confidence: float = MARGIN,
    fuse: str = "gradients",
    ghost: float = 0.0,
    resize: float = 0.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The attacked uint8 RGB image (``|out - in| <= round(epsilon)`` inside the window, unchanged outside) and a
    record of the surrogates' verdicts on the window before and after (after the JPEG save with ``jpeg``).

    Parameters
    ----------
    pixels : ndarray, uint8, (H, W, 3)
        The transplanted image (not modified).
    surrogates : list of Surrogate
        The ensemble; a surrogate that does not know ``target`` is left out. An LGV collection (snapshots) takes
        part with one snapshot per step, drawn from the seeded generator; its verdicts before and after are read
        on its start network.
    target : str
        The camera model to move the image toward.
    epsilon : float
        L_inf budget around ``pixels``, grey levels.
    iterations, momentum, seed
        Steps, MI-FGSM momentum (0: plain sign steps), seed of the input diversity.
    window : int
        Side of the centred window attacked (0: the whole image).
    loss : str
        ``ce`` (lower the target's cross-entropy), ``margin`` (per patch), ``judge`` (the margin of the mean patch
        log-probability: the judges' rule) or ``logit`` (raise its raw score).
    step : float, optional
        Step per iteration, grey levels (default ``max(1.6 epsilon / iterations, epsilon / 8)``).
    patches_per_step : int
        Random patches each surrogate reads per step (0: all of them; with ``cover`` and ``sample_cover``, drawn
        among the covered patches).
    ti : int
        Width of the Gaussian smoothing the gradient (translation invariance; 0: none; odd).
    cover : int
        Attack only the ``cover`` best-scored 64 x 64 grid patches of the window (0: the whole window).
    psnr_floor : float, optional
        Keep the window's PSNR against ``reference`` (default: ``pixels``) at or above this, measured on the
        saved pixels when ``jpeg`` is given.
    reference : ndarray, optional
        The photo before the transplant (same shape as ``pixels``), for ``psnr_floor``.
    jpeg : callable, optional
        uint8 RGB -> uint8 RGB: encode and decode as the output will be saved.
    shift, dih4
        Input diversity: random grid shifts in multiples of ``shift`` pixels (0: none); random flips / quarter
        turns of the patches.
    norm : str
        ``linf``: sign steps of ``step`` grey levels; ``l2``: steps along the gradient, ``step`` grey levels RMS
        over the attacked pixels.
    domain : str
        ``pixels``: the steps change pixels (read through the save by BPDA); ``dct``: the steps change the saved
        file's quantised DCT coefficients (:class:`_JpegLattice`; L2 steps of ``step`` grey levels RMS over the
        attacked coefficients, from the saved transplant), so the save keeps the change. Needs ``jpeg`` and
        ``tables``.
    tables : JpegTables, optional
        The target's quantization tables and subsampling (``domain="dct"``): those ``jpeg`` saves with.
    weights : sequence of float, optional
        One weight >= 0 per surrogate (not all 0): its share of the summed normalised gradients (default 1 each).
    sample_cover : bool
        With ``cover``: the patches a step reads are drawn among the covered ones (False: from the whole grid).
    confidence : float
        The margin losses stop pushing once the target leads the best other class by this (log-probability).
    fuse : str
        How the surrogates are combined: ``gradients`` (each surrogate's gradient normalised to unit mean magnitude,
        weighted and summed) or ``logits`` (with ``loss="judge"``: one margin on the weighted mean, over the
        surrogates, of their mean patch log-probabilities; the ensemble-in-logits of Dong et al. 2018).
    resize : float
        Input diversity by resizing (Xie et al. 2019): with this probability per surrogate and step, the patches read
        are resized (nearest neighbour) to a random side in [S, 9 S / 8) and padded at a random place to 9 S / 8
        (0: off; the attributors pool globally, so they read any side).
    ghost : float
        Ghost networks (Li et al. 2020): at every step each surrogate's activations after every ReLU are dropped
        with this probability (and the rest rescaled), a fresh random variant of each surrogate per step: a larger
        ensemble at no training cost (0: off). The verdicts before and after are read on the plain surrogates.

    Raises
    ------
    ParameterError
        No surrogate knows ``target``, epsilon outside (0, 255], iterations < 1, an unknown loss or norm, a grey
        or too small image, a reference of another shape.
    """
    if not 0 < epsilon <= 255:
        raise ParameterError(f"--epsilon must lie in (0, 255] grey levels, got {epsilon!r}")
    if iterations < 1:
        raise ParameterError(f"the refinement needs at least 1 iteration, got {iterations!r}")
    if loss not in LOSSES:
        raise ParameterError(f"unknown refinement loss {loss!r}; choose one of {', '.join(LOSSES)}")
    if norm not in NORMS:
        raise ParameterError(f"unknown refinement norm {norm!r}; choose one of {', '.join(NORMS)}")
    if domain not in DOMAINS:
        raise ParameterError(f"unknown refinement domain {domain!r}; choose one of {', '.join(DOMAINS)}")
    if not 0.0 <= resize <= 1.0:
        raise ParameterError(f"the resize-diversity probability must lie in [0, 1], got {resize!r}")
    if not 0.0 <= ghost < 1.0:
        raise ParameterError(f"the ghost-network dropout rate must lie in [0, 1), got {ghost!r}")
    if fuse not in FUSES:
        raise ParameterError(f"unknown ensemble fusion {fuse!r}; choose one of {', '.join(FUSES)}")
    if fuse == "logits" and loss != "judge":
        raise ParameterError("the ensemble-in-logits fusion needs the judges' rule as the loss (loss='judge')")
    if domain == "dct" and (jpeg is None or tables is None):
        raise ParameterError("the DCT-domain refinement needs the JPEG save and its tables")
    if ti < 0 or (ti and ti % 2 == 0):
        raise ParameterError(f"the translation-invariance width must be 0 or odd, got {ti!r}")
    if pixels.ndim != 3 or pixels.dtype != np.uint8:
        raise ParameterError("the refinement takes 8-bit RGB images")
    if reference is not None and reference.shape != pixels.shape:
        raise ParameterError(f"the reference has shape {reference.shape}, the image {pixels.shape}")
    used = [(s, i) for s in surrogates if (i := _target_index(s, target)) is not None]
    if not used:
        known = sorted({c for s in surrogates for c in s.classes})
        raise ParameterError(f"no surrogate knows the target {target!r}; they know: {', '.join(known)}")
    if fuse == "logits" and len({tuple(class_key(c) for c in s.classes) for s, _ in used}) > 1:
        raise ParameterError("the ensemble-in-logits fusion needs surrogates of the same classes in the same order")
    h, w = pixels.shape[:2]
    side_h = min(h, window) if window else h
    side_w = min(w, window) if window else w
    top, left = centre_window(pixels.shape, window) if window else (0, 0)
    size = max(s.patch_size for s, _ in used)
    if min(side_h, side_w) < size:
        raise ParameterError(f"image of {w}x{h} pixels is smaller than one {size}x{size} surrogate patch")
    box = (slice(top, top + side_h), slice(left, left + side_w))
    region = pixels[box]

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)).astype(np.float32))

    def saved(v: torch.Tensor) -> torch.Tensor:
        q = np.clip(np.rint(v.detach().numpy()), 0, 255).astype(np.uint8).transpose(1, 2, 0)
        return tensor(jpeg(q)) if jpeg is not None else tensor(q)

    ref = tensor(reference[box]) if reference is not None else tensor(region)
    lattice = _JpegLattice(tables.qtables, tables.subsampling, (side_h, side_w)) if domain == "dct" else None
    x0 = saved(tensor(region)) if lattice is not None else tensor(region)  # dct: the saved transplant's lattice
    budget = PEAK**2 / 10 ** (psnr_floor / 10) if psnr_floor is not None else None
    mask = _cover_mask(region, size, cover)
    weights_used = _weights(surrogates, used, weights)
    kept_patches = [_covered(mask, s.patch_size) if cover > 0 and sample_cover else None for s, _ in used]
    eps = float(epsilon)
    low, high = (x0 - eps * mask).clamp(min=0.0), (x0 + eps * mask).clamp(max=255.0)
    alpha = float(step) if step else max(1.6 * eps / iterations, eps / 8)
    kernel = _gaussian(ti) if ti else None
    gen = torch.Generator().manual_seed(int(seed))
    before = {s.path: _share(s, saved(x0), i) for s, i in used}
    x = x0.clone()
    g = torch.zeros_like(x0)
    ratio = 1.0
    if lattice is not None:
        amp, acc, cover_planes = lattice.zeros(), lattice.zeros(), lattice.mask(mask)

        def applied(a: list[torch.Tensor]) -> torch.Tensor:
            return torch.minimum(torch.maximum(x0 + lattice.synth(lattice.rounded(a)), low), high)
    hooks = [m.register_forward_hook(_ghost_hook(ghost, gen)) for s, _ in used for net in (s.net, *s.snapshots)
             for m in net.modules() if isinstance(m, torch.nn.ReLU)] if ghost > 0 else []  # fmt: skip
    try:
        for _ in range(int(iterations)):
            # BPDA: the surrogates read the saved (JPEG-decoded) pixels; the gradient passes straight through the save
            xs = (saved(x) if jpeg is not None else x.detach()).requires_grad_(True)
            if budget is not None and jpeg is not None:  # how much of the change the save keeps
                kept = float(((xs.detach() - ref) ** 2).mean()) / max(float(((x - ref) ** 2).mean()), 1e-12)
                ratio = min(1.0, max(0.1, kept))
            grad = torch.zeros_like(x0)
            fused: list[tuple[torch.Tensor, int, float]] = []  # fuse="logits": (mean patch log-probability, label, weight)
            for (s, label), weight, keep in zip(used, weights_used, kept_patches):
                net = _step_net(s, gen)
                ps = s.patch_size
                dy, dx = (shift * int(v) for v in torch.randint(0, ps // shift, (2,), generator=gen)) if shift else (0, 0)
                p = _patches(xs, ps, dy, dx)
                if keep is not None and not (dy or dx):  # only the attacked (covered) patches: the others get no step
                    p = p[keep]
                if patches_per_step and patches_per_step < len(p):
                    p = p[torch.randperm(len(p), generator=gen)[:patches_per_step]]
                if resize and float(torch.rand(1, generator=gen)) < resize:
                    p = _resize_pad(p, gen)
                if dih4:
                    turns, flip = int(torch.randint(0, 4, (1,), generator=gen)), bool(torch.randint(0, 2, (1,), generator=gen))
                    p = torch.rot90(p, turns, dims=(2, 3))
                    p = torch.flip(p, dims=(3,)) if flip else p
                n = len(p)
                if loss == "judge" and fuse == "logits":
                    fused.append((torch.cat([_scores(net, p[j : j + BATCH], "ce") for j in range(0, n, BATCH)]).mean(0), label, weight))
                    continue
                if loss == "judge":  # the judges' rule: top-1 of the mean patch log-probability; its margin, in one graph
                    mean_lp = torch.cat([_scores(net, p[j : j + BATCH], "ce") for j in range(0, n, BATCH)]).mean(0)
                    other = mean_lp.clone()
                    other[label] = -float("inf")
                    obj = (other.max() - mean_lp[label]).clamp(min=-confidence)
                    (gs,) = torch.autograd.grad(obj, xs) if obj.requires_grad else (torch.zeros_like(x0),)
                else:
                    gs = torch.zeros_like(x0)
                    for j in range(0, n, BATCH):
                        sc = _scores(net, p[j : j + BATCH], "ce" if loss == "margin" else loss)
                        if loss == "margin":  # the best other class's log-probability over the target's (Carlini-Wagner)
                            other = sc.clone()
                            other[:, label] = -float("inf")
                            obj = (other.max(1).values - sc[:, label]).clamp(min=-confidence).sum() / n
                        else:
                            obj = -sc[:, label].sum() / n
                        (gj,) = torch.autograd.grad(obj, xs, retain_graph=j + BATCH < n)
                        gs += gj
                grad += weight * gs / gs.abs().mean().clamp(min=1e-12)
            if fused:  # one margin on the ensemble's weighted mean log-probabilities (classes aligned on the target's)
                total = sum(w for _, _, w in fused)
                mean_lp = sum(w * lp for lp, _, w in fused) / total
                label = fused[0][1]
                other = mean_lp.clone()
                other[label] = -float("inf")
                obj = (other.max() - mean_lp[label]).clamp(min=-confidence)
                if obj.requires_grad:
                    (grad,) = torch.autograd.grad(obj, xs)
            if kernel is not None:
                grad = torch.nn.functional.conv2d(grad[None], kernel, padding=ti // 2, groups=3)[0]
            grad = grad * mask
            if lattice is not None:  # an L2 step on the coefficients, onto the floor, then the rounded change applied
                gp = [c * m for c, m in zip(lattice.grad(grad), cover_planes)]
                scale_g = torch.cat([c.flatten() for c in gp]).abs().mean().clamp(min=1e-12)
                acc = [momentum * a + c / scale_g for a, c in zip(acc, gp)]
                active = float(sum(m.sum() for m in cover_planes))
                norm2 = float(sum((a * a).sum() for a in acc))
                amp = [p - alpha * a * (active / max(norm2, 1e-24)) ** 0.5 for p, a in zip(amp, acc)]
                if budget is not None:
                    d = applied(amp) - x0
                    s_floor = _floor_scale(x0 - ref, d, budget / ratio)
                    amp = [p * s_floor for p in amp] if s_floor < 1.0 else amp
                x = applied(amp)
                continue
            g = momentum * g + grad / grad.abs().mean().clamp(min=1e-12)
            if norm == "l2":  # along the gradient, alpha grey levels RMS over the attacked pixels
                direction = g * (3 * float(mask.sum()) / max(float((g * g).sum()), 1e-24)) ** 0.5
            else:
                direction = g.sign()
            x = torch.minimum(torch.maximum(x.detach() - alpha * direction, low), high)
            if budget is not None:  # onto the floor, as the save will measure it (its MSE ratio at the last iterate)
                x = x0 + _onto_floor(x0 - ref, x - x0, budget / ratio)
    finally:
        for hook in hooks:
            hook.remove()
    scale = 1.0
    if budget is not None:  # the saved window meets the floor: bisect the change's scale
        d = x - x0

        def scaled(f: float) -> torch.Tensor:
            return applied([p * f for p in amp]) if lattice is not None else x0 + f * d

        if _psnr(saved(scaled(1.0)), ref) < psnr_floor:
            lo, hi = 0.0, 1.0
            for _ in range(8):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if _psnr(saved(scaled(mid)), ref) >= psnr_floor else (lo, mid)
            scale = lo
            x = scaled(lo)
    q = np.clip(np.rint(x.numpy()), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    out = pixels.copy()
    out[box] = q
    after = {s.path: _share(s, saved(tensor(q)), i) for s, i in used}
    record = {
        "attack": _describe(loss, momentum, shift, dih4, patches_per_step, ti, jpeg is not None, len(used), norm, fuse),
        "target": target,
        "loss": loss,
        "norm": norm,
        "domain": domain,
        "fuse": fuse,
        "ghost": float(ghost),
        "resize": float(resize),
        "epsilon": eps,
        "iterations": int(iterations),
        "momentum": float(momentum),
        "step": alpha,
        "patches_per_step": int(patches_per_step),
        "ti": int(ti),
        "cover": int(cover),
        "jpeg_aware": jpeg is not None,
        "psnr_floor": psnr_floor,
        "final_scale": scale,
        "window_psnr": _psnr(saved(tensor(q)), ref),
        "window": [int(top), int(left), int(side_h), int(side_w)],
        "surrogates": [{"sha256": s.sha256, "preprocessor": s.preprocessor, "architecture": s.architecture,
                        **({"lgv_snapshots": len(s.snapshots)} if s.snapshots else {}),
                        "before": before[s.path], "after": after[s.path]} for s, _ in used],  # fmt: skip
        "left_out": [s.sha256 for s in surrogates if _target_index(s, target) is None],
    }  # fmt: skip
    return out, record


def _data_summary(data: dict[str, Any]) -> dict[str, Any]:
    """The data set, its split and the image counts of a training checkpoint's data record (no names)."""
    return {
        "dataset": data.get("dataset"),
        "n_classes": len(data.get("classes") or []),
        "device_disjoint": data.get("device_disjoint"),
        "n_devices_split_by_image": len(data.get("image_split_devices") or []),
        **{f"n_{k}_images": (data.get(k) or {}).get("n_images") for k in ("train", "validation", "test")},
    }


def ship_surrogate(checkpoint: str, out_dir: str, name: str, *, command: str, classes: list[str] | None = None,
                   weight: float = 1.0) -> dict[str, Any]:
    """Write a surrogate's weights (no optimiser state) to ``out_dir/NAME.pt`` and its entry, marked
    ``"role": "surrogate"``, into ``out_dir/manifest.json``; ``classes`` renames the outputs (same order), e.g. to a
    data-set manifest's spelling; ``weight`` is its ``ensemble_weight`` in the default ensemble (``--refine
    surrogates``; 0: used only when named). An LGV collection (``camforensics train lgv``: ``RUN/lgv.pt``) is
    shipped with its snapshots, its entry with the collection's settings and validation accuracies. Returns the
    entry."""
    import json
    from pathlib import Path

    from camforensics.io.hashing import sha256_file
    from camforensics.training.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint)
    if state.get("kind") != "attributor":
        raise ParameterError(f"{checkpoint}: not an attributor checkpoint")
    names = list(classes) if classes is not None else list(state["classes"])
    if len(names) != len(state["classes"]):
        raise ParameterError(f"{len(names)} class names for {len(state['classes'])} outputs")
    keep = {k: state[k] for k in ("format", "version", "kind", "config", "model", "epoch", "provenance", "snapshots", "lgv")
            if k in state}  # fmt: skip
    keep["classes"] = names
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(keep, out / f"{name}.pt")
    cfg = dict(state["config"])
    entry = {
        "file": f"{name}.pt",
        "sha256": sha256_file(out / f"{name}.pt"),
        "role": "surrogate",
        "task": "camera-model-attribution",
        "classes": names,
        "format": "camforensics torch checkpoint (weights only)",
        "training": {"command": command, "preprocessor": cfg.get("preprocessor"), "architecture": cfg.get("architecture"),
                     "width": cfg.get("width"), "seed": cfg.get("seed"), "epoch": state.get("epoch"),
                     "best_val_image_accuracy": state.get("best_val_image_accuracy"),
                     "data": _data_summary(state.get("data") or {}),
                     "metrics": {k: {m: v.get(m) for m in ("n_images", "image_accuracy", "patch_accuracy")}
                                 for k, v in (state.get("metrics") or {}).items() if isinstance(v, dict)}},
        "note": "a surrogate of the transfer refinement: never a judge (evaluate anonymization refuses a judge "
                "trained with the same preprocessor, architecture, width and seed)",
    }  # fmt: skip
    if state.get("snapshots"):  # an LGV collection (camforensics train lgv): its snapshots and their accuracy
        lgv = state.get("lgv") or {}
        entry["training"]["lgv"] = {k: lgv.get(k) for k in ("method", "start_sha256", "start_val_image_accuracy", "config",
                                                            "n_snapshots", "snapshot_val_image_accuracy",
                                                            "val_image_accuracy_range")}  # fmt: skip
        entry["format"] = "camforensics torch checkpoint (start weights and LGV snapshots' weights)"
    if cfg.get("adversarial_eps"):
        entry["training"]["adversarial_eps"] = float(cfg["adversarial_eps"])  # grey levels, fast adversarial training
    if weight != 1.0:
        entry["ensemble_weight"] = float(weight)
    man = out / "manifest.json"
    doc = json.loads(man.read_text(encoding="utf-8")) if man.is_file() else {"format": "camforensics.surrogates", "version": 1, "surrogates": {}}
    doc["surrogates"][name] = entry
    man.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return entry

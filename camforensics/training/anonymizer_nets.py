"""Networks of the learned anonymizers (DESIGN.md section 3): Cama's targeted generator, discriminator and
evaluator, and a SiamTE-style trace eraser with its embedding.

Every image tensor here is (N, 3, H, W) RGB on [-1, 1] (``pixel / 127.5 - 1``). The generator and the eraser are
fully convolutional, so the exported graphs take any height and width (the generator: multiples of
:data:`GENERATOR_MULTIPLE`, because of its two stride-2 stages; callers pad).

References
----------
J. T. A. Andrews, Y. Zhang, L. D. Griffin, "Conditional adversarial camera model anonymization" (Cama), ECCV 2020
workshops (as summarised in DESIGN.md section 3: the generator, discriminator, evaluator and losses here).
C. Chen, Z. Xiong, X. Liu, F. Wu, "Camera trace erasing", CVPR 2020 (SiamTE).
B. Bayar, M. C. Stamm, "Constrained convolutional neural networks ...", IEEE TIFS 13(11), 2018.
"""

from __future__ import annotations

import torch
from torch import nn

from camforensics.errors import ParameterError
from camforensics.training.nets import BondiNet
from camforensics.training.preprocess import ConstrainedConv

GENERATOR_MULTIPLE = 4  # height and width of a generator input must be multiples of this (two stride-2 stages)
# Residual estimator output bound, on the [-1, 1] scale: 16 grey levels of 0..255, the same clip as the WW
# encoding (camforensics.core.modelinput: larger |W| are scene edges, not sensor traces).
RESIDUAL_LIMIT = 16.0 / 127.5

# Bilinear demosaicing as a normalised convolution: out = conv(mosaic) / conv(mask). Red and blue take the
# average of their 2 or 4 nearest samples (weights 2 along rows/columns, 1 on diagonals); green takes its 4
# nearest (a green site keeps its own value: its diagonal neighbours are green too, so green has no diagonals).
_RB_KERNEL = ((1.0, 2.0, 1.0), (2.0, 4.0, 2.0), (1.0, 2.0, 1.0))
_G_KERNEL = ((0.0, 1.0, 0.0), (1.0, 4.0, 1.0), (0.0, 1.0, 0.0))
# RGGB: channel kept at each site of the 2x2 cell (row, column).
_RGGB = {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 2}


class RemosaicBilinear(nn.Module):
    """Re-mosaic an RGB image on an RGGB Bayer grid anchored at (0, 0), then demosaic it bilinearly, in the graph.

    This is Cama's input stage: the source camera's own demosaicing traces are replaced by one known interpolation
    before the generator adds the target's. Borders use the samples that exist (normalised convolution), so the
    result does not darken at the edges. Height and width must be even (the CFA cell is 2x2).
    """

    def __init__(self) -> None:
        super().__init__()
        pattern = torch.zeros(1, 3, 2, 2)
        for (dy, dx), c in _RGGB.items():
            pattern[0, c, dy, dx] = 1.0
        self.register_buffer("pattern", pattern)
        kernels = torch.tensor([_RB_KERNEL, _G_KERNEL, _RB_KERNEL]).unsqueeze(1)  # (3, 1, 3, 3)
        self.register_buffer("kernels", kernels)

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) CFA mask: 1 where the RGGB grid keeps that colour."""
        cells = torch.ones_like(x[:1, :1, ::2, ::2])  # (1, 1, H/2, W/2), dynamic in the exported graph
        return nn.functional.conv_transpose2d(cells, self.pattern, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.mask(x)
        num = nn.functional.conv2d(x * m, self.kernels, padding=1, groups=3)
        den = nn.functional.conv2d(m, self.kernels, padding=1, groups=3)
        return num / den


def _conv_bn_relu(cin: int, cout: int, k: int, *, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class ResidualBlock(nn.Module):
    """3x3 conv - BN - ReLU - 3x3 conv - BN, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn_relu(channels, channels, 3),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class EncoderDecoder(nn.Module):
    """Cama's generator body: 7x7 conv ``w`` -> stride-2 convs ``2w``, ``4w`` -> residual blocks -> two transposed
    convs back to full resolution -> 7x7 conv to ``cout`` (no output activation here).

    Cama uses ``w = 64`` (64, 128, 256 channels) and 2 residual blocks. Batch normalisation (not instance
    normalisation) is used so that the exported graph is a fixed function of each pixel's neighbourhood: tiles of a
    large image then give the same result as the whole image away from the tile borders.
    """

    def __init__(self, cin: int, cout: int, *, width: int = 16, blocks: int = 2) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            *_conv_bn_relu(cin, w, 7),
            *_conv_bn_relu(w, 2 * w, 3, stride=2),
            *_conv_bn_relu(2 * w, 4 * w, 3, stride=2),
            *[ResidualBlock(4 * w) for _ in range(blocks)],
            nn.ConvTranspose2d(4 * w, 2 * w, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(),
            nn.Conv2d(w, cout, 7, padding=3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CamaGenerator(nn.Module):
    """Targeted camera-model anonymizer: (image, target one-hot planes) -> image that the target camera "took".

    Input ``x``: (N, 3, H, W) on [-1, 1]; ``target``: (N, C, H, W) one-hot planes of the target model (H and W
    multiples of :data:`GENERATOR_MULTIPLE`). The image is re-mosaiced (RGGB) and demosaiced bilinearly in the
    graph, concatenated with the target planes, and passed through :class:`EncoderDecoder`.

    Output: ``tanh`` of the last 7x7 convolution (Cama) when ``global_skip`` is false; with ``global_skip`` (our
    default, for CPU-sized training) the tanh output is a correction added to the demosaiced image,
    ``clamp(demosaiced + tanh(conv), -1, 1)``, so an untrained generator starts at the identity (high PSNR) and
    training spends its few steps on the traces rather than on learning to copy the scene (the last convolution
    starts at zero, so the untrained generator returns the re-mosaiced, demosaiced input).
    """

    def __init__(self, n_classes: int, *, width: int = 16, blocks: int = 2, global_skip: bool = True) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.global_skip = global_skip
        self.demosaic = RemosaicBilinear()
        self.body = EncoderDecoder(3 + n_classes, 3, width=width, blocks=blocks)
        if global_skip:  # start exactly at the demosaiced input: the correction's last layer begins at zero
            last = self.body.net[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        d = self.demosaic(x)
        y = torch.tanh(self.body(torch.cat([d, target], dim=1)))
        return torch.clamp(d + y, -1.0, 1.0) if self.global_skip else y


def label_planes(labels: torch.Tensor, n_classes: int, like: torch.Tensor) -> torch.Tensor:
    """One-hot planes (N, C, H, W) of integer ``labels`` (N,), with ``like``'s height, width, dtype and device."""
    onehot = nn.functional.one_hot(labels, n_classes).to(like.dtype)
    return onehot[:, :, None, None].expand(-1, -1, like.shape[2], like.shape[3])


class CamaDiscriminator(nn.Module):
    """Matching-aware conditional PatchGAN: constrained conv 5x5 (3 filters, Bayar & Stamm) -> label planes
    concatenated -> 4x4 convs (stride 2, 2, 1, 1) -> one least-squares score per patch position.

    Call :func:`camforensics.training.preprocess.constrain_all` on it after every optimiser step.
    """

    def __init__(self, n_classes: int, *, width: int = 16) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.cc = ConstrainedConv(3, 3, 5)
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3 + n_classes, w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, padding=1, bias=False),
            nn.BatchNorm2d(4 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 4, padding=1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        r = self.cc(x)
        return self.net(torch.cat([r, label_planes(labels, self.n_classes, r)], dim=1))


class ResidualEstimator(nn.Module):
    """Cama's E0: the generator body (3 -> 3 channels), ``RESIDUAL_LIMIT * tanh`` output: an estimate of the
    image's sensor-noise residual on the [-1, 1] scale, trained by L2 to the wavelet Wiener residual."""

    def __init__(self, *, width: int = 16, blocks: int = 2) -> None:
        super().__init__()
        self.body = EncoderDecoder(3, 3, width=width, blocks=blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return RESIDUAL_LIMIT * torch.tanh(self.body(x))


class CamaEvaluator(nn.Module):
    """Cama's evaluator: E0 splits an image into its residual ``x_H = E0(x)`` and the rest ``x_L = x - E0(x)``;
    two classifier streams (Bondi-style CNNs) give log-probabilities over the camera models from each.

    ``forward`` returns ``(log_probs_H, log_probs_L)``, each (N, C). It is trained before the generator and then
    frozen: the generator is judged by it, never trains it.
    """

    def __init__(self, n_classes: int, *, width: int = 16, blocks: int = 2) -> None:
        super().__init__()
        self.e0 = ResidualEstimator(width=width, blocks=blocks)
        self.high = BondiNet(3, n_classes, width=width)
        self.low = BondiNet(3, n_classes, width=width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.e0(x)
        return self.streams(x, r)

    def streams(self, x: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of both streams given E0's residual (lets training reuse one E0 pass)."""
        lp_h = torch.log_softmax(self.high(residual / RESIDUAL_LIMIT), dim=1)
        lp_l = torch.log_softmax(self.low(x - residual), dim=1)
        return lp_h, lp_l


class TraceEraser(nn.Module):
    """SiamTE-style untargeted trace eraser: a DnCNN-like denoiser with residual learning.

    ``x' = clamp(x - R(x), -1, 1)``, R = 3x3 conv ``w`` + ReLU, ``depth - 2`` x (3x3 conv ``w``, BN, ReLU), 3x3 conv
    to 3. No down-sampling: any height and width.

    With ``max_change`` > 0 (on the [-1, 1] scale) the correction is bounded, ``R = max_change * tanh(conv)``, so no
    pixel moves by more than ``max_change`` on any image, whatever it shows: PSNR >= 20 log10(2 / max_change) by
    construction (a truncated L1 alone lets large local changes through on images unlike the training patches).
    ``max_change`` 0 is the unbounded residual.
    """

    def __init__(self, *, width: int = 32, depth: int = 6, max_change: float = 0.0) -> None:
        super().__init__()
        if max_change < 0:
            raise ParameterError(f"max_change must be >= 0, not {max_change}")
        self.max_change = float(max_change)
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
        for _ in range(max(depth - 2, 0)):
            layers += _conv_bn_relu(width, width, 3)
        layers.append(nn.Conv2d(width, 3, 3, padding=1))
        self.residual = nn.Sequential(*layers)

    def correction(self, x: torch.Tensor) -> torch.Tensor:
        r = self.residual(x)
        return self.max_change * torch.tanh(r) if self.max_change > 0 else r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x - self.correction(x), -1.0, 1.0)


class TraceEmbedding(nn.Module):
    """Embedding of camera traces for the eraser's losses: constrained conv 5x5 -> Bondi-style features ->
    L2-normalised vector (``embed``), and a linear head over the camera models (``forward``: log-probabilities)."""

    def __init__(self, n_classes: int, *, width: int = 16) -> None:
        super().__init__()
        self.cc = ConstrainedConv(3, 3, 5)
        self.net = BondiNet(3, n_classes, width=width)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        f = self.net.features(self.cc(x))
        return nn.functional.normalize(f, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.net.head(self.net.features(self.cc(x))), dim=1)

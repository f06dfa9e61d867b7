"""Networks of the deep models (DESIGN.md section 3).

Camera-model attributor: a Bondi-style small CNN and a small ResNet. Both are fully convolutional up to a global
average pool, so the exported graph accepts any patch size >= the training size (dynamic spatial axes), and both
end in log-probabilities (log-softmax), which the image decision averages over patches.

Same-device verifier: :class:`SiameseVerifier`, a twin residual CNN with a two-input graph (``a``, ``b``) and one
logit per pair of patches; see its docstring for why the two sides are compared position by position.
"""

from __future__ import annotations

import torch
from torch import nn

from camforensics.errors import ParameterError
from camforensics.training.preprocess import build_preprocessor

ARCHITECTURES: tuple[str, ...] = ("bondi", "resnet")


class Normalise(nn.Module):
    """0..255 -> [-1, 1] inside the graph, so every model takes the same value range."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 127.5) * (1.0 / 127.5)


def _conv_bn(cin: int, cout: int, k: int, *, stride: int = 1, padding: int = 0) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


class BondiNet(nn.Module):
    """Bondi et al. (2017) camera-model CNN, narrowed by ``width`` for CPU inference.

    conv 4x4 -> max-pool -> conv 5x5 -> max-pool -> conv 5x5 -> max-pool -> conv 5x5 -> global average ->
    fc 128 -> fc C. Bondi's widths are 32/48/64/128 (``width=32``); batch normalisation is added for stable
    training on small data sets (folded into the convolutions at export).

    References
    ----------
    L. Bondi et al., "First steps toward camera model identification with convolutional neural networks",
    IEEE Signal Processing Letters 24(3), 2017.
    """

    def __init__(self, in_channels: int, n_classes: int, *, width: int = 16, dropout: float = 0.3) -> None:
        super().__init__()
        c1, c2, c3, c4 = width, width * 3 // 2, width * 2, width * 4
        self.features = nn.Sequential(
            *_conv_bn(in_channels, c1, 4),
            nn.MaxPool2d(2),
            *_conv_bn(c1, c2, 5),
            nn.MaxPool2d(2),
            *_conv_bn(c2, c3, 5),
            nn.MaxPool2d(2),
            *_conv_bn(c3, c4, 5, padding=2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(c4, 128),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(128, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(cin, cout, 3, stride=stride, padding=1),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class SmallResNet(nn.Module):
    """A small ResNet: 3x3 stem, three stages of one basic block each (strides 2, 2, 2), global average, fc C."""

    def __init__(self, in_channels: int, n_classes: int, *, width: int = 16, dropout: float = 0.3) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_conv_bn(in_channels, w, 3, padding=1),
            _Block(w, w * 2, 2),
            _Block(w * 2, w * 4, 2),
            _Block(w * 4, w * 8, 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(w * 8, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Attributor(nn.Module):
    """Normalise -> preprocessor -> network -> log-softmax: the whole exported graph.

    Input: (N, 3, H, W) float32 on 0..255 (pixels, or the encoded WW residual); output: (N, C) log-probabilities.
    """

    def __init__(self, preprocessor: str, architecture: str, n_classes: int, *, width: int = 16) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ParameterError(f"unknown architecture {architecture!r}; choose one of {ARCHITECTURES}")
        self.normalise = Normalise()
        self.pre = build_preprocessor(preprocessor)
        cin = self.pre.out_channels
        net = BondiNet if architecture == "bondi" else SmallResNet
        self.net = net(cin, n_classes, width=width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.net(self.pre(self.normalise(x))), dim=1)


COMPARISONS: tuple[str, ...] = ("aligned", "pooled")


class SiameseVerifier(nn.Module):
    """Twin CNN on residual patches: one logit "same device" per pair of patches taken at the same position.

    Normalise -> preprocessor -> shared feature extractor (3x3 convolutions at full resolution, one 2x2 max-pool)
    on each side, then a comparison and a small dense head (|f(A) - f(B)| -> dense -> logit; the sigmoid is applied
    by the caller, so the graph's output can be averaged over positions and calibrated).

    ``comparison="aligned"`` (default): each side's feature maps are standardised per sample and channel over the
    patch, and ``f(A) - f(B)`` is taken pixel by pixel before the global average: ``mean |S_A - S_B|`` of two
    standardised maps is a decreasing function of their correlation, which is what sensor noise (PRNU) of one
    device shares at one position and what two devices' noise, of identical statistics, does not. ``"pooled"``:
    global average first, then ``|f(A) - f(B)|`` of the pooled vectors (Mayer & Stamm's forensic similarity, where
    the two patches come from different positions): it can only compare the statistics of the traces (camera
    model), not the position-wise sensor pattern.

    Inputs ``a`` and ``b``: (N, 3, H, W) float32 on 0..255 (pixels, or the encoded WW residual), the same shape;
    output: (N,) logits.

    References
    ----------
    O. Mayer, M. C. Stamm, "Learned forensic source similarity for unknown camera models", ICASSP 2018; and
    "Forensic similarity for digital images", IEEE TIFS 15, 2020.
    Skrabec, EURECOM 2021, as summarised in DESIGN.md section 3 (sets of images averaged per patch position, 4+4
    images; title not restated here).
    """

    def __init__(self, preprocessor: str, *, width: int = 16, comparison: str = "aligned", hidden: int = 32) -> None:
        super().__init__()
        if comparison not in COMPARISONS:
            raise ParameterError(f"unknown comparison {comparison!r}; choose one of {COMPARISONS}")
        self.comparison = comparison
        self.normalise = Normalise()
        self.pre = build_preprocessor(preprocessor)
        w = width
        self.features = nn.Sequential(
            *_conv_bn(self.pre.out_channels, w, 3, padding=1),
            *_conv_bn(w, w, 3, padding=1),
            nn.MaxPool2d(2),
            *_conv_bn(w, 2 * w, 3, padding=1),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
        )
        self.head = nn.Sequential(nn.Linear(2 * w, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps (N, C, h, w) of one side."""
        return self.features(self.pre(self.normalise(x)))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa, fb = self.embed(a), self.embed(b)
        if self.comparison == "aligned":
            d = (_standardise(fa) - _standardise(fb)).abs().mean(dim=(2, 3))
        else:
            d = (torch.relu(fa).mean(dim=(2, 3)) - torch.relu(fb).mean(dim=(2, 3))).abs()
        return self.head(d).squeeze(1)


def _standardise(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean, unit variance per sample and channel over the spatial axes (an all-constant map becomes 0)."""
    centred = x - x.mean(dim=(2, 3), keepdim=True)
    return centred * torch.rsqrt(centred.pow(2).mean(dim=(2, 3), keepdim=True) + eps)

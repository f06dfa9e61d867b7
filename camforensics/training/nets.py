"""Networks of the camera-model attributor: a Bondi-style small CNN and a small ResNet (DESIGN.md section 3).

Both are fully convolutional up to a global average pool, so the exported graph accepts any patch size >= the
training size (dynamic spatial axes), and both end in log-probabilities (log-softmax), which the image decision
averages over patches.
"""

from __future__ import annotations

import torch
from torch import nn

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
            raise ValueError(f"unknown architecture {architecture!r}; choose one of {ARCHITECTURES}")
        self.normalise = Normalise()
        self.pre = build_preprocessor(preprocessor)
        cin = self.pre.out_channels
        net = BondiNet if architecture == "bondi" else SmallResNet
        self.net = net(cin, n_classes, width=width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.net(self.pre(self.normalise(x))), dim=1)

"""Input preprocessors of the deep models (DESIGN.md section 3), as torch modules placed in front of a network.

Each is part of the exported ONNX graph except ``WW``, whose wavelet Wiener residual is computed with numpy before
the graph (:func:`camforensics.core.modelinput.encode_input`).
"""

from __future__ import annotations

import torch
from torch import nn

from camforensics.core.modelinput import PREPROCESSORS
from camforensics.errors import ParameterError

# Ker-Vass 5x5 high-pass ("KV" / SQUARE 5x5 of the SRM family), Fridrich & Kodovsky 2012; sum of weights 0.
KV_KERNEL = (
    (-1.0, 2.0, -2.0, 2.0, -1.0),
    (2.0, -6.0, 8.0, -6.0, 2.0),
    (-2.0, 8.0, -12.0, 8.0, -2.0),
    (2.0, -6.0, 8.0, -6.0, 2.0),
    (-1.0, 2.0, -2.0, 2.0, -1.0),
)
KV_SCALE = 1.0 / 12.0
# Third-order finite difference [-1, 3, -3, 1] (the third derivative stencil), horizontal and vertical.
FD3 = (-1.0, 3.0, -3.0, 1.0)


class Identity(nn.Module):
    """RGB and WW: no filtering inside the graph."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class KVHighPass(nn.Module):
    """Fixed 5x5 KV high-pass applied to each colour channel (valid convolution, no padding)."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        k = torch.tensor(KV_KERNEL, dtype=torch.float32) * KV_SCALE
        self.register_buffer("weight", k.expand(channels, 1, 5, 5).clone())
        self.channels = channels
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.weight, groups=self.channels)


class FiniteDifference3(nn.Module):
    """Fixed third-order finite differences, horizontal and vertical, per colour channel (2 outputs each)."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        w = torch.zeros(2 * channels, 1, 4, 4)
        d = torch.tensor(FD3)
        for c in range(channels):
            w[2 * c, 0, 0, :] = d  # horizontal stencil in the first row
            w[2 * c + 1, 0, :, 0] = d  # vertical stencil in the first column
        self.register_buffer("weight", w)
        self.channels = channels
        self.out_channels = 2 * channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.weight, groups=self.channels)


class ConstrainedConv(nn.Module):
    """Bayar & Stamm's constrained convolution: learned prediction-error filters.

    After every optimiser step call :meth:`constrain`: in each 5x5 kernel (per output filter and input channel) the
    centre is set to 0, the kernel divided by its sum, and the centre set to -1, so each kernel predicts the centre
    pixel from its neighbours and outputs the prediction error (scene content is suppressed, traces kept).

    References
    ----------
    B. Bayar, M. C. Stamm, "Constrained convolutional neural networks: a new approach towards general purpose
    image manipulation detection", IEEE TIFS 13(11), 2018.
    """

    def __init__(self, channels: int = 3, filters: int = 3, size: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, filters, size, bias=False)
        self.out_channels = filters
        self.constrain()

    @torch.no_grad()
    def constrain(self) -> None:
        w = self.conv.weight  # (filters, channels, k, k)
        c = w.shape[-1] // 2
        w[:, :, c, c] = 0.0
        s = w.sum(dim=(2, 3), keepdim=True)
        s = torch.where(s.abs() < 1e-6, torch.full_like(s, 1e-6), s)
        w /= s
        w[:, :, c, c] = -1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def build_preprocessor(name: str, channels: int = 3) -> nn.Module:
    """The preprocessor module called ``name`` (one of :data:`PREPROCESSORS`)."""
    key = name.upper()
    if key not in PREPROCESSORS:
        raise ParameterError(f"unknown preprocessor {name!r}; choose one of {PREPROCESSORS}")
    if key in ("RGB", "WW"):
        return Identity(channels)
    if key == "HP":
        return KVHighPass(channels)
    if key == "FD":
        return FiniteDifference3(channels)
    return ConstrainedConv(channels)


def constrain_all(module: nn.Module) -> None:
    """Re-apply the constraint of every :class:`ConstrainedConv` inside ``module`` (after an optimiser step)."""
    for m in module.modules():
        if isinstance(m, ConstrainedConv):
            m.constrain()

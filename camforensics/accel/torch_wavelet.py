"""Periodized 2-D discrete wavelet transform in torch, coefficient for coefficient equal to pywt's.

pywt's ``mode="periodization"`` on an even length N computes ``a[k] = sum_j h[j] x[(2k + L/2 - j) mod N]`` for a
filter ``h`` of even length L (checked numerically against pywt in ``tests/test_accel_torch.py``). Written as a
strided correlation this is a gather with wrapped indices followed by ``conv2d``; the inverse of this orthogonal
transform is its adjoint: ``conv_transpose2d`` with the same filters, then the wrapped samples added back
(``index_add_``). Both run on a batch of channels at once, on any torch device.

This module imports torch; import it through :mod:`camforensics.accel`.
"""

from __future__ import annotations

import pywt
import torch
import torch.nn.functional as F

from camforensics.errors import ParameterError


class PeriodizedDwt2:
    """Forward and inverse multi-level 2-D DWT of a batch ``(B, H, W)`` with pywt's periodization convention.

    Parameters
    ----------
    wavelet : str
        An orthogonal pywt wavelet name (e.g. ``"db4"``).
    device : torch.device
    dtype : torch.dtype, keyword-only
        Work precision; float32 by default.
    """

    def __init__(self, wavelet: str, device: torch.device, *, dtype: torch.dtype = torch.float32) -> None:
        w = pywt.Wavelet(wavelet)
        if not w.orthogonal:
            raise ParameterError(f"wavelet {wavelet!r} is not orthogonal; the torch DWT supports orthogonal wavelets only")
        self.filter_len = w.dec_len
        # conv2d correlates, so the filters are reversed; row 0 = low-pass, row 1 = high-pass.
        bank = torch.tensor([w.dec_lo[::-1], w.dec_hi[::-1]], dtype=dtype, device=device)
        self._along_w = bank.reshape(2, 1, 1, self.filter_len)
        self._along_h = bank.reshape(2, 1, self.filter_len, 1)
        self.device = device

    def _wrap_index(self, n: int) -> torch.Tensor:
        # Sample i of the wrapped signal is x[(i + L/2 - (L - 1)) mod n]; N + L - 2 samples feed N/2 outputs.
        half = self.filter_len // 2
        return (torch.arange(n + self.filter_len - 2, device=self.device) + half - self.filter_len + 1) % n

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One level: ``(B, H, W)`` with even H, W -> approximation ``(B, H/2, W/2)`` and details ``(B, 3, H/2, W/2)``.

        The details are in pywt's order (cH, cV, cD): detail along rows (axis 0) / along columns (axis 1) / both.
        """
        b, h, w = x.shape
        if h % 2 or w % 2:
            raise ParameterError(f"periodized DWT needs even sides, got {h}x{w}")
        xw = x.index_select(2, self._wrap_index(w)).unsqueeze(1)  # (B, 1, H, W + L - 2)
        lw = F.conv2d(xw, self._along_w, stride=(1, 2))  # (B, 2, H, W/2): [lo_x, hi_x]
        lw = lw.reshape(b * 2, 1, h, w // 2)
        lw = lw.index_select(2, self._wrap_index(h))
        out = F.conv2d(lw, self._along_h, stride=(2, 1))  # (2B, 2, H/2, W/2): [lo_y, hi_y]
        out = out.reshape(b, 2, 2, h // 2, w // 2)  # [x band, y band]
        approx = out[:, 0, 0]
        details = torch.stack((out[:, 0, 1], out[:, 1, 0], out[:, 1, 1]), dim=1)  # cH (y hi), cV (x hi), cD
        return approx, details

    def inverse(self, approx: torch.Tensor, details: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`forward` (its adjoint, the transform being orthogonal)."""
        b, h2, w2 = approx.shape
        h, w = 2 * h2, 2 * w2
        # Back to [x band, y band] layout, then undo the transform along H first (the last one applied).
        stacked = torch.stack(
            (torch.stack((approx, details[:, 0]), dim=1), torch.stack((details[:, 1], details[:, 2]), dim=1)), dim=1
        ).reshape(b * 2, 2, h2, w2)
        up = F.conv_transpose2d(stacked, self._along_h, stride=(2, 1))  # (2B, 1, H + L - 2, W/2)
        lw = up.new_zeros((b * 2, 1, h, w2)).index_add_(2, self._wrap_index(h), up)
        lw = lw.reshape(b, 2, h, w2)
        up = F.conv_transpose2d(lw, self._along_w, stride=(1, 2))  # (B, 1, H, W + L - 2)
        x = up.new_zeros((b, 1, h, w)).index_add_(3, self._wrap_index(w), up)
        return x[:, 0]

    def wavedec(self, x: torch.Tensor, levels: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``levels``-level decomposition: the coarsest approximation and the details, finest first."""
        details = []
        a = x
        for _ in range(levels):
            a, d = self.forward(a)
            details.append(d)
        return a, details

    def waverec(self, approx: torch.Tensor, details: list[torch.Tensor]) -> torch.Tensor:
        """Inverse of :meth:`wavedec` (details finest first)."""
        a = approx
        for d in reversed(details):
            a = self.inverse(a, d)
        return a

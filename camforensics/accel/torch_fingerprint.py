"""Streaming maximum-likelihood fingerprint in torch: the accumulator of ``core.fingerprint`` on a GPU.

The running sums stay on the device; each added image is uploaded once (in its own dtype), denoised with its
channels in one batch, weighted and added. ``finish`` returns the same :class:`Fingerprint` as the numpy engine.

This module imports torch; import it through :mod:`camforensics.accel`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import torch

from camforensics.accel.device import torch_device
from camforensics.accel.torch_residual import (
    denoise_channels,
    finish_residual,
    grey,
    image_to_channels,
    to_numpy,
)
from camforensics.core.fingerprint import Fingerprint, FingerprintAccumulator, fingerprint_input
from camforensics.core.params import FingerprintParams
from camforensics.core.residual import notch_axes
from camforensics.errors import ParameterError


def intensity_weight(channels: torch.Tensor, *, knee: float, spread: float) -> torch.Tensor:
    """``I / knee`` below the knee, ``exp(-(I - knee)**2 / spread)`` above (twin of ``core.fingerprint``)."""
    below = channels * (1.0 / knee)
    above = torch.exp(-((channels - knee) ** 2) / spread)
    return torch.where(channels < knee, below, above)


def saturation_mask(channels: torch.Tensor, *, level: float) -> torch.Tensor:
    """Usable-pixel mask of each channel of ``(C, H, W)``: False on clipped plateaus (twin of ``core.fingerprint``).

    A pixel is saturated when its channel's maximum exceeds ``level``, it equals that maximum and a 4-neighbour
    equals it too.
    """
    peak = channels.amax(dim=(1, 2), keepdim=True)
    at_max = (channels == peak) & (peak > level)
    equal_neighbour = torch.zeros_like(at_max)
    equal_neighbour[:, 1:, :] |= at_max[:, :-1, :]
    equal_neighbour[:, :-1, :] |= at_max[:, 1:, :]
    equal_neighbour[:, :, 1:] |= at_max[:, :, :-1]
    equal_neighbour[:, :, :-1] |= at_max[:, :, 1:]
    return ~(at_max & equal_neighbour)


class FingerprintAccumulatorTorch:
    """Streaming MLE fingerprint on a torch device; the interface and result of ``FingerprintAccumulator``.

    ``K_c = sum_i W_ic * w_ic / (sum_i w_ic**2 + 1)`` per colour channel c, with w the intensity weight times the
    saturation mask; ``finish`` combines the channels to grey, removes CFA-lattice means and applies the DFT
    Wiener filter. Memory on the device: two float32 planes per channel plus one image's work.

    Parameters
    ----------
    params : FingerprintParams, keyword-only
    device : str, keyword-only
        A torch device: ``"cuda"``, ``"cuda:N"`` or ``"cpu"`` (torch on the CPU, for tests).

    Raises
    ------
    ParameterError
        If the device is not usable.

    References
    ----------
    Chen, Fridrich, Goljan, Lukas, "Determining image origin and integrity using sensor noise",
    IEEE TIFS 3(1), 2008.
    """

    def __init__(self, *, params: FingerprintParams = FingerprintParams(), device: str = "cuda") -> None:
        self.params = params
        self.device = torch_device(device)
        self.n_images = 0
        self._num: torch.Tensor | None = None  # (C, H, W)
        self._den: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, ...] | None:
        if self._num is None:
            return None
        c, h, w = self._num.shape
        return (h, w, c)

    @torch.inference_mode()
    def add(self, image: np.ndarray) -> None:
        """Add one image (HxW or HxWxC, 0..255 scale, sensor order). Not modified.

        Raises
        ------
        SizeMismatchError
            If its size or channel count differs from the images added before.
        """
        a = fingerprint_input(image, self.shape)
        p = self.params
        x = image_to_channels(a, self.device)
        noise = denoise_channels(x, params=p.residual)
        weight = intensity_weight(x, knee=p.intensity_knee, spread=p.intensity_spread)
        weight *= saturation_mask(x, level=p.saturation_level)
        del x
        if self._num is None:
            self._num = torch.zeros_like(weight)
            self._den = torch.zeros_like(weight)
        self._num.add_(noise.mul_(weight))
        self._den.add_(weight.mul_(weight))
        self.n_images += 1

    @torch.inference_mode()
    def finish(self) -> Fingerprint:
        """Return the fingerprint of the images added so far (a float32 numpy K).

        Raises
        ------
        ParameterError
            If no image was added.
        """
        if self._num is None or self._den is None:
            raise ParameterError("a fingerprint needs at least one image; none was added")
        channels = self._num / (self._den + 1.0)
        # Li's enhancement is a query-side option, as in the numpy engine.
        post = dataclasses.replace(self.params.residual, enhance_alpha=None)
        k = to_numpy(finish_residual(grey(channels), params=post))
        if self.params.axis_notch > 0:  # the numpy engine's notch, on the host (one FFT pair per fingerprint)
            k = notch_axes(k, self.params.axis_notch)
        return Fingerprint(k=k, n_images=self.n_images, params=self.params)


    def to_accumulator(self) -> FingerprintAccumulator:
        """The sums so far as a numpy :class:`FingerprintAccumulator` (to merge shares computed elsewhere)."""
        if self._num is None or self._den is None:
            return FingerprintAccumulator(params=self.params)
        num = [to_numpy(c) for c in self._num]
        den = [to_numpy(c) for c in self._den]
        return FingerprintAccumulator.from_sums(num, den, self.n_images, params=self.params)


def estimate_fingerprint_torch(
    images: Iterable[np.ndarray], *, params: FingerprintParams = FingerprintParams(), device: str = "cuda"
) -> Fingerprint:
    """Torch twin of ``core.fingerprint.estimate_fingerprint``: images consumed one at a time on ``device``.

    Raises
    ------
    ParameterError
        If ``images`` is empty or the device is not usable.
    SizeMismatchError
        If the images differ in size.
    """
    acc = FingerprintAccumulatorTorch(params=params, device=device)
    for image in images:
        acc.add(image)
    return acc.finish()

"""Noise residuals in torch: the definition of :mod:`camforensics.core.residual`, run on a GPU (or torch CPU).

Every step mirrors the numpy engine: mirror padding to a multiple of ``2**levels``, periodized ``levels``-level
DWT (:mod:`camforensics.accel.torch_wavelet`), local-variance Wiener gain over square windows with zeros beyond
the border (``avg_pool2d(count_include_pad=True)`` == ``cv2.boxFilter(BORDER_CONSTANT)`` ==
``scipy.ndimage.uniform_filter(mode="constant")``), approximation zeroed, inverse DWT, grey weights, optional Li
enhancement, CFA-lattice zero-mean and the DFT Wiener filter with ``sigma = std(W)``. Colour channels go through
the wavelet denoiser as one batch. Work is float32 on the device; results come back as float32 numpy arrays.

This module imports torch; import it through :mod:`camforensics.accel`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from camforensics.accel.device import torch_device
from camforensics.accel.torch_wavelet import PeriodizedDwt2
from camforensics.core.denoise import min_image_side
from camforensics.core.params import GREY_WEIGHTS, ResidualParams
from camforensics.errors import ParameterError


def image_to_channels(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """An HxW or HxWxC numpy image as a float32 ``(C, H, W)`` tensor on ``device`` (uploaded in its own dtype)."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ParameterError(f"expected an HxW or HxWxC image, got shape {np.shape(image)}")
    if a.dtype == np.float64:
        a = a.astype(np.float32)  # the numpy engine works in float32 too; halve the transfer
    t = torch.from_numpy(np.ascontiguousarray(a)).to(device, non_blocking=False)
    return t.permute(2, 0, 1).to(torch.float32).contiguous()


def wiener_noise_gain(coeffs: torch.Tensor, noise_var: float, *, windows: tuple[int, ...]) -> torch.Tensor:
    """Torch twin of :func:`camforensics.core.denoise.wiener_noise_gain` on ``(N, C, h, w)`` planes.

    Local means of ``coeffs**2`` over each square window (zeros beyond the border), running minimum, then
    ``noise_var / (max(0, min - noise_var) + noise_var)``.
    """
    energy = coeffs * coeffs
    local = None
    for w in windows:
        m = F.avg_pool2d(energy, w, stride=1, padding=w // 2, count_include_pad=True)
        local = m if local is None else torch.minimum(local, m, out=local)
    del energy
    s2 = float(noise_var)
    var = local.sub_(s2).clamp_(min=0.0).add_(s2)
    return var.reciprocal_().mul_(s2)


def _mirror_pad_end(x: torch.Tensor, block: int) -> torch.Tensor:
    # np.pad(mode="symmetric") at the bottom/right: the edge sample is repeated (half-sample symmetry).
    for dim in (1, 2):
        n = x.shape[dim]
        extra = (-n) % block
        if extra:
            idx = torch.arange(n + extra, device=x.device)
            idx = torch.where(idx < n, idx, 2 * n - 1 - idx)
            x = x.index_select(dim, idx)
    return x


def denoise_channels(channels: torch.Tensor, *, params: ResidualParams) -> torch.Tensor:
    """Wavelet noise of a ``(C, H, W)`` batch of channels (torch twin of ``denoise_channel``), same shape.

    Raises
    ------
    ParameterError
        If a side is too small for the decomposition.
    """
    _, h, w = channels.shape
    min_side = min_image_side(params)
    if min(h, w) < min_side:
        raise ParameterError(
            f"image of {w}x{h} pixels is too small for a {params.levels}-level {params.wavelet} decomposition "
            f"(needs >= {min_side} pixels per side); use fewer levels"
        )
    dwt = PeriodizedDwt2(params.wavelet, channels.device)
    x = _mirror_pad_end(channels, 2**params.levels)
    approx, details = dwt.wavedec(x, params.levels)
    del x
    noise_var = params.sigma0**2
    for d in details:
        d.mul_(wiener_noise_gain(d, noise_var, windows=params.windows))  # our own tensors: edit in place
    noise = dwt.waverec(torch.zeros_like(approx), details)
    return noise[:, :h, :w]


def grey(channels: torch.Tensor) -> torch.Tensor:
    """Weighted grey sum of a ``(C, H, W)`` tensor with C = 1 or 3 (RGB order), ``(H, W)``."""
    c = channels.shape[0]
    if c == 1:
        return channels[0]
    if c != 3:
        raise ParameterError(f"expected 1 or 3 channels, got {c}")
    weights = torch.tensor(GREY_WEIGHTS, dtype=channels.dtype, device=channels.device)
    return torch.tensordot(weights, channels, dims=1)


def zero_mean_cfa(residual: torch.Tensor) -> torch.Tensor:
    """Row then column means removed on each 2x2 CFA sub-lattice (on a copy), as the numpy engine does."""
    out = residual.clone()
    for dy in (0, 1):
        for dx in (0, 1):
            sub = out[dy::2, dx::2]  # a view: edits land in ``out``
            if sub.numel() == 0:
                continue
            sub -= sub.mean(dim=1, keepdim=True)
            sub -= sub.mean(dim=0, keepdim=True)
    return out


def wiener_dft(residual: torch.Tensor, sigma: float, *, windows: tuple[int, ...]) -> torch.Tensor:
    """Adaptive Wiener filter of the Fourier magnitude, phase kept (torch twin of ``core.residual.wiener_dft``)."""
    if not sigma > 0:
        return residual.clone()
    h, w = residual.shape
    spectrum = torch.fft.fft2(residual)
    magnitude = spectrum.abs().div_(float(np.sqrt(h * w)))
    gain = wiener_noise_gain(magnitude[None, None], float(sigma) ** 2, windows=windows)[0, 0]
    del magnitude
    spectrum.mul_(gain)
    del gain
    return torch.fft.ifft2(spectrum).real.contiguous()


def enhance_spn(residual: torch.Tensor, *, alpha: float) -> torch.Tensor:
    """Li's enhanced SPN ``sign(n) * exp(-0.5 * n**2 / alpha**2)`` (torch twin of ``core.residual.enhance_spn``)."""
    out = torch.exp(residual * residual * (-0.5 / alpha**2))
    return torch.copysign(out, residual)


def finish_residual(grey_residual: torch.Tensor, *, params: ResidualParams) -> torch.Tensor:
    """Enhancement (if asked), CFA zero-mean and DFT Wiener of a grey ``(H, W)`` residual on the device."""
    w = grey_residual
    if params.enhance_alpha is not None:
        w = enhance_spn(w, alpha=params.enhance_alpha)
    if params.zero_mean:
        w = zero_mean_cfa(w)
    if params.wiener_dft:
        w = wiener_dft(w, float(torch.std(w, correction=0)), windows=params.windows)
    return w


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A float32 numpy copy of a device tensor."""
    return t.detach().to("cpu", torch.float32).numpy().copy()


@torch.inference_mode()
def channel_noise_torch(
    image: np.ndarray, *, params: ResidualParams = ResidualParams(), device: str = "cuda"
) -> list[np.ndarray]:
    """Per-channel wavelet noise of an image, computed with torch (as ``core.residual.extract_channel_noise``).

    Parameters
    ----------
    image : ndarray, HxW or HxWxC
        Pixel values on a 0..255 scale in sensor order. Not modified.
    params : ResidualParams, keyword-only
    device : str, keyword-only
        A torch device: ``"cuda"``, ``"cuda:N"`` or ``"cpu"`` (torch on the CPU, for tests).

    Returns
    -------
    list of ndarray, float32, HxW
        One noise plane per channel.

    Raises
    ------
    ParameterError
        If the image is too small, or the device is not usable.
    """
    dev = torch_device(device)
    noise = denoise_channels(image_to_channels(image, dev), params=params)
    return [to_numpy(n) for n in noise]


@torch.inference_mode()
def extract_residual_torch(
    image: np.ndarray, *, params: ResidualParams = ResidualParams(), device: str = "cuda"
) -> np.ndarray:
    """Noise residual W of an image, computed with torch (same definition as ``core.residual.extract_residual``).

    Parameters
    ----------
    image : ndarray, HxW or HxWx3
        Pixel values on a 0..255 scale, RGB order, in sensor order. Not modified.
    params : ResidualParams, keyword-only
    device : str, keyword-only
        A torch device: ``"cuda"``, ``"cuda:N"`` or ``"cpu"`` (torch on the CPU, for tests).

    Returns
    -------
    ndarray, float32, HxW
        Equal to the numpy engine's residual within float32 rounding (correlation > 0.9999).

    Raises
    ------
    ParameterError
        If the image is too small, or the device is not usable.

    References
    ----------
    Lukas, Fridrich, Goljan, IEEE TIFS 1(2), 2006, Appendix A; Chen, Fridrich, Goljan, Lukas, IEEE TIFS 3(1), 2008.
    """
    dev = torch_device(device)
    noise = denoise_channels(image_to_channels(image, dev), params=params)
    w = finish_residual(grey(noise), params=params)
    del noise
    return to_numpy(w)

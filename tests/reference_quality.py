"""The hand-written PSNR and SSIM of camforensics before scikit-image: the reference its replacement is tested against.

The per-channel SSIM map (11x11 Gaussian window, sigma 1.5, population covariances, valid windows) is the
package's own ``_ssim_channel``, which still serves images under 11 pixels a side; what this module keeps is the old
composition for every size and the old PSNR formula.
"""

from __future__ import annotations

import math

import numpy as np

from camforensics.core.quality import PEAK, _pair, _ssim_channel


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """``10 log10(255^2 / MSE)`` over all pixels and channels; ``inf`` for identical images."""
    x, y = _pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(PEAK**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang, Bovik, Sheikh, Simoncelli 2004) of each channel by the hand-written map, mean over channels."""
    x, y = _pair(a, b)
    if x.ndim == 2:
        return _ssim_channel(x, y)
    return float(np.mean([_ssim_channel(np.ascontiguousarray(x[:, :, c]), np.ascontiguousarray(y[:, :, c]))
                          for c in range(x.shape[2])]))

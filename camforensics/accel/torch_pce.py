"""PCE in torch: the cross-correlation and peak statistics of ``core.pce.compute_pce`` on a GPU.

The correlation plane never leaves the device; only the peak, the energy sums and the peak position come back.

This module imports torch; import it through :mod:`camforensics.accel`.
"""

from __future__ import annotations


import numpy as np
import torch

from camforensics.accel.device import torch_device
from camforensics.core.pce import PceResult, pce_result, signed_shift
from camforensics.errors import SizeMismatchError


def _centred(a: np.ndarray, device: torch.device) -> tuple[torch.Tensor, float]:
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)
    t = t - t.mean(dtype=torch.float64).to(torch.float32)
    return t, float(torch.sum(t.double().square()).sqrt())


def cross_correlate(a: np.ndarray, b: np.ndarray, device: torch.device) -> torch.Tensor:
    """Normalised circular cross-correlation of two same-shape 2-D arrays on ``device`` (twin of ``core.pce``).

    Both are made zero-mean (on copies); index (dy, dx) holds the correlation when ``b`` is moved down by dy and
    right by dx; (0, 0) is the NCC.
    """
    ta, norm_a = _centred(a, device)
    tb, norm_b = _centred(b, device)
    prod = torch.fft.rfft2(ta)
    del ta
    prod.mul_(torch.fft.rfft2(tb).conj_physical_())
    del tb
    cc = torch.fft.irfft2(prod, s=tuple(a.shape))
    denom = norm_a * norm_b
    if denom > 0:
        cc /= denom
    return cc


@torch.inference_mode()
def pce_torch(
    query_signal: np.ndarray,
    k: np.ndarray,
    *,
    shift_range: tuple[int, int] = (0, 0),
    exclusion: int = 11,
    device: str = "cuda",
) -> PceResult:
    """PCE of a query signal against a reference (fingerprint) of the same shape, computed with torch.

    Same semantics as :func:`camforensics.core.pce.compute_pce`: the peak is the correlation at zero shift or the
    maximum within ``+-shift_range``; the energy is the mean of ``cc**2`` over all shifts outside an
    ``exclusion`` x ``exclusion`` square centred on the peak (wrapping around the borders); sums in float64.

    Parameters
    ----------
    query_signal, k : ndarray, 2-D, same shape
        E.g. ``W * I`` of a query image and a fingerprint K. Not modified.
    shift_range : (int, int), keyword-only
        Largest |dy|, |dx| searched. (0, 0) tests zero shift only.
    exclusion : int, keyword-only
        Odd side of the square left out of the energy; 11 in Goljan's code.
    device : str, keyword-only
        A torch device: ``"cuda"``, ``"cuda:N"`` or ``"cpu"`` (torch on the CPU, for tests).

    Returns
    -------
    PceResult

    Raises
    ------
    SizeMismatchError
        If the shapes differ.
    ParameterError
        If the device is not usable.

    References
    ----------
    Goljan, Fridrich, Filler, "Large scale test of sensor fingerprint camera identification", Proc. SPIE 7254,
    2009.
    """
    a, b = np.asarray(query_signal), np.asarray(k)
    if a.shape != b.shape or a.ndim != 2:
        raise SizeMismatchError(f"cannot correlate arrays of shapes {a.shape} and {b.shape}")
    dev = torch_device(device)
    cc = cross_correlate(a, b, dev)
    h, w = cc.shape
    ry, rx = min(int(shift_range[0]), (h - 1) // 2), min(int(shift_range[1]), (w - 1) // 2)
    if ry == 0 and rx == 0:
        py, px = 0, 0
    else:
        rows = torch.arange(-ry, ry + 1, device=dev) % h
        cols = torch.arange(-rx, rx + 1, device=dev) % w
        window = cc.index_select(0, rows).index_select(1, cols)
        flat_index = int(torch.argmax(window))
        iy, ix = divmod(flat_index, window.shape[1])
        py, px = int(rows[iy]), int(cols[ix])
    peak = float(cc[py, px])
    half = exclusion // 2
    # Tiny index sets: np.unique keeps a window wider than the plane from counting a shift twice.
    rows = torch.from_numpy(np.unique(np.arange(py - half, py + half + 1) % h)).to(dev)
    cols = torch.from_numpy(np.unique(np.arange(px - half, px + half + 1) % w)).to(dev)
    near = cc.index_select(0, rows).index_select(1, cols).double()
    total = float(torch.sum(cc.double().square()))
    near_energy = float(torch.sum(near.square()))
    del cc
    n_out = h * w - near.numel()
    energy = (total - near_energy) / n_out if n_out > 0 else 0.0
    return pce_result(peak, energy, signed_shift(py, px, (h, w)), (2 * ry + 1) * (2 * rx + 1))

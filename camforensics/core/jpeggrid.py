"""Where the 8x8 block grid of a decoded JPEG lies in an image (a crop keeps its source's grid).

A JPEG is coded in 8x8 blocks from its top-left corner, and most of each block's AC DCT coefficients are quantized
to zero. Decoded and cropped anywhere, the image still holds those blocks: at the grid's phase ``(py, px)`` (the
row and column where a block starts, 0..7) the block DCT of the pixels has far more near-zero AC coefficients
than at any other phase, where every block straddles four coded ones. A crop search uses the phase to score first
the offsets that put the query's grid on the sensor's (the camera codes its frames from the sensor's top-left
corner), 64 times fewer than all of them (:func:`camforensics.core.matching.match_crop`).

The confidence is the gap between the best phase's share of near-zero coefficients and the second's, in
standard deviations of the 63 other phases' shares. On real camera photos (the natural photos of real-dev and
real-models, 512x512 crops at random positions) the right phase scores 2.8 or more; images without a grid
(resampled, so the blocks are gone) 1.6 at most (``bench/bench_small_crops.py`` reports both).

References
----------
Z. Fan, R. L. de Queiroz, "Identification of bitmap compression history: JPEG detection and quantizer estimation",
IEEE TIP 12(2), 2003 (block grid of decoded JPEGs).
M. Goljan, J. Fridrich, "Camera identification from cropped and scaled images", Proc. SPIE 6819, 2008.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from camforensics.errors import ParameterError

BLOCK = 8
# Largest side of the centre window whose phase is measured: 512 x 512 pixels hold 4096 blocks, enough for every
# photo measured, and keep the 64 block DCTs under a few tens of milliseconds.
WINDOW = 512
# Smallest confidence at which a phase is used (see the module docstring: 2.8 and more with a grid, 1.6 at most
# without one).
MIN_CONFIDENCE = 2.0
# An AC coefficient counts as zero below this magnitude: the rounding of decoded pixels to integers spreads a
# zero-quantized coefficient by a standard deviation of about 0.3 (orthonormal DCT), so 1.0 keeps nearly all.
ZERO_TOLERANCE = 1.0


@functools.cache
def _dct() -> np.ndarray:
    """The orthonormal 8-point DCT-II matrix (float32), made on first use: scipy.fft is imported by crop searches
    only, never by an aligned one (camforensics.runtime.fft)."""
    import scipy.fft

    return scipy.fft.dct(np.eye(BLOCK), norm="ortho", axis=0).astype(np.float32)


@dataclass(frozen=True)
class GridPhase:
    """The block-grid phase of an image: blocks start at rows ``py + 8 j`` and columns ``px + 8 i``."""

    phase: tuple[int, int]  # (py, px), 0..7
    confidence: float  # gap of the best phase over the second, in standard deviations of the others

    @property
    def found(self) -> bool:
        """Whether the phase is clear enough to be used (``confidence >= MIN_CONFIDENCE``)."""
        return self.confidence >= MIN_CONFIDENCE

    def to_dict(self) -> dict[str, object]:
        return {"phase": list(self.phase), "confidence": round(self.confidence, 3), "found": self.found}


def zero_shares(grey: np.ndarray, *, tolerance: float = ZERO_TOLERANCE) -> np.ndarray:
    """8x8 array: for each phase ``(py, px)``, the share of the block DCT's AC coefficients of ``grey`` (0..255
    scale) whose magnitude is below ``tolerance``. Not modified.

    Raises
    ------
    ParameterError
        An image that is not 2-D or has a side under 16 pixels.
    """
    g = np.asarray(grey, dtype=np.float32)
    if g.ndim != 2 or min(g.shape) < 2 * BLOCK:
        raise ParameterError(f"a block-grid phase needs a 2-D image of at least 16x16 pixels, got shape {g.shape}")
    g = g - np.float32(128.0)
    dct = _dct()
    shares = np.zeros((BLOCK, BLOCK))
    for px in range(BLOCK):
        cols = g[:, px:]
        nw = cols.shape[1] // BLOCK
        along_x = (cols[:, : nw * BLOCK].reshape(cols.shape[0], nw, BLOCK) @ dct.T).reshape(cols.shape[0], nw * BLOCK)
        for py in range(BLOCK):
            nh = (along_x.shape[0] - py) // BLOCK
            blocks = along_x[py : py + nh * BLOCK].reshape(nh, BLOCK, nw * BLOCK)  # block row, y, (block column, u)
            coeffs = np.matmul(dct, blocks)  # block row, v, (block column, u): one batched product
            zero = np.count_nonzero(np.abs(coeffs) < tolerance)
            zero -= np.count_nonzero(np.abs(coeffs[:, 0, ::BLOCK]) < tolerance)  # the DC coefficients do not count
            shares[py, px] = zero / (nh * nw * (BLOCK * BLOCK - 1))
    return shares


def grid_phase(grey: np.ndarray, *, window: int = WINDOW) -> GridPhase:
    """The JPEG block-grid phase of an image and its confidence, measured on its centre window (at most
    ``window`` x ``window`` pixels). Not modified.

    Raises
    ------
    ParameterError
        An image that is not 2-D or has a side under 16 pixels.
    """
    g = np.asarray(grey)
    if g.ndim != 2:
        raise ParameterError(f"a block-grid phase needs a 2-D image, got shape {g.shape}")
    h, w = g.shape
    y0, x0 = max(0, (h - window) // 2), max(0, (w - window) // 2)
    shares = zero_shares(g[y0 : y0 + window, x0 : x0 + window])
    order = np.sort(shares.ravel())
    spread = float(np.std(order[:-1]))
    confidence = (order[-1] - order[-2]) / spread if spread > 0 else 0.0
    wy, wx = np.unravel_index(int(np.argmax(shares)), shares.shape)
    return GridPhase(phase=((int(wy) + y0) % BLOCK, (int(wx) + x0) % BLOCK), confidence=float(confidence))


def grid_offsets(phase: tuple[int, int], window: tuple[slice, slice]) -> tuple[slice, slice]:
    """The offsets of ``window`` (rows, columns of a crop's top-left corner on the sensor) that put a query whose
    grid has ``phase`` on the sensor's grid (which starts at 0): ``oy + py`` and ``ox + px`` multiples of 8.
    Strided slices into the window's offsets (empty when none falls inside)."""
    ys, xs = window
    first_y = ys.start + (-(ys.start + phase[0])) % BLOCK
    first_x = xs.start + (-(xs.start + phase[1])) % BLOCK
    return slice(first_y, ys.stop, BLOCK), slice(first_x, xs.stop, BLOCK)

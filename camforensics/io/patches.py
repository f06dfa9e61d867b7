"""Patches of images with their positions, Dih4 augmentation and the Bondi et al. quality filter.

Pure numpy, no I/O: arrays in, arrays out. Images are HxW or HxWxC on a 0..255 scale (uint8, or float for
16-bit sources). Patch batches are (N, size, size) or (N, size, size, C); positions are (N, 2) int64 arrays
of the top-left corner (y, x) in the source image's stored (sensor) pixel order. The streaming sampler over
whole data sets is :class:`camforensics.io.patch_stream.PatchStream`.

References
----------
.. [1] L. Bondi, L. Baroffio, D. Guera, P. Bestagini, E. J. Delp, S. Tubaro, "First steps toward camera model
   identification with convolutional neural networks", IEEE Signal Processing Letters 24(3), 2017.
   64x64 patches, stride 64, the 32 best-scoring patches per image (their params.py: patch_num = 32).
.. [2] M. Chen, J. Fridrich, M. Goljan, J. Lukas, "Determining image origin and integrity using sensor noise",
   IEEE TIFS 3(1), 2008 (pixels above 250 treated as saturated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from camforensics.errors import ParameterError

DIH4_ORDER = 8  # elements of the dihedral group of the square: 4 rotations, 4 reflections

# Bondi et al. 2017 [1] quality score Q = ALPHA * mean_c(BETA * (mu_c - mu_c^2))
#                                       + (1 - ALPHA) * mean_c(1 - exp(GAMMA * sigma_c)),
# mu_c, sigma_c: mean and std of channel c on a 0..1 scale. Q is in [0, 1]; 1 = mid-grey and textured.
BONDI_ALPHA = 0.7  # weight of the intensity term
BONDI_BETA = 4.0  # scales mu - mu^2 (at most 1/4) to [0, 1]
BONDI_GAMMA = math.log(0.01)  # texture term reaches 0.99 at sigma = 1 (0..1 scale)


def _check_image(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ParameterError(f"image must be HxW or HxWxC, not an array of shape {arr.shape}")
    return arr


def _check_size(size: int, name: str = "size") -> int:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ParameterError(f"{name} must be a positive integer, not {size!r}")
    return int(size)


def extract_patches(image: np.ndarray, positions: np.ndarray, *, size: int) -> np.ndarray:
    """Copy the ``size`` x ``size`` patches whose top-left corners are ``positions`` (N, 2) of ``(y, x)``.

    Raises
    ------
    ParameterError
        If a patch would leave the image.
    """
    arr = _check_image(image)
    size = _check_size(size)
    pos = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
    h, w = arr.shape[:2]
    if len(pos) and (pos.min() < 0 or (pos[:, 0] + size).max() > h or (pos[:, 1] + size).max() > w):
        raise ParameterError(f"patch positions leave the {h}x{w} image (patch size {size})")
    out = np.empty((len(pos), size, size, *arr.shape[2:]), dtype=arr.dtype)
    for i, (y, x) in enumerate(pos):
        out[i] = arr[y : y + size, x : x + size]
    return out


def grid_positions(shape: tuple[int, ...], *, size: int = 64, stride: int | None = None) -> np.ndarray:
    """Top-left corners (N, 2) of a regular grid of whole patches, row by row, starting at (0, 0)."""
    size = _check_size(size)
    stride = size if stride is None else _check_size(stride, "stride")
    h, w = shape[:2]
    ys = np.arange(0, h - size + 1, stride, dtype=np.int64)
    xs = np.arange(0, w - size + 1, stride, dtype=np.int64)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1)


def grid_patches(image: np.ndarray, *, size: int = 64, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All whole patches of a regular grid (stride defaults to ``size``: non-overlapping, as in [1]).

    Returns
    -------
    patches : ndarray, (N, size, size[, C])
        Copies; the image is not modified and not referenced.
    positions : ndarray of int64, (N, 2)
        Top-left ``(y, x)`` of each patch. N is 0 when the image is smaller than a patch.
    """
    arr = _check_image(image)
    positions = grid_positions(arr.shape, size=size, stride=stride)
    return extract_patches(arr, positions, size=size), positions


def random_positions(
    shape: tuple[int, ...], *, size: int, n: int, rng: np.random.Generator | int, align: int = 1
) -> np.ndarray:
    """``n`` top-left corners drawn uniformly (with replacement) among whole patches, multiples of ``align``.

    ``align=2`` keeps every patch on the same phase of a 2x2 colour filter array.
    """
    size, align = _check_size(size), _check_size(align, "align")
    if n < 0:
        raise ParameterError(f"n must be >= 0, not {n}")
    gen = np.random.default_rng(rng)
    h, w = shape[:2]
    if h < size or w < size:
        return np.zeros((0, 2), dtype=np.int64)
    ys = gen.integers(0, (h - size) // align + 1, size=n) * align
    xs = gen.integers(0, (w - size) // align + 1, size=n) * align
    return np.stack([ys, xs], axis=1).astype(np.int64)


def random_patches(
    image: np.ndarray, *, size: int, n: int, rng: np.random.Generator | int, align: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` patches at random positions (see :func:`random_positions`); returns ``(patches, positions)``."""
    arr = _check_image(image)
    positions = random_positions(arr.shape, size=size, n=n, rng=rng, align=align)
    return extract_patches(arr, positions, size=size), positions


# --- Dih4 -----------------------------------------------------------------------------------------------
# Element k = R^(k % 4) F^(k // 4): first a left-right flip when k >= 4, then k % 4 quarter turns
# counter-clockwise (np.rot90). R^4 = F^2 = 1 and F R F = R^-1.


def _check_k(k: int) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k < DIH4_ORDER:
        raise ParameterError(f"Dih4 element must be an integer 0..7, not {k!r}")
    return int(k)


def apply_dih4(patch: np.ndarray, k: int, *, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Apply Dih4 element ``k`` (0..7) to the two ``axes`` of ``patch``; returns a new contiguous array.

    0..3 rotate by 0, 90, 180, 270 degrees counter-clockwise; 4..7 flip left-right first. Use
    ``axes=(1, 2)`` for a batch (N, h, w[, C]). Non-square arrays are allowed (rotations swap the axes).
    """
    k = _check_k(k)
    arr = np.asarray(patch)
    if k >= 4:
        arr = np.flip(arr, axis=axes[1])
    return np.ascontiguousarray(np.rot90(arr, k % 4, axes=axes))


def dih4_inverse(k: int) -> int:
    """The element undoing ``k``: rotations invert to the opposite turn, reflections are their own inverse."""
    k = _check_k(k)
    return (-k) % 4 if k < 4 else k


def dih4_compose(a: int, b: int) -> int:
    """The element ``c`` with ``apply_dih4(apply_dih4(x, b), a) == apply_dih4(x, c)`` (b first, then a)."""
    a, b = _check_k(a), _check_k(b)
    ra, fa, rb, fb = a % 4, a // 4, b % 4, b // 4
    r = (ra + (-rb if fa else rb)) % 4
    return r + 4 * (fa ^ fb)


def invert_dih4(patch: np.ndarray, k: int, *, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Undo :func:`apply_dih4` with element ``k``."""
    return apply_dih4(patch, dih4_inverse(k), axes=axes)


# --- quality --------------------------------------------------------------------------------------------


def _as_batch(patches: np.ndarray) -> np.ndarray:
    arr = np.asarray(patches)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ParameterError(f"patches must be (N, h, w) or (N, h, w, C), not shape {np.shape(patches)}")
    return arr


def patch_quality(patches: np.ndarray) -> np.ndarray:
    """Bondi et al. [1] quality score of each patch, in [0, 1] (high = mid-grey and textured).

    Parameters
    ----------
    patches : ndarray, (N, h, w) or (N, h, w, C)
        Values on a 0..255 scale.

    Returns
    -------
    ndarray of float64, (N,)
    """
    arr = _as_batch(patches)
    x = arr.reshape(arr.shape[0], -1, arr.shape[-1]).astype(np.float64) / 255.0
    mu, sigma = x.mean(axis=1), x.std(axis=1)  # (N, C)
    intensity = BONDI_BETA * (mu - mu * mu)
    texture = 1.0 - np.exp(BONDI_GAMMA * sigma)
    return BONDI_ALPHA * intensity.mean(axis=1) + (1.0 - BONDI_ALPHA) * texture.mean(axis=1)


@dataclass(frozen=True)
class QualityFilter:
    """Which patches are worth learning from (camera traces survive in mid-tones with texture).

    Saturated pixels carry no sensor noise (clipped) and dark flat patches are dominated by JPEG
    quantisation; Bondi et al. [1] rank patches by :func:`patch_quality` and keep the best 32 per image.
    The score is theirs; the three rejection thresholds below are camforensics engineering choices.
    """

    max_saturated: float = 0.05  # largest share of pixels with any channel >= saturation_level
    saturation_level: float = 250.0  # 0..255 scale; Chen et al. 2008 [2] treat > 250 as saturated
    min_mean: float = 16.0  # mean over pixels and channels, 0..255; darker patches are rejected
    min_std: float = 0.5  # largest per-channel std, 0..255; flatter patches (clipped, synthetic) are rejected
    min_score: float = 0.0  # lowest Bondi score kept (0 keeps every patch that passes the checks above)

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_saturated <= 1.0 or not 0.0 <= self.min_score <= 1.0:
            raise ParameterError("max_saturated and min_score must lie in [0, 1]")

    def scores(self, patches: np.ndarray) -> np.ndarray:
        """Bondi score of each patch, with rejected patches set to -1 (so they sort last)."""
        arr = _as_batch(patches)
        score = patch_quality(arr)
        flat = arr.reshape(arr.shape[0], -1, arr.shape[-1])
        saturated = (flat >= self.saturation_level).any(axis=2).mean(axis=1)
        mean = flat.mean(axis=(1, 2), dtype=np.float64)
        std = flat.std(axis=1, dtype=np.float64).max(axis=1)
        ok = (saturated <= self.max_saturated) & (mean >= self.min_mean) & (std >= self.min_std)
        ok &= score >= self.min_score
        return np.where(ok, score, -1.0)

    def mask(self, patches: np.ndarray) -> np.ndarray:
        """Boolean (N,): True for patches that pass."""
        return self.scores(patches) >= 0.0


def select_patches(
    patches: np.ndarray, positions: np.ndarray, *, keep: int | None = None, quality: QualityFilter | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop rejected patches and keep the ``keep`` best-scoring ones (all when None), as in [1].

    Ties keep the earlier patch. Returns ``(patches, positions, scores)`` in descending score order.
    """
    q = quality or QualityFilter()
    scores = q.scores(patches)
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] >= 0.0]
    if keep is not None:
        order = order[: _check_size(keep, "keep")] if keep else order[:0]
    return np.asarray(patches)[order], np.asarray(positions)[order], scores[order]

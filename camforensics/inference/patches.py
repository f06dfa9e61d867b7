"""Deterministic patch selection for image-level decisions of the deep models (training validation and inference).

The same rule is used when a model is validated during training and when it attributes an evidence image, so
the figures in a model's manifest describe exactly what ``identify`` does.
"""

from __future__ import annotations

import numpy as np

from camforensics.core.modelinput import check_preprocessor, encode_input
from camforensics.io.patches import (
    QualityFilter,
    extract_patches,
    grid_positions,
    select_patches,
)


def decision_patches(
    pixels: np.ndarray,
    *,
    preprocessor: str,
    size: int = 64,
    n: int = 64,
    quality: QualityFilter | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best patches of an image's non-overlapping grid, as a model batch.

    The image is encoded for ``preprocessor`` (:func:`camforensics.core.modelinput.encode_input`), cut into a
    grid of ``size`` x ``size`` patches aligned to the 2x2 CFA phase (grid origin (0, 0)), patches that fail the
    quality filter (saturated, dark, flat) are dropped, and the ``n`` with the highest Bondi score are kept. When
    every patch fails, the whole grid is used (a flat-field or dark image still gets a decision, from the patches
    it has).

    Returns
    -------
    batch : ndarray, float32, (N, 3, size, size)
        NCHW on the 0..255 scale, ready for the graph.
    positions : ndarray, int64, (N, 2)
        Top-left (y, x) of each patch in stored pixel order.
    """
    x = np.asarray(pixels)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    if check_preprocessor(preprocessor) == "WW":
        x = encode_input(x, preprocessor)
    # Other preprocessors filter inside the graph: patches are cut from the stored pixels (uint8 stays uint8
    # until the kept patches are converted) and are identical to encode_input's output.
    if min(x.shape[:2]) < size:
        raise ValueError(f"image of {x.shape[1]}x{x.shape[0]} pixels is smaller than one {size}x{size} patch")
    positions = grid_positions(x.shape, size=size)
    patches = extract_patches(x, positions, size=size)
    kept, kept_pos, _ = select_patches(patches, positions, keep=n, quality=quality)
    if len(kept) == 0:
        kept, kept_pos = patches[:n], positions[:n]
    batch = np.ascontiguousarray(np.transpose(kept, (0, 3, 1, 2)), dtype=np.float32)
    return batch, np.asarray(kept_pos, dtype=np.int64)


def aggregate_log_probs(log_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image decision from patch log-probabilities (N, C): mean log-probability per class and its softmax.

    The mean log-probability is the log of the patches' geometric-mean probability; its softmax is reported as
    the class probability of the image. Returns ``(mean_log_probs, probabilities)``, both (C,).
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.ndim != 2 or lp.shape[0] == 0:
        raise ValueError(f"expected (N, C) log-probabilities with N >= 1, got shape {lp.shape}")
    mean = lp.mean(axis=0)
    z = mean - mean.max()
    p = np.exp(z)
    return mean, p / p.sum()

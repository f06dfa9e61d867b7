"""Deterministic patch selection for image-level decisions of the deep models (training validation and inference).

The same rule is used when a model is validated during training and when it attributes an evidence image, so
the figures in a model's manifest describe exactly what ``identify`` does.
"""

from __future__ import annotations

import numpy as np

from camforensics.core.modelinput import check_preprocessor, encode_input
from camforensics.errors import ParameterError
from camforensics.io.patches import BONDI_ALPHA, BONDI_BETA, BONDI_GAMMA, QualityFilter, extract_patches, grid_positions


def decision_patches(
    pixels: np.ndarray,
    *,
    preprocessor: str,
    size: int = 64,
    n: int = 64,
    quality: QualityFilter | None = None,
    window: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best patches of an image's non-overlapping grid, as a model batch.

    With ``window`` > 0 the grid covers only the centred ``window`` x ``window`` region (:func:`centre_window`),
    so a full frame and a centred crop of it (a camera's 1024x1024 crop, as in the data sets) are judged on the
    same pixels: without it a 12 MP frame's best patches come from anywhere in the frame (sky, corners with lens
    shading) and its decision need not agree with its crop's.

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
        raise ParameterError(f"image of {x.shape[1]}x{x.shape[0]} pixels is smaller than one {size}x{size} patch")
    y0, x0 = centre_window(x.shape, window) if window else (0, 0)
    if window:
        x = x[y0 : y0 + window, x0 : x0 + window]
    positions = grid_positions(x.shape, size=size)
    scores = grid_scores(x, size=size, quality=quality or QualityFilter())
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] >= 0.0][:n]
    if len(order) == 0:
        order = np.arange(min(n, len(positions)))
    kept_pos = positions[order]
    kept = extract_patches(x, kept_pos, size=size)
    batch = np.ascontiguousarray(np.transpose(kept, (0, 3, 1, 2)), dtype=np.float32)
    return batch, np.asarray(kept_pos, dtype=np.int64) + np.array([y0, x0], np.int64)


WINDOW_ALIGN = 16  # a JPEG MCU (4:2:0): keeps the 8x8 DCT grid, the chroma grid and the 2x2 CFA phase


def centre_window(shape: tuple[int, ...], window: int) -> tuple[int, int]:
    """Top-left ``(y, x)`` of the centred ``window`` x ``window`` region: ``((dim - window) // 2)`` rounded down to
    a multiple of 16, the rule of a lossless MCU-aligned centre crop (``jpegtran -crop``), so the window of a full
    frame is, pixel for pixel, the 1024x1024 crop of the data sets. A side shorter than ``window`` is used whole."""
    h, w = shape[:2]
    y0 = max(0, (h - window) // 2) // WINDOW_ALIGN * WINDOW_ALIGN
    x0 = max(0, (w - window) // 2) // WINDOW_ALIGN * WINDOW_ALIGN
    return int(y0), int(x0)


def grid_scores(image: np.ndarray, *, size: int, quality: QualityFilter) -> np.ndarray:
    """:meth:`QualityFilter.scores` of every patch of the non-overlapping grid, in grid order, without cutting the
    patches out: cell means of the pixels, their squares and the saturation mask by OpenCV's area resampling (exact
    box means for an integer factor), one band of grid rows at a time (a 12 MP image needs ~50 MB of scratch)."""
    import cv2

    h, w, c = image.shape
    gh, gw = h // size, w // size
    out = np.empty((gh, gw), np.float64)
    rows_per_band = 8
    for r0 in range(0, gh, rows_per_band):
        r1 = min(gh, r0 + rows_per_band)
        band = np.ascontiguousarray(image[r0 * size : r1 * size, : gw * size])
        shape = (gw, r1 - r0)
        if band.dtype == np.uint8:  # exact integer sums: rows first (contiguous adds), then within each cell
            rows = r1 - r0
            cells = band.reshape(rows, size, gw * size, c)
            sums = cells.sum(axis=1, dtype=np.uint32).reshape(rows, gw, size, c).sum(axis=2, dtype=np.uint64)
            wide = cells.astype(np.uint16)
            np.multiply(wide, wide, out=wide)  # 255**2 fits in uint16
            sq = wide.sum(axis=1, dtype=np.uint32).reshape(rows, gw, size, c).sum(axis=2, dtype=np.uint64)
            npix = size * size
            mean_c, sq_c = sums.astype(np.float64) / npix, sq.astype(np.float64) / npix
        else:
            band = band.astype(np.float32, copy=False)
            mean_c = cv2.resize(band, shape, interpolation=cv2.INTER_AREA).astype(np.float64).reshape(r1 - r0, gw, c)
            sq_c = cv2.resize(band * band, shape, interpolation=cv2.INTER_AREA).astype(np.float64)
            sq_c = sq_c.reshape(r1 - r0, gw, c)
        channels = cv2.split(band)
        brightest = channels[0]
        for ch in channels[1:]:
            brightest = cv2.max(brightest, ch)
        hot = (brightest >= quality.saturation_level).astype(np.float32)
        saturated = cv2.resize(hot, shape, interpolation=cv2.INTER_AREA).astype(np.float64).reshape(r1 - r0, gw)
        std_c = np.sqrt(np.maximum(sq_c - mean_c * mean_c, 0.0))
        mu, sigma = mean_c / 255.0, std_c / 255.0
        intensity = (BONDI_BETA * (mu - mu * mu)).mean(axis=2)
        texture = (1.0 - np.exp(BONDI_GAMMA * sigma)).mean(axis=2)
        score = BONDI_ALPHA * intensity + (1.0 - BONDI_ALPHA) * texture
        ok = (saturated <= quality.max_saturated + 1e-6) & (mean_c.mean(axis=2) >= quality.min_mean)
        ok &= (std_c.max(axis=2) >= quality.min_std) & (score >= quality.min_score)
        out[r0:r1] = np.where(ok, score, -1.0)
    return out.ravel()


def aggregate_log_probs(log_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image decision from patch log-probabilities (N, C): mean log-probability per class and its softmax.

    The mean log-probability is the log of the patches' geometric-mean probability; its softmax is reported as
    the class probability of the image. Returns ``(mean_log_probs, probabilities)``, both (C,).
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.ndim != 2 or lp.shape[0] == 0:
        raise ParameterError(f"expected (N, C) log-probabilities with N >= 1, got shape {lp.shape}")
    mean = lp.mean(axis=0)
    z = mean - mean.max()
    p = np.exp(z)
    return mean, p / p.sum()

"""Run a learned anonymizer (a registered ONNX graph) on whole images of any size, tile by tile, numpy only.

The graphs are fully convolutional but a 12 MP image at once needs gigabytes of activations, so the image is cut
into tiles. Each tile is run with ``overlap`` pixels of extra context on every side that has image there (so the
tile's own pixels see what they would see in the whole image), and neighbouring tiles overlap by ``overlap``
pixels, blended with raised-cosine weights (sin^2 / cos^2 ramps that sum to one) so no seam shows. Tile origins
are multiples of 4: the 2x2 CFA grid the Cama generator re-mosaics on, and its two stride-2 stages, stay those of
the whole image.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from camforensics.errors import ParameterError
from camforensics.inference.registry import LoadedModel

TASK_TARGETED = "targeted-anonymization"
TASK_ERASE = "trace-erasing"
TASKS: tuple[str, ...] = (TASK_TARGETED, TASK_ERASE)
DEFAULT_TILE = 512  # pixels per tile side (activations of a width-16 generator: ~100 MB per 512x512 tile)
DEFAULT_OVERLAP = 32  # pixels of overlap and of context (about the generator's receptive-field radius)
ALIGN = 4  # tile origins and sizes: multiples of this (CFA cell 2x2, two stride-2 stages)


def class_key(name: str) -> str:
    """Key of a camera-model name that ignores case, spaces and underscores (``"samsung  gt-i9300"``,
    ``"Samsung_GT-I9300"`` and ``"Samsung GT-I9300"`` are one key); hyphens and digits still count."""
    return re.sub(r"[\s_]+", "", name).casefold()


def resolve_target(target: str | None, classes: Sequence[str], task: str) -> int | None:
    """Index of ``target`` among ``classes`` (exact, else ignoring case, spaces and underscores).

    Raises
    ------
    ParameterError
        A targeted model without a target, an eraser with one, or an unknown target name (the classes are listed).
    """
    if task == TASK_ERASE:
        if target is not None:
            raise ParameterError("this model erases camera traces without a target; drop the target")
        return None
    if target is None:
        raise ParameterError(f"a targeted anonymizer needs a target camera model; choose one of {list(classes)}")
    if target in classes:
        return list(classes).index(target)
    folded = [class_key(c) for c in classes]
    if folded.count(class_key(target)) == 1:
        return folded.index(class_key(target))
    raise ParameterError(f"unknown target camera model {target!r}; choose one of {list(classes)}")


def _ramp(n: int, overlap: int, rising: bool, falling: bool) -> np.ndarray:
    """1-D blending weight of a tile of ``n`` pixels: raised-cosine ramps over ``overlap`` pixels on the sides
    that have a neighbouring tile, 1 elsewhere (never 0, so every pixel has weight)."""
    w = np.ones(n, np.float64)
    k = min(overlap, n)
    if k:
        up = np.sin(0.5 * np.pi * (np.arange(k) + 0.5) / k) ** 2
        if rising:
            w[:k] *= up
        if falling:
            w[n - k :] *= up[::-1]
    return w


def _origins(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return sorted(set(starts))


def _round_up(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)


def anonymize_image(
    pixels: np.ndarray,
    model: LoadedModel,
    *,
    target: str | None = None,
    tile: int | None = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> np.ndarray:
    """Anonymize one image with a targeted anonymizer (Cama) or a trace eraser (SiamTE-style).

    Parameters
    ----------
    pixels : ndarray, HxWx3 (or HxW) uint8
        RGB in stored (sensor) pixel order. Not modified.
    model : LoadedModel
        A registered model of task ``targeted-anonymization`` or ``trace-erasing``
        (:meth:`camforensics.inference.registry.ModelRegistry.load`).
    target : str, optional
        Target camera model (one of the model's classes) for a targeted anonymizer; None for an eraser.
    tile : int or None
        Tile side in pixels (rounded up to a multiple of 4); None or 0 runs the whole image at once.
    overlap : int
        Overlap of neighbouring tiles and context around each tile, in pixels (rounded up to a multiple of 4).

    Returns
    -------
    ndarray, HxWx3 uint8
        The anonymized image, the input's size.

    Raises
    ------
    ParameterError
        Wrong model task, unknown target (the classes are listed), bad image shape or tile sizes.
    """
    entry = model.entry
    if entry.task not in TASKS:
        raise ParameterError(f"model {entry.name!r} is a {entry.task} model, not an anonymizer ({', '.join(TASKS)})")
    index = resolve_target(target, entry.classes, entry.task)
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ParameterError(f"expected an HxW or HxWx3 image, got shape {np.shape(pixels)}")
    if overlap < 0 or (tile is not None and tile < 0):
        raise ParameterError(f"tile and overlap must be >= 0, not {tile} and {overlap}")
    h, w = a.shape[:2]
    # Pad bottom/right by reflection to multiples of ALIGN (the graph's size rule); cropped at the end.
    hp, wp = _round_up(h, ALIGN), _round_up(w, ALIGN)
    x = a.astype(np.float32) * np.float32(1.0 / 127.5) - np.float32(1.0)
    if (hp, wp) != (h, w):
        x = np.pad(x, ((0, hp - h), (0, wp - w), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])  # (1, 3, H, W)
    if tile:
        t = _round_up(max(tile, ALIGN), ALIGN)
        o = min(_round_up(overlap, ALIGN), t - ALIGN)
    else:
        t, o = max(hp, wp), 0
    ys, xs = _origins(hp, t, t - o), _origins(wp, t, t - o)
    acc = np.zeros((3, hp, wp), np.float64)
    weight = np.zeros((hp, wp), np.float64)
    for y0 in ys:
        for x0 in xs:
            th, tw = min(t, hp), min(t, wp)
            wy0, wy1 = max(y0 - o, 0), min(y0 + th + o, hp)  # window with context, clipped to the image
            wx0, wx1 = max(x0 - o, 0), min(x0 + tw + o, wp)
            out = _run(model, x[:, :, wy0:wy1, wx0:wx1], index, len(entry.classes))[0]
            core = out[:, y0 - wy0 : y0 - wy0 + th, x0 - wx0 : x0 - wx0 + tw]
            wgt = np.outer(_ramp(th, o, y0 > 0, y0 + th < hp), _ramp(tw, o, x0 > 0, x0 + tw < wp))
            acc[:, y0 : y0 + th, x0 : x0 + tw] += core * wgt
            weight[y0 : y0 + th, x0 : x0 + tw] += wgt
    result = (acc / weight)[:, :h, :w].transpose(1, 2, 0)
    return np.clip(np.round((result + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _run(model: LoadedModel, x: np.ndarray, index: int | None, n_classes: int) -> np.ndarray:
    """The graph on one (1, 3, h, w) window; the target as one-hot planes of the same size."""
    session = model.session
    names = [i.name for i in session.get_inputs()]
    feeds = {names[0]: x}
    if index is not None:
        planes = np.zeros((1, n_classes, x.shape[2], x.shape[3]), np.float32)
        planes[0, index] = 1.0
        feeds[names[1]] = planes
    return session.run(None, feeds)[0]

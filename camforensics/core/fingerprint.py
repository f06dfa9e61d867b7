"""Maximum-likelihood sensor fingerprint K of a device (Chen, Fridrich, Goljan, Lukas 2008)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from camforensics.runtime import native, threads
from camforensics.core.params import FingerprintParams
from camforensics.core.residual import finish_residual, grey_from_channels, noise_of_channels, split_channels
from camforensics.errors import ParameterError, SizeMismatchError


@functools.lru_cache(maxsize=8)
def _intensity_table(knee: float, spread: float) -> np.ndarray:
    values = np.arange(256, dtype=np.float32)
    table = intensity_weight(values[None, :], knee=knee, spread=spread)  # the formula, on every 8-bit value
    table.setflags(write=False)
    return table


def intensity_weight(channel: np.ndarray, *, knee: float = 252.0, spread: float = 6.0) -> np.ndarray:
    """Intensity weight of pixels: ``I / knee`` below the knee, ``exp(-(I - knee)**2 / spread)`` above.

    Dark pixels carry little PRNU (it is multiplicative) and near-saturated ones none (Binghamton IntenScale).

    Returns
    -------
    ndarray, float32, same shape as ``channel``
    """
    c = np.asarray(channel)
    if c.dtype == np.uint8 and c.ndim == 2:  # 8-bit pixels: one table lookup instead of the formula's passes
        return cv2.LUT(c, _intensity_table(float(knee), float(spread)))
    i = c.astype(np.float32, copy=False)
    below = i * np.float32(1.0 / knee)
    above = np.exp(-((i - np.float32(knee)) ** 2) / np.float32(spread))
    return np.where(i < knee, below, above).astype(np.float32, copy=False)


def saturation_mask(channel: np.ndarray, *, level: float = 250.0) -> np.ndarray:
    """Usable-pixel mask of one channel: False where the pixel is saturated.

    A pixel is saturated when the channel maximum exceeds ``level``, the pixel equals that maximum and at least
    one of its 4-neighbours equals it too (a clipped plateau rather than a single bright pixel).

    Returns
    -------
    ndarray of bool, same shape as ``channel``
    """
    return ~saturated_pixels(channel, level=level)


_FOUR_NEIGHBOURS = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.uint8)


def saturated_pixels(channel: np.ndarray, *, level: float = 250.0) -> np.ndarray:
    """The saturated pixels of one channel (True where :func:`saturation_mask` is False).

    2-D uint8 and float32 channels take OpenCV passes (the maximum, the pixels equal to it, and those of them with
    an equal 4-neighbour by a dilation with zeros beyond the border); other dtypes the same in numpy.

    Returns
    -------
    ndarray of bool, same shape as ``channel``
    """
    c = np.asarray(channel)
    if c.ndim == 2 and c.dtype in (np.uint8, np.float32) and c.size:
        peak = cv2.minMaxLoc(c)[1]
        if not peak > level:
            return np.zeros(c.shape, dtype=bool)
        at_max = cv2.compare(c, peak, cv2.CMP_EQ)  # 255 where equal
        near = cv2.dilate(at_max, _FOUR_NEIGHBOURS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        return cv2.bitwise_and(at_max, near).view(bool)
    saturated = np.zeros(c.shape, dtype=bool)
    peak = c.max() if c.size else None
    if peak is None or not peak > level:
        return saturated
    at_max = c == peak
    equal_neighbour = np.zeros(c.shape, dtype=bool)
    equal_neighbour[1:, :] |= at_max[:-1, :]
    equal_neighbour[:-1, :] |= at_max[1:, :]
    equal_neighbour[:, 1:] |= at_max[:, :-1]
    equal_neighbour[:, :-1] |= at_max[:, 1:]
    saturated[at_max & equal_neighbour] = True
    return saturated


def fingerprint_input(image: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    """``image`` as an HxWxC array, checked against the ``(H, W, C)`` of the images accumulated before (if any).

    Raises
    ------
    ValueError
        If it is not an HxW or HxWxC array.
    SizeMismatchError
        If its shape differs from ``shape``.
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ParameterError(f"expected an HxW or HxWxC image, got shape {np.shape(image)}")
    _check_shape(a.shape, shape)
    return a


def _check_shape(got: tuple[int, ...], shape: tuple[int, ...] | None) -> None:
    """Refuse an image of (H, W, C) ``got`` among images of ``shape`` (None: the first image, anything goes)."""
    if shape is not None and tuple(got) != tuple(shape):
        h, w, c = shape
        raise SizeMismatchError(
            f"image of {got[1]}x{got[0]}x{got[2]} does not match the {w}x{h}x{c} images added "
            "before; a fingerprint needs images of one size and orientation"
        )


@dataclass(frozen=True)
class Fingerprint:
    """A device fingerprint: the grey, zero-mean, Wiener-filtered MLE estimate K and how it was made."""

    k: np.ndarray  # float32 HxW, in stored sensor pixel order
    n_images: int  # images that went into the estimate
    params: FingerprintParams  # parameters of the estimate

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.k.shape[0]), int(self.k.shape[1]))


class Accumulator(Protocol):
    """What every backend's fingerprint accumulator offers (this numpy one, the torch one of
    :mod:`camforensics.accel`)."""

    n_images: int

    def add(self, image: np.ndarray) -> None: ...

    def finish(self) -> Fingerprint: ...

    def to_accumulator(self) -> FingerprintAccumulator: ...


class FingerprintAccumulator:
    """Streaming MLE fingerprint: add images one at a time; memory does not grow with their number.

    ``K_c = sum_i W_ic * w_ic / (sum_i w_ic**2 + 1)`` per colour channel c, where W is the wavelet noise and
    w the intensity weight times the saturation mask (Binghamton ``getFingerprint``; the +1 keeps pixels that
    are saturated in every image at zero). ``finish`` combines the channels to grey, removes CFA-lattice means
    and applies the DFT Wiener filter.

    Parameters
    ----------
    params : FingerprintParams, keyword-only

    References
    ----------
    Chen, Fridrich, Goljan, Lukas, "Determining image origin and integrity using sensor noise",
    IEEE TIFS 3(1), 2008.
    """

    def __init__(self, *, params: FingerprintParams = FingerprintParams()) -> None:
        self.params = params
        self.n_images = 0
        self._num: list[np.ndarray] | None = None
        self._den: list[np.ndarray] | None = None

    @classmethod
    def from_sums(
        cls, num: list[np.ndarray], den: list[np.ndarray], n_images: int, *, params: FingerprintParams
    ) -> FingerprintAccumulator:
        """An accumulator holding the per-channel sums ``num`` (of W w) and ``den`` (of w**2) of ``n_images``
        images, computed elsewhere (another backend); the arrays become its own (float32, C-contiguous)."""
        acc = cls(params=params)
        if n_images:
            acc._num = [np.ascontiguousarray(a, np.float32) for a in num]
            acc._den = [np.ascontiguousarray(a, np.float32) for a in den]
            acc.n_images = n_images
        return acc

    @property
    def shape(self) -> tuple[int, ...] | None:
        return None if self._num is None else (*self._num[0].shape, len(self._num))

    def sums(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The per-channel sums (of W w, of w**2) of the images added, as read-only views (ParameterError, as
        :meth:`finish`, if no image was added)."""
        self._require_images()
        views = [a.view() for a in (*self._num, *self._den)]
        for v in views:
            v.setflags(write=False)
        return views[: len(self._num)], views[len(self._num) :]

    def to_accumulator(self) -> FingerprintAccumulator:
        """This accumulator (the numpy sums that workers' shares are merged into)."""
        return self

    def add(self, image: np.ndarray) -> None:
        """Add one image (HxW or HxWxC, 0..255 scale, sensor order). Not modified.

        Raises
        ------
        SizeMismatchError
            If its size or channel count differs from the images added before.
        """
        self._fold(*self._terms(image, self.shape))

    def add_many(self, images: Iterable[np.ndarray]) -> None:
        """Add images, two or more denoised at once in threads (one per core); the sums are folded in one image
        at a time, so memory holds the accumulator plus one image in flight per thread, whatever their number.

        Raises
        ------
        SizeMismatchError
            If an image's size or channel count differs from the others'.
        """
        width = threads.width()
        it = iter(images)
        if width < 2:
            for image in it:
                self.add(image)
            return
        first = next(it, None)
        if first is None:
            return
        shape = self.shape or fingerprint_input(first, None).shape
        # One image per core already: OpenCV's threads would oversubscribe the cores, and the folds on this thread
        # must not split into strips that queue behind the images in the pool.
        with threads.opencv_single_threaded(), threads.unsplit():
            pending = [threads.pool().submit(self._terms, first, shape)]
            try:
                for image in it:
                    if len(pending) >= width:
                        self._fold(*pending.pop(0).result())
                    pending.append(threads.pool().submit(self._terms, image, shape))
                while pending:
                    self._fold(*pending.pop(0).result())
            finally:
                for future in pending:  # after an error: drop the images not folded in yet
                    future.cancel()

    def terms_of(self, image: np.ndarray) -> tuple[list, list]:
        """The image's contribution before it is folded in: its per-channel wavelet noise and pixel weights (for a
        caller that adds the same image to several accumulators, :meth:`add_terms`). Not modified; nothing added.

        Raises
        ------
        SizeMismatchError
            If its size or channel count differs from the images added before.
        """
        return self._terms(image, self.shape)

    def add_terms(self, terms: tuple[list, list]) -> None:
        """Add an image from its :meth:`terms_of` (of an accumulator with the same parameters); the terms are read,
        not modified, so they can be added elsewhere again.

        Raises
        ------
        SizeMismatchError
            If their size or channel count differs from the images added before.
        """
        noise, weights = terms
        _check_shape((*np.shape(noise[0]), len(noise)), self.shape)
        self._fold(noise, weights)

    def _terms(self, image: np.ndarray, shape: tuple[int, ...] | None) -> tuple[list, list]:
        """The per-channel wavelet noise W_c and pixel weights w_c of one image (no shared state touched)."""
        a = fingerprint_input(image, shape)
        channels = split_channels(a) if a.shape[2] > 1 else [a[:, :, 0]]  # contiguous: every pass reads less
        noise = noise_of_channels(channels, params=self.params.residual, contiguous=False)  # folded row by row
        p = self.params
        weights = []
        for channel in channels:
            weight = intensity_weight(channel, knee=p.intensity_knee, spread=p.intensity_spread)
            saturated = saturated_pixels(channel, level=p.saturation_level)
            if saturated.any():
                weight[saturated] = 0
            weights.append(weight)
        return list(noise), weights

    def _fold(self, noise: list, weights: list) -> None:
        if self._num is None:
            self._num = [np.zeros(noise[0].shape, np.float32) for _ in noise]
            self._den = [np.zeros(noise[0].shape, np.float32) for _ in noise]
        on_native = native.available()
        for w_c, weight, num, den in zip(noise, weights, self._num, self._den):
            if on_native:  # num += W * w, den += w**2 in one pass
                native.fold(w_c, weight, num, den)
                continue

            def fold(r0: int, r1: int, w_c=w_c, weight=weight, num=num, den=den) -> None:
                # num += W * w, den += w**2: one pass each (OpenCV)
                cv2.accumulateProduct(w_c[r0:r1], weight[r0:r1], num[r0:r1])
                cv2.accumulateSquare(weight[r0:r1], den[r0:r1])

            threads.for_row_strips(fold, num.shape[0], num.size)
        self.n_images += 1

    def merge(self, other: FingerprintAccumulator) -> None:
        """Add the images of ``other`` (an accumulator of another share of the same device's images).

        The MLE sums are additive, so accumulating disjoint shares in parallel and merging them gives the
        estimate of all images (up to float32 rounding of the order of summation). ``other`` is not modified;
        an empty ``other`` changes nothing.

        Parameters
        ----------
        other : FingerprintAccumulator
            Built with the same parameters.

        Raises
        ------
        ParameterError
            If the parameters differ.
        SizeMismatchError
            If the image shapes differ.
        """
        if other.params != self.params:
            raise ParameterError("cannot merge fingerprint accumulators built with different parameters")
        if other._num is None or other._den is None:
            return
        if self._num is None or self._den is None:
            self._num = [a.copy() for a in other._num]
            self._den = [a.copy() for a in other._den]
        elif other.shape != self.shape:
            h, w, c = self.shape
            oh, ow, oc = other.shape
            raise SizeMismatchError(
                f"cannot merge an accumulator of {ow}x{oh}x{oc} images into one of {w}x{h}x{c} images; a "
                "fingerprint needs images of one size and orientation"
            )
        else:
            for mine, theirs in zip(self._num, other._num):
                mine += theirs
            for mine, theirs in zip(self._den, other._den):
                mine += theirs
        self.n_images += other.n_images

    def _require_images(self) -> None:
        if self._num is None or self._den is None:
            raise ParameterError("a fingerprint needs at least one image; none was added")

    def finish(self) -> Fingerprint:
        """Return the fingerprint of the images added so far.

        Raises
        ------
        ParameterError
            If no image was added.
        """
        self._require_images()
        channels = [num / (den + np.float32(1.0)) for num, den in zip(self._num, self._den)]
        # Li's enhancement is a query-side option: the MLE average already suppresses scene content.
        post = dataclasses.replace(self.params.residual, enhance_alpha=None)
        k = finish_residual(grey_from_channels(channels), params=post, overwrite=True, axis_notch=self.params.axis_notch)
        return Fingerprint(k=k, n_images=self.n_images, params=self.params)


def estimate_fingerprint(images: Iterable[np.ndarray], *, params: FingerprintParams = FingerprintParams()) -> Fingerprint:
    """Estimate a device fingerprint from images of one device (all the same size and orientation).

    Parameters
    ----------
    images : iterable of ndarray
        HxW or HxWx3 arrays on a 0..255 scale, in sensor order; consumed as they are denoised (one per thread).
    params : FingerprintParams, keyword-only

    Returns
    -------
    Fingerprint

    Raises
    ------
    ParameterError
        If ``images`` is empty.
    SizeMismatchError
        If the images differ in size.
    """
    acc = FingerprintAccumulator(params=params)
    acc.add_many(images)
    return acc.finish()


# ------------------------------------------------------------------------------------------ split-half reliability


@dataclass(frozen=True)
class Reliability:
    """How much of a fingerprint estimate is the device's PRNU, from the agreement of two disjoint halves.

    A fingerprint estimated from n images is ``K_hat = K + E``: the device's pattern plus estimation noise whose
    variance falls as 1/n. The normalised correlation ``rho`` of the fingerprints of two disjoint halves of the
    images (n_a and n_b of them) measures the pattern's share of each half's variance; the classical test-theory
    (Spearman-Brown) step from the halves to all n images gives ``reliability = var(K) / var(K_hat)`` of the full
    estimate: with ``q`` the per-image signal-to-noise ratio solving
    ``rho**2 (1 + q n_a)(1 + q n_b) = q**2 n_a n_b``, ``reliability = q n / (1 + q n)`` (for equal halves
    ``2 rho / (1 + rho)``). It is also the expected correlation of this estimate with an independent estimate from
    as many images, and the factor by which subtracting this estimate under-removes the device's own pattern
    (see :func:`camforensics.core.anonymize.fit_removal`).
    """

    correlation: float  # rho: normalised correlation of the two halves' fingerprints
    n_a: int  # images of the first half
    n_b: int  # images of the second half
    reliability: float  # var(K) / var(K_hat) of the estimate from all n_a + n_b images, in [0, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "split-half correlation of alternate images' fingerprints over the centre window (up to "
            "1024 x 1024 pixels), Spearman-Brown to all images",
            "split_half_correlation": self.correlation,
            "halves": [self.n_a, self.n_b],
            "reliability": self.reliability,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Reliability | None:
        """The reliability stored in a library entry's metadata (None when the entry has none)."""
        if not d or "reliability" not in d:
            return None
        n_a, n_b = d.get("halves", [0, 0])
        return cls(float(d["split_half_correlation"]), int(n_a), int(n_b), float(d["reliability"]))


def normalised_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally shaped arrays (float64 sums; 0.0 when either is constant)."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise SizeMismatchError(f"cannot correlate arrays of {x.size} and {y.size} elements")
    x = x - x.mean()
    y = y - y.mean()
    den = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    return float(np.dot(x, y) / den) if den > 0 else 0.0


def split_half_reliability(k_a: np.ndarray, n_a: int, k_b: np.ndarray, n_b: int) -> Reliability:
    """:class:`Reliability` of the fingerprint of ``n_a + n_b`` images from the fingerprints of its two halves.

    A correlation at or below zero (no pattern shared by the halves) gives reliability 0.

    Raises
    ------
    ParameterError
        If a half has no image.
    """
    if n_a < 1 or n_b < 1:
        raise ParameterError(f"split-half reliability needs images in both halves, got {n_a} and {n_b}")
    rho = normalised_correlation(k_a, k_b)
    if rho <= 0:
        return Reliability(rho, n_a, n_b, 0.0)
    rho = min(rho, 1.0 - 1e-9)
    r2, s, p = rho * rho, n_a + n_b, n_a * n_b
    q = (r2 * s + np.sqrt(r2 * r2 * s * s + 4.0 * p * (1.0 - r2) * r2)) / (2.0 * p * (1.0 - r2))
    n = n_a + n_b
    return Reliability(rho, n_a, n_b, float(q * n / (1.0 + q * n)))


# Side of the centre window whose split halves measure the reliability: 1 MP of sensor gives the correlation to
# about +-0.001, and keeps the two extra accumulators small (48 MB) and cheap to hand between processes.
PROBE_SIDE = 1024


def probe_window(shape: tuple[int, ...], side: int = PROBE_SIDE) -> tuple[slice, slice]:
    """The centre window (at most ``side`` x ``side``, even offsets so the CFA phase is kept) of an image of
    ``shape`` (H, W, ...) in which the split halves are accumulated."""
    h, w = int(shape[0]), int(shape[1])
    th, tw = min(side, h), min(side, w)
    y0, x0 = ((h - th) // 2) & ~1, ((w - tw) // 2) & ~1
    return slice(y0, y0 + th), slice(x0, x0 + tw)


class HalvesAccumulator:
    """A fingerprint accumulator that also measures the estimate's :class:`Reliability`.

    Every image goes into the full accumulator (the stored fingerprint, exactly as one accumulator gives it), and
    its centre window (:func:`probe_window`, the whole image up to 1024 x 1024) alternately into one of two small
    accumulators, the split halves, from the same wavelet noise and weights (each image is denoised once). Their
    fingerprints' correlation gives the reliability (:func:`split_half_reliability`); the centre megapixel stands
    for the whole sensor. Memory: the full accumulator plus two of the window's size.

    Parameters
    ----------
    params : FingerprintParams, keyword-only
    make : callable, keyword-only
        ``make(params)`` returns the empty full accumulator of another backend (an :class:`Accumulator`); its halves are then accumulated by the numpy engine on the window of each image.
    probe : int, keyword-only
        Side of the window of the halves.
    """

    def __init__(
        self,
        *,
        params: FingerprintParams = FingerprintParams(),
        make: Callable[[FingerprintParams], Accumulator] | None = None,
        probe: int = PROBE_SIDE,
    ) -> None:
        self.params = params
        self.probe = probe
        self.full: Accumulator = make(params) if make is not None else FingerprintAccumulator(params=params)
        self.halves = [FingerprintAccumulator(params=params), FingerprintAccumulator(params=params)]

    @property
    def n_images(self) -> int:
        return self.full.n_images

    def _next_half(self) -> FingerprintAccumulator:
        a, b = self.halves
        return a if a.n_images <= b.n_images else b

    def add(self, image: np.ndarray) -> None:
        """Add one image (see :meth:`FingerprintAccumulator.add`) to the full sums and its window to the half that
        has fewer images (the first on a tie).

        Raises
        ------
        SizeMismatchError
            If its size or channel count differs from the images added before.
        """
        a = fingerprint_input(image, self.full.shape)
        ys, xs = probe_window(a.shape, self.probe)
        half = self._next_half()
        if isinstance(self.full, FingerprintAccumulator):
            noise, weights = self.full.terms_of(a)
            self.full.add_terms((noise, weights))
            half.add_terms(([n[ys, xs] for n in noise], [w[ys, xs] for w in weights]))
        else:  # another backend's full sums; the window's terms by the numpy engine
            self.full.add(a)
            half.add(a[ys, xs])

    def merge_parts(
        self,
        full: FingerprintAccumulator | None,
        first: FingerprintAccumulator | None,
        second: FingerprintAccumulator | None,
    ) -> None:
        """Add another worker's sums (numpy accumulators or None): its full sums to the full ones, its halves to
        this one's, keeping them apart (the larger to the half that has fewer images, so the halves stay balanced
        over many workers). An empty accumulator of this one takes an incoming one over instead of copying it (the
        caller must not use it again)."""

        def into(mine: FingerprintAccumulator, theirs: FingerprintAccumulator) -> FingerprintAccumulator:
            if mine.n_images == 0 and isinstance(theirs, FingerprintAccumulator) and theirs.params == self.params:
                return theirs
            mine.merge(theirs)
            return mine

        if full is not None:
            if not isinstance(self.full, FingerprintAccumulator):
                raise ParameterError("merge the workers' sums into a numpy HalvesAccumulator")
            self.full = into(self.full, full)
        for theirs in sorted((h for h in (first, second) if h is not None), key=lambda h: -h.n_images):
            i = 0 if self.halves[0].n_images <= self.halves[1].n_images else 1
            self.halves[i] = into(self.halves[i], theirs)

    def finish(self) -> tuple[Fingerprint, Reliability | None]:
        """The fingerprint of every image added and its reliability (None with fewer than two images).

        Raises
        ------
        ParameterError
            If no image was added.
        """
        fp = self.full.finish()
        a, b = self.halves
        if not (a.n_images and b.n_images):
            return fp, None
        reliability = split_half_reliability(a.finish().k, a.n_images, b.finish().k, b.n_images)
        return fp, reliability

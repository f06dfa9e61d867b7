"""Where a cropped, scaled or turned query sits on the sensor (Goljan & Fridrich 2008).

A query smaller than a fingerprint is a crop at an unknown position: its signal (residual times intensity) is
zero-padded to the fingerprint's size and correlated with the fingerprint over every offset by FFT; the
PCE is the peak against the correlation energy outside a small square around it, and its false-alarm
probability is that of the largest of the N offsets searched, so the decision threshold rises with N. A
downscaled query is first resampled to sensor resolution at each scale of a grid (the scale search outside, the
crop search inside, as in the paper). Turned or mirrored queries are the 8 elements of the dihedral group Dih4.

References
----------
Goljan, Fridrich, "Camera identification from cropped and scaled images", Proc. SPIE 6819, Security,
Forensics, Steganography, and Watermarking of Multimedia Contents X, 2008.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Callable

import cv2
import numpy as np

from camforensics.core.pce import PceResult, Spectrum, log10_false_alarm, pce_result
from camforensics.errors import ParameterError
from camforensics.runtime import fft

# Smallest side (pixels, sensor resolution) of a query searched as a crop: below it the residual holds too few
# PRNU samples to reach any useful PCE and the wavelet denoiser (4 levels) has almost nothing to work on.
MIN_CROP_SIDE = 64

# Dih4 elements as (rotation in degrees counter-clockwise, mirrored): flip left-right first, then rotate (the
# order of camforensics.io.patches.apply_dih4). The stored order comes first.
DIH4 = tuple((90 * (k % 4), k >= 4) for k in range(8))


def orient(a: np.ndarray, rotation: int, mirrored: bool = False) -> np.ndarray:
    """``a`` flipped left-right (when ``mirrored``), then turned ``rotation`` degrees counter-clockwise (a view)."""
    if mirrored:
        a = a[:, ::-1]
    return np.rot90(a, (rotation // 90) % 4)


def sensor_shape(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    """Size in sensor pixels of a query of ``shape`` whose pixels are ``scale`` times the sensor's (0 < scale)."""
    return max(1, round(shape[0] / scale)), max(1, round(shape[1] / scale))


def to_sensor_scale(a: np.ndarray, scale: float) -> np.ndarray:
    """``a`` resampled to sensor resolution (bicubic; ``a`` itself when ``scale`` is 1). Not modified."""
    if scale == 1.0:
        return a
    h, w = sensor_shape(a.shape, scale)
    return cv2.resize(np.ascontiguousarray(a, dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


# Side of the blocks on which the null variance of a crop search's correlation is computed (see local_variance).
VARIANCE_BLOCK = 8
# Coarse energy maps of reference spectra, by id of the spectrum's array (dropped with the array).
_ENERGY: dict[int, np.ndarray] = {}
# Where a reference's coarse energy map can be read instead of computed and written once computed (the library's
# on-disk cache, :mod:`camforensics.io.spectra`), by id of the spectrum's array (dropped with the array).
_ENERGY_STORE: dict[int, tuple[Callable[[], np.ndarray | None], Callable[[np.ndarray], object]]] = {}


def attach_energy_store(
    reference: Spectrum, load: Callable[[], np.ndarray | None], store: Callable[[np.ndarray], object]
) -> None:
    """Let :func:`energy_spectrum` of ``reference`` first try ``load()`` (the map, or None when there is no valid
    one) and hand what it computes to ``store`` (e.g. the library's cache of its fingerprint's spectrum). A loaded
    map of the wrong shape or type is ignored and the map computed."""
    key = id(reference.f)
    if key not in _ENERGY_STORE:
        weakref.finalize(reference.f, _ENERGY_STORE.pop, key, None)
    _ENERGY_STORE[key] = (load, store)


def energy_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """Shape of :func:`energy_spectrum` for a reference of ``shape``."""
    hb, wb = _coarse_shape(shape)
    return hb, wb // 2 + 1


def _coarse_shape(shape: tuple[int, int]) -> tuple[int, int]:
    return -(-int(shape[0]) // VARIANCE_BLOCK), -(-int(shape[1]) // VARIANCE_BLOCK)


def _block_sums(a: np.ndarray, coarse: tuple[int, int]) -> np.ndarray:
    """Sums of ``a`` over ``VARIANCE_BLOCK``-pixel blocks (the last ones zero-padded), at the top-left of a zero
    array of ``coarse`` blocks (float64)."""
    b = VARIANCE_BLOCK
    h, w = a.shape
    hb, wb = -(-h // b), -(-w // b)
    a = np.asarray(a, dtype=np.float32)
    if (hb * b, wb * b) != (h, w):
        a = np.pad(a, ((0, hb * b - h), (0, wb * b - w)))
    out = np.zeros(coarse, np.float64)
    # an area resize by an integer factor is the block mean (cv2: 50x faster than a reshaped numpy sum)
    out[:hb, :wb] = cv2.resize(a, (wb, hb), interpolation=cv2.INTER_AREA).astype(np.float64) * (b * b)
    return out


def energy_spectrum(reference: Spectrum) -> np.ndarray:
    """conj(rfft2) of the reference's squared values summed over ``VARIANCE_BLOCK``-pixel blocks (the zero-mean
    array the spectrum was taken of, recovered by one inverse FFT). Cached while the spectrum's array lives; read
    from (and written to) the store :func:`attach_energy_store` gave the spectrum, where it has one."""
    key = id(reference.f)
    hit = _ENERGY.get(key)
    if hit is not None:
        return hit
    store = _ENERGY_STORE.get(key)
    energy = store[0]() if store is not None else None
    if energy is None or energy.dtype != np.complex128 or energy.shape != energy_shape(reference.shape):
        energy = _energy_of(reference)
        if store is not None:
            store[1](energy)
    _ENERGY[key] = energy
    weakref.finalize(reference.f, _ENERGY.pop, key, None)
    return energy


def _energy_of(reference: Spectrum) -> np.ndarray:
    """:func:`energy_spectrum` computed from the spectrum (complex128)."""
    f = reference.f if not reference.conjugated else np.conj(reference.f)
    k = fft.irfft2(f, s=reference.shape, workers=-1)
    return np.conj(np.fft.rfft2(_block_sums(k * k, _coarse_shape(reference.shape))))


def query_energy(signal: np.ndarray, shape: tuple[int, int], window: int) -> np.ndarray:
    """rfft2 of a query signal's local energy on the coarse grid of a plane of ``shape``: ``m = s**2`` of the
    zero-mean signal, averaged over ``window`` x ``window`` pixels (reflected at the borders; not at all when
    ``window`` is 1), summed over ``VARIANCE_BLOCK``-pixel blocks, at the top-left of the plane (see
    :func:`local_variance`)."""
    a = np.asarray(signal, dtype=np.float32)
    centred = a - np.float32(a.mean(dtype=np.float64))
    m = centred * centred
    if window > 1:
        m = cv2.blur(m, (window, window), borderType=cv2.BORDER_REFLECT)
    return np.fft.rfft2(_block_sums(m, _coarse_shape(shape)))


def local_variance(energy: np.ndarray, reference: Spectrum) -> np.ndarray:
    """Null variance of a crop search's correlation at every circular offset: ``V(o) = sum_y m(y) k(y + o)**2``.

    ``r(o) = sum_y s(y) k(y + o)`` of a query signal ``s`` (zero-mean, at the top-left of the plane) and a
    fingerprint ``k`` has, for query noise independent from pixel to pixel with variance ``m(y)``, the variance
    ``V(o)``: it differs from offset to offset where the fingerprint's energy is uneven (a fingerprint of a few
    natural photos is noisier where they were dark, or holds strong defects) and where the query's is. ``m`` is
    the query's squared signal averaged over a small window (:func:`query_energy`; so that the query's own PRNU
    does not raise V at the true offset); both maps are summed over ``VARIANCE_BLOCK``-pixel blocks, correlated
    on that coarse grid (V is a sum over the query's area, smooth in the offset) and interpolated back to every
    offset.

    Parameters
    ----------
    energy : ndarray
        :func:`query_energy` of the query signal as it is padded (oriented, at sensor scale), for the plane's shape.
    reference : Spectrum
        The fingerprint's spectrum.

    Returns
    -------
    ndarray, float32, the reference's shape
        ``V(o)`` in the units of ``r(o)**2`` (positive).
    """
    return _at_offsets(_coarse_variance(energy, reference), reference.shape)


def local_weight(energy: np.ndarray, reference: Spectrum) -> np.ndarray:
    """``1 / sqrt(V(o))`` at every circular offset (:func:`local_variance`), relative to its mean: the factor
    that gives every offset of a crop search's correlation the same null variance. Taken on the coarse grid and
    interpolated (one pass over the plane instead of three)."""
    return local_weight_map(energy, reference).plane()


def local_weight_map(energy: np.ndarray, reference: Spectrum) -> WeightMap:
    """:func:`local_weight` on the coarse grid, interpolated to the plane's offsets only where it is read
    (:class:`WeightMap`: :func:`crop_pces` applies it in strips of rows)."""
    w = 1.0 / np.sqrt(_coarse_variance(energy, reference))
    return WeightMap.of(w / w.mean(), reference.shape)


# Rows of a correlation plane weighted at a time (a strip of a 12 MP plane is 1 MB: it stays in the cache between
# the weight's interpolation, the multiplication and the energy's sum).
WEIGHT_STRIP_ROWS = 64


def _strips(rows: int) -> list[tuple[int, int]]:
    """Bands of ``WEIGHT_STRIP_ROWS`` rows covering ``rows``, the last one from 1 to 2 times as tall (a band of a
    few rows in the plane's last block is interpolated by another path of OpenCV's, different in the last bit)."""
    out, r0 = [], 0
    while r0 < rows:
        r1 = rows if rows - r0 < 2 * WEIGHT_STRIP_ROWS else r0 + WEIGHT_STRIP_ROWS
        out.append((r0, r1))
        r0 = r1
    return out


@dataclasses.dataclass(frozen=True)
class WeightMap:
    """A weight given on the coarse grid of offsets (every ``VARIANCE_BLOCK``-th), interpolated bilinearly and
    circularly to the offsets of a plane of ``shape`` by :meth:`rows` (any band of rows, the same values as the
    whole :meth:`plane`'s)."""

    wrapped: np.ndarray  # float32, the coarse map with one wrapped row and column
    shape: tuple[int, int]

    @classmethod
    def of(cls, coarse: np.ndarray, shape: tuple[int, int]) -> WeightMap:
        wrapped = np.pad(coarse, ((0, 1), (0, 1)), mode="wrap").astype(np.float32)
        return cls(wrapped=wrapped, shape=(int(shape[0]), int(shape[1])))

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """The weight at the offsets of rows ``r0 .. r1 - 1`` (float32, C-contiguous; the whole plane's values,
        except in the last bit for a band of at most 8 rows in the plane's last block of rows)."""
        b = VARIANCE_BLOCK
        # the values of a bilinear resize by b (cv2 maps output pixel i to input (i + 0.5) / b - 0.5) at output
        # pixels b // 2 onwards, i.e. the value at offset o is taken at input (o + b // 2 + 0.5) / b - 0.5 (o + b / 2
        # on the offsets' scale). An affine warp computes exactly those pixels (its coordinates, multiples of
        # 1 / (2 b), are exact in its fixed point) straight into an array of the band's shape.
        start = (b // 2 + 0.5) / b - 0.5
        m = np.array([[1.0 / b, 0.0, start], [0.0, 1.0 / b, start + r0 / b]])
        return cv2.warpAffine(self.wrapped, m, (self.shape[1], int(r1 - r0)), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)

    def plane(self) -> np.ndarray:
        """The weight at every offset of the plane."""
        return self.rows(0, self.shape[0])

    def at(self, y: int, x: int) -> float:
        """The weight at offset (y, x), as the strip of :func:`_strips` that holds row ``y`` has it (the value
        :func:`crop_pces` multiplied the plane by there), interpolating that strip only."""
        r0, r1 = next((a, b) for a, b in _strips(self.shape[0]) if a <= y < b)
        return float(self.rows(r0, r1)[y - r0, x])


def _coarse_variance(energy: np.ndarray, reference: Spectrum) -> np.ndarray:
    """``V`` at the offsets that are multiples of ``VARIANCE_BLOCK`` (circular), floored above 0."""
    ref = energy_spectrum(reference)
    if energy.shape != ref.shape:
        raise ParameterError(f"query energy {energy.shape} and reference energy {ref.shape} differ in shape")
    b = VARIANCE_BLOCK
    # v[O] = sum_Y M(Y) E(Y + O) / b**2: each pair of block sums stands for b**2 pixel pairs m(y) k(y + o)**2
    # of the b**4 their product holds
    v = np.fft.irfft2(np.conj(energy * ref), s=_coarse_shape(reference.shape)) / (b * b)
    return np.maximum(v, max(float(v.max()), 0.0) * 1e-6 + 1e-30)


def _at_offsets(coarse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A map on the coarse grid of offsets interpolated (bilinear, circular) to every offset of ``shape``
    (float32, C-contiguous; :class:`WeightMap`)."""
    return WeightMap.of(coarse, shape).plane()


def padded_spectrum(signal: np.ndarray, shape: tuple[int, int]) -> Spectrum:
    """:class:`Spectrum` of the zero-mean ``signal`` placed at the top-left of a zero array of ``shape``.

    Computed without building the padded array: a real FFT of the signal's rows, then a column FFT that pads
    to ``shape[0]`` (the zero rows cost nothing in the first pass).
    """
    a = np.asarray(signal, dtype=np.float32)
    h, w = a.shape
    if h > shape[0] or w > shape[1]:
        raise ParameterError(f"a {w}x{h} signal does not fit a {shape[1]}x{shape[0]} plane")
    centred = a - np.float32(a.mean(dtype=np.float64))
    norm = float(np.sqrt(np.einsum("ij,ij->", centred, centred, dtype=np.float64)))
    import scipy.fft  # crop searches only: the aligned search never imports it (camforensics.runtime.fft)

    rows = scipy.fft.rfft(centred, n=shape[1], axis=1, workers=-1)
    f = scipy.fft.fft(rows, n=shape[0], axis=0, workers=-1, overwrite_x=True).astype(np.complex64, copy=False)
    return Spectrum(f=f, norm=norm, shape=(int(shape[0]), int(shape[1])))


def offset_window(
    query_shape: tuple[int, int],
    reference_shape: tuple[int, int],
    *,
    anchor: str | tuple[int, int] = "any",
    shift_range: tuple[int, int] = (0, 0),
) -> tuple[slice, slice] | None:
    """Offsets (rows, columns of the query's top-left corner) searched for a crop; None when none is admissible.

    ``anchor="any"`` allows every offset that keeps the query inside the reference; ``"centre"``, ``"corner"`` (top
    left) or an explicit ``(y, x)`` allow ``+-shift_range`` around that offset, clipped to the admissible ones.
    """
    (h, w), (hh, ww) = query_shape, reference_shape
    max_y, max_x = hh - h, ww - w
    if max_y < 0 or max_x < 0:
        return None
    if anchor == "any":
        return slice(0, max_y + 1), slice(0, max_x + 1)
    if anchor == "centre":
        ay, ax = max_y // 2, max_x // 2
    elif anchor == "corner":
        ay, ax = 0, 0
    else:
        ay, ax = int(anchor[0]), int(anchor[1])  # type: ignore[index]
    y0, y1 = max(ay - shift_range[0], 0), min(ay + shift_range[0], max_y)
    x0, x1 = max(ax - shift_range[1], 0), min(ax + shift_range[1], max_x)
    if y0 > y1 or x0 > x1:
        return None
    return slice(y0, y1 + 1), slice(x0, x1 + 1)


def window_size(window: tuple[slice, slice]) -> int:
    """Number of offsets in a (possibly strided) window of offsets."""
    return len(range(window[0].start, window[0].stop, window[0].step or 1)) * len(
        range(window[1].start, window[1].stop, window[1].step or 1)
    )


def crop_pce(
    query: Spectrum,
    query_shape: tuple[int, int],
    reference: Spectrum,
    window: tuple[slice, slice],
    *,
    exclusion: int = 11,
    scratch: np.ndarray | None = None,
    weight: np.ndarray | WeightMap | None = None,
) -> PceResult:
    """PCE of a zero-padded query against a reference over the offsets of ``window``.

    The correlation ``r[oy, ox] = sum q(y, x) k(y + oy, x + ox)`` is computed for every circular offset by one
    inverse FFT; the peak is the maximum within ``window`` (see :func:`offset_window`); the energy is the mean of
    ``r**2`` over the whole plane outside an ``exclusion`` square centred on the peak (offsets that wrap around
    pair the query with another part of the fingerprint, as unrelated as any). ``ncc`` is normalised by the
    query's norm and the fingerprint's norm scaled to the query's area.

    Parameters
    ----------
    query : Spectrum
        :func:`padded_spectrum` of the query signal at the reference's shape.
    query_shape : (int, int)
        Size of the query before padding.
    reference : Spectrum
        The fingerprint's spectrum (conjugated or not).
    window : (slice, slice)
        Offsets searched (rows, columns), within ``0..H-h`` and ``0..W-w``; slices may be strided.
    exclusion : int, keyword-only
        Odd side of the square left out of the energy.
    scratch : ndarray, optional, keyword-only
        complex64 buffer of the spectra's shape for the cross-power.
    weight : ndarray or WeightMap, optional, keyword-only
        ``1 / sqrt`` of the correlation's null variance at every offset, up to a constant (:func:`local_weight`,
        or :func:`local_weight_map`, applied in strips of rows): the plane is multiplied by it before the peak and
        the energy are read, so that every offset is tested at the same noise level (a locally normalised
        correlation). ``ncc`` stays the plain correlation at the peak.

    Returns
    -------
    PceResult
        ``peak_shift`` is the offset (row, column) of the query's top-left corner in the reference, ``n_shifts``
        the number of offsets in ``window``.
    """
    return crop_pces(query, query_shape, reference, [window], exclusion=exclusion, scratch=scratch, weight=weight)[0]


def crop_pces(
    query: Spectrum,
    query_shape: tuple[int, int],
    reference: Spectrum,
    windows: list[tuple[slice, slice]],
    *,
    exclusion: int = 11,
    scratch: np.ndarray | None = None,
    weight: np.ndarray | WeightMap | None = None,
) -> list[PceResult]:
    """:func:`crop_pce` over several windows of offsets (e.g. every offset and those on the JPEG grid) from one
    correlation plane: one result per window (an empty window gives PCE 0 at its start).

    Raises
    ------
    ParameterError
        If the padded query and the reference differ in shape.
    """
    _check_shapes(query, reference)
    hh, ww = reference.shape
    if not query.norm > 0 or not reference.norm > 0:
        return [_empty(w) for w in windows]
    cc = _correlation_plane(query, reference, scratch)
    # Normalised at the end (the PCE does not depend on it): one multiplication instead of a pass over the plane.
    unit = _unit(query, query_shape, reference)
    if weight is not None:
        if weight.shape != (hh, ww):
            raise ParameterError(f"weight plane {weight.shape} and reference {reference.shape} differ in shape")
    strips = _strips(hh)
    if isinstance(weight, WeightMap):
        # in strips of rows: the weight interpolated, multiplied in and the energy summed while the strip is cached
        total = 0.0
        for r0, r1 in strips:
            strip = cc[r0:r1]
            np.multiply(strip, weight.rows(r0, r1), out=strip)
            flat = strip.ravel()
            total += float(np.einsum("i,i->", flat, flat, dtype=np.float64))
    else:
        if weight is not None:
            np.multiply(cc, weight, out=cc)  # the plain correlation at a peak is cc / weight there
        flat = cc.ravel()
        total = float(np.einsum("i,i->", flat, flat, dtype=np.float64))
    half = exclusion // 2
    results = []
    for window in windows:
        n_shifts = window_size(window)
        if n_shifts == 0:
            results.append(_empty(window))
            continue
        iy, ix = _argmax_2d(cc[window])
        py, px = window[0].start + int(iy) * (window[0].step or 1), window[1].start + int(ix) * (window[1].step or 1)
        rows = np.unique(np.arange(py - half, py + half + 1) % hh)
        cols = np.unique(np.arange(px - half, px + half + 1) % ww)
        near = cc[np.ix_(rows, cols)].astype(np.float64)
        n_out = hh * ww - near.size
        energy = (total - float(np.sum(near * near))) / n_out if n_out > 0 else 0.0
        res = pce_result(float(cc[py, px]) / unit, energy / unit**2, (py, px), n_shifts)
        if weight is not None:
            w_peak = weight.at(py, px) if isinstance(weight, WeightMap) else weight[py, px]
            res = dataclasses.replace(res, ncc=float(cc[py, px]) / float(w_peak) / unit)
        results.append(res)
    return results


def known_offset_result(
    query: Spectrum,
    query_shape: tuple[int, int],
    reference: Spectrum,
    offset: tuple[int, int],
    energy: np.ndarray,
    *,
    scratch: np.ndarray | None = None,
) -> PceResult:
    """The matched-filter score of a crop at one known offset: ``z = r(o) / sqrt(V(o))``, the correlation there
    over its null standard deviation there (:func:`local_variance` of the query's local ``energy``), reported as a
    PCE-like ``sign(z) z**2``, which is a chi-square of one degree under the null (query noise independent from
    pixel to pixel with the local variance of ``energy``), so that the thresholds and false-alarm probabilities
    of one hypothesis hold for it. Unlike the PCE it reads nothing of the correlation at other offsets.

    ``ncc`` is the plain normalised correlation at the offset, as :func:`crop_pce`'s.

    Raises
    ------
    ParameterError
        If the padded query and the reference differ in shape.
    """
    _check_shapes(query, reference)
    oy, ox = int(offset[0]), int(offset[1])
    window = (slice(oy, oy + 1), slice(ox, ox + 1))
    if not query.norm > 0 or not reference.norm > 0:
        return _empty(window)
    r = float(_correlation_plane(query, reference, scratch)[oy, ox])
    v = WeightMap.of(_coarse_variance(energy, reference), reference.shape).at(oy, ox)  # local_variance's, there
    unit = _unit(query, query_shape, reference)
    # pce_result's sign(peak) peak**2 / energy with peak = r / unit and energy = V / unit**2: sign(z) z**2
    return pce_result(r / unit, v / unit**2, (oy, ox), 1)


def _check_shapes(query: Spectrum, reference: Spectrum) -> None:
    if query.shape != reference.shape:
        raise ParameterError(f"padded query {query.shape} and reference {reference.shape} differ in shape")


def _correlation_plane(query: Spectrum, reference: Spectrum, scratch: np.ndarray | None) -> np.ndarray:
    """The circular correlation r[o] = sum q(y) k(y + o) at every offset, unnormalised (float64 plane)."""
    prod = np.multiply(query.f, reference.conj_f(), out=scratch)  # Q conj(K): correlation at negative offsets
    np.conjugate(prod, out=prod)  # conj(Q) K: at positive offsets
    return fft.irfft2(prod, s=reference.shape, workers=-1)


def _unit(query: Spectrum, query_shape: tuple[int, int], reference: Spectrum) -> float:
    """What the plane is divided by to be a normalised correlation (the query's own pixels, not its padding)."""
    hh, ww = reference.shape
    return query.norm * reference.norm * math.sqrt(query_shape[0] * query_shape[1] / (hh * ww))


def _argmax_2d(a: np.ndarray) -> tuple[int, int]:
    """(row, column) of ``np.argmax`` of a 2-D view (the first of equal maxima in row-major order, a NaN's first
    where there is one), without the contiguous copy that ``argmax`` makes of a strided view (a window of a
    correlation plane): the rows' maxima, then the first row that holds the largest, then its first column."""
    iy = int(np.argmax(a.max(axis=1)))
    return iy, int(np.argmax(a[iy]))


def _empty(window: tuple[slice, slice]) -> PceResult:
    return PceResult(pce=0.0, ncc=0.0, peak_shift=(window[0].start, window[1].start), n_shifts=window_size(window), p_fa=1.0, log10_p_fa=0.0)


def corrected_threshold(threshold: float, n_hypotheses: int) -> float:
    """The PCE whose false-alarm probability over ``n_hypotheses`` equals that of ``threshold`` at one.

    The maximum of N unrelated correlations is larger than one of them, so a search over N offsets (scales,
    orientations) needs a higher PCE for the same false-alarm probability: PCE 60 at one hypothesis
    (P_FA 4.7e-15) becomes 84.6 over the 263,169 offsets of a 512x512 crop in a 1024x1024 fingerprint.
    Returns ``threshold`` itself for one hypothesis.
    """
    n = max(int(n_hypotheses), 1)
    if n == 1 or threshold <= 0:
        return float(threshold)
    target = log10_false_alarm(threshold, 1)
    hi = threshold
    while log10_false_alarm(hi, n) > target:
        hi *= 2.0
    import scipy.optimize  # lazy: 0.1 s of imports that only a crop search's threshold needs

    return float(scipy.optimize.brentq(lambda t: log10_false_alarm(t, n) - target, threshold, hi, xtol=1e-6))

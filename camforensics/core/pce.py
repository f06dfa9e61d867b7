"""Peak-to-correlation energy (PCE) and its false-alarm probability (Goljan, Fridrich, Filler 2009)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from camforensics.errors import ParameterError, SizeMismatchError
from camforensics.runtime import fft


@dataclass(frozen=True)
class PceResult:
    """Outcome of one PCE test of a query against a reference."""

    pce: float  # sign(peak) * peak**2 / energy
    ncc: float  # normalised correlation at the peak (-1..1)
    peak_shift: tuple[int, int]  # (dy, dx): the query equals the reference moved down by dy and right by dx
    n_shifts: int  # shifts searched for the peak (enters the false-alarm correction)
    p_fa: float  # probability that a non-matching pair reaches this PCE (0.0 when it underflows)
    log10_p_fa: float  # log10 of p_fa, finite even where p_fa underflows

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["peak_shift"] = list(self.peak_shift)
        return d


@dataclass(frozen=True)
class Spectrum:
    """Half-plane DFT of a zero-mean 2-D array, kept for repeated correlations (e.g. a library fingerprint)."""

    f: np.ndarray  # rfft2 of the array minus its mean (its complex conjugate when ``conjugated``), complex64
    norm: float  # Euclidean norm of the zero-mean array
    shape: tuple[int, int]  # shape of the array
    conjugated: bool = False  # stored conjugated: a reference (fingerprint) side, used as conj(F) every time

    def conj_f(self) -> np.ndarray:
        """conj(F), without a copy when stored conjugated."""
        return self.f if self.conjugated else np.conj(self.f)

    @property
    def nbytes(self) -> int:
        return int(self.f.nbytes)


def spectrum_of(a: np.ndarray, *, conjugate: bool = False) -> Spectrum:
    """The :class:`Spectrum` of ``a`` (float32 work; ``a`` is not modified).

    ``conjugate=True`` stores conj(F): for a reference (fingerprint) that many queries are correlated with, it
    saves a conjugate copy per correlation.
    """
    a = np.asarray(a, dtype=np.float32)
    if a.ndim != 2:
        raise ParameterError(f"expected a 2-D array, got shape {a.shape}")
    centred = _offset(a, np.float32(a.mean(dtype=np.float64)))
    norm = float(np.sqrt(np.einsum("ij,ij->", centred, centred, dtype=np.float64)))
    f = fft.rfft2(centred, workers=-1)
    if conjugate:
        np.conjugate(f, out=f)
    return Spectrum(f=f, norm=norm, shape=(int(a.shape[0]), int(a.shape[1])), conjugated=conjugate)


def _offset(a: np.ndarray, mean: np.float32) -> np.ndarray:
    """``a - mean`` as a new float32 array, on row strips in threads for a C-contiguous ``a`` (each element's
    operation unchanged); otherwise numpy's own ``a - mean``, whose result keeps ``a``'s memory order (a turned
    view's), which the norm's sum then follows."""
    from camforensics.runtime import threads

    if not a.flags.c_contiguous:
        return a - mean
    out = np.empty(a.shape, np.float32)

    def part(r0: int, r1: int) -> None:
        np.subtract(a[r0:r1], mean, out=out[r0:r1])

    threads.for_row_strips(part, a.shape[0], a.size)
    return out


def half_turn(s: Spectrum) -> Spectrum:
    """The spectrum of the array turned 180 degrees, from the array's own spectrum, without an FFT.

    With ``a'[y, x] = a[H-1-y, W-1-x]`` (a real array), ``F'(u, v) = exp(2 pi i (u/H + v/W)) conj(F(u, v))`` on the
    half plane; the mean and the norm do not change. Equal to :func:`spectrum_of` of the turned array within
    float32 rounding (``test_half_turn_spectrum_equals_the_fft_of_the_turned_array``).
    """
    if s.conjugated:
        raise ParameterError("half_turn takes an unconjugated (query) spectrum")
    h, w = s.shape
    col = np.exp(2j * np.pi * np.arange(h) / h).astype(np.complex64)[:, None]
    row = np.exp(2j * np.pi * np.arange(s.f.shape[1]) / w).astype(np.complex64)[None, :]
    from camforensics.runtime import threads

    f = np.empty(s.f.shape, np.complex64)

    def part(r0: int, r1: int) -> None:  # row strips in threads: each element's operations as on the whole plane
        np.conjugate(s.f[r0:r1], out=f[r0:r1])
        f[r0:r1] *= col[r0:r1]
        f[r0:r1] *= row

    threads.for_row_strips(part, h, f.size)
    return Spectrum(f=f, norm=s.norm, shape=s.shape, conjugated=False)


def correlate_spectra(a: Spectrum, b: Spectrum) -> np.ndarray:
    """Normalised circular cross-correlation of two arrays given by their spectra (see :func:`cross_correlate`)."""
    if a.shape != b.shape:
        raise SizeMismatchError(f"cannot correlate arrays of shapes {a.shape} and {b.shape}")
    if a.conjugated:
        raise ParameterError("the first spectrum of a correlation is the query's, stored unconjugated")
    prod = a.f * b.conj_f()
    cc = fft.irfft2(prod, s=a.shape, workers=-1)
    denom = a.norm * b.norm
    if denom > 0:
        cc /= np.float32(denom)
    return cc


def cross_correlate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Circular normalised cross-correlation ``cc[dy, dx] = sum a(y, x) * b(y - dy, x - dx) / (|a| |b|)``.

    Both arrays are made zero-mean first (on copies). The value at (0, 0) is the normalised correlation (NCC) of
    the aligned arrays; index (dy, dx) holds the correlation when ``b`` is moved down by dy and right by dx
    (negative shifts wrap to the end of each axis).

    Parameters
    ----------
    a, b : ndarray, 2-D, same shape
        Not modified.

    Returns
    -------
    ndarray, float32, same shape

    Raises
    ------
    SizeMismatchError
        If the shapes differ.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise SizeMismatchError(f"cannot correlate arrays of shapes {a.shape} and {b.shape}")
    return correlate_spectra(spectrum_of(a), spectrum_of(b))


# Terms of the asymptotic series of erfcx(u) = exp(u**2) erfc(u) used where erfc(u) underflows (u >= 26): the
# first term left out is below 1e-22 of the sum there.
_ERFCX_TERMS = 12
_ERFC_TAIL = 26.0  # erfc(26) = 5.7e-296: math.erfc is used below this, the series above


def log_ndtr(a: float) -> float:
    """log of the standard normal CDF, ``log Phi(a)``, finite far into the lower tail (``scipy.special.log_ndtr``
    for one float, without importing scipy.special: its import pulls the array-API layer, 0.1-0.2 s).

    The formulas are scipy's (Faddeeva's ``log_ndtr``): ``log1p(-erfc(t) / 2)`` with ``t = a / sqrt(2)`` for
    ``a >= -1``, ``log(erfcx(-t) / 2) - t**2`` below, where ``erfcx(u) = exp(u**2) erfc(u)``; here ``math.erfc``
    serves down to ``erfc(26)`` (``log(erfc(-t) / 2)``, the same value) and the asymptotic series of erfcx beyond.
    Equal to scipy's within 1e-15 relative wherever the value is not below 1e-290 in magnitude
    (``tests/test_pce.py``).
    """
    if math.isnan(a):
        return a
    if a == -math.inf:
        return -math.inf
    t = a * math.sqrt(0.5)
    if a >= -1.0:
        return math.log1p(-math.erfc(t) / 2)
    u = -t
    if u < _ERFC_TAIL:
        return math.log(math.erfc(u) / 2)
    inv = 1.0 / (2.0 * u * u)
    total, term = 1.0, 1.0
    for k in range(1, _ERFCX_TERMS + 1):
        term *= -(2 * k - 1) * inv
        total += term
    return math.log(total / (2.0 * u * math.sqrt(math.pi))) - u * u


def log10_false_alarm(pce: float, n_shifts: int = 1) -> float:
    """log10 of the probability that a non-matching pair reaches ``pce`` somewhere among ``n_shifts`` shifts.

    Under the null hypothesis the normalised correlation at any shift is standard normal, so one shift exceeds
    ``sqrt(pce)`` with probability ``Q(sqrt(pce))`` and the maximum over ``n_shifts`` with
    ``1 - (1 - Q)**n_shifts`` (Goljan, Fridrich, Filler 2009, eq. for P_FA). A negative PCE (negative peak)
    maps to ``z = -sqrt(|pce|)``.
    """
    z = math.copysign(math.sqrt(abs(pce)), pce)
    log_q = log_ndtr(-z)  # log Q(z)
    n = max(int(n_shifts), 1)
    if math.log(n) + log_q < math.log(1e-8):
        # First order, exact to ~1e-8 relative here, and finite where Q underflows.
        return (math.log(n) + log_q) / math.log(10)
    p = -math.expm1(n * log_ndtr(z))  # log(1 - Q(z)) = log Phi(z), stable for any z
    return math.log10(p) if p > 0 else -math.inf


def compute_pce(
    query: np.ndarray | None,
    reference: np.ndarray | None,
    *,
    shift_range: tuple[int, int] = (0, 0),
    exclusion: int = 11,
    cc: np.ndarray | None = None,
) -> PceResult:
    """PCE of a query against a reference of the same shape.

    The peak is the correlation at zero shift (aligned images) or the maximum within ``+-shift_range``; the
    energy is the mean of ``cc**2`` over all shifts outside an ``exclusion`` x ``exclusion`` square centred on
    the peak (wrapping around the borders, so a peak near a border keeps a full, centred exclusion window).

    Parameters
    ----------
    query, reference : ndarray, 2-D, same shape
        E.g. a residual W and ``I * K``. Not modified.
    shift_range : (int, int), keyword-only
        Largest |dy|, |dx| searched. (0, 0) tests zero shift only.
    exclusion : int, keyword-only
        Odd side of the square left out of the energy; 11 in Goljan's code.
    cc : ndarray, optional, keyword-only
        A precomputed :func:`cross_correlate` of the two arrays (then they are not read).

    Returns
    -------
    PceResult

    References
    ----------
    Goljan, Fridrich, Filler, "Large scale test of sensor fingerprint camera identification", Proc. SPIE 7254,
    2009.
    """
    if cc is None:
        if query is None or reference is None:
            raise ParameterError("compute_pce needs the two arrays or their cross-correlation cc")
        cc = cross_correlate(query, reference)
    h, w = cc.shape
    ry, rx = min(int(shift_range[0]), (h - 1) // 2), min(int(shift_range[1]), (w - 1) // 2)
    if ry == 0 and rx == 0:
        py, px = 0, 0
    else:
        rows = np.arange(-ry, ry + 1) % h
        cols = np.arange(-rx, rx + 1) % w
        window = cc[np.ix_(rows, cols)]
        iy, ix = np.unravel_index(int(np.argmax(window)), window.shape)
        py, px = int(rows[iy]), int(cols[ix])
    peak = float(cc[py, px])
    half = exclusion // 2
    rows = np.arange(py - half, py + half + 1) % h
    cols = np.arange(px - half, px + half + 1) % w
    rows, cols = np.unique(rows), np.unique(cols)  # tiny arrays: the window cannot count a shift twice
    flat = cc.ravel()
    total = float(np.einsum("i,i->", flat, flat, dtype=np.float64))  # float64 accumulation, buffered casts
    near = cc[np.ix_(rows, cols)].astype(np.float64)
    n_out = h * w - near.size
    energy = (total - float(np.sum(near * near))) / n_out if n_out > 0 else 0.0
    return pce_result(peak, energy, signed_shift(py, px, (h, w)), (2 * ry + 1) * (2 * rx + 1))


def signed_shift(py: int, px: int, shape: tuple[int, int]) -> tuple[int, int]:
    """A circular correlation index turned into a signed shift (indices past the middle wrap to negative)."""
    h, w = shape
    return (py if py <= h // 2 else py - h, px if px <= w // 2 else px - w)


def pce_result(peak: float, energy: float, shift: tuple[int, int], n_shifts: int) -> PceResult:
    """The :class:`PceResult` of a correlation peak and the mean correlation energy outside its exclusion window.

    ``PCE = sign(peak) peak**2 / energy`` (0 when the energy is 0) and its false-alarm probability for
    ``n_shifts`` shifts searched (:func:`log10_false_alarm`).
    """
    pce = math.copysign(peak * peak / energy, peak) if energy > 0 else 0.0
    log10_pfa = log10_false_alarm(pce, n_shifts)
    return PceResult(
        pce=float(pce),
        ncc=float(peak),
        peak_shift=(int(shift[0]), int(shift[1])),
        n_shifts=int(n_shifts),
        p_fa=float(10.0**log10_pfa),
        log10_p_fa=float(log10_pfa),
    )


# Largest window of shifts evaluated by the direct partial DFT; beyond it the full inverse FFT is cheaper.
_DIRECT_MAX_SHIFTS = 64 * 64


def _peak_and_energy(cc: np.ndarray, total: float, n: int, ry: int, rx: int, exclusion: int) -> tuple[int, int, float, float, int]:
    """Peak within +-(ry, rx) of the centre of a window ``cc`` of shifts and the energy outside its exclusion square.

    ``cc`` holds shifts -R..R on each axis (R = r + exclusion // 2), ``total`` the sum of cc**2 over all ``n``
    shifts of the plane.
    """
    cy, cx = (cc.shape[0] - 1) // 2, (cc.shape[1] - 1) // 2
    search = cc[cy - ry : cy + ry + 1, cx - rx : cx + rx + 1]
    iy, ix = np.unravel_index(int(np.argmax(search)), search.shape)
    py, px = cy - ry + int(iy), cx - rx + int(ix)
    half = exclusion // 2
    near = cc[py - half : py + half + 1, px - half : px + half + 1].astype(np.float64)
    n_out = n - near.size
    energy = (total - float(np.sum(near * near))) / n_out if n_out > 0 else 0.0
    return py - cy, px - cx, float(cc[py, px]), energy, int((2 * ry + 1) * (2 * rx + 1))


def pce_from_spectra(
    query: Spectrum,
    reference: Spectrum,
    *,
    shift_range: tuple[int, int] = (0, 0),
    exclusion: int = 11,
    scratch: np.ndarray | None = None,
) -> PceResult:
    """PCE from two precomputed spectra; same result as :func:`compute_pce` on their cross-correlation.

    For small shift ranges no inverse FFT is needed: the total correlation energy follows from Parseval's
    theorem (``sum cc**2 = sum |P|**2 / N`` with ``P = Q conj(K)``) and the correlations at the few shifts around
    zero (the search range plus the exclusion square) from a partial inverse DFT done as two small matrix
    products. Larger ranges use the full inverse FFT.

    Parameters
    ----------
    query, reference : Spectrum
        Spectra of arrays of one shape (see :func:`spectrum_of`).
    shift_range, exclusion : keyword-only
        As in :func:`compute_pce`.
    scratch : ndarray, optional, keyword-only
        A complex64 array of the spectra's shape to hold the cross-power (saves an allocation per call).

    Returns
    -------
    PceResult
    """
    if query.shape != reference.shape:
        raise SizeMismatchError(f"cannot correlate arrays of shapes {query.shape} and {reference.shape}")
    h, w = query.shape
    ry, rx = min(int(shift_range[0]), (h - 1) // 2), min(int(shift_range[1]), (w - 1) // 2)
    half = exclusion // 2
    big_y, big_x = ry + half, rx + half
    if 2 * big_y + 1 > h or 2 * big_x + 1 > w or (2 * big_y + 1) * (2 * big_x + 1) > _DIRECT_MAX_SHIFTS:
        cc = correlate_spectra(query, reference)
        return compute_pce(None, None, cc=cc, shift_range=shift_range, exclusion=exclusion)
    denom = query.norm * reference.norm
    if not denom > 0:
        return PceResult(pce=0.0, ncc=0.0, peak_shift=(0, 0), n_shifts=1, p_fa=1.0, log10_p_fa=0.0)
    if query.conjugated:
        raise ParameterError("the query spectrum must be stored unconjugated")
    prod = np.multiply(query.f, reference.conj_f(), out=scratch)  # half plane of P = Q conj(K)
    n = h * w
    wh = prod.shape[1]
    # Each half-plane column but the first (and the Nyquist column of an even width) stands for two columns.
    weight = np.full(wh, 2.0)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    flat = prod.view(np.float32)  # (re, im) pairs side by side: H x 2*wh, no copy
    power = np.einsum("ij,ij->j", flat, flat, dtype=np.float64).reshape(wh, 2).sum(axis=1)  # |P|^2 per column
    total = float(power @ weight) / n / denom**2
    sx = np.arange(-big_x, big_x + 1)
    sy = np.arange(-big_y, big_y + 1)
    ex = (weight[:, None] * np.exp(2j * np.pi * np.outer(np.arange(wh), sx) / w)).astype(np.complex64)  # wh x Sx
    ey = np.exp(2j * np.pi * np.outer(sy, np.arange(h)) / h)  # Sy x H
    partial = prod @ ex  # H x Sx: the inverse DFT along x at the wanted shifts (complex64 BLAS)
    cc = (ey @ partial.astype(np.complex128)).real / (n * denom)  # Sy x Sx
    dy, dx, peak, energy, n_shifts = _peak_and_energy(cc, total, n, ry, rx, exclusion)
    return pce_result(peak, energy, (dy, dx), n_shifts)


# Rows of the half-plane spectra handled together by :func:`pce_many_from_spectra`: the reference's rows, each
# query's and their cross-power stay near the core (3 x 64 rows x 2017 x 8 bytes for a 12 MP plane: 3 MB).
_BLOCK_ROWS = 64
# A plane whose cross-power takes at most this many bytes (512 x 512: 1 MB, 1024 x 1024: 4.2 MB) is formed whole
# on the calling thread: for a few ms of work per fingerprint the blocks, the thread hop and the BLAS thread limit
# cost more than they save (one query, CPU per fingerprint on 2 loaded cores: 512^2 1.41 -> 1.09 ms, 1024^2 4.0 ->
# 3.5 ms, no wall time gained by the threads either).
_WHOLE_PLANE_BYTES = 8 << 20


def pce_many_from_spectra(
    queries: list[Spectrum],
    reference: Spectrum,
    *,
    shift_range: tuple[int, int] = (0, 0),
    exclusion: int = 11,
    power_groups: list[int] | None = None,
) -> list[PceResult]:
    """:func:`pce_from_spectra` of several queries (e.g. one image in its fitting orientations) against one
    reference, in one pass over the reference.

    The cross-powers are formed and used block of rows by block of rows (never a whole plane in memory: each
    block's product, its power and its partial inverse DFT while it is in the cache), the blocks split over the
    engine's threads. ``power_groups[i]``: queries of one group have cross-powers of equal magnitude (an image and
    its half turn, see :func:`half_turn`), whose total is summed once for the group. The same results as
    :func:`pce_from_spectra` within float32 rounding (``test_many_queries_in_one_pass_equal_one_by_one``).
    """
    from camforensics.runtime import native, threads

    if not queries:
        return []
    groups = list(range(len(queries))) if power_groups is None else list(power_groups)
    h, w = reference.shape
    ry, rx = min(int(shift_range[0]), (h - 1) // 2), min(int(shift_range[1]), (w - 1) // 2)
    half = exclusion // 2
    big_y, big_x = ry + half, rx + half
    direct = not (2 * big_y + 1 > h or 2 * big_x + 1 > w or (2 * big_y + 1) * (2 * big_x + 1) > _DIRECT_MAX_SHIFTS)
    for q in queries:
        if q.shape != reference.shape:
            raise SizeMismatchError(f"cannot correlate arrays of shapes {q.shape} and {reference.shape}")
        if q.conjugated:
            raise ParameterError("the query spectrum must be stored unconjugated")
    wh = reference.f.shape[1]
    whole = h * wh * np.dtype(np.complex64).itemsize <= _WHOLE_PLANE_BYTES
    if not direct or not all(q.norm * reference.norm > 0 for q in queries) or (whole and len(queries) == 1):
        # (one query against a small plane: no pass to share, and the one-query function has less to set up)
        return [pce_from_spectra(q, reference, shift_range=shift_range, exclusion=exclusion) for q in queries]
    kf = reference.conj_f()
    weight = np.full(wh, 2.0)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    sx = np.arange(-big_x, big_x + 1)
    ex = (weight[:, None] * np.exp(2j * np.pi * np.outer(np.arange(wh), sx) / w)).astype(np.complex64)  # wh x Sx
    first = {g: groups.index(g) for g in set(groups)}  # the query whose power stands for its group
    partial = [np.empty((h, len(sx)), np.complex64) for _ in queries]
    rows = h if whole else _BLOCK_ROWS
    n_parts = 1 if whole else max(1, min(threads.width(), h // (4 * _BLOCK_ROWS)))
    bounds = threads.strip_bounds(h, n_parts)
    powers = np.zeros((len(bounds), len(queries), wh), np.float64)

    def strip(part: int) -> None:
        r0, r1 = bounds[part]
        prod = np.empty((rows, wh), np.complex64)
        scratch = np.empty(2 * wh, np.float64)
        for b0 in range(r0, r1, rows):
            b1 = min(b0 + rows, r1)
            k_block = kf[b0:b1]
            p = prod[: b1 - b0]
            for i, q in enumerate(queries):
                if first[groups[i]] != i:  # no power to sum: numpy's product is as fast as memory
                    np.multiply(q.f[b0:b1], k_block, out=p)
                elif native.cross_power(q.f[b0:b1], k_block, p, scratch):  # product and power in one pass
                    powers[part, i] += scratch[:wh]
                else:  # the same bits in two numpy passes
                    np.multiply(q.f[b0:b1], k_block, out=p)
                    flat = p.view(np.float32)
                    powers[part, i] += np.einsum("ij,ij->j", flat, flat, dtype=np.float64).reshape(wh, 2).sum(axis=1)
                np.matmul(p, ex, out=partial[i][b0:b1])

    if whole:
        strip(0)
    else:
        with threads.blas_single_threaded():  # one product of 64 rows per call: BLAS's own threads only spin
            if len(bounds) > 1:
                list(threads.pool().map(strip, range(len(bounds))))
            else:
                strip(0)
    n = h * w
    sy = np.arange(-big_y, big_y + 1)
    ey = np.exp(2j * np.pi * np.outer(sy, np.arange(h)) / h)  # Sy x H
    results = []
    for i, q in enumerate(queries):
        denom = q.norm * reference.norm
        power = float(powers[:, first[groups[i]]].sum(axis=0) @ weight)
        cc = (ey @ partial[i].astype(np.complex128)).real / (n * denom)  # Sy x Sx
        dy, dx, peak, energy, n_shifts = _peak_and_energy(cc, power / n / denom**2, n, ry, rx, exclusion)
        results.append(pce_result(peak, energy, (dy, dx), n_shifts))
    return results

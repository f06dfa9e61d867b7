"""Device anonymization: remove a known sensor fingerprint, plant another one, and classical baselines.

The PRNU model of a camera image is ``I = I0 (1 + K) + Theta`` (Lukas, Fridrich, Goljan 2006): the sensor's
fingerprint K multiplies the light I0. Knowing an estimate of K (an enrolled library entry), an attacker can

- *remove* it: ``I' = I - alpha I K``, with alpha estimated on the image itself so that the detector no longer sees
  K (:func:`remove_fingerprint`);
- *copy* another device's fingerprint into it: ``J' = J (1 + beta K_target)`` (:func:`plant_fingerprint`, the
  fingerprint-copy attack of Gloe et al. 2007, analysed by Goljan, Fridrich, Chen 2010/2011).

Both are measured with the detector of :mod:`camforensics.core.matching` (the normalised correlation of ``W I``
with K, and its PCE). The classical baselines (median, Gaussian, JPEG, wavelet denoising) attenuate every
device's PRNU at a larger cost in picture quality. Every function takes an 8-bit HxW or HxWx3 image (any real
dtype on a 0..255 scale is accepted), never modifies it, and returns a new uint8 image of the same shape.
Quality is measured with :func:`camforensics.core.quality.psnr` and :func:`~camforensics.core.quality.ssim`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from camforensics.core.denoise import denoise_channel, min_image_side
from camforensics.core.matching import match_residual
from camforensics.core.params import PCE_THRESHOLD, REMOVAL_OVERSHOOT, MatchParams, ResidualParams
from camforensics.core.quality import psnr, ssim
from camforensics.core.residual import extract_residual, to_grey
from camforensics.errors import ParameterError, SizeMismatchError

__all__ = [
    "BASELINES",
    "PlantFit",
    "PlantParams",
    "RemovalFit",
    "RemovalParams",
    "apply_plant",
    "apply_removal",
    "fingerprint_correlation",
    "fit_plant",
    "fit_removal",
    "gaussian_blur",
    "jpeg_recompress",
    "median_blur",
    "plant_fingerprint",
    "psnr",
    "remove_fingerprint",
    "ssim",
    "wavelet_denoise",
]

# Same-size, stored-order, zero-shift match: the fingerprint is applied in the image's own pixel order.
ALIGNED = MatchParams(rotations="none")
QUERY_RESIDUAL = ResidualParams()  # residual of the detector: the query settings of identify (sigma0 2)
DENOISE_RESIDUAL = ResidualParams(sigma0=3.0)  # wavelet_denoise baseline: the fingerprint setting (sigma0 3)


# --------------------------------------------------------------------------------------------------- helpers


def _pixels(image: np.ndarray) -> np.ndarray:
    """The image as float32 (a new array), checked to be HxW, HxWx1 or HxWx3."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3) or a.size == 0:
        raise ParameterError(f"expected an HxW or HxWx3 image, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise ParameterError(f"expected real pixel values on a 0..255 scale, got dtype {a.dtype}")
    return np.array(a, dtype=np.float32, copy=True)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Round and clip to 0..255, uint8."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _dithered_uint8(x: np.ndarray, seed: int | None) -> np.ndarray:
    """Quantise to uint8 by stochastic rounding ``floor(x + u)``, u uniform in [0, 1) (seeded); plain rounding
    when ``seed`` is None.

    An integer image minus a pattern smaller than half a grey level is unchanged by plain rounding (a dead
    zone), so a weak pattern is partly lost and the detector's response to its scale becomes a step. With
    stochastic rounding the expected output is ``x`` itself: the pattern survives at any scale and the
    response stays linear, at the cost of a quantisation noise of the same size as plain rounding's.
    """
    if seed is None:
        return _to_uint8(x)
    # u < 1 - 2**-12: in float32, x + u must stay below x + 1 for an integer x up to 255 (ulp 1.5e-5 there).
    u = np.random.default_rng(seed).random(x.shape, dtype=np.float32)
    u *= np.float32(1.0 - 2.0**-12)
    u += x  # the same float32 operations as floor(x + u), in place: no 12 MP temporaries
    np.floor(u, out=u)
    np.clip(u, 0, 255, out=u)
    return u.astype(np.uint8)


def _uint8(image: np.ndarray) -> np.ndarray:
    """The image as uint8 (rounded and clipped when it is not uint8 already; always a new array)."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return a.copy() if a.dtype == np.uint8 else _to_uint8(_pixels(a))


def _fingerprint(k: np.ndarray, shape: tuple[int, ...], what: str = "fingerprint") -> np.ndarray:
    """K as float32, checked to have the image's height and width in stored order."""
    kk = np.asarray(k, dtype=np.float32)
    if kk.ndim != 2:
        raise ParameterError(f"a {what} is a 2-D array, got shape {kk.shape}")
    if kk.shape != tuple(shape[:2]):
        raise SizeMismatchError(
            f"image of {shape[1]}x{shape[0]} pixels differs from the {kk.shape[1]}x{kk.shape[0]} {what} "
            "(width x height, stored order): a fingerprint applies only to full-size camera originals"
        )
    return kk


def fitting_residual_params(params: ResidualParams, shape: tuple[int, ...]) -> ResidualParams:
    """``params`` with as many wavelet levels as an image of ``shape`` allows (at most ``params.levels``).

    The denoiser needs ``(filter length - 1) * 2**levels`` pixels per side (112 for 4 levels of db4); smaller
    images are denoised with fewer levels, down to 1.

    Raises
    ------
    ParameterError
        If even one level does not fit.
    """
    levels = params.levels
    while levels > 1 and min(shape[:2]) < min_image_side(replace(params, levels=levels)):
        levels -= 1
    fitted = replace(params, levels=levels)
    if min(shape[:2]) < min_image_side(fitted):
        raise ParameterError(
            f"image of {shape[1]}x{shape[0]} pixels is too small for the wavelet denoiser "
            f"(needs >= {min_image_side(fitted)} pixels per side)"
        )
    return fitted


def fingerprint_correlation(
    image: np.ndarray, k: np.ndarray, *, params: ResidualParams = QUERY_RESIDUAL
) -> float:
    """Normalised correlation of the image's ``W * I`` with fingerprint K at zero shift (the PCE's peak).

    This is Goljan's correlation detector ``<W, I K>`` normalised to -1..1: the statistic that the removal
    drives to zero.

    Parameters
    ----------
    image : ndarray, HxW or HxWx3
        0..255 scale, stored order. Not modified.
    k : ndarray, HxW
        The fingerprint, same height and width.
    params : ResidualParams, keyword-only
        How W is extracted.

    Returns
    -------
    float
    """
    x = _pixels(image)
    kk = _fingerprint(k, x.shape)
    w = extract_residual(x, params=fitting_residual_params(params, x.shape))
    return _ncc(w * to_grey(x), kk)


def _ncc(signal: np.ndarray, k: np.ndarray | _Centred) -> float:
    c = k if isinstance(k, _Centred) else _Centred.of(k)
    s = signal.astype(np.float64)
    s -= signal.mean(dtype=np.float64)
    denom = math.sqrt(float(np.sum(s * s)) * c.sum_sq)
    s *= c.values
    return float(np.sum(s)) / denom if denom > 0 else 0.0


@dataclass(frozen=True)
class _Centred:
    """A fingerprint made zero-mean in float64 once, for the several correlations of one fit."""

    values: np.ndarray  # float64, K - mean(K)
    sum_sq: float  # sum of its squares

    @classmethod
    def of(cls, k: np.ndarray) -> _Centred:
        kk = k.astype(np.float64)
        kk -= k.mean(dtype=np.float64)
        return cls(kk, float(np.sum(kk * kk)))


# --------------------------------------------------------------------------------------------------- removal


def _check_fit_bounds(max_modulation: float, iterations: int) -> None:
    """The bounds that the removal and the plant fits share."""
    if not max_modulation > 0:
        raise ParameterError(f"max_modulation must be > 0, got {max_modulation!r}")
    if not 0 <= iterations <= 10:
        raise ParameterError(f"iterations must be between 0 and 10, got {iterations!r}")


@dataclass(frozen=True)
class RemovalParams:
    """How the fingerprint's presence is estimated and subtracted (see :func:`remove_fingerprint`)."""

    residual: ResidualParams = field(default_factory=ResidualParams)  # residual of the detector (queries: sigma0 2)
    overshoot: float = REMOVAL_OVERSHOOT  # alpha is multiplied by this: 1 aims at zero correlation, >1 drives it negative
    # Split-half reliability of K (Reliability of the library entry): the root is divided by it, aiming at zero
    # correlation with the device's pattern instead of with its estimate; None: aim at the estimate.
    reliability: float | None = None
    max_modulation: float = 0.1  # alpha * std(K) is clipped to this: the pattern's rms relative to the intensity
    iterations: int = 1  # regula-falsi steps on the quantised output after the linear estimate (one residual each)
    dither_seed: int | None = 0  # seed of the stochastic rounding to 8 bits (None: plain rounding, see _dithered_uint8)

    def __post_init__(self) -> None:
        if not self.overshoot > 0:
            raise ParameterError(f"overshoot must be > 0, got {self.overshoot!r}")
        if self.reliability is not None and not 0 < self.reliability <= 1:
            raise ParameterError(f"reliability must be in (0, 1], got {self.reliability!r}")
        _check_fit_bounds(self.max_modulation, self.iterations)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RemovalFit:
    """The alpha of one image and how it was found."""

    alpha: float  # the scale subtracted: I' = I - alpha * I * K (after debiasing, overshoot and clipping)
    alpha_ls: float  # least-squares start <W, I K> / <I K, I K>
    alpha_linear: float  # the linear estimate from the unrounded probe at alpha_ls
    ncc_before: float  # detector correlation of the input with K
    ncc_after: float | None  # of the output (None when overshoot moved alpha off the last point evaluated)
    trace: tuple[tuple[float, float], ...]  # every (alpha, ncc) evaluated
    clipped: bool  # alpha hit 0 or the max_modulation bound
    debias: float = 1.0  # the root was multiplied by this (1 / reliability of K; 1: aimed at the estimate)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["trace"] = [list(t) for t in self.trace]
        return d


def apply_removal(image: np.ndarray, k: np.ndarray, alpha: float, *, dither_seed: int | None = 0) -> np.ndarray:
    """``I' = I - alpha * I * K`` on every channel, quantised to uint8 (stochastic rounding seeded with
    ``dither_seed``, plain rounding when None); ``image`` is not modified."""
    x = _pixels(image)
    return _dithered_uint8(_removed(x, _fingerprint(k, x.shape), alpha), dither_seed)


def _removed(x: np.ndarray, k: np.ndarray, alpha: float) -> np.ndarray:
    """``x - alpha x K`` in float32, not rounded."""
    factor = 1.0 - np.float32(alpha) * k
    return x * (factor if x.ndim == 2 else factor[:, :, None])


def fit_removal(image: np.ndarray, k: np.ndarray, *, params: RemovalParams = RemovalParams()) -> RemovalFit:
    """Estimate how much of fingerprint K the image holds: the alpha of :func:`remove_fingerprint`.

    ``rho(alpha)`` is the detector correlation (:func:`fingerprint_correlation`) of ``I - alpha I K``; the fit
    looks for its zero.

    1. Least squares: W (the image's residual) is regressed on ``I K``: ``alpha_ls = <W, I K> / <I K, I K>``.
       W holds only the part of ``I K`` that the wavelet denoiser passes, so alpha_ls underestimates the
       presence.
    2. Linear step: rho is evaluated once on the *unrounded* ``I - alpha_ls I K``; since the detector is nearly
       linear in small changes, ``alpha_lin = alpha_ls rho(0) / (rho(0) - rho(alpha_ls))``.
    3. Refinement on the 8-bit output: rho is evaluated on the output as it will be saved (quantised by
       stochastic rounding, see :func:`_dithered_uint8`), then ``params.iterations`` steps of regula falsi
       (extrapolating from the last points until a negative rho brackets the zero); the root is interpolated
       between the closest points on either side of zero.
    4. Debiasing: the estimate is ``K_hat = K + E``; zeroing the correlation with K_hat leaves the share
       ``1 - reliability`` of the device's own pattern K in the image (the subtracted estimate's noise E takes
       up the rest of the correlation). With ``params.reliability`` (the estimate's split-half reliability,
       :class:`camforensics.core.fingerprint.Reliability`) the root is divided by it, which aims at zero
       correlation with K itself, so with an examiner's independent estimate of the same sensor too.
    5. The result is multiplied by ``params.overshoot`` and clipped to ``[0, max_modulation / std(K)]`` (the
       subtracted pattern stays below ``max_modulation`` of the intensity, rms). An image without positive
       correlation with K gets alpha 0 (nothing to remove).

    K is used on the scale of the library entry (the fingerprint of :mod:`camforensics.core.fingerprint`, whose
    values are about 250 times the relative PRNU factor): alpha absorbs the scale.

    Parameters
    ----------
    image : ndarray, HxW or HxWx3
        0..255 scale, stored order. Not modified.
    k : ndarray, HxW
        The device's fingerprint estimate (a library entry), same height and width.
    params : RemovalParams, keyword-only

    Returns
    -------
    RemovalFit

    Raises
    ------
    SizeMismatchError
        If the image and K differ in height or width.

    References
    ----------
    Lukas, Fridrich, Goljan, "Digital camera identification from sensor pattern noise", IEEE TIFS 1(2), 2006;
    Goljan, Fridrich, Chen, "Sensor noise camera identification: countering counter-forensics", Proc. SPIE 7541,
    2010. Spearman, "Correlation calculated from faulty data", Br. J. Psychol. 3, 1910; Brown, "Some experimental
    results in the correlation of mental abilities", Br. J. Psychol. 3, 1910 (split-half reliability).
    """
    x = _pixels(image)
    kk = _fingerprint(k, x.shape)
    rp = fitting_residual_params(params.residual, x.shape)
    k_std = float(np.std(kk, dtype=np.float64))
    max_alpha = params.max_modulation / k_std if k_std > 0 else 0.0
    grey = to_grey(x)
    w = extract_residual(x, params=rp)
    rho0 = _ncc(w * grey, kk)
    ik = (grey * kk).astype(np.float64)
    alpha_ls = float(np.sum(w * ik) / max(float(np.sum(ik * ik)), 1e-30))
    del w, ik
    if not (rho0 > 0 and alpha_ls > 0):
        return RemovalFit(0.0, alpha_ls, 0.0, rho0, rho0, ((0.0, rho0),), True)

    centred = _Centred.of(kk)  # once for the fit's three more correlations

    def rho_of(y: np.ndarray) -> float:
        return _ncc(extract_residual(y, params=rp) * to_grey(y), centred)

    rho_lin = rho_of(_removed(x, kk, alpha_ls))
    alpha_linear = alpha_ls * rho0 / (rho0 - rho_lin) if rho_lin < rho0 else 2 * alpha_ls
    alpha = alpha_linear
    trace = [(0.0, rho0)]  # (alpha, rho) of rounded outputs
    for _ in range(params.iterations + 1):
        alpha = min(max(alpha, 0.0), max_alpha)
        trace.append((alpha, rho_of(_dithered_uint8(_removed(x, kk, alpha), params.dither_seed))))
        alpha = _next_alpha(trace)
    root = _next_alpha(trace)
    debias = 1.0 / params.reliability if params.reliability is not None else 1.0
    aim = root * debias * params.overshoot
    final = min(max(aim, 0.0), max_alpha)
    clipped = final != aim or final == 0.0
    after = next((r for a, r in trace if a == final), None)
    return RemovalFit(final, alpha_ls, alpha_linear, rho0, after, tuple(trace), clipped, debias)


def _next_alpha(trace: list[tuple[float, float]]) -> float:
    """Regula falsi between the closest points with rho > 0 and rho <= 0, or extrapolation before a bracket."""
    pos = max((t for t in trace if t[1] > 0), key=lambda t: t[0])
    negative = [t for t in trace if t[1] <= 0]
    if negative:
        neg = min(negative, key=lambda t: t[0])
        (a0, r0), (a1, r1) = pos, neg
        return a0 + r0 * (a1 - a0) / (r0 - r1)
    below = sorted((t for t in trace if t[1] > 0), key=lambda t: t[0])[-2:]
    (a0, r0), (a1, r1) = below if len(below) == 2 else ((0.0, below[0][1]), below[0])
    if r1 < r0 and a1 > a0:
        return min(a1 + r1 * (a1 - a0) / (r0 - r1), 4 * a1)
    return 2 * a1 if a1 > 0 else 1e-3


def remove_fingerprint(image: np.ndarray, k: np.ndarray, *, params: RemovalParams = RemovalParams()) -> np.ndarray:
    """Remove a device's PRNU from one of its images: ``I' = I - alpha I K`` with alpha fitted on the image.

    The fingerprint K of the device (its library entry) predicts the PRNU term ``I0 K ~ I K`` of the image;
    subtracting it with the scale alpha that zeroes the correlation detector (:func:`fit_removal`) makes the
    image's residual uncorrelated with K, so its PCE against the device falls to the level of an unrelated
    camera. The change is a noise-like pattern of the size of the PRNU itself (well under 1 % of the
    intensity): PSNR 55-65 dB on the real-dev photos. Only the fingerprint *estimate* is removed: an analyst
    holding an independent estimate of the same device still finds the part of the PRNU that the attacker's
    estimate lacks (Goljan, Fridrich, Chen 2010); an ``overshoot`` above 1 removes more of it at a cost in PSNR
    (measured in docs/algorithms.md).

    Parameters
    ----------
    image : ndarray, HxW or HxWx3
        8-bit image (0..255), stored (sensor) order, full size. Not modified.
    k : ndarray, HxW
        The device's fingerprint, same height and width.
    params : RemovalParams, keyword-only

    Returns
    -------
    ndarray, uint8, same shape as ``image``

    Raises
    ------
    SizeMismatchError
        If the image and K differ in height or width.

    References
    ----------
    Lukas, Fridrich, Goljan, IEEE TIFS 1(2), 2006; Goljan, Fridrich, Chen, "Sensor noise camera identification:
    countering counter-forensics", Proc. SPIE 7541, 2010.
    """
    return apply_removal(image, k, fit_removal(image, k, params=params).alpha, dither_seed=params.dither_seed)


# --------------------------------------------------------------------------------------------------- copy attack


@dataclass(frozen=True)
class PlantParams:
    """How strongly a target fingerprint is planted (see :func:`plant_fingerprint`)."""

    target_pce: float = 2 * PCE_THRESHOLD  # automatic strength aims at this PCE against the target (2x the threshold)
    max_modulation: float = 0.1  # strength * std(K) is clipped to this: the pattern's rms relative to the intensity
    iterations: int = 3  # secant refinements of the automatic strength (each costs one residual)
    residual: ResidualParams = field(default_factory=ResidualParams)  # residual of the PCE check (queries: sigma0 2)
    dither_seed: int | None = 0  # seed of the stochastic rounding to 8 bits (None: plain rounding)

    def __post_init__(self) -> None:
        if not self.target_pce > 0:
            raise ParameterError(f"target_pce must be > 0, got {self.target_pce!r}")
        _check_fit_bounds(self.max_modulation, self.iterations)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PlantFit:
    """The strength of one planted fingerprint and how it was found."""

    strength: float  # beta of J' = J * (1 + beta * K_target)
    pce_before: float  # PCE of the image against the target fingerprint before planting (aligned, zero shift)
    pce_after: float  # ... after planting at ``strength``
    reached: bool  # pce_after >= the target PCE asked for
    trace: tuple[tuple[float, float], ...]  # every (strength, PCE) evaluated

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["trace"] = [list(t) for t in self.trace]
        return d


def apply_plant(
    image: np.ndarray, k_target: np.ndarray, strength: float, *, dither_seed: int | None = 0
) -> np.ndarray:
    """``J' = J (1 + strength K_target)`` on every channel, quantised to uint8 (stochastic rounding seeded with
    ``dither_seed``, plain rounding when None); ``image`` is not modified."""
    x = _pixels(image)
    return _dithered_uint8(_removed(x, _fingerprint(k_target, x.shape, "target fingerprint"), -strength), dither_seed)


def _aligned_pce(image: np.ndarray, k: np.ndarray, rp: ResidualParams) -> float:
    return match_residual(extract_residual(image, params=rp), to_grey(image), k, match=ALIGNED).pce


def fit_plant(
    image: np.ndarray, k_target: np.ndarray, *, params: PlantParams = PlantParams()
) -> PlantFit:
    """The smallest strength that makes the image match the target fingerprint at ``params.target_pce``.

    The correlation peak grows linearly with the strength while the correlation energy barely changes, so
    ``sign(PCE) sqrt(|PCE|)`` is nearly linear in it: secant steps from strength 0 and from a first probe (the
    strength that adds a pattern of one grey level rms) solve ``sqrt(PCE) = 1.05 sqrt(target_pce)``, until a
    PCE within [1, 1.25] times the target is found; the smallest strength evaluated that reaches the target is
    returned (else the strongest), clipped to ``[0, max_modulation / std(K)]``. The image is quantised to 8 bits
    with stochastic rounding (see :func:`remove_fingerprint`) before each PCE, as it will be saved.

    Parameters
    ----------
    image : ndarray, HxW or HxWx3
        0..255 scale, stored order. Not modified.
    k_target : ndarray, HxW
        The target device's fingerprint, same height and width.
    params : PlantParams, keyword-only

    Returns
    -------
    PlantFit
    """
    x = _pixels(image)
    kk = _fingerprint(k_target, x.shape, "target fingerprint")
    rp = fitting_residual_params(params.residual, x.shape)
    trace: list[tuple[float, float]] = []

    def root_pce(strength: float) -> float:
        pce = _aligned_pce(apply_plant(x, kk, strength, dither_seed=params.dither_seed), kk, rp)
        trace.append((strength, pce))
        return math.copysign(math.sqrt(abs(pce)), pce)

    target = params.target_pce
    goal = 1.05 * math.sqrt(target)  # aim a little above the target: the secant lands on either side of it
    s0, r0 = 0.0, root_pce(0.0)
    # First probe: a pattern of about one grey level rms (K is on the library's scale, not a relative factor).
    k_std = float(np.std(kk, dtype=np.float64))
    max_strength = params.max_modulation / k_std if k_std > 0 else 0.0
    scale = float(np.mean(to_grey(x), dtype=np.float64)) * k_std
    s1 = min(1.0 / scale if scale > 0 else 1.0, max_strength)
    r1 = root_pce(s1)
    for _ in range(params.iterations):
        if any(target <= p <= 1.25 * target for _, p in trace) or r1 == r0:
            break
        s2 = min(max(s1 + (goal - r1) * (s1 - s0) / (r1 - r0), 0.0), max_strength)
        s0, r0, s1 = s1, r1, s2
        r1 = root_pce(s1)
    above = [t for t in trace if t[1] >= target]
    strength, pce_after = min(above) if above else max(trace, key=lambda t: t[1])
    return PlantFit(strength, trace[0][1], pce_after, pce_after >= target, tuple(trace))


def plant_fingerprint(
    image: np.ndarray,
    k_target: np.ndarray,
    *,
    strength: float | None = None,
    k_source: np.ndarray | None = None,
    params: PlantParams = PlantParams(),
    removal: RemovalParams = RemovalParams(),
) -> np.ndarray:
    """Fingerprint-copy attack: make an image match another device, ``J' = J (1 + strength K_target)``.

    With ``strength=None`` the strength is the smallest that brings the PCE against ``k_target`` to
    ``params.target_pce`` (:func:`fit_plant`), which keeps the added pattern, and the loss in PSNR, as small as
    the decision allows. When the source device's own fingerprint ``k_source`` is known it is removed first
    (:func:`remove_fingerprint`), so the image matches the target and no longer its own camera. The forgery is
    only as good as the fingerprint estimate planted: Goljan et al.'s triangle test finds copies of a
    fingerprint estimated from images the victim can obtain.

    Parameters
    ----------
    image : ndarray, HxW or HxWx3
        8-bit image (0..255), stored order. Not modified.
    k_target : ndarray, HxW
        The target device's fingerprint, same height and width.
    strength : float or None, keyword-only
        beta; None fits it.
    k_source : ndarray, HxW, optional, keyword-only
        The source device's fingerprint, removed first.
    params, removal : keyword-only
        Planting and removal parameters.

    Returns
    -------
    ndarray, uint8, same shape as ``image``

    References
    ----------
    Gloe, Kirchner, Winkler, Boehme, "Can we trust digital image forensics?", ACM Multimedia 2007;
    Goljan, Fridrich, Chen, "Defending against fingerprint-copy attack in sensor-based camera identification",
    IEEE TIFS 6(1), 2011.
    """
    x = image if k_source is None else remove_fingerprint(image, k_source, params=removal)
    if strength is None:
        strength = fit_plant(x, k_target, params=params).strength
    return apply_plant(x, k_target, strength, dither_seed=params.dither_seed)


# --------------------------------------------------------------------------------------------------- baselines


def median_blur(image: np.ndarray, *, size: int = 5) -> np.ndarray:
    """Median filter of ``size`` x ``size`` on each channel (OpenCV, replicated borders), uint8."""
    if size < 3 or size % 2 == 0:
        raise ParameterError(f"median size must be an odd number >= 3, got {size!r}")
    return cv2.medianBlur(_uint8(image), size)


def gaussian_blur(image: np.ndarray, *, size: int = 5, sigma: float | None = None) -> np.ndarray:
    """Gaussian filter of ``size`` x ``size`` on each channel, mirrored borders, rounded to uint8.

    ``sigma=None`` uses OpenCV's rule for the kernel size, ``0.3 ((size - 1) / 2 - 1) + 0.8`` (1.1 for 5x5).
    """
    if size < 3 or size % 2 == 0:
        raise ParameterError(f"Gaussian size must be an odd number >= 3, got {size!r}")
    s = 0.3 * ((size - 1) * 0.5 - 1) + 0.8 if sigma is None else float(sigma)
    if not s > 0:
        raise ParameterError(f"Gaussian sigma must be > 0, got {sigma!r}")
    return _to_uint8(cv2.GaussianBlur(_pixels(image), (size, size), s, borderType=cv2.BORDER_REFLECT_101))


def jpeg_recompress(image: np.ndarray, *, quality: int = 75) -> np.ndarray:
    """Encode as baseline JPEG at ``quality`` (1-100, OpenCV/libjpeg, 4:2:0 chroma for colour) and decode."""
    if not 1 <= int(quality) <= 100:
        raise ParameterError(f"JPEG quality must be between 1 and 100, got {quality!r}")
    a = _uint8(image)
    bgr = a if a.ndim == 2 else np.ascontiguousarray(a[:, :, ::-1])
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ParameterError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return decoded if decoded.ndim == 2 else np.ascontiguousarray(decoded[:, :, ::-1])


def wavelet_denoise(image: np.ndarray, *, params: ResidualParams = DENOISE_RESIDUAL) -> np.ndarray:
    """The image minus its wavelet Wiener noise, per channel (the denoiser of Lukas et al. 2006, Appendix A).

    The subtracted noise is exactly what residual extraction keeps (before grey, zero-mean and DFT Wiener), so
    most of the PRNU goes with it; sigma0 sets how much texture goes too. Images too small for
    ``params.levels`` are denoised with fewer levels.
    """
    x = _pixels(image)
    rp = fitting_residual_params(params, x.shape)
    if x.ndim == 2:
        return _to_uint8(x - denoise_channel(x, params=rp))
    return _to_uint8(np.stack([x[:, :, c] - denoise_channel(x[:, :, c], params=rp) for c in range(3)], axis=2))


# Baseline name (as the command line spells it) -> function(image, **options).
BASELINES = {
    "median": median_blur,
    "gaussian": gaussian_blur,
    "jpeg": jpeg_recompress,
    "denoise": wavelet_denoise,
}

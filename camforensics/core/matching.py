"""Match a query (image or residual) against a fingerprint, trying the rotations the sizes allow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camforensics.core.params import MatchParams, ResidualParams
from camforensics.core.pce import PceResult, Spectrum, log10_false_alarm, pce_from_spectra, spectrum_of
from camforensics.core.residual import extract_residual, to_grey
from camforensics.errors import SizeMismatchError


@dataclass(frozen=True)
class MatchResult:
    """Best PCE of a query against one fingerprint over the rotations and shifts searched."""

    pce: float  # PCE at the best rotation
    ncc: float  # normalised correlation at the peak
    rotation: int  # degrees counter-clockwise that turn the stored query into the fingerprint's sensor order
    peak_shift: tuple[int, int]  # (dy, dx) of the peak at that rotation
    n_hypotheses: int  # rotations x shifts searched (enters the false-alarm correction)
    p_fa: float  # false-alarm probability of this PCE given n_hypotheses
    log10_p_fa: float  # finite even where p_fa underflows to 0
    pce_by_rotation: dict[int, float] = field(default_factory=dict)  # every rotation tried

    def to_dict(self) -> dict[str, Any]:
        return {
            "pce": self.pce,
            "ncc": self.ncc,
            "rotation": self.rotation,
            "peak_shift": list(self.peak_shift),
            "n_hypotheses": self.n_hypotheses,
            "p_fa": self.p_fa,
            "log10_p_fa": self.log10_p_fa,
            "pce_by_rotation": {str(k): v for k, v in self.pce_by_rotation.items()},
        }


def candidate_rotations(query_shape: tuple[int, ...], reference_shape: tuple[int, ...], *, mode: str = "all") -> list[int]:
    """Rotations (degrees counter-clockwise, multiples of 90) under which a query fits a reference's shape.

    ``mode="none"`` allows only the stored order; ``"all"`` the four rotations whose shape fits.
    """
    h, w = query_shape[:2]
    ref = tuple(reference_shape[:2])
    allowed = (0,) if mode == "none" else (0, 90, 180, 270)
    return [r for r in allowed if ((h, w) if r in (0, 180) else (w, h)) == ref]


class Query:
    """A query signal whose rotated spectra are computed once and reused against many fingerprints.

    For an image the signal is ``W * I`` (residual times grey intensity): its correlation with K at zero shift is
    Goljan's detector ``<W, I K>``, and at other shifts the fingerprint moves while the image content stays with
    its own residual, which is what a crop or misalignment does. For fingerprint-to-fingerprint matching the
    signal is the fingerprint itself (``grey=None``).

    Parameters
    ----------
    residual : ndarray, HxW
        Residual W (or a fingerprint) in stored order. Not modified.
    grey : ndarray, HxW, or None
        Grey intensities of the query image on a 0..255 scale.
    """

    def __init__(self, residual: np.ndarray, grey: np.ndarray | None = None) -> None:
        w = np.asarray(residual, dtype=np.float32)
        if grey is not None and np.shape(grey) != w.shape:
            raise SizeMismatchError(f"residual {w.shape} and intensity {np.shape(grey)} differ in shape")
        self.signal = w if grey is None else w * np.asarray(grey, dtype=np.float32)
        self._spectra: dict[int, Spectrum] = {}
        self._scratch: dict[tuple[int, ...], np.ndarray] = {}

    def scratch(self, spectrum: Spectrum) -> np.ndarray:
        """A reusable buffer for the cross-power with a spectrum of this query's (rotated) shape."""
        buf = self._scratch.get(spectrum.f.shape)
        if buf is None:
            buf = self._scratch[spectrum.f.shape] = np.empty(spectrum.f.shape, np.complex64)
        return buf

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.signal.shape[0]), int(self.signal.shape[1]))

    def spectrum(self, rotation: int) -> Spectrum:
        """Spectrum of the signal turned ``rotation`` degrees counter-clockwise (cached)."""
        if rotation not in self._spectra:
            self._spectra[rotation] = spectrum_of(np.rot90(self.signal, rotation // 90))
        return self._spectra[rotation]


def match_query(query: Query, reference: Spectrum, *, match: MatchParams = MatchParams()) -> MatchResult:
    """Best PCE of a :class:`Query` against a fingerprint spectrum over the allowed rotations and shifts.

    Raises
    ------
    SizeMismatchError
        If no allowed rotation of the query has the reference's shape.
    """
    rotations = candidate_rotations(query.shape, reference.shape, mode=match.rotations)
    if not rotations:
        h, w = query.shape
        raise SizeMismatchError(
            f"query of {w}x{h} pixels fits no rotation of the {reference.shape[1]}x{reference.shape[0]} fingerprint"
        )
    best: tuple[int, PceResult] | None = None
    by_rotation: dict[int, float] = {}
    for r in rotations:
        spectrum = query.spectrum(r)
        res = pce_from_spectra(
            spectrum, reference, shift_range=match.shift_range, exclusion=match.exclusion, scratch=query.scratch(spectrum)
        )
        by_rotation[r] = res.pce
        if best is None or res.pce > best[1].pce:
            best = (r, res)
    rotation, res = best  # type: ignore[misc]  (rotations is non-empty)
    n_hyp = res.n_shifts * len(rotations)
    log10_pfa = log10_false_alarm(res.pce, n_hyp)
    return MatchResult(
        pce=res.pce,
        ncc=res.ncc,
        rotation=rotation,
        peak_shift=res.peak_shift,
        n_hypotheses=n_hyp,
        p_fa=float(10.0**log10_pfa),
        log10_p_fa=log10_pfa,
        pce_by_rotation=by_rotation,
    )


def match_residual(
    residual: np.ndarray,
    grey: np.ndarray | None,
    k: np.ndarray,
    *,
    match: MatchParams = MatchParams(),
) -> MatchResult:
    """PCE of a query residual against fingerprint ``k``, best over allowed rotations (see :class:`Query`).

    Parameters
    ----------
    residual : ndarray, HxW
        The query's noise residual in stored order. Not modified.
    grey : ndarray, HxW, or None
        The query's grey intensities (0..255); None matches W (or a fingerprint) with K directly.
    k : ndarray
        The fingerprint.
    match : MatchParams, keyword-only

    Raises
    ------
    SizeMismatchError
        If no allowed rotation of the query has the fingerprint's shape.
    """
    return match_query(Query(residual, grey), spectrum_of(k, conjugate=True), match=match)


def match_image(
    image: np.ndarray,
    k: np.ndarray,
    *,
    residual_params: ResidualParams = ResidualParams(),
    match: MatchParams = MatchParams(),
) -> MatchResult:
    """Extract the residual of ``image`` and match it against fingerprint ``k`` (see :func:`match_residual`)."""
    return match_residual(extract_residual(image, params=residual_params), to_grey(image), k, match=match)

"""Match a query (image or residual) against a fingerprint: same size in the rotations that fit, or as a crop
(scaled, turned) searched over its offsets (see :mod:`camforensics.core.cropsearch`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camforensics.core.cropsearch import (
    DIH4,
    MIN_CROP_SIDE,
    corrected_threshold,
    crop_pces,
    known_offset_result,
    local_weight_map,
    offset_window,
    orient,
    padded_spectrum,
    query_energy,
    sensor_shape,
    to_sensor_scale,
    window_size,
)
from camforensics.core.jpeggrid import GridPhase, grid_offsets, grid_phase
from camforensics.core.params import PCE_THRESHOLD, MatchParams, ResidualParams
from camforensics.core.pce import (
    PceResult,
    Spectrum,
    half_turn,
    log10_false_alarm,
    pce_many_from_spectra,
    spectrum_of,
)
from camforensics.core.residual import extract_residual, local_scale, to_grey
from camforensics.errors import SizeMismatchError


@dataclass(frozen=True)
class MatchResult:
    """Best PCE of a query against one fingerprint over the orientations, scales and shifts searched."""

    pce: float  # PCE at the best rotation
    ncc: float  # normalised correlation at the peak
    rotation: int  # degrees counter-clockwise that turn the stored query into the fingerprint's sensor order
    peak_shift: tuple[int, int]  # (dy, dx) of the peak at that rotation (a crop: its offset, as crop_offset)
    n_hypotheses: int  # orientations x scales x shifts searched (enters the false-alarm correction)
    p_fa: float  # false-alarm probability of this PCE given n_hypotheses
    log10_p_fa: float  # finite even where p_fa underflows to 0
    pce_by_rotation: dict[int | str, float] = field(default_factory=dict)  # every orientation tried ("m90": mirrored)
    threshold: float = PCE_THRESHOLD  # decision threshold of this search (crop searches: raised for n_hypotheses)
    mirrored: bool = False  # the stored query was flipped left-right before the rotation
    scale: float = 1.0  # query pixel size / sensor pixel size at the best match
    crop_offset: tuple[int, int] | None = None  # (row, column) of the query's top-left corner on the sensor; None: same size
    search: str = "aligned"  # "aligned": same size as the fingerprint; "crop": searched as a crop
    jpeg_grid: dict[str, Any] | None = None  # crop searches: the query's block grid (found or not), whether the peak is its test's

    @property
    def is_match(self) -> bool:
        """Whether the PCE exceeds this search's decision threshold."""
        return self.pce > self.threshold

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
            "threshold": self.threshold,
            "mirrored": self.mirrored,
            "scale": self.scale,
            "crop_offset": list(self.crop_offset) if self.crop_offset is not None else None,
            "search": self.search,
            "jpeg_grid": self.jpeg_grid,
        }


def variant_key(rotation: int, mirrored: bool) -> int | str:
    """Key of an orientation in ``pce_by_rotation``: the rotation, prefixed with "m" when mirrored."""
    return f"m{rotation}" if mirrored else rotation


def candidate_rotations(query_shape: tuple[int, ...], reference_shape: tuple[int, ...], *, mode: str = "all") -> list[int]:
    """Rotations (degrees counter-clockwise, multiples of 90) under which a query has a reference's shape.

    ``mode="none"`` allows only the stored order; ``"all"`` and ``"dih4"`` the four rotations whose shape fits
    (``"dih4"`` also tries each mirrored, see :func:`match_query`).
    """
    h, w = query_shape[:2]
    ref = tuple(reference_shape[:2])
    allowed = (0,) if mode == "none" else (0, 90, 180, 270)
    return [r for r in allowed if ((h, w) if r in (0, 180) else (w, h)) == ref]


@dataclass(frozen=True)
class CropHypotheses:
    """One orientation and scale of a crop search: where the resampled query may sit in the reference."""

    rotation: int
    mirrored: bool
    scale: float
    shape: tuple[int, int]  # the query's size at sensor resolution in this orientation
    window: tuple[slice, slice]  # offsets searched

    @property
    def n(self) -> int:
        return (self.window[0].stop - self.window[0].start) * (self.window[1].stop - self.window[1].start)


def crop_plan(
    query_shape: tuple[int, ...], reference_shape: tuple[int, ...], *, match: MatchParams = MatchParams()
) -> tuple[list[CropHypotheses], list[CropHypotheses]]:
    """The crop searches of a query smaller than a reference: (first stage, fallback stage).

    ``rotations="none"``: the stored order only; ``"dih4"``: the 8 orientations at once; ``"all"``: the stored order
    first and the 7 others only when it finds no match (turned or mirrored copies are rarer than plain crops, and
    each orientation costs a full search). Orientations and scales that leave the query larger than the
    reference, or with a side under ``MIN_CROP_SIDE``, are left out. Both lists are empty when crops are not
    searched (``crop_anchor="none"``) or nothing fits.
    """
    if not match.searches_crops:
        return [], []
    ref = (int(reference_shape[0]), int(reference_shape[1]))
    variants = [(0, False)] if match.rotations == "none" else list(DIH4)
    stages: tuple[list[CropHypotheses], list[CropHypotheses]] = ([], [])
    for rotation, mirrored in variants:
        h, w = query_shape[:2] if rotation in (0, 180) else (query_shape[1], query_shape[0])
        for scale in match.scales:
            shape = sensor_shape((h, w), scale)
            if min(shape) < MIN_CROP_SIDE:
                continue
            window = offset_window(shape, ref, anchor=match.crop_anchor, shift_range=match.shift_range)
            if window is None:
                continue
            fallback = match.rotations == "all" and (rotation, mirrored) != (0, False)
            stages[1 if fallback else 0].append(CropHypotheses(rotation, mirrored, scale, shape, window))
    return stages


def fits(query_shape: tuple[int, ...], reference_shape: tuple[int, ...], *, match: MatchParams = MatchParams()) -> bool:
    """Whether a query of ``query_shape`` can be matched against a reference: same size or as a crop."""
    if candidate_rotations(query_shape, reference_shape, mode=match.rotations):
        return True
    first, fallback = crop_plan(query_shape, reference_shape, match=match)
    return bool(first or fallback)


# Memory for the padded query spectra a Query keeps between fingerprints of one size (bytes).
PADDED_CACHE_BYTES = 1 << 30


class Query:
    """A query signal whose turned (and, for crop searches, padded) spectra are computed once and reused against
    many fingerprints.

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
        self._residual = w
        self._grey = grey
        self._scene_weighted: dict[int, np.ndarray] = {}
        self._grid: GridPhase | None = None
        self._spectra: dict[tuple[int, bool], Spectrum] = {}
        self._padded: dict[tuple[int, bool, float, tuple[int, int], int], Spectrum] = {}
        self._padded_bytes = 0
        self._energy: dict[tuple[int, bool, float, tuple[int, int], int, int], np.ndarray] = {}
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

    def grid(self) -> GridPhase | None:
        """The JPEG block-grid phase of the query image (measured once; None without its intensities or when the
        image is under 16 pixels on a side)."""
        if self._grid is None and self._grey is not None and min(self.shape) >= 16:
            self._grid = grid_phase(np.asarray(self._grey))
        return self._grid

    def spectrum(self, rotation: int, mirrored: bool = False) -> Spectrum:
        """Spectrum of the signal (flipped left-right when ``mirrored``) turned ``rotation`` degrees
        counter-clockwise (cached)."""
        key = (rotation, mirrored)
        if key not in self._spectra:
            turned = self._spectra.get(((rotation + 180) % 360, mirrored))
            self._spectra[key] = (
                half_turn(turned) if turned is not None else spectrum_of(orient(self.signal, rotation, mirrored))
            )
        return self._spectra[key]

    def scene_weighted(self, window: int) -> np.ndarray:
        """The signal with the residual divided by its local scale over ``window`` pixels
        (:func:`camforensics.core.residual.local_scale`: the local standard deviation relative to the median), so
        that textured areas, where the residual is mostly scene, count less; the signal itself when ``window`` is 0
        or the query has no intensities (a fingerprint). Cached."""
        if not window or self._grey is None:
            return self.signal
        if window not in self._scene_weighted:
            self._scene_weighted[window] = self.signal / local_scale(self._residual, window)
        return self._scene_weighted[window]

    def placed(self, hyp: CropHypotheses, scene_window: int) -> np.ndarray:
        """The signal (:meth:`scene_weighted` over ``scene_window``) in ``hyp``'s orientation at its scale: what
        :meth:`padded` and :meth:`energy` place at the top-left of the plane (not cached)."""
        return to_sensor_scale(orient(self.scene_weighted(scene_window), hyp.rotation, hyp.mirrored), hyp.scale)

    def energy(self, hyp: CropHypotheses, shape: tuple[int, int], *, scene_window: int, window: int) -> np.ndarray:
        """:func:`camforensics.core.cropsearch.query_energy` of the signal as :meth:`padded` places it (cached)."""
        key = (hyp.rotation, hyp.mirrored, hyp.scale, shape, scene_window, window)
        energy = self._energy.get(key)
        if energy is None:
            energy = self._energy[key] = query_energy(self.placed(hyp, scene_window), shape, window)
        return energy

    def padded(self, hyp: CropHypotheses, shape: tuple[int, int], *, scene_window: int = 0) -> Spectrum:
        """Spectrum of the signal (:meth:`scene_weighted` over ``scene_window``) in ``hyp``'s orientation,
        resampled to its scale and zero-padded to ``shape`` (cached within ``PADDED_CACHE_BYTES``)."""
        key = (hyp.rotation, hyp.mirrored, hyp.scale, shape, scene_window)
        spectrum = self._padded.get(key)
        if spectrum is None:
            spectrum = padded_spectrum(self.placed(hyp, scene_window), shape)
            if self._padded_bytes + spectrum.nbytes <= PADDED_CACHE_BYTES:
                self._padded[key] = spectrum
                self._padded_bytes += spectrum.nbytes
        return spectrum


def match_query(
    query: Query, reference: Spectrum, *, match: MatchParams = MatchParams(), orientation_fallback: bool = True
) -> MatchResult:
    """Best PCE of a :class:`Query` against a fingerprint spectrum over the allowed orientations and shifts.

    A query of the fingerprint's size (in some rotation) is matched aligned, within ``match.shift_range`` of zero
    shift, against the decision threshold ``match.threshold``. A smaller one is searched as a crop
    (:func:`match_crop`, with its ``orientation_fallback``) when ``match.crop_anchor`` allows it.

    Raises
    ------
    SizeMismatchError
        If the query fits the reference neither at its size in an allowed rotation nor as a crop.
    """
    rotations = candidate_rotations(query.shape, reference.shape, mode=match.rotations)
    if rotations:
        return _match_aligned(query, reference, rotations, match)
    result = match_crop(query, reference, match=match, orientation_fallback=orientation_fallback)
    if result is None:
        h, w = query.shape
        how = "as a crop at any scale searched" if match.searches_crops else "(crop search off)"
        raise SizeMismatchError(
            f"query of {w}x{h} pixels fits no rotation of the {reference.shape[1]}x{reference.shape[0]} fingerprint, "
            f"neither at its size nor {how}"
        )
    return result


def _match_aligned(query: Query, reference: Spectrum, rotations: list[int], match: MatchParams) -> MatchResult:
    """The same-size search: every fitting rotation (and its mirror with ``rotations="dih4"``) near zero shift."""
    variants = [(r, False) for r in rotations]
    if match.rotations == "dih4":
        variants += [(r, True) for r in rotations]
    best: tuple[int, bool, PceResult] | None = None
    by_rotation: dict[int | str, float] = {}
    spectra = [query.spectrum(r, mirrored) for r, mirrored in variants]
    keys = [(r % 180, mirrored) for r, mirrored in variants]  # a half turn keeps the cross-power's magnitude
    found = pce_many_from_spectra(
        spectra, reference, shift_range=match.shift_range, exclusion=match.exclusion, power_groups=[keys.index(k) for k in keys]
    )
    for (r, mirrored), res in zip(variants, found):
        by_rotation[variant_key(r, mirrored)] = res.pce
        if best is None or res.pce > best[2].pce:
            best = (r, mirrored, res)
    rotation, mirrored, res = best  # type: ignore[misc]  (rotations is non-empty)
    n_hyp = res.n_shifts * len(variants)
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
        threshold=match.threshold,
        mirrored=mirrored,
    )


def match_crop(
    query: Query, reference: Spectrum, *, match: MatchParams = MatchParams(), orientation_fallback: bool = True
) -> MatchResult | None:
    """Search a query smaller than the fingerprint as a crop: over scales, orientations and offsets.

    Every hypothesis of :func:`crop_plan`'s first stage is searched (zero-padded FFT correlation over all its
    offsets, :func:`camforensics.core.cropsearch.crop_pce`); the fallback stage (other orientations) only when
    the first finds no match, and only with ``orientation_fallback`` (a library search first tries every
    fingerprint in the stored order, see :class:`camforensics.pipelines.search.FingerprintIndex`), unless the
    stored order does not fit at all. The false-alarm probability and the decision threshold
    (:func:`camforensics.core.cropsearch.corrected_threshold`) count every offset of every stage searched.

    Scene weighting (``match.crop_scene_window``, 15 pixels by default, 0: off): the query's residual is divided by
    its local standard deviation (relative to its median) before it is padded, the matched filter for a residual
    whose variance follows the scene (edges and texture leak through the denoiser), measured on 150 crops of real
    photos in bench/bench_crop_detectors.py (docs/prnu-accuracy.md, section 4). Same-size queries are not weighted.

    Local normalisation (``match.crop_variance_window``, 15 by default, 0: off): the correlation at each offset is
    divided by its null standard deviation there (:func:`camforensics.core.cropsearch.local_weight_map`: the query's
    local energy against the fingerprint's squared values under it) before the PCE is read, so that offsets where
    an uneven fingerprint (few natural photos, dark areas, defects) has more energy do not dominate the search's
    maximum; chosen on validation crops in bench/bench_crop_local.py (docs/prnu-accuracy.md, section 4).

    JPEG grid (``match.jpeg_grid``, a search over every offset, ``crop_anchor="any"``, of a query with intensities
    whose block grid is found, see :mod:`camforensics.core.jpeggrid`): the stored order at scale 1 also yields the
    peak over the offsets that put the query's grid on the sensor's (1 in 64), from the same correlation plane.
    Two tests then share the false-alarm probability, each at half of it: the peak on the grid against the
    threshold for twice its offsets, the peak over all offsets against the threshold for twice all of them. The
    result is the test that matches (the smaller false-alarm probability when both do), else the grid's, so that
    fingerprints that do not match rank by the same statistic.

    Returns
    -------
    MatchResult or None
        None when no orientation and scale fits.
    """
    first, fallback = crop_plan(query.shape, reference.shape, match=match)
    if first and not orientation_fallback:
        fallback = []
    detected = query.grid() if match.jpeg_grid and match.crop_anchor == "any" else None
    grid = detected if detected is not None and detected.found else None
    best: tuple[CropHypotheses, PceResult] | None = None
    on_grid: tuple[CropHypotheses, PceResult] | None = None
    by_rotation: dict[int | str, float] = {}
    n_hyp = 0
    for stage in (first, fallback):
        if not stage:
            continue
        if best is not None:
            _, peak, threshold, _, _ = _crop_decision(best, on_grid, n_hyp, match)
            if peak.pce > threshold:
                continue  # a match already: the fallback orientations are not searched
        for hyp in stage:
            spectrum = query.padded(hyp, reference.shape, scene_window=match.crop_scene_window)
            windows = [hyp.window]
            if grid is not None and hyp.scale == 1.0 and (hyp.rotation, hyp.mirrored) == (0, False):
                windows.append(grid_offsets(grid.phase, hyp.window))
            if match.crop_offset_statistic == "matched" and window_size(hyp.window) == 1:
                energy = query.energy(hyp, reference.shape, scene_window=match.crop_scene_window,
                                      window=match.crop_variance_window or 1)
                offset = (hyp.window[0].start, hyp.window[1].start)
                results = [known_offset_result(spectrum, hyp.shape, reference, offset, energy, scratch=query.scratch(spectrum))]
            else:
                weight = None
                if match.crop_variance_window:
                    energy = query.energy(hyp, reference.shape, scene_window=match.crop_scene_window,
                                          window=match.crop_variance_window)
                    weight = local_weight_map(energy, reference)
                results = crop_pces(spectrum, hyp.shape, reference, windows, exclusion=match.exclusion,
                                    scratch=query.scratch(spectrum), weight=weight)
            res = results[0]
            n_hyp += res.n_shifts
            key = variant_key(hyp.rotation, hyp.mirrored)
            by_rotation[key] = max(by_rotation.get(key, -np.inf), res.pce)
            if best is None or res.pce > best[1].pce:
                best = (hyp, res)
            if len(results) > 1 and results[1].n_shifts and (on_grid is None or results[1].pce > on_grid[1].pce):
                on_grid = (hyp, results[1])
    if best is None:
        return None
    hyp, res, threshold, n_tested, grid_test = _crop_decision(best, on_grid, n_hyp, match)
    log10_pfa = log10_false_alarm(res.pce, n_tested)
    return MatchResult(
        pce=res.pce,
        ncc=res.ncc,
        rotation=hyp.rotation,
        peak_shift=res.peak_shift,
        n_hypotheses=n_tested,
        p_fa=float(10.0**log10_pfa),
        log10_p_fa=log10_pfa,
        pce_by_rotation=by_rotation,
        threshold=threshold,
        mirrored=hyp.mirrored,
        scale=hyp.scale,
        crop_offset=res.peak_shift,
        search="crop",
        jpeg_grid=None if detected is None else {**detected.to_dict(), "peak_on_grid_test": grid_test},
    )


def _crop_decision(
    best: tuple[CropHypotheses, PceResult],
    on_grid: tuple[CropHypotheses, PceResult] | None,
    n_hyp: int,
    match: MatchParams,
) -> tuple[CropHypotheses, PceResult, float, int, bool]:
    """(hypothesis, peak, threshold, hypotheses counted, whether it is the grid test's) of a crop search: every
    offset against the threshold for ``n_hyp``, or with a grid test the two tests at half the false-alarm
    probability each (see :func:`match_crop`)."""
    if on_grid is None:
        return best[0], best[1], corrected_threshold(match.threshold, n_hyp), n_hyp, False
    n_all, n_grid = 2 * n_hyp, 2 * on_grid[1].n_shifts
    t_all, t_grid = corrected_threshold(match.threshold, n_all), corrected_threshold(match.threshold, n_grid)
    all_hit, grid_hit = best[1].pce > t_all, on_grid[1].pce > t_grid
    if all_hit and not (grid_hit and log10_false_alarm(on_grid[1].pce, n_grid) <= log10_false_alarm(best[1].pce, n_all)):
        return best[0], best[1], t_all, n_all, False
    return on_grid[0], on_grid[1], t_grid, n_grid, True


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

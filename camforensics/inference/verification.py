"""Same-device verification with a Siamese model: set inputs, extended inference, fusion with PRNU.

A set of images becomes one model input per patch position: every image is centre-cropped to the area common to
both sets, encoded for the model (:func:`camforensics.core.modelinput.encode_input`: the wavelet Wiener residual
for ``WW``, pixels for the in-graph preprocessors), cut at the same positions on both sides, and averaged over the
set's images position by position. The graph sees only averages, so any number of images per side gives inputs of
one shape. "Extended inference" averages the graph's logits over many positions spread over the common area.

The fused score is a logistic (Platt) calibration of two features, the classical PRNU PCE as
``sign(pce) * log1p(|pce|)`` and the Siamese mean logit, fitted on labelled validation pairs
(:func:`fit_fusion`) and stored in the model's manifest entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from camforensics.core.metrics import roc_auc
from camforensics.core.modelinput import check_preprocessor, encode_input
from camforensics.core.params import PCE_THRESHOLD
from camforensics.errors import ParameterError, SizeMismatchError
from camforensics.inference.registry import LoadedModel

TASK = "same-device-verification"
PRNU_FEATURE = "sign(pce) * log1p(|pce|)"
SIAMESE_FEATURE = "siamese mean logit over positions"
DEFAULT_POSITIONS = 128  # patch positions of extended inference when a model's manifest names none


def common_area(shapes: Iterable[Sequence[int]]) -> tuple[int, int]:
    """(height, width) shared by images of these shapes when each is centre-cropped: the smallest height and
    width, rounded down to even (crop offsets stay even, so every image keeps its 2x2 CFA phase)."""
    hs, ws = zip(*((int(s[0]), int(s[1])) for s in shapes), strict=True)
    return (min(hs) // 2 * 2, min(ws) // 2 * 2)


def centre_offsets(shape: Sequence[int], area: tuple[int, int]) -> tuple[int, int]:
    """Top-left (y, x) of the centred ``area`` in an image of ``shape``, rounded down to even."""
    h, w = int(shape[0]), int(shape[1])
    if h < area[0] or w < area[1]:
        raise SizeMismatchError(f"a {w}x{h} image is smaller than the {area[1]}x{area[0]} common area")
    return ((h - area[0]) // 4 * 2, (w - area[1]) // 4 * 2)


def spread_positions(area: tuple[int, int], *, crop: int, n: int) -> np.ndarray:
    """Top-left (y, x) of at most ``n`` non-overlapping ``crop`` x ``crop`` patches spread evenly over ``area``.

    The candidates are the non-overlapping grid from (0, 0) (even positions for an even ``crop``); when it holds
    more than ``n`` patches, evenly spaced rows and columns of it are kept (ny * nx <= n, ny : nx close to the
    grid's aspect). Deterministic: the same area, crop and n give the same positions on both sides.

    Raises
    ------
    ParameterError
        If ``area`` is smaller than one patch or ``n`` < 1.
    """
    if n < 1 or crop < 1:
        raise ParameterError(f"n and crop must be >= 1, not {n} and {crop}")
    gh, gw = area[0] // crop, area[1] // crop
    if gh == 0 or gw == 0:
        raise ParameterError(f"the common area {area[1]}x{area[0]} is smaller than one {crop}x{crop} patch")
    if gh * gw <= n:
        ny, nx = gh, gw
    else:
        ny = min(gh, max(1, round(math.sqrt(n * gh / gw))))
        nx = min(gw, max(1, n // ny))
        ny = min(gh, max(1, n // nx))
    rows = np.unique(np.round(np.linspace(0, gh - 1, ny)).astype(np.int64)) * crop
    cols = np.unique(np.round(np.linspace(0, gw - 1, nx)).astype(np.int64)) * crop
    yy, xx = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1)


def siamese_rotation(
    shape_a: Sequence[int], shape_b: Sequence[int], *, prnu_rotation: int, prnu_pce: float, threshold: float
) -> int:
    """Degrees (counter-clockwise) to turn set B's images before the Siamese comparison.

    The network compares the two sets pixel position by pixel position, so B must be in A's orientation. Sets of
    one shape are compared in stored order unless PRNU is confident (PCE above ``threshold``) of another rotation:
    a weak PCE's best rotation is a coin toss, and stored order is right for images of one sensor. Sets whose
    shapes differ need a turn; PRNU's best among the fitting ones is used (its PCE chose it).
    """
    same_shape = tuple(shape_a[:2]) == tuple(shape_b[:2])
    if same_shape and not prnu_pce > threshold:
        return 0
    return int(prnu_rotation) % 360


def rotate_image(pixels: np.ndarray, rotation: int) -> np.ndarray:
    """``pixels`` turned ``rotation`` degrees counter-clockwise (a view; the convention of PRNU matching)."""
    return np.rot90(pixels, (rotation // 90) % 4) if rotation else pixels


def image_crops(
    pixels: np.ndarray, positions: np.ndarray, *, crop: int, preprocessor: str, area: tuple[int, int]
) -> np.ndarray:
    """One image's model inputs at ``positions`` of the centred ``area``: (N, 3, crop, crop) float32 on 0..255.

    The image is centre-cropped to ``area`` first, then encoded (``WW``: the wavelet Wiener residual of the
    cropped area, computed once), then cut. Not modified.
    """
    x = np.asarray(pixels)
    y0, x0 = centre_offsets(x.shape, area)
    x = encode_input(x[y0 : y0 + area[0], x0 : x0 + area[1]], preprocessor)
    out = np.empty((len(positions), 3, crop, crop), np.float32)
    for i, (py, px) in enumerate(np.asarray(positions, np.int64)):
        out[i] = x[py : py + crop, px : px + crop].transpose(2, 0, 1)
    return out


class SetAverager:
    """Running per-position mean of the model inputs of a set's images (one image in memory at a time)."""

    def __init__(self, positions: np.ndarray, *, crop: int, preprocessor: str, area: tuple[int, int]) -> None:
        self.positions = np.asarray(positions, np.int64)
        self.crop, self.area = int(crop), (int(area[0]), int(area[1]))
        self.preprocessor = check_preprocessor(preprocessor)
        self._sum = np.zeros((len(self.positions), 3, self.crop, self.crop), np.float64)
        self.n_images = 0

    def add(self, pixels: np.ndarray) -> None:
        """Add one image (HxW or HxWx3, 0..255, stored pixel order, at least ``area``)."""
        self.add_crops(image_crops(pixels, self.positions, crop=self.crop, preprocessor=self.preprocessor, area=self.area))

    def add_crops(self, crops: np.ndarray) -> None:
        """Add one image's :func:`image_crops` at this averager's positions (computed earlier)."""
        if crops.shape != self._sum.shape:
            raise ParameterError(f"crops of shape {crops.shape} do not fit this set's {self._sum.shape}")
        self._sum += crops
        self.n_images += 1

    def mean(self) -> np.ndarray:
        """(N, 3, crop, crop) float32: the set's model input at each position."""
        if self.n_images == 0:
            raise ParameterError("a set needs at least one image; none was added")
        return (self._sum / self.n_images).astype(np.float32)


@dataclass(frozen=True)
class SiameseGraph:
    """What extended inference needs from a verifier: its logits on pairs of input batches and its contract."""

    run: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (a, b) each (N, 3, c, c) float32 -> (N,) logits
    preprocessor: str  # input encoding (core.modelinput)
    crop: int  # patch side the model was trained on
    n_positions: int = DEFAULT_POSITIONS  # positions averaged (the model's calibration used this many)
    batch_size: int = 64  # position pairs per call

    @classmethod
    def from_loaded(cls, model: LoadedModel, *, n_positions: int | None = None, batch_size: int = 64) -> SiameseGraph:
        """The graph of a registered verifier (manifest: task, preprocessor, patch size, positions)."""
        entry = model.entry
        if entry.task != TASK:
            raise ParameterError(f"model {entry.name!r} is a {entry.task} model, not a same-device verifier")
        lo, hi = entry.value_range
        scale = np.float32((hi - lo) / 255.0)

        def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            if (lo, hi) != (0.0, 255.0):
                a, b = a * scale + np.float32(lo), b * scale + np.float32(lo)
            return np.asarray(model.session.run(["logit"], {"a": a, "b": b})[0]).reshape(-1)

        stored = entry.decision.positions
        positions = n_positions or (DEFAULT_POSITIONS if stored is None else stored)
        return cls(run, entry.preprocessor, entry.patch_size, positions, batch_size)

    def logits(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Logits of every position pair, in batches."""
        if a.shape != b.shape:
            raise ParameterError(f"both sides need inputs of one shape, got {a.shape} and {b.shape}")
        step = self.batch_size
        return np.concatenate([self.run(a[i : i + step], b[i : i + step]) for i in range(0, len(a), step)])


@dataclass(frozen=True)
class SiameseScore:
    """Extended-inference score of two sets (written into verify reports)."""

    mean_logit: float  # mean of the per-position logits: the Siamese score
    probability: float  # sigmoid(mean_logit): the uncalibrated network probability
    std_logit: float  # spread of the per-position logits
    min_logit: float
    max_logit: float
    n_positions: int  # patch positions averaged
    crop: int  # patch side
    area: tuple[int, int]  # (height, width) of the common centred area both sets were cropped to
    n_images_a: int
    n_images_b: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["area"] = list(self.area)
        return d


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def score_set_inputs(a: np.ndarray, b: np.ndarray, graph: SiameseGraph, *, n_images: tuple[int, int] = (0, 0),
                     area: tuple[int, int] = (0, 0)) -> SiameseScore:
    """Score two sets from their averaged inputs (``SetAverager.mean`` of each side, same positions)."""
    logits = graph.logits(a, b).astype(np.float64)
    mean = float(logits.mean())
    return SiameseScore(
        mean_logit=mean,
        probability=_sigmoid(mean),
        std_logit=float(logits.std()),
        min_logit=float(logits.min()),
        max_logit=float(logits.max()),
        n_positions=len(logits),
        crop=graph.crop,
        area=area,
        n_images_a=n_images[0],
        n_images_b=n_images[1],
    )


def siamese_score(
    images_a: Sequence[np.ndarray],
    images_b: Sequence[np.ndarray],
    model: LoadedModel | SiameseGraph,
    *,
    n_positions: int | None = None,
    crop: int | None = None,
) -> SiameseScore:
    """Extended inference on two sets of images held in memory (any N vs M).

    Every image of both sets is centre-cropped to the area common to all of them (:func:`common_area`: images of
    one sensor in one orientation keep their pixel correspondence; sets of different sizes are compared on their
    centred common part), encoded, cut at ``n_positions`` positions spread over that area
    (:func:`spread_positions`), averaged per position within each set, and the graph's logits are averaged over
    the positions.

    Parameters
    ----------
    images_a, images_b : sequences of ndarray
        HxW or HxWx3 images on a 0..255 scale in stored (sensor) pixel order. Not modified.
    model : LoadedModel or SiameseGraph
        A registered verifier (its manifest gives the preprocessor, patch size and positions) or a graph.
    n_positions, crop : int, optional
        Override the model's positions and patch side (its fusion was calibrated with its own).

    Raises
    ------
    ParameterError
        An empty set, or a common area smaller than one patch.
    """
    graph = model if isinstance(model, SiameseGraph) else SiameseGraph.from_loaded(model)
    if not images_a or not images_b:
        raise ParameterError("both sets need at least one image")
    size = crop or graph.crop
    area = common_area(np.shape(im) for im in (*images_a, *images_b))
    positions = spread_positions(area, crop=size, n=n_positions or graph.n_positions)
    sides = []
    for images in (images_a, images_b):
        avg = SetAverager(positions, crop=size, preprocessor=graph.preprocessor, area=area)
        for im in images:
            avg.add(im)
        sides.append(avg.mean())
    return score_set_inputs(sides[0], sides[1], graph, n_images=(len(images_a), len(images_b)), area=area)


# --- thresholds -------------------------------------------------------------------------------------------------


def _binary(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(bool)
    if s.shape != y.shape:
        raise ParameterError(f"{len(s)} scores but {len(y)} labels")
    if not np.isfinite(s).all():
        raise ParameterError("scores must be finite")
    if y.all() or not y.any():
        raise ParameterError("need both same-device (positive) and different-device (negative) pairs")
    return s, y


def parse_operating_point(point: str) -> tuple[str, float | None]:
    """``"eer"`` -> ("eer", None); ``"fpr:0.01"`` -> ("fpr", 0.01)."""
    text = str(point).strip().lower()
    if text == "eer":
        return "eer", None
    if text.startswith("fpr:"):
        try:
            target = float(text[4:])
        except ValueError:
            target = -1.0
        if 0.0 < target < 1.0:
            return "fpr", target
    raise ParameterError(f"operating point {point!r}: use 'eer' or 'fpr:RATE' with 0 < RATE < 1, e.g. 'fpr:0.01'")


def operating_threshold(scores: Any, labels: Any, point: str = "eer") -> dict[str, Any]:
    """Decision threshold (same device when ``score > threshold``) at an operating point of labelled scores.

    Candidates are the midpoints between consecutive distinct scores (and one below / above all of them).
    ``"eer"``: the candidate where the larger of the false-positive and false-negative rates is smallest (the
    equal-error point). ``"fpr:R"``: the lowest threshold whose false-positive rate is at most R.

    Returns
    -------
    dict
        ``threshold``, ``operating_point``, ``fpr``, ``tpr`` (on these scores), ``n_positive``, ``n_negative``.
    """
    kind, target = parse_operating_point(point)
    s, y = _binary(scores, labels)
    u = np.unique(s)
    cand = np.concatenate([[u[0] - 1.0], (u[:-1] + u[1:]) / 2.0, [u[-1] + 1.0]])
    fpr = np.array([(s[~y] > t).mean() for t in cand])
    tpr = np.array([(s[y] > t).mean() for t in cand])
    if kind == "eer":
        worst = np.maximum(fpr, 1.0 - tpr)
        best = np.flatnonzero(worst == worst.min())
        i = int(best[len(best) // 2])  # the middle of a tie
    else:
        i = int(np.flatnonzero(fpr <= target)[0])
    return {
        "threshold": float(cand[i]),
        "operating_point": point,
        "fpr": float(fpr[i]),
        "tpr": float(tpr[i]),
        "n_positive": int(y.sum()),
        "n_negative": int((~y).sum()),
    }


# --- fusion -----------------------------------------------------------------------------------------------------


def prnu_feature(pce: Any) -> np.ndarray:
    """``sign(pce) * log1p(|pce|)``: the PCE on a log scale (PCE spans 0..1e6 and grows with image size)."""
    p = np.asarray(pce, np.float64)
    return np.sign(p) * np.log1p(np.abs(p))


PRNU_FLOOR = "max(fused, (1 + threshold) / 2) where the PCE is above the PRNU threshold"


def normalised_pce(pce: Any, pixels: Any = None, reference_pixels: int | None = None) -> np.ndarray:
    """The PCE brought to the pixel count a fusion was calibrated on: ``pce * min(1, reference / pixels)``.

    A true match's PCE grows about linearly with the pixels compared (PCE ~ N rho^2), so a fusion fitted on 1 MP
    pairs reads a 6 MP pair's PCE as six times the evidence it is; scaled down to the reference area it is read
    on the calibration scale. Smaller areas are never scaled up: the PCE of different devices does not shrink
    with the area (its false-alarm rate is the same at every size), so inflating it would create false
    accepts. ``reference_pixels`` None or ``pixels`` None: the PCE unchanged (fusions calibrated before).
    """
    p = np.asarray(pce, np.float64)
    if reference_pixels is None or pixels is None:
        return p
    n = np.asarray(pixels, np.float64)
    if (n <= 0).any():
        raise ParameterError("pixel counts must be positive")
    return p * np.minimum(1.0, float(reference_pixels) / n)


@dataclass(frozen=True)
class Fusion:
    """Calibrated same-device probability ``sigmoid(intercept + w_prnu * x_prnu + w_siamese * x_siamese)``,
    floored where PRNU alone accepts.

    ``x_prnu = sign(p) * log1p(|p|)`` of the PCE ``p`` between the two sets' fingerprints, normalised for the
    pixel count (:func:`normalised_pce`) when the fusion was calibrated with a ``reference_pixels``;
    ``x_siamese`` the Siamese mean logit over positions. Both weights are >= 0 (the probability never falls when
    either evidence grows). Where the PCE is above the PRNU decision threshold the probability is at least
    ``(1 + threshold) / 2``, above the fused threshold: the fused decision never rejects a pair that PRNU alone
    accepts, whatever the image size or the Siamese score, and it stays monotone in the PCE (the maximum of two
    non-decreasing functions of it).
    """

    intercept: float
    w_prnu: float
    w_siamese: float
    threshold: float  # on the fused probability: same device when probability > threshold
    operating_point: str  # where the threshold was set on the calibration pairs ("eer" or "fpr:R")
    fit: dict[str, Any] = field(default_factory=dict)  # how and on what it was fitted, rates at the threshold
    reference_pixels: int | None = None  # PCE normalised to this pixel count (None: raw PCE, older fusions)
    prnu_threshold: float | None = None  # PCE above which PRNU alone accepts (None: the default PCE threshold)

    @property
    def floor(self) -> float:
        """The fused probability's least value where PRNU alone accepts: halfway from the threshold to 1."""
        return (1.0 + self.threshold) / 2.0

    def logistic(self, pce: Any, siamese_logit: Any, *, pixels: Any = None) -> Any:
        """The calibrated logistic part alone (no PRNU floor)."""
        x = prnu_feature(normalised_pce(pce, pixels, self.reference_pixels))
        z = self.intercept + self.w_prnu * x + self.w_siamese * np.asarray(siamese_logit, np.float64)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))
        return float(p) if np.ndim(p) == 0 else p

    def probability(self, pce: Any, siamese_logit: Any, *, pixels: Any = None, prnu_threshold: float | None = None) -> Any:
        """Fused probability(ies) of scalar or array inputs.

        ``pixels``: the pixel count the PCE was computed on (the query fingerprint's), for fusions calibrated with
        a ``reference_pixels``. ``prnu_threshold``: the PCE threshold of this run's PRNU decision (raised for crop
        searches); default the fusion's own, else the default PCE threshold.
        """
        t = prnu_threshold if prnu_threshold is not None else self.prnu_threshold
        t = PCE_THRESHOLD if t is None else float(t)
        p = np.asarray(self.logistic(pce, siamese_logit, pixels=pixels), np.float64)
        accepted = np.asarray(pce, np.float64) > t
        p = np.where(accepted, np.maximum(p, self.floor), p)
        return float(p) if np.ndim(p) == 0 else p

    def floored(self, pce: float, siamese_logit: float, *, pixels: Any = None, prnu_threshold: float | None = None) -> bool:
        """Whether the PRNU floor raised this pair's fused probability (the logistic part alone was lower)."""
        return self.probability(pce, siamese_logit, pixels=pixels, prnu_threshold=prnu_threshold) > self.logistic(
            pce, siamese_logit, pixels=pixels
        )

    def to_dict(self) -> dict[str, Any]:
        prnu = PRNU_FEATURE if self.reference_pixels is None else f"{PRNU_FEATURE} of pce * min(1, {self.reference_pixels} / pixels)"
        return {
            "features": {"prnu": prnu, "siamese": SIAMESE_FEATURE},
            "formula": "sigmoid(intercept + w_prnu * prnu + w_siamese * siamese)",
            "floor": PRNU_FLOOR,
            **asdict(self),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fusion:
        try:
            ref = d.get("reference_pixels")
            t = d.get("prnu_threshold")
            return cls(
                float(d["intercept"]),
                float(d["w_prnu"]),
                float(d["w_siamese"]),
                float(d["threshold"]),
                str(d["operating_point"]),
                dict(d.get("fit", {})),
                None if ref is None else int(ref),
                None if t is None else float(t),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ParameterError(f"malformed fusion parameters ({type(exc).__name__}: {exc})") from None


def _logistic(x: np.ndarray, t: np.ndarray, ridge: float, iterations: int = 100) -> np.ndarray:
    """Newton-Raphson fit of ``sigmoid(x @ beta)`` to soft targets ``t`` (column 0 of x is the intercept, not
    penalised; the others get an L2 penalty ``ridge``)."""
    beta = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], ridge)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -500, 500)))
        grad = x.T @ (p - t) + penalty * beta
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-12 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return beta


def fit_fusion(
    scores_prnu: Any,
    scores_siamese: Any,
    labels: Any,
    *,
    operating_point: str = "eer",
    ridge: float = 1e-3,
    pixels: Any = None,
    reference_pixels: int | None = None,
    prnu_threshold: float = PCE_THRESHOLD,
) -> Fusion:
    """Fit the fused same-device probability on labelled pairs (Platt scaling of the two features).

    Logistic regression on standardised features with Platt's targets ``(N+ + 1) / (N+ + 2)`` for positives and
    ``1 / (N- + 2)`` for negatives, which keep the fit finite on separable pairs and temper it on few pairs; a
    feature whose weight comes out negative is dropped and the fit repeated (a probability that falls when the
    PCE or the Siamese score rises would be fitted noise). The threshold is set on the fitted (logistic)
    probabilities at ``operating_point`` (:func:`operating_threshold`); the fusion then floors the probability
    where the PCE is above ``prnu_threshold`` (:class:`Fusion`), so it never rejects what PRNU alone accepts.

    Parameters
    ----------
    scores_prnu : array-like
        PCE between the two sets' fingerprints, as verify reports it (``summary.scores.prnu_pce``).
    scores_siamese : array-like
        Siamese mean logit over positions (``summary.scores.siamese``).
    labels : array-like of bool
        True for pairs of one device.
    operating_point : str
        ``"eer"`` or ``"fpr:R"``.
    ridge : float
        L2 penalty on the standardised weights.
    pixels : array-like, optional
        Pixels each pair's PCE was computed on. With it, the PCE is normalised to ``reference_pixels``
        (default: the median of ``pixels``) before the fit (:func:`normalised_pce`), and verify normalises the
        same way, so a fusion fitted on 1 MP pairs reads 6 and 12 MP pairs on its own scale.
    reference_pixels : int, optional
        The pixel count the PCE is normalised to (needs ``pixels``).
    prnu_threshold : float
        The PRNU decision threshold the floor applies at.

    Returns
    -------
    Fusion

    Raises
    ------
    ParameterError
        Mismatched lengths, non-finite scores, or only one class of pairs.

    References
    ----------
    J. Platt, "Probabilistic outputs for support vector machines and comparisons to regularized likelihood
    methods", in Advances in Large Margin Classifiers, MIT Press, 1999.
    """
    pce = np.asarray(scores_prnu, np.float64).reshape(-1)
    if pixels is not None:
        n = np.asarray(pixels, np.float64).reshape(-1)
        if len(n) != len(pce):
            raise ParameterError(f"{len(pce)} PRNU scores but {len(n)} pixel counts")
        reference_pixels = int(reference_pixels or np.median(n))
    elif reference_pixels is not None:
        raise ParameterError("reference_pixels needs the pixel count of every pair (pixels)")
    xp = prnu_feature(normalised_pce(pce, pixels, reference_pixels)).reshape(-1)
    xs = np.asarray(scores_siamese, np.float64).reshape(-1)
    if len(xp) != len(xs):
        raise ParameterError(f"{len(xp)} PRNU scores but {len(xs)} Siamese scores")
    _, y = _binary(xs, labels)
    _binary(xp, labels)
    parse_operating_point(operating_point)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    target = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    raw = np.stack([xp, xs], axis=1)
    mu, sd = raw.mean(axis=0), raw.std(axis=0)
    sd[sd == 0] = 1.0
    z = (raw - mu) / sd
    used = [0, 1]
    while True:
        beta = _logistic(np.column_stack([np.ones(len(z)), z[:, used]]), target, ridge)
        weights = dict(zip(used, beta[1:]))
        negative = [j for j in used if weights[j] < 0]
        if not negative:
            break
        used.remove(min(negative, key=lambda j: weights[j]))
    w_std = np.array([weights.get(0, 0.0), weights.get(1, 0.0)])
    w = w_std / sd
    intercept = float(beta[0] - (w * mu).sum())
    probe = Fusion(intercept, float(w[0]), float(w[1]), 0.5, operating_point, {}, reference_pixels, prnu_threshold)
    op = operating_threshold(probe.logistic(pce, xs, pixels=pixels), y, operating_point)
    fused = replace(probe, threshold=op["threshold"])
    probs = fused.probability(pce, xs, pixels=pixels)
    decided = probs > fused.threshold
    fit = {
        "method": "logistic regression (Platt targets), standardised features, non-negative weights, PRNU floor",
        "ridge": ridge,
        "features_used": [("prnu", "siamese")[j] for j in used],
        "n_pairs": len(y),
        "n_positive": n_pos,
        "n_negative": n_neg,
        "auc": roc_auc(probs, y),
        "fpr_at_threshold": float(decided[~y].mean()),
        "tpr_at_threshold": float(decided[y].mean()),
    }
    return replace(fused, fit=fit)

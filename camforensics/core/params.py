"""Parameters of the classical PRNU engine, as frozen dataclasses written into every report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from camforensics.errors import ParameterError

# Luma weights used to combine the per-channel residuals to grey (Binghamton rgb2gray1 / prnu-python rgb2gray).
GREY_WEIGHTS = (0.29893602, 0.58704307, 0.11402090)

# Common PCE decision threshold: about 2.4e-5 false alarms over ~1 million images (Goljan, Fridrich, Filler 2009,
# "Large scale test of sensor fingerprint camera identification").
PCE_THRESHOLD = 60.0

# Fingerprint removal: the fitted alpha is multiplied by this (1 aims at zero correlation). Chosen on simulated
# devices (docs/algorithms.md): with it the debiased removal left an independent estimate at null.
REMOVAL_OVERSHOOT = 1.15
# The transplant's refinement (anonymize --target M --refine surrogates): L_inf budget around the transplant (grey
# levels), attack steps, the PSNR floor (dB) of the saved window against the photo (35.5: the aim is a mean
# of >= 35 dB), the step (grey levels: sign steps on the pixels, RMS over the attacked coefficients in the DCT
# domain), MI-FGSM momentum, the decision patches covered (the judges' 128 best-scored grid patches of the window)
# and the domain of the steps (dct: a white-box attack on the pixels is mostly lost in the JPEG save;
# bench/bench_refine_stages.py; docs/models.md "Camera profiles and surrogates").
REFINE_EPSILON = 16.0  # 8 until the eleventh session: 16 with REFINE_DIH4 off gave 13 validation verdicts of 30 against 10
REFINE_ITERATIONS = 30
REFINE_PSNR = 35.5
REFINE_STEP = 1.0
REFINE_MOMENTUM = 1.0
REFINE_COVER = 128
REFINE_DOMAIN = "dct"  # the steps change the saved file's quantised DCT coefficients ("pixels": BPDA on the pixels)
# The loss: the judges' decision rule (the margin of the target's mean patch log-probability over the runner-up's),
# read on every covered patch at every step (0: all of them); chosen on the judges' validation photos with the
# Bondi-family surrogates (bench/bench_refine.py; docs/models.md).
REFINE_LOSS = "judge"
REFINE_PATCHES = 0
REFINE_FUSE = "gradients"  # how the surrogates combine: normalised gradients summed, or one margin on mean logits
REFINE_GHOST = 0.0  # ghost-network dropout rate of the surrogates per step (0: off)
# Random flips / quarter turns of the patches at every step (input diversity): off since the eleventh session (the
# judges read the patches as stored; with eps 16: 13 validation verdicts of 30, with flips at eps 8: 10; docs/models.md)
REFINE_DIH4 = False

# Orientation searches of MatchParams.rotations and where a smaller query may sit (MatchParams.crop_anchor).
ROTATION_MODES = ("all", "none", "dih4")
CROP_ANCHORS = ("any", "centre", "corner", "none")
# What a crop at one known offset is scored by (MatchParams.crop_offset_statistic).
CROP_OFFSET_STATISTICS = ("pce", "matched")
# Smallest scale searched: a query downscaled more than 4 times keeps too little of the PRNU to be found.
MIN_SCALE = 0.25


@dataclass(frozen=True)
class ResidualParams:
    """How a noise residual W is extracted from an image (Lukas, Fridrich, Goljan 2006, Appendix A)."""

    sigma0: float = 2.0  # assumed std of the PRNU-bearing noise, 0..255 scale (Binghamton: 2 for queries, 3 for fingerprints)
    levels: int = 4  # wavelet decomposition levels
    wavelet: str = "db4"  # 8-tap Daubechies
    windows: tuple[int, ...] = (3, 5, 7, 9)  # square windows of the local-variance estimate (MAP minimum over them)
    zero_mean: bool = True  # remove row/column means on each 2x2 CFA sub-lattice
    wiener_dft: bool = True  # adaptive Wiener filter of the spectrum magnitude (removes periodic JPEG/CFA artefacts)
    enhance_alpha: float | None = None  # Li 2010 enhanced SPN n_e = sign(n) exp(-n^2 / (2 alpha^2)); 7 in the paper

    def __post_init__(self) -> None:
        if not self.sigma0 > 0:
            raise ParameterError(f"sigma0 must be > 0 (0..255 scale), got {self.sigma0!r}")
        if not 1 <= self.levels <= 8:
            raise ParameterError(f"levels must be between 1 and 8, got {self.levels!r}")
        if not self.windows or any(w < 1 or w % 2 == 0 for w in self.windows):
            raise ParameterError(f"windows must be odd sizes >= 1, got {self.windows!r}")
        if self.enhance_alpha is not None and not self.enhance_alpha > 0:
            raise ParameterError(f"enhance_alpha must be > 0 or None, got {self.enhance_alpha!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FingerprintParams:
    """How a device fingerprint K is estimated from N images (Chen, Fridrich, Goljan, Lukas 2008)."""

    residual: ResidualParams = field(default_factory=lambda: ResidualParams(sigma0=3.0))  # Binghamton uses 3 here
    saturation_level: float = 250.0  # a channel whose maximum exceeds this is checked for saturated pixels (0..255)
    intensity_knee: float = 252.0  # intensity weight I/T below T, exp(-(I-T)^2/v) above (Binghamton IntenScale)
    intensity_spread: float = 6.0  # v of the weight above the knee
    # Fourier bins within this many of the zero-frequency axes zeroed (0: off): row and column patterns under a
    # frame-wide envelope, which bodies of one camera model share (core.residual.zero_axis_bins). Off by default:
    # it also takes the banding some bodies own (docs/prnu-accuracy.md, section 2)
    axis_notch: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.axis_notch, bool) or not isinstance(self.axis_notch, int) or self.axis_notch < 0:
            raise ParameterError(f"axis_notch must be an int >= 0 (Fourier bins), got {self.axis_notch!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MatchParams:
    """How a query is matched against a fingerprint by PCE (Goljan 2009; crops and scales: Goljan & Fridrich 2008)."""

    threshold: float = PCE_THRESHOLD  # PCE above this is a match (raised for crop searches, see corrected_threshold)
    shift_range: tuple[int, int] = (0, 0)  # same size: peak within +-dy, +-dx of zero shift; crops: around crop_anchor
    rotations: str = "all"  # "all": 0/90/180/270 that fit (crops: the 8 Dih4 only if stored order fails); "none"; "dih4"
    exclusion: int = 11  # side of the square around the peak left out of the correlation energy
    crop_anchor: str | tuple[int, int] = "any"  # smaller queries: "any" offset, "centre", "corner", (y, x), or "none"
    scales: tuple[float, ...] = (1.0,)  # query pixel size / sensor pixel size searched (1.0: not resampled)
    jpeg_grid: bool = True  # crops: also test the offsets on the query's JPEG block grid alone (core.jpeggrid)
    # crops: the query's residual divided by its local standard deviation over this many pixels (relative to its
    # median, core.residual.local_scale) before the search, so that textured areas, where the residual is mostly
    # scene, count less (the matched filter for noise whose variance follows the scene); 0: off
    crop_scene_window: int = 15
    # crops: the correlation at each offset divided by its null standard deviation there (the query's local energy,
    # its squared signal averaged over this many pixels, correlated with the fingerprint's squared values;
    # core.cropsearch.local_variance) before the PCE is read, so that every offset is tested at the same noise
    # level; 0: off (the plain correlation)
    crop_variance_window: int = 15
    # crops at one known offset (crop_anchor (y, x), shift_range (0, 0)): "pce", the PCE of the (locally
    # normalised) correlation plane at that offset, or "matched", the correlation there over its null standard
    # deviation there (core.cropsearch.known_offset_result: sign(z) z**2, a PCE-like score, chi-square of one
    # degree under the null)
    crop_offset_statistic: str = "pce"

    def __post_init__(self) -> None:
        if self.rotations not in ROTATION_MODES:
            raise ParameterError(f"rotations must be one of {', '.join(ROTATION_MODES)}, got {self.rotations!r}")
        if self.shift_range[0] < 0 or self.shift_range[1] < 0:
            raise ParameterError(f"shift_range must be non-negative, got {self.shift_range!r}")
        if self.exclusion < 1 or self.exclusion % 2 == 0:
            raise ParameterError(f"exclusion must be an odd size >= 1, got {self.exclusion!r}")
        anchor = self.crop_anchor
        if isinstance(anchor, str):
            if anchor not in CROP_ANCHORS:
                raise ParameterError(
                    f"crop_anchor must be one of {', '.join(CROP_ANCHORS)} or a (y, x) offset, got {anchor!r}"
                )
        else:
            try:
                y, x = (int(v) for v in anchor)
            except (TypeError, ValueError):
                y = x = -1
            if min(y, x) < 0:
                raise ParameterError(f"crop_anchor offset must be two non-negative pixels (y, x), got {anchor!r}")
            object.__setattr__(self, "crop_anchor", (y, x))
        if not self.scales or any(not MIN_SCALE <= s <= 1.0 for s in self.scales):
            raise ParameterError(f"scales must be between {MIN_SCALE} and 1.0 (query pixels per sensor pixel), got {self.scales!r}")
        object.__setattr__(self, "scales", tuple(sorted({float(s) for s in self.scales}, reverse=True)))
        w = self.crop_scene_window
        if isinstance(w, bool) or not isinstance(w, int) or w < 0 or (w and (w < 3 or w % 2 == 0)):
            raise ParameterError(f"crop_scene_window must be 0 (off) or an odd size >= 3 pixels, got {w!r}")
        v = self.crop_variance_window
        if isinstance(v, bool) or not isinstance(v, int) or v < 0 or (v and v % 2 == 0):
            raise ParameterError(f"crop_variance_window must be 0 (off) or an odd size >= 1 pixels, got {v!r}")
        if self.crop_offset_statistic not in CROP_OFFSET_STATISTICS:
            raise ParameterError(
                f"crop_offset_statistic must be one of {', '.join(CROP_OFFSET_STATISTICS)}, got {self.crop_offset_statistic!r}"
            )

    @property
    def searches_crops(self) -> bool:
        """Whether a query smaller than a fingerprint is searched at all (otherwise it fits nothing)."""
        return self.crop_anchor != "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

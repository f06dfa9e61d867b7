"""The camera-trace transplant of anonymize (``--method transplant``), and its baseline ``retable``.

The image is made to carry a target camera model's traces, learned from sample photos of that model (a profile,
:mod:`camforensics.pipelines.profile`; the premise of SpoC, Cozzolino et al. 2021: no knowledge of the detectors):

1. re-mosaic: the image is sampled on the target's CFA layout (one channel per pixel);
2. re-demosaic: every output sample is rebuilt from that mosaic by the target's linear filter of its CFA phase and
   channel (so the inter-pixel and inter-channel correlations are the target's);
3. residual shaping: the high-pass residual is filtered by a small zero-phase kernel whose gain follows
   ``sqrt(S_target / S_image)`` (the residual power spectra on 64 x 64 blocks; gains within
   ``SPECTRUM_GAIN_LIMITS``), then the image's mean residual
   pattern on the 8 x 8 grid is replaced by the target's (``pattern_strength`` of the difference added);
4. an optional bounded refinement against surrogate attributors (:mod:`camforensics.pipelines.anonymize.refine`),
   optimised through the JPEG save of step 5 and held to a PSNR floor against the photo;
5. the output is written as a JPEG with the target's quantization tables and chroma subsampling, metadata-free or
   with EXIF Make/Model rewritten to the target (``exif="target"``).

``retable`` writes the image unchanged but re-saved with the target's JPEG tables (the baseline "JPEG re-save with
the target's tables alone").
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from camforensics.core.camera_profile import (
    MAX_FIT_SIDE,
    PERIOD,
    block_spectrum,
    demosaic,
    folded_pattern,
    grey,
    highpass,
    normalised_spectrum,
    remosaic,
    shaping_kernel,
)
from camforensics.errors import CamforensicsError, InputError, ParameterError

TRANSPLANT_METHODS: tuple[str, ...] = ("transplant", "retable")
EXIF_CHOICES = ("strip", "target")
# Gains of the residual's spectral shaping: the high-pass residual holds the scene's edges as well as the noise, so
# wide gains cost picture quality (a Samsung GT-I9300 photo toward the iPhone 4: 38.6 dB after re-demosaicing,
# 35.9 dB with gains in [0.8, 1.25], 27.5 dB in [0.5, 2]).
SPECTRUM_GAIN_LIMITS = (0.85, 1.18)


@dataclass(frozen=True)
class TransplantOptions:
    """A transplant (or a re-save with the target's JPEG tables) toward one camera profile; checks itself."""

    method: str  # transplant or retable
    target: str  # the profile's camera model
    profile: str  # the profile file, absolute path as the workers see it
    profile_sha256: str  # of the profile file when the run started (checked again on every load)
    shape_spectrum: bool = True  # step 3, the spectral gain of the residual
    pattern_strength: float = 1.0  # step 3, share of the 8x8 pattern difference added (0: none)
    exif: str = "strip"  # strip: no metadata; target: EXIF Make/Model of the target
    refine: Any = None  # a RefineOptions (bounded transfer attack on surrogates) or None

    def __post_init__(self) -> None:
        if self.method not in TRANSPLANT_METHODS:
            raise ParameterError(f"{self.method!r} is not a transplant method; choose one of {', '.join(TRANSPLANT_METHODS)}")
        if self.exif not in EXIF_CHOICES:
            raise ParameterError(f"--exif {self.exif!r}: choose strip or target")
        if not 0.0 <= self.pattern_strength <= 4.0:
            raise ParameterError(f"--pattern-strength must lie in [0, 4], got {self.pattern_strength!r}")
        if self.refine is not None and self.method != "transplant":
            raise ParameterError("--refine is for --method transplant")

    def load(self) -> Any:
        """The profile (:class:`camforensics.pipelines.profile.CameraProfile`), its sha256 checked; and the
        surrogates of the refinement, when there is one."""
        from camforensics.pipelines.profile import read_profile

        prof = read_profile(self.profile)
        if prof.sha256 != self.profile_sha256:
            raise InputError(f"{self.profile}: the camera profile changed during the run (sha256 {prof.sha256}, "
                             f"expected {self.profile_sha256}); refusing to use another profile")  # fmt: skip
        if prof.jpeg is None:
            raise InputError(f"{self.profile}: the profile holds no JPEG tables (built from no JPEG photo)")
        surrogates = self.refine.load() if self.refine is not None else None
        return prof, surrogates

    def alter(self, pixels: np.ndarray, loaded: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """The transplanted 8-bit RGB image and what was fitted (spectral gains, the refinement's record)."""
        prof, surrogates = loaded
        if self.method == "retable":
            return pixels, {}
        if pixels.ndim != 3:
            raise InputError("a grey image has no colour (CFA) traces to transplant; use another method")
        x = np.asarray(pixels, np.float32)
        y = demosaic(remosaic(x, prof.layout), prof.filters)
        fitted: dict[str, Any] = {"layout": prof.layout}
        h = highpass(y)
        if self.shape_spectrum:
            import cv2

            win = _centre(grey(h))
            s, n = block_spectrum(win)
            if n:
                k = shaping_kernel(prof.spectrum, normalised_spectrum(s / n), limits=SPECTRUM_GAIN_LIMITS)
                shaped = cv2.filter2D(h, -1, k, borderType=cv2.BORDER_REFLECT)
                y += shaped - h
                h = shaped
                fitted["spectrum_kernel_size"] = int(k.shape[0])
        if self.pattern_strength > 0:
            ps, npd = folded_pattern(h)
            if npd:
                diff = (prof.pattern - ps / npd).astype(np.float32) * self.pattern_strength  # 3 x P x P
                reps = (-(-y.shape[0] // PERIOD), -(-y.shape[1] // PERIOD))
                tiled = np.tile(diff.transpose(1, 2, 0), (*reps, 1))[: y.shape[0], : y.shape[1]]
                y += tiled
                fitted["pattern_change_rms"] = float(np.sqrt(np.mean(diff**2)))
        out = np.clip(np.rint(y), 0, 255).astype(np.uint8)
        if self.refine is not None:
            out, fitted["refine"] = self.refine.attack(out, surrogates, self.target, reference=pixels,
                                                       jpeg=lambda a: jpeg_round_trip(a, prof.jpeg), tables=prof.jpeg)  # fmt: skip
        return out, fitted

    def encode(self, pixels: np.ndarray, loaded: Any) -> bytes:
        """JPEG bytes with the target's quantization tables and subsampling; EXIF Make/Model of the target with
        ``exif="target"``, else no metadata."""
        from PIL import Image

        prof, _ = loaded
        img = Image.fromarray(pixels if pixels.ndim == 3 else np.repeat(pixels[:, :, None], 3, axis=2), "RGB")
        kw = prof.jpeg.save_options()
        if self.exif == "target":
            exif = Image.Exif()
            make, _, model = self.target.partition(" ")
            exif[0x010F] = make
            exif[0x0110] = self.target if not model else model
            kw["exif"] = exif.tobytes()
        buf = io.BytesIO()
        try:
            img.save(buf, "JPEG", **kw)
        except (OSError, ValueError) as exc:
            raise CamforensicsError(f"could not write the JPEG with the tables of {self.target}: {exc}") from None
        return buf.getvalue()

    def parameters(self) -> dict[str, Any]:
        """The parameters that shape the output (written with every result)."""
        return self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "target": self.target,
            "profile": self.profile,
            "profile_sha256": self.profile_sha256,
            "shape_spectrum": self.shape_spectrum if self.method == "transplant" else None,
            "spectrum_gain_limits": list(SPECTRUM_GAIN_LIMITS) if self.method == "transplant" and self.shape_spectrum else None,
            "pattern_strength": self.pattern_strength if self.method == "transplant" else None,
            "exif": self.exif,
            "jpeg": "the target profile's quantization tables and chroma subsampling",
            "refine": self.refine.to_dict() if self.refine is not None else None,
        }


def jpeg_round_trip(pixels: np.ndarray, tables: Any) -> np.ndarray:
    """``pixels`` (uint8 RGB) encoded with ``tables`` (a profile's JPEG tables and subsampling) and decoded: what
    the output's reader will see (the refinement optimises through it)."""
    from PIL import Image

    from camforensics.io.encoding import decode_image

    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "JPEG", **tables.save_options())
    return decode_image(buf.getvalue())  # the decoder anonymize measures the output with


def _centre(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[:2]
    top, left = max(0, (h - MAX_FIT_SIDE) // 2), max(0, (w - MAX_FIT_SIDE) // 2)
    return x[top : top + MAX_FIT_SIDE, left : left + MAX_FIT_SIDE]


def transplant_options(
    method: str,
    target: str | None,
    *,
    profiles: str | None = None,
    shape_spectrum: bool = True,
    pattern_strength: float = 1.0,
    exif: str = "strip",
    refine: Any = None,
) -> TransplantOptions:
    """The options of ``--method transplant|retable --target NAME|FILE``: the profile is resolved (a shipped camera
    model, a model of ``--profiles DIR``, or a profile file) and hashed here, before any image is read.

    Raises
    ------
    ParameterError
        No target, an unknown target (the known ones are listed).
    """
    from camforensics.pipelines.profile import resolve_profile

    if target is None:
        raise ParameterError(f"--method {method} needs --target 'MAKE MODEL' (a shipped camera profile) or a profile .npz")
    prof = resolve_profile(target, profiles)
    return TransplantOptions(method, prof.name, prof.path, prof.sha256, shape_spectrum, pattern_strength, exif, refine)

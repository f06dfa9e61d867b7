"""The classical baselines of anonymize: median, Gaussian, JPEG re-compression, wavelet denoising
(:data:`camforensics.core.anonymize.BASELINES`), with their options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from camforensics.core.anonymize import BASELINES
from camforensics.core.params import ResidualParams
from camforensics.errors import ParameterError

BASELINE_METHODS: tuple[str, ...] = tuple(BASELINES)  # median, gaussian, jpeg, denoise


@dataclass(frozen=True)
class BaselineOptions:
    """A baseline and its one setting (written into the report's ``method_parameters``)."""

    method: str  # median, gaussian, jpeg or denoise
    kernel: int = 5  # side of the median / Gaussian window (pixels)
    recompress_quality: int = 75  # JPEG quality of the "jpeg" baseline
    denoise_sigma0: float = 3.0  # sigma0 of the "denoise" baseline (0..255 scale)

    def __post_init__(self) -> None:
        if self.method not in BASELINES:
            raise ParameterError(f"{self.method!r} is not a baseline; choose one of {', '.join(BASELINE_METHODS)}")
        if not 1 <= self.recompress_quality <= 100:
            raise ParameterError(f"--recompress-quality must be between 1 and 100, got {self.recompress_quality!r}")
        if self.kernel < 3 or self.kernel % 2 == 0:
            raise ParameterError(f"--kernel must be an odd size >= 3, got {self.kernel!r}")
        if not self.denoise_sigma0 > 0:
            raise ParameterError(f"--denoise-sigma0 must be > 0, got {self.denoise_sigma0!r}")

    def keywords(self) -> dict[str, Any]:
        """Keyword arguments of the baseline function of ``method``."""
        if self.method in ("median", "gaussian"):
            return {"size": self.kernel}
        if self.method == "jpeg":
            return {"quality": self.recompress_quality}
        return {"params": ResidualParams(sigma0=self.denoise_sigma0)}

    def parameters(self) -> dict[str, Any]:
        """The parameters that shape the output (written with every result)."""
        if self.method == "denoise":
            return {"residual": ResidualParams(sigma0=self.denoise_sigma0).to_dict()}
        return self.keywords()

    def alter(self, pixels: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """The altered image; a baseline fits nothing."""
        return BASELINES[self.method](pixels, **self.keywords()), {}

"""Typed views of the ``decision`` and ``metrics`` members of a model's manifest entry.

The manifest keeps each entry as written at export (:attr:`camforensics.inference.registry.ModelEntry.meta`);
these classes are what the pipelines read of it, with the defaults of a member an older export did not write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _member(d: Mapping[str, Any] | None, key: str) -> dict[str, Any]:
    value = (d or {}).get(key)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Decision:
    """How a model's outputs become a decision (``decision`` of its entry); each task fills its own fields and
    leaves the others None or empty."""

    patches_per_image: int | None = None  # attribution: grid patches per image
    window: int | None = None  # attribution: side of the centred window the decision patches come from (0: whole image)
    open_set_threshold: float | None = None  # attribution: "unknown" below this open-set score
    positions: int | None = None  # verification: positions of extended inference
    fusion: dict[str, Any] = field(default_factory=dict)  # verification: PRNU + Siamese fusion (Fusion.from_dict)
    siamese_threshold: float = 0.0  # verification: same device above this mean logit
    set_sizes_trained: list[int] | None = None  # verification: images per side the model was trained on
    size_policy: str | None = None  # verification: how sets of different sizes are cropped
    prnu_parameters: dict[str, Any] = field(default_factory=dict)  # verification: PRNU settings of the calibration
    calibration_area_pixels: list[int] | None = None  # verification: min, median, max common area calibrated on

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Decision:
        d = d or {}
        patches, positions, window = d.get("patches_per_image"), d.get("positions"), d.get("window")
        return cls(
            patches_per_image=None if patches is None else int(patches),
            window=None if window is None else int(window),
            open_set_threshold=_member(d, "open_set").get("threshold"),
            positions=None if positions is None else int(positions),
            fusion=_member(d, "fusion"),
            siamese_threshold=float(_member(d, "siamese_threshold").get("threshold", 0.0)),
            set_sizes_trained=d.get("set_sizes_trained"),
            size_policy=d.get("size_policy"),
            prnu_parameters=d.get("prnu_parameters") or {},
            calibration_area_pixels=d.get("calibration_area_pixels"),
        )


@dataclass(frozen=True)
class SplitMetrics:
    """The figures of one split measured at training time."""

    image_accuracy: float | None = None  # attributors: share of images attributed to their model
    auc: dict[str, float | None] = field(default_factory=dict)  # verifiers: ROC AUC of prnu_pce, siamese, fused

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> SplitMetrics:
        d = d or {}
        return cls(d.get("image_accuracy"), {k: _member(d, k).get("auc") for k in ("prnu_pce", "siamese", "fused")})


@dataclass(frozen=True)
class Metrics:
    """The ``metrics`` of an entry: per split (validation, test, ...) its :class:`SplitMetrics`."""

    splits: dict[str, SplitMetrics] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Metrics:
        return cls({k: SplitMetrics.from_dict(v) for k, v in (d or {}).items() if isinstance(v, dict)})

    def split(self, name: str) -> SplitMetrics:
        """The figures of split ``name`` (empty when the entry has none)."""
        return self.splits.get(name, SplitMetrics())


class EntryViews:
    """The typed views of an entry's ``meta`` (``decision`` and ``metrics``), for the model and panel entries."""

    meta: dict[str, Any]

    @property
    def decision(self) -> Decision:
        """The entry's ``decision`` member, typed."""
        return Decision.from_dict(self.meta.get("decision"))

    @property
    def metrics(self) -> Metrics:
        """The entry's ``metrics`` member (figures per split), typed."""
        return Metrics.from_dict(self.meta.get("metrics"))

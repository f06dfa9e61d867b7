"""Pairs of image sets for the Siamese same-device verifier: cached model inputs and a seeded pair sampler.

Every image's model input is computed once (for ``WW`` the wavelet Wiener residual of the whole image, as
inference computes it) and its centred square is kept in memory (float16 residuals, or the pixels for in-graph
preprocessors). A pair is two sets of images: positives two disjoint subsets of one device's images, negatives
images of two devices (a stated share of them two devices of one camera model, the hard case). Each side is
averaged per patch position at one common position, and one Dih4 element is applied to both sides.
Everything random follows from ``(seed, epoch, pair index)``, so an epoch can be replayed exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from camforensics.core.modelinput import WW_OFFSET, check_preprocessor, encode_input
from camforensics.errors import CamforensicsError, ParameterError
from camforensics.inference.verification import spread_positions
from camforensics.io.images import load_image
from camforensics.io.patches import DIH4_ORDER, apply_dih4
from camforensics.io.records import ImageRecord

_PAIR_STREAM = 0x51A3  # seed-sequence tag of pair draws (keeps them apart from other streams of one seed)


def square_side(shape: Sequence[int], limit: int) -> int:
    """Side of the centred square kept from an image: at most ``limit``, a multiple of 4 (so that the offsets
    between squares of different sides, and their centring offsets, are even: the 2x2 CFA phase is kept)."""
    return min(int(limit), int(shape[0]), int(shape[1])) // 4 * 4


class InputCache:
    """Model inputs of the centred square of each image, encoded once and kept in memory.

    ``WW`` inputs are stored as float16 of ``encoded - 128`` (= 8 W, relative precision 2**-11); pixels for the
    in-graph preprocessors as they were decoded (uint8 for 8-bit files). Images that cannot be read or are
    smaller than one patch are listed in :attr:`failures` and left out.
    """

    def __init__(self, preprocessor: str, *, side: int, min_side: int) -> None:
        self.preprocessor = check_preprocessor(preprocessor)
        self.side, self.min_side = int(side), int(min_side)
        self.records: list[ImageRecord] = []
        self.arrays: list[np.ndarray] = []  # (3, s, s) each
        self.failures: dict[str, str] = {}

    def add(self, record: ImageRecord) -> int | None:
        """Encode one image; returns its index, or None (reason in :attr:`failures`)."""
        try:
            pixels = load_image(record.path).pixels
        except (CamforensicsError, OSError) as exc:
            self.failures[str(record.path)] = str(exc)
            return None
        s = square_side(pixels.shape, self.side)
        if s < self.min_side:
            self.failures[str(record.path)] = f"{pixels.shape[1]}x{pixels.shape[0]} is smaller than one patch"
            return None
        if self.preprocessor == "WW":
            x = encode_input(pixels, "WW")  # the residual of the whole image, as inference computes it
            x -= np.float32(WW_OFFSET)
            dtype = np.float16
        else:
            x = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)
            dtype = x.dtype
        y0, x0 = (x.shape[0] - s) // 4 * 2, (x.shape[1] - s) // 4 * 2
        self.arrays.append(np.ascontiguousarray(x[y0 : y0 + s, x0 : x0 + s].transpose(2, 0, 1), dtype=dtype))
        self.records.append(record)
        return len(self.arrays) - 1

    def square(self, index: int) -> int:
        return int(self.arrays[index].shape[1])

    def crops(self, index: int, positions: np.ndarray, size: int, common: int) -> np.ndarray:
        """(N, 3, size, size) float32 model inputs at ``positions`` of the centred ``common`` square."""
        arr = self.arrays[index]
        off = (arr.shape[1] - common) // 2
        out = np.empty((len(positions), 3, size, size), np.float32)
        for i, (y, x) in enumerate(positions):
            out[i] = arr[:, off + y : off + y + size, off + x : off + x + size]
        if self.preprocessor == "WW":
            out += np.float32(WW_OFFSET)
        return out

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays))


@dataclass(frozen=True)
class DeviceGroup:
    """The cached images of one device."""

    key: str  # unique across data sets: "<source>:<device>"
    model: str  # "<source>:<model id>" (same-model negatives pair two groups with one model key)
    images: tuple[int, ...]  # indices into the sampler's record list (InputCache.records when cached)


def group_devices(records: Sequence[ImageRecord], indices: Sequence[int], source: str) -> list[DeviceGroup]:
    """Groups of ``records[i]`` for ``i`` in ``indices`` by device, keyed with the data set ``source``."""
    by_device: dict[str, list[int]] = {}
    model_of: dict[str, str] = {}
    for i in indices:
        r = records[i]
        by_device.setdefault(r.device, []).append(i)
        model_of[r.device] = r.model_id
    return [
        DeviceGroup(f"{source}:{d}", f"{source}:{model_of[d]}", tuple(sorted(ix))) for d, ix in sorted(by_device.items())
    ]


@dataclass(frozen=True)
class PairSpec:
    """One training or validation pair of image sets."""

    a: tuple[int, ...]  # cache indices of set A
    b: tuple[int, ...]  # cache indices of set B
    same_device: bool
    same_model: bool
    y: int = 0  # top-left of the patch in the pair's common centred square (training pairs)
    x: int = 0
    dih4: int = 0  # Dih4 element applied to both sides


@dataclass(frozen=True)
class PairPolicy:
    """How pairs are drawn (part of the training configuration)."""

    set_sizes: tuple[int, int] = (1, 8)  # images per side, drawn uniformly in [min, max] for each side
    same_model_fraction: float = 0.3  # share of negatives pairing two devices of one camera model, when any exist
    positive_fraction: float = 0.5  # share of same-device pairs

    def __post_init__(self) -> None:
        lo, hi = self.set_sizes
        if not 1 <= lo <= hi:
            raise ParameterError(f"set sizes must satisfy 1 <= min <= max, not {self.set_sizes}")
        for name in ("same_model_fraction", "positive_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ParameterError(f"{name} must lie in [0, 1], not {getattr(self, name)}")


@dataclass
class PairSampler:
    """Seeded pairs over device groups (see the module docstring).

    With a ``cache`` (training, per-epoch validation) pairs can be turned into model inputs; without one
    (calibration and test pairs scored on whole images) they only name their images.
    """

    groups: list[DeviceGroup]
    crop: int
    policy: PairPolicy = field(default_factory=PairPolicy)
    seed: int = 0
    cache: InputCache | None = None

    def __post_init__(self) -> None:
        self._positive = [g for g in self.groups if len(g.images) >= 2]
        by_model: dict[str, list[DeviceGroup]] = {}
        for g in self.groups:
            by_model.setdefault(g.model, []).append(g)
        self._multi = [gs for gs in by_model.values() if len(gs) >= 2]  # models with several devices
        self._several_models = len(by_model) >= 2
        if not self._positive:
            raise ParameterError("no device with two or more usable images: no same-device pair can be drawn")
        if len(self.groups) < 2:
            raise ParameterError("fewer than two devices: no different-device pair can be drawn")

    def describe(self) -> dict[str, object]:
        return {
            "n_devices": len(self.groups),
            "n_images": int(sum(len(g.images) for g in self.groups)),
            "devices_with_positives": len(self._positive),
            "models_with_several_devices": len(self._multi),
            "same_model_negatives_possible": bool(self._multi),
        }

    def _sizes(self, rng: np.random.Generator, fixed: int | None) -> tuple[int, int]:
        lo, hi = self.policy.set_sizes
        if fixed is not None:
            return fixed, fixed
        return int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))

    def draw(
        self, rng: np.random.Generator, *, positive: bool, set_size: int | None = None, position: bool = True
    ) -> PairSpec:
        """One pair: its images, label and (``position``, with a cache) a patch position and Dih4 element."""
        ka, kb = self._sizes(rng, set_size)
        if positive:
            g = self._positive[int(rng.integers(len(self._positive)))]
            n = len(g.images)
            ka = max(1, min(ka, n - 1))
            kb = max(1, min(kb, n - ka))
            order = rng.permutation(n)
            a = tuple(g.images[j] for j in sorted(order[:ka]))
            b = tuple(g.images[j] for j in sorted(order[ka : ka + kb]))
            same_model = True
        else:
            if self._multi and rng.random() < self.policy.same_model_fraction:
                gs = self._multi[int(rng.integers(len(self._multi)))]
                i, j = rng.choice(len(gs), size=2, replace=False)
                ga, gb = gs[int(i)], gs[int(j)]
            else:
                while True:
                    i, j = rng.choice(len(self.groups), size=2, replace=False)
                    ga, gb = self.groups[int(i)], self.groups[int(j)]
                    if not self._several_models or ga.model != gb.model:
                        break
            a = tuple(sorted(int(v) for v in rng.choice(ga.images, size=min(ka, len(ga.images)), replace=False)))
            b = tuple(sorted(int(v) for v in rng.choice(gb.images, size=min(kb, len(gb.images)), replace=False)))
            same_model = ga.model == gb.model
        if not position or self.cache is None:
            return PairSpec(a, b, positive, same_model)
        s = self.common_square(PairSpec(a, b, positive, same_model))
        y = int(rng.integers(0, (s - self.crop) // 2 + 1)) * 2
        x = int(rng.integers(0, (s - self.crop) // 2 + 1)) * 2
        return PairSpec(a, b, positive, same_model, y, x, int(rng.integers(DIH4_ORDER)))

    def pair(self, epoch: int, index: int) -> PairSpec:
        """Training pair ``index`` of ``epoch`` (the same arguments always give the same pair)."""
        rng = np.random.default_rng([self.seed, epoch, index, _PAIR_STREAM])
        return self.draw(rng, positive=bool(rng.random() < self.policy.positive_fraction))

    def fixed_pairs(self, n: int, *, set_size: int | None, seed_tag: int) -> list[PairSpec]:
        """``n`` pairs for validation or calibration, alternately same and different device (position and Dih4
        unused: these pairs are scored over many positions)."""
        rng = np.random.default_rng([self.seed, seed_tag, _PAIR_STREAM])
        return [self.draw(rng, positive=i % 2 == 0, set_size=set_size, position=False) for i in range(n)]

    def _cache(self) -> InputCache:
        if self.cache is None:
            raise ParameterError("this pair sampler has no input cache: its pairs name images but have no inputs")
        return self.cache

    def common_square(self, spec: PairSpec) -> int:
        cache = self._cache()
        return min(cache.square(i) for i in (*spec.a, *spec.b))

    def side_inputs(self, images: Sequence[int], positions: np.ndarray, common: int) -> np.ndarray:
        """Per-position mean of the cached inputs of ``images``: (N, 3, crop, crop) float32."""
        cache = self._cache()
        total = cache.crops(images[0], positions, self.crop, common)
        for i in images[1:]:
            total += cache.crops(i, positions, self.crop, common)
        total /= np.float32(len(images))
        return total

    def batch(self, specs: Sequence[PairSpec]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Training batch: ``a``, ``b`` (B, 3, crop, crop) float32 and labels (B,) float32."""
        a, b = [], []
        for spec in specs:
            common = self.common_square(spec)
            pos = np.array([[spec.y, spec.x]])
            for side, out in ((spec.a, a), (spec.b, b)):
                out.append(apply_dih4(self.side_inputs(side, pos, common)[0], spec.dih4, axes=(1, 2)))
        labels = np.array([s.same_device for s in specs], np.float32)
        return np.stack(a), np.stack(b), labels

    def positions_inputs(self, spec: PairSpec, n_positions: int) -> tuple[np.ndarray, np.ndarray]:
        """Both sides' inputs at ``n_positions`` positions spread over the pair's common square (no Dih4)."""
        common = self.common_square(spec)
        positions = spread_positions((common, common), crop=self.crop, n=n_positions)
        return self.side_inputs(spec.a, positions, common), self.side_inputs(spec.b, positions, common)


def spec_paths(spec: PairSpec, records: Sequence[ImageRecord]) -> tuple[list[Path], list[Path]]:
    """The image files of both sides of a pair (``records``: the sampler's record list)."""
    return [records[i].path for i in spec.a], [records[i].path for i in spec.b]


def cache_records(cache: InputCache, records: Sequence[ImageRecord], source: str) -> list[DeviceGroup]:
    """Encode ``records`` (of the data set called ``source``) into ``cache``; returns their device groups."""
    kept = [i for i in (cache.add(r) for r in sorted(records)) if i is not None]
    return group_devices(cache.records, kept, source)


__all__ = [
    "DeviceGroup",
    "InputCache",
    "PairPolicy",
    "PairSampler",
    "PairSpec",
    "cache_records",
    "group_devices",
    "spec_paths",
    "square_side",
]

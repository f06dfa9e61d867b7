"""A streaming, class-balanced, seeded patch sampler over image records.

One image is decoded at a time and only its patches are kept, so memory does not grow with the corpus. The
order of images, the patch positions and the Dih4 elements follow from ``(seed, epoch, draw index)`` alone:
iterating twice gives the same patches, and :meth:`PatchStream.iter_epoch` can resume mid-epoch at any draw
without decoding the images before it. Training code consumes plain numpy arrays (:meth:`PatchStream.batches`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from camforensics.errors import CamforensicsError, InputError, ParameterError
from camforensics.io.patches import (
    DIH4_ORDER,
    QualityFilter,
    apply_dih4,
    extract_patches,
    grid_positions,
    random_positions,
    select_patches,
)
from camforensics.io.records import ImageRecord

Loader = Callable[[Path], np.ndarray]


@dataclass(frozen=True)
class PatchSampling:
    """How patches are drawn from each image (written into training metadata so a run can be repeated)."""

    size: int = 64  # patch side in pixels (Bondi et al. 2017: 64)
    per_image: int = 32  # patches kept per image draw (Bondi et al. 2017 keep the 32 best)
    mode: str = "random"  # "random": random positions, first per_image that pass the filter;
    #                       "grid": non-overlapping grid, the per_image best-scoring (Bondi et al.)
    oversample: int = 4  # random mode: candidates drawn = per_image * oversample
    align: int = 2  # random mode: positions are multiples of align (2 keeps the 2x2 CFA phase)
    dih4: bool = True  # apply a random Dih4 element (flip/rotation) to each patch
    quality: QualityFilter = field(default_factory=QualityFilter)  # rejection of saturated/dark/flat patches

    def __post_init__(self) -> None:
        if self.mode not in ("random", "grid"):
            raise ParameterError(f"unknown sampling mode {self.mode!r}; choose 'random' or 'grid'")
        for name in ("size", "per_image", "oversample", "align"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class Patch:
    """One sampled patch and where it came from."""

    pixels: np.ndarray  # (size, size[, C]) after the Dih4 element was applied
    y: int  # top-left row in the source image (stored pixel order)
    x: int  # top-left column
    dih4: int  # Dih4 element applied (0 = none); apply_dih4(pixels, dih4_inverse(dih4)) restores the crop
    source: Path  # the image file
    label: int  # index of the record's model in PatchStream.classes
    draw: int  # index of the image draw within its epoch


@dataclass(frozen=True)
class PatchBatch:
    """A batch of patches as plain arrays (what the torch training code consumes)."""

    pixels: np.ndarray  # (N, size, size, C)
    labels: np.ndarray  # (N,) int64
    positions: np.ndarray  # (N, 2) int64, (y, x)
    dih4: np.ndarray  # (N,) int64
    sources: tuple[Path, ...]  # (N,)


def default_loader(path: Path) -> np.ndarray:
    """Decode an image in stored (sensor) pixel order, never EXIF-rotated, RGB.

    Uses :func:`camforensics.io.images.load_image` when it is available, else OpenCV with
    ``IMREAD_IGNORE_ORIENTATION``.

    Raises
    ------
    InputError
        If the file cannot be decoded.
    """
    try:
        from camforensics.io.images import load_image
    except ImportError:
        import cv2

        pixels = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
        if pixels is None:
            raise InputError(f"{path}: cannot decode as an image") from None
        return pixels
    return load_image(path).pixels


class PatchStream:
    """Seeded, restartable stream of patches over image records, balanced across camera models.

    Parameters
    ----------
    records : sequence of ImageRecord
        Images to sample (not modified). Labels are their :attr:`ImageRecord.model_id`.
    sampling : PatchSampling
        Patch size, count per image, mode, alignment, Dih4 and quality filter.
    seed : int
        Seed of everything random.
    balance : bool
        Draw images model by model in turn (each model equally often, its images cycled in a shuffled order);
        otherwise each epoch is one shuffled pass over the records.
    images_per_epoch : int, optional
        Image draws per epoch; default the number of records.
    classes : sequence of str, optional
        Label order (give the training classes to a validation stream); default the sorted model ids.
    loader : callable, optional
        ``path -> pixels`` (HxW or HxWxC); default :func:`default_loader`.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        *,
        sampling: PatchSampling | None = None,
        seed: int = 0,
        balance: bool = True,
        images_per_epoch: int | None = None,
        classes: Sequence[str] | None = None,
        loader: Loader | None = None,
    ) -> None:
        self.records: tuple[ImageRecord, ...] = tuple(sorted(records))
        if not self.records:
            raise ParameterError("PatchStream needs at least one record; check the split or data set")
        self.sampling = sampling or PatchSampling()
        self.seed = int(seed)
        self.balance = balance
        self.images_per_epoch = len(self.records) if images_per_epoch is None else int(images_per_epoch)
        self.classes: tuple[str, ...] = (
            tuple(classes) if classes is not None else tuple(sorted({r.model_id for r in self.records}))
        )
        unknown = sorted({r.model_id for r in self.records} - set(self.classes))
        if unknown:
            raise ParameterError(f"records of models {unknown} are not among classes {list(self.classes)}")
        self._label = {c: i for i, c in enumerate(self.classes)}
        self._loader = loader or default_loader
        self._by_model: dict[str, list[int]] = {}
        for i, r in enumerate(self.records):
            self._by_model.setdefault(r.model_id, []).append(i)
        self.failures: dict[Path, str] = {}  # images that could not be decoded, with the reason

    def plan(self, epoch: int = 0) -> list[int]:
        """Record indices of the epoch's image draws, in order (cheap: nothing is decoded)."""
        rng = np.random.default_rng([self.seed, epoch, 0x5EED])
        n = self.images_per_epoch
        if not self.balance:
            order: list[int] = []
            while len(order) < n:
                order.extend(rng.permutation(len(self.records)).tolist())
            return order[:n]
        models = sorted(self._by_model)
        queues = {m: [self._by_model[m][j] for j in rng.permutation(len(self._by_model[m]))] for m in models}
        cursor = dict.fromkeys(models, 0)
        order = []
        while len(order) < n:
            for m in (models[j] for j in rng.permutation(len(models))):
                if len(order) == n:
                    break
                q = queues[m]
                order.append(q[cursor[m] % len(q)])
                cursor[m] += 1
        return order

    def _sample(self, pixels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = self.sampling
        if s.mode == "grid":
            positions = grid_positions(pixels.shape, size=s.size)
            patches = extract_patches(pixels, positions, size=s.size)
            patches, positions, _ = select_patches(patches, positions, keep=s.per_image, quality=s.quality)
            return patches, positions
        positions = random_positions(pixels.shape, size=s.size, n=s.per_image * s.oversample, rng=rng, align=s.align)
        patches = extract_patches(pixels, positions, size=s.size)
        ok = s.quality.mask(patches)
        return patches[ok][: s.per_image], positions[ok][: s.per_image]

    def iter_epoch(self, epoch: int = 0, *, start: int = 0) -> Iterator[Patch]:
        """Patches of one epoch, from image draw ``start`` on (resuming gives the same patches as before)."""
        for draw, index in enumerate(self.plan(epoch)):
            if draw < start:
                continue
            record = self.records[index]
            rng = np.random.default_rng([self.seed, epoch, draw])
            try:
                pixels = np.asarray(self._loader(record.path))
            except (CamforensicsError, OSError) as exc:
                self.failures[record.path] = str(exc)
                continue
            if pixels.ndim == 2:  # grey images join colour batches as three equal channels
                pixels = np.repeat(pixels[..., None], 3, axis=2)
            patches, positions = self._sample(pixels, rng)
            del pixels  # only the patch copies outlive this draw
            ks = rng.integers(0, DIH4_ORDER, size=len(patches)) if self.sampling.dih4 else np.zeros(len(patches), int)
            label = self._label[record.model_id]
            for patch, (y, x), k in zip(patches, positions, ks, strict=True):
                yield Patch(apply_dih4(patch, int(k)), int(y), int(x), int(k), record.path, label, draw)

    def __iter__(self) -> Iterator[Patch]:
        return self.iter_epoch(0)

    def batches(self, batch_size: int, *, epoch: int = 0, start: int = 0, mix: int = 1) -> Iterator[PatchBatch]:
        """The epoch's patches stacked in batches of ``batch_size`` (the last one may be smaller).

        With ``mix`` > 1 the patches of ``mix`` consecutive image draws are pooled and shuffled (seeded by the
        stream's seed and the epoch) before they are cut into batches, so that a batch holds patches of several
        images and camera models instead of one image's (which losses comparing models within a batch, and batch
        normalisation, need); patches left over from a pool start the next one. ``mix`` = 1 keeps draw order.
        """
        if batch_size < 1:
            raise ParameterError(f"batch_size must be >= 1, not {batch_size}")
        if mix < 1:
            raise ParameterError(f"mix must be >= 1, not {mix}")
        buf: list[Patch] = []
        if mix == 1:
            for patch in self.iter_epoch(epoch, start=start):
                buf.append(patch)
                if len(buf) == batch_size:
                    yield _stack(buf)
                    buf = []
            if buf:
                yield _stack(buf)
            return
        rng = np.random.default_rng([self.seed, epoch, start, _MIX_STREAM])
        draws: set[int] = set()

        def cut(pool: list[Patch], final: bool) -> Iterator[PatchBatch]:
            order = rng.permutation(len(pool))
            shuffled = [pool[i] for i in order]
            whole = len(shuffled) if final else len(shuffled) - len(shuffled) % batch_size
            for i in range(0, whole, batch_size):
                yield _stack(shuffled[i : i + batch_size])
            pool[:] = shuffled[whole:]

        for patch in self.iter_epoch(epoch, start=start):
            if patch.draw not in draws and len(draws) >= mix:
                yield from cut(buf, final=False)
                draws = {p.draw for p in buf}
            draws.add(patch.draw)
            buf.append(patch)
        if buf:
            yield from cut(buf, final=True)


_MIX_STREAM = 0x3A1C  # seed-sequence tag of the batch mixing


def _stack(patches: list[Patch]) -> PatchBatch:
    return PatchBatch(
        pixels=np.stack([p.pixels for p in patches]),
        labels=np.array([p.label for p in patches], dtype=np.int64),
        positions=np.array([(p.y, p.x) for p in patches], dtype=np.int64).reshape(-1, 2),
        dih4=np.array([p.dih4 for p in patches], dtype=np.int64),
        sources=tuple(p.source for p in patches),
    )


__all__ = ["Patch", "PatchBatch", "PatchSampling", "PatchStream", "default_loader"]

"""Patch geometry, the Dih4 group, the Bondi quality filter and the streaming sampler."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camforensics.errors import InputError, ParameterError
from camforensics.io.patch_stream import PatchSampling, PatchStream
from camforensics.io.patches import (
    DIH4_ORDER,
    QualityFilter,
    apply_dih4,
    dih4_compose,
    dih4_inverse,
    extract_patches,
    grid_patches,
    invert_dih4,
    patch_quality,
    random_patches,
    select_patches,
)
from camforensics.io.records import ImageRecord


def coded_image(h: int, w: int) -> np.ndarray:
    """Every pixel encodes its own (y, x): channel 0 = y, channel 1 = x, channel 2 = 128."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([yy, xx, np.full_like(yy, 128)], axis=2).astype(np.int32)


def test_grid_positions_and_content() -> None:
    image = coded_image(130, 200)
    patches, positions = grid_patches(image, size=64)
    assert patches.shape == (2 * 3, 64, 64, 3)
    assert positions.tolist() == [[0, 0], [0, 64], [0, 128], [64, 0], [64, 64], [64, 128]]
    for patch, (y, x) in zip(patches, positions, strict=True):
        assert patch[0, 0, 0] == y and patch[0, 0, 1] == x
    patches2, positions2 = grid_patches(image, size=64, stride=32)
    assert len(positions2) == 3 * 5
    assert grid_patches(image[:10, :10], size=64)[0].shape == (0, 64, 64, 3)


def test_patches_are_copies_and_input_untouched() -> None:
    image = coded_image(64, 64).astype(np.uint8)
    before = image.copy()
    patches, _ = grid_patches(image, size=32)
    patches[:] = 0
    assert np.array_equal(image, before)


def test_random_positions_inside_and_aligned() -> None:
    image = coded_image(101, 77)
    patches, positions = random_patches(image, size=16, n=200, rng=np.random.default_rng(1), align=2)
    assert positions.shape == (200, 2) and (positions % 2 == 0).all()
    assert (positions >= 0).all() and (positions[:, 0] <= 101 - 16).all() and (positions[:, 1] <= 77 - 16).all()
    for patch, (y, x) in zip(patches, positions, strict=True):
        assert (patch[0, 0, 0], patch[0, 0, 1]) == (y, x)
    again = random_patches(image, size=16, n=200, rng=1, align=2)[1]
    assert np.array_equal(random_patches(image, size=16, n=200, rng=1, align=2)[1], again)


def test_extract_rejects_out_of_bounds() -> None:
    with pytest.raises(ParameterError, match="leave"):
        extract_patches(np.zeros((10, 10)), np.array([[5, 0]]), size=8)
    with pytest.raises(ParameterError, match="positive integer"):
        grid_patches(np.zeros((10, 10)), size=0)


@pytest.mark.parametrize("k", range(8))
def test_dih4_inverse_restores(k: int) -> None:
    x = np.arange(5 * 5 * 3).reshape(5, 5, 3)
    assert np.array_equal(invert_dih4(apply_dih4(x, k), k), x)


def test_dih4_is_the_dihedral_group() -> None:
    x = np.arange(16).reshape(4, 4)
    images = [apply_dih4(x, k) for k in range(DIH4_ORDER)]
    # eight distinct elements
    assert len({im.tobytes() for im in images}) == 8
    # closure, composition law, identity, inverses, associativity
    for a, b in itertools.product(range(8), repeat=2):
        assert np.array_equal(apply_dih4(apply_dih4(x, b), a), apply_dih4(x, dih4_compose(a, b)))
    assert all(dih4_compose(k, 0) == dih4_compose(0, k) == k for k in range(8))
    assert all(dih4_compose(k, dih4_inverse(k)) == 0 for k in range(8))
    for a, b, c in itertools.product(range(8), repeat=3):
        assert dih4_compose(a, dih4_compose(b, c)) == dih4_compose(dih4_compose(a, b), c)
    # not abelian: a rotation and a flip do not commute
    assert dih4_compose(1, 4) != dih4_compose(4, 1)
    # 1 is a quarter turn counter-clockwise, 4 a left-right flip
    assert np.array_equal(images[1], np.rot90(x)) and np.array_equal(images[4], x[:, ::-1])


def test_dih4_on_batches_and_bad_elements() -> None:
    batch = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    out = apply_dih4(batch, 5, axes=(1, 2))
    assert all(np.array_equal(out[i], apply_dih4(batch[i], 5)) for i in range(2))
    for bad in (-1, 8, 2.0, True):
        with pytest.raises(ParameterError, match="0..7"):
            apply_dih4(batch, bad)


def test_bondi_quality_orders_patches() -> None:
    rng = np.random.default_rng(0)
    mid_textured = np.clip(128 + rng.normal(0, 40, (8, 8, 3)), 0, 255)
    mid_flat = np.full((8, 8, 3), 128.0)
    dark_flat = np.full((8, 8, 3), 3.0)
    white = np.full((8, 8, 3), 255.0)
    q = patch_quality(np.stack([mid_textured, mid_flat, dark_flat, white]))
    assert q[0] > q[1] > q[2] > q[3] - 1e-12
    assert q[1] == pytest.approx(0.7, abs=1e-4)  # mu ~ 0.5 -> intensity term ~1, no texture
    assert q[3] == pytest.approx(0.0)
    assert ((q >= 0) & (q <= 1)).all()


def test_quality_filter_rejects_saturated_dark_and_flat() -> None:
    rng = np.random.default_rng(0)
    good = np.clip(120 + rng.normal(0, 10, (16, 16, 3)), 0, 255)
    saturated = good.copy()
    saturated[:4] = 255  # 25% of the pixels clipped
    dark = np.clip(6 + rng.normal(0, 2, (16, 16, 3)), 0, 255)
    flat = np.full((16, 16, 3), 100.0)
    mask = QualityFilter().mask(np.stack([good, saturated, dark, flat]))
    assert mask.tolist() == [True, False, False, False]
    assert QualityFilter(max_saturated=0.3).mask(saturated[None]).tolist() == [True]
    with pytest.raises(ParameterError):
        QualityFilter(max_saturated=2.0)


def test_select_keeps_best_with_positions() -> None:
    rng = np.random.default_rng(3)
    sigmas = [1, 30, 5, 60, 0]
    patches = np.stack([np.clip(128 + rng.normal(0, s, (8, 8)), 0, 255) for s in sigmas])
    positions = np.arange(10).reshape(5, 2)
    kept, pos, scores = select_patches(patches, positions, keep=2)
    assert pos.tolist() == [[6, 7], [2, 3]]  # sigma 60, then 30
    assert (np.diff(scores) <= 0).all() and len(kept) == 2
    assert len(select_patches(patches, positions)[0]) == 4  # the flat one is rejected


# --- streaming sampler ----------------------------------------------------------------------------------


def synthetic_records(models: dict[str, int]) -> list[ImageRecord]:
    out = []
    for model, n in models.items():
        for i in range(n):
            out.append(
                ImageRecord(Path(f"/virtual/{model}_0/nat/{i}.png"), "Make", model, f"{model}_0", "nat", "generic")
            )
    return out


class FakeLoader:
    """Deterministic pixels per path; counts decodes and keeps no image alive."""

    def __init__(self, shape: tuple[int, int] = (96, 128)) -> None:
        self.calls: list[Path] = []
        self.shape = shape

    def __call__(self, path: Path) -> np.ndarray:
        self.calls.append(path)
        if "broken" in path.name:
            raise InputError(f"{path}: truncated JPEG")
        seed = int.from_bytes(str(path).encode()[-8:].rjust(8, b"\0"), "little") % 2**32
        return np.random.default_rng(seed).integers(40, 210, (*self.shape, 3), dtype=np.uint8)


def test_stream_is_lazy_one_image_at_a_time() -> None:
    loader = FakeLoader()
    stream = PatchStream(
        synthetic_records({"A": 5, "B": 5}), sampling=PatchSampling(size=16, per_image=4), loader=loader
    )
    it = iter(stream)
    first = next(it)
    assert len(loader.calls) == 1 and first.pixels.shape == (16, 16, 3)
    for _ in range(3):
        next(it)
    assert len(loader.calls) == 1  # the first image's 4 patches came from one decode
    next(it)
    assert len(loader.calls) == 2


def test_stream_deterministic_restartable_and_resumable() -> None:
    records = synthetic_records({"A": 4, "B": 2, "C": 7})
    sampling = PatchSampling(size=16, per_image=3)

    def run(**kw):
        s = PatchStream(records, sampling=sampling, seed=7, loader=FakeLoader())
        return [(p.source, p.y, p.x, p.dih4, p.pixels.tobytes()) for p in s.iter_epoch(**kw)]

    full = run(epoch=0)
    assert full == run(epoch=0)
    assert full != run(epoch=1)
    resumed = run(epoch=0, start=5)
    draws = [p.draw for p in PatchStream(records, sampling=sampling, seed=7, loader=FakeLoader()).iter_epoch(0)]
    assert resumed == [f for f, d in zip(full, draws, strict=True) if d >= 5]
    other_seed = PatchStream(records, sampling=sampling, seed=8, loader=FakeLoader())
    assert [(p.source, p.y, p.x) for p in other_seed] != [f[:3] for f in full]


def test_stream_positions_and_dih4_match_the_source() -> None:
    loader = FakeLoader()
    stream = PatchStream(
        synthetic_records({"A": 2, "B": 2}), sampling=PatchSampling(size=16, per_image=5), loader=loader
    )
    patches = list(stream)
    assert {p.dih4 for p in patches} - {0}
    for p in patches:
        source = loader(p.source)
        crop = source[p.y : p.y + 16, p.x : p.x + 16]
        assert np.array_equal(invert_dih4(p.pixels, p.dih4), crop)
        assert p.y % 2 == 0 and p.x % 2 == 0


def test_stream_balances_models() -> None:
    records = synthetic_records({"Big": 30, "Small": 2, "Mid": 6})
    stream = PatchStream(
        records, sampling=PatchSampling(size=16, per_image=2), images_per_epoch=60, loader=FakeLoader()
    )
    assert stream.classes == ("Make Big", "Make Mid", "Make Small")
    draws = [stream.records[i].model_id for i in stream.plan(0)]
    assert {draws.count(m) for m in stream.classes} == {20}
    labels = np.concatenate([b.labels for b in stream.batches(32)])
    assert np.bincount(labels).tolist() == [40, 40, 40]
    unbalanced = PatchStream(records, balance=False, loader=FakeLoader())
    assert sorted(unbalanced.plan(0)) == list(range(38))


def test_stream_grid_mode_and_batches() -> None:
    stream = PatchStream(
        synthetic_records({"A": 3}),
        sampling=PatchSampling(size=32, per_image=4, mode="grid", dih4=False),
        loader=FakeLoader(),
    )
    batches = list(stream.batches(5))
    assert [len(b.labels) for b in batches] == [5, 5, 2]
    b = batches[0]
    assert b.pixels.shape == (5, 32, 32, 3) and b.pixels.dtype == np.uint8
    assert (b.positions % 32 == 0).all() and (b.dih4 == 0).all() and len(b.sources) == 5


def test_stream_skips_broken_files_and_reports_them() -> None:
    records = synthetic_records({"A": 2}) + [
        ImageRecord(Path("/virtual/A_0/nat/broken.jpg"), "Make", "A", "A_0", "nat", "generic")
    ]
    stream = PatchStream(records, sampling=PatchSampling(size=16, per_image=2), loader=FakeLoader())
    patches = list(stream)
    assert len(patches) == 4
    assert "truncated" in stream.failures[Path("/virtual/A_0/nat/broken.jpg")]


def test_stream_reads_real_files(generic_tree: Path) -> None:
    from camforensics.io.datasets import read_dataset

    stream = PatchStream(read_dataset(generic_tree), sampling=PatchSampling(size=4, per_image=2), seed=0)
    patches = list(stream)
    assert patches and all(p.pixels.shape == (4, 4, 3) for p in patches)
    assert not stream.failures


def test_stream_parameter_errors() -> None:
    with pytest.raises(ParameterError, match="at least one record"):
        PatchStream([])
    with pytest.raises(ParameterError, match="'random' or 'grid'"):
        PatchSampling(mode="tiles")
    with pytest.raises(ParameterError, match="not among classes"):
        PatchStream(synthetic_records({"A": 1}), classes=["Make B"])


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 60), w=st.integers(1, 60), size=st.integers(1, 20), stride=st.integers(1, 20))
def test_property_grid_patches_cover_inside(h: int, w: int, size: int, stride: int) -> None:
    image = coded_image(h, w)
    patches, positions = grid_patches(image, size=size, stride=stride)
    expected = len(range(0, h - size + 1, stride)) * len(range(0, w - size + 1, stride))
    assert len(patches) == len(positions) == expected
    for patch, (y, x) in zip(patches, positions, strict=True):
        assert patch[-1, -1, 0] == y + size - 1 and patch[-1, -1, 1] == x + size - 1


def test_default_loader_keeps_stored_orientation(tmp_path: Path) -> None:
    from PIL import Image

    from camforensics.io.patch_stream import default_loader

    pixels = np.zeros((16, 32, 3), dtype=np.uint8)
    pixels[:, :16] = 200  # left half bright
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a viewer would show 32x16
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    out = default_loader(path)
    assert out.shape == (16, 32, 3)
    assert out[:, :16].mean() > 150 > out[:, 16:].mean()


def test_mixed_batches_pool_several_images_and_keep_every_patch() -> None:
    records = synthetic_records({"A": 6, "B": 6, "C": 6})
    sampling = PatchSampling(size=16, per_image=8)

    def batches(mix):
        s = PatchStream(records, sampling=sampling, seed=3, balance=True, images_per_epoch=12, loader=FakeLoader())
        return list(s.batches(8, epoch=0, mix=mix))

    plain, mixed = batches(1), batches(4)
    key = lambda b: sorted((str(src), int(y), int(x)) for src, (y, x) in zip(b.sources, b.positions))  # noqa: E731
    assert sorted(k for b in plain for k in key(b)) == sorted(k for b in mixed for k in key(b))  # same patches
    assert all(len(set(b.sources)) == 1 for b in plain)  # one image per batch without mixing
    assert all(len(b.labels) == 8 for b in mixed) and len(mixed) == 12
    assert sum(len(set(b.sources)) > 1 for b in mixed) == len(mixed)  # every mixed batch holds several images
    assert sum(len(set(b.labels.tolist())) > 1 for b in mixed) >= len(mixed) - 1  # and, nearly always, models
    again = batches(4)
    assert [b.sources for b in again] == [b.sources for b in mixed]  # seeded
    with pytest.raises(ParameterError):
        batches(0)

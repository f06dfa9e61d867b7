"""Device-disjoint splits: allocation, determinism, single-device policies, the split file and its checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from camforensics.errors import InputError, ParameterError
from camforensics.io.datasets import read_dataset
from camforensics.io.records import ImageRecord
from camforensics.io.splits import SPLIT_NAMES, Split, allocate_devices, split_by_device


def fake_records(layout: dict[str, dict[str, int]], root: Path = Path("/data")) -> list[ImageRecord]:
    """Records for {model: {device: n_images}} (files need not exist)."""
    out = []
    for model, devices in layout.items():
        for device, n in devices.items():
            for i in range(n):
                out.append(ImageRecord(root / device / "nat" / f"{i}.jpg", "Make", model, device, "nat", "generic"))
    return out


def device_sets(split: Split) -> list[set[str]]:
    return [set(split.devices(n)) for n in SPLIT_NAMES]


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, (1, 0, 0)), (2, (1, 0, 1)), (3, (1, 1, 1)), (4, (2, 1, 1)), (10, (7, 2, 1)), (20, (14, 3, 3))],
)
def test_allocate_devices(n: int, expected: tuple[int, int, int]) -> None:
    assert allocate_devices(n, (0.7, 0.15, 0.15)) == expected


def test_allocate_respects_empty_splits() -> None:
    assert allocate_devices(5, (0.8, 0.0, 0.2)) == (4, 0, 1)
    assert allocate_devices(2, (0.5, 0.5, 0.0)) == (1, 1, 0)
    assert allocate_devices(3, (1.0, 0.0, 0.0)) == (3, 0, 0)


def test_stratified_every_model_in_every_split() -> None:
    layout = {f"M{m}": {f"M{m}_{d}": 3 for d in range(5)} for m in range(4)}
    split = split_by_device(fake_records(layout), seed=3)
    for name in SPLIT_NAMES:
        assert split.models(name) == ("Make M0", "Make M1", "Make M2", "Make M3")
    a, b, c = device_sets(split)
    assert not (a & b or a & c or b & c)
    assert len(a) == 4 * 3 and len(b) == 4 and len(c) == 4
    assert split.warnings == ()


def test_deterministic_and_seed_dependent() -> None:
    records = fake_records({"A": {f"a{i}": 2 for i in range(10)}})
    one, two = split_by_device(records, seed=1), split_by_device(list(reversed(records)), seed=1)
    assert device_sets(one) == device_sets(two)
    others = [device_sets(split_by_device(records, seed=s)) for s in range(2, 8)]
    assert any(o != device_sets(one) for o in others)


def test_adding_a_model_does_not_reshuffle_others() -> None:
    base = {"A": {f"a{i}": 1 for i in range(6)}}
    more = {**base, "B": {f"b{i}": 1 for i in range(6)}}
    s1, s2 = split_by_device(fake_records(base), seed=0), split_by_device(fake_records(more), seed=0)
    for name in SPLIT_NAMES:
        assert {d for d in s2.devices(name) if d.startswith("a")} == set(s1.devices(name))


def test_small_models_and_policies() -> None:
    layout = {"Solo": {"solo0": 10}, "Pair": {"p0": 2, "p1": 2}}
    default = split_by_device(fake_records(layout))
    assert "solo0" in default.devices("train")
    assert set(default.devices("train")) ^ {"solo0"} and len(default.devices("test")) == 1
    assert any("Solo" in w and "validation or test" in w for w in default.warnings)
    assert any("Pair" in w and "none in validation" in w for w in default.warnings)

    excluded = split_by_device(fake_records(layout), single_device="exclude")
    assert all("solo0" not in excluded.devices(n) for n in SPLIT_NAMES)

    by_image = split_by_device(fake_records(layout), single_device="split_images")
    assert by_image.image_split_devices == ("solo0",)
    assert [sum(r.device == "solo0" for r in getattr(by_image, n)) for n in SPLIT_NAMES] == [7, 2, 1]
    assert any("IMAGES" in w and "optimistic" in w for w in by_image.warnings)
    assert by_image.to_dict()["device_disjoint"] is False


def test_unstratified_split() -> None:
    layout = {f"M{m}": {f"d{m}": 2} for m in range(8)}
    split = split_by_device(fake_records(layout), stratify=False)
    assert [len(split.devices(n)) for n in SPLIT_NAMES] == [6, 1, 1]
    assert split.to_dict()["stratified"] is False


@pytest.mark.parametrize(
    "fractions", [(0.5, 0.5), (0.7, 0.2, 0.2), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1), (float("nan"), 0.5, 0.5)]
)
def test_bad_fractions(fractions: tuple[float, ...]) -> None:
    with pytest.raises(ParameterError, match="fractions"):
        split_by_device(fake_records({"A": {"a": 1}}), fractions=fractions)


def test_bad_inputs() -> None:
    with pytest.raises(ParameterError, match="no records"):
        split_by_device([])
    with pytest.raises(ParameterError, match="choose one of"):
        split_by_device(fake_records({"A": {"a": 1}}), single_device="drop")
    records = fake_records({"A": {"x": 1}}) + [
        ImageRecord(Path("/data/x/nat/9.jpg"), "Make", "B", "x", "nat", "generic")
    ]
    with pytest.raises(ParameterError, match="labelled both"):
        split_by_device(records)


@settings(max_examples=60, deadline=None)
@given(
    layout=st.dictionaries(
        st.sampled_from([f"M{i}" for i in range(6)]),
        st.lists(st.integers(1, 4), min_size=1, max_size=7),
        min_size=1,
    ),
    seed=st.integers(0, 2**32),
    fractions=st.sampled_from(
        [(0.7, 0.15, 0.15), (0.6, 0.2, 0.2), (0.8, 0.0, 0.2), (1 / 3, 1 / 3, 1 / 3), (1.0, 0.0, 0.0)]
    ),
    single=st.sampled_from(["train", "exclude"]),
    stratify=st.booleans(),
)
@example(layout={"M0": [1]}, seed=0, fractions=(0.7, 0.15, 0.15), single="exclude", stratify=False)
def test_property_no_device_in_two_splits(layout, seed, fractions, single, stratify) -> None:
    tree = {m: {f"{m}_dev{j}": n for j, n in enumerate(counts)} for m, counts in layout.items()}
    records = fake_records(tree)
    split = split_by_device(records, fractions=fractions, seed=seed, single_device=single, stratify=stratify)
    a, b, c = device_sets(split)
    assert not (a & b or a & c or b & c)
    placed = [r for n in SPLIT_NAMES for r in getattr(split, n)]
    assert len(placed) == len(set(placed))
    if single == "train" or not stratify:
        assert sorted(placed) == sorted(records)  # nothing lost
    for name, f in zip(SPLIT_NAMES, fractions, strict=True):
        if f == 0:
            assert not getattr(split, name)


def test_save_load_roundtrip(generic_tree: Path, tmp_path: Path) -> None:
    records = read_dataset(generic_tree)
    split = split_by_device(records, seed=5, root=generic_tree, layout="generic", stratify=False)
    out = tmp_path / "out" / "split.json"
    split.save(out, with_hashes=True)
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["format"] == "camforensics.split" and doc["format_version"] == 1
    assert doc["seed"] == 5 and doc["dataset"]["layout"] == "generic"
    assert all(len(it["sha256"]) == 64 for n in SPLIT_NAMES for it in doc["splits"][n]["images"])
    assert not Path(doc["splits"]["train"]["images"][0]["path"]).is_absolute()
    loaded = Split.load(out, verify_hashes=True)
    for name in SPLIT_NAMES:
        assert getattr(loaded, name) == getattr(split, name)
    assert loaded.fractions == split.fractions and loaded.root == split.root


def test_load_refuses_overlap(tmp_path: Path) -> None:
    split = split_by_device(fake_records({"A": {f"a{i}": 1 for i in range(4)}}))
    doc = split.to_dict()
    doc["splits"]["test"]["images"].append(dict(doc["splits"]["train"]["images"][0], path="a_new.jpg"))
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InputError, match="in both 'train' and 'test'"):
        Split.load(path, check_files=False)


def test_load_refuses_missing_and_changed_files(generic_tree: Path, tmp_path: Path) -> None:
    split = split_by_device(read_dataset(generic_tree), root=generic_tree)
    path = tmp_path / "split.json"
    split.save(path, with_hashes=True)
    victim = split.train[0].path
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(InputError, match="changed"):
        Split.load(path, verify_hashes=True)
    moved = tmp_path / "moved"
    generic_tree.rename(moved)
    with pytest.raises(InputError, match="missing.*root"):
        Split.load(path)
    assert Split.load(path, root=moved).root == moved


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "cannot read"),
        ('{"format": "other"}', "not a camforensics split"),
        ('{"format": "camforensics.split", "format_version": 99}', "upgrade"),
        ('{"format": "camforensics.split", "format_version": 1}', "malformed"),
    ],
)
def test_load_refuses_bad_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        Split.load(path)


def test_a_split_by_named_devices_keeps_the_rest_in_train_and_refuses_unknown_or_doubled_names(tmp_path):
    from camforensics.io.splits import split_named_devices

    records = fake_records({"A": {"a0": 3, "a1": 2}, "B": {"b0": 4}, "C": {"c0": 1}})
    split = split_named_devices(records, validation=["b0"], test=["a0", "a1"])
    assert split.devices("train") == ("c0",) and split.devices("validation") == ("b0",)
    assert split.devices("test") == ("a0", "a1") and len(split.test) == 5
    assert any("by hand" in w for w in split.warnings)
    path = tmp_path / "split.json"
    split.save(path)
    assert Split.load(path, check_files=False).devices("test") == ("a0", "a1")
    with pytest.raises(ParameterError, match="zz"):
        split_named_devices(records, validation=[], test=["zz"])
    with pytest.raises(ParameterError, match="both"):
        split_named_devices(records, validation=["a0"], test=["a0"])

"""Readers of the Dresden, VISION, Kaggle and generic layouts on tiny trees with the real naming."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from camforensics.errors import CamforensicsError, InputError, ParameterError
from camforensics.io.datasets import (
    detect_layout,
    kaggle_make_model,
    read_dataset,
    read_dresden,
    read_generic,
    read_kaggle,
    read_vision,
    scan_dataset,
)
from camforensics.io.records import ImageRecord, normalize_make, normalize_model

from dataset_trees import write_image, write_text


def test_dresden_models_with_underscores_parse_from_the_right(dresden_tree: Path) -> None:
    records = read_dresden(dresden_tree)
    by_name = {r.path.name: r for r in records}
    olympus = by_name["Olympus_mju_1050SW_0_5555.JPG"]
    assert (olympus.make, olympus.model, olympus.device) == ("Olympus", "mju_1050SW", "Olympus_mju_1050SW_0")
    assert by_name["Olympus_mju_1050SW_3_5600.jpeg"].device == "Olympus_mju_1050SW_3"
    assert by_name["Sony_DSC-H50_1_4012.JPG"].model == "DSC-H50"
    assert by_name["Panasonic_DMC-FZ50_0_7771.JPG"].model_id == "Panasonic DMC-FZ50"
    assert by_name["Praktica_DCZ5.9_2_1111.JPG"].model == "DCZ5.9"
    # D70 and D70s are different models
    assert by_name["Nikon_D70s_0_1234.JPG"].model_id != by_name["Nikon_D70_1_1002.JPG"].model_id
    assert by_name["Canon_Ixus70_1_3501.jpg"].device == "Canon_Ixus70_1"
    assert by_name["Canon_Ixus70_0_9001.JPG"].content == "flat"
    assert by_name["Canon_Ixus70_0_3384.JPG"].content == "nat"
    assert all(r.dataset == "dresden" for r in records)
    assert len(records) == 11


def test_dresden_skips_with_reasons(dresden_tree: Path) -> None:
    scan = scan_dataset(dresden_tree, layout="dresden")
    reasons = {s.path.name: s.reason for s in scan.skipped}
    assert set(reasons) == {"readme.txt", ".DS_Store", "holiday photo.jpg"}
    assert "Make_Model_Device_Number" in reasons["holiday photo.jpg"]
    assert "hidden" in reasons[".DS_Store"]


def test_vision_reads_every_kind_and_ignores_videos(vision_tree: Path) -> None:
    scan = scan_dataset(vision_tree)
    assert scan.layout == "vision"
    records = scan.records
    assert len(records) == 5 * 7
    counts = Counter(r.content for r in records)
    assert counts == {k: 5 for k in ["flat", "nat", "natWA", "natFBH", "natFBL", "flatWA", "flatFBH"]}
    r = next(r for r in records if r.device == "D02_Apple_iPhone4s")
    assert (r.make, r.model, r.model_id) == ("Apple", "iPhone4s", "Apple iPhone4s")
    # D01 and D26 are two bodies of one model
    assert scan.devices == ("D01_Samsung_GalaxyS3Mini", "D02_Apple_iPhone4s", "D26_Samsung_GalaxyS3Mini")
    assert scan.models == ("Apple iPhone4s", "Samsung GalaxyS3Mini")
    assert sum("video" in s.reason for s in scan.skipped) == 3
    assert any(s.path.name == "Thumbs.db" for s in scan.skipped)
    assert sum(r.is_flat for r in records) == 15
    assert read_vision(vision_tree) == list(records)


def test_kaggle_one_device_per_class(kaggle_tree: Path) -> None:
    scan = scan_dataset(kaggle_tree)
    assert scan.layout == "kaggle"
    assert len(scan.records) == 18
    assert len(scan.devices) == 6
    by_class = {r.device: r for r in scan.records}
    assert by_class["iPhone-4s"].model_id == "Apple iPhone 4s"
    assert by_class["Sony-NEX-7"].model_id == "Sony NEX-7"
    assert by_class["HTC-1-M7"].model_id == "HTC One M7"
    assert {s.path.name for s in scan.skipped} == {"img_0a1b2c_unalt.tif", "sample_submission.csv"}
    assert read_kaggle(kaggle_tree) == list(scan.records)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Motorola-X", ("Motorola", "Moto X")),
        ("iPhone-7", ("Apple", "iPhone 7")),
        ("Nokia-Lumia-930", ("Nokia", "Lumia-930")),
        ("Mystery", ("", "Mystery")),
    ],
)
def test_kaggle_class_names(name: str, expected: tuple[str, str]) -> None:
    assert kaggle_make_model(name) == expected


def test_generic_prefers_manifest_make_model(generic_tree: Path) -> None:
    scan = scan_dataset(generic_tree)
    assert scan.layout == "generic"
    by_device = {r.device: r for r in scan.records}
    assert by_device["LG_D605_0"].make == "LG Electronics"
    assert by_device["LG_D605_0"].model_id == "LG LG-D605"
    assert by_device["Samsung_SM-J330F_0"].model_id == "Samsung SM-J330F"
    assert by_device["vivo_iQOO-U1x_1"].model_id == by_device["vivo_iQOO-U1x_0"].model_id == "vivo iQOO U1x"
    # not in the manifest: parsed from the folder name
    assert (by_device["Wiko_Ridge4G_0"].make, by_device["Wiko_Ridge4G_0"].model) == ("Wiko", "Ridge4G")
    assert len(scan.records) == 9 and len(scan.devices) == 6 and len(scan.models) == 5
    names = {r.path.name for r in scan.records}
    assert {"LG D605_1.jpg", "café été.png", "D09_I_n_0001.JPG", "w1.tiff"} <= names
    assert {s.path.name for s in scan.skipped} == {"notes.md", "._D09_I_t_0011.jpg"}
    assert Counter(r.content for r in scan.records) == {"flat": 4, "nat": 5}
    assert read_generic(generic_tree) == list(scan.records)


def test_generic_without_manifest_and_loose_files(tmp_path: Path) -> None:
    write_image(tmp_path / "Canon_EOS_5D_Mark_II_0" / "nat" / "a.jpg")
    write_image(tmp_path / "Canon_EOS_5D_Mark_II_0" / "b.jpg")
    write_image(tmp_path / "loose.jpg")
    scan = scan_dataset(tmp_path)
    assert scan.layout == "generic"
    r = {x.path.name: x for x in scan.records}
    assert (r["a.jpg"].make, r["a.jpg"].model) == ("Canon", "EOS_5D_Mark_II")
    assert r["b.jpg"].content == "unknown"
    assert [s.path.name for s in scan.skipped] == ["loose.jpg"]


def test_records_sorted_and_deterministic(generic_tree: Path) -> None:
    a, b = read_dataset(generic_tree), read_dataset(generic_tree)
    assert a == b == sorted(a)
    assert [r.path for r in a] == sorted(r.path for r in a)


def test_sha256_on_demand(generic_tree: Path) -> None:
    import hashlib

    r = read_dataset(generic_tree)[0]
    assert r.sha256() == hashlib.sha256(r.path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fixture", ["dresden_tree", "vision_tree", "kaggle_tree", "generic_tree"])
def test_detect_layout(fixture: str, request: pytest.FixtureRequest) -> None:
    root = request.getfixturevalue(fixture)
    assert detect_layout(root) == fixture.removesuffix("_tree")


def test_dresden_detected_one_level_down(tmp_path: Path) -> None:
    write_image(tmp_path / "Canon_Ixus70" / "Canon_Ixus70_0_3384.JPG")
    assert detect_layout(tmp_path) == "dresden"


def test_unknown_layout_names_the_layouts(tmp_path: Path) -> None:
    write_image(tmp_path / "photos" / "IMG_0001.jpg")
    write_text(tmp_path / "notes.txt")
    with pytest.raises(CamforensicsError, match="dresden.*vision.*kaggle.*generic"):
        read_dataset(tmp_path)


def test_missing_folder_and_bad_layout_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_dataset(tmp_path / "nope")
    with pytest.raises(ParameterError, match="choose one of"):
        read_dataset(tmp_path, layout="imagenet")


def test_normalisation() -> None:
    assert normalize_make("SAMSUNG") == normalize_make("samsung") == "Samsung"
    assert normalize_make(" LG  Electronics ") == "LG"
    assert normalize_make("Leica") == "Leica"
    assert normalize_model("Canon", "Canon PowerShot A640") == "PowerShot A640"
    assert normalize_model("Olympus", "mju_1050SW") == "mju_1050SW"
    r = ImageRecord(Path("x.jpg"), "NIKON CORPORATION", "NIKON D70s", "d", "nat", "generic")
    assert r.model_id == "Nikon D70s"

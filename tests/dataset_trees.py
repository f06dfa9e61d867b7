"""Tiny image trees with the real naming of each data set layout (Dresden, VISION, Kaggle, generic).

Fixtures are re-exported by conftest.py; tests import ``write_image``/``write_text`` from here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, *, size: int = 8, seed: int = 0) -> Path:
    """Write a small noisy RGB image; the format follows the suffix (JPEG for .jpg/.jpeg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(30, 220, size=(size, size, 3), dtype=np.uint8)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF"}[path.suffix.lower()]
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def write_text(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def dresden_tree(tmp_path: Path) -> Path:
    root = tmp_path / "dresden"
    names = [
        "Canon_Ixus70_0_3384.JPG",
        "Canon_Ixus70_0_3385.JPG",
        "Canon_Ixus70_1_3501.jpg",
        "Sony_DSC-H50_1_4012.JPG",
        "Panasonic_DMC-FZ50_0_7771.JPG",
        "Nikon_D70s_0_1234.JPG",
        "Nikon_D70_1_1002.JPG",
        "Olympus_mju_1050SW_0_5555.JPG",
        "Olympus_mju_1050SW_3_5600.jpeg",
        "Praktica_DCZ5.9_2_1111.JPG",
    ]
    for i, name in enumerate(names):
        write_image(root / name, seed=i)
    write_image(root / "flat" / "Canon_Ixus70_0_9001.JPG", seed=50)
    write_text(root / "readme.txt")
    write_text(root / ".DS_Store")
    write_image(root / "holiday photo.jpg", seed=51)
    return root


@pytest.fixture
def vision_tree(tmp_path: Path) -> Path:
    root = tmp_path / "VISION"
    devices = {"D01_Samsung_GalaxyS3Mini": 2, "D02_Apple_iPhone4s": 2, "D26_Samsung_GalaxyS3Mini": 1}
    kinds = ["flat", "nat", "natWA", "natFBH", "natFBL", "flatWA", "flatFBH"]
    seed = 0
    for device, n in devices.items():
        did = device.split("_")[0]
        for kind in kinds:
            for i in range(1, n + 1):
                seed += 1
                write_image(root / device / "images" / kind / f"{did}_I_{kind}_{i:04d}.jpg", seed=seed)
        write_text(root / device / "videos" / "flat" / f"{did}_V_flat_move_0001.mp4")
    write_text(root / "D01_Samsung_GalaxyS3Mini" / "images" / "nat" / "Thumbs.db")
    return root


@pytest.fixture
def kaggle_tree(tmp_path: Path) -> Path:
    root = tmp_path / "kaggle"
    classes = {
        "HTC-1-M7": "(HTC-1-M7){}.jpg",
        "iPhone-4s": "(iP4s){}.jpg",
        "Motorola-Droid-Maxx": "(MotoMax){}.jpg",
        "Samsung-Galaxy-S4": "(GalaxyS4){}.jpg",
        "Sony-NEX-7": "(Nex7){}.JPG",
        "LG-Nexus-5x": "(Nexus5x){}.jpg",
    }
    seed = 0
    for cls, pattern in classes.items():
        for i in range(1, 4):
            seed += 1
            write_image(root / "train" / cls / pattern.format(i), seed=seed)
    write_image(root / "test" / "img_0a1b2c_unalt.tif", seed=99)
    write_text(root / "sample_submission.csv", "fname,camera\n")
    return root


@pytest.fixture
def generic_tree(tmp_path: Path) -> Path:
    root = tmp_path / "real-like"
    files = {
        "Apple_iPhone4_0/flat/D09_I_t_0011.jpg": ("Apple", "iPhone 4"),
        "Apple_iPhone4_0/nat/D09_I_n_0001.JPG": ("Apple", "iPhone 4"),
        "LG_D605_0/flat/LG D605_1.jpg": ("LG Electronics", "LG-D605"),
        "LG_D605_0/nat/LG D605_2.jpg": ("LG Electronics", "LG-D605"),
        "Samsung_SM-J330F_0/flat/Samsung J3_1.jpg": ("samsung", "SM-J330F"),
        "vivo_iQOO-U1x_0/nat/IMG_20210101_1.jpg": ("vivo", "iQOO U1x"),
        "vivo_iQOO-U1x_1/nat/IMG_20210102_1.jpg": ("vivo", "iQOO U1x"),
        "vivo_iQOO-U1x_1/nat/café été.png": ("vivo", "iQOO U1x"),
    }
    lines = ["file,device,make,model,content,sha256"]
    for i, (rel, (make, model)) in enumerate(files.items()):
        write_image(root / rel, seed=i)
        lines.append(f"{rel},{rel.split('/')[0]},{make},{model},{rel.split('/')[1]},")
    # a device the manifest does not know: make/model come from the folder name
    write_image(root / "Wiko_Ridge4G_0" / "flat" / "w1.tiff", seed=40)
    write_text(root / "MANIFEST.csv", "\n".join(lines) + "\n")
    write_text(root / "notes.md")
    write_text(root / "Apple_iPhone4_0" / "flat" / "._D09_I_t_0011.jpg")
    return root

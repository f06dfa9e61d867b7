"""A tiny camera-model attributor trained on synthetic "camera models": a session fixture shared by the tests of
training/export/identify (tests/test_attributor.py) and of the adversarial attacks (tests/test_adversarial.py).

The synthetic camera models differ by high-frequency traces that the 5x5 high-pass preprocessor exposes (a 2x2
checkerboard as left by a demosaicer, or strong white sensor noise), planted in smooth content: a tiny network
learns them in a few steps, so tests can check decisions, not just that code ran. (1-D stripes would not do: every
row and column of the KV kernel sums to zero.)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

MODELS = {"Alpha_One": "checker", "Beta_Two": "noisy"}
TINY = {
    "preprocessor": "HP",
    "width": 8,
    "epochs": 3,
    "images_per_epoch": 18,
    "patches_per_image": 8,
    "batch_size": 32,
    "eval_patches": 4,
    "learning_rate": 3e-3,
    "threads": 1,
}


def trace_image(kind: str, seed: int, size: int = 128) -> np.ndarray:
    """A smooth RGB scene (uint8, size x size) carrying the trace of ``kind``: checker, noisy, or neither (blurred)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(60, 190, (4, 4, 3)).astype(np.float32)
    img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == "checker":
        img += rng.normal(0, 1.0, img.shape).astype(np.float32)
        img += (6.0 * (((yy + xx) % 2) * 2 - 1))[:, :, None]
    elif kind == "noisy":
        img += rng.normal(0, 5.0, img.shape).astype(np.float32)
    else:
        img = cv2.GaussianBlur(img + rng.normal(0, 1.0, img.shape).astype(np.float32), (0, 0), 1.0)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_dataset(root: Path, *, devices: int = 3, images: int = 3, size: int = 128) -> Path:
    """<root>/<Camera_Model>_<d>/nat/img<i>.png for every model of :data:`MODELS`."""
    for m, (name, kind) in enumerate(MODELS.items()):
        for d in range(devices):
            folder = root / f"{name}_{d}" / "nat"
            folder.mkdir(parents=True)
            for i in range(images):
                rgb = trace_image(kind, 1000 * m + 100 * d + i, size)
                cv2.imwrite(str(folder / f"img{i}.png"), rgb[:, :, ::-1])
    return root


@pytest.fixture(scope="session")
def attr_trained(tmp_path_factory) -> tuple[Path, Path, dict]:
    """``(base, data, summary)`` of a tiny attributor run: the run folder is ``base / "run"`` (``best.pt``,
    ``last.pt``, ...), the data set ``data``. Tests must not write into ``base / "run"`` (copy it first)."""
    torch = pytest.importorskip("torch")
    from camforensics.training.attributor import AttributorConfig, train_attributor

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("attr")
    data = write_dataset(base / "data")
    summary = train_attributor(data, base / "run", config=AttributorConfig(**TINY), command="test")
    return base, data, summary

"""Tiny learned anonymizers (Cama targeted generator, SiamTE-style eraser), trained on small synthetic cameras and
exported into a temporary model registry: session fixtures shared by the tests of the models and of the command.

The three fake camera models differ by read noise and JPEG quality; each has three devices (own PRNU), so the
seeded split is device-disjoint (1 train, 1 validation, 1 test device per model). Training is far too short to
anonymize anything: the fixtures serve tests of the machinery (losses, logs, checkpoints, export, tiling, the
command's wiring), not of quality. About 5 s on one CPU thread.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import synth

CAMERAS = {"Alpha_One": {}, "Beta_Two": {"read_noise": 4.0}, "Gamma_Three": {"jpeg_quality": 70}}
CLASSES = ("Alpha One", "Beta Two", "Gamma Three")  # the classes the exported models list (labels normalised)
TINY = {
    "width": 4,
    "depth": 3,
    "epochs": 2,
    "evaluator_epochs": 1,
    "images_per_epoch": 6,
    "patches_per_image": 4,
    "batch_size": 8,
    "val_patches": 2,
    "min_psnr": 0.0,
    "erase_max_change": 12.0,  # bounded (the tanh path is exported and checked), yet an untrained eraser's change
    "threads": 1,  # survives rounding to 8 bits
}


@pytest.fixture(scope="session")
def anon_dataset(tmp_path_factory) -> Path:
    """<root>/<Camera_Model>_<d>/nat/img<i>.png: 3 camera models x 3 devices x 2 photos of 128x128."""
    root = tmp_path_factory.mktemp("anon") / "data"
    for m, (name, options) in enumerate(CAMERAS.items()):
        for d in range(3):
            k = synth.make_prnu((128, 128), 100 * m + d)  # 128 px: the 4-level wavelet residual needs >= 112
            folder = root / f"{name}_{d}" / "nat"
            folder.mkdir(parents=True)
            for i in range(2):
                rgb = synth.shoot(k, 1000 * m + 10 * d + i, **options)
                cv2.imwrite(str(folder / f"img{i}.png"), rgb[:, :, ::-1])
    return root


@pytest.fixture(scope="session")
def anon_runs(anon_dataset, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """``{"targeted": (run folder, summary), "erase": (...)}`` of two tiny training runs."""
    torch = pytest.importorskip("torch")
    from camforensics.training.anonymizer import AnonymizerConfig, train_anonymizer

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for kind in ("targeted", "erase"):
        summary = train_anonymizer(anon_dataset, base / kind, config=AnonymizerConfig(kind=kind, **TINY), command="test")
        out[kind] = (base / kind, summary)
    return out


@pytest.fixture(scope="session")
def anon_registry(anon_runs, tmp_path_factory) -> Path:
    """A registry folder with ``cama-tiny`` (targeted, exported through the CLI, not a default) and ``erase-tiny``
    (trace eraser, the default of its task)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from typer.testing import CliRunner

    from camforensics.cli.app import app
    from camforensics.training.export import export_checkpoint

    reg = tmp_path_factory.mktemp("models")
    res = CliRunner().invoke(app, ["export", str(anon_runs["targeted"][0] / "best.pt"), "-o", str(reg / "cama-tiny.onnx")])
    assert res.exit_code == 0, res.output
    export_checkpoint(anon_runs["erase"][0] / "best.pt", reg / "erase-tiny.onnx", default=True)
    return reg

"""anonymize with learned models: --target (Cama) and --method erase with tiny exported models, and the judge
panel of camera-model attributors before and after (the shipped attributors of models/).

The tiny anonymizers (tests/anonymizer_fixtures.py) are far too weak to fool anything: these tests check the
wiring (model choice, refusals, report members, file handling), not how well the images are anonymized.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from anonymizer_fixtures import CLASSES
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.inference.registry import ModelRegistry

SHIPPED = Path(__file__).resolve().parents[1] / "models"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def registry(anon_registry, tmp_path_factory) -> Path:
    """The tiny anonymizers plus the shipped camera-model attributors, in one registry folder."""
    reg = tmp_path_factory.mktemp("learned") / "models"
    shutil.copytree(anon_registry, reg)
    into = ModelRegistry(reg)
    for e in ModelRegistry(SHIPPED).entries():
        if e.task == "camera-model-attribution":
            shutil.copy2(e.path, reg / e.path.name)
            into.register(e.name, e.meta)
    return reg


@pytest.fixture
def inputs(anon_dataset, tmp_path) -> Path:
    """Two 128x128 RGB photos and a 100x90 grey one (odd size: not a multiple of the tiles or of 4)."""
    src = tmp_path / "in"
    src.mkdir()
    for i, f in enumerate(sorted(anon_dataset.glob("Beta_Two_*/nat/*.png"))[:2]):
        shutil.copy(f, src / f"beta{i}.png")
    with Image.open(min(anon_dataset.glob("Gamma_Three_*/nat/*.png"))) as im:
        im.convert("L").crop((0, 0, 90, 100)).save(src / "grey.png")
    return src


def test_cli_targeted_records_model_tiles_and_judges(registry, inputs, tmp_path):
    hashes = {p: sha256(p) for p in inputs.iterdir()}
    report = tmp_path / "t.json"
    res = invoke("anonymize", inputs, "-o", tmp_path / "out", "--target", "alpha  ONE", "--model", "cama-tiny",
                 "--models-dir", registry, "--model-threads", 1, "--tile", 64, "--overlap", 8, "-r", report, "-j", 1)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert {p: sha256(p) for p in inputs.iterdir()} == hashes, "an input was modified"
    doc = json.loads(report.read_text())
    cama = ModelRegistry(registry).entry("cama-tiny")
    params = doc["run"]["parameters"]
    assert params["method"] == "targeted"  # implied by --target
    assert params["method_parameters"] == {"model": "cama-tiny", "model_sha256": cama.sha256,
                                           "task": "targeted-anonymization", "target": "Alpha One",
                                           "tile": 64, "overlap": 8}  # fmt: skip
    assert cama.sha256 == sha256(registry / "cama-tiny.onnx")
    models = {m["name"]: m for m in doc["run"]["models"]}
    assert models["cama-tiny"]["role"] == "anonymizer" and models["cama-tiny"]["sha256"] == cama.sha256
    assert "CPUExecutionProvider" in models["cama-tiny"]["providers"]
    judges = ["attributor-cc", "attributor-hp", "attributor-rgb"]
    assert sorted(n for n, m in models.items() if m["role"] == "judge") == judges
    assert params["judges"]["requested"] == "all" and params["judges"]["models"] == judges
    assert doc["summary"]["n_ok"] == 3
    for r in doc["results"]:
        out = Path(r["output"]["path"])
        assert out.name.endswith(".targeted-Alpha_One.png") and r["output"]["sha256"] == sha256(out)
        with Image.open(out) as o, Image.open(r["input"]["path"]) as i:
            assert o.size == i.size and o.mode == i.mode  # the grey image stays grey, 90x100
        assert r["method"]["parameters"]["target"] == "Alpha One"
        assert [j["judge"] for j in r["judges"]] == judges
        for j in r["judges"]:
            classes = ModelRegistry(registry).entry(j["judge"]).classes
            for side in ("before", "after"):
                assert j[side]["model"] in classes and 0.0 <= j[side]["probability"] <= 1.0
            assert j["before_class_kept"] == (j["after"]["model"] == j["before"]["model"])
            assert j["after_is_target"] is False  # the shipped judges do not know the synthetic "Alpha One"
            assert j["true_class"] is None and j["true_class_kept"] is None  # no EXIF camera model
    summary = doc["summary"]["judges"]
    assert set(summary) == set(judges)
    for s in summary.values():
        assert s["n_judged"] == 3 and s["targeted_success_rate"] == 0.0
        assert s["untargeted_success_rate"] == pytest.approx(1 - s["n_before_class_kept"] / 3)


def test_cli_erase_uses_the_default_eraser_and_judges_none_loads_no_judge(registry, inputs, tmp_path):
    report = tmp_path / "e.json"
    res = invoke("anonymize", inputs, "-o", tmp_path / "out", "--method", "erase", "--models-dir", registry,
                 "--judges", "none", "--model-threads", 1, "-r", report, "-q", "-j", 1)  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(report.read_text())
    assert doc["run"]["parameters"]["method_parameters"]["model"] == "erase-tiny"  # the eraser's default
    assert doc["run"]["parameters"]["method_parameters"]["target"] is None
    assert doc["run"]["parameters"]["judges"] is None
    assert [m["name"] for m in doc["run"]["models"]] == ["erase-tiny"]
    assert "judges" not in doc["summary"]
    for r in doc["results"]:
        assert "judges" not in r and r["output"]["path"].endswith(".erase.png")
        with Image.open(r["output"]["path"]) as o, Image.open(r["input"]["path"]) as i:
            assert o.size == i.size
            a, b = np.asarray(o, np.float64), np.asarray(i, np.float64)
        assert r["quality"]["psnr"] == pytest.approx(10 * np.log10(255**2 / np.mean((a - b) ** 2)))


def test_shipped_eraser_is_the_default_and_keeps_every_pixel_within_its_bound(inputs, tmp_path):
    report = tmp_path / "e.json"
    res = invoke("anonymize", inputs, "-o", tmp_path / "out", "-m", "erase", "--models-dir", SHIPPED,
                 "--judges", "none", "--model-threads", 1, "-r", report, "-q", "-j", 1)  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(report.read_text())
    [model] = doc["run"]["models"]
    assert model["name"] == "anonymizer-erase" and model["sha256"] == sha256(SHIPPED / "anonymizer-erase.onnx")
    bound = ModelRegistry(SHIPPED).entry("anonymizer-erase").meta["training"]["config"]["erase_max_change"]
    assert bound == 3.0
    for r in doc["results"]:
        with Image.open(r["output"]["path"]) as o, Image.open(r["input"]["path"]) as i:
            a, b = np.asarray(o, np.int16), np.asarray(i.convert(o.mode), np.int16)  # grey stays grey
        change = np.abs(a - b)
        assert change.max() <= bound + 1  # the bound, plus rounding to 8 bits
        assert change.any()  # it did change the picture
        assert r["quality"]["psnr"] >= 20 * np.log10(255 / (bound + 1))


def test_cli_learned_refusals_name_the_way_out(registry, inputs, tmp_path):
    out = tmp_path / "out"
    # A target the model does not know: one line listing its classes, exit 2, nothing written.
    res = invoke("anonymize", inputs, "-o", out, "--target", "Canon Ixus70", "--model", "cama-tiny",
                 "--models-dir", registry)  # fmt: skip
    assert res.exit_code == 2 and ", ".join(CLASSES) in res.output and "Canon Ixus70" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()
    res = invoke("anonymize", inputs, "-o", out, "-m", "targeted", "--model", "cama-tiny", "--models-dir", registry)
    assert res.exit_code == 2 and "--target" in res.output and ", ".join(CLASSES) in res.output
    # No default targeted anonymizer, but one registered: name it.
    res = invoke("anonymize", inputs, "-o", out, "-m", "targeted", "--target", "Beta Two", "--models-dir", registry)
    assert res.exit_code == 2 and "--model" in res.output and "cama-tiny" in res.output
    # None registered at all (as in the shipped models/): how to train and register one.
    for method in (["-m", "targeted", "--target", "Beta Two"], ["-m", "erase"]):
        res = invoke("anonymize", inputs, "-o", out, *method, "--models-dir", tmp_path / "empty")
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert "camforensics train anonymizer" in res.output and "camforensics export" in res.output
        assert "--default" in res.output
    res = invoke("anonymize", inputs, "-o", out, "-m", "targeted", "--target", "Apple iPhone 4", "--models-dir", SHIPPED)
    assert res.exit_code == 2 and "none is shipped" in res.output  # no targeted anonymizer is shipped
    # --target alone runs the transplant toward a shipped camera profile: an unknown camera lists the known ones.
    res = invoke("anonymize", inputs, "-o", out, "--target", "Beta Two", "--models-dir", registry)
    assert res.exit_code == 2 and "known targets" in res.output and "Canon IXUS 125 HS" in res.output
    # Options that do not go together, and an unknown judge.
    res = invoke("anonymize", inputs, "-o", out, "--target", "Beta Two", "-m", "median")
    assert res.exit_code == 2 and "--target needs --method" in res.output
    res = invoke("anonymize", inputs, "-o", out, "-m", "erase", "--target", "Beta Two", "--models-dir", registry)
    assert res.exit_code == 2 and "--target needs --method" in res.output
    res = invoke("anonymize", inputs, "-o", out, "-m", "jpeg", "--judges", "nope", "--models-dir", registry)
    assert res.exit_code == 2 and "attributor-cc" in res.output
    res = invoke("anonymize", inputs, "-o", out, "-m", "jpeg", "--judges", "erase-tiny", "--models-dir", registry)
    assert res.exit_code == 2 and "not a camera-model attributor" in res.output
    assert not out.exists()


def test_baseline_judged_by_the_shipped_attributors(inputs, tmp_path, monkeypatch):
    monkeypatch.delenv("CAMFORENSICS_MODELS", raising=False)
    report = tmp_path / "j.json"
    res = invoke("anonymize", inputs / "beta0.png", "-o", tmp_path / "out", "-m", "jpeg", "--judges",
                 "attributor-cc, attributor-rgb", "--model-threads", 1, "-r", report, "-j", 1)  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(report.read_text())
    shipped = ModelRegistry(SHIPPED)
    assert [(m["name"], m["sha256"]) for m in doc["run"]["models"]] == [
        (n, shipped.entry(n).sha256) for n in ("attributor-cc", "attributor-rgb")
    ]
    (r,) = doc["results"]
    assert [j["judge"] for j in r["judges"]] == ["attributor-cc", "attributor-rgb"]
    assert all("after_is_target" not in j and j["before"]["model"] for j in r["judges"])
    assert "targeted_success_rate" not in doc["summary"]["judges"]["attributor-cc"]

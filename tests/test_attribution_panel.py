"""Attribution over several data folders, the centred decision window, and panels of attributors.

Synthetic "camera models" of tests/attributor_fixtures.py (traces a tiny network learns in a few steps): training on
two folders at once with an image split and a left-out model, the window rule that makes a frame and its centred
crop see the same pixels, and a panel (mean of members' log-probabilities) registered, loaded, guarded against a
replaced member and used by identify as the default decision.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from attributor_fixtures import TINY, trace_image, write_dataset
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.errors import ParameterError
from camforensics.inference.attribution import attribute_pixels
from camforensics.inference.panel import default_panel, load_panel, panel_entry
from camforensics.inference.patches import centre_window, decision_patches
from camforensics.errors import ModelError
from camforensics.inference.registry import ModelRegistry
from camforensics.io.datasets import scan_dataset
from camforensics.io.splits import split_by_image
from camforensics.pipelines.attribution_panel import build_panel
from camforensics.training.attributor import AttributorConfig, make_split, train_attributor
from camforensics.training.export import export_attributor


def test_centre_window_is_the_rule_of_the_data_sets_lossless_crops():
    # real-dev / real-models MANIFEST.csv: 4032x3024 -> crop at +1504+992, 2592x1936 -> +784+448 (MCU-aligned).
    assert centre_window((3024, 4032, 3), 1024) == (992, 1504)
    assert centre_window((1936, 2592, 3), 1024) == (448, 784)
    assert centre_window((1024, 1024, 3), 1024) == (0, 0)
    assert centre_window((600, 2000), 1024) == (0, 480)  # a side shorter than the window is used whole


def test_a_frame_and_its_centred_crop_give_the_same_decision_patches():
    rng = np.random.default_rng(0)
    frame = cv2.resize(rng.uniform(40, 210, (30, 40, 3)).astype(np.float32), (4032, 3024))
    frame = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)
    y0, x0 = centre_window(frame.shape, 1024)
    crop = frame[y0 : y0 + 1024, x0 : x0 + 1024]
    a, pa = decision_patches(frame, preprocessor="HP", n=128, window=1024)
    b, pb = decision_patches(crop, preprocessor="HP", n=128, window=1024)
    assert np.array_equal(a, b) and np.array_equal(pa, pb + [y0, x0])  # positions in the frame's coordinates
    whole, _ = decision_patches(frame, preprocessor="HP", n=128, window=0)
    assert not np.array_equal(whole, a)  # the old rule took the frame's best patches from anywhere


def two_folders(root: Path) -> tuple[Path, Path]:
    a = write_dataset(root / "a", devices=1, images=7)
    b = root / "b" / "Gamma_Three_0" / "nat"
    b.mkdir(parents=True)
    for i in range(7):
        cv2.imwrite(str(b / f"img{i}.png"), trace_image("plain", 5000 + i)[:, :, ::-1])
    return a, root / "b"


def test_split_by_image_over_two_folders_with_test_only_photos_and_a_left_out_model(tmp_path):
    a, b = two_folders(tmp_path)
    held = tmp_path / "full" / "Alpha_One_0" / "nat"
    held.mkdir(parents=True)
    shutil.copy(a / "Alpha_One_0" / "nat" / "img0.png", held / "img0.png")
    split = make_split([a, b], "auto", AttributorConfig(split_by="image"), None, [tmp_path / "full"])
    for name in ("train", "validation", "test"):
        assert split.models(name) == ("Alpha One", "Beta Two", "Gamma Three")  # every body in every split
    assert any(r.path.name == "img0.png" and r.model == "One" for r in split.test)
    assert not any(r.path.name == "img0.png" and r.model == "One" for r in (*split.train, *split.validation))
    assert "split by image" in split.warnings[0]
    left = make_split([a, b], "auto", AttributorConfig(split_by="image", unknown_models=("Gamma Three",)), None)
    assert "Gamma Three" not in left.models("train") + left.models("validation")
    assert sum(r.model_id == "Gamma Three" for r in left.test) == 7
    with pytest.raises(ParameterError, match="not models of the data"):
        make_split([a, b], "auto", AttributorConfig(split_by="image", unknown_models=("Nope",)), None)
    with pytest.raises(ParameterError, match="split-by image"):
        make_split([a, b], "auto", AttributorConfig(), None, [tmp_path / "full"])
    recs = scan_dataset(a).records
    assert split_by_image(recs, seed=3).to_dict() == split_by_image(recs, seed=3).to_dict()  # seeded


def test_training_on_two_folders_reports_the_left_out_model_as_unknown(tmp_path):
    a, b = two_folders(tmp_path)
    cfg = AttributorConfig(**{**TINY, "epochs": 2}, split_by="image", unknown_models=("Gamma Three",))
    summary = train_attributor([a, b], tmp_path / "run", config=cfg, command="test")
    assert summary["classes"] == ["Alpha One", "Beta Two"]
    assert summary["data"]["dataset"] == "a+b"
    test = summary["metrics"]["test"]
    assert "unknown_model_rejection_rate" in test and 0.0 <= test["unknown_model_rejection_rate"] <= 1.0
    assert test["n_images"] == summary["data"]["test"]["n_images"] - 7  # the left-out model's photos are unknowns


@pytest.fixture(scope="module")
def panel_registry(attr_trained, tmp_path_factory):
    base, data, _ = attr_trained
    reg_dir = tmp_path_factory.mktemp("panel") / "models"
    export_attributor(base / "run" / "best.pt", reg_dir / "one.onnx", default=True)
    export_attributor(base / "run" / "best.pt", reg_dir / "two.onnx")
    entry = build_panel(ModelRegistry(reg_dir), "duo", ["one", "two"], base / "run" / "split.json", default=True,
                        threads=1)  # fmt: skip
    return reg_dir, entry, data


def test_a_panel_is_calibrated_on_validation_and_measured_on_test(panel_registry):
    reg_dir, entry, _ = panel_registry
    assert entry["members"].keys() == {"one", "two"} and entry["classes"] == ["Alpha One", "Beta Two"]
    assert entry["metrics"]["test"]["image_accuracy"] == 1.0
    assert entry["metrics"]["members_test"] == {"one": 1.0, "two": 1.0}
    conf = entry["metrics"]["test"]["confusion"]["matrix"]
    assert sum(map(sum, conf)) == entry["metrics"]["test"]["n_images"]
    assert entry["decision"]["open_set"]["calibrated_on"].startswith("validation")
    reg = ModelRegistry(reg_dir)
    assert default_panel(reg) == "duo" and reg.default("camera-model-attribution") == "one"
    panel = load_panel(reg, "duo", device="cpu", threads=1)
    single = reg.load("one", device="cpu", threads=1)
    img = trace_image("checker", 4242, 192)
    p, s = attribute_pixels(img, panel), attribute_pixels(img, single)
    assert p["top_k"][0]["model"] == s["top_k"][0]["model"] == "Alpha One"
    assert [m["model"] for m in p["members"]] == ["one", "two"]
    assert p["top_k"][0]["log_prob"] == pytest.approx(s["top_k"][0]["log_prob"], abs=1e-5)  # twins: same mean


def test_a_replaced_member_is_refused(panel_registry, tmp_path):
    reg_dir, _, _ = panel_registry
    copy = tmp_path / "models"
    shutil.copytree(reg_dir, copy)
    doc = json.loads((copy / "manifest.json").read_text())
    doc["panels"]["duo"]["members"]["two"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="changed since the panel was calibrated"):
        load_panel(ModelRegistry(copy), "duo")
    doc["panels"]["duo"]["members"] = {"nope": "0" * 64}
    (copy / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        panel_entry(ModelRegistry(copy), "duo")


def test_identify_uses_the_default_panel_and_says_the_exif_check_in_words(panel_registry, tmp_path):
    reg_dir, entry, _ = panel_registry
    from PIL import Image

    q = tmp_path / "q"
    q.mkdir()
    ex = Image.Exif()
    ex[0x010F], ex[0x0110] = "Gamma", "Three"  # a camera the panel does not know
    Image.fromarray(trace_image("checker", 5, 192)).save(q / "d.jpg", quality=95, exif=ex.tobytes())
    report = tmp_path / "id.json"
    res = CliRunner().invoke(app, ["identify", str(q), "--models-dir", str(reg_dir), "-r", str(report), "-j", "1",
                                   "--no-signatures"])  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(report.read_text())
    (r,) = doc["results"]
    a = r["model_attribution"]
    assert a["model"] == "duo" and len(a["members"]) == 2 and "jpeg_signature" not in r
    assert doc["run"]["models"][0]["members"][0]["name"] == "one"
    if a["decision"]["model"] is not None:  # named a class while EXIF names an unknown camera: a contradiction
        assert a["exif"]["consistent"] is False and "contradict" in res.output
    else:
        assert a["exif"]["consistent"] is True
    res = CliRunner().invoke(app, ["identify", str(q), "--models-dir", str(reg_dir), "-m", "one", "-q", "-j", "1"])
    assert res.exit_code == 0, res.output


def test_identify_matches_the_jpeg_signature_beside_the_attribution(panel_registry, tmp_path):
    reg_dir, _, _ = panel_registry
    from PIL import Image

    from camforensics.pipelines.signatures import build_table

    def camera_exif(make: str, model: str) -> bytes:
        ex = Image.Exif()
        ex[0x010F], ex[0x0110] = make, model
        return ex.tobytes()

    for cam, quality in (("Alpha_One_0", 93), ("Beta_Two_0", 80)):  # two cameras with their own tables
        ref = tmp_path / "ref" / cam / "nat"
        ref.mkdir(parents=True)
        make, model = cam[:-2].split("_")
        Image.fromarray(trace_image("checker", 1, 192)).save(ref / "r.jpg", quality=quality,
                                                             exif=camera_exif(make, model))  # fmt: skip
    table, _ = build_table([tmp_path / "ref"])
    table.save(tmp_path / "t.json")
    q = tmp_path / "q"
    q.mkdir()
    Image.fromarray(trace_image("checker", 2, 192)).save(q / "same.jpg", quality=93, exif=camera_exif("Alpha", "One"))
    Image.fromarray(trace_image("checker", 2, 192)).save(q / "nobody.jpg", quality=41, exif=camera_exif("Alpha", "One"))
    ex = Image.Exif()
    ex[0x0131] = "GIMP 2.10"
    Image.fromarray(trace_image("checker", 3, 192)).save(q / "edited.jpg", quality=60, exif=ex.tobytes())
    report = tmp_path / "id.json"
    res = CliRunner().invoke(app, ["identify", str(q), "--models-dir", str(reg_dir), "-r", str(report), "-j", "1",
                                   "--signatures", str(tmp_path / "t.json")])  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(report.read_text())
    by = {Path(r["input"]["path"]).name: r["jpeg_signature"] for r in doc["results"]}
    assert by["same.jpg"]["cameras"] == ["Alpha One"] and by["same.jpg"]["resaved"]["flag"] is False
    assert by["edited.jpg"]["resaved"]["flag"] is True and "GIMP" in by["edited.jpg"]["note"]
    verdict = {Path(r["input"]["path"]).name: (r["model_attribution"], r["camera_model"]) for r in doc["results"]}
    att, comb = verdict["edited.jpg"]  # re-saved by an editor: its tables say nothing of the camera, the CNN decides
    assert comb["by"] == ["cnn"] and comb["coding"]["status"] == "unusable" and comb["model"] == att["decision"]["model"]
    att, comb = verdict["same.jpg"]  # Alpha One's tables: the name is the CNN's best among {Alpha One}
    assert comb["by"] == ["cnn", "jpeg_signature"] and comb["candidates"] == ["Alpha One"] and comb["top"] == "Alpha One"
    assert comb["exif"]["consistent"] is (comb["model"] == "Alpha One")
    att, comb = verdict["nobody.jpg"]  # tables no known camera wrote: unknown, whatever the CNN says
    assert comb["unknown"] is True and comb["by"] == ["jpeg_signature"] and comb["top"] == att["top_k"][0]["model"]
    assert doc["summary"]["n_resaved_flagged"] == 1
    assert doc["run"]["parameters"]["attribution"]["fusion"]["cues"] == ["cnn", "jpeg_signature"]
    assert "decided by the CNN among the cameras of the JPEG signature" in res.output
    assert "decided by the JPEG signature" in res.output
    assert "looks re-saved or edited" in res.output

"""Camera-model attribution end to end on synthetic data: training, resume, export parity, registry, identify.

The synthetic "camera models" and the tiny run are in tests/attributor_fixtures.py (a session fixture, also used by
tests/test_adversarial.py): they differ by high-frequency traces that a tiny network learns in a few steps, so the
tests can check decisions, not just that code ran.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from attributor_fixtures import TINY, trace_image
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.errors import ModelError
from camforensics.inference.registry import ModelRegistry
from camforensics.training.attributor import AttributorConfig, calibrate_open_set, train_attributor
from camforensics.training.export import export_attributor


@pytest.fixture(scope="module")
def trained(attr_trained):
    return attr_trained  # tests/attributor_fixtures.py (session fixture, shared with tests/test_adversarial.py)


@pytest.fixture(scope="module")
def registry(trained):
    base, _, _ = trained
    reg_dir = base / "models"
    entry = export_attributor(base / "run" / "best.pt", reg_dir / "tiny.onnx", default=True)
    return reg_dir, entry


def test_training_learns_the_planted_traces_and_logs_every_epoch(trained):
    base, _, summary = trained
    log = [json.loads(line) for line in (base / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2]
    assert summary["classes"] == ["Alpha One", "Beta Two"]
    # Held-out devices (device-disjoint split: 3 devices per model -> 1 train, 1 validation, 1 test).
    assert summary["data"]["device_disjoint"] is True
    assert summary["metrics"]["validation"]["image_accuracy"] == 1.0
    assert summary["metrics"]["test"]["image_accuracy"] == 1.0
    assert summary["open_set"]["threshold"] < 0
    for name in ("best.pt", "last.pt", "split.json", "summary.json"):
        assert (base / "run" / name).is_file()


def test_resume_continues_and_refuses_other_settings(trained, tmp_path):
    base, data, _ = trained
    run = tmp_path / "run"
    shutil.copytree(base / "run", run)
    with pytest.raises(Exception, match="--resume"):
        train_attributor(data, run, config=AttributorConfig(**TINY))
    with pytest.raises(Exception, match="other settings"):
        train_attributor(data, run, config=AttributorConfig(**{**TINY, "width": 16}), resume=True)
    summary = train_attributor(data, run, config=AttributorConfig(**{**TINY, "epochs": 4}), resume=True)
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2, 3]  # one more epoch, the first three not redone
    assert summary["epochs_trained"] == 4


def test_export_checks_parity_and_writes_a_complete_manifest_entry(registry):
    reg_dir, entry = registry
    data = (reg_dir / "tiny.onnx").read_bytes()
    import hashlib

    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["export"]["onnx_checker"] == "passed"
    assert entry["export"]["parity_max_abs_diff"] <= entry["export"]["tolerance"] == 1e-4
    assert entry["classes"] == ["Alpha One", "Beta Two"]
    assert entry["preprocessor"] == "HP" and entry["input"]["value_range"] == [0.0, 255.0]
    assert entry["training"]["command"] == "test" and "commit" in entry["training"]
    assert entry["metrics"]["validation"]["image_accuracy"] == 1.0
    assert len(entry["training"]["history"]) == 3
    reg = ModelRegistry(reg_dir)
    assert reg.default("camera-model-attribution") == "tiny"
    loaded = reg.load("tiny", device="cpu", threads=1)
    assert loaded.providers == ("CPUExecutionProvider",)
    # Dynamic batch and spatial axes.
    for shape in ((1, 3, 64, 64), (5, 3, 96, 80)):
        out = loaded.run(np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32))
        assert out.shape == (shape[0], 2)
        np.testing.assert_allclose(np.exp(out).sum(axis=1), 1.0, rtol=1e-5)


def test_registry_refuses_tampered_unknown_and_malformed_models(registry, tmp_path):
    reg_dir, _ = registry
    copy = tmp_path / "models"
    shutil.copytree(reg_dir, copy)
    with pytest.raises(ModelError, match="available: tiny"):
        ModelRegistry(copy).entry("nope")
    data = bytearray((copy / "tiny.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "tiny.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="modified or replaced"):
        ModelRegistry(copy).load("tiny")
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["models"]["tiny"]["input"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="malformed"):
        ModelRegistry(copy).entry("tiny")
    result = CliRunner().invoke(app, ["models", "check", "--models-dir", str(reg_dir)])
    assert result.exit_code == 0 and "ok" in result.output


def test_export_refuses_an_unfinished_run(trained, tmp_path):
    base, _, _ = trained
    # last.pt is the resumable training state: it has no calibrated threshold and cannot be shipped.
    with pytest.raises(Exception, match="no calibrated open-set threshold"):
        export_attributor(base / "run" / "last.pt", tmp_path / "m" / "x.onnx")


def test_identify_attributes_models_checks_exif_and_records_the_model_hash(registry, trained, tmp_path):
    reg_dir, entry = registry
    _, data, _ = trained
    from tests.synth import write_jpeg  # noqa: F401 - Pillow writer with EXIF

    from PIL import Image

    queries = tmp_path / "q"
    queries.mkdir()
    for kind, name in (("checker", "a.png"), ("noisy", "b.png")):
        Image.fromarray(trace_image(kind, 77 + len(name), 192)).save(queries / name)
    ex = Image.Exif()
    ex[0x010F], ex[0x0110] = "Beta", "Two"  # EXIF says Beta Two
    Image.fromarray(trace_image("checker", 5, 192)).save(queries / "d.png", exif=ex.tobytes())
    report = tmp_path / "id.json"
    res = CliRunner().invoke(app, ["identify", str(queries), "--models-dir", str(reg_dir), "-r", str(report), "-q", "-j", "1"])
    assert res.exit_code == 0, res.output
    doc = json.loads(report.read_text())
    assert doc["run"]["models"][0]["sha256"] == entry["sha256"]
    assert doc["run"]["parameters"]["attribution"]["model_sha256"] == entry["sha256"]
    by_name = {Path(r["input"]["path"]).name: r["model_attribution"] for r in doc["results"]}
    assert by_name["a.png"]["top_k"][0]["model"] == "Alpha One"
    assert by_name["b.png"]["top_k"][0]["model"] == "Beta Two"
    d = by_name["d.png"]
    assert d["top_k"][0]["model"] == "Alpha One" and d["exif"]["model_id"] == "Beta Two"
    assert d["exif"]["consistent"] is False
    assert by_name["a.png"]["exif"]["consistent"] is None  # no EXIF model to compare with
    assert doc["summary"]["n_exif_inconsistent"] == 1
    # A tampered model is refused before any image is read.
    bad = tmp_path / "bad"
    shutil.copytree(reg_dir, bad)
    (bad / "tiny.onnx").write_bytes(b"not the model")
    res = CliRunner().invoke(app, ["identify", str(queries), "--models-dir", str(bad), "-r", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "refusing to load" in res.output


def test_calibration_keeps_the_asked_share_of_known_images():
    scores = np.linspace(-2.0, -0.1, 100)
    t = calibrate_open_set(scores, 0.95)
    assert (scores >= t).mean() == pytest.approx(0.95, abs=0.011)


def test_identify_keeps_the_attribution_when_no_fingerprint_fits(registry, trained, tmp_path):
    reg_dir, _ = registry
    _, data, _ = trained
    lib = tmp_path / "lib"
    res = CliRunner().invoke(app, ["enroll", str(data / "Alpha_One_0"), "--name", "a0", "--library", str(lib), "-q", "-j", "1"])
    assert res.exit_code == 0, res.output
    from PIL import Image

    q = tmp_path / "q"
    q.mkdir()
    Image.fromarray(trace_image("checker", 3, 192)).save(q / "bigger.png")  # 192x192: fits no 128x128 fingerprint
    report = tmp_path / "r.json"
    args = ["identify", str(q), "--library", str(lib), "--models-dir", str(reg_dir), "-r", str(report), "-q", "-j", "1"]
    assert CliRunner().invoke(app, args).exit_code == 0
    r = json.loads(report.read_text())["results"][0]
    assert r["status"] == "ok" and r["decision"] is None and "matches no fingerprint size" in r["prnu_skipped"]
    assert r["model_attribution"]["top_k"][0]["model"] == "Alpha One"
    # PRNU only: the same image is a per-file error, as before.
    assert CliRunner().invoke(app, [*args, "--no-model"]).exit_code == 1


def test_one_photo_is_read_ahead_only_after_the_model_passed_its_check(registry, tmp_path, monkeypatch):
    """identify of one photo decodes it in the background while the command sets up, but only once the outputs
    and the model's sha256 are checked: a changed model is refused before any image is read."""
    import camforensics.io.images as images
    from PIL import Image

    reg_dir, _ = registry
    photo = tmp_path / "a.png"
    Image.fromarray(trace_image("checker", 3, 192)).save(photo)
    started = []
    real = images.prefetch_image
    monkeypatch.setattr(images, "prefetch_image", lambda path, **kw: started.append(path) or real(path, **kw))
    bad = tmp_path / "bad"
    shutil.copytree(reg_dir, bad)
    (bad / "tiny.onnx").write_bytes(b"not the model")
    res = CliRunner().invoke(app, ["identify", str(photo), "--models-dir", str(bad), "-r", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "refusing to load" in res.output and started == []
    res = CliRunner().invoke(app, ["identify", str(photo), "--models-dir", str(reg_dir), "-r", str(tmp_path / "y.json")])
    assert res.exit_code == 0, res.output
    assert started == [photo] and not images._AHEAD  # read ahead, then claimed by the run
    assert json.loads((tmp_path / "y.json").read_text())["results"][0]["model_attribution"]["top_k"][0]["model"] == "Alpha One"


def test_adversarial_batch_stays_within_eps_of_the_pixels_and_raises_the_loss(trained):
    from camforensics.training.adversarial import load_surrogate
    from camforensics.training.attributor import adversarial_batch

    base, _, _ = trained
    net = load_surrogate(base / "run" / "best.pt").net.eval()
    rng = np.random.default_rng(3)
    imgs = [trace_image(kind, 40 + i)[:64, :64] for i, kind in enumerate(["checker", "noisy"] * 4)]
    x = torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2).astype(np.float32))
    x[0, :, :2, :2] = 0.0  # pixels at the ends of the range stay inside it
    x[1, :, :2, :2] = 255.0
    y = torch.tensor([0, 1] * 4)
    gen = torch.Generator().manual_seed(0)
    eps = 1.5
    adv = adversarial_batch(net, x, y, eps, gen)
    delta = adv - x
    assert not adv.requires_grad and adv.shape == x.shape
    assert float(delta.abs().max()) <= eps + 1e-4
    assert float(delta.abs().mean()) > 0.5 * eps  # the sign step fills most of the budget
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 255.0
    with torch.no_grad():
        clean = torch.nn.functional.nll_loss(net(x), y)
        attacked = torch.nn.functional.nll_loss(net(adv), y)
        noise = x + (torch.from_numpy(rng.choice([-eps, eps], x.shape).astype(np.float32)))
        random_sign = torch.nn.functional.nll_loss(net(noise.clamp(0, 255)), y)
    assert float(attacked) > float(random_sign) and float(attacked) > float(clean)
    # eps 0: the batch itself (no gradient pass, no random draw)
    state = gen.get_state()
    assert adversarial_batch(net, x, y, 0.0, gen) is x
    assert torch.equal(gen.get_state(), state)


def test_adversarial_eps_zero_trains_exactly_as_without_the_option(trained, tmp_path):
    base, data, _ = trained
    summary = train_attributor(data, tmp_path / "zero", config=AttributorConfig(**TINY, adversarial_eps=0.0))
    ref = torch.load(base / "run" / "best.pt", weights_only=True)
    got = torch.load(tmp_path / "zero" / "best.pt", weights_only=True)
    assert got["config"] == ref["config"] and "adversarial_eps" not in got["config"]
    assert ref["model"].keys() == got["model"].keys()
    assert all(torch.equal(ref["model"][k], got["model"][k]) for k in ref["model"])
    assert summary["metrics"]["validation"] == json.loads((base / "run" / "summary.json").read_text())["metrics"]["validation"]


def test_adversarial_training_is_recorded_changes_the_weights_and_still_learns(trained, tmp_path):
    base, data, _ = trained
    result = CliRunner().invoke(
        app,
        ["train", "attributor", str(data), "-o", str(tmp_path / "adv"), "--adversarial-eps", "1", "--quiet"]
        + [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()],
    )
    assert result.exit_code == 0, result.output
    got = torch.load(tmp_path / "adv" / "best.pt", weights_only=True)
    ref = torch.load(base / "run" / "best.pt", weights_only=True)
    assert got["config"]["adversarial_eps"] == 1.0
    assert {**got["config"], "adversarial_eps": 0} == {**ref["config"], "adversarial_eps": 0}
    assert not all(torch.equal(ref["model"][k], got["model"][k]) for k in ref["model"])
    summary = json.loads((tmp_path / "adv" / "summary.json").read_text())
    assert summary["metrics"]["validation"]["image_accuracy"] == 1.0  # 1 grey level hides no 6-level checker
    # shipped as a surrogate, the entry records the budget (and only then)
    from camforensics.training.transfer import ship_surrogate

    adv = ship_surrogate(str(tmp_path / "adv" / "best.pt"), str(tmp_path / "sur"), "adv", command="test", weight=0)
    plain = ship_surrogate(str(base / "run" / "best.pt"), str(tmp_path / "sur"), "plain", command="test")
    assert adv["training"]["adversarial_eps"] == 1.0 and "adversarial_eps" not in plain["training"]
    # a resumed run must keep the budget
    with pytest.raises(Exception, match="other settings"):
        train_attributor(data, tmp_path / "adv", config=AttributorConfig(**TINY), resume=True)


def test_adversarial_eps_is_checked():
    with pytest.raises(Exception, match="adversarial_eps"):
        AttributorConfig(adversarial_eps=-0.5)
    with pytest.raises(Exception, match="adversarial_eps"):
        AttributorConfig(adversarial_eps=float("nan"))
    with pytest.raises(Exception, match="WW"):
        AttributorConfig(preprocessor="WW", adversarial_eps=0.5)
    assert AttributorConfig(preprocessor="WW").adversarial_eps == 0.0
    assert AttributorConfig.from_dict(AttributorConfig(adversarial_eps=0.5).to_dict()).adversarial_eps == 0.5

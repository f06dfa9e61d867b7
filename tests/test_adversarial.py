"""FGSM and PGD against a camera-model attributor (camforensics.training.adversarial) and through
``camforensics anonymize --method fgsm|pgd``.

The surrogate is the tiny attributor of tests/attributor_fixtures.py (session fixture): "Alpha One" images carry a
2x2 checkerboard of amplitude 6, "Beta Two" images white noise of std 5. The tiny network is only moderately
confident (three short epochs; since its batches mix images it is surer than before, and PGD needs epsilon 4 to
turn it, as FGSM did), so the decisions checked here are those the attack can move within the given epsilon: adding a
checkerboard to a noisy image (toward Alpha One) takes a few grey levels; erasing a checkerboard of amplitude 6
needs more, and there only the direction of the change (the loss) is checked. Every decision is measured again on
the 8-bit output, independently of the attack's own statistics.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from attributor_fixtures import trace_image
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.core.quality import psnr
from camforensics.errors import InputError, ParameterError
from camforensics.io.patches import grid_patches
from camforensics.training.adversarial import fgsm, load_surrogate, pgd
from camforensics.training.checkpoint import save_checkpoint

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def surrogate(attr_trained):
    torch.set_num_threads(1)
    base, _, _ = attr_trained
    return load_surrogate(base / "run" / "best.pt")


def patch_top1(s, pixels: np.ndarray) -> np.ndarray:
    """The surrogate's top-1 class index of every whole grid patch (an independent re-measurement)."""
    rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[:, :, None], 3, axis=2)
    patches, _ = grid_patches(rgb, size=s.patch_size)
    x = torch.from_numpy(np.ascontiguousarray(patches.transpose(0, 3, 1, 2), dtype=np.float32))
    with torch.no_grad():
        return s.net(x).argmax(dim=1).numpy()


def mean_loss(s, pixels: np.ndarray, label: int) -> float:
    rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[:, :, None], 3, axis=2)
    patches, _ = grid_patches(rgb, size=s.patch_size)
    x = torch.from_numpy(np.ascontiguousarray(patches.transpose(0, 3, 1, 2), dtype=np.float32))
    with torch.no_grad():
        return float(-s.net(x)[:, label].mean())


def check_bounds(before: np.ndarray, copy: np.ndarray, out: np.ndarray, eps: float) -> None:
    np.testing.assert_array_equal(before, copy)  # the input is untouched
    assert out.dtype == np.uint8 and out.shape == before.shape
    change = np.abs(out.astype(np.int16) - before.astype(np.int16))
    assert change.max() <= eps + 0.5
    assert change.max() > 0 and np.isfinite(psnr(before, out))


ATTACKS = {
    "fgsm": lambda img, s, eps, target=None: fgsm(img, s, epsilon=eps, target=target),
    "pgd": lambda img, s, eps, target=None: pgd(img, s, epsilon=eps, step=0.5, iterations=10, target=target, seed=1),
}


@pytest.mark.parametrize(("attack", "eps"), [("fgsm", 4.0), ("pgd", 4.0)])
def test_untargeted_attack_changes_most_patch_decisions_within_the_ball(surrogate, attack, eps):
    beta = surrogate.classes.index("Beta Two")
    for seed in (11, 12):
        img = trace_image("noisy", seed, 200)  # 3x3 whole patches and an 8-pixel margin right and bottom
        copy = img.copy()
        before = patch_top1(surrogate, img)
        assert (before == beta).mean() >= 0.75  # the surrogate knows these images
        result = ATTACKS[attack](img, surrogate, eps)
        out = result.pixels
        check_bounds(img, copy, out, eps)
        after = patch_top1(surrogate, out)
        assert (after != before).mean() > 0.5, (attack, seed, before, after)
        assert result.label == "Beta Two" and not result.targeted and result.n_patches == 9
        assert result.stats["after"]["loss"] > result.stats["before"]["loss"]
        np.testing.assert_array_equal(out[192:], img[192:])  # outside the patch grid nothing changes
        np.testing.assert_array_equal(out[:, 192:], img[:, 192:])


@pytest.mark.parametrize(("attack", "eps"), [("fgsm", 4.0), ("pgd", 4.0)])
def test_targeted_attack_moves_the_decision_to_the_target(surrogate, attack, eps):
    alpha = surrogate.classes.index("Alpha One")
    img = trace_image("noisy", 21, 192)
    copy = img.copy()
    assert (patch_top1(surrogate, img) == alpha).mean() <= 0.25
    result = ATTACKS[attack](img, surrogate, eps, target="alpha_one")  # case and underscores do not matter
    check_bounds(img, copy, result.pixels, eps)
    assert result.label == "Alpha One" and result.targeted
    assert (patch_top1(surrogate, result.pixels) == alpha).mean() > 0.5
    assert mean_loss(surrogate, result.pixels, alpha) < mean_loss(surrogate, img, alpha)


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_attacks_on_a_strong_trace_still_move_the_right_way(surrogate, attack):
    """A checkerboard of amplitude 6 is not erased within epsilon 2, but the loss moves the asked way."""
    alpha, beta = surrogate.classes.index("Alpha One"), surrogate.classes.index("Beta Two")
    img = trace_image("checker", 31, 128)
    away = ATTACKS[attack](img, surrogate, 2.0)
    toward = ATTACKS[attack](img, surrogate, 2.0, target="Beta Two")
    assert mean_loss(surrogate, away.pixels, alpha) > mean_loss(surrogate, img, alpha)
    assert mean_loss(surrogate, toward.pixels, beta) < mean_loss(surrogate, img, beta)


def test_grey_images_fractional_epsilon_and_seeded_pgd(surrogate):
    grey = trace_image("noisy", 41, 150)[:, :, 1]
    copy = grey.copy()
    out = pgd(grey, surrogate, epsilon=1.5, step=0.5, iterations=3, seed=3).pixels
    assert out.ndim == 2
    check_bounds(grey, copy, out, 1.5)
    again = pgd(grey, surrogate, epsilon=1.5, step=0.5, iterations=3, seed=3).pixels
    np.testing.assert_array_equal(out, again)  # the random start is seeded
    assert np.abs(fgsm(grey, surrogate, epsilon=1.5).pixels.astype(int) - grey).max() == 2  # round(1.5) = 2
    assert np.array_equal(fgsm(grey, surrogate, epsilon=0.4).pixels, grey)  # below half a grey level: rounds back


def test_library_refusals(surrogate, attr_trained, tmp_path):
    img = trace_image("noisy", 5, 128)
    with pytest.raises(ParameterError, match="Alpha One, Beta Two"):
        fgsm(img, surrogate, epsilon=2, target="Gamma Three")
    with pytest.raises(ParameterError, match="epsilon"):
        fgsm(img, surrogate, epsilon=0)
    with pytest.raises(ParameterError, match="8-bit"):
        fgsm(img.astype(np.float32), surrogate, epsilon=2)
    with pytest.raises(ParameterError, match="smaller than one 64x64 patch"):
        pgd(img[:40], surrogate, epsilon=2, step=0.5, iterations=1)
    with pytest.raises(ParameterError, match="iteration"):
        pgd(img, surrogate, epsilon=2, step=0.5, iterations=0)
    with pytest.raises(InputError, match="no such checkpoint"):
        load_surrogate(tmp_path / "nope.pt")
    save_checkpoint(tmp_path / "siamese.pt", {"kind": "siamese", "config": {}})
    with pytest.raises(ParameterError, match="not a camera-model attributor checkpoint"):
        load_surrogate(tmp_path / "siamese.pt")
    base, _, _ = attr_trained
    assert load_surrogate(base / "run" / "last.pt").classes == surrogate.classes


@pytest.fixture(scope="module")
def judge_registry(attr_trained, tmp_path_factory) -> Path:
    """The tiny attributor exported as the only judge (the attack is white-box against it)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from camforensics.training.export import export_attributor

    base, _, _ = attr_trained
    reg = tmp_path_factory.mktemp("adv_models")
    export_attributor(base / "run" / "best.pt", reg / "tiny.onnx", default=True)
    return reg


@pytest.fixture
def inputs(tmp_path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        Image.fromarray(trace_image("noisy", 50 + i, 192)).save(src / f"beta{i}.png")
    Image.fromarray(trace_image("noisy", 60, 160)[:, :, 0]).save(src / "grey.png")
    return src


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_cli_pgd_and_targeted_fgsm_end_to_end(attr_trained, judge_registry, inputs, tmp_path):
    base, _, _ = attr_trained
    ckpt = base / "run" / "best.pt"
    hashes = {p.name: sha256(p) for p in inputs.iterdir()}
    report = tmp_path / "pgd.json"
    res = invoke(
        "anonymize", inputs, "-o", tmp_path / "out", "--method", "pgd", "--attack-model", ckpt, "--epsilon", 4,
        "--pgd-step", 0.5, "--pgd-iterations", 10, "--models-dir", judge_registry, "-r", report, "-j", 1,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "attack model: decision changed" in res.output
    doc = json.loads(report.read_text())
    mp = doc["run"]["parameters"]["method_parameters"]
    assert mp["attack"] == "pgd" and mp["attack_model"] == str(ckpt.resolve())
    assert mp["attack_model_sha256"] == sha256(ckpt)
    assert mp["classes"] == ["Alpha One", "Beta Two"] and mp["targeted"] is False and mp["target"] is None
    assert (mp["epsilon"], mp["step"], mp["iterations"], mp["seed"]) == (4.0, 0.5, 10, 0)
    roles = {m["role"]: m for m in doc["run"]["models"]}
    assert roles["surrogate"]["sha256"] == sha256(ckpt) and roles["judge"]["name"] == "tiny"
    assert len(doc["results"]) == 3 and all(r["status"] == "ok" for r in doc["results"])
    for r in doc["results"]:
        assert r["method"]["name"] == "pgd" and r["method"]["parameters"] == mp
        fitted = r["method"]["fitted"]["surrogate"]
        assert fitted["max_abs_change"] <= 4 and fitted["before"]["image_top1"] == "Beta Two"
        assert np.isfinite(r["quality"]["psnr"]) and r["output"]["path"].endswith(".pgd.png")
        judged = r["judges"][0]
        assert judged["judge"] == "tiny" and judged["before"]["model"] == "Beta Two" and "after" in judged
    assert doc["summary"]["surrogate"]["n_attacked"] == 3
    assert doc["summary"]["judges"]["tiny"]["n_judged"] == 3
    # White-box: the judge is the surrogate exported, so what fools one fools the other.
    assert doc["summary"]["judges"]["tiny"]["untargeted_success_rate"] >= 2 / 3
    assert {p.name: sha256(p) for p in inputs.iterdir()} == hashes  # inputs untouched

    report = tmp_path / "fgsm.json"
    res = invoke(
        "anonymize", inputs, "-o", tmp_path / "out2", "--method", "fgsm", "--target", "alpha one", "--epsilon", 4,
        "--attack-model", ckpt, "--models-dir", judge_registry, "-r", report, "-q", "-j", 1,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(report.read_text())
    mp = doc["run"]["parameters"]["method_parameters"]
    assert mp["attack"] == "fgsm" and mp["targeted"] is True and mp["target"] == "Alpha One"
    assert mp["step"] is None and mp["iterations"] is None
    names = sorted(Path(r["output"]["path"]).name for r in doc["results"])
    assert all(".fgsm-Alpha_One.png" in n for n in names)
    assert all("after_is_target" in r["judges"][0] for r in doc["results"])
    assert doc["summary"]["surrogate"]["success_rate"] >= 2 / 3
    assert doc["summary"]["judges"]["tiny"]["targeted_success_rate"] >= 2 / 3


def test_cli_refusals(attr_trained, inputs, tmp_path, monkeypatch):
    base, _, _ = attr_trained
    ckpt = base / "run" / "best.pt"
    common = (inputs, "-o", tmp_path / "out", "--judges", "none", "-r", tmp_path / "r.json", "-q", "-j", 1)
    res = invoke("anonymize", *common, "--method", "pgd", "--attack-model", ckpt, "--target", "Gamma Three")
    assert res.exit_code == 2 and "Alpha One, Beta Two" in res.output
    res = invoke("anonymize", *common, "--method", "fgsm", "--attack-model", tmp_path / "missing.pt")
    assert res.exit_code == 2 and "no such checkpoint" in res.output
    save_checkpoint(tmp_path / "anon.pt", {"kind": "anonymizer", "config": {}})
    res = invoke("anonymize", *common, "--method", "fgsm", "--attack-model", tmp_path / "anon.pt")
    assert res.exit_code == 2 and "not a camera-model attributor checkpoint" in res.output
    res = invoke("anonymize", *common, "--method", "pgd")
    assert res.exit_code == 2 and "--attack-model" in res.output
    res = invoke("anonymize", *common, "--method", "median", "--attack-model", ckpt)
    assert res.exit_code == 2 and "fgsm or pgd" in res.output
    res = invoke("anonymize", *common, "--method", "pgd", "--attack-model", ckpt, "--pgd-iterations", 0)
    assert res.exit_code == 2 and "--pgd-iterations" in res.output
    assert not (tmp_path / "out").exists()  # refused before anything was written
    # Without torch: one line naming the extra to install.
    for name in [m for m in sys.modules if m == "torch" or m.startswith(("torch.", "camforensics.training"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", None)
    res = invoke("anonymize", *common, "--method", "fgsm", "--attack-model", ckpt)
    assert res.exit_code == 2 and 'pip install "camforensics[train]"' in res.output

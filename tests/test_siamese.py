"""Siamese same-device verification on synthetic devices: pairs, training, resume, export parity, set-size
invariance, registry refusals, verify with a registered model, and the fusion on hand-made scores.

The synthetic data: two camera models (JPEG quality 95 and 85) with three devices each; every device has its own
strong PRNU pattern (tests/synth.py: multiplicative K through a Bayer CFA, demosaicing and JPEG), four 128x128
images per device. The devices are split 2/2/2 (train/validation/test), so calibration and test pairs come from
devices the network never saw.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import synth
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.core.modelinput import encode_input
from camforensics.errors import ParameterError
from camforensics.errors import ModelError
from camforensics.inference.registry import ModelRegistry
from camforensics.inference.verification import (
    SetAverager,
    SiameseGraph,
    fit_fusion,
    operating_threshold,
    siamese_rotation,
    siamese_score,
    spread_positions,
)
from camforensics.io.datasets import scan_dataset
from camforensics.io.images import load_image
from camforensics.training.siamese import SiameseConfig, build_model, torch_graph, train_siamese
from camforensics.training.siamese_pairs import InputCache, PairPolicy, PairSampler, cache_records

MODELS = {"Alpha_One": 95, "Beta_Two": 85}  # JPEG quality: a trace shared by the devices of one model
SIZE = 128
TINY = {
    "width": 8,
    "crop": 32,
    "cache_side": 128,
    "set_size_max": 3,
    "pairs_per_epoch": 64,
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 3e-3,
    "val_pairs": 16,
    "val_set_size": 2,
    "val_positions": 4,
    "positions": 8,
    "calibration_pairs": 12,
    "split_fractions": (0.34, 0.33, 0.33),
    "threads": 1,
}
CLI_TINY = [
    "--width", "8", "--crop", "32", "--cache-side", "128", "--set-size-max", "3", "--pairs-per-epoch", "64",
    "--epochs", "2", "--batch-size", "16", "--learning-rate", "3e-3", "--val-pairs", "16", "--val-set-size", "2",
    "--val-positions", "4", "--positions", "8", "--calibration-pairs", "12", "--fractions", "0.34,0.33,0.33",
    "--threads", "1",
]  # fmt: skip
runner = CliRunner()


def write_dataset(
    root: Path, *, models: dict[str, int] = MODELS, devices: int = 3, images: int = 4, strength: float = 0.05, seed: int = 0
) -> Path:
    for m, (model, quality) in enumerate(models.items()):
        for d in range(devices):
            k = synth.make_prnu((SIZE, SIZE), seed + 100 * m + d, strength)
            folder = root / f"{model}_{d}" / "nat"
            folder.mkdir(parents=True)
            for i in range(images):
                rgb = synth.shoot(k, seed + 1000 * m + 100 * d + i, flat=i % 2 == 0, jpeg_quality=quality)
                synth.write_jpeg(folder / f"img{i}.jpg", rgb, quality=quality)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("siamese")
    data = write_dataset(base / "data")
    # A second data set (as a simulator corpus would be) whose devices join training only; its device names repeat
    # the first data set's, which must not merge them.
    extra = write_dataset(base / "extra", models={"Alpha_One": 90}, devices=2, seed=50_000)
    args = ["train", "siamese", str(data), "-o", str(base / "run"), "--extra-train", str(extra), *CLI_TINY, "-q"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads((base / "run" / "summary.json").read_text())
    return base, data, summary


@pytest.fixture(scope="module")
def registry(trained):
    base, _, _ = trained
    reg_dir = base / "models"
    res = runner.invoke(app, ["export", str(base / "run" / "best.pt"), "-o", str(reg_dir / "tiny.onnx"), "--default"])
    assert res.exit_code == 0, res.output
    return reg_dir, json.loads((reg_dir / "manifest.json").read_text())["models"]["tiny"]


def device_images(data: Path, device: str) -> list[Path]:
    return sorted((data / device / "nat").glob("*.jpg"))


def copy_sets(tmp_path, data, one, two):
    """Three image sets as folders under tmp_path: A and B two halves of device ``one``, C device ``two``."""
    sets = {}
    for name, files in (("A", device_images(data, one)[:2]), ("B", device_images(data, one)[2:]),
                        ("C", device_images(data, two)[2:])):  # fmt: skip
        sets[name] = tmp_path / name
        sets[name].mkdir()
        for f in files:
            shutil.copy(f, sets[name] / f.name)
    return sets


def test_training_validates_on_held_out_devices_logs_and_calibrates(trained):
    base, _, summary = trained
    log = [json.loads(line) for line in (base / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1]
    assert all(0.0 <= r["val_auc"] <= 1.0 and r["train_loss"] > 0 for r in log)
    data = summary["data"]
    splits = [set(data[s]["devices"]) for s in ("train", "validation", "test")]
    assert [len(s) for s in splits] == [2, 2, 2] and not (splits[0] & splits[1] or splits[0] & splits[2])
    assert list(data["extra_train"].values()) == [{"n_images": 8, "n_devices": 2}]
    assert data["pairs"]["train"]["n_devices"] == 4 and data["pairs"]["validation"]["n_devices"] == 2
    assert data["device_disjoint"] is True and data["stratified_by_model"] is False
    val = summary["metrics"]["validation"]
    assert val["prnu_pce"]["n_positive"] > 0 and val["prnu_pce"]["n_negative"] > 0
    # The planted PRNU is strong: the classical PCE separates held-out devices, and the fusion keeps that.
    assert val["prnu_pce"]["auc"] == 1.0 and val["fused"]["auc"] == 1.0
    # Test devices were seen neither in training nor in calibration (half the negatives share a camera model).
    test = summary["metrics"]["test"]
    assert test["n_same_model_negatives"] > 0
    assert test["siamese"]["auc"] >= 0.8 and test["fused"]["auc"] >= 0.9
    fusion = summary["calibration"]["fusion"]
    assert fusion["w_prnu"] >= 0 and fusion["w_siamese"] >= 0 and 0 < fusion["threshold"] < 1
    assert summary["calibration"]["set_sizes"] == [1, 3]
    for name in ("best.pt", "last.pt", "split.json", "summary.json"):
        assert (base / "run" / name).is_file()


def test_resume_continues_and_refuses_other_settings(trained, tmp_path):
    base, data, _ = trained
    run = tmp_path / "run"
    shutil.copytree(base / "run", run)
    tiny = {**TINY, "extra_train": (str(base / "extra"),)}
    with pytest.raises(ParameterError, match="--resume"):
        train_siamese(data, run, config=SiameseConfig(**tiny))
    with pytest.raises(ParameterError, match="other settings"):
        train_siamese(data, run, config=SiameseConfig(**{**tiny, "width": 16}), resume=True)
    summary = train_siamese(data, run, config=SiameseConfig(**{**tiny, "epochs": 3}), resume=True)
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2]  # one more epoch; the first two are not redone
    assert summary["epochs_trained"] == 3
    assert json.loads((run / "split.json").read_text()) == json.loads((base / "run" / "split.json").read_text())


def test_pairs_follow_the_policy_and_are_reproducible(trained):
    _, data, _ = trained
    cache = InputCache("WW", side=128, min_side=32)
    groups = cache_records(cache, scan_dataset(data).records, "data")
    sampler = PairSampler(groups, 32, PairPolicy((1, 3), same_model_fraction=0.5), seed=7, cache=cache)
    device_of = {i: g.key for g in groups for i in g.images}
    model_of = {g.key: g.model for g in groups}
    specs = [sampler.pair(0, i) for i in range(200)]
    assert specs == [sampler.pair(0, i) for i in range(200)]  # (seed, epoch, index) fixes a pair
    assert specs != [sampler.pair(1, i) for i in range(200)]
    negatives = 0
    same_model = 0
    for s in specs:
        da, db = {device_of[i] for i in s.a}, {device_of[i] for i in s.b}
        assert len(da) == len(db) == 1 and 1 <= len(s.a) <= 3 and 1 <= len(s.b) <= 3
        assert s.y % 2 == 0 and s.x % 2 == 0 and 0 <= s.y <= 128 - 32  # CFA phase kept, patch inside
        if s.same_device:
            assert da == db and not set(s.a) & set(s.b)  # two disjoint subsets of one device
        else:
            negatives += 1
            assert da != db and s.same_model == (model_of[da.pop()] == model_of[db.pop()])
            same_model += s.same_model
    assert 0.3 < same_model / negatives < 0.7  # the asked share of hard (same-model) negatives
    # One Dih4 element for both sides: a pair of identical sets stays identical.
    spec = specs[0]
    twin = type(spec)(spec.a, spec.a, True, True, spec.y, spec.x, 5)
    a, b, y = sampler.batch([twin])
    np.testing.assert_array_equal(a, b)
    assert y.tolist() == [1.0] and a.shape == (1, 3, 32, 32)


def test_the_graph_sees_set_averages_so_any_set_size_works(registry, trained):
    reg_dir, _ = registry
    _, data, _ = trained
    model = ModelRegistry(reg_dir).load("tiny", device="cpu", threads=1)
    graph = SiameseGraph.from_loaded(model)
    imgs = [load_image(p).pixels for p in device_images(data, "Alpha_One_0")]
    other = [load_image(p).pixels for p in device_images(data, "Beta_Two_1")]
    positions = spread_positions((SIZE, SIZE), crop=32, n=graph.n_positions)
    shapes = set()
    for k in range(1, 5):
        avg = SetAverager(positions, crop=32, preprocessor="WW", area=(SIZE, SIZE))
        for im in imgs[:k]:
            avg.add(im)
        shapes.add(avg.mean().shape)
    assert shapes == {(len(positions), 3, 32, 32)}
    # The score of a set is the graph's output on the per-position mean of its images' encoded inputs.
    score = siamese_score(imgs[:3], other[:2], model)
    enc = [encode_input(im, "WW") for im in imgs[:3]], [encode_input(im, "WW") for im in other[:2]]
    a, b = (
        np.stack([np.mean([e[y : y + 32, x : x + 32] for e in side], axis=0).transpose(2, 0, 1) for y, x in positions])
        for side in enc
    )
    direct = model.session.run(["logit"], {"a": a.astype(np.float32), "b": b.astype(np.float32)})[0]
    assert score.n_positions == len(positions) == graph.n_positions
    assert score.mean_logit == pytest.approx(float(direct.mean()), abs=1e-5)
    # Averages do not care about order or repetition.
    again = siamese_score([imgs[2], imgs[0], imgs[1]] * 2, other[:2], model)
    assert again.mean_logit == pytest.approx(score.mean_logit, abs=1e-5)


def test_export_parity_manifest_entry_and_torch_onnx_agreement(registry, trained):
    reg_dir, entry = registry
    base, data, _ = trained
    assert entry["sha256"] == hashlib.sha256((reg_dir / "tiny.onnx").read_bytes()).hexdigest()
    assert entry["task"] == "same-device-verification" and entry["input"]["names"] == ["a", "b"]
    assert entry["export"]["onnx_checker"] == "passed"
    assert entry["export"]["parity_max_abs_diff"] <= entry["export"]["tolerance"] == 1e-4
    dec = entry["decision"]
    assert dec["set_sizes_trained"] == [1, 3] and dec["positions"] == 8 and dec["crop"] == 32
    assert {"intercept", "w_prnu", "w_siamese", "threshold", "operating_point"} <= set(dec["fusion"])
    assert dec["siamese_threshold"]["operating_point"] == "eer" and dec["prnu_threshold"] == 60.0
    assert entry["training"]["config"]["preprocessor"] == "WW" and "commit" in entry["training"]
    assert entry["metrics"]["validation"]["fused"]["auc"] == 1.0
    reg = ModelRegistry(reg_dir)
    assert reg.default("same-device-verification") == "tiny"
    loaded = reg.load("tiny", device="cpu", threads=1)
    for n, h, w in ((1, 32, 32), (5, 48, 40)):  # dynamic batch and spatial axes
        x = np.random.default_rng(n).uniform(100, 156, (n, 3, h, w)).astype(np.float32)
        assert loaded.session.run(["logit"], {"a": x, "b": x[::-1].copy()})[0].shape == (n,)
    # Extended inference through torch and through onnxruntime agree.
    from camforensics.training.checkpoint import load_checkpoint

    state = load_checkpoint(base / "run" / "best.pt")
    cfg = SiameseConfig.from_dict(state["config"])
    net = build_model(cfg)
    net.load_state_dict(state["model"])
    imgs = [load_image(p).pixels for p in device_images(data, "Beta_Two_0")]
    via_torch = siamese_score(imgs[:2], imgs[2:], torch_graph(net, cfg, torch.device("cpu")))
    via_onnx = siamese_score(imgs[:2], imgs[2:], loaded)
    assert via_onnx.mean_logit == pytest.approx(via_torch.mean_logit, abs=1e-4)


def test_registry_refuses_a_tampered_verifier_and_export_refuses_unfinished_runs(registry, trained, tmp_path):
    reg_dir, _ = registry
    base, data, _ = trained
    copy = tmp_path / "models"
    shutil.copytree(reg_dir, copy)
    blob = bytearray((copy / "tiny.onnx").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (copy / "tiny.onnx").write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="modified or replaced"):
        ModelRegistry(copy).load("tiny")
    a = device_images(data, "Alpha_One_0")
    res = runner.invoke(app, ["verify", str(a[0]), str(a[1]), "--models-dir", str(copy), "-r", str(tmp_path / "v.json")])
    assert res.exit_code == 2 and "refusing to load" in res.output
    res = runner.invoke(app, ["export", str(base / "run" / "last.pt"), "-o", str(tmp_path / "m" / "x.onnx")])
    assert res.exit_code == 2 and "no calibration" in res.output


def test_verify_reports_prnu_siamese_and_fused_scores_with_the_model_hash(registry, trained, tmp_path):
    reg_dir, entry = registry
    _, data, summary = trained
    one, two = summary["data"]["test"]["devices"]  # held-out devices
    sets = copy_sets(tmp_path, data, one, two)
    # R: B's decoded pixels turned a quarter (lossless PNG), as a camera held upright would store them.
    from PIL import Image

    sets["R"] = tmp_path / "R"
    sets["R"].mkdir()
    for f in sorted(sets["B"].iterdir()):
        Image.fromarray(np.rot90(load_image(f).pixels)).save(sets["R"] / f"{f.stem}.png")
    docs = {}
    for other in ("B", "C", "R"):
        report = tmp_path / f"v{other}.json"
        args = ["verify", sets["A"], sets[other], "--models-dir", reg_dir, "-r", report, "-j", "1"]
        res = runner.invoke(app, [str(a) for a in args])
        assert res.exit_code == 0, res.output
        assert "Siamese verifier tiny:" in res.output and "fused verdict:" in res.output
        docs[other] = json.loads(report.read_text())
    for doc in docs.values():
        s = doc["summary"]
        assert set(s["scores"]) == set(s["thresholds"]) == {"prnu_pce", "siamese", "fused"}
        assert s["scores"]["prnu_pce"] == s["decision"]["pce"] and s["thresholds"]["prnu_pce"] == 60.0
        assert s["thresholds"]["fused"] == entry["decision"]["fusion"]["threshold"]
        assert s["decision"]["fused_probability"] == s["scores"]["fused"]
        assert doc["run"]["models"][0]["sha256"] == entry["sha256"]
        assert doc["run"]["models"][0]["providers"] == ["CPUExecutionProvider"]
        assert doc["run"]["parameters"]["siamese"]["model_sha256"] == entry["sha256"]
        assert s["siamese"]["n_positions"] == 8 and s["siamese"]["n_images_a"] == s["siamese"]["n_images_b"] == 2
        assert s["siamese"]["area"] == [SIZE, SIZE] and s["siamese"]["warnings"] == []
    same, diff, turned = docs["B"]["summary"], docs["C"]["summary"], docs["R"]["summary"]
    # PRNU finds the quarter turn; the Siamese comparison turns B back and sees exactly the pixels of B.
    assert turned["decision"]["rotation"] == 270 and turned["siamese"]["rotation_b"] == 270
    assert turned["scores"]["siamese"] == pytest.approx(same["scores"]["siamese"], abs=1e-5)
    assert same["siamese"]["rotation_b"] == 0
    assert same["decision"]["same_device"] and same["decision"]["fused_same_device"]
    assert not diff["decision"]["same_device"] and not diff["decision"]["fused_same_device"]
    assert same["scores"]["fused"] > diff["scores"]["fused"]
    # --no-model: the classical report, with its score and threshold under the same names.
    res = runner.invoke(
        app, ["verify", str(sets["A"]), str(sets["B"]), "--models-dir", str(reg_dir), "--no-model", "-r", str(tmp_path / "n.json")]
    )
    assert res.exit_code == 0
    s = json.loads((tmp_path / "n.json").read_text())["summary"]
    assert s["scores"] == {"prnu_pce": s["decision"]["pce"]} and "fused_same_device" not in s["decision"]
    assert "siamese" not in s


def test_evaluate_verification_scores_held_out_pairs_as_verify_does(registry, trained, tmp_path):
    reg_dir, entry = registry
    _, data, summary = trained
    held_out = summary["data"]["test"]["devices"]
    out = tmp_path / "ev"
    args = ["evaluate", "verification", str(data), "--models-dir", str(reg_dir), "--set-sizes", "1,2", "--pairs", "4",
            "-o", str(out), "-q"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "report.json").read_text())
    params, s = doc["run"]["parameters"], doc["summary"]
    # Default devices: the data set's devices outside the verifier's training and validation splits.
    assert params["devices"] == sorted(held_out) and "outside" in params["devices_rule"]
    assert doc["run"]["models"][0]["sha256"] == entry["sha256"]
    assert set(s["verify"]["by_set_size"]) == {"1+1", "2+2"}
    for block in s["verify"]["by_set_size"].values():
        assert block["n_same_device"] == 2 and block["n_different_device"] == 2
        assert set(block["scores"]) == {"prnu_pce", "siamese", "fused"} and block["scores"]["prnu_pce"]["auc"] is not None
    models = {d.rsplit("_", 1)[0] for d in held_out}
    assert bool(s["same_model_negatives"]) == (len(models) == 1)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["verify"]["by_set_size"]["2+2"]["scores"]["fused"]["roc"] is not None
    assert (out / "roc_verify.png").is_file() and (out / "roc_verify_2+2.png").is_file()
    # A pair is scored exactly as verify scores the same two folders.
    pair = next(r for r in doc["results"] if r["set_size"] == "2+2" and r["same_device"])
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        for f in pair["input"][f"set_{side}"]:
            shutil.copy(f["path"], tmp_path / side / Path(f["path"]).name)
    res = runner.invoke(
        app, ["verify", str(tmp_path / "a"), str(tmp_path / "b"), "--models-dir", str(reg_dir), "-r", str(tmp_path / "v.json"), "-j", "1"]
    )
    assert res.exit_code == 0, res.output
    scores = json.loads((tmp_path / "v.json").read_text())["summary"]["scores"]
    for name in ("prnu_pce", "siamese", "fused"):
        assert pair["scores"][name] == pytest.approx(scores[name], rel=1e-4, abs=1e-5)
    # Unknown devices are refused with the ones the data set has.
    res = runner.invoke(app, [*args[:5], "--devices", "Nope_9", "-o", str(tmp_path / "x"), "-q"])
    assert res.exit_code == 2 and "Nope_9" in res.output and held_out[0] in res.output


def test_verify_fused_keeps_a_pair_prnu_accepts_when_the_calibration_would_reject_it(registry, trained, tmp_path):
    """A fusion whose logistic part rejects everything (as the 1 MP fusion rejected 6 MP pairs): the pair PRNU
    accepts is still accepted, with the floor named in the report; the pair PRNU rejects stays rejected."""
    reg_dir, _ = registry
    _, data, summary = trained
    one, two = summary["data"]["test"]["devices"]
    strict = tmp_path / "models"
    shutil.copytree(reg_dir, strict)
    manifest = json.loads((strict / "manifest.json").read_text())
    fusion = manifest["models"]["tiny"]["decision"]["fusion"]
    fusion.update(intercept=-1000.0, w_siamese=0.0)
    (strict / "manifest.json").write_text(json.dumps(manifest))
    sets = copy_sets(tmp_path, data, one, two)
    out = {}
    for other in ("B", "C"):
        report = tmp_path / f"v{other}.json"
        res = runner.invoke(app, [str(a) for a in ["verify", sets["A"], sets[other], "--models-dir", strict, "-r", report, "-j", "1"]])
        assert res.exit_code == 0, res.output
        out[other] = json.loads(report.read_text())["summary"]
    same, diff = out["B"], out["C"]
    assert same["decision"]["same_device"] and same["decision"]["fused_same_device"]
    assert same["siamese"]["fused_prnu_floor"] and same["siamese"]["fused_logistic_probability"] < 1e-100
    assert same["scores"]["fused"] == pytest.approx((1 + fusion["threshold"]) / 2)
    assert same["siamese"]["fused_prnu_threshold"] == 60.0 and same["siamese"]["fused_prnu_pixels"] == SIZE * SIZE
    assert not diff["decision"]["same_device"] and not diff["decision"]["fused_same_device"]
    assert not diff["siamese"]["fused_prnu_floor"]


def test_verify_refuses_a_model_of_another_task(registry, tmp_path):
    from camforensics.pipelines.verify import verifier_choice

    reg_dir, _ = registry
    copy = tmp_path / "models"
    shutil.copytree(reg_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["models"]["tiny"]["task"] = "camera-model-attribution"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ParameterError, match="not a same-device verifier"):
        verifier_choice("tiny", copy)
    assert verifier_choice(None, tmp_path / "empty") is None  # no default verifier: PRNU only


def test_identify_refuses_a_verifier_as_its_attributor(registry):
    from camforensics.pipelines.model_choice import model_choice

    reg_dir, _ = registry
    with pytest.raises(ParameterError, match="is a same-device verifier, not a camera-model attributor"):
        model_choice("tiny", reg_dir)


def test_fusion_is_monotone_and_calibrated():
    rng = np.random.default_rng(0)
    n = 4000
    x_prnu = rng.normal(0.0, 2.0, n)  # already on the log scale: pce = sign * expm1(|x|)
    pce = np.sign(x_prnu) * np.expm1(np.abs(x_prnu))
    siam = rng.normal(0.0, 1.5, n)
    true_p = 1 / (1 + np.exp(-(-0.5 + 1.2 * x_prnu + 0.8 * siam)))
    y = rng.random(n) < true_p
    f = fit_fusion(pce, siam, y)
    assert f.intercept == pytest.approx(-0.5, abs=0.2)
    assert f.w_prnu == pytest.approx(1.2, rel=0.15) and f.w_siamese == pytest.approx(0.8, rel=0.15)
    p = f.probability(pce, siam)
    for lo in np.arange(0.0, 1.0, 0.2):  # reliability: predicted probabilities match observed frequencies
        sel = (p >= lo) & (p < lo + 0.2)
        assert abs(p[sel].mean() - y[sel].mean()) < 0.05
    grid = np.linspace(-50, 5000, 60)
    assert (np.diff(f.probability(grid, 0.0)) >= 0).all()
    assert (np.diff(f.probability(100.0, np.linspace(-5, 5, 60))) >= 0).all()
    assert 0.0 < f.threshold < 1.0 and f.fit["n_pairs"] == n


def test_fusion_on_separable_and_on_useless_scores():
    pce = np.array([2000.0, 800.0, 300.0, 150.0, 5.0, -3.0, 12.0, 0.5])
    siam = np.array([3.0, 2.5, 2.0, 1.5, -1.0, -2.0, -1.5, -2.5])
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    f = fit_fusion(pce, siam, y)
    p = f.probability(pce, siam)
    assert np.isfinite([f.intercept, f.w_prnu, f.w_siamese]).all()
    assert p[y].min() > f.threshold > p[~y].max()
    assert p[0] > 0.8 and p[5] < 0.2  # Platt's targets keep the extremes short of 0 and 1 on 8 pairs
    assert f.fit["fpr_at_threshold"] == 0.0 and f.fit["tpr_at_threshold"] == 1.0
    # A Siamese score that runs against the labels gets no (negative) weight.
    f2 = fit_fusion(pce, -siam, y)
    assert f2.w_siamese == 0.0 and f2.fit["features_used"] == ["prnu"]
    assert fit_fusion(pce, siam, y, operating_point="fpr:0.25").operating_point == "fpr:0.25"
    with pytest.raises(ParameterError, match="both"):
        fit_fusion(pce, siam, np.ones(8, bool))
    with pytest.raises(ParameterError, match="operating point"):
        operating_threshold(siam, y, "fnr:0.1")
    op = operating_threshold([0.1, 0.2, 0.3, 0.9, 0.8, 0.35], [0, 0, 0, 1, 1, 1], "fpr:0.34")
    assert op["fpr"] <= 0.34 and op["tpr"] == 1.0


def test_positions_are_spread_inside_the_area_and_config_refuses_bad_settings():
    pos = spread_positions((300, 500), crop=64, n=12)
    assert 1 <= len(pos) <= 12 and (pos % 2 == 0).all()
    assert (pos[:, 0] + 64 <= 300).all() and (pos[:, 1] + 64 <= 500).all()
    assert len({tuple(p) for p in pos}) == len(pos)
    assert len(spread_positions((128, 128), crop=64, n=100)) == 4  # the whole grid when it is small
    with pytest.raises(ParameterError, match="smaller than one"):
        spread_positions((60, 500), crop=64, n=4)
    # Set B is turned only when PRNU is confident of the turn, or when the shapes need one.
    assert siamese_rotation((96, 128), (96, 128), prnu_rotation=180, prnu_pce=20.0, threshold=60.0) == 0
    assert siamese_rotation((96, 128), (96, 128), prnu_rotation=180, prnu_pce=900.0, threshold=60.0) == 180
    assert siamese_rotation((96, 128), (128, 96), prnu_rotation=90, prnu_pce=3.0, threshold=60.0) == 90
    with pytest.raises(ParameterError, match="RGB"):
        SiameseConfig(preprocessor="RGB")
    with pytest.raises(ParameterError, match="operating point"):
        SiameseConfig(operating_point="fpr:2")
    with pytest.raises(ParameterError, match="set sizes"):
        SiameseConfig(set_size_min=4, set_size_max=2)

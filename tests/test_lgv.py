"""LGV surrogates (training/lgv.py): snapshots of a constant-learning-rate continuation of a trained attributor, their
loading and shipping, and the transfer refinement's seeded draw of one snapshot per step."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from attributor_fixtures import trace_image

from camforensics.errors import ParameterError

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def collection(attr_trained, tmp_path_factory):
    """(start checkpoint, lgv.pt, summary) of a 2-epoch, 2-snapshots-per-epoch collection from the tiny attributor."""
    from camforensics.training.lgv import LGVConfig, train_lgv

    base, data, _ = attr_trained
    out = tmp_path_factory.mktemp("lgv") / "run"
    cfg = LGVConfig(epochs=2, snapshots_per_epoch=2, images_per_epoch=18, learning_rate=3e-3, seed=11, threads=1)
    summary = train_lgv(base / "run" / "best.pt", data, out, split_file=base / "run" / "split.json", config=cfg, command="test")
    return base / "run" / "best.pt", out / "lgv.pt", summary


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_snapshot_steps_split_the_epoch_evenly():
    from camforensics.training.lgv import snapshot_steps

    assert snapshot_steps(8, 4) == [1, 3, 5, 7]
    assert snapshot_steps(5, 2) == [2, 4]
    assert snapshot_steps(3, 1) == [2]
    with pytest.raises(ParameterError, match="steps"):
        snapshot_steps(2, 3)


def test_collection_holds_distinct_snapshots_measured_on_validation(collection):
    from camforensics.training.checkpoint import load_checkpoint

    start, path, summary = collection
    state, first = load_checkpoint(path), load_checkpoint(start)
    snaps = state["snapshots"]
    assert len(snaps) == 4 == summary["n_snapshots"]
    assert _same(state["model"], first["model"])  # the start weights, untouched
    assert not any(_same(s, first["model"]) for s in snaps)
    assert not _same(snaps[0], snaps[1]) and not _same(snaps[1], snaps[3])
    lines = [json.loads(x) for x in (path.parent / "train_log.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["snapshot"]) for r in lines] == [(0, 0), (0, 1), (1, 2), (1, 3)]
    accs = summary["snapshot_val_image_accuracy"]
    assert len(accs) == 4 and all(0.0 <= a <= 1.0 for a in accs)
    assert summary["val_image_accuracy_range"] == [min(accs), max(accs)]
    assert state["lgv"]["config"]["learning_rate"] == 3e-3 and state["lgv"]["start_sha256"]


def test_collection_refuses_a_collection_a_foreign_split_and_an_existing_run(collection, attr_trained, tmp_path):
    from camforensics.io.splits import Split
    from camforensics.training.lgv import LGVConfig, train_lgv

    start, path, _ = collection
    base, data, _ = attr_trained
    split = base / "run" / "split.json"
    cfg = LGVConfig(epochs=1, snapshots_per_epoch=1, images_per_epoch=4, threads=1)
    with pytest.raises(ParameterError, match="already an LGV collection"):
        train_lgv(path, data, tmp_path / "a", split_file=split, config=cfg)
    with pytest.raises(ParameterError, match="already holds"):
        train_lgv(start, data, path.parent, split_file=split, config=cfg)
    s = Split.load(split)
    one = dataclasses.replace(s, records={**s.records, "train": tuple(r for r in s.train if r.model_id == s.train[0].model_id)})
    one.save(tmp_path / "one.json")
    with pytest.raises(ParameterError, match="classes"):
        train_lgv(start, data, tmp_path / "b", split_file=tmp_path / "one.json", config=cfg)
    with pytest.raises(ParameterError, match="optimizer"):
        LGVConfig(optimizer="rmsprop")


def test_loader_gives_the_start_net_and_the_snapshots(collection):
    from camforensics.training.adversarial import load_surrogate
    from camforensics.training.checkpoint import load_checkpoint

    start, path, _ = collection
    s, plain = load_surrogate(path), load_surrogate(start)
    assert plain.snapshots == () and len(s.snapshots) == 4
    assert _same(s.net.state_dict(), plain.net.state_dict())
    snaps = load_checkpoint(path)["snapshots"]
    assert all(_same(n.state_dict(), w) for n, w in zip(s.snapshots, snaps))
    assert all(not n.training and not any(p.requires_grad for p in n.parameters()) for n in s.snapshots)
    assert s.summary()["lgv_snapshots"] == 4 and "lgv_snapshots" not in plain.summary()


def test_ship_surrogate_keeps_the_snapshots_and_records_them(collection, tmp_path):
    from camforensics.training.adversarial import load_surrogate
    from camforensics.training.transfer import ship_surrogate

    _, path, summary = collection
    entry = ship_surrogate(str(path), str(tmp_path), "lgv-test", command="camforensics train lgv ...", weight=0.0)
    lgv = entry["training"]["lgv"]
    assert lgv["n_snapshots"] == 4 and lgv["val_image_accuracy_range"] == summary["val_image_accuracy_range"]
    assert entry["ensemble_weight"] == 0.0 and "LGV" in entry["format"]
    shipped = load_surrogate(tmp_path / "lgv-test.pt")
    assert len(shipped.snapshots) == 4 and shipped.sha256 == entry["sha256"]
    assert (tmp_path / "lgv-test.pt").stat().st_size <= path.stat().st_size  # weights and settings only


def _attack(s, seed, photo):
    from camforensics.training.transfer import transfer_attack

    kw = dict(target="Beta_Two", epsilon=6, iterations=4, window=0, loss="judge", psnr_floor=None, momentum=1.0)
    return transfer_attack(photo, [s], seed=seed, **kw)


def test_attack_draws_one_snapshot_per_step_from_its_seed(collection):
    from camforensics.training.adversarial import load_surrogate

    _, path, _ = collection
    s = load_surrogate(path)
    photo = trace_image("checker", 4242)
    a, rec = _attack(s, 5, photo)
    b, _ = _attack(s, 5, photo)
    assert np.array_equal(a, b)  # same seed, same snapshots drawn, same output
    assert rec["surrogates"][0]["lgv_snapshots"] == 4
    plain, _ = _attack(dataclasses.replace(s, snapshots=()), 5, photo)
    assert not np.array_equal(a, plain)  # the snapshots steer, not the start net
    others = [_attack(s, seed, photo)[0] for seed in (6, 7, 8)]
    assert any(not np.array_equal(a, o) for o in others)


def test_one_snapshot_collection_is_the_plain_net(collection):
    from camforensics.training.adversarial import load_surrogate

    _, path, _ = collection
    s = load_surrogate(path)
    photo = trace_image("noisy", 4343)
    for snap in (s.net, s.snapshots[2]):
        alone, _ = _attack(dataclasses.replace(s, net=snap, snapshots=()), 3, photo)
        one, _ = _attack(dataclasses.replace(s, snapshots=(snap,)), 3, photo)
        assert np.array_equal(alone, one)


def test_cli_train_lgv_writes_a_collection(attr_trained, tmp_path):
    from typer.testing import CliRunner

    from camforensics.cli.app import app

    base, data, _ = attr_trained
    args = ["train", "lgv", str(base / "run" / "best.pt"), str(data), "-o", str(tmp_path / "run"), "--split",
            str(base / "run" / "split.json"), "--epochs", "1", "--snapshots-per-epoch", "2", "--images-per-epoch", "8",
            "--learning-rate", "0.001", "--optimizer", "adam", "--threads", "1"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 snapshots" in result.output and (tmp_path / "run" / "lgv.pt").is_file()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["config"]["optimizer"] == "adam"


def test_a_slightly_robust_start_net_goes_on_with_its_adversarial_training(attr_trained, tmp_path, monkeypatch):
    """A start net trained with adversarial_eps continues with fast adversarial training at that budget (each batch
    replaced by its FGSM example), a normal one with plain batches; the same seed otherwise gives the same weights."""
    from camforensics.training import attributor as attributor_module
    from camforensics.training.checkpoint import load_checkpoint, save_checkpoint
    from camforensics.training.lgv import LGVConfig, train_lgv

    base, data, _ = attr_trained
    state = load_checkpoint(base / "run" / "best.pt")
    state["config"] = {**state["config"], "adversarial_eps": 0.5}
    save_checkpoint(tmp_path / "rob.pt", {k: v for k, v in state.items() if k not in ("format", "version")})
    budgets = []
    real = attributor_module.adversarial_batch  # the attributor trainer's epoch, which train_lgv runs
    monkeypatch.setattr(attributor_module, "adversarial_batch", lambda m, x, y, eps, g: budgets.append(eps) or real(m, x, y, eps, g))
    cfg = LGVConfig(epochs=1, snapshots_per_epoch=1, images_per_epoch=8, seed=5, threads=1)
    split = base / "run" / "split.json"
    train_lgv(tmp_path / "rob.pt", data, tmp_path / "rob", split_file=split, config=cfg)
    assert budgets and set(budgets) == {0.5}
    budgets.clear()
    train_lgv(base / "run" / "best.pt", data, tmp_path / "plain", split_file=split, config=cfg)
    train_lgv(base / "run" / "best.pt", data, tmp_path / "again", split_file=split, config=cfg)
    assert budgets == []
    rob, plain, again = (load_checkpoint(tmp_path / n / "lgv.pt")["snapshots"][0] for n in ("rob", "plain", "again"))
    assert _same(plain, again) and not _same(rob, plain)

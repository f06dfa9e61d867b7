"""A one-photo command's residual started once its photo is decoded (camforensics.pipelines.ahead): the same residual
as computed in the run, taken only for the very same pixels and parameters, its errors the run's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.core.params import ResidualParams
from camforensics.core.residual import extract_residual
from camforensics.io.images import load_image
from camforensics.pipelines import ahead


def _pixels(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (160, 192, 3), dtype=np.uint8)


def test_the_residual_started_ahead_is_the_one_computed_in_the_run():
    px = _pixels()
    ahead.start_residual(px, ResidualParams())
    residual = ahead.claim_residual(px, ResidualParams())
    assert np.array_equal(residual, extract_residual(px, params=ResidualParams()))
    assert ahead.claim_residual(px, ResidualParams()) is None  # once


def test_only_the_same_array_and_parameters_claim_it():
    px = _pixels()
    ahead.start_residual(px, ResidualParams(sigma0=3.0))
    assert ahead.claim_residual(px.copy(), ResidualParams(sigma0=3.0)) is None  # equal pixels, another array
    assert ahead.claim_residual(px, ResidualParams()) is None  # other parameters
    residual = ahead.claim_residual(px, ResidualParams(sigma0=3.0))
    assert np.array_equal(residual, extract_residual(px, params=ResidualParams(sigma0=3.0)))


def test_its_error_is_raised_by_the_claim():
    bad = np.zeros((4, 4, 5), np.uint8)  # five channels: refused by the residual
    ahead.start_residual(bad, ResidualParams())
    with pytest.raises(Exception, match="channel|shape"):
        ahead.claim_residual(bad, ResidualParams())


@pytest.mark.parametrize("command", ["extract", "identify"])
def test_a_one_photo_command_computes_its_residual_ahead_and_takes_it(command, device_tree, tmp_path, monkeypatch):
    photo = device_tree / "cam_a" / "nat" / "nat 0.jpg"
    started, claimed = [], []
    start, claim = ahead.start_residual, ahead.claim_residual
    monkeypatch.setattr(ahead, "start_residual", lambda px, params: started.append(params) or start(px, params))

    def recorded(px, params):
        got = claim(px, params)
        claimed.append(got is not None)
        return got

    monkeypatch.setattr(ahead, "claim_residual", recorded)  # residual_of claims through it
    report = tmp_path / "r.json"
    if command == "extract":
        args = ["extract", str(photo), "-o", str(tmp_path / "out"), "--no-png", "-r", str(report)]
    else:
        lib = tmp_path / "lib"
        res = CliRunner().invoke(app, ["enroll", str(device_tree / "cam_a" / "flat"), "--name", "cam_a", "--library",
                                       str(lib), "-r", str(tmp_path / "e.json")])  # fmt: skip
        assert res.exit_code == 0, res.output
        args = ["identify", str(photo), "--library", str(lib), "--no-model", "-r", str(report)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert started == [ResidualParams()] and claimed == [True] and not ahead._AHEAD
    result = json.loads(report.read_text())["results"][0]
    w = extract_residual(load_image(photo).pixels)
    if command == "extract":
        assert np.array_equal(np.load(result["outputs"]["residual_npy"]), w)
    else:
        assert result["decision"]["match"] and result["decision"]["device"] == "cam_a"


def test_the_residual_computed_ahead_splits_its_work_over_the_pool(monkeypatch):
    """The ahead thread is not one of the pool's: its row strips go to the pool (its residual ran on one core, the
    strips unsplit, while the other core waited), and the residual is the same bits."""
    from camforensics.runtime import threads

    monkeypatch.setattr(threads, "_limit", 2)
    monkeypatch.setattr(threads, "_enabled", True)
    seen = []
    strips = threads.for_row_strips

    def recorded(fn, n_rows, size):
        seen.append(threads.width())
        return strips(fn, n_rows, size)

    monkeypatch.setattr(threads, "for_row_strips", recorded)
    px = np.random.default_rng(1).integers(0, 256, (1024, 1536, 3), dtype=np.uint8)
    ahead.start_residual(px, ResidualParams())
    residual = ahead.claim_residual(px, ResidualParams())
    assert seen and max(seen) == 2  # split where the work is worth it
    assert threads.pool().submit(threads.width).result() == 1  # the pool's own threads never split again
    assert np.array_equal(residual.view(np.uint32), extract_residual(px, params=ResidualParams()).view(np.uint32))

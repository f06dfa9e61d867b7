"""Learned anonymizers (Cama targeted generator, SiamTE-style eraser): nets, losses, a tiny training run, export
parity, registry entries, and tiled inference without seams, on small synthetic cameras (the session fixtures of
tests/anonymizer_fixtures.py). Training is far too short to anonymize anything: these tests check the machinery
(losses, logs, checkpoints, export, tiling), not quality.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from anonymizer_fixtures import TINY

from camforensics.errors import ParameterError
from camforensics.inference.anonymizer import anonymize_image
from camforensics.inference.registry import LoadedModel, ModelEntry, ModelRegistry
from camforensics.training.anonymizer import AnonymizerConfig, train_anonymizer
from camforensics.training.anonymizer_losses import (
    cama_generator_loss,
    classifier_loss,
    discriminator_loss,
    embedded_similarity_loss,
    truncated_l1,
    uniform_cross_entropy,
)
from camforensics.training.anonymizer_nets import (
    CamaDiscriminator,
    CamaGenerator,
    RemosaicBilinear,
    TraceEraser,
    label_planes,
)
from camforensics.training.onnx_graph import onnx_bytes
from camforensics.training.preprocess import constrain_all


def test_constrained_conv_projection_holds_after_an_optimiser_step():
    torch.manual_seed(0)
    d = CamaDiscriminator(3, width=4)
    opt = torch.optim.Adam(d.parameters(), lr=0.1)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    d(x, torch.tensor([0, 1, 2, 0])).pow(2).mean().backward()
    opt.step()
    w = d.cc.conv.weight.detach()
    assert not torch.allclose(w[:, :, 2, 2], torch.full((3, 3), -1.0))  # the step broke the constraint...
    constrain_all(d)
    w = d.cc.conv.weight.detach()
    np.testing.assert_allclose(w[:, :, 2, 2].numpy(), -1.0)  # ...the projection restores it: centre -1,
    np.testing.assert_allclose(w.sum(dim=(2, 3)).numpy(), 0.0, atol=1e-5)  # the neighbours sum to 1


def test_bounded_eraser_never_moves_a_pixel_further_than_its_bound():
    torch.manual_seed(0)
    bound = 3.0 / 127.5  # 3 grey levels on the [-1, 1] scale
    bounded, free = TraceEraser(width=8, depth=4, max_change=bound), TraceEraser(width=8, depth=4)
    free.load_state_dict(bounded.state_dict())
    for net in (bounded, free):
        torch.nn.init.constant_(net.residual[-1].bias, 5.0)  # an output layer that asks for huge changes
        net.eval()
    x = torch.rand(2, 3, 40, 40) * 1.6 - 0.8
    with torch.no_grad():
        change, free_change = (bounded(x) - x).abs(), (free(x) - x).abs()
    assert change.max().item() <= bound * (1 + 1e-5) and change.max().item() > 0.9 * bound
    assert free_change.max().item() > 5 * bound  # the unbounded residual goes where it is sent
    worst = 10 * math.log10(4.0 / float(change.pow(2).mean()))  # PSNR on the [-1, 1] scale (peak-to-peak 2)
    assert worst >= 20 * math.log10(2.0 / bound) - 1e-3  # = 38.6 dB: the bound holds on any image
    with pytest.raises(ValueError):
        TraceEraser(max_change=-1.0)


def test_anonymizer_config_of_old_runs_reads_as_an_unbounded_eraser():
    old = AnonymizerConfig(kind="erase").to_dict()
    del old["erase_max_change"]
    assert AnonymizerConfig.from_dict(old).erase_max_change == 0.0
    assert AnonymizerConfig.from_dict(AnonymizerConfig(kind="erase").to_dict()).erase_max_change == 3.0
    with pytest.raises(ParameterError):
        AnonymizerConfig(kind="erase", erase_max_change=-1.0)


def test_matching_aware_discriminator_loss_values():
    one, zero = torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    assert discriminator_loss(one, zero, zero).item() == 0.0  # a perfect discriminator
    assert discriminator_loss(zero, one, one).item() == pytest.approx(2.0)  # 1 + 1/2 (1 + 1)
    half = torch.full((2, 1, 3, 3), 0.5)
    # (0.5 - 1)^2 + 1/2 (0.5^2 + 1^2): a wrongly labelled real image counts as fake
    assert discriminator_loss(half, half, one).item() == pytest.approx(0.25 + 0.5 * (0.25 + 1.0))


def test_generator_loss_parts_have_the_cama_weights():
    d_fake = torch.full((2, 1, 4, 4), 0.5)
    x = torch.zeros(2, 3, 8, 8)
    x_gen = torch.full((2, 3, 8, 8), 0.1)
    lp_h = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25]]))
    lp_l = torch.log(torch.tensor([[0.25, 0.5, 0.25], [0.5, 0.25, 0.25]]))
    target = torch.tensor([0, 1])
    clf = -0.5 * (math.log(0.5) + math.log(0.25))  # -1/2 log(E_H(x')_y' * E_L(x')_y'), both rows alike
    assert classifier_loss(lp_h, lp_l, target).item() == pytest.approx(clf, rel=1e-6)
    parts = cama_generator_loss(d_fake, x_gen, x, lp_h, lp_l, target)
    assert parts["adv"].item() == pytest.approx(0.25)
    assert parts["l1"].item() == pytest.approx(0.1, rel=1e-6)
    assert parts["total"].item() == pytest.approx(0.25 + 10 * 0.1 + 0.01 * clf, rel=1e-6)


def test_eraser_losses_truncated_l1_similarity_and_uniform_ce():
    x = torch.zeros(1, 3, 4, 4)
    assert truncated_l1(x + 0.01, x, 0.02).item() == 0.0  # within the threshold: free
    assert truncated_l1(x - 0.05, x, 0.02).item() == pytest.approx(0.03, rel=1e-5)  # linear beyond it
    e = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), dim=1)
    assert embedded_similarity_loss(e[:2], torch.tensor([0, 1])).item() == pytest.approx(0.0)  # already alike
    assert embedded_similarity_loss(e[1:], torch.tensor([0, 1])).item() == pytest.approx(1.0)  # orthogonal
    assert embedded_similarity_loss(e, torch.tensor([2, 2, 2])).item() == 0.0  # one model: nothing to pull
    uniform = torch.log(torch.full((4, 5), 0.2))
    assert uniform_cross_entropy(uniform).item() == pytest.approx(math.log(5))
    peaked = torch.log_softmax(torch.tensor([[5.0, 0, 0, 0, 0]]), dim=1)
    assert uniform_cross_entropy(peaked).item() > math.log(5)


def test_remosaic_bilinear_equals_opencv_inside_and_keeps_constants():
    from camforensics.sim.cfa import demosaic, mosaic

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 40, 3)).astype(np.uint8)
    ref = demosaic(mosaic(img, "RGGB"), "RGGB", "bilinear").astype(np.float64)
    x = torch.from_numpy(img.transpose(2, 0, 1)[None].astype(np.float32))
    got = RemosaicBilinear()(x)[0].numpy().transpose(1, 2, 0)
    assert np.abs(got - ref)[2:-2, 2:-2].max() <= 0.5  # OpenCV rounds to 8 bits
    flat = RemosaicBilinear()(torch.full((1, 3, 8, 12), 0.3))
    np.testing.assert_allclose(flat.numpy(), 0.3, atol=1e-6)  # borders too (normalised convolution)


def test_tiny_training_writes_the_log_and_checkpoints(anon_runs):
    for kind, (run, summary) in anon_runs.items():
        log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
        assert [(r["epoch"], r["phase"]) for r in log] == [(0, "evaluator"), (1, "anonymizer")]
        success = "val_targeted_success" if kind == "targeted" else "val_untargeted_success"
        assert log[0][success] is None and 0.0 <= log[1][success] <= 1.0
        assert log[1]["val_psnr"] > 20.0 and "train_loss" in log[1]
        for name in ("best.pt", "last.pt", "split.json", "summary.json"):
            assert (run / name).is_file()
        assert summary["classes"] == ["Alpha One", "Beta Two", "Gamma Three"]
        assert summary["data"]["device_disjoint"] is True
        assert set(summary["metrics"]) == {"judge", "validation", "test"}
    targeted = [json.loads(line) for line in (anon_runs["targeted"][0] / "train_log.jsonl").read_text().splitlines()]
    assert {"train_e0_l2", "train_clf_ce"} <= set(targeted[0])
    assert {"train_loss_d", "train_g_adv", "train_g_l1", "train_g_clf"} <= set(targeted[1])


def test_resume_continues_and_refuses_to_overwrite(anon_runs, anon_dataset, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(anon_runs["erase"][0], run)
    with pytest.raises(ParameterError, match="--resume"):
        train_anonymizer(anon_dataset, run, config=AnonymizerConfig(kind="erase", **TINY))
    with pytest.raises(ParameterError, match="other settings"):
        train_anonymizer(anon_dataset, run, config=AnonymizerConfig(kind="erase", **{**TINY, "width": 8}), resume=True)
    summary = train_anonymizer(anon_dataset, run, config=AnonymizerConfig(kind="erase", **{**TINY, "epochs": 3}), resume=True)
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2] and summary["epochs_trained"] == 3


def test_export_checks_parity_and_registers_both_kinds(anon_registry):
    reg = ModelRegistry(anon_registry)
    cama, eraser = reg.entry("cama-tiny"), reg.entry("erase-tiny")
    assert cama.task == "targeted-anonymization" and eraser.task == "trace-erasing"
    assert reg.default("trace-erasing") == "erase-tiny"
    for e in (cama, eraser):
        ex = e.meta["export"]
        assert ex["onnx_checker"] == "passed" and ex["parity_max_abs_diff"] <= ex["tolerance"]
        assert e.value_range == (-1.0, 1.0) and e.classes == ("Alpha One", "Beta Two", "Gamma Three")
        assert e.meta["training"]["command"] == "test" and "validation" in e.meta["metrics"]
    assert cama.meta["input"]["target"]["name"] == "target" and cama.meta["input"]["size_multiple"] == 4
    # Dynamic batch, height and width: the output has the input's shape.
    rng = np.random.default_rng(1)
    loaded = reg.load("cama-tiny", device="cpu", threads=1)
    for n, h, w in ((1, 64, 64), (2, 100, 132)):
        x = rng.uniform(-1, 1, (n, 3, h, w)).astype(np.float32)
        t = label_planes(torch.tensor([2] * n), 3, torch.from_numpy(x)).numpy().copy()
        assert loaded.session.run(None, {"image": x, "target": t})[0].shape == (n, 3, h, w)
    loaded = reg.load("erase-tiny", device="cpu", threads=1)
    x = rng.uniform(-1, 1, (3, 3, 37, 51)).astype(np.float32)
    assert loaded.run(x).shape == x.shape


def test_targets_are_checked_against_the_classes(anon_registry):
    reg = ModelRegistry(anon_registry)
    img = np.full((64, 64, 3), 128, np.uint8)
    cama = reg.load("cama-tiny", device="cpu", threads=1)
    with pytest.raises(ParameterError, match=r"unknown target.*'Alpha One', 'Beta Two', 'Gamma Three'"):
        anonymize_image(img, cama, target="Canon Ixus70")
    with pytest.raises(ParameterError, match="needs a target"):
        anonymize_image(img, cama)
    assert anonymize_image(img, cama, target="beta two").shape == img.shape  # case-insensitive
    assert anonymize_image(img, cama, target="GAMMA_three ").shape == img.shape  # spaces and underscores too
    with pytest.raises(ParameterError, match="without a target"):
        anonymize_image(img, reg.load("erase-tiny", device="cpu", threads=1), target="Beta Two")


def _random_generator_model(tmp_path: Path) -> LoadedModel:
    """An untrained Cama generator whose correction is large (random last layer): a strongly varying, fully
    convolutional graph (a trained tiny one is close to the identity, which would hide seams)."""
    from camforensics.inference.session import new_session

    torch.manual_seed(3)
    g = CamaGenerator(3, width=4).eval()
    torch.nn.init.normal_(g.body.net[-1].weight, std=0.3)
    data = onnx_bytes(g, (torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)), input_names=("image", "target"),
                      output_name="output", spatial_output=True)  # fmt: skip
    meta = {"file": "g.onnx", "sha256": "0" * 64, "task": "targeted-anonymization", "classes": ["a", "b", "c"],
            "preprocessor": "remosaic-bilinear", "input": {"patch_size": 64, "value_range": [-1.0, 1.0]}}  # fmt: skip
    entry = ModelEntry.from_manifest("g", meta, tmp_path)
    return LoadedModel(entry, new_session(data, device="cpu", threads=1), ("CPUExecutionProvider",))


def _column_gradient_energy(img: np.ndarray) -> np.ndarray:
    """Mean squared horizontal difference per column boundary (index j: between columns j and j + 1)."""
    d = np.diff(img.astype(np.float64), axis=1)
    return (d**2).mean(axis=(0, 2))


def _worst_seam(out: np.ndarray, tile: int, overlap: int) -> float:
    """Largest ratio of the gradient energy across a tile edge to that of the columns a few pixels either side
    (content changes slowly from column to column; a seam is a jump at one column)."""
    from camforensics.inference.anonymizer import _origins

    width = out.shape[1] + (-out.shape[1]) % 4  # the image is padded to a multiple of 4
    edges = set()
    for x0 in _origins(width, tile, tile - overlap):
        edges |= {x0 - 1, x0 + tile - 1}
    g = _column_gradient_energy(out)
    inner = sorted(j for j in edges if 8 <= j < len(g) - 8)
    return max(g[j] / np.mean(np.r_[g[j - 5 : j - 1], g[j + 2 : j + 6]]) for j in inner)


def test_tiling_equals_the_whole_image_and_shows_no_seams(tmp_path):
    model = _random_generator_model(tmp_path)
    rng = np.random.default_rng(5)
    smooth = cv2.resize(rng.uniform(40, 210, (5, 6, 3)).astype(np.float32), (230, 198), interpolation=cv2.INTER_CUBIC)
    img = np.clip(np.round(smooth + rng.normal(0, 2, smooth.shape)), 0, 255).astype(np.uint8)  # 198 x 230
    whole = anonymize_image(img, model, target="b", tile=None)
    tiled = anonymize_image(img, model, target="b", tile=64, overlap=16)
    assert tiled.shape == img.shape
    diff = np.abs(whole.astype(int) - tiled.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05  # the same image, up to 8-bit rounding
    # No seams: gradient energy across the tile edges is that of the columns beside them. Naive tiling (no
    # overlap, no context) is the control that shows the check can fail.
    naive = anonymize_image(img, model, target="b", tile=64, overlap=0)
    blended, control = _worst_seam(tiled, 64, 16), _worst_seam(naive, 64, 0)
    assert blended < 1.3, (blended, control)
    assert control > 1.6, (blended, control)

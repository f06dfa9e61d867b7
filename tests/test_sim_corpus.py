"""The simulated corpus: determinism, layout, manifest, EXIF, refusal of foreign folders, pipeline sanity."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camforensics import __version__
from camforensics.errors import CamforensicsError, InputError, ParameterError
from camforensics.io.hashing import sha256_file
from camforensics.sim import (
    SimulationSpec,
    encode_jpeg,
    make_camera_models,
    make_devices,
    simulate_corpus,
    simulate_image,
)
from camforensics.sim.corpus import MANIFEST_COLUMNS

TINY = SimulationSpec(n_models=2, n_devices=3, n_flat=2, n_nat=1, width=64, height=48, seed=5)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    calls = []
    rows = simulate_corpus(root, TINY, progress=lambda done, total: calls.append((done, total)))
    return root, rows, calls


def test_same_spec_gives_identical_bytes(corpus, tmp_path):
    root, rows, _ = corpus
    again = simulate_corpus(tmp_path / "again", TINY, workers=1)
    assert again == rows
    first, second = _files(root), _files(tmp_path / "again")
    assert first.keys() == second.keys()
    for name in first:
        if name.endswith(".jpg") or name == "MANIFEST.csv":
            assert first[name] == second[name], name
    assert json.loads(first["simulation.json"]) == json.loads(second["simulation.json"])


def test_different_seed_gives_different_images(corpus, tmp_path):
    _, rows, _ = corpus
    other = simulate_corpus(tmp_path / "other", SimulationSpec(**{**TINY.to_dict(), "seed": 6}))
    assert [r["file"] for r in other] == [r["file"] for r in rows]
    assert not {r["sha256"] for r in other} & {r["sha256"] for r in rows}


def test_layout_and_manifest(corpus):
    root, rows, calls = corpus
    assert len(rows) == TINY.n_devices * (TINY.n_flat + TINY.n_nat)
    assert calls[-1] == (len(rows), len(rows)) and [c[0] for c in calls] == list(range(1, len(rows) + 1))
    with open(root / "MANIFEST.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == MANIFEST_COLUMNS
        manifest = list(reader)
    assert manifest == [{k: str(v) for k, v in r.items()} for r in rows]
    devices = {r["device"] for r in rows}
    assert devices == {"SimCam_ModelA_0", "SimCam_ModelB_0", "SimCam_ModelA_1"}
    for r in rows:
        path = root / r["file"]
        device, content, _ = Path(r["file"]).parts
        assert device == r["device"] and content == r["content"] in ("flat", "nat")
        assert r["device"] == f"{r['make']}_{r['model']}_{r['device'].rsplit('_', 1)[1]}"
        assert sha256_file(path) == r["sha256"]
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.size == (TINY.width, TINY.height)
            exif = im.getexif()
            assert exif[0x010F] == r["make"] and exif[0x0110] == r["model"]
    assert sum(r["content"] == "flat" for r in rows) == TINY.n_devices * TINY.n_flat


def test_simulation_json_records_spec_models_and_devices(corpus):
    root, _, _ = corpus
    sim = json.loads((root / "simulation.json").read_text())
    assert sim["version"] == __version__ and sim["complete"] is True and sim["n_images"] == 9
    assert sim["spec"] == TINY.to_dict()
    models = make_camera_models(TINY.n_models, TINY.seed)
    assert sim["models"] == [json.loads(json.dumps(m.to_dict())) for m in models]
    assert [d["sensor_seed"] for d in sim["devices"]] == [d.sensor_seed for d in make_devices(models, 3, TINY.seed)]


def test_previous_simulation_is_replaced_but_foreign_folder_refused(corpus, tmp_path):
    root = tmp_path / "sim"
    simulate_corpus(root, SimulationSpec(n_models=1, n_devices=2, n_flat=1, n_nat=1, width=32, height=32))
    rows = simulate_corpus(root, SimulationSpec(n_models=1, n_devices=1, n_flat=1, n_nat=0, width=32, height=32))
    assert sorted(_files(root)) == sorted([r["file"] for r in rows] + ["MANIFEST.csv", "simulation.json"])
    (root / "notes.txt").write_text("mine")
    with pytest.raises(CamforensicsError, match="notes.txt"):
        simulate_corpus(root, TINY)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "photo.jpg").write_bytes(b"x")
    with pytest.raises(CamforensicsError, match="not empty"):
        simulate_corpus(foreign, TINY)
    assert (foreign / "photo.jpg").read_bytes() == b"x"


@pytest.mark.parametrize(
    "kwargs", [dict(n_models=0), dict(n_devices=1), dict(width=33), dict(height=16), dict(n_flat=0, n_nat=0), dict(seed=-1)]
)
def test_bad_specs_are_refused(kwargs):
    with pytest.raises(ParameterError):
        SimulationSpec(**{**TINY.to_dict(), **kwargs})


def test_simulate_image_is_deterministic_and_leaves_scene_alone():
    device = make_devices(make_camera_models(1, 0), 1, 0)[0]
    scene = np.full((32, 48, 3), 0.5, np.float32)
    before = scene.copy()
    a = simulate_image(device, scene, np.random.default_rng(1))
    b = simulate_image(device, scene, np.random.default_rng(1))
    c = simulate_image(device, scene, np.random.default_rng(2))
    assert a.dtype == np.uint8 and a.shape == (32, 48, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(scene, before)
    with pytest.raises(ParameterError, match="even"):
        simulate_image(device, np.zeros((31, 48, 3), np.float32), np.random.default_rng(0))


def test_grey_scene_stays_roughly_grey_and_brightness_follows_exposure():
    for device in make_devices(make_camera_models(4, 2), 4, 2):
        scene = np.full((64, 64, 3), 0.5, np.float32)
        dark = simulate_image(device, scene, np.random.default_rng(0), exposure=0.1).astype(float)
        bright = simulate_image(device, scene, np.random.default_rng(0), exposure=0.5).astype(float)
        centre = bright[16:48, 16:48].reshape(-1, 3).mean(axis=0)
        assert dark.mean() + 40 < bright.mean()
        assert np.ptp(centre) < 0.12 * centre.mean(), (device.name, centre)  # white balance within ~10%


def test_devices_of_one_model_differ_only_by_sensor_noise():
    models = make_camera_models(1, 4)
    a, b = make_devices(models, 2, 4)
    scene = np.full((64, 64, 3), 0.6, np.float32)
    ia = simulate_image(a, scene, np.random.default_rng(3)).astype(float)
    ib = simulate_image(b, scene, np.random.default_rng(3)).astype(float)
    assert abs(ia.mean() - ib.mean()) < 1.5  # same pipeline: same rendering of the same scene
    assert np.abs(ia - ib).max() > 0  # but not the same sensor


def test_encode_jpeg_sets_exif_and_refuses_bad_options():
    rgb = np.zeros((16, 16, 3), np.uint8)
    data = encode_jpeg(rgb, quality=90, subsampling="4:2:2", make="SimCam", model="Model-X")
    with Image.open(io.BytesIO(data)) as im:
        assert im.getexif()[0x010F] == "SimCam" and im.getexif()[0x0110] == "Model-X"
    with pytest.raises(ParameterError, match="subsampling"):
        encode_jpeg(rgb, quality=90, subsampling="4:1:1", make="a", model="b")
    with pytest.raises(ParameterError, match="quality"):
        encode_jpeg(rgb, quality=0, subsampling="4:2:0", make="a", model="b")


def test_scene_photos_are_used_and_small_ones_refused(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(photos / "a.png")
    spec = SimulationSpec(n_models=1, n_devices=1, n_flat=0, n_nat=2, width=64, height=48, scene_dir=photos)
    rows = simulate_corpus(tmp_path / "out", spec)
    assert len(rows) == 2
    small = SimulationSpec(n_models=1, n_devices=1, n_flat=0, n_nat=1, width=128, height=96, scene_dir=photos)
    with pytest.raises(InputError, match="at least 2x"):
        simulate_corpus(tmp_path / "out2", small)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image"):
        simulate_corpus(tmp_path / "out3", SimulationSpec(**{**spec.to_dict(), "scene_dir": tmp_path / "empty"}))


def test_renders_have_no_camera_pipeline(tmp_path):
    """--no-camera: the natural scenes of the camera corpus, display-encoded and written losslessly, one source."""
    from camforensics.sim.corpus import image_rng
    from camforensics.sim.scenes import display_render, render_natural_scene

    spec = SimulationSpec(n_models=1, n_devices=1, n_flat=0, n_nat=2, width=64, height=48, seed=5, camera=False)
    rows = simulate_corpus(tmp_path / "r", spec)
    assert [r["file"] for r in rows] == [f"Synthetic_Render_0/nat/Synthetic_Render_0_nat_{i:03d}.png" for i in range(2)]
    assert {(r["device"], r["make"], r["model"], r["content"]) for r in rows} == {("Synthetic_Render_0", "Synthetic", "Render", "nat")}
    for i, row in enumerate(rows):
        path = tmp_path / "r" / row["file"]
        assert sha256_file(path) == row["sha256"]
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == (64, 48) and not im.info.get("exif")
            pixels = np.asarray(im.convert("RGB"))
        expected = display_render(render_natural_scene(image_rng(5, 0, "nat", i), 48, 64))  # the scene, nothing else
        assert np.array_equal(pixels, expected)
    header = json.loads((tmp_path / "r" / "simulation.json").read_text())
    assert header["complete"] and header["spec"]["camera"] is False and header["models"] == []
    assert simulate_corpus(tmp_path / "again", spec, workers=1) == rows  # deterministic
    rerun = simulate_corpus(tmp_path / "r", spec)  # a previous render folder is replaced like a simulation
    assert rerun == rows


def test_display_render_inverts_the_scene_linearisation():
    from camforensics.sim.scenes import display_render

    scene = np.array([[[0.0, 0.5, 1.0], [2.0, -1.0, 0.218]]], np.float32)  # clipped to 0..1, then 255 x^(1/2.2)
    out = display_render(scene)
    assert out.dtype == np.uint8 and out.tolist() == [[[0, 186, 255], [255, 0, 128]]]


@pytest.mark.parametrize("kw", [{"n_flat": 1}, {"n_models": 2, "n_devices": 2}, {"n_devices": 2}])
def test_renders_refuse_camera_parameters(kw):
    base = {"n_models": 1, "n_devices": 1, "n_flat": 0, "n_nat": 1, "width": 64, "height": 64, "camera": False}
    with pytest.raises(ParameterError, match="no sensor"):
        SimulationSpec(**{**base, **kw})

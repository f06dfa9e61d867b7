"""Camera profiles (CFA and demosaicing filters, JPEG tables, residual statistics), the profile command, and the
trace transplant of anonymize (--method transplant / retable, --target NAME)."""

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import synth
from PIL import Image
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.core.camera_profile import LAYOUTS, DemosaicAccumulator, demosaic, remosaic
from camforensics.errors import ParameterError
from camforensics.io.jpeg_tables import read_jpeg_tables
from camforensics.pipelines.profile import known_profiles, resolve_profile

runner = CliRunner()
IXUS = "Canon IXUS 125 HS"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def bilinear_camera(scene: np.ndarray, layout: str) -> np.ndarray:
    """A camera with a known pipeline: CFA ``layout``, bilinear demosaicing (OpenCV's), no JPEG."""
    import cv2

    m = remosaic(scene.astype(np.float32), layout)
    codes = {"RGGB": cv2.COLOR_BayerBG2RGB, "GRBG": cv2.COLOR_BayerGB2RGB, "GBRG": cv2.COLOR_BayerGR2RGB,
             "BGGR": cv2.COLOR_BayerRG2RGB}  # OpenCV names the pattern from the second row  # fmt: skip
    return cv2.cvtColor(np.clip(np.rint(m), 0, 255).astype(np.uint8), codes[layout])


@pytest.mark.parametrize("layout", ["GRBG", "BGGR"])
def test_demosaic_fit_finds_the_layout_and_reproduces_the_camera(layout):
    rng = np.random.default_rng(3)
    acc = DemosaicAccumulator()
    for seed in range(3):
        scene = np.clip(synth.scene((192, 192), seed) + rng.normal(0, 6, (192, 192, 3)), 0, 255)
        acc.add(bilinear_camera(scene, layout).astype(np.float32), stride=1)
    best, filters, errors = acc.solve()
    assert best == layout
    assert errors[layout] < 0.5 * min(e for k, e in errors.items() if k != layout)
    # The fitted filters rebuild a new photo of that camera from its own mosaic almost exactly.
    photo = bilinear_camera(np.clip(synth.scene((128, 128), 9), 0, 255), layout).astype(np.float32)
    rebuilt = demosaic(remosaic(photo, layout), filters)
    inner = (slice(4, -4), slice(4, -4))
    assert np.abs(rebuilt[inner] - photo[inner]).mean() < 1.0
    assert set(LAYOUTS) == set(errors)


def test_jpeg_tables_round_trip(tmp_path):
    tables = [[(i % 7) + 2 for i in range(64)], [(i % 5) + 3 for i in range(64)]]
    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(buf, "JPEG", qtables=tables, subsampling=1)
    t = read_jpeg_tables(buf.getvalue())
    assert t is not None and t.subsampling == "4:2:2" and [list(q) for q in t.qtables] == tables
    png = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png, "PNG")
    assert read_jpeg_tables(png.getvalue()) is None


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Nine JPEGs of one synthetic camera (EXIF Make/Model set), 256 x 256."""
    root = tmp_path_factory.mktemp("cam")
    for i in range(9):
        shot = bilinear_camera(np.clip(synth.scene((256, 256), 20 + i), 0, 255), "GBRG")
        synth.write_jpeg(root / f"p{i}.jpg", shot, quality=90, exif={0x010F: "Synth", 0x0110: "Cam One"})
    return root


def test_profile_command_writes_a_hashed_profile(photos, tmp_path):
    out = tmp_path / "cam.npz"
    rep = tmp_path / "rep.json"
    res = invoke("profile", photos, "-o", out, "-r", rep, "-q")
    assert res.exit_code == 0, res.output
    doc = json.loads(rep.read_text())
    p = doc["summary"]["profile"]
    assert p["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert p["name"] == "Synth Cam One" and p["n_photos"] == 9 and p["layout"] == "GBRG"
    assert len(doc["results"]) == 9 and all(r["status"] == "ok" for r in doc["results"])
    prof = resolve_profile(str(out))
    assert len(prof.meta["photos"]) == 9 and all(len(ph["sha256"]) == 64 for ph in prof.meta["photos"])
    assert prof.jpeg is not None and prof.jpeg.subsampling == read_jpeg_tables((photos / "p0.jpg").read_bytes()).subsampling


def test_profile_refusals(photos, tmp_path):
    few = tmp_path / "few"
    few.mkdir()
    for f in sorted(photos.iterdir())[:3]:
        (few / f.name).write_bytes(f.read_bytes())
    res = invoke("profile", few, "-o", tmp_path / "x.npz", "-q", "-r", tmp_path / "r.json")
    assert res.exit_code == 2 and "at least 8" in res.output and not (tmp_path / "x.npz").exists()
    first = photos / "p0.jpg"
    res = invoke("profile", first, "-o", first, "-q", "-r", tmp_path / "r2.json")
    assert res.exit_code == 2 and "one of the inputs" in res.output
    res = invoke("profile", few, "-o", tmp_path / "x.txt", "-q")
    assert res.exit_code == 2 and ".npz" in res.output


def test_unknown_target_lists_the_shipped_profiles():
    known = known_profiles()
    assert len(known) == 17 and IXUS in known  # models/build_profiles.sh: the 17 models of real-dev + real-models
    with pytest.raises(ParameterError) as e:
        resolve_profile("Canon Ixus70")
    assert IXUS in str(e.value) and "Nikon D90" in str(e.value)
    assert resolve_profile("canon  ixus 125 hs").name == IXUS  # case and spaces do not matter


def test_transplant_writes_the_target_tables_and_leaves_inputs(photos, tmp_path):
    src = photos / "p1.jpg"
    before = src.read_bytes()
    out = tmp_path / "out"
    rep = tmp_path / "a.json"
    res = invoke("anonymize", src, "-o", out, "--target", IXUS, "--judges", "none", "-r", rep, "-q")
    assert res.exit_code == 0, res.output
    assert src.read_bytes() == before
    doc = json.loads(rep.read_text())
    r = doc["results"][0]
    assert r["method"]["name"] == "transplant"  # implied by --target without --model
    target = resolve_profile(IXUS)
    assert r["method"]["parameters"]["profile_sha256"] == target.sha256 == doc["run"]["profile"]["sha256"]
    data = Path(r["output"]["path"]).read_bytes()
    assert r["output"]["path"].endswith(".transplant-Canon_IXUS_125_HS.jpg")
    assert read_jpeg_tables(data).key() == target.jpeg.key()  # the target's tables and subsampling
    assert not Image.open(io.BytesIO(data)).getexif()  # no metadata
    assert r["quality"]["psnr"] > 30 and r["quality"]["ssim"] > 0.9
    # EXIF rewritten to the target on request; retable keeps the pixels and only re-saves with the tables.
    res = invoke("anonymize", src, "-o", tmp_path / "o2", "--target", IXUS, "--exif", "target", "--judges", "none", "-q",
                 "-r", tmp_path / "b.json")  # fmt: skip
    out2 = json.loads((tmp_path / "b.json").read_text())["results"][0]["output"]["path"]
    with Image.open(out2) as im:
        exif = im.getexif()
    assert exif[0x010F] == "Canon" and exif[0x0110] == "IXUS 125 HS"
    res = invoke("anonymize", src, "-o", tmp_path / "o3", "-m", "retable", "--target", IXUS, "--judges", "none", "-q",
                 "-r", tmp_path / "c.json")  # fmt: skip
    r3 = json.loads((tmp_path / "c.json").read_text())["results"][0]
    assert r3["quality"]["psnr"] > r["quality"]["psnr"]  # only the JPEG loss
    # A wrong target: one line naming the known targets, nothing written.
    res = invoke("anonymize", src, "-o", tmp_path / "o4", "--target", "Canon Ixus70", "--judges", "none", "-q")
    assert res.exit_code == 2 and IXUS in res.output and not (tmp_path / "o4").exists()


def test_transplant_refuses_a_grey_image(tmp_path):
    grey = tmp_path / "g.png"
    Image.fromarray(np.full((128, 128), 100, np.uint8)).save(grey)
    res = invoke("anonymize", grey, "-o", tmp_path / "o", "--target", IXUS, "--judges", "none", "-q",
                 "-r", tmp_path / "g.json")  # fmt: skip
    assert res.exit_code == 1
    r = json.loads((tmp_path / "g.json").read_text())["results"][0]
    assert r["status"] == "error" and "grey" in r["error"]["message"]


def test_refinement_stays_in_its_budget_and_window():
    pytest.importorskip("torch")
    from camforensics.pipelines.anonymize.refine import read_surrogates, refine_options

    assert read_surrogates(), "no shipped surrogate (models/surrogates)"
    opts = refine_options("surrogates", epsilon=3, iterations=2, window=128)
    x = np.clip(synth.scene((256, 320), 4), 0, 255).astype(np.uint8)
    out, rec = opts.attack(x, opts.load(), IXUS)
    top, left, h, w = rec["window"]
    d = np.abs(out.astype(int) - x.astype(int))
    assert d.max() <= 3 and d[top : top + h, left : left + w].any()
    d[top : top + h, left : left + w] = 0
    assert not d.any()  # nothing changes outside the window
    assert all(s["name"] for s in rec["surrogates"])


def test_evaluation_refuses_a_judge_trained_like_a_surrogate():
    from types import SimpleNamespace

    from camforensics.pipelines.anonymize.evaluate import LearnedOptions, TransferRun
    from camforensics.pipelines.anonymize.refine import read_surrogates

    s = read_surrogates()[0]
    pre, arch, width, seed = s.recipe
    twin = SimpleNamespace(entry=SimpleNamespace(name="twin", meta={"training": {"config": {
        "preprocessor": pre, "architecture": arch, "width": width, "seed": seed}}}))  # fmt: skip
    with pytest.raises(ParameterError, match="independent of the surrogates"):
        TransferRun(LearnedOptions(), ["transplant"], [twin])
    other = SimpleNamespace(entry=SimpleNamespace(name="other", meta={"training": {"config": {
        "preprocessor": pre, "architecture": arch, "width": width, "seed": seed + 1}}}))  # fmt: skip
    TransferRun(LearnedOptions(), ["transplant"], [other])

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from camforensics import __version__
from camforensics.cli.app import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def library(device_tree, tmp_path_factory):
    lib = tmp_path_factory.mktemp("lib") / "lib"
    rep = tmp_path_factory.mktemp("rep")
    for name in ("cam_a", "cam_b", "cam_c"):
        res = invoke("enroll", device_tree / name / "flat", "--name", name, "--library", lib, "-r", rep / f"{name}.json")
        assert res.exit_code == 0, res.output
    return lib


def test_version_and_help():
    res = invoke("--version")
    assert res.exit_code == 0 and __version__ in res.output
    res = invoke("--help")
    assert res.exit_code == 0
    for cmd in ("enroll", "identify", "verify", "extract", "library"):
        assert cmd in res.output


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\n"
        "from camforensics.cli.app import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'cv2', 'scipy', 'pywt') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_enroll_writes_entry_with_provenance(library, device_tree):
    entry = json.loads((library / "devices" / "cam_a" / "entry.json").read_text())
    assert entry["n_images"] == 6 and entry["shape"] == [256, 256]
    assert len(entry["inputs"]) == 6 and all(len(i["sha256"]) == 64 for i in entry["inputs"])
    assert entry["parameters"]["residual"]["sigma0"] == 3.0 and entry["exif_model"] == "cam_a"
    # The split-half reliability of the estimate: alternate images in two halves of 3, a strong synthetic PRNU.
    rel = entry["reliability"]
    assert rel["halves"] == [3, 3] and 0 < rel["split_half_correlation"] < rel["reliability"] < 1
    assert rel["reliability"] == pytest.approx(2 * rel["split_half_correlation"] / (1 + rel["split_half_correlation"]))
    res = invoke("library", "list", library, "--json")
    devices = json.loads(res.output)["devices"]
    assert [d["name"] for d in devices] == ["cam_a", "cam_b", "cam_c"]
    assert devices[0]["reliability"] == rel["reliability"]
    assert f"{rel['reliability']:.3f}" in invoke("library", "list", library).output
    # Enrolling the same name again is refused in one line, exit code 2.
    res = invoke("enroll", device_tree / "cam_a" / "flat", "--name", "cam_a", "--library", library)
    assert res.exit_code == 2 and "already enrolled" in res.output


def test_identify_finds_each_device_and_reports_everything(library, device_tree, tmp_path):
    report = tmp_path / "id.json"
    res = invoke("identify", device_tree / "cam_a" / "nat", device_tree / "cam_b" / "nat", device_tree / "cam_c" / "nat",
                 "--library", library, "-r", report)
    assert res.exit_code == 0, res.output
    doc = json.loads(report.read_text())
    assert doc["summary"]["n_inputs"] == 9 and doc["summary"]["n_matched"] == 9
    for r in doc["results"]:
        true = Path(r["input"]["path"]).parts[-3]
        assert r["decision"]["device"] == true and r["decision"]["pce"] > 60
        assert r["decision"]["rotation"] == 0 and r["decision"]["threshold"] == 60
        others = [c["pce"] for c in r["candidates"] if c["device"] != true]
        assert max(others) < 60
        assert len(r["input"]["sha256"]) == 64 and r["input"]["width"] == 256
    run = doc["run"]
    assert run["parameters"]["residual"]["sigma0"] == 2.0
    assert {e["name"] for e in run["library"]["entries_used"]} == {"cam_a", "cam_b", "cam_c"}
    assert run["decision_rule"]["threshold_pce"] == 60


def test_identify_bad_files_are_reported_and_the_batch_goes_on(library, device_tree, tmp_path):
    q = tmp_path / "queries"
    q.mkdir()
    (q / "good.jpg").write_bytes((device_tree / "cam_c" / "nat" / "nat 0.jpg").read_bytes())
    (q / "empty.jpg").write_bytes(b"")
    (q / "text.png").write_text("hello")
    data = (device_tree / "cam_c" / "nat" / "nat 1.jpg").read_bytes()
    (q / "trunc.jpg").write_bytes(data[: len(data) // 2])
    from PIL import Image

    Image.new("RGB", (300, 200)).save(q / "other size.png")
    report = tmp_path / "id.jsonl"
    res = invoke("identify", q, "--library", library, "--no-model", "-r", report, "--format", "jsonl")
    assert res.exit_code == 1
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    results = {Path(x["input"]["path"]).name: x for x in lines if x["record"] == "result"}
    assert results["good.jpg"]["decision"]["device"] == "cam_c"
    assert "empty" in results["empty.jpg"]["error"]["message"]
    assert "not an image" in results["text.png"]["error"]["message"]
    assert "truncated" in results["trunc.jpg"]["error"]["message"]
    assert "matches no fingerprint size" in results["other size.png"]["error"]["message"]
    assert lines[-1]["record"] == "summary" and lines[-1]["n_failed"] == 4


def test_identify_rotated_query(library, device_tree, tmp_path):
    from PIL import Image

    img = Image.open(device_tree / "cam_b" / "nat" / "nat 2.jpg")
    img.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "rot.png")
    report = tmp_path / "r.json"
    assert invoke("identify", tmp_path / "rot.png", "--library", library, "-r", report, "-q").exit_code == 0
    d = json.loads(report.read_text())["results"][0]["decision"]
    assert d["device"] == "cam_b" and d["rotation"] == 270


def test_identify_missing_library_is_one_line_exit_2(tmp_path, device_tree):
    res = invoke("identify", device_tree / "cam_a" / "nat", "--library", tmp_path / "none")
    assert res.exit_code == 2 and "not a camforensics library" in res.output
    res = invoke("identify", device_tree, "--library", tmp_path / "none", "--format", "xml")
    assert res.exit_code == 2 and "choose one of" in res.output


def test_identify_csv_to_stdout(library, device_tree):
    res = invoke("identify", device_tree / "cam_a" / "nat" / "nat 0.jpg", "--library", library, "-r", "-", "--format", "csv")
    assert res.exit_code == 0
    header, row = res.stdout.splitlines()[:2]
    assert "decision.device" in header and "cam_a" in row


def test_verify_same_and_different(device_tree, tmp_path):
    same = tmp_path / "same.json"
    res = invoke("verify", device_tree / "cam_a" / "flat", device_tree / "cam_a" / "nat", "-r", same)
    assert res.exit_code == 0 and "PRNU: same camera" in res.output
    d = json.loads(same.read_text())["summary"]["decision"]
    assert d["same_device"] and d["pce"] > 60 and d["n_images_a"] == 6 and d["n_images_b"] == 3
    diff = tmp_path / "diff.json"
    res = invoke("verify", device_tree / "cam_a" / "flat", device_tree / "cam_b" / "nat", "-r", diff)
    assert res.exit_code == 0 and "PRNU: different cameras, or too little evidence" in res.output
    doc = json.loads(diff.read_text())
    assert not doc["summary"]["decision"]["same_device"] and doc["summary"]["decision"]["pce"] < 60
    per = [r["vs_other_set"]["pce"] for r in doc["results"] if r["set"] == "B"]
    assert len(per) == 3 and max(per) < 60


def test_extract_writes_arrays_and_pictures(device_tree, tmp_path):
    src = device_tree / "cam_a" / "nat" / "nat 0.jpg"
    res = invoke("extract", src, "-o", tmp_path / "out", "-r", tmp_path / "x.json")
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "x.json").read_text())["results"][0]
    w = np.load(rec["outputs"]["residual_npy"])
    assert w.shape == (256, 256) and w.dtype == np.float32
    import cv2

    for key in ("residual_png", "spectrum_png"):
        pic = cv2.imread(rec["outputs"][key], cv2.IMREAD_UNCHANGED)
        assert pic.ndim == 3 and pic.shape[0] > 256 and pic.dtype == np.uint8 and pic.std() > 5  # a figure: axes, colour bar


def test_library_check_flags_corruption(device_tree, tmp_path):
    lib = tmp_path / "lib"
    assert invoke("enroll", device_tree / "cam_c" / "flat", "-n", "c", "-l", lib, "-q", "-r", tmp_path / "e.json").exit_code == 0
    assert invoke("library", "check", lib).exit_code == 0
    fp = lib / "devices" / "c" / "fingerprint.npy"
    fp.write_bytes(fp.read_bytes()[:-4] + b"\0\0\0\0")
    res = invoke("library", "check", lib)
    assert res.exit_code == 1 and "corrupt" in res.output
    res = invoke("identify", device_tree / "cam_c" / "nat" / "nat 0.jpg", "-l", lib, "-r", tmp_path / "i.json")
    assert res.exit_code == 1  # the corrupted entry is refused; the reason is in the report
    err = json.loads((tmp_path / "i.json").read_text())["results"][0]["error"]
    assert err["type"] == "LibraryError" and "corrupted" in err["message"]


def test_every_command_has_help_and_a_docs_entry():
    import typer.main

    docs = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    group = typer.main.get_command(app)
    names = []
    for name, cmd in group.commands.items():
        subs = getattr(cmd, "commands", None)
        names += [f"{name} {s}" for s in subs] if subs else [name]
    for name in names:
        assert invoke(*name.split(), "--help").exit_code == 0
        assert f"camforensics {name}" in docs, f"docs/cli.md has no entry for 'camforensics {name}'"


def test_demo_runs_and_every_decision_is_right(tmp_path):
    res = invoke("demo", "-o", tmp_path / "demo")
    assert res.exit_code == 0, res.output
    assert "14/14 decisions match the simulated truth" in res.output
    reports = sorted(p.name for p in (tmp_path / "demo" / "reports").iterdir())
    assert "identify.json" in reports and sum(r.startswith("verify_") for r in reports) == 2
    doc = json.loads((tmp_path / "demo" / "reports" / "identify.json").read_text())
    assert doc["summary"]["n_inputs"] == 12 and doc["summary"]["n_matched"] == 12
    # A second run reuses its own folder; a foreign non-empty folder is refused.
    assert invoke("demo", "-o", tmp_path / "demo", "-q").exit_code == 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    res = invoke("demo", "-o", tmp_path / "other")
    assert res.exit_code == 2 and "not empty" in res.output


def test_anonymize_removal_is_debiased_by_the_enrolled_reliability(library, device_tree, tmp_path):
    entry = json.loads((library / "devices" / "cam_b" / "entry.json").read_text())
    report = tmp_path / "anon.json"
    src = min((device_tree / "cam_b" / "nat").glob("*.jpg"))
    res = invoke("anonymize", src, "-o", tmp_path / "out", "--method", "remove-fingerprint",
                 "--remove-fingerprint", f"{library}:cam_b", "-r", report, "-j", 1)
    assert res.exit_code == 0, res.output
    (r,) = json.loads(report.read_text())["results"]
    fitted = r["method"]["fitted"]["removal"]
    assert fitted["debias"] == pytest.approx(1 / entry["reliability"]["reliability"])
    assert not any("reliability" in n for n in r["output"]["notes"])
    assert r["removed_device"]["pce_after"] < 60 and r["quality"]["psnr"] >= 38
    res = invoke("anonymize", src, "-o", tmp_path / "out2", "--method", "remove-fingerprint", "--no-debias",
                 "--remove-fingerprint", f"{library}:cam_b", "-r", tmp_path / "anon2.json", "-j", 1)
    assert res.exit_code == 0, res.output
    (r,) = json.loads((tmp_path / "anon2.json").read_text())["results"]
    assert r["method"]["fitted"]["removal"]["debias"] == 1.0 and r["method"]["parameters"]["debias"] is False


def test_options_from_builds_a_config_from_the_flags_by_field_name():
    from dataclasses import dataclass

    from camforensics.cli.options import options_from

    @dataclass(frozen=True)
    class Config:
        width: int = 16
        seed: int = 0
        split_fractions: tuple[float, ...] = (0.7, 0.3)

    flags = {"width": 8, "quiet": True, "output": "run", "split_fractions": "0.5,0.5"}
    assert options_from(Config, flags) == Config(width=8, split_fractions="0.5,0.5")  # unknown flags are left out
    assert options_from(Config, flags, split_fractions=(0.5, 0.5)) == Config(width=8, split_fractions=(0.5, 0.5))

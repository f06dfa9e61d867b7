"""camforensics simulate on the command line."""

from __future__ import annotations

import csv
import json

from typer.testing import CliRunner

from camforensics.cli.app import app

runner = CliRunner()


def test_simulate_writes_corpus_and_report(tmp_path):
    out, report = tmp_path / "corpus", tmp_path / "report.json"
    args = ["simulate", str(out), "--devices", "3", "--models", "2", "--images", "1", "--flat", "1"]
    result = runner.invoke(app, [*args, "--size", "64x48", "--seed", "3", "-r", str(report), "-q"])
    assert result.exit_code == 0, result.output
    with open(out / "MANIFEST.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["device"] for r in rows} == {"SimCam_ModelA_0", "SimCam_ModelB_0", "SimCam_ModelA_1"}
    assert all((out / r["file"]).is_file() and r["width"] == "64" and r["height"] == "48" for r in rows)
    doc = json.loads(report.read_text())
    assert doc["run"]["command"] == "simulate" and doc["run"]["parameters"]["spec"]["seed"] == 3
    assert doc["summary"]["n_ok"] == 6 and doc["summary"]["n_failed"] == 0
    assert {r["output"]["sha256"] for r in doc["results"]} == {r["sha256"] for r in rows}


def test_simulate_refuses_foreign_folder_with_one_line(tmp_path):
    (tmp_path / "mine.txt").write_text("x")
    result = runner.invoke(app, ["simulate", str(tmp_path), "--size", "64x64", "-q", "-r", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    assert "not empty" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_simulate_rejects_bad_size(tmp_path):
    result = runner.invoke(app, ["simulate", str(tmp_path / "o"), "--size", "big", "-q"])
    assert result.exit_code == 2 and "WIDTHxHEIGHT" in result.output


def test_simulate_no_camera_writes_renders(tmp_path):
    out, report = tmp_path / "renders", tmp_path / "report.json"
    result = runner.invoke(app, ["simulate", str(out), "--no-camera", "--images", "2", "--size", "64x48", "-r", str(report)])
    assert result.exit_code == 0, result.output
    assert "no camera (synthetic renders)" in result.output
    with open(out / "MANIFEST.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["Render", "Render"] and all(r["file"].endswith(".png") for r in rows)
    doc = json.loads(report.read_text())
    assert doc["run"]["parameters"]["spec"]["camera"] is False and doc["summary"]["n_ok"] == 2


def test_simulate_no_camera_refuses_camera_options(tmp_path):
    result = runner.invoke(app, ["simulate", str(tmp_path / "o"), "--no-camera", "--flat", "2", "-q"])
    assert result.exit_code == 2 and "do not apply" in result.output and not (tmp_path / "o").exists()

"""camforensics report: one self-contained, escaped HTML case file, rendered in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from camforensics.cli.app import app

runner = CliRunner()
HOSTILE = "<b onmouseover=alert(1)>Ü&x.jpg"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def identify_report(device_tree, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("case")
    lib = tmp / "lib"
    for name in ("cam_a", "cam_b"):
        res = invoke("enroll", device_tree / name / "flat", "--name", name, "--library", lib, "-r", tmp / f"{name}.json")
        assert res.exit_code == 0, res.output
    queries = tmp / "q"
    queries.mkdir()
    shutil.copy(device_tree / "cam_a" / "nat" / "nat 0.jpg", queries / HOSTILE)
    shutil.copy(device_tree / "cam_c" / "nat" / "nat 0.jpg", queries / "stranger.jpg")
    report = tmp / "identify.json"
    res = invoke("identify", queries, "--library", lib, "--no-model", "-r", report, "-j", "1")
    assert res.exit_code == 0, res.output
    return report


def test_html_is_self_contained_and_escaped(identify_report, tmp_path):
    out = tmp_path / "case.html"
    res = invoke("report", identify_report, "-o", out)
    assert res.exit_code == 0, res.output
    page = out.read_text(encoding="utf-8")
    assert HOSTILE not in page and "&lt;b onmouseover=alert(1)&gt;Ü&amp;x.jpg" in page
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)=['"](?!data:)""", page)  # nothing fetched: every picture a data URI
    assert page.count("data:image/png;base64,") == 2  # one chart per photo
    doc = json.loads(identify_report.read_text())
    for r in doc["results"]:
        assert r["input"]["sha256"] in page
    assert "1 of 2 matched, 1 no match, 0 failed" in page
    assert "same camera: cam_a" in page and "no match" in page
    assert "Lukas" in page and "peak-to-correlation energy" in page  # the method, with references
    assert doc["run"]["tool_version"] in page


def test_report_refuses_to_overwrite_its_input(identify_report):
    res = invoke("report", identify_report, "-o", identify_report)
    assert res.exit_code == 2
    assert json.loads(identify_report.read_text())["run"]["command"] == "identify"


def test_report_of_a_file_that_is_not_a_report(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    res = invoke("report", bad, "-o", tmp_path / "case.html")
    assert res.exit_code == 2 and "not a camforensics report" in res.output
    assert not (tmp_path / "case.html").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless chromium (Debian: apt-get install chromium)")
def test_html_renders_in_headless_chromium(identify_report, tmp_path):
    from PIL import Image

    out = tmp_path / "case.html"
    assert invoke("report", identify_report, "-o", out).exit_code == 0
    shot = tmp_path / "shot.png"
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*flags, "--window-size=1000,1400", f"--screenshot={shot}", out.as_uri()], capture_output=True, timeout=120, check=False)
    with Image.open(shot) as img:
        assert img.size == (1000, 1400)
        a = np.asarray(img.convert("L"), dtype=np.float32)
    assert a.std() > 10  # text and a chart, not a blank page
    assert (a < 100).mean() > 0.005  # dark pixels: text was drawn
    dom = subprocess.run([*flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120, check=False).stdout
    assert "case report" in dom and "1 of 2 matched" in dom
    assert "&lt;b onmouseover=alert(1)&gt;Ü&amp;x.jpg" in dom  # the name shown as text, not parsed as a tag
    assert "<b onmouseover" not in dom


def test_anonymize_report_shows_the_change_and_its_spectrum(device_tree, tmp_path):
    src = device_tree / "cam_a" / "nat" / "nat 0.jpg"
    report = tmp_path / "an.json"
    res = invoke("anonymize", src, "-o", tmp_path / "out", "--method", "median", "-r", report, "--judges", "none")
    assert res.exit_code == 0, res.output
    out = tmp_path / "case.html"
    assert invoke("report", report, "-o", out).exit_code == 0
    page = out.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 1  # the delta figure, drawn from the input and the output
    assert "PSNR" in page and json.loads(report.read_text())["results"][0]["output"]["sha256"] in page
    Path(json.loads(report.read_text())["results"][0]["output"]["path"]).write_bytes(src.read_bytes())
    assert invoke("report", report, "-o", out).exit_code == 0
    assert out.read_text(encoding="utf-8").count("data:image/png;base64,") == 0  # not the file the report names

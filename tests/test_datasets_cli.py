"""``camforensics datasets inspect`` and ``split`` through typer's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.io.splits import SPLIT_NAMES, Split

runner = CliRunner(env={"COLUMNS": "200"})


def test_help_lists_datasets_commands() -> None:
    result = runner.invoke(app, ["datasets", "--help"])
    assert result.exit_code == 0
    assert "inspect" in result.output and "split" in result.output


def test_inspect_table(vision_tree: Path) -> None:
    result = runner.invoke(app, ["datasets", "inspect", str(vision_tree)])
    assert result.exit_code == 0, result.output
    assert "layout: vision" in result.output
    assert "D26_Samsung_GalaxyS3Mini" in result.output and "natFBH" in result.output
    assert "2 models" in result.output and "3 devices" in result.output
    assert "skipped files: 4" in result.output


def test_inspect_json(generic_tree: Path) -> None:
    result = runner.invoke(app, ["datasets", "inspect", str(generic_tree), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["layout"], summary["n_images"], summary["n_devices"], summary["n_models"]) == ("generic", 9, 6, 5)
    assert summary["by_content"] == {"flat": 4, "nat": 5}
    vivo = next(m for m in summary["models"] if m["model"] == "vivo iQOO U1x")
    assert vivo["devices"] == ["vivo_iQOO-U1x_0", "vivo_iQOO-U1x_1"] and vivo["images"] == 3
    assert summary["n_skipped"] == 2


def test_inspect_forced_layout_and_errors(dresden_tree: Path, tmp_path: Path) -> None:
    ok = runner.invoke(app, ["datasets", "inspect", str(dresden_tree), "--layout", "dresden", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["n_devices"] == 9
    missing = runner.invoke(app, ["datasets", "inspect", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert "Traceback" not in missing.output
    bad = runner.invoke(app, ["datasets", "inspect", str(dresden_tree), "--layout", "coco"])
    assert bad.exit_code == 2 and "choose one of" in bad.output
    empty = tmp_path / "empty"
    empty.mkdir()
    unknown = runner.invoke(app, ["datasets", "inspect", str(empty)])
    assert unknown.exit_code == 2 and "layouts understood" in unknown.output


def test_split_writes_a_loadable_file(vision_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "split.json"
    result = runner.invoke(
        app,
        [
            "datasets",
            "split",
            str(vision_tree),
            "-o",
            str(out),
            "--seed",
            "3",
            "--hashes",
            "--no-stratify",
            "--fractions",
            "0.34,0.33,0.33",
        ],
    )
    assert result.exit_code == 0, result.output
    split = Split.load(out, verify_hashes=True)
    assert split.seed == 3 and split.layout == "vision"
    assert [len(split.devices(n)) for n in SPLIT_NAMES] == [1, 1, 1]
    assert "split written" in result.output


def test_split_bad_fractions(vision_tree: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["datasets", "split", str(vision_tree), "-o", str(tmp_path / "s.json"), "--fractions", "a,b"]
    )
    assert result.exit_code == 2 and "--fractions" in result.output
    result = runner.invoke(
        app, ["datasets", "split", str(vision_tree), "-o", str(tmp_path / "s.json"), "--fractions", "0.5,0.1"]
    )
    assert result.exit_code == 2 and "fractions" in result.output
    assert not (tmp_path / "s.json").exists()


def test_help_does_not_import_numpy() -> None:
    code = "import sys; from camforensics.cli.app import app; sys.exit('numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_inspect_writes_a_report(kaggle_tree: Path, tmp_path: Path) -> None:
    path = tmp_path / "inspect.json"
    result = runner.invoke(app, ["datasets", "inspect", str(kaggle_tree), "--report", str(path), "--hashes", "-q"])
    assert result.exit_code == 0, result.output
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["run"]["command"] == "datasets inspect" and doc["run"]["dataset"]["layout"] == "kaggle"
    assert len(doc["results"]) == 18 and all(len(r["input"]["sha256"]) == 64 for r in doc["results"])
    assert doc["summary"]["n_devices"] == 6 and doc["summary"]["n_skipped"] == 2 and doc["summary"]["n_failed"] == 0
    assert "models" not in result.stdout  # quiet: no table


def test_inspect_report_to_stdout_csv(generic_tree: Path) -> None:
    result = runner.invoke(app, ["datasets", "inspect", str(generic_tree), "--report", "-", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("input.path,status,device")
    assert len(result.stdout.splitlines()) == 1 + 9

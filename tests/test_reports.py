import csv
import json
import math

import numpy as np
import pytest

from camforensics import __version__
from camforensics.reports.atomic import atomic_open, atomic_write_text
from camforensics.reports.report import Report


def _report():
    r = Report(command="identify", parameters={"threshold": 60.0, "shift": (0, 0)}, argv=["camforensics", "identify"])
    r.add({"input": {"path": "a.jpg", "sha256": "ab"}, "status": "ok", "decision": {"pce": np.float32(1234.5)}, "cands": [1, 2]})
    r.add({"input": {"path": "b.jpg"}, "status": "error", "error": {"type": "InputError", "message": "truncated"}})
    r.add({"input": {"path": "c.jpg"}, "status": "ok", "decision": {"pce": -math.inf}})
    r.finish(extra=3)
    return r


def test_json_document(tmp_path):
    rep = _report()
    [path] = rep.write(tmp_path / "r.json")
    doc = json.loads(path.read_text())
    run = doc["run"]
    assert run["schema"] == "camforensics-report" and run["tool_version"] == __version__
    assert run["parameters"] == {"threshold": 60.0, "shift": [0, 0]}
    assert "numpy" in run["environment"]["packages"] and run["duration_s"] >= 0
    assert run["environment"]["engine"] in ("native", "opencv")  # which denoiser implementation ran
    assert doc["summary"] == {"n_inputs": 3, "n_ok": 2, "n_failed": 1, "extra": 3}
    assert doc["results"][0]["decision"]["pce"] == 1234.5
    assert doc["results"][2]["decision"]["pce"] == "-inf"  # strict JSON: no Infinity literal


def test_jsonl_and_csv(tmp_path):
    rep = _report()
    [jl] = rep.write(tmp_path / "r.jsonl", fmt="jsonl")
    lines = [json.loads(x) for x in jl.read_text().splitlines()]
    assert [x["record"] for x in lines] == ["run", "result", "result", "result", "summary"]
    written = rep.write(tmp_path / "r.csv", fmt="csv")
    assert [p.name for p in written] == ["r.csv", "r.csv.run.json"]
    rows = list(csv.DictReader(written[0].read_text().splitlines()))
    assert rows[0]["input.path"] == "a.jpg" and rows[0]["decision.pce"] == "1234.5" and rows[0]["cands"] == "[1, 2]"
    assert rows[1]["error.message"] == "truncated"
    assert json.loads(written[1].read_text())["summary"]["n_failed"] == 1


def test_unknown_format_and_bad_result():
    rep = _report()
    with pytest.raises(ValueError, match="choose one of"):
        rep.to_text(fmt="xml")
    with pytest.raises(ValueError, match="input"):
        rep.add({"status": "ok"})


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "out.txt"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(p, "w") as f:
            f.write("half")
            raise RuntimeError("crash")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["out.txt"]

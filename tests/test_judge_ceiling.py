"""bench/bench_judge_ceiling.py: the judges' accuracy on genuine photos per model and the ceiling of a target draw."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_judge_ceiling.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_judge_ceiling", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_accuracy_is_counted_per_model_and_the_ceiling_averages_over_the_targets(bench):
    acc = bench.per_class_accuracy([("Canon IXUS 125 HS", "Canon IXUS 125 HS"), ("Canon IXUS 125 HS", "Nikon D70"),
                                    ("Nikon D70", "nikon d70"), ("Nikon D70", "Nikon D70"), ("Apple iPhone 4", "Nikon D70")])  # fmt: skip
    assert acc == {"canonixus125hs": (1, 2), "nikond70": (2, 2), "appleiphone4": (0, 1)}
    value, missing = bench.ceiling(acc, ["Canon IXUS 125 HS", "Nikon D70", "Nikon D70", "Wiko RIDGE 4G"])
    assert value == pytest.approx((0.5 + 1.0 + 1.0) / 3) and missing == 1
    assert bench.ceiling(acc, ["Wiko RIDGE 4G"]) == (None, 1)


def test_report_targets_takes_one_target_per_photo(bench, tmp_path):
    def result(path, method, target, status="ok"):
        return {"input": {"path": path}, "status": status, "method": {"name": method, "parameters": {"target": target}}}

    doc = {"results": [result("a.jpg", "retable", "Nikon D70"), result("a.jpg", "transplant", "Nikon D70"),
                       result("b.jpg", "transplant", "Apple iPhone 4"), result("c.jpg", "transplant", "Nikon D90", "error"),
                       {"input": {"path": "d.jpg"}, "status": "ok", "method": {"name": "median", "parameters": {}}}]}  # fmt: skip
    rep = tmp_path / "report.json"
    rep.write_text(json.dumps(doc))
    assert bench.report_targets(rep) == ["Nikon D70", "Apple iPhone 4"]

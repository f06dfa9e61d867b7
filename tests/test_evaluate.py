"""camforensics evaluate on hand-made identify / verify reports with hand-computed metrics, and on real ones."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.errors import InputError
from camforensics.io.datasets import read_dataset
from camforensics.io.hashing import sha256_file
from camforensics.io.truth import TruthIndex, read_device_map
from camforensics.pipelines.evaluate import evaluate_reports
from camforensics.reports.reader import read_report
from camforensics.reports.report import Report

runner = CliRunner()

C0, C1, N0 = "Canon_Ixus70_0", "Canon_Ixus70_1", "Nikon_D70_0"  # generic layout: <Make>_<Model>_<index>


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def truth(tmp_path) -> Path:
    """Three devices (two bodies of one model), four tiny distinct JPEGs each: <device>/nat/<i>.jpg."""
    root = tmp_path / "truth"
    for d, device in enumerate((C0, C1, N0)):
        (root / device / "nat").mkdir(parents=True)
        for i in range(4):
            pixels = np.random.default_rng(10 * d + i).integers(0, 256, (16, 16, 3), dtype=np.uint8)
            cv2.imwrite(str(root / device / "nat" / f"{i}.jpg"), pixels)
    return root


def image(truth: Path, device: str, i: int) -> dict:
    path = truth / device / "nat" / f"{i}.jpg"
    return {"path": str(path), "sha256": sha256_file(path)}


def write(report: Report, path: Path, fmt: str = "json") -> Path:
    report.write(path, fmt=fmt)
    return path


def identify_result(item: dict, candidates: list[tuple[str, float]], threshold: float = 60.0, **extra) -> dict:
    """An identify result as identify_one writes it (the members evaluate reads)."""
    cands = sorted(({"device": d, "pce": p} for d, p in candidates), key=lambda c: -c["pce"])
    matches = [c["device"] for c in cands if c["pce"] > threshold]
    decision = {"match": bool(matches), "device": cands[0]["device"] if matches else None, "pce": cands[0]["pce"]}
    return {
        "input": item,
        "status": "ok",
        "decision": decision | {"threshold": threshold},
        "candidates": cands,
        **extra,
    }


def attribution(top: str, decided: str | None, score: float) -> dict:
    """A model_attribution member as identify writes it; "unknown" when the score is below -1."""
    classes = ["Canon Ixus70", "Sony DSC-H50"]
    other = next(c for c in classes if c != top)
    return {
        "model": "attributor-v1",
        "model_sha256": "ab" * 32,
        "classes": classes,
        "decision": {"model": decided, "unknown": decided is None, "score": score, "threshold": -1.0},
        "top_k": [{"model": top, "probability": 0.7, "log_prob": -0.36}, {"model": other, "probability": 0.3}],
        "n_patches": 16,
    }


@pytest.fixture
def identify_report(truth, tmp_path) -> Path:
    """Six queries with known outcomes; C1 is not enrolled; plus an error and an unmatched result.

    PCE pairs (score, same device): q1 (100 T, 5 F), q2 (40 T, 10 F), q3 (80 T, 70 F), q4 (65 F, 3 F),
    q5 (20 F, 30 F), q6 (90 F, 50 T). U = 8 + 5 + 7 + 5 = 25 of 4 x 8 -> AUC 25/32. At PCE > 60: TPR 2/4,
    FPR 3/8. EER: the curve crosses FPR = FNR on its vertical step from (3/8, 1/2) (threshold 50) to (3/8, 3/4)
    (threshold 40), half-way: EER 3/8 at threshold 45.
    """
    rep = Report(command="identify", parameters={"match": {"threshold": 60.0}}, argv=["camforensics", "identify"])
    rep.context["library"] = {"path": "lib", "n_entries": 2, "entries_used": [{"name": C0}, {"name": N0}]}
    rep.context["decision_rule"] = {"threshold_pce": 60.0}
    rows = [
        (image(truth, C0, 0), [(C0, 100), (N0, 5)], attribution("Canon Ixus70", "Canon Ixus70", -0.2)),  # correct match
        (image(truth, C0, 1), [(C0, 40), (N0, 10)], attribution("Canon Ixus70", None, -1.5)),  # missed
        (image(truth, N0, 0), [(N0, 80), (C0, 70)], attribution("Canon Ixus70", None, -2.0)),  # correct match
        (image(truth, C1, 0), [(C0, 65), (N0, 3)], attribution("Canon Ixus70", "Canon Ixus70", -0.4)),  # false match
        (
            image(truth, C1, 1),
            [(C0, 20), (N0, 30)],
            attribution("Sony DSC-H50", "Sony DSC-H50", -0.9),
        ),  # correct reject
        (image(truth, N0, 1), [(C0, 90), (N0, 50)], attribution("Canon Ixus70", "Canon Ixus70", -0.3)),  # wrong match
    ]
    for item, cands, ma in rows:
        rep.add(identify_result(item, cands, model_attribution=ma))
    rep.add(
        {
            "input": {"path": str(truth / "broken.jpg")},
            "status": "error",
            "error": {"type": "InputError", "message": "empty"},
        }
    )
    rep.add(identify_result({"path": "/elsewhere/x.jpg", "sha256": "0" * 64}, [(C0, 1), (N0, 2)]))  # no truth
    rep.finish()
    return write(rep, tmp_path / "identify.json")


def verify_report(path: Path, set_a: list[dict], set_b: list[dict], pce: float, *, scores=None, fmt="json") -> Path:
    rep = Report(command="verify", parameters={"match": {"threshold": 60.0}}, argv=["camforensics", "verify"])
    for side, items in (("A", set_a), ("B", set_b)):
        for item in items:
            rep.add({"input": item, "status": "ok", "set": side})
    decision = {
        "same_device": pce > 60,
        "threshold": 60.0,
        "pce": pce,
        "n_images_a": len(set_a),
        "n_images_b": len(set_b),
    }
    extra = {} if scores is None else {"scores": {"prnu_pce": pce, **scores}, "thresholds": {"siamese": 0.5}}
    rep.finish(decision=decision, **extra)
    return write(rep, path, fmt)


@pytest.fixture
def verify_reports(truth, tmp_path) -> list[Path]:
    """Four labelled pairs and one that mixes devices.

    prnu_pce: same-device pairs 150 (2+2), 45 (1+1); different 12 (2+2), 70 (1+1): AUC 3/4; at > 60 TPR 1/2,
    FPR 1/2; the curve (0,0) (0,1/2) (1/2,1/2) ... passes FPR = FNR = 1/2 at the point of threshold 45.
    siamese (1+1 pairs only): same 0.7, different 0.2: AUC 1, EER 0.
    """

    def i(device, k):
        return image(truth, device, k)

    d = tmp_path / "verify"
    d.mkdir()
    return [
        verify_report(d / "v1.json", [i(C0, 0), i(C0, 1)], [i(C0, 2), i(C0, 3)], 150.0),
        verify_report(d / "v2.jsonl", [i(C0, 0), i(C0, 1)], [i(C1, 0), i(C1, 1)], 12.0, fmt="jsonl"),
        verify_report(d / "v3.json", [i(N0, 0)], [i(N0, 1)], 45.0, scores={"siamese": 0.7}),
        verify_report(d / "v4.json", [i(C1, 2)], [i(N0, 2)], 70.0, scores={"siamese": 0.2}),
        verify_report(d / "v5.json", [i(C0, 3), i(N0, 3)], [i(C1, 3)], 30.0),  # set A mixes two devices
    ]


def test_identify_prnu_metrics_are_the_hand_computed_ones(identify_report, truth, tmp_path):
    rep = evaluate_reports([identify_report], truth=truth, output_dir=tmp_path / "out")
    s = rep.summary
    inputs = s["inputs"]
    assert inputs["n_results"] == 8 and inputs["n_error_results"] == 1 and inputs["n_unmatched_results"] == 1
    assert inputs["unmatched"][0]["path"] == "/elsewhere/x.jpg"
    assert "no file of this sha256" in inputs["unmatched"][0]["reason"]
    assert inputs["errors"][0]["message"] == "empty" and inputs["matched_by"] == {"sha256": 6}
    prnu = s["identify"]["prnu"]
    pce = prnu["pce"]
    assert (pce["n_pairs"], pce["n_positive"], pce["n_negative"]) == (12, 4, 8)
    assert pce["auc"] == pytest.approx(25 / 32)
    assert (pce["eer"], pce["eer_threshold"]) == (pytest.approx(3 / 8), pytest.approx(45.0))
    [at] = pce["at_threshold"]
    assert (at["threshold"], at["tpr"], at["fpr"], at["tp"], at["fp"]) == (60.0, 0.5, 3 / 8, 2, 3)
    assert prnu["outcomes"] == {
        "correct_match": 2,
        "wrong_match": 1,
        "false_match": 1,
        "missed": 1,
        "correct_reject": 1,
    }
    assert prnu["accuracy"] == pytest.approx(3 / 6) and prnu["top1_accuracy_enrolled"] == pytest.approx(3 / 4)
    cm = prnu["confusion"]
    assert cm["rows_true"] == [C0, N0, C1] and cm["columns_predicted"] == [C0, N0, "no match"]
    assert cm["counts"] == [[1, 0, 1], [1, 1, 0], [1, 0, 1]]
    assert "roc" not in pce  # the point lists are in metrics.json only
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (
        metrics["schema"] == "camforensics-metrics"
        and metrics["identify"]["prnu"]["pce"]["roc"]["thresholds"][-1] == "-inf"
    )
    assert metrics["verify"] is None


def test_model_attribution_metrics(identify_report, truth):
    s = evaluate_reports([identify_report], truth=truth).summary
    [(name, m)] = s["identify"]["model_attribution"].items()
    assert name == "attributor-v1" and m["model_sha256"] == ["ab" * 32] and m["n_queries"] == 6
    # In the classes: the four Canon Ixus70 queries; outside: the two Nikon D70 queries.
    assert (m["n_in_classes"], m["n_outside_classes"]) == (4, 2)
    assert m["closed_set_accuracy"] == pytest.approx(3 / 4)  # top-1 wrong only for q5 (Sony)
    assert m["open_set_accuracy"] == pytest.approx(3 / 6)  # q1, q3 (rejected Nikon), q4
    assert m["unknown_rejection_rate"] == 0.5 and m["known_rejection_rate"] == 0.25
    cm = m["confusion"]
    assert cm["rows_true"] == ["Canon Ixus70", "Sony DSC-H50", "Nikon D70"]
    assert cm["columns_predicted"] == ["Canon Ixus70", "Sony DSC-H50", "unknown"]
    assert cm["counts"] == [[2, 1, 1], [0, 0, 0], [1, 0, 1]]
    # The decision score as a detector of "a trained model": known -0.2 -1.5 -0.4 -0.9 vs outside -2.0 -0.3:
    # U = 2 + 1 + 1 + 1 of 8; at the threshold -1 the rates are 1 - the rejection rates above.
    score = m["open_set_score"]
    assert score["auc"] == pytest.approx(5 / 8)
    assert (score["at_threshold"][0]["tpr"], score["at_threshold"][0]["fpr"]) == (0.75, 0.5)


def test_verify_metrics_per_score_and_set_size(verify_reports, truth):
    s = evaluate_reports(verify_reports, truth=truth).summary
    v = s["verify"]
    assert (v["n_pairs"], v["n_same_device"], v["n_different_device"]) == (4, 2, 2)
    assert v["n_pairs_skipped"] == 1 and "set A mixes devices" in v["skipped"][0]["reason"]
    assert v["decision_accuracy"] == 0.5
    pce = v["scores"]["prnu_pce"]
    assert pce["auc"] == 0.75 and (pce["eer"], pce["eer_threshold"]) == (0.5, 45.0)
    assert (pce["at_threshold"][0]["tpr"], pce["at_threshold"][0]["fpr"]) == (0.5, 0.5)
    sia = v["scores"]["siamese"]
    assert sia["n_pairs"] == 2 and sia["auc"] == 1.0 and sia["eer"] == 0.0
    assert sia["at_threshold"] == [{"threshold": 0.5, "tp": 1, "fp": 0, "tn": 1, "fn": 0, "tpr": 1.0, "fpr": 0.0}]
    assert list(v["by_set_size"]) == ["1+1", "2+2"]
    assert v["by_set_size"]["2+2"]["scores"]["prnu_pce"]["auc"] == 1.0
    one = v["by_set_size"]["1+1"]["scores"]["prnu_pce"]
    assert one["auc"] == 0.0 and one["eer"] == 1.0
    assert s["identify"] is None and s["inputs"]["by_command"] == {"verify": 5}


def test_a_single_class_gives_null_auc_with_a_reason(truth, tmp_path):
    def i(device, k):
        return image(truth, device, k)

    p = verify_report(tmp_path / "only_same.json", [i(C0, 0)], [i(C0, 1)], 500.0)
    v = evaluate_reports([p], truth=truth, output_dir=tmp_path / "out").summary["verify"]
    pce = v["scores"]["prnu_pce"]
    assert pce["auc"] is None and pce["eer"] is None and "undefined" in pce["undefined_reason"]
    assert pce["at_threshold"][0]["tpr"] == 1.0 and pce["at_threshold"][0]["fpr"] is None
    assert not (tmp_path / "out" / "roc_verify.png").exists()  # no curve to draw


def test_cli_writes_metrics_plots_and_report(identify_report, verify_reports, truth, tmp_path):
    out = tmp_path / "eval"
    res = invoke("evaluate", identify_report, *verify_reports, "--truth", truth, "-o", out, "--plot-size", 600)
    assert res.exit_code == 0, res.output
    assert "identify PRNU" in res.stdout and "verify prnu_pce" in res.stdout and "open-set score" in res.stdout
    names = {p.name for p in out.iterdir()}
    expected = {"roc_prnu.png", "confusion_prnu.png", "confusion_model.png", "roc_verify.png"}
    assert expected | {"roc_verify_1+1.png", "roc_verify_2+2.png", "metrics.json", "report.json"} == names
    for name in names - {"metrics.json", "report.json"}:
        picture = cv2.imread(str(out / name))
        assert picture is not None and picture.shape == (600, 600, 3), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["plots"].values()) == names - {"metrics.json", "report.json"}
    doc = read_report(out / "report.json")
    assert doc["run"]["command"] == "evaluate" and doc["summary"]["n_inputs"] == 6 and doc["summary"]["n_failed"] == 0
    assert doc["summary"]["identify"]["prnu"]["pce"]["auc"] == pytest.approx(25 / 32)
    assert [r["command"] for r in doc["results"]] == ["identify"] + ["verify"] * 5
    assert doc["results"][0]["n_unmatched_results"] == 1 and doc["results"][0]["n_error_results"] == 1
    assert doc["results"][1]["n_pairs"] == 1 and doc["results"][1]["n_error_results"] == 0


def test_cli_an_unusable_report_fails_alone(identify_report, truth, tmp_path):
    enroll = Report(command="enroll", parameters={})
    enroll.finish()
    write(enroll, tmp_path / "enroll.json")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "r.csv").write_text("a,b\n")
    odd = Report(command="identify", parameters={})
    odd.add({"input": "not a mapping", "status": "ok"})  # a result of another shape
    odd.finish()
    write(odd, tmp_path / "odd.json")
    res = invoke(
        "evaluate",
        identify_report,
        tmp_path / "enroll.json",
        tmp_path / "bad.json",
        tmp_path / "r.csv",
        tmp_path / "odd.json",
        "--truth",
        truth,
        "-o",
        tmp_path / "out",
        "--no-plots",
        "-q",
    )
    assert res.exit_code == 1
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    errors = {Path(r["input"]["path"]).name: r["error"]["message"] for r in doc["results"] if r["status"] == "error"}
    assert "evaluate reads identify and verify reports" in errors["enroll.json"]
    assert "line 1 is not JSON" in errors["bad.json"]
    assert "csv reports cannot be read back" in errors["r.csv"]
    assert "does not have the layout of identify reports" in errors["odd.json"]
    assert doc["summary"]["n_failed"] == 4 and doc["summary"]["inputs"]["n_results"] == 8  # odd.json adds nothing
    assert doc["summary"]["identify"]["prnu"]["n_queries"] == 6
    assert not list((tmp_path / "out").glob("*.png"))


def test_cli_missing_truth_is_one_line_exit_2(identify_report, tmp_path):
    res = invoke("evaluate", identify_report, "--truth", tmp_path / "nowhere", "-o", tmp_path / "o")
    assert res.exit_code == 2 and "does not exist" in res.output


def test_device_map_renames_library_devices(truth, tmp_path):
    rep = Report(command="identify", parameters={})
    rep.context["decision_rule"] = {"threshold_pce": 60.0}
    rep.add(identify_result(image(truth, C0, 0), [("canon-zero", 100), ("nikon", 5)]))
    rep.add(identify_result(image(truth, N0, 0), [("canon-zero", 7), ("nikon", 90)]))
    rep.finish()
    path = write(rep, tmp_path / "id.json")
    assert evaluate_reports([path], truth=truth).summary["identify"]["prnu"]["outcomes"]["false_match"] == 2
    (tmp_path / "map.csv").write_text(f"library_name,device\ncanon-zero,{C0}\nnikon,{N0}\n")
    dmap = read_device_map(tmp_path / "map.csv")
    prnu = evaluate_reports([path], truth=truth, device_map=dmap).summary["identify"]["prnu"]
    assert prnu["outcomes"]["correct_match"] == 2 and prnu["pce"]["auc"] == 1.0
    (tmp_path / "bad.csv").write_text("a,b\na,c\n")
    with pytest.raises(InputError, match="mapped to both"):
        read_device_map(tmp_path / "bad.csv")


def test_truth_index_by_sha256_then_path(truth, tmp_path):
    index = TruthIndex(read_dataset(truth))
    item = image(truth, N0, 2)
    assert index.lookup(item).record.device == N0 and index.n_hashed == 1  # same path: one file hashed
    moved = tmp_path / "copy.jpg"
    moved.write_bytes(Path(item["path"]).read_bytes())
    found = index.lookup({"path": str(moved), "sha256": item["sha256"]})  # a copy elsewhere: found by hash
    assert found.record.device == N0 and found.how == "sha256"
    assert index.lookup({"path": item["path"]}).how == "path"  # no hash (an unreadable file's result)
    changed = index.lookup({"path": item["path"], "sha256": "f" * 64})
    assert changed.record is None and "changed since the report" in changed.how


def test_evaluate_real_identify_and_verify_reports(device_tree, tmp_path):
    """Reports written by the real commands (cam_c not enrolled): every decision right, AUC 1."""
    lib = tmp_path / "lib"
    for name in ("cam_a", "cam_b"):
        assert (
            invoke(
                "enroll",
                device_tree / name / "flat",
                "--name",
                name,
                "--library",
                lib,
                "-r",
                tmp_path / f"{name}.json",
                "-q",
                "-j",
                "1",
            ).exit_code
            == 0
        )
    queries = [device_tree / d / "nat" for d in ("cam_a", "cam_b", "cam_c")]
    assert (
        invoke(
            "identify", *queries, "--library", lib, "-r", tmp_path / "id.jsonl", "--format", "jsonl", "-q", "-j", "1"
        ).exit_code
        == 0
    )
    for name, b in (("same", "cam_a"), ("diff", "cam_b")):
        res = invoke(
            "verify",
            device_tree / "cam_a" / "flat",
            device_tree / b / "nat",
            "-r",
            tmp_path / f"{name}.json",
            "-q",
            "-j",
            "1",
        )
        assert res.exit_code == 0
    s = evaluate_reports(
        [tmp_path / "id.jsonl", tmp_path / "same.json", tmp_path / "diff.json"], truth=device_tree
    ).summary
    prnu = s["identify"]["prnu"]
    assert prnu["outcomes"] == {
        "correct_match": 6,
        "wrong_match": 0,
        "false_match": 0,
        "missed": 0,
        "correct_reject": 3,
    }
    assert prnu["pce"]["auc"] == 1.0 and prnu["pce"]["eer"] == 0.0 and prnu["accuracy"] == 1.0
    assert s["verify"]["n_pairs"] == 2 and s["verify"]["scores"]["prnu_pce"]["auc"] == 1.0
    assert list(s["verify"]["by_set_size"]) == ["6+3"] and s["inputs"]["n_unmatched_results"] == 0


def test_read_report_refuses_other_schemas_and_journals(identify_report, tmp_path):
    doc = json.loads(identify_report.read_text())
    doc["run"]["schema_version"] = "2.0"
    (tmp_path / "v2.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="schema version '2.0'"):
        read_report(tmp_path / "v2.json")
    (tmp_path / "j.partial.jsonl").write_text('{"record": "journal", "command": "identify"}\n')
    with pytest.raises(InputError, match="journal of a run that did not finish"):
        read_report(tmp_path / "j.partial.jsonl")
    with pytest.raises(InputError, match="does not exist"):
        read_report(tmp_path / "none.json")
    assert read_report(identify_report)["results"][0]["candidates"][0]["pce"] == 100


def _records(spec: dict[str, tuple[str, int]]) -> list:
    from camforensics.io.records import ImageRecord

    return [
        ImageRecord(Path(f"/data/{device}/nat/{i}.jpg"), "Make", model, device, "nat", "generic")
        for device, (model, n) in spec.items()
        for i in range(n)
    ]


def test_evaluation_pairs_are_disjoint_labelled_and_take_the_same_model_negatives_first():
    from camforensics.pipelines.evaluate_verification import draw_pairs

    records = _records({"a0": ("A", 8), "a1": ("A", 5), "b0": ("B", 9), "c0": ("C", 3)})
    rng = np.random.default_rng(0)
    pairs, notes = draw_pairs(records, set_size=4, n_pairs=10, rng=rng)
    pos = [p for p in pairs if p.same_device]
    neg = [p for p in pairs if not p.same_device]
    assert len(pos) == 5 and len(neg) == 5
    # Same-device pairs: devices with >= 8 images only, two disjoint sets of 4 of one device.
    assert {p.a[0].device for p in pos} <= {"a0", "b0"} and {p.a[0].device for p in pos} == {"a0", "b0"}
    for p in pos:
        assert len(p.a) == len(p.b) == 4 and not set(p.a) & set(p.b)
        assert {r.device for r in (*p.a, *p.b)} == {p.a[0].device}
    # Different-device pairs: devices with >= 4 images (c0 has 3), the one same-model pair (a0, a1) first.
    assert {frozenset((p.a[0].device, p.b[0].device)) for p in neg} <= {
        frozenset(x) for x in (("a0", "a1"), ("a0", "b0"), ("a1", "b0"))
    }
    assert frozenset((neg[0].a[0].device, neg[0].b[0].device)) == {"a0", "a1"} and neg[0].same_model
    assert all(p.set_size == "4+4" for p in pairs)
    assert any("a1" in n and "c0" in n for n in notes)  # left out of the same-device pairs, said so
    # Reproducible from the seed.
    again, _ = draw_pairs(records, set_size=4, n_pairs=10, rng=np.random.default_rng(0))
    assert [(p.a, p.b) for p in again] == [(p.a, p.b) for p in pairs]
    # Too few images for any same-device pair: only negatives, and a note.
    pairs, notes = draw_pairs(records, set_size=5, n_pairs=6, rng=rng)
    assert pairs and not any(p.same_device for p in pairs) and any("no same-device pair" in n for n in notes)


def test_evaluate_without_a_subcommand_still_reads_reports(tmp_path):
    res = invoke("evaluate", "--truth", str(tmp_path / "missing"), str(tmp_path / "r.json"))
    assert res.exit_code == 2 and "No such command" not in res.output

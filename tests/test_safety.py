"""camforensics.io.safety in-process: the output-path rules, input classification, output stems, temporaries."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from camforensics.errors import InputError, OutputPathError
from camforensics.io.safety import (
    MIN_IMAGE_SIDE,
    check_outputs,
    input_problem,
    require_analysable,
    short_stem,
    sweep_temporaries,
    temporaries_swept,
    unique_stems,
)


@pytest.fixture()
def tree(tmp_path):
    ev = tmp_path / "evidence"
    ev.mkdir()
    (ev / "a.jpg").write_bytes(b"x")
    (ev / "notes.txt").write_text("the examiner's notes")
    return tmp_path, ev


def test_min_side_is_identifys_smallest_crop():
    from camforensics.core.cropsearch import MIN_CROP_SIDE

    assert MIN_IMAGE_SIDE == MIN_CROP_SIDE
    require_analysable((MIN_IMAGE_SIDE, 4000, 3), "ok.png")
    for shape in ((1, 1), (8, 4000), (4000, MIN_IMAGE_SIDE - 1)):
        with pytest.raises(InputError, match="too small"):
            require_analysable(shape, "small.png")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (lambda t, ev: {"report": ev / "a.jpg"}, "one of the inputs"),
        (lambda t, ev: {"report": ev}, "existing folder"),
        (lambda t, ev: {"report": ev / "a.jpg" / "r.json"}, "not a folder"),
        (lambda t, ev: {"folder": ev}, "inside the input folder"),
        (lambda t, ev: {"folder": ev / "x" / "y"}, "inside the input folder"),
        (lambda t, ev: {"folder": ev / "a.jpg"}, "existing file"),
        (lambda t, ev: {"folder": "/proc/camforensics"}, "cannot write"),
        (lambda t, ev: {"report": "/proc/camforensics.json"}, "cannot write"),
        (lambda t, ev: {"files": [("--out", ev / "a.jpg")]}, "one of the inputs"),
        (lambda t, ev: {"report": ev / "notes.txt"}, "would overwrite a file inside the input folder"),
    ],
)
def test_output_paths_refused(tree, kwargs, message):
    tmp, ev = tree
    with pytest.raises(OutputPathError, match=message):
        check_outputs([ev / "a.jpg", ev], **kwargs(tmp, ev))
    assert sorted(p.name for p in ev.iterdir()) == ["a.jpg", "notes.txt"]  # nothing created by the check


def test_output_paths_accepted(tree):
    tmp, ev = tree
    check_outputs([ev], report=tmp / "new" / "r.json", folder=tmp / "out")
    check_outputs([ev], report=ev / "report.json")  # a report beside the evidence is never read as an image
    check_outputs([ev], report="-")
    assert not (tmp / "new").exists() and not (tmp / "out").exists()  # checked, not created
    assert not [p for p in tmp.rglob("*") if ".camforensics-write-test" in p.name]


def test_a_symlink_to_an_input_is_that_input(tree):
    tmp, ev = tree
    (tmp / "alias.json").symlink_to(ev / "a.jpg")
    with pytest.raises(OutputPathError, match="one of the inputs"):
        check_outputs([ev / "a.jpg"], report=tmp / "alias.json")


def test_input_problem(tmp_path):
    good = tmp_path / "g.jpg"
    good.write_bytes(b"x")
    assert input_problem(good) is None
    os.mkfifo(tmp_path / "p.jpg")
    assert "named pipe" in input_problem(tmp_path / "p.jpg")
    (tmp_path / "l1").symlink_to("l2")
    (tmp_path / "l2").symlink_to("l1")
    assert "loop" in input_problem(tmp_path / "l1")
    (tmp_path / "d").symlink_to("nothing")
    assert "dangling" in input_problem(tmp_path / "d")
    assert "folder" in input_problem(tmp_path)
    assert "device" in input_problem("/dev/null")


def test_unique_stems_and_short_stems():
    files = [Path("a/x.jpg"), Path("b/x.jpg"), Path("b/X.png"), Path("c/y.jpg")]
    assert unique_stems(files) == {"a/x.jpg": "x~1", "b/x.jpg": "x~2", "b/X.png": "X~3", "c/y.jpg": "y"}
    long = "é" * 200
    s = short_stem(long)
    assert len(os.fsencode(s)) <= 120 and s != short_stem("é" * 199 + "e") and s == short_stem(long)


def test_temporaries_swept(tmp_path):
    old = tmp_path / ".old.jpg.abcdefgh.tmp"
    old.write_bytes(b"")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    with pytest.raises(KeyboardInterrupt), temporaries_swept(tmp_path):
        (tmp_path / ".x.npy.k3j_9aZq.tmp").write_bytes(b"half")
        (tmp_path / "keep.tmp").write_bytes(b"not ours")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == [".old.jpg.abcdefgh.tmp", "keep.tmp"]
    assert sweep_temporaries(tmp_path / "missing", since=0) == []


def test_a_report_that_cannot_be_written_after_the_work_loses_nothing(tmp_path, monkeypatch):
    """The destination is checked before the work; should it still fail at the end (a folder appeared, the disk
    filled), the finished results are kept: the journal for --resume, else a report in the working folder."""
    from camforensics.cli.common import emit_report
    from camforensics.errors import CamforensicsError
    from camforensics.reports.journal import Journal
    from camforensics.reports.report import Report

    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the report's folder should be")
    result = {"input": {"path": "a.jpg", "sha256": "0" * 64}, "status": "ok"}

    journal = Journal(tmp_path / "r.json.partial.jsonl", command="identify", parameters={})
    rep = Report(command="identify", parameters={}, journal=journal)
    rep.add(result, stamp={"size": 1, "mtime_ns": 1})
    with pytest.raises(CamforensicsError, match="finished results are kept in .*r.json.partial.jsonl.*--resume"):
        emit_report(rep, blocker / "r.json", "json", quiet=True)
    assert (tmp_path / "r.json.partial.jsonl").is_file()
    import json

    lines = [json.loads(line) for line in journal.path.read_text().splitlines()]
    assert [rec["result"]["input"]["path"] for rec in lines if rec["record"] == "result"] == ["a.jpg"]

    monkeypatch.chdir(tmp_path)
    rep = Report(command="verify", parameters={})
    rep.add(result)
    assert emit_report(rep, blocker / "r.json", "json", quiet=True) == 0
    written = list(tmp_path.glob("camforensics_verify_*.json"))
    assert len(written) == 1 and '"a.jpg"' in written[0].read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

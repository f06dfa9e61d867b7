"""Ending the program without the interpreter's teardown (camforensics.runtime.leave): everything a normal exit
does for the program's results still happens (streams flushed, threads joined, atexit handlers run, exit status)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from camforensics.runtime.leave import exit_status

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120, check=False, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})  # fmt: skip


def test_exit_status_is_the_interpreter_s():
    assert [exit_status(c) for c in (None, 0, 3, 256 + 2)] == [0, 0, 3, 2]
    assert exit_status("a message") is None and exit_status(True) is None  # left to the interpreter


def test_leave_flushes_joins_threads_runs_atexit_and_keeps_the_status(tmp_path):
    res = _python(
        """
        import atexit, sys, threading, time
        from concurrent.futures import ThreadPoolExecutor
        from camforensics.runtime.leave import leave
        atexit.register(lambda: print("atexit ran", flush=False))
        def late():
            time.sleep(0.3)
            open("late.txt", "w").write("written")
        threading.Thread(target=late).start()  # not a daemon: waited for
        pool = ThreadPoolExecutor(2)
        pool.submit(print, "pool ran")  # an idle pool left open does not hang the exit
        sys.stdout.write("no newline, buffered")
        sys.stderr.write("to stderr")
        leave(3)
        print("never")
        """,
        tmp_path,
    )
    assert res.returncode == 3
    assert "no newline, buffered" in res.stdout and "atexit ran" in res.stdout and "pool ran" in res.stdout
    assert "never" not in res.stdout and res.stderr == "to stderr"
    assert (tmp_path / "late.txt").read_text() == "written"


def test_leave_with_a_message_is_the_interpreter_s_exit(tmp_path):
    res = _python("from camforensics.runtime.leave import leave\nleave('stopped: bad input')\n", tmp_path)
    assert res.returncode == 1 and "stopped: bad input" in res.stderr


@pytest.mark.parametrize("args", [["--no-png"], ["--no-png", "-q"]])
def test_the_program_leaves_with_its_report_and_output_complete(device_tree, tmp_path, args):
    photo = device_tree / "cam_a" / "nat" / "nat 0.jpg"
    cmd = [sys.executable, "-m", "camforensics", "extract", str(photo), "-o", "out", "-r", "r.json", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["results"][0]["status"] == "ok" and len(list((tmp_path / "out").glob("*.npy"))) == 1
    assert ("1 of 1 extracted" in res.stdout) == ("-q" not in args)
    missing = subprocess.run([*cmd[:4], str(tmp_path / "missing.jpg"), "-o", "out2", "-r", "r2.json", *args],
                             capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
                             env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert missing.returncode != 0 and missing.stderr  # a refusal keeps its status and its words


def test_a_journal_never_closed_keeps_its_records_when_the_program_leaves(tmp_path):
    res = _python(
        """
        from camforensics.reports.journal import Journal
        from camforensics.runtime.leave import leave
        j = Journal("run.partial.jsonl", command="extract", parameters={})
        for i in range(3):
            j.append({"path": f"p{i}", "status": "ok"}, stamp=None)
        leave(2)  # a fatal error mid-run: nobody closed the journal
        """,
        tmp_path,
    )
    assert res.returncode == 2, res.stderr
    lines = (tmp_path / "run.partial.jsonl").read_text().splitlines()
    assert [json.loads(x)["result"]["path"] for x in lines if json.loads(x)["record"] == "result"] == ["p0", "p1", "p2"]

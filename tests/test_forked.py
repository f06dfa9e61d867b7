"""The helper process that draws a one-photo extract's pictures (camforensics.runtime.forked): its results equal
the pictures drawn in the command's own process, its failures are the file's error, and no process outlives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from camforensics.runtime import forked

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the helper is forked on Linux only")


def _session_members(sid: int) -> list[int]:
    """The processes of session ``sid`` still alive (a forked helper and its children keep their session)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields after the name: state, ppid, pgrp, session
            members.append(int(entry.name))
    return members


def _run(code: str, tmp_path: Path) -> dict:
    """Run ``code`` in a fresh interpreter (no threads yet: it may fork) in a session of its own; it prints one
    JSON line. Checks that no process of its session is left once it exited."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, cwd=tmp_path, start_new_session=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert _session_members(result["sid"]) == []
    return result


def test_the_helper_runs_calls_side_by_side_and_reports_their_errors(tmp_path):
    out = _run(
        """
        import json, os, time
        from camforensics.runtime import forked
        from camforensics.errors import CamforensicsError
        forked.idle_cores = lambda: 1  # whatever else runs on the machine now
        helper = forked.start("t", prepare=lambda: __import__("json"), slots=3)
        assert forked.claim("t") is helper and forked.claim("t") is None
        a = helper.submit(os.getpid)
        b = helper.submit(divmod, 7, 0)
        c = helper.submit(os._exit, 3)
        pids = [helper.result(a)]
        errors = []
        for slot in (b, c):
            try:
                helper.result(slot)
            except CamforensicsError as exc:
                errors.append(str(exc))
        helper.close()
        left = [p for p in [helper.pid, *pids] if os.path.exists(f"/proc/{p}")]
        print(json.dumps({"sid": os.getsid(0), "pids": pids, "helper": helper.pid, "me": os.getpid(),
                          "errors": errors, "left": left}))
        """,
        tmp_path,
    )
    assert out["pids"][0] not in (out["helper"], out["me"])  # the call ran in a child of the helper
    assert "ZeroDivisionError" in out["errors"][0] and "helper process" in out["errors"][0]
    assert "stopped before returning its result" in out["errors"][1]
    assert out["left"] == []


def test_a_helper_given_no_call_is_killed_at_once_not_waited_for(tmp_path):
    out = _run(
        """
        import json, os, time
        from camforensics.runtime import forked
        forked.idle_cores = lambda: 1
        helper = forked.start("t", prepare=lambda: time.sleep(60))  # still preparing when the run drops it
        assert forked.started("t") and not forked.started("other")
        t = time.perf_counter()
        forked.discard("t")
        print(json.dumps({"sid": os.getsid(0), "waited": time.perf_counter() - t, "started": forked.started("t"),
                          "alive": os.path.exists(f"/proc/{helper.pid}")}))
        """,
        tmp_path,
    )
    assert out["waited"] < 10 and not out["started"] and not out["alive"]


def test_early_start_guesses_only_an_extract_that_draws():
    from camforensics.cli import early
    from camforensics.core import figures

    assert early.DRAWING_HELPER == figures.DRAWING_HELPER
    for argv in (["camforensics"], ["camforensics", "identify", "a.jpg"], ["camforensics", "extract"],
                 ["camforensics", "extract", "a.jpg", "-o", "o", "--no-png"], ["camforensics", "extract", "--help"],
                 ["camforensics", "extract", "a.jpg", "-o", "o", "--resume"]):  # fmt: skip
        assert early.start_early(argv) is False, argv  # refused before any fork


def test_idle_cores_counts_this_process():
    assert 0 <= forked.idle_cores() < len(os.sched_getaffinity(0))  # this process runs: one core is not idle


def test_no_helper_while_another_thread_runs():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not forked.can_fork()
        assert forked.start("t-threads") is None and forked.claim("t-threads") is None
    finally:
        stop.set()
        thread.join()


_EXTRACT = """
import json, os, runpy, sys
from pathlib import Path
import camforensics.core.figures as F
from camforensics.runtime import forked

MODE = {mode!r}
forked.idle_cores = lambda: 1  # whatever else runs on the machine now

def broken(*args, **kwargs):
    if MODE == "die":
        os._exit(3)  # the helper's child dies without a word
    raise RuntimeError("no ink left")

if MODE != "ok":
    F.draw_residual = broken  # forked: the helper has the same (pickled by reference as __main__.broken)
used = []
close = forked.Helper.close
def recorded(self):
    used.append(len(self.children))
    close(self)
forked.Helper.close = recorded
starts = []
start = forked.start
def recorded_start(name, **kwargs):
    helper = start(name, **kwargs)
    starts.append(["typer" in sys.modules, helper is not None])  # forked before the command line was read?
    return helper
forked.start = recorded_start
import camforensics.runtime.leave as ending
def leave(code=0):
    raise SystemExit(code)  # back here, to look at what is left
ending.leave = leave
sys.argv = ["camforensics", "extract", {src!r}, "-o", "out", "-r", "r.json", "-q"]
try:
    runpy.run_module("camforensics", run_name="__main__")
except SystemExit as exc:
    code = exc.code
def session(pid):
    try:
        return os.getsid(pid)
    except OSError:
        return None
left = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid() and session(int(p)) == os.getsid(0)]
report = json.loads(Path("r.json").read_text())
print(json.dumps({{"sid": os.getsid(0), "code": code, "used": used, "starts": starts, "left": left, "result": report["results"][0],
                  "pngs": sorted(p.name for p in Path("out").glob("*.png"))}}))
"""


def _photo(device_tree: Path) -> Path:
    return device_tree / "cam_a" / "nat" / "nat 0.jpg"


def test_pictures_drawn_in_the_helper_equal_those_drawn_in_process(device_tree, tmp_path):
    from camforensics.pipelines.extract import extract_residuals

    out = _run(_EXTRACT.format(mode="ok", src=str(_photo(device_tree))), tmp_path)
    assert out["code"] == 0 and out["used"] == [2] and out["left"] == []  # both pictures drawn by the helper
    starts = out["starts"]  # forked before typer was imported (camforensics.cli.early), once
    assert starts[0] == [False, True] and not any(started for _, started in starts[1:])
    here = extract_residuals([_photo(device_tree)], tmp_path / "here")  # this process has threads: no helper
    ours = next(iter(here.iter_results()))["outputs"]
    for key in ("residual_png", "spectrum_png"):
        theirs = tmp_path / "out" / Path(ours[key]).name
        assert theirs.read_bytes() == Path(ours[key]).read_bytes()


@pytest.mark.parametrize("mode", ["raise", "die"])
def test_a_failed_picture_is_the_file_error_and_leaves_no_process(device_tree, tmp_path, mode):
    out = _run(_EXTRACT.format(mode=mode, src=str(_photo(device_tree))), tmp_path)
    assert out["code"] != 0 and out["left"] == [] and out["pngs"] == []
    assert out["result"]["status"] == "error"
    error = json.dumps(out["result"])
    assert ("RuntimeError: no ink left" in error) if mode == "raise" else ("stopped before returning" in error)


def test_the_installed_script_and_python_m_share_the_early_entry():
    """The installed ``camforensics`` script starts where ``python -m camforensics`` does (the test above runs the
    latter): the early fork happens before typer is imported for both."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["camforensics"] == "camforensics.cli.entry:main"
    assert "camforensics.cli.entry import main" in (root / "camforensics" / "__main__.py").read_text()

"""The hostile corpus (tests/hostile_corpus.py) through every command that reads images, as real processes.

Every run asserts: no traceback, the documented exit code, no input modified (sha256 of every file before and
after), no temporary file left behind, and the good files of the same batch processed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostile_corpus import CASE_IDS, CASES, build, snapshot

from camforensics.reports.escape import recorded_path

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 180  # seconds per command: a hang fails the test instead of blocking the suite
LEFTOVERS = re.compile(r"(\.tmp$|\.partial$|^\.camforensics-write-test\.|\.partial\.jsonl$)")

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX file types (FIFO, sockets) needed")


def run_cli(*args, cwd: Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), COLUMNS="200")
    argv = [sys.executable, "-m", "camforensics", *[os.fspath(a) if isinstance(a, Path) else a for a in args]]
    return subprocess.run(argv, cwd=cwd, capture_output=True, timeout=timeout, env=env, check=False)


def text(res: subprocess.CompletedProcess) -> str:
    return (res.stdout + res.stderr).decode("utf-8", "backslashreplace")


def leftovers(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        found += [os.path.join(dirpath, n) for n in filenames + dirnames if LEFTOVERS.search(n)]
    return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    c = build(tmp_path_factory.mktemp("hostile"))
    c.before = snapshot(c.root)  # type: ignore[attr-defined]
    (c.root / "out").mkdir()
    return c


def check_run(corpus, res, codes, *, allow=()) -> str:
    """The assertions every run shares; returns the output text."""
    out = text(res)
    assert "Traceback" not in out, out
    assert res.returncode in codes, (res.returncode, out)
    after = snapshot(corpus.root)
    changed = [p for p, h in corpus.before.items() if after.get(p) != h]
    assert not changed, f"inputs modified: {changed}"
    left = [p for p in leftovers(corpus.root) if not any(a in p for a in allow)]
    assert not left, f"temporary files left: {left}"
    return out


def batch_inputs(corpus) -> list:
    """Everything that must go through a batch: the evidence folder (walked), the twins, and what a folder walk
    skips (named explicitly): files that are not regular files, a .gif (not a walked ending), the leading-dash name."""
    return [corpus.evidence, corpus.root / "twins", *corpus.special, *corpus.files["dec-bomb-gif"], Path("./-r.jpg")]


def results_by_file(report: Path) -> dict[str, dict]:
    doc = json.loads(report.read_text(encoding="utf-8"))
    return {os.path.abspath(recorded_path(r["input"])): r for r in doc["results"]}


def assert_outcomes(corpus, results: dict[str, dict], *, strict_ok: bool = True, cases=CASES) -> None:
    """Each decoding / name / file-type case as the corpus expects it; the good images ok."""
    for g in corpus.good:
        assert results[os.path.abspath(g)]["status"] == "ok", results[os.path.abspath(g)]
    for case in cases:
        for f in corpus.files.get(case.id, []):
            r = results.get(os.path.abspath(f))
            assert r is not None, f"{case.id}: {f} has no result"
            if case.expect == "error":
                assert r["status"] == "error", (case.id, r)
                assert r["error"]["message"] and r["error"]["type"], (case.id, r)
            elif case.expect == "ok" and strict_ok:
                assert r["status"] == "ok", (case.id, r)


@pytest.fixture(scope="module")
def identify_report(corpus):
    rep = corpus.root / "out" / "identify.json"
    res = run_cli("identify", *batch_inputs(corpus), "--library", corpus.library, "--no-model", "-j", "1", "-q",
                  "-r", rep, cwd=corpus.evidence)  # fmt: skip
    return res, rep


def test_docs_table_has_one_row_per_case():
    doc = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    section = doc.split("## What happens to bad input", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.M)
    assert len(rows) == len(set(rows)), "a case is listed twice"
    assert sorted(rows) == sorted(CASE_IDS)
    assert len(CASE_IDS) >= 40


def test_identify_batch(corpus, identify_report):
    res, rep = identify_report
    check_run(corpus, res, {1})
    results = results_by_file(rep)
    assert_outcomes(corpus, results)
    bomb = results[os.path.abspath(corpus.files["dec-bomb-png-1bit"][0])]
    assert "decompression bomb" in bomb["error"]["message"] and "before decoding" in bomb["error"]["message"]
    fifo = results[os.path.abspath(corpus.files["type-fifo"][0])]
    assert "named pipe" in fifo["error"]["message"]
    weird = results[os.path.abspath(corpus.files["name-not-utf8"][0])]
    assert weird["input"]["path"].endswith("bad\\xffname.jpg") and bytes.fromhex(weird["input"]["path_hex"]).endswith(b"bad\xffname.jpg")
    # a right answer for the good images, not just "no crash"
    assert all(results[os.path.abspath(g)]["decision"]["device"] == "SynthCam_A" for g in corpus.good)


def test_extract_batch(corpus):
    out = corpus.root / "out" / "extract"
    res = run_cli("extract", *batch_inputs(corpus), "-o", out, "-j", "2", "-q", "--no-png", "-r", out.with_suffix(".json"),
                  cwd=corpus.evidence)  # fmt: skip
    check_run(corpus, res, {1})
    results = results_by_file(out.with_suffix(".json"))
    assert_outcomes(corpus, results)
    twins = [results[os.path.abspath(f)]["outputs"]["residual_npy"] for f in corpus.files["name-twins"]]
    assert len(set(twins)) == 2 and all(Path(t).is_file() for t in twins), twins
    n_ok = sum(r["status"] == "ok" for r in results.values())
    assert len(list(out.glob("*.residual.npy"))) == n_ok


def test_anonymize_batch(corpus):
    out = corpus.root / "out" / "anonymize"
    res = run_cli("anonymize", *batch_inputs(corpus), "-o", out, "-m", "median", "--judges", "none", "-j", "1", "-q",
                  "-r", out.with_suffix(".json"), cwd=corpus.evidence)  # fmt: skip
    check_run(corpus, res, {1})
    results = results_by_file(out.with_suffix(".json"))
    assert_outcomes(corpus, results)
    for case in ("dec-tiny-1x1", "dec-strip-4000x8"):  # refused as identify refuses them
        r = results[os.path.abspath(corpus.files[case][0])]
        assert "too small" in r["error"]["message"]
    twins = [results[os.path.abspath(f)]["output"]["path"] for f in corpus.files["name-twins"]]
    assert len(set(twins)) == 2


def test_profile_batch(corpus):
    """profile reads the whole hostile batch: every bad file is its own error, the good ones make the profile."""
    out = corpus.root / "out" / "profile.npz"
    res = run_cli("profile", *batch_inputs(corpus), "-o", out, "--name", "Synth Cam", "--min-photos", "2", "-q",
                  "-r", out.with_suffix(".json"), cwd=corpus.evidence)  # fmt: skip
    check_run(corpus, res, {0, 1})
    results = results_by_file(out.with_suffix(".json"))
    assert_outcomes(corpus, results, strict_ok=False)  # grey or small readable files are left out with a reason
    assert out.is_file() and all(results[os.path.abspath(g)]["status"] == "ok" for g in corpus.good)


def test_transplant_batch(corpus):
    out = corpus.root / "out" / "transplant"
    res = run_cli("anonymize", *batch_inputs(corpus), "-o", out, "--target", "Canon IXUS 125 HS", "--judges", "none",
                  "-j", "1", "-q", "-r", out.with_suffix(".json"), cwd=corpus.evidence)  # fmt: skip
    check_run(corpus, res, {1})
    results = results_by_file(out.with_suffix(".json"))
    assert_outcomes(corpus, results, strict_ok=False)  # grey images have no colour traces: their own error
    assert all(results[os.path.abspath(g)]["status"] == "ok" for g in corpus.good)


def test_enroll_batch(corpus):
    lib = corpus.root / "out" / "enrolled"
    res = run_cli("enroll", corpus.flat, *batch_inputs(corpus), "-n", "X", "-l", lib, "-j", "1", "-q",
                  "-r", lib.with_suffix(".json"), cwd=corpus.evidence)  # fmt: skip
    check_run(corpus, res, {1})
    results = results_by_file(lib.with_suffix(".json"))
    assert_outcomes(corpus, results, strict_ok=False)  # odd-but-readable files may be left out of a fingerprint
    assert (lib / "devices" / "X" / "entry.json").is_file()


def test_cluster_batch(corpus):
    rep = corpus.root / "out" / "cluster.json"
    res = run_cli("cluster", *batch_inputs(corpus), "-j", "1", "-q", "-r", rep, cwd=corpus.evidence)  # fmt: skip
    check_run(corpus, res, {1})
    results = results_by_file(rep)
    assert_outcomes(corpus, results)
    doc = json.loads(rep.read_text(encoding="utf-8"))
    clustered = {os.path.abspath(recorded_path(p)) for g in doc["run"]["clusters"].values() for c in g["clusters"] for p in c["photos"]}
    assert clustered == {f for f, r in results.items() if r["status"] == "ok"}  # every readable photo, once
    assert not rep.with_name(rep.name + ".residuals").exists()  # the residual store is emptied after the report


def test_verify_batch(corpus):
    res = run_cli("verify", corpus.evidence, corpus.flat, "--no-model", "-j", "1", "-q",
                  "-r", corpus.root / "out" / "verify.json", cwd=corpus.root)  # fmt: skip
    check_run(corpus, res, {1})
    results = results_by_file(corpus.root / "out" / "verify.json")
    walked = [c for c in CASES if (c.group == "decoding" and c.id != "dec-bomb-gif") or c.id in ("name-not-utf8", "name-long")]
    assert_outcomes(corpus, results, strict_ok=False, cases=walked)
    doc = json.loads((corpus.root / "out" / "verify.json").read_text(encoding="utf-8"))
    assert doc["summary"]["decision"]["same_device"] is True
    # a named pipe as a whole set: one line, no hang
    res = run_cli("verify", corpus.files["type-fifo"][0], corpus.flat, "--no-model", "-j", "1", "-q",
                  "-r", corpus.root / "out" / "verify_fifo.json", cwd=corpus.root)  # fmt: skip
    out = check_run(corpus, res, {2})
    assert "no image of set A" in out


def test_evaluate_reports(corpus, identify_report):
    _, rep = identify_report
    garbage = corpus.root / "out" / "garbage.json"
    garbage.write_bytes(b"\x00\xffnot json")
    truncated = corpus.root / "out" / "truncated.json"
    truncated.write_bytes(rep.read_bytes()[: rep.stat().st_size // 2])
    corpus.before = snapshot(corpus.root)
    res = run_cli("evaluate", rep, garbage, truncated, "--truth", corpus.root / "evidence", "-o",
                  corpus.root / "out" / "eval", "--no-plots", "-q", cwd=corpus.root)  # fmt: skip
    check_run(corpus, res, {1})
    doc = json.loads((corpus.root / "out" / "eval" / "report.json").read_text(encoding="utf-8"))
    status = {Path(r["input"]["path"]).name: r["status"] for r in doc["results"]}
    assert status == {"identify.json": "ok", "garbage.json": "error", "truncated.json": "error"}


def test_evaluate_verification(corpus):
    """Pairs drawn from a data set holding the hostile files: a pair with a bad image is that pair's error."""
    out = corpus.root / "out" / "everif"
    res = run_cli("evaluate", "verification", corpus.root / "evidence", "--set-sizes", "1,2", "--pairs", "12",
                  "--seed", "0", "--model-threads", "1", "-o", out, "-q", cwd=corpus.root)  # fmt: skip
    check_run(corpus, res, {1})
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    errors = [r["error"] for r in doc["results"] if r["status"] == "error"]
    assert errors and all(e["type"] in ("InputError", "ParameterError", "SizeMismatchError") for e in errors), errors
    assert any(r["status"] == "ok" for r in doc["results"])


def _output_path_cases(c):
    ev, out = c.evidence, c.root / "out"
    folder = out / "existing_folder"
    folder.mkdir(exist_ok=True)
    journal_dir = out / "j.json.partial.jsonl"
    journal_dir.mkdir(exist_ok=True)
    g = c.good[0]
    lib = ["--library", c.library, "--no-model", "-q"]
    return {
        "out-report-is-input": (["identify", g, *lib, "-r", g], "one of the inputs"),
        "out-verify-report-is-input": (["verify", g, c.flat, "--no-model", "-q", "-r", g], "one of the inputs"),
        "out-report-existing-folder": (["identify", g, *lib, "-r", folder], "existing folder"),
        "out-report-unwritable": (["identify", g, *lib, "-r", "/proc/x.json"], "cannot write"),
        "out-report-parent-is-file": (["identify", g, *lib, "-r", g / "x.json"], "not a folder"),
        "out-journal-is-folder": (["identify", g, *lib, "-r", out / "j.json"], "existing folder"),
        "out-report-overwrites-library": (["identify", g, *lib, "-r", c.library / "library.json"],
                                          "would overwrite a file inside the input folder"),
        "out-folder-is-input-folder": (["extract", ev, "-o", ev, "-q", "-r", out / "x.json"], "inside the input folder"),
        "out-folder-inside-input": (["extract", ev, "-o", ev / "sub", "-q", "-r", out / "x.json"], "inside the input"),
        "out-folder-existing-file": (["extract", g, "-o", c.flat / "flat0.jpg", "-q", "-r", out / "x.json"], "existing file"),
        "out-folder-unwritable": (["extract", g, "-o", "/proc/x", "-q", "-r", out / "x.json"], "cannot write"),
        "out-anonymize-inside-input": (["anonymize", ev, "-o", ev / "anon", "-m", "median", "-q", "-r", out / "x.json"],
                                       "inside the input folder"),
        "out-library-inside-input": (["enroll", c.flat, "-n", "Y", "-l", c.flat / "lib", "-q", "-r", out / "x.json"],
                                     "inside the input folder"),
        "out-cluster-store-inside-input": (["cluster", ev, "--store", ev / "res", "-q", "-r", out / "x.json"],
                                           "--store"),
        "out-cluster-enroll-inside-input": (["cluster", ev, "--enroll", ev / "lib", "-q", "-r", out / "x.json"],
                                            "--enroll"),
        "out-evaluate-inside-input": (["evaluate", out / "identify.json", "--truth", c.root / "evidence", "-o",
                                       c.root / "evidence" / "eval", "-q"], "inside the input folder"),
    }  # fmt: skip


OUTPUT_CASES = [c.id for c in CASES if c.group == "output paths"]


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_output_path_refused_before_work(corpus, case):
    args, message = _output_path_cases(corpus)[case]
    corpus.before = snapshot(corpus.root)
    started = time.perf_counter()
    res = run_cli(*args, cwd=corpus.root)
    out = check_run(corpus, res, {2}, allow=("j.json.partial.jsonl",))
    lines = [line for line in res.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], out
    assert not (corpus.root / "out" / "x.json").exists() and not (corpus.evidence / "sub").exists()
    assert time.perf_counter() - started < 60


def test_library_tampering(corpus, tmp_path):
    import numpy as np

    from camforensics.io.library import FingerprintLibrary

    lib = tmp_path / "lib"
    shutil.copytree(corpus.library, lib)
    fl = FingerprintLibrary(lib)
    k = fl.entry("SynthCam_A").load()
    for name in ("B_fp", "C_entry", "D_digest"):
        fl.add(name, k[::-1].copy(), meta={"n_images": 5})
    fp = lib / "devices" / "B_fp" / "fingerprint.npy"  # lib-corrupt-fingerprint
    data = bytearray(fp.read_bytes())
    data[-8:] = b"\x7f" * 8
    fp.write_bytes(bytes(data))
    (lib / "devices" / "C_entry" / "entry.json").write_text("{not json")  # lib-malformed-entry
    dg = lib / "devices" / "D_digest" / "digest.npy"  # lib-corrupt-digest
    d = np.load(dg)
    d[:4] ^= 0xFF
    np.save(dg, d)

    rep = tmp_path / "identify.json"
    res = run_cli("identify", *corpus.good, "--library", lib, "--no-model", "-j", "1", "-q", "-r", rep, cwd=tmp_path)
    assert "Traceback" not in text(res) and res.returncode == 0, text(res)
    doc = json.loads(rep.read_text())
    assert all(r["decision"]["device"] == "SynthCam_A" for r in doc["results"])  # the intact entries still used
    skipped = {s["name"]: s["reason"] for s in doc["run"]["library"]["skipped_entries"]}
    assert set(skipped) == {"B_fp", "C_entry"} and "corrupted" in skipped["B_fp"]
    assert all(r["library_warnings"] for r in doc["results"])

    res = run_cli("library", "check", lib, cwd=tmp_path)
    out = text(res)
    assert "Traceback" not in out and res.returncode == 1
    for name in ("B_fp", "C_entry", "D_digest"):
        assert re.search(rf"corrupt\s+{name}\b", out), out
    assert "digest.npy has sha256" in out and re.search(r"ok\s+SynthCam_A", out)

    (lib / "library.json").unlink()  # lib-missing-header
    res = run_cli("identify", *corpus.good, "--library", lib, "--no-model", "-q", "-r", tmp_path / "r2.json", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in text(res) and "no library.json" in text(res)
    assert not (tmp_path / "r2.json").exists()


def test_model_tampering(corpus, tmp_path):
    import hashlib

    models = tmp_path / "models"
    models.mkdir()
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    name = manifest["defaults"].get("camera-model-attribution") or next(
        n for n, m in manifest["models"].items() if m["task"] == "camera-model-attribution"
    )
    entry = manifest["models"][name]
    garbage = os.urandom(4096)
    (models / entry["file"]).write_bytes(garbage)
    entry["sha256"] = hashlib.sha256(garbage).hexdigest()
    entry["size_bytes"] = len(garbage)
    manifest["models"] = {name: entry}
    manifest["defaults"] = {k: v for k, v in manifest["defaults"].items() if v == name}
    (models / "manifest.json").write_text(json.dumps(manifest))
    args = ["identify", *corpus.good, "--models-dir", models, "-m", name, "-q", "-r", tmp_path / "m.json"]
    res = run_cli(*args, cwd=tmp_path)  # model-garbage-matching-sha
    lines = res.stderr.decode().strip().splitlines()
    assert res.returncode == 2 and "Traceback" not in text(res) and len(lines) == 1, text(res)
    assert "not a usable ONNX model" in lines[0] and name in lines[0]
    (models / entry["file"]).write_bytes(garbage[:-1] + b"x")  # model-sha-mismatch
    res = run_cli(*args, cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in text(res) and "modified or replaced" in text(res)
    assert not (tmp_path / "m.json").exists()


def test_interrupted_extract_leaves_no_temporaries_and_resumes(corpus, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) in a 2-worker extract."""

    import synth
    from hostile_corpus import jpeg_bytes

    src = tmp_path / "many"
    src.mkdir()
    k = synth.make_prnu((512, 512), 3)
    base = jpeg_bytes(synth.shoot(k, 1))
    for i in range(120):
        (src / f"img{i:03d}.jpg").write_bytes(base[:-2] + bytes([i]) + b"\xff\xd9")  # distinct files
    out, rep = tmp_path / "res", tmp_path / "res.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    argv = [sys.executable, "-m", "camforensics", "extract", str(src), "-o", str(out), "-j", "2", "-q", "-r", str(rep)]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    journal = Path(str(rep) + ".partial.jsonl")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and len(list(out.glob("*.npy"))) >= 6:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    msg = (stdout + stderr).decode()
    assert proc.returncode == 130 and "Traceback" not in msg, msg
    assert "--resume" in msg and journal.is_file()
    assert not [p for p in leftovers(tmp_path) if not p.endswith(".partial.jsonl")], leftovers(tmp_path)
    res = run_cli("extract", src, "-o", out, "-j", "2", "-q", "-r", rep, "--resume", cwd=tmp_path)
    assert res.returncode == 0 and "Traceback" not in text(res), text(res)
    doc = json.loads(rep.read_text())
    assert doc["summary"]["n_ok"] == 120 and doc["run"]["execution"]["n_resumed"] >= 1
    assert not leftovers(tmp_path) and len(list(out.glob("*.residual.npy"))) == 120


def _peak_rss_mb(args, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    """Peak resident memory (MB) of one command run in its own process (ru_maxrss of that child alone)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    argv = [sys.executable, "-m", "camforensics", *[os.fspath(a) for a in args]]
    with open(cwd / "peak.out", "w+b") as out, open(cwd / "peak.err", "w+b") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (ru_maxrss in KiB on Linux)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return usage.ru_maxrss / 1024.0, subprocess.CompletedProcess(argv, code, out.read(), err.read())


MEMORY_BOUND_MB = 300.0


def test_bombs_refused_from_header_within_memory_bound(corpus, tmp_path):
    """No input raises peak memory above 300 MB beyond what the largest accepted image needs.

    The largest image accepted under --max-pixels 4000000 (2000x2000) is the baseline; each bomb runs through the
    same command alone. Figures are printed (pytest -s) for the record.
    """
    import numpy as np

    from hostile_corpus import jpeg_bytes

    largest = tmp_path / "largest.jpg"
    rng = np.random.default_rng(1)
    largest.write_bytes(jpeg_bytes(rng.integers(0, 256, (2000, 2000, 3), dtype=np.uint8), quality=90))
    cmd = ["extract", "--no-png", "-j", "1", "-q", "--max-pixels", "4000000", "-o"]
    base, res = _peak_rss_mb([*cmd, tmp_path / "o0", "-r", tmp_path / "o0.json", largest], tmp_path)
    assert res.returncode == 0, text(res)
    figures = {"largest accepted (2000x2000)": base}
    for case in ("dec-bomb-png-1bit", "dec-bomb-png-8bit", "dec-bomb-jpeg", "dec-bomb-tiff", "dec-bomb-webp",
                 "dec-bomb-gif", "dec-bomb-bmp"):  # fmt: skip
        bomb = corpus.files[case][0]
        for limit in ("4000000", "250000000") if "png" in case else ("250000000",):  # this test's limit, the default
            args = ["extract", "--no-png", "-j", "1", "-q", "--max-pixels", limit, "-o", tmp_path / f"o_{case}",
                    "-r", tmp_path / f"{case}.json", bomb]  # fmt: skip
            peak, res = _peak_rss_mb(args, tmp_path)
            assert res.returncode == 1 and "Traceback" not in text(res), text(res)
            doc = json.loads((tmp_path / f"{case}.json").read_text())
            assert "exceeds" in doc["results"][0]["error"]["message"], doc["results"][0]
            assert peak <= base + MEMORY_BOUND_MB, (case, limit, peak, base)
            figures[f"{case} (--max-pixels {limit})"] = peak
    print("\npeak RSS, MB: " + "; ".join(f"{k}: {v:.0f}" for k, v in figures.items()))
    # a refused bomb costs no more than the command's own start (the baseline's decode is on top of that)
    assert max(v for k, v in figures.items() if k.startswith("dec-")) < base + 50

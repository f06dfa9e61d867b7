"""Parallel, streaming and resumable batches: the same answers wherever the work runs."""

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.core.fingerprint import FingerprintAccumulator
from camforensics.core.params import FingerprintParams, MatchParams, ResidualParams
from camforensics.errors import CamforensicsError, ParameterError, SizeMismatchError
from camforensics.pipelines import identify as identify_mod
from camforensics.pipelines.enroll import enroll_device
from camforensics.pipelines.executor import IN_PROCESS, Execution, Executor
from camforensics.pipelines.extract import extract_residuals
from camforensics.pipelines.identify import identify_images
from camforensics.pipelines.verify import verify_sets
from camforensics.reports.journal import journal_path_for

TWO = Execution(workers=2, in_flight=3)  # a small in-flight window also exercises the re-ordering


@pytest.fixture(scope="module")
def library(device_tree, tmp_path_factory):
    lib = tmp_path_factory.mktemp("plib") / "lib"
    for name in ("cam_a", "cam_b", "cam_c"):
        _, entry = enroll_device([device_tree / name / "flat"], name=name, library=lib)
        assert entry is not None
    return lib


@pytest.fixture(scope="module")
def queries(device_tree, tmp_path_factory):
    """The 9 natural photos plus one unreadable file, as a list of paths."""
    bad = tmp_path_factory.mktemp("bad") / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    return [device_tree / d / "nat" for d in ("cam_a", "cam_b", "cam_c")] + [bad]


def _same_results(a, b):
    ra, rb = list(a.iter_results()), list(b.iter_results())
    assert [r["input"]["path"] for r in ra] == [r["input"]["path"] for r in rb]
    for x, y in zip(ra, rb):
        assert x["status"] == y["status"]
        if x["status"] != "ok":
            assert x["error"] == y["error"]
            continue
        assert x["decision"]["device"] == y["decision"]["device"] and x["matches"] == y["matches"]
        for cx, cy in zip(x["candidates"], y["candidates"]):
            assert cx["device"] == cy["device"] and cx["rotation"] == cy["rotation"]
            assert cx["pce"] == pytest.approx(cy["pce"], rel=1e-6)


def test_merge_of_accumulators_equals_one_accumulator(device_images):
    images = device_images["cam_a"]["flat"]
    whole = FingerprintAccumulator()
    for img in images:
        whole.add(img)
    parts = [FingerprintAccumulator(), FingerprintAccumulator(), FingerprintAccumulator()]
    for i, img in enumerate(images):
        parts[i % 2].add(img)
    merged = FingerprintAccumulator()
    for p in parts:  # the third is empty: merging it changes nothing
        merged.merge(p)
    assert merged.n_images == whole.n_images == 6
    a, b = merged.finish().k, whole.finish().k
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * float(np.abs(b).max()))
    small = FingerprintAccumulator()
    small.add(images[0][:128, :128])
    with pytest.raises(SizeMismatchError, match="cannot merge"):
        merged.merge(small)
    with pytest.raises(ParameterError, match="different parameters"):
        merged.merge(FingerprintAccumulator(params=FingerprintParams(saturation_level=200.0)))


def test_process_pool_gives_the_in_process_results_in_input_order(library, queries):
    one = identify_images(queries, library=library)
    two = identify_images(queries, library=library, execution=TWO)
    _same_results(one, two)
    assert one.summary == two.summary and one.summary["n_failed"] == 1
    assert two.context["execution"] == {
        "executor": "processes",
        "workers": 2,
        "device": {"device": "cpu", "engine": "numpy"},
        "n_resumed": 0,
    }
    assert two.context["library"]["entries_used"] == one.context["library"]["entries_used"]


def test_parallel_enroll_and_verify_merge_worker_shares(device_tree, tmp_path):
    flat = [device_tree / "cam_b" / "flat"]
    rep1, e1 = enroll_device(flat, name="b", library=tmp_path / "l1")
    rep2, e2 = enroll_device(flat, name="b", library=tmp_path / "l2", execution=TWO)
    assert e1.meta["n_images"] == e2.meta["n_images"] == 6
    assert [i["path"] for i in e1.meta["inputs"]] == [i["path"] for i in e2.meta["inputs"]]
    k1, k2 = e1.load(), e2.load()
    np.testing.assert_allclose(k2, k1, rtol=1e-4, atol=1e-6 * float(np.abs(k1).max()))
    v1 = verify_sets([device_tree / "cam_a" / "flat"], [device_tree / "cam_a" / "nat"])
    v2 = verify_sets([device_tree / "cam_a" / "flat"], [device_tree / "cam_a" / "nat"], execution=TWO)
    d1, d2 = v1.summary["decision"], v2.summary["decision"]
    assert d1["same_device"] and d2["same_device"] and d2["pce"] == pytest.approx(d1["pce"], rel=1e-3)
    assert [r["vs_other_set"]["pce"] for r in v2.results] == pytest.approx([r["vs_other_set"]["pce"] for r in v1.results], rel=1e-3)


def _doc_without_timing(path):
    doc = json.loads(Path(path).read_text())
    for key in ("started", "finished", "duration_s", "execution", "argv"):
        doc["run"].pop(key)
    return doc


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_run_resumes_without_recomputing_finished_files(library, queries, tmp_path, monkeypatch, workers):
    report = tmp_path / "id.json"
    journal = journal_path_for(report)
    done = []

    def stop_after_4():
        done.append(1)
        if len(done) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        identify_images(queries, library=library, journal=journal, tick=stop_after_4, execution=Execution(workers=workers))
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    assert sum(x["record"] == "result" for x in lines) == 4  # results are journaled in input order as they finish

    # Resume in this process, counting the files actually computed.
    calls = []
    real = identify_mod.identify_one

    def counting(path, state, record):
        calls.append(Path(path).name)
        real(path, state, record)

    monkeypatch.setattr(identify_mod, "identify_one", counting)
    with pytest.raises(CamforensicsError, match=r"match\.threshold: 60\.0 -> 40\.0"):
        identify_images(queries, library=library, journal=journal, resume=True, match=MatchParams(threshold=40.0))
    rep = identify_images(queries, library=library, journal=journal, resume=True)
    assert len(calls) == 10 - 4 and "broken.jpg" in calls  # 6 left, the failed one among them
    assert rep.context["execution"]["n_resumed"] == 4
    rep.write(report)
    rep.journal.discard()
    assert not journal.exists()

    monkeypatch.setattr(identify_mod, "identify_one", real)
    whole = identify_images(queries, library=library)
    whole.write(tmp_path / "whole.json")
    a, b = _doc_without_timing(report), _doc_without_timing(tmp_path / "whole.json")
    for r in a["results"] + b["results"]:  # sha256 and everything else must agree; timings are not in results
        r.pop("timing", None)
    assert a == b


def test_failed_files_are_retried_and_changed_files_recomputed(library, device_tree, tmp_path, monkeypatch):
    q = tmp_path / "q"
    q.mkdir()
    for j in range(3):
        (q / f"{j}.jpg").write_bytes((device_tree / "cam_c" / "nat" / f"nat {j}.jpg").read_bytes())
    journal = tmp_path / "j.partial.jsonl"
    identify_images([q], library=library, journal=journal)
    os.utime(q / "1.jpg", ns=(1, 1))  # "modified" since
    calls = []
    real = identify_mod.identify_one
    monkeypatch.setattr(identify_mod, "identify_one", lambda p, s, r: (calls.append(Path(p).name), real(p, s, r)))
    rep = identify_images([q], library=library, journal=journal, resume=True)
    assert calls == ["1.jpg"] and rep.context["execution"]["n_resumed"] == 2
    assert [r["input"]["path"] for r in rep.iter_results()] == [str(q / f"{j}.jpg") for j in range(3)]
    rep.journal.discard()


def test_resumed_extract_redoes_files_whose_outputs_were_lost(device_tree, tmp_path, monkeypatch):
    import camforensics.pipelines.extract as extract_mod

    src = device_tree / "cam_a" / "nat"
    journal = tmp_path / "x.json.partial.jsonl"
    first = extract_residuals([src], tmp_path / "out", save_pictures=False, journal=journal)
    outputs = [r["outputs"]["residual_npy"] for r in first.iter_results()]
    Path(outputs[1]).unlink()  # lost after the run (deleted, disk cleaned, ...)
    calls = []
    real = extract_mod.extract_one
    monkeypatch.setattr(extract_mod, "extract_one", lambda p, s, r: (calls.append(Path(p).name), real(p, s, r)))
    rep = extract_residuals([src], tmp_path / "out", save_pictures=False, journal=journal, resume=True)
    assert calls == [Path(sorted(src.iterdir())[1]).name] and rep.context["execution"]["n_resumed"] == 2
    assert all(Path(p).is_file() for p in outputs)
    rep.journal.discard()


def test_streaming_report_keeps_no_results_in_memory(tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(300):
        cv2.imwrite(str(src / f"{i:03d}.png"), rng.integers(0, 255, (112, 112), dtype=np.uint8))
    journal = tmp_path / "x.json.partial.jsonl"
    rep = extract_residuals([src], tmp_path / "out", save_arrays=False, save_pictures=False, journal=journal,
                            params=ResidualParams(levels=1, windows=(3,)))
    assert rep.streaming and rep._results == [] and rep.n_inputs == 300
    with pytest.raises(CamforensicsError, match="iter_results"):
        rep.results
    assert journal.read_text().count('"record": "result"') == 300
    [path] = rep.write(tmp_path / "x.jsonl", fmt="jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == 302 and json.loads(lines[1])["input"]["path"].endswith("000.png")
    assert json.loads(lines[-1])["n_ok"] == 300
    # The json assembled from the journal is exactly what the in-memory report would have written.
    assert rep.to_text(fmt="json") == json.dumps(rep.document(), indent=2) + "\n"


def _die_on_marked_file(path, state, record):
    if "die" in Path(path).name:
        os._exit(3)  # a crash in native code, as far as the pool can tell
    record["size"] = Path(path).stat().st_size


def test_a_worker_that_dies_fails_its_file_only(tmp_path):
    files = []
    for name in ("a.txt", "die.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(name)
        files.append(tmp_path / name)
    with Executor(_die_on_marked_file, dict, execution=TWO) as ex:
        results = [r for r, _ in ex.map(files)]
        with pytest.raises(CamforensicsError, match="died while processing"):
            ex.harvest()
    assert [r["status"] for r in results] == ["ok", "error", "ok", "ok"]
    assert "died" in results[1]["error"]["message"] and results[3]["size"] == 5


def test_dask_cluster_gives_the_in_process_decisions(library, queries, device_tree, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        on_dask = Execution(scheduler=cluster.scheduler_address)
        rep = identify_images(queries, library=library, execution=on_dask)
        _, entry = enroll_device([device_tree / "cam_a" / "flat"], name="a", library=tmp_path / "l", execution=on_dask)
    _same_results(identify_images(queries, library=library), rep)
    assert rep.context["execution"]["executor"] == "dask"
    assert entry.meta["n_images"] == 6  # shares of both worker threads merged


runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_cli_resume_and_scheduler_errors(library, device_tree, tmp_path, monkeypatch):
    nat = device_tree / "cam_a" / "nat"
    report = tmp_path / "r.json"
    stops = []

    def stop_after_1():
        stops.append(1)
        if len(stops) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        identify_images([nat], library=library, journal=journal_path_for(report), tick=stop_after_1)
    res = invoke("identify", nat, "-l", library, "-r", report, "--resume", "--no-model", "--workers", "2", "-q")
    assert res.exit_code == 0, res.output
    doc = json.loads(report.read_text())
    assert doc["run"]["execution"] == {
        "executor": "processes",
        "workers": 2,
        "device": {"device": "cpu", "engine": "numpy"},
        "n_resumed": 1,
    }
    assert doc["summary"]["n_matched"] == 3 and not journal_path_for(report).exists()
    res = invoke("identify", nat, "-l", library, "--resume")
    assert res.exit_code == 2 and "--resume needs --report" in res.output
    res = invoke("extract", nat, "-o", tmp_path / "o", "-r", tmp_path / "none.json", "--resume")
    assert res.exit_code == 2 and "nothing to resume" in res.output
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    res = invoke("identify", nat, "-l", library, "-r", tmp_path / "d.json", "--scheduler", "tcp://127.0.0.1:1")
    assert res.exit_code == 2 and "camforensics[dask]" in res.output


def test_identify_and_anonymize_list_the_library_once_per_process(library, queries, tmp_path, monkeypatch):
    """The caller opens and lists the library; the workers' index is built from that listing (in this process:
    no second listing at all)."""
    from camforensics.io.library import FingerprintLibrary
    from camforensics.pipelines.anonymize.baselines import BaselineOptions
    from camforensics.pipelines.anonymize.batch import AnonymizeParams, anonymize_images

    listed = []
    names = FingerprintLibrary.names
    monkeypatch.setattr(FingerprintLibrary, "names", lambda self: listed.append(self.root) or names(self))
    rep = identify_images(queries[:1], library=library, execution=IN_PROCESS)
    assert listed == [library] and rep.summary["n_matched"] == 3
    listed.clear()
    params = AnonymizeParams(BaselineOptions("median"), verify_library=str(library))
    rep = anonymize_images(queries[:1], tmp_path / "out", params=params, execution=IN_PROCESS)
    assert listed == [library] and rep.summary["n_ok"] == 3
    assert all(len(r["library_check"]) == 3 for r in rep.iter_results())


def test_an_in_process_identify_runs_on_the_state_its_caller_built(library, queries, monkeypatch):
    """The library index (and model session) built for the checks before the run serve an in-process run; a worker
    gets the setup without them (they are never pickled) and builds its own."""
    import pickle

    from camforensics.pipelines import identify as pipeline

    built, setups = [], []
    index_init, run_tasks = pipeline.FingerprintIndex.__init__, pipeline.run_tasks
    monkeypatch.setattr(pipeline.FingerprintIndex, "__init__", lambda self, *a, **k: built.append(1) or index_init(self, *a, **k))
    monkeypatch.setattr(pipeline, "run_tasks", lambda files, task, setup, *a, **k: setups.append(setup) or run_tasks(files, task, setup, *a, **k))
    rep = identify_images(queries[:1], library=library, execution=IN_PROCESS)
    assert len(built) == 1 and rep.summary["n_matched"] == 3
    setup = setups[0]
    assert setup.built is not None and setup() is setup.built
    copy = pickle.loads(pickle.dumps(setup))
    assert copy.built is None and copy == setup
    assert isinstance(copy().index, pipeline.FingerprintIndex) and len(built) == 2  # a worker's own

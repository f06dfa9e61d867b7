"""Blind clustering: the pure core (camforensics.core.cluster), the cluster pipeline and command, evaluate clustering."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import norm

import synth
from camforensics.core.cluster import ClusterParams, between_clusters, cluster_gram, fold_variants, gram_blocks
from camforensics.core.cluster import agglomerate, attach_singletons, cluster_row, equalise_spectrum, normalise_vector
from camforensics.core.cluster import photo_spreads, reassign, scores_to_clusters, threshold_for
from camforensics.errors import ParameterError


def run_cli(*args):
    from typer.testing import CliRunner

    from camforensics.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return np.stack([normalise_vector(r) for r in x])


def _devices(n_devices: int, per_device: int, d: int, strength: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    k = rng.standard_normal((n_devices, d))
    labels = np.repeat(np.arange(n_devices), per_device)
    x = strength * k[labels] + rng.standard_normal((labels.size, d))
    return _unit_rows(x), labels


def test_threshold_is_the_bonferroni_gaussian_quantile():
    t = threshold_for(1e-3, 100, 2)
    assert t == pytest.approx(norm.isf(1e-3 / (100 * 99 * 2)), rel=1e-9)
    assert threshold_for(1e-3, 1000) > threshold_for(1e-3, 100) > threshold_for(1e-2, 100)
    with pytest.raises(ParameterError):
        ClusterParams(p_fa=0)


def test_gram_blocks_equals_the_matrix_product():
    x = np.random.default_rng(1).standard_normal((37, 50)).astype(np.float32)
    g = gram_blocks(lambda a, b: x[a:b], 37, block=8)
    assert np.allclose(g, x @ x.T, atol=1e-4)
    assert np.array_equal(g, g.T)


def test_recovers_devices_without_their_number_and_keeps_strangers_alone():
    from sklearn.metrics import adjusted_rand_score

    d = 64 * 64
    x, labels = _devices(12, 6, d, strength=0.3)  # pairwise z ~ 5.3, about the threshold: clusters carry the rest
    strangers = _unit_rows(np.random.default_rng(9).standard_normal((5, d)))
    x = np.vstack([x, strangers])
    truth = np.concatenate([labels, 100 + np.arange(5)])
    out = cluster_gram(gram_blocks(lambda a, b: x[a:b], len(x)), d)
    assert adjusted_rand_score(truth, out.labels) == 1.0
    assert len(np.unique(out.labels[-5:])) == 5 and all(np.sum(out.labels == k) == 1 for k in out.labels[-5:])
    assert np.all(np.isnan(out.scores[-5:])) and np.all(out.scores[:-5] > out.threshold)


def test_pure_noise_gives_only_singletons_and_a_unit_null_spread():
    d = 128 * 128
    x = _unit_rows(np.random.default_rng(3).standard_normal((150, d)))
    out = cluster_gram(gram_blocks(lambda a, b: x[a:b], len(x)), d, p_fa=0.05)
    assert len(np.unique(out.labels)) == 150 and not out.merges
    assert out.null_spread == pytest.approx(1.0, abs=0.05)


def test_leave_one_out_scores_match_a_direct_computation():
    d = 32 * 32
    x, labels = _devices(3, 4, d, strength=0.8, seed=5)
    g = (x @ x.T).astype(np.float64)
    ids, z = scores_to_clusters(g, labels, d)
    for i in (0, 5, 11):
        for col, k in enumerate(ids):
            others = [j for j in np.flatnonzero(labels == k) if j != i]
            f = x[others].sum(axis=0)
            assert z[i, col] == pytest.approx(math.sqrt(d) * float(x[i] @ f) / float(np.linalg.norm(f)), rel=1e-4)
    _, zb = between_clusters(g, labels, d)
    assert np.isnan(np.diagonal(zb)).all() and np.nanmax(zb) < 6


def test_reversed_row_is_the_other_quarter_turn():
    r = np.random.default_rng(0).standard_normal((6, 10))
    assert np.array_equal(np.rot90(r, 1).ravel()[::-1], np.rot90(r, 3).ravel())  # 180 degrees = reversed row-major
    g = np.array([[1.0, 0.1, 0.9], [0.1, 1.0, 0.2], [0.9, 0.2, 1.0]], np.float32)
    folded = fold_variants(g, [0, 1, 1], 2)  # photo 1 has two variants; the pair keeps the larger correlation
    assert folded[0, 1] == pytest.approx(0.9) and folded[1, 0] == pytest.approx(0.9)


def test_spectrum_equalisation_removes_a_periodic_artefact_and_keeps_the_pattern():
    rng = np.random.default_rng(0)
    grid = np.zeros((64, 64))
    grid[::8, :] = 5.0  # a strong 8-periodic pattern shared by two otherwise independent residuals
    a, b = grid + rng.standard_normal((64, 64)), grid + rng.standard_normal((64, 64))
    raw = float(normalise_vector(a) @ normalise_vector(b))
    equal = float(normalise_vector(equalise_spectrum(a)) @ normalise_vector(equalise_spectrum(b)))
    assert raw > 0.5 and abs(equal) * 64 < 6  # within the null after equalisation
    k = rng.standard_normal((64, 64))  # a broadband shared pattern is kept
    c, e = k + rng.standard_normal((64, 64)), k + rng.standard_normal((64, 64))
    assert float(normalise_vector(equalise_spectrum(c)) @ normalise_vector(equalise_spectrum(e))) > 0.4


def test_content_weighting_evens_out_textured_areas():
    rng = np.random.default_rng(1)
    residual = rng.standard_normal((64, 64)).astype(np.float32)
    residual[:, :32] *= 20  # a textured half: the scene's edges leaked into the residual
    row = cluster_row(residual).reshape(64, 64)
    left, right = np.sqrt(np.mean(row[16:48, 4:28] ** 2)), np.sqrt(np.mean(row[16:48, 36:60] ** 2))
    assert 0.7 < left / right < 1.4  # both halves carry the same energy (20x apart before)
    assert float(np.sum(row * row)) == pytest.approx(1.0, abs=1e-5) and abs(float(row.mean())) < 1e-6


def test_each_photos_null_spread_is_measured_and_keeps_a_wide_null_from_merging():
    d = 64 * 64
    rng = np.random.default_rng(4)
    mask = np.full(d, 0.15)
    mask[: d // 8] = 1.0  # 80 photos whose energy sits on the same eighth of the frame (a wide null between them)
    x = _unit_rows(np.vstack([rng.standard_normal((80, d)) * mask, rng.standard_normal((40, d))]))
    g = x @ x.T
    spreads, overall = photo_spreads(g, d)
    assert spreads[:80].mean() > 1.6 and spreads[80:].mean() < 1.3 and overall > 1.2
    t = threshold_for(1e-3, len(x))
    assert len(agglomerate(g, d, t)[1]) > 0  # the white-noise threshold merges photos that share no sensor
    out = cluster_gram(g, d)
    assert len(np.unique(out.labels)) == len(x) and not out.merges


def test_second_pass_attaches_weak_photos_to_the_fingerprint_of_their_cluster():
    d = 64 * 64
    rng = np.random.default_rng(6)
    k = rng.standard_normal((3, d))
    strong = [0.45 * k[c] + rng.standard_normal((20, d)) for c in range(3)]  # pairwise z ~ 10
    weak = [0.086 * k[c] + rng.standard_normal((2, d)) for c in range(3)]  # z ~ 2 with one photo, ~ 5 with all 20
    x = _unit_rows(np.vstack(strong + weak))
    truth = np.concatenate([np.repeat(np.arange(3), 20), np.repeat(np.arange(3), 2)])
    g = x @ x.T
    out = cluster_gram(g, d)
    assert out.threshold_attach < out.threshold - 0.5
    from sklearn.metrics import adjusted_rand_score

    first_pass = reassign(g, agglomerate(g, d, out.threshold, out.spreads)[0], d, out.threshold, spreads=out.spreads)[0]
    alone = [i for i in range(60, 66) if np.sum(first_pass == first_pass[i]) == 1]
    assert len(alone) >= 3  # under the pairwise threshold, even against the whole cluster
    assert out.n_attached >= len(alone) - 1 and adjusted_rand_score(truth, out.labels) > 0.95
    assert len(np.unique(out.labels[:60])) == 3  # no two devices merged
    lonely, n_attached, _ = attach_singletons(g, np.arange(len(x)), d, 1e-3)  # nothing to attach to: no cluster
    assert n_attached == 0 and len(np.unique(lonely)) == len(x)


# ------------------------------------------------------------------------------------------------ pipeline
def _photo_tree(tmp_path):
    """3 devices x 4 photos of 256x192, a portrait copy of device 0 (turned both ways), a stranger."""
    root = tmp_path / "photos"
    shape = (192, 256)
    truth = {}
    for dev in range(3):
        k = synth.make_prnu(shape, seed=100 + dev)
        folder = root / f"Synth_Cam_{dev}" / "nat"
        folder.mkdir(parents=True)
        for i in range(4):
            rgb = synth.shoot(k, seed=10 * dev + i)
            synth.write_jpeg(folder / f"p{i}.jpg", rgb, quality=95)
            truth[str(folder / f"p{i}.jpg")] = dev
        if dev == 0:
            for turn in (1, 3):
                synth.write_jpeg(folder / f"turned{turn}.jpg", np.ascontiguousarray(np.rot90(synth.shoot(k, seed=90 + turn), turn)), quality=95)
                truth[str(folder / f"turned{turn}.jpg")] = dev
    stranger = root / "Synth_Other_0" / "nat"
    stranger.mkdir(parents=True)
    synth.write_jpeg(stranger / "s.jpg", synth.shoot(synth.make_prnu(shape, seed=999), seed=77), quality=95)
    truth[str(stranger / "s.jpg")] = 99
    return root, truth


def _clusters_of(doc):
    return {p["path"]: (name, c["cluster"]) for name, g in doc["run"]["clusters"].items() for c in g["clusters"] for p in c["photos"]}


def test_cluster_command_groups_devices_handles_rotation_and_evaluates(tmp_path):
    root, truth = _photo_tree(tmp_path)
    rep = tmp_path / "cluster.json"
    lib = tmp_path / "lib"
    res = run_cli("cluster", root, "-j", "1", "-q", "-r", rep, "--enroll", lib)
    assert res.exit_code == 0, res.output
    doc = json.loads(rep.read_text())
    found = _clusters_of(doc)
    assert set(found) == set(truth)
    groups = {}
    for path, dev in truth.items():
        groups.setdefault(dev, set()).add(found[path])
    assert all(len(v) == 1 for v in groups.values()), groups  # each device in one cluster, rotated copies included
    assert len({next(iter(v)) for v in groups.values()}) == 4  # and no two devices together; the stranger alone
    g = doc["run"]["clusters"]["256x192"]
    assert g["orientation_variants"] == 2 and g["n_singletons"] == 1
    assert not (tmp_path / "cluster.json.residuals").exists()
    enrolled = doc["run"]["enrolled"]
    assert sorted(e["n_images"] for e in enrolled) == [4, 4, 6] or all(e["enrolled"] for e in enrolled)
    assert len(list((lib / "devices").iterdir())) == 3
    # evaluate clustering against the folder layout
    ev = tmp_path / "eval.json"
    res = run_cli("evaluate", "clustering", rep, "--truth", root, "-q", "-r", ev)
    assert res.exit_code == 0, res.output
    s = json.loads(ev.read_text())["summary"]
    assert s["adjusted_rand_index"] == 1.0 and s["purity"] == 1.0 and s["n_true_devices"] == 4
    assert s["n_clusters_2plus"] == 3 and s["merged_bodies"] == []


def test_cluster_resume_reuses_residuals(tmp_path):
    from camforensics.pipelines.cluster import cluster_photos, store_for

    root, _ = _photo_tree(tmp_path)
    rep = tmp_path / "r.json"
    journal = tmp_path / "r.json.partial.jsonl"
    first = cluster_photos([root], store=store_for(rep), journal=journal)
    first.journal.close()  # as after an interruption: the journal and the store stay
    rows = sorted(store_for(rep).glob("*.npy"))
    rows[0].unlink()  # a lost row is computed again
    again = cluster_photos([root], store=store_for(rep), journal=journal, resume=True)
    assert again.context["execution"]["n_resumed"] == first.n_inputs == len(rows)
    assert rows[0].is_file()
    assert _clusters_of({"run": {"clusters": again.context["clusters"]}}) == _clusters_of({"run": {"clusters": first.context["clusters"]}})


def test_clustering_metrics_counts_merges_and_splits():
    from camforensics.pipelines.evaluate_clustering import clustering_metrics

    m = clustering_metrics(["a", "a", "a", "b", "b", "c"], ["x", "x", "y", "x", "z", "w"])
    assert m["purity"] == pytest.approx(5 / 6) and m["inverse_purity"] == pytest.approx(4 / 6)
    assert m["merged_bodies"] == [["a", "b"]] and m["n_clusters_2plus"] == 1 and m["n_true_devices"] == 3


def test_cluster_on_a_dask_cluster_gives_the_in_process_clusters(tmp_path):
    distributed = pytest.importorskip("distributed")
    from camforensics.pipelines.cluster import cluster_photos
    from camforensics.pipelines.executor import Execution

    root, truth = _photo_tree(tmp_path)
    local = cluster_photos([root], store=tmp_path / "local")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        on_dask = cluster_photos([root], store=tmp_path / "dask", execution=Execution(scheduler=cluster.scheduler_address))
    assert on_dask.context["execution"]["executor"] == "dask"
    found = _clusters_of({"run": {"clusters": on_dask.context["clusters"]}})
    assert found == _clusters_of({"run": {"clusters": local.context["clusters"]}})
    assert len(set(found.values())) == 4 and set(found) == set(truth)


def test_digest_prefilter_gives_the_dense_clusters_with_bounded_exact_work():
    from sklearn.metrics import adjusted_rand_score

    from camforensics.core.cluster_sparse import TOP, cluster_prefiltered

    d = 64 * 64
    x, labels = _devices(40, 6, d, strength=0.45, seed=2)  # pairwise z ~ 10
    x = np.vstack([x, _unit_rows(np.random.default_rng(8).standard_normal((20, d)))]).astype(np.float32)
    truth = np.concatenate([labels, 100 + np.arange(20)])
    dense = cluster_gram(x @ x.T, d)
    sparse = cluster_prefiltered(lambda v: x[v], range(len(x)), len(x), d, p_fa=1e-3)
    assert adjusted_rand_score(truth, dense.labels) == 1.0
    assert adjusted_rand_score(truth, sparse.clustering.labels) == 1.0
    st = sparse.stats
    assert st["n_candidate_pairs"] <= len(x) * TOP and st["largest_component"] <= 12  # no giant component
    assert st["n_components"] >= 20  # the devices are found apart, then fingerprints join any fragments
    k = sparse.multi.size
    assert k == 40 and sparse.between.shape == (k, k) and np.nanmax(sparse.between) < sparse.clustering.threshold
    inside = ~np.isnan(sparse.clustering.scores)
    assert inside.sum() == 240 and np.all(sparse.clustering.scores[inside] > sparse.clustering.threshold_attach)


def test_cluster_pipeline_with_the_prefilter_matches_every_pair(tmp_path):
    from camforensics.pipelines.cluster import cluster_photos

    root, _ = _photo_tree(tmp_path)
    dense = cluster_photos([root], store=tmp_path / "a", params=ClusterParams(prefilter="off"))
    sparse = cluster_photos([root], store=tmp_path / "b", params=ClusterParams(prefilter="on"))
    found = _clusters_of({"run": {"clusters": sparse.context["clusters"]}})
    assert found == _clusters_of({"run": {"clusters": dense.context["clusters"]}})  # rotated copies included
    group = sparse.context["clusters"]["256x192"]
    assert group["prefilter"]["method"] == "sign digest" and dense.context["clusters"]["256x192"]["prefilter"] is None
    with pytest.raises(ParameterError):
        ClusterParams(prefilter="sometimes")

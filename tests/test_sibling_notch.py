"""The library search notches the fingerprints of camera models it holds more than once (issue 20)."""

from __future__ import annotations

import numpy as np
import pytest

from camforensics.core.nonunique import axis_notch
from camforensics.core.params import MatchParams
from camforensics.core.pce import spectrum_of
from camforensics.core.residual import notched_spectrum
from camforensics.errors import ParameterError
from camforensics.io.library import FingerprintLibrary
from camforensics.pipelines.search import FingerprintIndex, SearchParams, sibling_groups

H, W = 384, 512


def _bodies(seed: int = 3) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Two bodies of one model (each its own white pattern plus the model's column pattern under its vignetting)
    and a second, noisier estimate of each; plus a third device of another model."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W]
    envelope = (1 - 0.4 * ((y - H / 2) ** 2 + (x - W / 2) ** 2) / (H * H / 4 + W * W / 4)).astype(np.float32)
    columns = rng.normal(0, 1, W).astype(np.float32)[None, :] * (envelope - envelope.mean(axis=0))
    shared = 0.6 * columns / columns.std()
    bodies = [rng.normal(0, 1, (H, W)).astype(np.float32) + shared for _ in range(2)]
    noisy = [b + rng.normal(0, 3, b.shape).astype(np.float32) for b in bodies]
    other = rng.normal(0, 1, (H, W)).astype(np.float32)
    return bodies, noisy, other


def _library(tmp_path, ks: dict[str, np.ndarray], models: dict[str, tuple[str | None, str | None]]):
    lib = FingerprintLibrary(tmp_path / "lib", create=True)
    for name, k in ks.items():
        make, model = models[name]
        meta = {} if model is None else {"exif_make": make, "exif_model": model}
        lib.add(name, k, meta=meta, durable=False)
    return lib


def _rank(lib, query: np.ndarray, notch: int | None = None) -> dict[str, dict]:
    search = SearchParams(prefilter="off") if notch is None else SearchParams(prefilter="off", sibling_notch=notch)
    index = FingerprintIndex(lib, match=MatchParams(rotations="none"), search=search)
    return {c["device"]: c for c in index.rank(query, np.ones_like(query)).candidates}


@pytest.mark.parametrize("shape", [(64, 96), (63, 97)])
def test_the_notched_spectrum_is_the_spectrum_of_the_notched_fingerprint(shape):
    k = np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)
    plain = spectrum_of(k, conjugate=True)
    for width in (1, 2, 3):
        got, want = notched_spectrum(plain, width), spectrum_of(axis_notch(k, width), conjugate=True)
        np.testing.assert_allclose(got.f, want.f, atol=2e-3)
        assert got.norm == pytest.approx(want.norm, rel=1e-4) and got.norm < plain.norm
        assert got.conjugated and got.shape == plain.shape
    assert notched_spectrum(plain, 0) is plain
    assert np.abs(plain.f[1:3, 5:]).min() > 0  # the plain spectrum was not modified
    with pytest.raises(ParameterError):
        notched_spectrum(plain, -1)
    with pytest.raises(ParameterError):
        SearchParams(sibling_notch=-1)


def test_two_bodies_of_one_model_stop_matching_and_the_own_body_keeps_its_pce(tmp_path):
    bodies, noisy, other = _bodies()
    lib = _library(
        tmp_path,
        {"A_0": bodies[0], "A_1": bodies[1], "B_0": other},
        {"A_0": ("Acme", "Cam 1"), "A_1": ("ACME", " cam  1"), "B_0": ("Acme", "Cam 2")},
    )
    off, on = _rank(lib, noisy[0], notch=0), _rank(lib, noisy[0])
    assert off["A_1"]["pce"] > 60  # the shared column pattern alone makes a false match
    assert on["A_1"]["pce"] < 20
    assert on["A_0"]["pce"] >= 0.9 * off["A_0"]["pce"] and on["A_0"]["pce"] > on["A_0"]["threshold"]
    assert [on[n]["axis_notch"] for n in ("A_0", "A_1", "B_0")] == [2, 2, 0]
    assert all(c["axis_notch"] == 0 for c in off.values())
    assert on["B_0"]["pce"] == off["B_0"]["pce"]  # a model's only body is compared as it is


def test_a_library_without_siblings_gives_the_same_results_with_the_notch_on_or_off(tmp_path):
    bodies, noisy, other = _bodies(seed=5)
    lib = _library(
        tmp_path,
        {"A_0": bodies[0], "A_1": bodies[1], "B_0": other},
        # the two bodies' model is unknown (an entry enrolled without EXIF): never notched
        {"A_0": ("Acme", "Cam 1"), "A_1": (None, None), "B_0": ("Acme", "Cam 2")},
    )
    index = FingerprintIndex(lib, search=SearchParams(prefilter="off"))
    assert index.siblings == {} and index.notch == {}
    for query in (noisy[0], noisy[1], np.rot90(noisy[1]).copy()):
        on = FingerprintIndex(lib).rank(query, np.ones_like(query)).candidates
        off = FingerprintIndex(lib, search=SearchParams(sibling_notch=0)).rank(query, np.ones_like(query)).candidates
        assert on == off


def test_models_are_grouped_once_by_their_recorded_exif(tmp_path):
    bodies, _, other = _bodies()
    lib = _library(
        tmp_path,
        {"a": bodies[0], "b": bodies[1], "c": other, "d": other * 2},
        {"a": ("vivo", "iQOO U1x"), "b": ("VIVO", "iqoo u1x"), "c": (None, "iQOO U1x"), "d": ("vivo", None)},
    )
    entries = [lib.entry(n) for n in lib.names()]
    assert [e.camera_model for e in entries] == ["vivo iqoo u1x", "vivo iqoo u1x", "iqoo u1x", None]
    assert sibling_groups(entries) == {"vivo iqoo u1x": ["a", "b"]}


def test_two_simulated_bodies_of_one_model_enrolled_and_searched_through_the_pipeline(tmp_path):
    """The simulator's bodies of one model share its pipeline's row and column patterns (a false match between
    them without the notch); enrolled through enroll (EXIF make and model recorded), they are notched at search."""
    from camforensics.core.fingerprint import estimate_fingerprint
    from camforensics.io.images import load_image
    from camforensics.pipelines.enroll import enroll_device
    from camforensics.pipelines.identify import identify_images
    from camforensics.sim import SimulationSpec, simulate_corpus

    spec = SimulationSpec(n_models=1, n_devices=2, n_flat=8, n_nat=0, width=512, height=512, seed=1)
    rows = simulate_corpus(tmp_path / "corpus", spec)
    files: dict[str, list] = {}
    for r in rows:
        files.setdefault(r["device"], []).append(tmp_path / "corpus" / r["file"])
    lib_path, queries = tmp_path / "lib", {}
    for device, paths in sorted(files.items()):
        paths = sorted(paths)
        enroll_device(paths[0::2], name=device, library=lib_path)
        queries[device] = estimate_fingerprint([load_image(p).pixels for p in paths[1::2]]).k  # another estimate
    lib = FingerprintLibrary(lib_path)
    models = {lib.entry(n).camera_model for n in lib.names()}
    assert len(models) == 1 and None not in models
    for device, k in queries.items():
        off, on = _rank(lib, k, notch=0), _rank(lib, k)
        (sibling,) = set(off) - {device}
        assert on[sibling]["pce"] < 20
        assert on[device]["pce"] >= 0.9 * off[device]["pce"]
        assert on[device]["axis_notch"] == on[sibling]["axis_notch"] == 2
    first = sorted(queries)[0]
    assert _rank(lib, queries[first], notch=0)[sorted(queries)[1]]["pce"] > 60  # the false match the notch removes
    rep = identify_images([files[first][1]], library=lib_path)
    (record,) = rep.results
    assert all(c["axis_notch"] == 2 for c in record["candidates"]) and record["decision"]["device"] == first
    notch = rep.context["library"]["sibling_notch"]
    assert notch["width"] == 2 and list(notch["models"].values()) == [sorted(files)] and notch["model_unknown"] == []

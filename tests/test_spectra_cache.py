"""The library's on-disk cache of fingerprint spectra (camforensics.io.spectra): used only when verified, never
trusted when stale or damaged, never needed (read-only libraries, libraries made before it existed)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from camforensics.core.matching import Query, match_query
from camforensics.core.pce import half_turn, pce_from_spectra, pce_many_from_spectra, spectrum_of
from camforensics.errors import LibraryError
from camforensics.io import spectra
from camforensics.io.library import FingerprintLibrary
from camforensics.pipelines.search import FingerprintIndex


def _library(tmp_path, n=2, shape=(64, 96), cache=True):
    lib = FingerprintLibrary(tmp_path / "lib", create=True)
    rng = np.random.default_rng(5)
    ks = {}
    for i in range(n):
        ks[f"dev{i}"] = rng.normal(0, 1, shape).astype(np.float32)
        lib.add(f"dev{i}", ks[f"dev{i}"], meta={"n_images": 20}, cache_spectrum=cache)
    return lib, ks


def _same(a, b):
    return a.shape == b.shape and a.norm == b.norm and a.conjugated == b.conjugated and np.array_equal(a.f, b.f)


def test_enroll_writes_a_cache_equal_to_the_spectrum_of_the_fingerprint_and_leaves_the_entry_alone(tmp_path):
    lib, ks = _library(tmp_path)
    arr, meta = spectra.cache_paths(lib.root, "dev0")
    assert arr.is_file() and meta.is_file()
    assert sorted(p.name for p in (lib.devices_dir / "dev0").iterdir()) == ["digest.npy", "entry.json", "fingerprint.npy"]
    hit = spectra.load_cached_spectrum(lib.root, "dev0", lib.entry("dev0").fingerprint_sha256, (64, 96), lib.devices_dir / "dev0" / "fingerprint.npy")
    assert hit is not None and _same(hit, spectrum_of(ks["dev0"], conjugate=True))
    assert oct(arr.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # the umask honoured, as for other outputs


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_a_damaged_cache_is_not_trusted_and_is_rewritten(tmp_path):
    lib, ks = _library(tmp_path, n=1)
    arr, _ = spectra.cache_paths(lib.root, "dev0")
    data = bytearray(arr.read_bytes())
    data[-3] ^= 0x40  # one bit of the last value
    arr.write_bytes(bytes(data))
    entry = lib.entry("dev0")
    assert spectra.load_cached_spectrum(lib.root, "dev0", entry.fingerprint_sha256, entry.shape, entry.folder / "fingerprint.npy") is None
    assert _same(entry.spectrum(), spectrum_of(ks["dev0"], conjugate=True))
    assert spectra.load_cached_spectrum(lib.root, "dev0", entry.fingerprint_sha256, entry.shape, entry.folder / "fingerprint.npy") is not None


def test_a_stale_cache_is_recomputed(tmp_path):
    lib, ks = _library(tmp_path, n=1)
    entry = lib.entry("dev0")
    _, meta_path = spectra.cache_paths(lib.root, "dev0")
    meta = json.loads(meta_path.read_text())
    for key, value in (("fingerprint_sha256", "0" * 64), ("scipy", "0.0"), ("version", 0)):
        meta_path.write_text(json.dumps({**meta, key: value}))
        assert spectra.load_cached_spectrum(lib.root, "dev0", entry.fingerprint_sha256, entry.shape, entry.folder / "fingerprint.npy") is None
    # a fingerprint re-enrolled under the same name: its old cache is removed and the new one computed
    k2 = np.random.default_rng(9).normal(0, 1, (64, 96)).astype(np.float32)
    lib.add("dev0", k2, meta={}, overwrite=True, cache_spectrum=False)
    assert not meta_path.exists()
    assert _same(lib.entry("dev0").spectrum(), spectrum_of(k2, conjugate=True))
    assert meta_path.is_file()


def test_a_fingerprint_altered_after_caching_is_still_refused(tmp_path):
    lib, _ = _library(tmp_path, n=2)
    fp = lib.devices_dir / "dev1" / "fingerprint.npy"
    data = bytearray(fp.read_bytes())
    data[-8:] = b"\x7f" * 8
    fp.write_bytes(bytes(data))
    with pytest.raises(LibraryError, match="corrupted"):
        lib.entry("dev1").spectrum()
    index = FingerprintIndex(lib)
    rng = np.random.default_rng(1)
    out = index.rank(rng.normal(0, 1, (64, 96)).astype(np.float32), np.full((64, 96), 128, np.float32))
    assert out.used == ["dev0"] and "corrupted" in out.skipped["dev1"]


def test_a_library_without_cache_works_and_gets_one_on_first_use(tmp_path):
    lib, ks = _library(tmp_path, n=2, cache=False)
    assert not (lib.root / "cache").exists()  # as a library made before the cache existed
    index = FingerprintIndex(lib)
    w = ks["dev1"] + np.random.default_rng(2).normal(0, 3, (64, 96)).astype(np.float32)
    out = index.rank(w, np.ones((64, 96), np.float32))
    assert out.candidates[0]["device"] == "dev1"
    assert all(spectra.cache_paths(lib.root, n)[0].is_file() for n in ("dev0", "dev1"))
    again = FingerprintIndex(lib).rank(w, np.ones((64, 96), np.float32))  # now from the cache: the same result
    assert again.candidates == out.candidates


def test_one_query_looks_each_spectrum_up_a_bounded_number_of_times(tmp_path, monkeypatch):
    """Ranking one query touches the spectrum cache O(n) times, not once per entry per entry (n^2: the lookup
    used to be re-run inside a comprehension over the entries, ~1 M lookups per query at 1,000 fingerprints)."""
    from camforensics.pipelines.search import SpectrumCache

    n = 40
    lib, ks = _library(tmp_path, n=n)
    calls = {"n": 0}
    for name in ("held", "get", "put"):
        original = getattr(SpectrumCache, name)

        def counted(self, *a, _original=original, **kw):
            calls["n"] += 1
            return _original(self, *a, **kw)

        monkeypatch.setattr(SpectrumCache, name, counted)
    index = FingerprintIndex(lib)
    w = ks["dev7"] + np.random.default_rng(3).normal(0, 3, (64, 96)).astype(np.float32)
    for _ in range(2):  # the first query loads the spectra, the second finds them held
        calls["n"] = 0
        out = index.rank(w, np.ones((64, 96), np.float32))
        assert out.candidates[0]["device"] == "dev7"
        assert calls["n"] <= 3 * n, calls["n"]


def test_a_library_that_cannot_be_written_is_searched_without_the_cache(tmp_path, monkeypatch):
    lib, ks = _library(tmp_path, n=2, cache=False)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    import camforensics.reports.atomic as atomic

    monkeypatch.setattr(atomic, "atomic_open", refuse)
    w = ks["dev0"] * 2
    out = FingerprintIndex(lib).rank(w, np.ones((64, 96), np.float32))
    assert out.candidates[0]["device"] == "dev0" and not (lib.root / "cache" / "spectra" / "dev0.json").exists()
    off = FingerprintIndex(lib, disk_cache=False).rank(w, np.ones((64, 96), np.float32))
    assert off.candidates == out.candidates


@pytest.mark.parametrize("shape", [(6, 8), (7, 9), (64, 95)])
def test_half_turn_spectrum_equals_the_fft_of_the_turned_array(shape):
    a = np.random.default_rng(3).normal(0, 1, shape).astype(np.float32)
    fft, derived = spectrum_of(a[::-1, ::-1]), half_turn(spectrum_of(a))
    assert np.abs(fft.f - derived.f).max() <= 1e-5 * np.abs(fft.f).max()
    assert derived.norm == pytest.approx(fft.norm, rel=1e-12)
    with pytest.raises(Exception, match="unconjugated"):
        half_turn(spectrum_of(a, conjugate=True))


@pytest.mark.parametrize("blocked", [True, False])
@pytest.mark.parametrize("shape,shift", [((60, 80), (0, 0)), ((300, 257), (0, 0)), ((300, 256), (2, 3))])
def test_many_queries_in_one_pass_equal_one_by_one(shape, shift, blocked, monkeypatch):
    """Blocks of rows over two threads (or the whole small plane at once), the power shared by a query and its half
    turn: the PCEs of pce_from_spectra on each query alone (and of the full FFT of the turned array)."""
    import camforensics.core.pce as pce

    if blocked:
        monkeypatch.setattr(pce, "_BLOCK_ROWS", 16)  # several blocks and strips even on small planes
        monkeypatch.setattr(pce, "_WHOLE_PLANE_BYTES", 0)
    rng = np.random.default_rng(4)
    k = rng.normal(0, 1, shape).astype(np.float32)
    q = (k[::-1, ::-1] * 0.5 + rng.normal(0, 1, k.shape)).astype(np.float32)
    ref = spectrum_of(k, conjugate=True)
    s0, other = spectrum_of(q), spectrum_of(rng.normal(0, 1, shape).astype(np.float32))
    turned = half_turn(s0)
    many = pce_many_from_spectra([s0, turned, other], ref, shift_range=shift, power_groups=[0, 0, 2])
    alone = [pce_from_spectra(s, ref, shift_range=shift) for s in (s0, spectrum_of(q[::-1, ::-1]), other)]
    for m, a in zip(many, alone):
        assert m.pce == pytest.approx(a.pce, rel=1e-4, abs=1e-6) and m.peak_shift == a.peak_shift
        assert m.n_shifts == a.n_shifts
    assert many[1].pce > 60 and many[0].pce < 60
    m = match_query(Query(q), ref)
    assert m.rotation == 180 and m.pce == pytest.approx(alone[1].pce, rel=1e-4)


def test_an_unchanged_cache_is_memory_mapped_without_hashing_and_a_rewrite_with_old_times_is_still_caught(tmp_path, monkeypatch):
    lib, ks = _library(tmp_path, n=1)
    entry = lib.entry("dev0")
    args = (lib.root, "dev0", entry.fingerprint_sha256, entry.shape, entry.folder / "fingerprint.npy")
    hashed = []
    real = spectra.read_npy_hashed
    monkeypatch.setattr(spectra, "read_npy_hashed", lambda p: hashed.append(p) or real(p))
    fresh = spectra.load_cached_spectrum(*args)  # written just now: racily clean, so hashed
    assert fresh is not None and len(hashed) == 1 and not isinstance(fresh.f, np.memmap)
    monkeypatch.setattr(spectra, "RACY_NS", -(10**12))  # as if the sidecar had been written long after the array
    mapped = spectra.load_cached_spectrum(*args)
    assert isinstance(mapped.f, np.memmap) and len(hashed) == 1 and _same(mapped, spectrum_of(ks["dev0"], conjugate=True))
    arr, _ = spectra.cache_paths(lib.root, "dev0")
    st = arr.stat()
    data = bytearray(arr.read_bytes())
    data[-5] ^= 0x01
    with open(arr, "r+b") as f:  # rewritten in place, same size, modification time put back
        f.write(bytes(data))
    os.utime(arr, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert spectra.load_cached_spectrum(*args) is None  # the status-change time moved: hashed, and refused
    assert len(hashed) == 2


@pytest.mark.parametrize("cols", [1, 4, 37, 1009])
def test_the_native_cross_power_gives_numpy_s_bits(cols):
    from camforensics.runtime import native

    if native._cross_power_kernel() is None:
        pytest.skip("native kernels without cf_cross_power (or not numpy's bits on this CPU: numpy is used)")
    rng = np.random.default_rng(cols)
    q = (rng.normal(0, 50, (9, 2 * cols + 6)) + 0).astype(np.float32).view(np.complex64)[:, 1 : cols + 1]  # strided rows
    k = rng.normal(0, 3, (9, 2 * cols)).astype(np.float32).view(np.complex64)
    out, power = np.empty((9, cols), np.complex64), np.empty(2 * cols)
    assert native.cross_power(q, k, out, power)
    want = np.multiply(q, k)
    flat = want.view(np.float32)
    sums = np.einsum("ij,ij->j", flat, flat, dtype=np.float64).reshape(cols, 2).sum(axis=1)
    assert np.array_equal(out.view(np.uint32), want.view(np.uint32))
    assert np.array_equal(power[:cols].view(np.uint64), sums.view(np.uint64))
    assert native.cross_power(q, k, out, None) and np.array_equal(out.view(np.uint32), want.view(np.uint32))


def test_many_queries_with_and_without_the_native_cross_power_are_the_same_bits(monkeypatch):
    import camforensics.core.pce as pce
    from camforensics.runtime import native

    monkeypatch.setattr(pce, "_BLOCK_ROWS", 16)
    monkeypatch.setattr(pce, "_WHOLE_PLANE_BYTES", 0)
    rng = np.random.default_rng(8)
    k = rng.normal(0, 1, (300, 257)).astype(np.float32)
    ref = spectrum_of(k, conjugate=True)
    s0 = spectrum_of((k[::-1, ::-1] * 0.5 + rng.normal(0, 1, k.shape)).astype(np.float32))
    run = lambda: pce_many_from_spectra([s0, half_turn(s0)], ref, power_groups=[0, 0])  # noqa: E731
    native_run = run()
    monkeypatch.setattr(native, "cross_power", lambda *args: False)
    assert run() == native_run


def _crop_query(k, y=40, x=56, h=80, w=88, seed=11):
    """A crop of a planted fingerprint (with noise), and the crop-search parameters of the default engine."""
    from camforensics.core.params import MatchParams

    rng = np.random.default_rng(seed)
    grey = np.full((h, w), 128.0, np.float32)
    residual = grey * 0.05 * k[y : y + h, x : x + w] + rng.normal(0.0, 1.0, (h, w)).astype(np.float32)
    match = MatchParams(rotations="none", jpeg_grid=False)
    assert match.crop_variance_window > 0  # the local normalisation, which reads the block energy
    return Query(residual, grey), match


def _forget_energies():
    """As a new process: no block energy held in memory."""
    from camforensics.core import cropsearch

    cropsearch._ENERGY.clear()


def test_the_block_energy_is_cached_beside_the_spectrum_and_a_hit_gives_the_same_scores(tmp_path, monkeypatch):
    from camforensics.core import cropsearch

    lib, ks = _library(tmp_path, n=2, shape=(192, 224))
    entry = lib.entry("dev1")
    args = (lib.root, "dev1", entry.fingerprint_sha256, entry.shape, entry.folder / "fingerprint.npy")
    arr, meta_path = spectra.energy_paths(lib.root, "dev1")
    assert not arr.exists() and spectra.load_cached_energy(*args) is None  # written at the first crop search
    query, match = _crop_query(ks["dev1"])
    uncached = match_query(query, spectrum_of(ks["dev1"], conjugate=True), match=match)  # no store: computed
    assert uncached.crop_offset == (40, 56) and uncached.pce > uncached.threshold
    _forget_energies()
    first = match_query(query, entry.spectrum(), match=match)  # computed, then written
    assert arr.is_file() and meta_path.is_file()
    meta = json.loads(meta_path.read_text())
    assert meta["fingerprint_sha256"] == entry.fingerprint_sha256 and meta["block"] == cropsearch.VARIANCE_BLOCK
    cached = spectra.load_cached_energy(*args)
    assert cached is not None and np.array_equal(cached, cropsearch._energy_of(spectrum_of(ks["dev1"], conjugate=True)))
    _forget_energies()
    computed = []
    real = cropsearch._energy_of
    monkeypatch.setattr(cropsearch, "_energy_of", lambda ref: computed.append(ref) or real(ref))
    again = match_query(query, entry.spectrum(), match=match)  # a new spectrum object: its energy from the cache
    assert computed == []
    for r in (first, again):
        assert (r.pce, r.ncc, r.crop_offset, r.threshold) == (uncached.pce, uncached.ncc, uncached.crop_offset, uncached.threshold)
    # the library search takes it from the cache too
    _forget_energies()
    out = FingerprintIndex(lib).rank(query._residual, query._grey)
    assert out.candidates[0]["device"] == "dev1"
    assert [c.norm for c in computed] == [spectrum_of(ks["dev0"]).norm]  # dev0's: not searched as a crop before
    _forget_energies()
    computed.clear()
    again = FingerprintIndex(lib).rank(query._residual, query._grey)  # as a new process: both from the cache
    assert computed == [] and again.candidates == out.candidates


def test_a_changed_fingerprint_invalidates_its_cached_block_energy(tmp_path):
    from camforensics.core import cropsearch

    lib, ks = _library(tmp_path, n=1, shape=(192, 224))
    query, match = _crop_query(ks["dev0"])
    _forget_energies()
    match_query(query, lib.entry("dev0").spectrum(), match=match)
    arr, meta_path = spectra.energy_paths(lib.root, "dev0")
    assert arr.is_file()
    # the same name enrolled again with another fingerprint: the old energy is removed, the new one computed
    k2 = np.random.default_rng(9).normal(0, 1, (192, 224)).astype(np.float32)
    lib.add("dev0", k2, meta={}, overwrite=True, cache_spectrum=False)
    assert not arr.exists() and not meta_path.exists()
    entry = lib.entry("dev0")
    args = (lib.root, "dev0", entry.fingerprint_sha256, entry.shape, entry.folder / "fingerprint.npy")
    _forget_energies()
    new = match_query(query, entry.spectrum(), match=match)
    assert np.array_equal(spectra.load_cached_energy(*args), cropsearch._energy_of(spectrum_of(k2, conjugate=True)))
    _forget_energies()
    assert match_query(query, spectrum_of(k2, conjugate=True), match=match).pce == new.pce
    # an old energy file put back under the new fingerprint is refused by its sidecar's keys
    meta = json.loads(meta_path.read_text())
    for key, value in (("fingerprint_sha256", "0" * 64), ("block", 16), ("numpy", "0.0"), ("scipy", "0.0"), ("version", 0)):
        meta_path.write_text(json.dumps({**meta, key: value}))
        assert spectra.load_cached_energy(*args) is None, key
    meta_path.write_text(json.dumps(meta))
    assert spectra.load_cached_energy(*args) is not None
    # the fingerprint file rewritten in place (same content, new status-change time): not trusted any more
    fp = entry.folder / "fingerprint.npy"
    fp.write_bytes(fp.read_bytes())
    assert spectra.load_cached_energy(*args) is None


def test_a_damaged_block_energy_is_not_used(tmp_path, monkeypatch):
    from camforensics.core import cropsearch

    lib, ks = _library(tmp_path, n=1, shape=(192, 224))
    query, match = _crop_query(ks["dev0"])
    _forget_energies()
    good = match_query(query, lib.entry("dev0").spectrum(), match=match)
    arr, _ = spectra.energy_paths(lib.root, "dev0")
    entry = lib.entry("dev0")
    args = (lib.root, "dev0", entry.fingerprint_sha256, entry.shape, entry.folder / "fingerprint.npy")
    monkeypatch.setattr(spectra, "RACY_NS", -(10**12))  # trusted by stat from now on, as a file written long ago
    assert isinstance(spectra.load_cached_energy(*args), np.memmap)
    data = bytearray(arr.read_bytes())
    data[-3] ^= 0x40
    arr.write_bytes(bytes(data))
    assert spectra.load_cached_energy(*args) is None  # the file changed: hashed, and refused
    _forget_energies()
    assert match_query(query, lib.entry("dev0").spectrum(), match=match).pce == good.pce  # computed again, rewritten
    assert np.array_equal(spectra.load_cached_energy(*args), cropsearch._energy_of(spectrum_of(ks["dev0"], conjugate=True)))

import numpy as np
import pytest

from camforensics.core.digest import digest_z_scores, sign_digest
from camforensics.core.fingerprint import estimate_fingerprint
from camforensics.core.params import MatchParams
from camforensics.core.residual import extract_residual, to_grey
from camforensics.errors import LibraryError
from camforensics.io.library import FingerprintLibrary
from camforensics.pipelines.search import FingerprintIndex, SearchParams


@pytest.fixture(scope="module")
def big_library(tmp_path_factory, device_images):
    """40 unrelated fingerprints plus the three synthetic devices, all 256x256."""
    lib = FingerprintLibrary(tmp_path_factory.mktemp("big") / "lib", create=True)
    rng = np.random.default_rng(99)
    for i in range(40):
        lib.add(f"decoy_{i:02d}", rng.normal(0, 2, (256, 256)).astype(np.float32), meta={})
    for name, sets in device_images.items():
        lib.add(name, estimate_fingerprint(sets["flat"]).k, meta={})
    return lib


def test_digest_scores_separate_match_from_null():
    rng = np.random.default_rng(0)
    k = rng.normal(size=(300, 200)).astype(np.float32)
    q = 0.05 * k + rng.normal(size=k.shape).astype(np.float32)  # rho^2 N = 150
    d = np.stack([sign_digest(k)] + [sign_digest(rng.normal(size=k.shape)) for _ in range(50)])
    z = digest_z_scores(sign_digest(q), d, k.size)
    assert z[0] > 5 and np.abs(z[1:]).max() < 4
    assert sign_digest(k).size % 8 == 0


def test_prefilter_confirms_a_shortlist_with_the_exhaustive_answer(big_library, device_images):
    fast = FingerprintIndex(big_library)
    slow = FingerprintIndex(big_library, search=SearchParams(prefilter="off"))
    for name, sets in device_images.items():
        img = sets["nat"][0]
        w, g = extract_residual(img), to_grey(img)
        a, b = fast.rank(w, g), slow.rank(w, g)
        assert a.n_fitting == b.n_fitting == 43
        assert b.n_compared == 43 and b.prefilter is None
        assert a.n_compared < 20 and a.prefilter["n_shortlisted"] == a.n_compared
        assert a.candidates[0]["device"] == b.candidates[0]["device"] == name
        assert a.candidates[0]["pce"] == pytest.approx(b.candidates[0]["pce"], rel=1e-9)
        assert a.candidates[0]["digest_z"] > 3


def test_prefilter_is_skipped_for_shift_searches_and_small_libraries(big_library, device_images):
    idx = FingerprintIndex(big_library, match=MatchParams(shift_range=(2, 2)))
    assert not idx.uses_prefilter(43)
    assert not FingerprintIndex(big_library, search=SearchParams(min_library=100)).uses_prefilter(43)


def test_corrupted_digest_is_refused(tmp_path):
    lib = FingerprintLibrary(tmp_path / "lib", create=True)
    lib.add("dev", np.ones((8, 8), np.float32), meta={})
    path = tmp_path / "lib" / "devices" / "dev" / "digest.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(LibraryError, match="corrupted"):
        lib.entry("dev").load_digest()

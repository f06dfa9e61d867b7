import json

import numpy as np
import pytest

from camforensics.errors import LibraryError, ParameterError
from camforensics.io.library import FingerprintLibrary, check_device_name


def _lib(tmp_path):
    return FingerprintLibrary(tmp_path / "lib", create=True)


def test_add_load_and_list(tmp_path):
    lib = _lib(tmp_path)
    k = np.random.default_rng(0).normal(size=(32, 48)).astype(np.float32)
    e = lib.add("Canon_Ixus70_0", k, meta={"n_images": 5})
    assert lib.names() == ["Canon_Ixus70_0"] and "Canon_Ixus70_0" in lib
    assert e.shape == (32, 48) and np.array_equal(e.load(), k)
    again = FingerprintLibrary(tmp_path / "lib")
    assert again.entry("Canon_Ixus70_0").meta["n_images"] == 5
    assert not list((tmp_path / "lib" / "devices").glob(".*"))  # no temporary folders left behind


def test_existing_name_needs_overwrite(tmp_path):
    lib = _lib(tmp_path)
    k = np.zeros((8, 8), np.float32)
    lib.add("dev", k, meta={})
    with pytest.raises(LibraryError, match="--overwrite"):
        lib.add("dev", k, meta={})
    lib.add("dev", k + 1, meta={"n_images": 2}, overwrite=True)
    assert lib.entry("dev").load()[0, 0] == 1 and lib.names() == ["dev"]


def test_corrupted_fingerprint_is_refused(tmp_path):
    lib = _lib(tmp_path)
    lib.add("dev", np.zeros((8, 8), np.float32), meta={})
    fp = tmp_path / "lib" / "devices" / "dev" / "fingerprint.npy"
    data = bytearray(fp.read_bytes())
    data[-1] ^= 0xFF
    fp.write_bytes(bytes(data))
    with pytest.raises(LibraryError, match="corrupted"):
        lib.entry("dev").load()
    fp.unlink()
    with pytest.raises(LibraryError, match="missing"):
        lib.entry("dev").load()


def test_tampered_or_broken_entry_is_refused(tmp_path):
    lib = _lib(tmp_path)
    lib.add("dev", np.zeros((8, 8), np.float32), meta={})
    meta = tmp_path / "lib" / "devices" / "dev" / "entry.json"
    d = json.loads(meta.read_text())
    d["shape"] = [8, 9]
    meta.write_text(json.dumps(d))
    with pytest.raises(LibraryError):
        lib.entry("dev").load()
    meta.write_text("{not json")
    with pytest.raises(LibraryError, match="unreadable"):
        lib.entry("dev")


def test_unknown_device_lists_the_enrolled_ones(tmp_path):
    lib = _lib(tmp_path)
    lib.add("alpha", np.zeros((8, 8), np.float32), meta={})
    with pytest.raises(LibraryError, match="enrolled: alpha"):
        lib.entry("beta")


def test_not_a_library(tmp_path):
    with pytest.raises(LibraryError, match="not a camforensics library"):
        FingerprintLibrary(tmp_path / "nothing")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    with pytest.raises(LibraryError, match="not empty"):
        FingerprintLibrary(tmp_path / "busy", create=True)
    (tmp_path / "future").mkdir()
    (tmp_path / "future" / "library.json").write_text('{"format": "camforensics-library", "version": 99}')
    with pytest.raises(LibraryError, match="version 99"):
        FingerprintLibrary(tmp_path / "future")


@pytest.mark.parametrize("name", ["", "../up", "a/b", " lead", "-dash", "x" * 200, "dot..dot"])
def test_bad_names(name):
    with pytest.raises(ParameterError):
        check_device_name(name)


def test_good_names():
    for name in ("Canon_Ixus70_0", "vivo iQOO U1x (1)", "Sony_DSC-H50_1", "Apple+iPhone.4"):
        assert check_device_name(name) == name

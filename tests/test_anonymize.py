"""Anonymization: fingerprint removal, fingerprint-copy attack, baselines, quality metrics and the command."""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import synth
from PIL import Image
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.core.anonymize import (
    BASELINES,
    RemovalParams,
    apply_plant,
    apply_removal,
    fit_plant,
    fit_removal,
    plant_fingerprint,
    remove_fingerprint,
)
from camforensics.core.fingerprint import HalvesAccumulator, estimate_fingerprint
from camforensics.core.matching import match_image
from camforensics.core.quality import psnr, ssim
from camforensics.errors import ParameterError, SizeMismatchError
from camforensics.io.library import FingerprintLibrary

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def fingerprints(device_images) -> dict[str, np.ndarray]:
    """Each synthetic device's enrolled fingerprint K (from its 6 flat-field photos), as a library holds it."""
    return {name: estimate_fingerprint(sets["flat"]).k for name, sets in device_images.items()}


@pytest.fixture(scope="module")
def library(fingerprints, tmp_path_factory) -> Path:
    lib = FingerprintLibrary(tmp_path_factory.mktemp("anonlib") / "lib", create=True)
    for name, k in fingerprints.items():
        lib.add(name, k, meta={"n_images": 6})
    return lib.root


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------ metrics


def test_psnr_and_ssim_known_values():
    rng = np.random.default_rng(0)
    a = rng.integers(20, 230, (64, 80, 3), dtype=np.uint8)
    assert psnr(a, a) == math.inf and ssim(a, a) == pytest.approx(1.0)
    # A constant offset d: MSE = d^2, PSNR = 20 log10(255 / d).
    assert psnr(a, a + np.uint8(5)) == pytest.approx(20 * math.log10(255 / 5))
    # Two flat images: no variance, SSIM is the luminance term (2 m1 m2 + C1) / (m1^2 + m2^2 + C1).
    c1 = (0.01 * 255) ** 2
    flat1, flat2 = np.full((32, 32), 100, np.uint8), np.full((32, 32), 110, np.uint8)
    assert ssim(flat1, flat2) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1))
    # Colour SSIM is the mean over channels: three equal channels give the grey value.
    g = a[:, :, 0]
    noisy = np.clip(g + rng.normal(0, 8, g.shape), 0, 255).astype(np.uint8)
    assert ssim(np.dstack([g] * 3), np.dstack([noisy] * 3)) == pytest.approx(ssim(g, noisy))
    assert ssim(g, noisy) == pytest.approx(ssim(noisy, g)) and 0 < ssim(g, noisy) < 0.999
    with pytest.raises(SizeMismatchError):
        psnr(a, a[:10])


def reference_ssim(x, y):
    """Wang et al.'s definition written out: an 11x11 Gaussian window (sigma 1.5) at every inside position."""
    r = np.arange(11) - 5
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    w /= w.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = x.astype(np.float64), y.astype(np.float64)
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            values.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_equals_the_written_out_definition():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (23, 29), dtype=np.uint8)
    y = np.clip(x * 0.8 + rng.normal(0, 15, x.shape) + 10, 0, 255).astype(np.uint8)
    assert ssim(x, y) == pytest.approx(reference_ssim(x, y), abs=1e-9)


# ------------------------------------------------------------------------------------------------ core attacks


def test_remove_fingerprint_defeats_pce_and_keeps_the_picture(device_images, fingerprints):
    k = fingerprints["cam_a"]
    for img in device_images["cam_a"]["nat"][:2]:
        kept = img.copy()
        before = match_image(img, k).pce
        out = remove_fingerprint(img, k)
        assert np.array_equal(img, kept), "the input was modified"
        assert out.dtype == np.uint8 and out.shape == img.shape
        after = match_image(out, k).pce
        assert before > 1000 and after < 60, (before, after)
        assert psnr(img, out) >= 38 and ssim(img, out) > 0.98
    # The fit says what it did: a positive alpha that brings the detector correlation near zero.
    fit = fit_removal(device_images["cam_a"]["nat"][0], k)
    assert fit.alpha > 0 and fit.ncc_before > 0.1 and abs(fit.trace[-1][1]) < 0.01 and not fit.clipped


def test_debiased_removal_hides_the_sensor_from_an_independent_estimate():
    """An attacker's fingerprint from 4 flat fields holds only part of the sensor's pattern: zeroing the correlation
    with it leaves the rest for an examiner's own estimate to find, unless the fit is divided by its reliability."""
    k = synth.make_prnu((256, 256), 31, strength=0.01)
    acc = HalvesAccumulator()
    for j in range(4):
        acc.add(synth.shoot(k, 500 + j, flat=True))
    attacker, rel = acc.finish()
    examiner = estimate_fingerprint([synth.shoot(k, 600 + j, flat=True) for j in range(12)]).k
    assert 0.1 < rel.reliability < 0.8
    for j in range(2):
        img = synth.shoot(k, 700 + j)
        before = match_image(img, examiner).pce
        plain = fit_removal(img, attacker.k)
        debiased = fit_removal(img, attacker.k, params=RemovalParams(reliability=rel.reliability))
        assert plain.debias == 1.0 and debiased.debias == pytest.approx(1 / rel.reliability)
        assert debiased.alpha == pytest.approx(plain.alpha / rel.reliability, rel=1e-6) and not debiased.clipped
        after_plain = match_image(apply_removal(img, attacker.k, plain.alpha), examiner).pce
        out = apply_removal(img, attacker.k, debiased.alpha)
        after = match_image(out, examiner).pce
        assert before > 1000 and after_plain > 300 and after < 60, (before, after_plain, after)
        assert psnr(img, out) >= 45
    with pytest.raises(ParameterError):
        RemovalParams(reliability=0.0)


def test_remove_fingerprint_on_a_grey_image_and_size_errors(device_images, fingerprints):
    grey = device_images["cam_b"]["nat"][0][:, :, 1].copy()
    k = fingerprints["cam_b"]
    out = remove_fingerprint(grey, k)
    assert out.ndim == 2 and match_image(grey, k).pce > 200 and match_image(out, k).pce < 60
    with pytest.raises(SizeMismatchError, match="200x256 pixels differs from the 256x256"):
        remove_fingerprint(grey[:, :200], k)
    with pytest.raises(ParameterError):
        remove_fingerprint(np.zeros((4, 4, 2), np.uint8), k)


def test_spoof_plants_the_target_and_removes_the_source(device_images, fingerprints):
    img = device_images["cam_a"]["nat"][1]
    kept = img.copy()
    ka, kb = fingerprints["cam_a"], fingerprints["cam_b"]
    assert match_image(img, kb).pce < 60 and match_image(img, ka).pce > 60
    out = plant_fingerprint(img, kb, k_source=ka)
    assert np.array_equal(img, kept)
    assert match_image(out, kb).pce > 60 and match_image(out, ka).pce < 60
    assert psnr(img, out) >= 38
    fit = fit_plant(img, kb)
    assert fit.reached and fit.pce_before < 60 and fit.pce_after >= 120 and fit.strength > 0
    # A fixed strength is applied as given (zero changes nothing).
    assert np.array_equal(apply_plant(img, kb, 0.0), img)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_change_the_image_at_finite_psnr(device_images, name):
    img = device_images["cam_c"]["nat"][0]
    kept = img.copy()
    out = BASELINES[name](img)
    assert np.array_equal(img, kept)
    assert out.dtype == np.uint8 and out.shape == img.shape and not np.array_equal(out, img)
    assert 25 < psnr(img, out) < math.inf
    small = np.ascontiguousarray(img[:37, :53, 0])  # any size, grey (the denoiser drops wavelet levels)
    assert BASELINES[name](small).shape == small.shape


# ------------------------------------------------------------------------------------------------ command


def test_cli_remove_fingerprint_end_to_end(library, device_tree, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for f in sorted((device_tree / "cam_a" / "nat").glob("*.jpg"))[:2]:
        (src / f.name).write_bytes(f.read_bytes())
    (src / "broken.jpg").write_bytes(b"not a jpeg at all")
    hashes = {p: sha256(p) for p in src.iterdir()}
    report = tmp_path / "anon.json"
    res = invoke("anonymize", src, "-o", tmp_path / "out", "--method", "remove-fingerprint",
                 "--remove-fingerprint", f"{library}:cam_a", "--verify-library", library, "-r", report, "-j", 1)
    assert res.exit_code == 1, res.output  # the broken file failed, the others were done
    assert {p: sha256(p) for p in src.iterdir()} == hashes, "an input was modified"
    doc = json.loads(report.read_text())
    assert doc["summary"]["n_inputs"] == 3 and doc["summary"]["n_failed"] == 1
    assert doc["summary"]["removed_device"] == {"n_checked": 2, "n_below_threshold_after": 2}
    assert doc["run"]["parameters"]["method"] == "remove-fingerprint"
    assert doc["run"]["devices"]["removed"]["name"] == "cam_a"
    for r in doc["results"]:
        if r["status"] != "ok":
            assert Path(r["input"]["path"]).name == "broken.jpg" and r["error"]["message"]
            continue
        out = Path(r["output"]["path"])
        assert out.parent == tmp_path / "out" and out.name.endswith(".remove-fingerprint.png")
        assert r["output"]["sha256"] == sha256(out) and len(r["input"]["sha256"]) == 64
        with Image.open(out) as im:
            assert not im.getexif() and "exif" not in im.info
        assert r["method"]["name"] == "remove-fingerprint" and r["method"]["fitted"]["removal"]["alpha"] > 0
        # This library's entries were stored without a split-half reliability: not debiased, and the report says so.
        assert r["method"]["fitted"]["removal"]["debias"] == 1.0 and r["method"]["parameters"]["debias"] is True
        assert any("no reliability recorded" in n for n in r["output"]["notes"])
        assert r["quality"]["psnr"] >= 38 and r["quality"]["ssim"] > 0.98
        dev = r["removed_device"]
        assert dev["device"] == "cam_a" and dev["threshold"] == 60
        assert dev["pce_before"] > 60 and dev["match_before"] and dev["pce_after"] < 60 and not dev["match_after"]
        assert {c["device"] for c in r["library_check"]} == {"cam_a", "cam_b", "cam_c"}
        assert not any(c["match_after"] for c in r["library_check"])


def test_cli_spoof_to_jpeg_and_per_file_size_error(library, device_tree, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    nat = min((device_tree / "cam_a" / "nat").glob("*.jpg"))
    (src / "a.jpg").write_bytes(nat.read_bytes())
    with Image.open(nat) as im:
        im.crop((0, 0, 200, 256)).save(src / "cropped.png")
    report = tmp_path / "spoof.json"
    res = invoke("anonymize", src, "-o", tmp_path / "out", "-m", "spoof", "--spoof-device", f"{library}:cam_b",
                 "--remove-fingerprint", f"{library}:cam_a", "--image-format", "jpeg", "--quality", 97,
                 "-r", report, "-q", "-j", 1)
    assert res.exit_code == 1, res.output
    doc = json.loads(report.read_text())
    by_name = {Path(r["input"]["path"]).name: r for r in doc["results"]}
    assert "200x256" in by_name["cropped.png"]["error"]["message"]
    assert "256x256" in by_name["cropped.png"]["error"]["message"]
    r = by_name["a.jpg"]
    assert r["output"]["path"].endswith(".spoof-cam_b.jpg") and r["output"]["quality"] == 97
    assert r["target_device"]["pce_before"] < 60 and r["target_device"]["match_after"]
    assert not r["removed_device"]["match_after"] and r["quality"]["psnr"] >= 38
    assert doc["summary"]["target_device"] == {"n_checked": 1, "n_above_threshold_after": 1}


def test_cli_baseline_and_refusals(library, device_tree, tmp_path):
    nat = device_tree / "cam_c" / "nat"
    res = invoke("anonymize", nat, "-o", tmp_path / "out", "-m", "median", "-r", tmp_path / "m.csv",
                 "--format", "csv", "-q", "-j", 1)
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "out").glob("*.median.png"))) == 3
    assert "quality.psnr" in (tmp_path / "m.csv").read_text().splitlines()[0]
    # Unknown device: one line naming the enrolled ones, exit code 2.
    res = invoke("anonymize", nat, "-o", tmp_path / "o2", "-m", "remove-fingerprint",
                 "--remove-fingerprint", f"{library}:nope")
    assert res.exit_code == 2 and "cam_a, cam_b, cam_c" in res.output
    # An output folder inside an input folder is refused before anything is written.
    res = invoke("anonymize", nat.parent, "-o", nat / "anon", "-m", "jpeg")
    assert res.exit_code == 2 and "inside the input folder" in res.output and not (nat / "anon").exists()
    res = invoke("anonymize", nat, "-o", tmp_path / "o3", "-m", "remove-fingerprint")
    assert res.exit_code == 2 and "--remove-fingerprint LIB:DEVICE" in res.output


def test_removal_notes_say_when_the_fingerprint_cannot_be_or_is_heavily_debiased():
    from camforensics.pipelines.anonymize.fingerprint import DeviceRef, FingerprintOptions, Reference, removal_note

    k = np.zeros((8, 8), np.float32)
    ref = DeviceRef("lib", "cam")
    p = FingerprintOptions(method="remove-fingerprint", remove=ref)

    def with_reliability(r):
        return Reference("removed", ref, k, None, r)

    assert "no reliability recorded" in removal_note(p, with_reliability(None))
    assert "share no pattern" in removal_note(p, with_reliability(0.0))
    assert "reliability 0.050" in removal_note(p, with_reliability(0.05)) and "20 times" in removal_note(p, with_reliability(0.05))
    assert removal_note(p, with_reliability(0.3)) is None
    assert removal_note(FingerprintOptions(method="remove-fingerprint", remove=ref, debias=False), with_reliability(None)) is None

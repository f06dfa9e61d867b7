import numpy as np
import pytest
import synth

from camforensics.core.fingerprint import (
    FingerprintAccumulator,
    HalvesAccumulator,
    Reliability,
    estimate_fingerprint,
    intensity_weight,
    normalised_correlation,
    probe_window,
    saturation_mask,
    split_half_reliability,
)
from camforensics.core.matching import candidate_rotations, match_image, match_residual
from camforensics.core.params import MatchParams
from camforensics.errors import ParameterError, SizeMismatchError


@pytest.fixture(scope="module")
def fingerprints(device_images):
    return {name: estimate_fingerprint(sets["flat"]) for name, sets in device_images.items()}


def test_planted_fingerprint_is_found_and_others_are_not(fingerprints, device_images):
    for true, sets in device_images.items():
        for img in sets["nat"]:
            scores = {name: match_image(img, fp.k).pce for name, fp in fingerprints.items()}
            assert scores[true] > 60, scores
            assert all(v < 60 for name, v in scores.items() if name != true), scores


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_rotated_query_is_found_at_the_right_rotation(fingerprints, device_images, turns):
    img = device_images["cam_b"]["nat"][0]
    stored = np.rot90(img, turns)  # e.g. software that rotated the pixels
    res = match_image(stored, fingerprints["cam_b"].k)
    assert res.rotation == (360 - 90 * turns) % 360
    assert res.pce > 60
    assert res.n_hypotheses == 4  # square: all four rotations fit
    # With rotations switched off the rotated copy is not recognised.
    if turns != 0:
        off = match_image(stored, fingerprints["cam_b"].k, match=MatchParams(rotations="none"))
        assert off.pce < 60


def test_candidate_rotations_follow_shapes():
    assert candidate_rotations((300, 400), (300, 400)) == [0, 180]
    assert candidate_rotations((400, 300), (300, 400)) == [90, 270]
    assert candidate_rotations((300, 300), (300, 300)) == [0, 90, 180, 270]
    assert candidate_rotations((300, 400), (300, 400), mode="none") == [0]
    assert candidate_rotations((400, 300), (300, 400), mode="none") == []
    with pytest.raises(SizeMismatchError, match="fits no rotation"):
        match_residual(np.zeros((10, 12), np.float32), None, np.zeros((10, 13), np.float32))


def test_more_images_give_a_better_fingerprint(device_images, devices):
    flat = device_images["cam_a"]["flat"]
    k_true = devices["cam_a"]
    c2 = np.corrcoef(estimate_fingerprint(flat[:2]).k.ravel(), k_true.ravel())[0, 1]
    c6 = np.corrcoef(estimate_fingerprint(flat).k.ravel(), k_true.ravel())[0, 1]
    assert c6 > c2 > 0.1


def test_accumulator_streams_refuses_mixed_sizes_and_empty():
    acc = FingerprintAccumulator()
    with pytest.raises(ParameterError, match="at least one image"):
        acc.finish()
    img = np.full((128, 128, 3), 120, np.uint8)
    before = img.copy()
    acc.add(img)
    assert np.array_equal(img, before)
    with pytest.raises(SizeMismatchError, match="one size"):
        acc.add(np.full((128, 144, 3), 120, np.uint8))
    fp = acc.finish()
    assert fp.n_images == 1 and fp.shape == (128, 128) and fp.k.dtype == np.float32


def test_saturation_mask_marks_clipped_plateaus_only():
    c = np.full((6, 6), 100, np.uint8)
    c[1, 1] = 255  # lone bright pixel: kept
    c[4, 3:5] = 255  # clipped plateau of two: masked
    m = saturation_mask(c)
    assert m[1, 1] and not m[4, 3] and not m[4, 4] and m.sum() == 34
    assert saturation_mask(np.full((4, 4), 240, np.uint8)).all()  # max below the level: nothing masked


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_saturation_mask_opencv_path_equals_the_numpy_definition(dtype):
    """uint8 and float32 channels take OpenCV passes; int16 the numpy formula: same masks, borders included."""
    rng = np.random.default_rng(3)
    for trial in range(20):
        c = rng.integers(240, 256, (37, 53)).astype(dtype)  # many pixels at the maximum, some in plateaus
        if trial % 5 == 0:
            c[:, :] = rng.integers(0, 250, c.shape).astype(dtype)  # max below the level
        fast = saturation_mask(c)
        slow = saturation_mask(c.astype(np.int16))
        assert fast.dtype == bool and np.array_equal(fast, slow)


def test_intensity_weight():
    w = intensity_weight(np.array([0, 126, 252, 255], np.float32))
    assert np.allclose(w, [0, 0.5, 1.0, np.exp(-9 / 6)], atol=1e-6)


def test_intensity_weight_of_8_bit_pixels_is_the_formula():
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(intensity_weight(pixels), intensity_weight(pixels.astype(np.float32)))


def test_add_many_in_threads_equals_adding_one_at_a_time(device_images, monkeypatch):
    from camforensics.runtime import threads

    images = device_images[sorted(device_images)[0]]["flat"]
    one = FingerprintAccumulator()
    for image in images:
        one.add(image)
    monkeypatch.setattr(threads, "_limit", 3)
    many = FingerprintAccumulator()
    many.add_many(iter(images))
    assert many.n_images == one.n_images == len(images)
    np.testing.assert_allclose(many.finish().k, one.finish().k, rtol=0, atol=1e-5)
    odd = FingerprintAccumulator()
    wrong = [images[0], images[1], np.full((64, 80, 3), 120, np.uint8), images[2]]
    with pytest.raises(SizeMismatchError, match="one size"):
        odd.add_many(wrong)
    assert odd.n_images <= 2  # the images before the odd one, and nothing after it


# ------------------------------------------------------------------------------------------ split-half reliability


def test_split_half_reliability_is_spearman_brown():
    rng = np.random.default_rng(0)
    k = rng.normal(size=(128, 128))
    # Halves of m images: noise variance s/m around the pattern (variance 1), s = 40 per image.
    for m in (2, 5, 20):
        a = k + rng.normal(size=k.shape) * np.sqrt(40 / m)
        b = k + rng.normal(size=k.shape) * np.sqrt(40 / m)
        rel = split_half_reliability(a, m, b, m)
        rho = normalised_correlation(a, b)
        assert rel.correlation == pytest.approx(rho)
        assert rel.reliability == pytest.approx(2 * rho / (1 + rho))
        # ... which is the share of the pattern in the estimate from all 2m images: 1 / (1 + s / 2m).
        assert rel.reliability == pytest.approx(1 / (1 + 40 / (2 * m)), abs=0.03)
    # Unequal halves: the same per-image signal-to-noise ratio gives the same full-set reliability.
    a = k + rng.normal(size=k.shape) * np.sqrt(40 / 3)
    b = k + rng.normal(size=k.shape) * np.sqrt(40 / 7)
    assert split_half_reliability(a, 3, b, 7).reliability == pytest.approx(1 / (1 + 40 / 10), abs=0.03)
    unrelated = split_half_reliability(rng.normal(size=k.shape), 4, -k, 4)
    assert unrelated.reliability == 0.0 or unrelated.reliability < 0.02
    assert split_half_reliability(k, 4, -k, 4).reliability == 0.0
    with pytest.raises(ParameterError):
        split_half_reliability(k, 0, k, 3)
    assert Reliability.from_dict(rel.to_dict()) == rel and Reliability.from_dict(None) is None


def test_halves_accumulator_gives_the_fingerprint_and_predicts_an_independent_estimates_agreement():
    k = synth.make_prnu((256, 256), 21, strength=0.01)
    flats = [synth.shoot(k, 900 + j, flat=True) for j in range(8)]
    acc = HalvesAccumulator()
    for img in flats:
        acc.add(img)
    assert acc.n_images == 8 and [h.n_images for h in acc.halves] == [4, 4]
    fp, rel = acc.finish()
    plain = estimate_fingerprint(flats)
    assert fp.n_images == 8 and np.allclose(fp.k, plain.k, atol=1e-4 * float(np.abs(plain.k).max()))
    assert (rel.n_a, rel.n_b) == (4, 4)
    # Reliability r of each of two independent 8-image estimates: their correlation is about r.
    other = estimate_fingerprint([synth.shoot(k, 950 + j, flat=True) for j in range(8)]).k
    assert 0.2 < rel.reliability < 0.95
    assert normalised_correlation(fp.k, other) == pytest.approx(rel.reliability, abs=0.1)
    one = HalvesAccumulator()
    one.add(flats[0])
    fp1, rel1 = one.finish()
    assert rel1 is None and fp1.n_images == 1
    # Halves on a centre window only (large sensors): the same reliability within its sampling error.
    small = HalvesAccumulator(probe=128)
    for img in flats:
        small.add(img)
    fp_small, rel_small = small.finish()
    assert np.array_equal(fp_small.k, fp.k) and small.halves[0].shape == (128, 128, 3)
    assert rel_small.reliability == pytest.approx(rel.reliability, abs=0.1)


def test_probe_window_is_centred_on_an_even_offset_and_clipped_to_the_image():
    assert probe_window((3000, 4000, 3)) == (slice(988, 2012), slice(1488, 2512))
    assert probe_window((1031, 1031)) == (slice(2, 1026), slice(2, 1026))  # (1031 - 1024) // 2 = 3 -> 2
    assert probe_window((600, 5000), 1024) == (slice(0, 600), slice(1988, 3012))


def test_terms_of_an_image_can_be_added_to_several_accumulators(device_images):
    images = device_images["cam_a"]["flat"][:3]
    plain = FingerprintAccumulator()
    for img in images:
        plain.add(img)
    first, second = FingerprintAccumulator(), FingerprintAccumulator()
    for img in images:
        terms = first.terms_of(img)
        first.add_terms(terms)
        second.add_terms(terms)  # read, not consumed
    for acc in (first, second):
        assert acc.n_images == 3 and np.array_equal(acc.finish().k, plain.finish().k)
    with pytest.raises(SizeMismatchError):
        first.add_terms(FingerprintAccumulator().terms_of(images[0][:128]))

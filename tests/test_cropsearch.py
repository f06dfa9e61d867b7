"""Crop, scale and orientation search (Goljan & Fridrich 2008) on synthetic devices with a planted PRNU.

A 512x640 device is fingerprinted from 6 flat-field shots; its natural shots are cropped at known offsets (also at
the borders), downscaled, turned and mirrored, and the search must report where they sit. Crops of another
device's shots must stay below the raised threshold.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import synth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camforensics.core.cropsearch import DIH4, corrected_threshold, offset_window, orient, window_size
from camforensics.core.fingerprint import estimate_fingerprint
from camforensics.core.jpeggrid import grid_offsets
from camforensics.core.matching import crop_plan, fits, match_image
from camforensics.core.params import MatchParams
from camforensics.core.pce import log10_false_alarm
from camforensics.errors import ParameterError, SizeMismatchError

SENSOR = (512, 640)


@pytest.fixture(scope="module")
def sensor():
    """The device's fingerprint, two of its natural shots, and shots of an unrelated device."""
    k = synth.make_prnu(SENSOR, 41)
    fp = estimate_fingerprint([synth.shoot(k, 4100 + j, flat=True) for j in range(6)]).k
    other = synth.make_prnu(SENSOR, 42)
    return {
        "k": fp,
        "nat": [synth.shoot(k, 4150 + j) for j in range(2)],
        "other": [synth.shoot(other, 4250 + j) for j in range(2)],
    }


def n_offsets(h: int, w: int) -> int:
    return (SENSOR[0] - h + 1) * (SENSOR[1] - w + 1)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    h=st.sampled_from([256, 300]),
    w=st.sampled_from([256, 384]),
    fy=st.sampled_from([0.0, 0.37, 1.0]),
    fx=st.sampled_from([0.0, 0.61, 1.0]),
)
def test_crop_is_found_at_its_offset_also_at_the_borders(sensor, h, w, fy, fx):
    y, x = round(fy * (SENSOR[0] - h)), round(fx * (SENSOR[1] - w))
    crop = sensor["nat"][0][y : y + h, x : x + w]
    res = match_image(crop, sensor["k"], match=MatchParams(rotations="none", jpeg_grid=False))
    assert res.search == "crop" and res.crop_offset == (y, x) and res.peak_shift == (y, x)
    assert res.n_hypotheses == n_offsets(h, w) and res.jpeg_grid is None
    assert res.threshold == pytest.approx(corrected_threshold(60.0, n_offsets(h, w)))
    assert res.is_match and res.pce > 10 * res.threshold, res
    # With the JPEG-grid test (the default) the crop's block phase names 1 in 64 offsets, tested at half the P_FA.
    on_grid = match_image(crop, sensor["k"], match=MatchParams(rotations="none"))
    assert on_grid.jpeg_grid["phase"] == [(-y) % 8, (-x) % 8] and on_grid.jpeg_grid["peak_on_grid_test"]
    n_grid = window_size(grid_offsets(((-y) % 8, (-x) % 8), (slice(0, SENSOR[0] - h + 1), slice(0, SENSOR[1] - w + 1))))
    assert n_grid * 64 <= 2 * n_offsets(h, w) and on_grid.n_hypotheses == 2 * n_grid
    assert on_grid.threshold == pytest.approx(corrected_threshold(60.0, 2 * n_grid))
    assert on_grid.threshold < res.threshold
    assert on_grid.crop_offset == (y, x) and on_grid.pce == pytest.approx(res.pce, rel=1e-5)


def test_a_crop_whose_grid_misleads_is_found_by_the_test_of_every_offset(sensor):
    """A crop re-coded as a JPEG after cropping off the grid: its new grid names the wrong offsets, and the other
    half of the false-alarm budget (every offset) still finds it, at a threshold barely above the plain one."""
    y, x, h, w = 101, 203, 256, 256
    ok, buf = cv2.imencode(".jpg", sensor["nat"][0][y : y + h, x : x + w, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    crop = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    res = match_image(crop, sensor["k"], match=MatchParams(rotations="none"))
    assert res.jpeg_grid["found"] and res.jpeg_grid["phase"] == [0, 0] and not res.jpeg_grid["peak_on_grid_test"]
    assert res.crop_offset == (y, x) and res.is_match, res
    assert res.n_hypotheses == 2 * n_offsets(h, w)
    assert res.threshold == pytest.approx(corrected_threshold(60.0, 2 * n_offsets(h, w)))


def test_unrelated_crops_stay_below_both_thresholds_of_the_grid_test(sensor):
    rng = np.random.default_rng(8)
    for img in sensor["other"]:
        for _ in range(3):
            y, x = int(rng.integers(0, SENSOR[0] - 256)), int(rng.integers(0, SENSOR[1] - 256))
            res = match_image(img[y : y + 256, x : x + 256], sensor["k"], match=MatchParams(rotations="none"))
            assert res.jpeg_grid["found"] and res.jpeg_grid["peak_on_grid_test"]  # no match: the grid's peak
            assert not res.is_match and res.pce < corrected_threshold(60.0, 2 * n_offsets(256, 256)), res


def test_unrelated_crops_stay_below_the_raised_threshold(sensor):
    rng = np.random.default_rng(7)
    for img in sensor["other"]:
        for _ in range(3):
            y, x = int(rng.integers(0, SENSOR[0] - 256)), int(rng.integers(0, SENSOR[1] - 256))
            res = match_image(img[y : y + 256, x : x + 256], sensor["k"], match=MatchParams(jpeg_grid=False))
            assert not res.is_match, res
            # The plain search failed, so all 8 orientations were searched and counted.
            assert res.n_hypotheses == 8 * n_offsets(256, 256)
            assert res.log10_p_fa > log10_false_alarm(60.0, 1)
            # The maximum of ~10^6 unrelated correlations: far above 1 at one shift, far below the threshold.
            assert 5 < res.pce < res.threshold


def test_threshold_rises_with_the_hypotheses_searched():
    assert corrected_threshold(60.0, 1) == 60.0
    values = [corrected_threshold(60.0, n) for n in (4, 1000, 263_169, 12_000_000)]
    assert values == sorted(values) and 60 < values[0] < values[-1] < 100
    for n, t in zip((4, 1000, 263_169, 12_000_000), values):
        assert log10_false_alarm(t, n) == pytest.approx(log10_false_alarm(60.0, 1), abs=1e-6)


@pytest.mark.parametrize("k", range(8))
def test_turned_and_mirrored_crops_are_found_in_sensor_order(sensor, k):
    rotation, mirrored = DIH4[k]
    y, x, h, w = 96, 200, 256, 320
    crop = sensor["nat"][1][y : y + h, x : x + w]
    # What software did to the crop: the inverse of the Dih4 element that brings it back to sensor order.
    stored = np.rot90(crop, -rotation // 90)
    if mirrored:
        stored = stored[:, ::-1]
    assert np.array_equal(orient(stored, rotation, mirrored), crop)
    res = match_image(stored, sensor["k"], match=MatchParams(jpeg_grid=False))
    assert (res.rotation, res.mirrored, res.crop_offset) == (rotation, mirrored, (y, x)), res
    assert res.is_match
    if k == 0:  # the stored order matched: the other orientations were never searched
        assert res.n_hypotheses == n_offsets(h, w) and list(res.pce_by_rotation) == [0]
    else:
        assert len(res.pce_by_rotation) == 8
        off = match_image(stored, sensor["k"], match=MatchParams(rotations="none"))
        assert not off.is_match


def test_dih4_searches_every_orientation_at_once(sensor):
    crop = sensor["nat"][0][0:256, 0:256]
    res = match_image(crop, sensor["k"], match=MatchParams(rotations="dih4", jpeg_grid=False))
    assert res.is_match and (res.rotation, res.mirrored, res.crop_offset) == (0, False, (0, 0))
    assert res.n_hypotheses == 8 * n_offsets(256, 256)


@pytest.mark.parametrize(("scale", "box"), [(0.75, (0, 0, 512, 640)), (0.6, (64, 128, 400, 480))])
def test_downscaled_queries_are_found_at_their_scale(sensor, scale, box):
    y, x, h, w = box
    crop = sensor["nat"][0][y : y + h, x : x + w]
    small = cv2.resize(crop, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    grid = tuple(round(s, 2) for s in np.arange(0.5, 1.0001, 0.05))
    res = match_image(small, sensor["k"], match=MatchParams(rotations="none", scales=grid))
    assert res.is_match and res.scale == pytest.approx(scale), res
    assert abs(res.crop_offset[0] - y) <= 1 and abs(res.crop_offset[1] - x) <= 1
    # Without the scale search the downscaled query is not recognised.
    assert not match_image(small, sensor["k"], match=MatchParams(rotations="none")).is_match


def test_anchors_limit_the_offsets_searched(sensor):
    y, x = (SENSOR[0] - 256) // 2, (SENSOR[1] - 256) // 2
    crop = sensor["nat"][0][y : y + 256, x : x + 256]
    centred = match_image(crop, sensor["k"], match=MatchParams(rotations="none", crop_anchor="centre"))
    assert centred.crop_offset == (y, x) and centred.n_hypotheses == 1
    assert centred.threshold == 60.0 and centred.is_match
    near = match_image(crop, sensor["k"], match=MatchParams(rotations="none", crop_anchor=(120, 180), shift_range=(16, 16)))
    assert near.crop_offset == (y, x) and near.n_hypotheses == 33 * 33
    wrong = match_image(crop, sensor["k"], match=MatchParams(rotations="none", crop_anchor="corner", shift_range=(8, 8)))
    assert not wrong.is_match and wrong.n_hypotheses == 9 * 9
    assert offset_window((256, 256), (512, 640), anchor=(300, 0)) is None  # beyond the admissible offsets
    assert offset_window((256, 256), (512, 640), anchor=(250, 380), shift_range=(10, 10)) == (slice(240, 257), slice(370, 385))


def test_same_size_queries_are_matched_as_before(sensor):
    res = match_image(sensor["nat"][0], sensor["k"])
    assert res.search == "aligned" and res.crop_offset is None and res.threshold == 60.0
    assert res.n_hypotheses == 2  # 512x640: only 0 and 180 degrees fit, no mirrors, no scales
    assert res.is_match


def test_scene_weighting_lifts_a_crop_whose_residual_is_mostly_scene_in_places():
    """A crop residual of PRNU (I K) plus noise four times stronger on a textured third of it: dividing by the local
    standard deviation (MatchParams.crop_scene_window, the default) takes that third's noise down and the PCE up;
    off (0) it is the plain search. The offset is found either way."""
    rng = np.random.default_rng(5)
    k = synth.make_prnu(SENSOR, 43, strength=0.02)
    y, x, h, w = 96, 160, 256, 256
    grey = np.full((h, w), 128.0, np.float32)
    noise = rng.normal(0.0, 1.0, (h, w)).astype(np.float32)
    noise[:, : w // 3] *= 4.0
    residual = grey * k[y : y + h, x : x + w] * 0.15 + noise
    from camforensics.core.matching import match_residual

    on = match_residual(residual, grey, k, match=MatchParams(rotations="none", jpeg_grid=False))
    off = match_residual(residual, grey, k, match=MatchParams(rotations="none", jpeg_grid=False, crop_scene_window=0))
    assert on.crop_offset == off.crop_offset == (y, x)
    assert on.pce > 1.5 * off.pce, (on.pce, off.pce)
    assert on.threshold == off.threshold  # the same offsets searched, the same P_FA


def test_scene_weighting_leaves_same_size_queries_and_fingerprints_alone(sensor):
    from camforensics.core.matching import Query

    img = sensor["nat"][0]
    on, off = match_image(img, sensor["k"]), match_image(img, sensor["k"], match=MatchParams(crop_scene_window=0))
    assert on.search == "aligned" and on.pce == off.pce
    fp = Query(sensor["k"])  # a fingerprint as the query: no intensities, nothing to weight
    assert fp.scene_weighted(15) is fp.signal
    crop = img[:256, :256]
    q = Query(crop[:, :, 1].astype(np.float32) - 128.0, np.full((256, 256), 100.0, np.float32))
    assert q.scene_weighted(0) is q.signal and not np.array_equal(q.scene_weighted(15), q.signal)


def _uneven_fingerprint(seed: int) -> np.ndarray:
    """White noise whose standard deviation is 3 in a 160 x 200 block and 1 elsewhere (a fingerprint of a few
    natural photos is that much noisier where they were dark)."""
    k = np.random.default_rng(seed).normal(0.0, 1.0, SENSOR).astype(np.float32)
    k[300:460, 400:600] *= 3.0
    return k


def test_local_variance_is_the_null_variance_of_the_correlation_at_every_offset():
    """local_variance's coarse computation against V(o) = sum_y m(y) k(y + o)**2 computed exactly by FFT, for a
    query whose energy is uneven too; and the spread of r(o) / sqrt(V(o)) over unrelated queries is the same at
    offsets over the fingerprint's loud block and elsewhere, where r(o) itself is three times wider there."""
    from camforensics.core.cropsearch import local_variance, padded_spectrum, query_energy
    from camforensics.core.pce import spectrum_of

    k = _uneven_fingerprint(3)
    ref = spectrum_of(k, conjugate=True)
    rng = np.random.default_rng(4)
    h, w = 200, 240
    s = rng.normal(0.0, 1.0, (h, w)).astype(np.float32)
    s[:, :80] *= 2.0
    sc, kc = s - s.mean(), k - k.mean()
    for window in (15, 1):
        v = local_variance(query_energy(s, SENSOR, window), ref)
        m = np.zeros(SENSOR)
        m[:h, :w] = cv2.blur(sc * sc, (window, window), borderType=cv2.BORDER_REFLECT)
        exact = np.fft.irfft2(np.conj(np.fft.rfft2(m)) * np.fft.rfft2(kc.astype(np.float64) ** 2), s=SENSOR)
        assert v.shape == SENSOR and v.dtype == np.float32
        err = np.abs(v / exact - 1.0)
        # the blocks stand for the pixels' products by their means (a random error of about 1 % per offset without
        # the window) and the interpolation between block offsets misses V's kinks where an edge of the query meets
        # an edge of the loud block (up to 8 % of the variance at those offsets)
        q50, q99 = np.percentile(err, [50, 99])
        assert q50 < 0.012 and q99 < 0.05 and err.max() < 0.15, (window, q50, q99, err.max())
        assert exact.max() / exact.min() > 2.0  # the map is far from flat: the test means something
    # the normalised correlation's spread, over 40 unrelated queries, at two offsets
    loud, quiet = (300, 400), (40, 40)
    raw, norm = {loud: [], quiet: []}, {loud: [], quiet: []}
    for j in range(40):
        q = np.random.default_rng(100 + j).normal(0.0, 1.0, (h, w)).astype(np.float32)
        spec = padded_spectrum(q, SENSOR)
        cc = np.fft.irfft2(np.conj(spec.f * ref.f), s=SENSOR)
        var = local_variance(query_energy(q, SENSOR, 15), ref)
        for o in (loud, quiet):
            raw[o].append(cc[o])
            norm[o].append(cc[o] / math.sqrt(var[o]))
    assert np.std(raw[loud]) > 2.0 * np.std(raw[quiet])
    assert 0.7 < np.std(norm[loud]) / np.std(norm[quiet]) < 1.4


def test_local_normalisation_keeps_unrelated_peaks_off_a_loud_part_of_the_fingerprint(sensor):
    """Crops of another device against a fingerprint with a loud block: the plain search's peak falls where the
    block is under the crop in most queries, at PCEs that reach the threshold (2 of these 12: false alarms), the
    normalised one's no more often than the block's share of the offsets and at the level of a Gaussian null's
    maximum. A true crop is found at its offset either way, above the same threshold; its PCE is lower normalised
    (it lies 41 % over the loud block, where a peak of its height is less surprising under the null: the PCE falls
    by about the ratio of the plane's mean null variance to the variance at its offset)."""
    from camforensics.core.matching import match_residual

    k = _uneven_fingerprint(5)
    h = w = 128
    plain = MatchParams(rotations="none", jpeg_grid=False, crop_variance_window=0)
    normalised = MatchParams(rotations="none", jpeg_grid=False)
    assert normalised.crop_variance_window == 15
    over_block = {"plain": 0, "normalised": 0}
    largest = {"plain": 0.0, "normalised": 0.0}
    for j in range(12):
        rng = np.random.default_rng(200 + j)
        residual = rng.normal(0.0, 1.0, (h, w)).astype(np.float32)
        grey = np.full((h, w), 128.0, np.float32)
        for name, m in (("plain", plain), ("normalised", normalised)):
            r = match_residual(residual, grey, k, match=m)
            oy, ox = r.crop_offset
            over_block[name] += (300 - h < oy < 460) and (400 - w < ox < 600)
            largest[name] = max(largest[name], r.pce)
            if name == "normalised":
                assert r.pce < r.threshold
    share = (460 - 300 + h) * (600 - 400 + w) / n_offsets(h, w)  # about 0.18
    assert over_block["plain"] >= 9 and over_block["normalised"] <= 12 * share + 2, (over_block, share)
    assert largest["plain"] > 2.0 * largest["normalised"] and largest["normalised"] < 35.0, largest
    # a true crop of a planted PRNU, partly over the loud block
    truth = synth.make_prnu(SENSOR, 44, strength=0.02)
    y, x = 256, 352
    grey = np.full((h, w), 128.0, np.float32)
    fp = truth + 0.02 * _uneven_fingerprint(6)
    residual = grey * truth[y : y + h, x : x + w] + np.random.default_rng(7).normal(0.0, 1.0, (h, w)).astype(np.float32)
    on, off = match_residual(residual, grey, fp, match=normalised), match_residual(residual, grey, fp, match=plain)
    assert on.crop_offset == off.crop_offset == (y, x)
    assert 0.4 * off.pce < on.pce < off.pce and on.threshold == off.threshold and on.pce > 10 * on.threshold, (on.pce, off.pce)
    assert on.ncc == pytest.approx(off.ncc, rel=1e-4)  # ncc stays the plain correlation's


def test_the_matched_score_at_a_known_offset_is_the_correlation_over_its_null_std_and_a_chi_square_of_one_degree():
    """MatchParams.crop_offset_statistic="matched": at one known offset a crop is scored by sign(z) z**2, z the
    correlation there over the square root of V there (the query's local energy against the fingerprint's squared
    values under it). Against the exact z it agrees to the block approximation's error; over unrelated white crops
    at an offset over a loud block and at a quiet one it has the mean and tail of a chi-square of one degree (the
    P_FA's null), where the plain correlation's spread differs threefold; a true crop scores above the threshold of
    one hypothesis; a search over more than one offset stays the PCE's."""
    from camforensics.core.matching import Query, match_query
    from camforensics.core.pce import spectrum_of

    k = _uneven_fingerprint(8)
    ref = spectrum_of(k, conjugate=True)
    kc = k.astype(np.float64) - k.mean(dtype=np.float64)
    h = w = 128
    grey = np.full((h, w), 128.0, np.float32)
    scores = {}
    for at in ((320, 420), (40, 40)):  # over the loud block, and away from it
        m = MatchParams(rotations="none", crop_anchor=at, crop_offset_statistic="matched", crop_variance_window=1)
        got, exact = [], []
        for j in range(60):
            residual = np.random.default_rng(300 + j).normal(0.0, 1.0, (h, w)).astype(np.float32)
            r = match_query(Query(residual, grey), ref, match=m)
            assert r.crop_offset == at and r.n_hypotheses == 1 and r.threshold == 60.0
            s = Query(residual, grey).scene_weighted(m.crop_scene_window).astype(np.float64)
            s -= s.mean()
            kw = kc[at[0] : at[0] + h, at[1] : at[1] + w]
            corr = float(np.sum(s * kw))
            exact.append(math.copysign(corr * corr / float(np.sum(s * s * kw * kw)), corr))
            got.append(r.pce)
        got, exact = np.array(got), np.array(exact)
        assert np.allclose(got, exact, rtol=0.05, atol=0.02), np.max(np.abs(got - exact))
        scores[at] = got
    both = np.concatenate(list(scores.values()))
    assert 0.7 < np.mean(np.abs(both)) < 1.35 and np.max(both) < 15.0, (np.mean(np.abs(both)), np.max(both))
    assert np.mean(both > 0) == pytest.approx(0.5, abs=0.15)
    # a true crop at its offset
    truth = synth.make_prnu(SENSOR, 45, strength=0.02)
    y, x = 200, 300
    fp = truth + 0.02 * _uneven_fingerprint(9)
    residual = grey * truth[y : y + h, x : x + w] + np.random.default_rng(10).normal(0.0, 1.0, (h, w)).astype(np.float32)
    at = MatchParams(rotations="none", crop_anchor=(y, x), crop_offset_statistic="matched")
    hit = match_query(Query(residual, grey), spectrum_of(fp, conjugate=True), match=at)
    assert hit.is_match and hit.pce > 60.0 and hit.crop_offset == (y, x)
    pce = match_query(Query(residual, grey), spectrum_of(fp, conjugate=True), match=MatchParams(rotations="none", crop_anchor=(y, x)))
    assert hit.ncc == pytest.approx(pce.ncc, rel=1e-4) and hit.pce != pce.pce
    # more than one offset searched: the PCE, as without the option
    near = dataclasses.replace(at, shift_range=(2, 2))
    assert match_query(Query(residual, grey), spectrum_of(fp, conjugate=True), match=near).pce == match_query(
        Query(residual, grey), spectrum_of(fp, conjugate=True), match=dataclasses.replace(near, crop_offset_statistic="pce")).pce


def test_the_matched_score_leaves_same_size_queries_alone(sensor):
    img = sensor["nat"][0]
    on = match_image(img, sensor["k"], match=MatchParams(crop_offset_statistic="matched"))
    off = match_image(img, sensor["k"])
    assert on.search == off.search == "aligned" and on.pce == off.pce and on.is_match


def test_sizes_that_fit_nothing_and_bad_parameters_are_refused():
    m = MatchParams()
    assert not fits((600, 700), SENSOR, match=m) and not fits((40, 300), SENSOR, match=m)
    assert fits((640, 300), SENSOR, match=m)  # fits turned a quarter
    first, fallback = crop_plan((640, 300), SENSOR, match=m)
    assert not first and {(h.rotation, h.shape) for h in fallback} == {(90, (300, 640)), (270, (300, 640))}
    assert not fits((256, 256), SENSOR, match=MatchParams(crop_anchor="none"))
    with pytest.raises(SizeMismatchError, match="fits no rotation"):
        match_image(np.zeros((600, 700, 3), np.uint8), np.zeros(SENSOR, np.float32))
    for bad in ({"scales": (1.2,)}, {"scales": ()}, {"crop_anchor": "middle"}, {"crop_anchor": (1, -2)}, {"rotations": "x"},
                {"crop_scene_window": 4}, {"crop_scene_window": -1}, {"crop_scene_window": 1}, {"crop_scene_window": True},
                {"crop_variance_window": 4}, {"crop_variance_window": -1}, {"crop_variance_window": True},
                {"crop_offset_statistic": "z"}, {"crop_offset_statistic": None}):
        with pytest.raises(ParameterError):
            MatchParams(**bad)
    assert MatchParams(scales=(0.5, 1.0, 0.75)).scales == (1.0, 0.75, 0.5)


# ----------------------------------------------------------------------------------------- commands end to end


@pytest.fixture(scope="module")
def crop_queries(device_tree, tmp_path_factory):
    """Lossless crops (PNG) of the synthetic devices' natural JPEGs, a downscaled one, and one too large."""
    from PIL import Image

    q = tmp_path_factory.mktemp("crops")
    truth = {}
    for j, (name, box) in enumerate((("cam_a", (0, 96, 160, 160)), ("cam_b", (80, 16, 176, 128)), ("cam_c", (48, 64, 128, 192)))):
        y, x, h, w = box
        rgb = np.asarray(Image.open(device_tree / name / "nat" / f"nat {j}.jpg"))
        Image.fromarray(rgb[y : y + h, x : x + w]).save(q / f"{name}_crop.png")
        truth[f"{name}_crop.png"] = (name, (y, x))
    rgb = np.asarray(Image.open(device_tree / "cam_c" / "nat" / "nat 2.jpg"))
    Image.fromarray(np.rot90(rgb[48:176, 64:256], 1)).save(q / "cam_c_turned.png")  # turned a quarter by software
    rgb = np.asarray(Image.open(device_tree / "cam_b" / "nat" / "nat 1.jpg"))
    Image.fromarray(cv2.resize(rgb, (192, 192), interpolation=cv2.INTER_AREA)).save(q / "cam_b_small.png")
    Image.new("RGB", (300, 280), (120, 120, 120)).save(q / "too_large.png")
    return q, truth


def test_identify_names_the_device_and_the_offset_of_crops(crop_queries, device_tree, tmp_path):
    from test_cli import invoke

    from camforensics.pipelines.enroll import enroll_device

    lib = tmp_path / "lib"
    for name in ("cam_a", "cam_b", "cam_c"):
        enroll_device([device_tree / name / "flat"], name=name, library=lib)
    q, truth = crop_queries
    report = tmp_path / "id.json"
    res = invoke("identify", q, "--library", lib, "--no-model", "--scales", "0.7:1:0.05", "-r", report)
    assert res.exit_code == 1, res.output  # the image that fits no fingerprint fails; the others are done
    doc = json.loads(report.read_text())
    results = {Path(r["input"]["path"]).name: r for r in doc["results"]}
    for name, (device, offset) in truth.items():
        d = results[name]["decision"]
        assert d["match"] and d["device"] == device and d["crop_offset"] == list(offset), d
        assert d["search"] == "crop" and d["threshold"] > 60 and d["scale"] == 1.0
        others = [c for c in results[name]["candidates"] if c["device"] != device]
        assert all(c["pce"] < c["threshold"] for c in others)
        # A match in the stored order: no fingerprint was searched in other orientations.
        assert all(c["n_hypotheses"] == d["n_hypotheses"] and list(c["pce_by_rotation"]) == ["0"] for c in others)
    turned = results["cam_c_turned.png"]
    d = turned["decision"]
    assert d["device"] == "cam_c" and d["rotation"] == 270 and not d["mirrored"] and d["crop_offset"] == [48, 64]
    assert all(len(c["pce_by_rotation"]) == 8 for c in turned["candidates"])  # no stored-order match anywhere
    small = results["cam_b_small.png"]["decision"]
    assert small["device"] == "cam_b" and small["scale"] == pytest.approx(0.75) and small["crop_offset"] == [0, 0]
    err = results["too_large.png"]["error"]["message"]
    assert "matches no fingerprint size" in err and "larger than every fingerprint" in err
    params = doc["run"]["parameters"]["match"]
    assert params["crop_anchor"] == "any" and params["scales"][0] == 1.0 and len(params["scales"]) == 7
    assert doc["run"]["decision_rule"]["crop_search"]["scales"] == params["scales"]
    assert doc["run"]["decision_rule"]["crop_search"]["scene_window"] == MatchParams().crop_scene_window == 15
    assert doc["run"]["decision_rule"]["crop_search"]["variance_window"] == MatchParams().crop_variance_window == 15
    assert doc["run"]["decision_rule"]["crop_search"]["offset_statistic"] == MatchParams().crop_offset_statistic == "pce"


def test_identify_resume_refuses_other_search_settings(crop_queries, device_tree, tmp_path):
    from camforensics.errors import CamforensicsError
    from camforensics.pipelines.enroll import enroll_device
    from camforensics.pipelines.identify import identify_images

    lib = tmp_path / "lib"
    enroll_device([device_tree / "cam_a" / "flat"], name="cam_a", library=lib)
    q, _ = crop_queries
    journal = tmp_path / "j.partial.jsonl"
    identify_images([q / "cam_a_crop.png"], library=lib, journal=journal)
    with pytest.raises(CamforensicsError, match=r"match\.scales"):
        identify_images([q / "cam_a_crop.png"], library=lib, journal=journal, resume=True, match=MatchParams(scales=(1.0, 0.5)))
    with pytest.raises(CamforensicsError, match=r"match\.crop_anchor"):
        identify_images([q / "cam_a_crop.png"], library=lib, journal=journal, resume=True, match=MatchParams(crop_anchor="centre"))


def test_verify_a_cropped_set_against_the_full_frame_set(device_tree, tmp_path):
    from PIL import Image
    from test_cli import invoke

    crops = tmp_path / "crops"
    crops.mkdir()
    for j in range(3):
        rgb = np.asarray(Image.open(device_tree / "cam_a" / "nat" / f"nat {j}.jpg"))
        Image.fromarray(rgb[32:224, 64:224]).save(crops / f"{j}.png")
    report = tmp_path / "v.json"
    res = invoke("verify", device_tree / "cam_a" / "flat", crops, "--no-model", "-r", report)
    assert res.exit_code == 0 and "PRNU: same camera" in res.output, res.output
    doc = json.loads(report.read_text())
    d = doc["summary"]["decision"]
    assert d["same_device"] and d["query_set"] == "B" and d["crop_offset"] == [32, 64] and d["threshold"] > 60
    # Each full-frame image of A is larger than B's fingerprint: searched the other way round.
    per_a = [r["vs_other_set"] for r in doc["results"] if r["set"] == "A"]
    assert all(v.get("roles_swapped") and v["pce"] > v["threshold"] for v in per_a)
    per_b = [r["vs_other_set"] for r in doc["results"] if r["set"] == "B"]
    assert all(v["crop_offset"] == [32, 64] for v in per_b)
    # And the other device's flat fields do not match the crops.
    res = invoke("verify", device_tree / "cam_b" / "flat", crops, "--no-model", "-r", tmp_path / "v2.json")
    d2 = json.loads((tmp_path / "v2.json").read_text())["summary"]["decision"]
    assert not d2["same_device"] and d2["pce"] < d2["threshold"]
    assert math.isfinite(d2["log10_p_fa"])


def test_search_options_are_parsed_and_bad_values_refused_in_one_line(tmp_path):
    from test_cli import invoke

    from camforensics.cli.options import parse_crop_anchor, parse_scales

    assert parse_scales("1") == (1.0,) and parse_scales("1,0.75,0.5") == (1.0, 0.75, 0.5)
    assert parse_scales("0.5:1:0.25") == (0.5, 0.75, 1.0) and len(parse_scales("0.5:1:0.005")) == 101
    assert parse_crop_anchor("center") == "centre" and parse_crop_anchor("16,32") == (16, 32)
    for option, value, hint in (("--scales", "abc", "START:STOP:STEP"), ("--scales", "2", "between"),
                                ("--crop-anchor", "middle", "Y,X"), ("--rotations", "some", "dih4")):
        res = invoke("identify", tmp_path, "--library", tmp_path, "--no-model", option, value)
        assert res.exit_code == 2 and hint in res.output, res.output


def test_the_peak_of_a_window_is_numpy_s_argmax():
    """crop_pces reads the peak of a window of the plane without copying it: the same offset as np.argmax of the
    window, ties (the first in row-major order) and NaN included."""
    from camforensics.core.cropsearch import _argmax_2d

    rng = np.random.default_rng(12)
    plane = rng.normal(size=(97, 131)).astype(np.float32)
    plane[40, 7] = plane[40, 90] = plane[60, 3] = 9.0  # equal maxima
    for window in ((slice(0, 97), slice(0, 131)), (slice(5, 80), slice(2, 120)), (slice(0, 97, 8), slice(3, 131, 8)),
                   (slice(40, 41), slice(90, 91)), (slice(41, 97), slice(0, 131))):
        a = plane[window]
        assert _argmax_2d(a) == tuple(int(v) for v in np.unravel_index(int(np.argmax(a)), a.shape))
    with_nan = plane.copy()
    with_nan[70, 5] = np.nan
    a = with_nan[10:90, :]
    assert _argmax_2d(a) == tuple(int(v) for v in np.unravel_index(int(np.argmax(a)), a.shape)) == (60, 5)


@pytest.mark.parametrize("shape", [(512, 640), (1001, 777), (64, 72), (9, 17)])
def test_the_weight_plane_is_the_bilinear_resize_of_the_coarse_map_read_from_half_a_block_on(shape):
    """cropsearch._at_offsets (an affine warp straight into the plane's shape) gives the values of a bilinear resize
    of the wrapped coarse map by 8 read from its pixel 4 on (how the weights were first computed), bit for bit."""
    from camforensics.core.cropsearch import VARIANCE_BLOCK, _at_offsets, _coarse_shape

    b = VARIANCE_BLOCK
    coarse = np.random.default_rng(13).random(_coarse_shape(shape)) + 0.5
    wrapped = np.pad(coarse, ((0, 1), (0, 1)), mode="wrap").astype(np.float32)
    fine = cv2.resize(wrapped, (wrapped.shape[1] * b, wrapped.shape[0] * b), interpolation=cv2.INTER_LINEAR)
    got = _at_offsets(coarse, shape)
    assert got.flags.c_contiguous and got.dtype == np.float32
    assert np.array_equal(got, fine[b // 2 : b // 2 + shape[0], b // 2 : b // 2 + shape[1]])


def test_the_weight_applied_in_strips_gives_the_whole_plane_s_search():
    """crop_pces with a WeightMap (the weight interpolated, multiplied in and the energy summed strip by strip, what
    match_crop does) against the whole weight plane multiplied in at once: the same peak and ncc, the PCE to the
    last bits of the energy's sum; and a band of the map's rows is the whole plane's rows."""
    from camforensics.core.cropsearch import (WEIGHT_STRIP_ROWS, crop_pces, local_weight, local_weight_map,
                                              padded_spectrum, query_energy)
    from camforensics.core.pce import spectrum_of

    k = _uneven_fingerprint(14)
    ref = spectrum_of(k, conjugate=True)
    q = np.random.default_rng(15).normal(0.0, 1.0, (150, 170)).astype(np.float32)
    q += 0.5 * k[100:250, 200:370]
    energy = query_energy(q, SENSOR, 15)
    spec = padded_spectrum(q, SENSOR)
    windows = [offset_window((150, 170), SENSOR), (slice(0, 363, 8), slice(5, 471, 8))]
    wmap = local_weight_map(energy, ref)
    plane = local_weight(energy, ref)
    assert np.array_equal(wmap.plane(), plane) and SENSOR[0] > WEIGHT_STRIP_ROWS
    assert np.array_equal(wmap.rows(100, 137), plane[100:137]) and np.array_equal(wmap.rows(490, 512), plane[490:])
    from camforensics.core.cropsearch import _strips

    for rows in (512, 3024, 63, 64, 127, 128, 129, 1000):
        bands = _strips(rows)
        assert bands[0][0] == 0 and bands[-1][1] == rows and all(a[1] == b[0] for a, b in zip(bands, bands[1:]))
        assert all(b - a >= min(rows, WEIGHT_STRIP_ROWS) for a, b in bands), bands
    strips = crop_pces(spec, (150, 170), ref, windows, weight=wmap)
    whole = crop_pces(spec, (150, 170), ref, windows, weight=plane)
    assert strips[0].peak_shift == whole[0].peak_shift == (100, 200)
    for a, b in zip(strips, whole):
        assert a.peak_shift == b.peak_shift and a.ncc == b.ncc and a.pce == pytest.approx(b.pce, rel=1e-12)

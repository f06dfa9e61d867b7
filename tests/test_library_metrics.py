"""ROC / AUC from scikit-learn and PSNR / SSIM from scikit-image agree with the hand-written versions they
replaced (kept in tests/reference_*.py as the reference)."""

from __future__ import annotations

import numpy as np
import pytest

import reference_metrics
import reference_quality
from camforensics.core import metrics, quality


@pytest.mark.parametrize("seed", range(6))
def test_roc_curve_matches_the_hand_written_one(seed):
    rng = np.random.default_rng(seed)
    n = 60 + 20 * seed
    labels = rng.random(n) < 0.4
    labels[:2] = [True, False]
    scores = np.round(rng.normal(labels * 1.5, 1.0), 1)  # rounded: many ties
    if seed % 2:
        scores[rng.integers(0, n, 3)] = np.inf
        scores[rng.integers(0, n, 2)] = -np.inf
    new = metrics.roc_curve(scores, labels)
    fpr, tpr, th = reference_metrics.roc_curve(scores, labels)
    np.testing.assert_allclose(new.fpr, fpr, atol=1e-12)
    np.testing.assert_allclose(new.tpr, tpr, atol=1e-12)
    np.testing.assert_array_equal(new.thresholds, th)
    assert metrics.auc(new.fpr, new.tpr) == pytest.approx(float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)), abs=1e-12)


def test_auc_of_a_known_curve():
    assert metrics.roc_auc([3, 2, 1, 0], [True, True, False, False]) == 1.0
    assert metrics.roc_auc([1, 1, 1, 1], [True, False, True, False]) == 0.5  # all tied: half


@pytest.mark.parametrize("shape", [(64, 48), (40, 52, 3), (11, 11, 3)])
def test_psnr_and_ssim_match_the_hand_written_ones(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, shape).astype(np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-12, 13, shape), 0, 255).astype(np.uint8)
    assert quality.psnr(a, b) == pytest.approx(reference_quality.psnr(a, b), abs=1e-9)
    assert quality.ssim(a, b) == pytest.approx(reference_quality.ssim(a, b), abs=1e-9)
    assert quality.psnr(a, a) == np.inf and quality.ssim(a, a) == pytest.approx(1.0)


def test_ssim_of_a_tiny_image_still_answers():
    a = np.zeros((6, 6), np.uint8)
    b = a.copy()
    b[2, 2] = 40
    assert quality.ssim(a, b) == pytest.approx(reference_quality.ssim(a, b))


@pytest.mark.parametrize("shape", [(11, 11), (11, 40, 3), (200, 131), (300, 257, 3), (1000, 700)])
def test_ssim_equals_scikit_image_structural_similarity(shape):
    """The strip-wise float64 SSIM (threads, OpenCV filters) is scikit-image's value within float64 rounding, on
    strips that split the image (more than SSIM_STRIP_ROWS rows) and on images of one strip."""
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, shape).astype(np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-30, 31, shape) + 9, 0, 255).astype(np.uint8)
    expected = structural_similarity(
        a.astype(np.float64), b.astype(np.float64), data_range=255, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, channel_axis=2 if len(shape) == 3 else None,
    )  # fmt: skip
    assert quality.ssim(a, b) == pytest.approx(expected, abs=1e-13)
    assert quality.ssim(a.astype(np.float32) + 0.25, b) == pytest.approx(
        structural_similarity(a + 0.25, b.astype(np.float64), data_range=255, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, channel_axis=2 if len(shape) == 3 else None),
        abs=1e-13,
    )  # fmt: skip


@pytest.mark.parametrize("shape", [(7, 9), (300, 401, 3)])
def test_psnr_of_8_bit_images_is_scikit_images_value_exactly(shape):
    """The exact integer sum of squared differences gives scikit-image's float64 PSNR to the last bit."""
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, shape).astype(np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-9, 10, shape), 0, 255).astype(np.uint8)
    assert quality.psnr(a, b) == peak_signal_noise_ratio(a.astype(np.float64), b.astype(np.float64), data_range=255)
    assert quality.psnr(b, a) == quality.psnr(a, b) and quality.psnr(a, a.copy()) == np.inf
    assert quality.psnr(a.astype(np.float32), b) == pytest.approx(quality.psnr(a, b), rel=1e-12)  # the float path

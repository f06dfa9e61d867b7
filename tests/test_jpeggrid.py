"""The JPEG block-grid phase of decoded, cropped images (camforensics.core.jpeggrid)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from camforensics.core.cropsearch import window_size
from camforensics.core.jpeggrid import MIN_CONFIDENCE, grid_offsets, grid_phase, zero_shares
from camforensics.errors import ParameterError


def textured(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A grey scene with smooth shading, edges and sensor-like noise (0..255, uint8)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 120 + 60 * np.sin(xx / 37.0 + seed) * np.cos(yy / 23.0)
    for _ in range(12):
        y0, x0 = rng.integers(0, h - 40), rng.integers(0, w - 40)
        img[y0 : y0 + 40, x0 : x0 + 60] += rng.uniform(-50, 50)
    img += rng.normal(0, 2.0, shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg(grey: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


@pytest.mark.parametrize(("quality", "y", "x"), [(95, 0, 0), (90, 3, 5), (85, 17, 42), (98, 100, 7)])
def test_the_phase_of_a_crop_of_a_decoded_jpeg_is_where_its_blocks_start(quality, y, x):
    decoded = jpeg(textured((480, 560), quality), quality)
    crop = decoded[y : y + 300, x : x + 320]
    g = grid_phase(crop.astype(np.float32))
    assert g.phase == ((-y) % 8, (-x) % 8) and g.found, g
    assert g.to_dict()["found"] and g.confidence > MIN_CONFIDENCE


def test_images_without_a_grid_have_no_phase():
    raw = textured((400, 400), 3)
    assert not grid_phase(raw).found  # never coded
    resampled = cv2.resize(jpeg(raw, 90), (333, 333), interpolation=cv2.INTER_AREA)
    assert not grid_phase(resampled).found  # coded, then resampled: the blocks are gone


def test_the_share_of_zero_coefficients_peaks_at_the_grid_only():
    shares = zero_shares(jpeg(textured((256, 256), 5), 90))
    assert shares.shape == (8, 8) and np.argmax(shares) == 0
    assert shares[0, 0] > shares.ravel()[1:].max() + 0.05


def test_grid_offsets_are_the_window_offsets_that_align_the_grids():
    window = (slice(3, 260), slice(10, 300))
    ys, xs = grid_offsets((5, 2), window)
    rows = list(range(ys.start, ys.stop, ys.step))
    cols = list(range(xs.start, xs.stop, xs.step))
    assert rows and all((r + 5) % 8 == 0 and 3 <= r < 260 for r in rows)
    assert cols and all((c + 2) % 8 == 0 and 10 <= c < 300 for c in cols)
    expected = sum((r + 5) % 8 == 0 for r in range(3, 260)) * sum((c + 2) % 8 == 0 for c in range(10, 300))
    assert window_size((ys, xs)) == expected
    assert window_size(grid_offsets((1, 1), (slice(0, 1), slice(0, 1)))) == 0  # no grid offset in a one-offset window


def test_bad_images_are_refused():
    for bad in (np.zeros((8, 100)), np.zeros((20, 20, 3))):
        with pytest.raises(ParameterError):
            grid_phase(bad)

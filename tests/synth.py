"""Small synthetic camera for tests: a known PRNU K in smooth content, shot noise, Bayer CFA, demosaic, JPEG.

Everything is seeded; a test that uses it knows the right answer (which K is in which image).
"""

from __future__ import annotations

import cv2
import numpy as np


def make_prnu(shape: tuple[int, int], seed: int, strength: float = 0.02) -> np.ndarray:
    """A device's multiplicative PRNU factor K (zero-mean, std ``strength``)."""
    return np.random.default_rng(seed).normal(0.0, strength, shape).astype(np.float32)


def scene(shape: tuple[int, int], seed: int, *, flat: bool = False) -> np.ndarray:
    """Smooth RGB content on a 0..255 scale: a bright gradient (flat) or blobs and edges (natural)."""
    h, w = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if flat:
        base = 170 + 30 * (xx / w) + 20 * (yy / h)
        img = np.stack([base * c for c in rng.uniform(0.85, 1.0, 3)], axis=2)
    else:
        coarse = rng.uniform(30, 220, (max(h // 48, 2), max(w // 48, 2), 3)).astype(np.float32)
        img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        for _ in range(6):  # a few hard edges, where denoisers leak scene content
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + w // 5), int(y0 + h // 7)), rng.uniform(20, 235, 3).tolist(), -1)
    return np.clip(img, 0, 255).astype(np.float32)


def shoot(
    k: np.ndarray,
    seed: int,
    *,
    flat: bool = False,
    jpeg_quality: int | None = 92,
    read_noise: float = 1.5,
) -> np.ndarray:
    """One photo of a device with PRNU ``k``: uint8 RGB in sensor order (decoded back from JPEG if asked)."""
    h, w = k.shape
    rng = np.random.default_rng(10_000 + seed)
    light = scene((h, w), seed, flat=flat)
    raw_rgb = light * (1.0 + k[:, :, None])
    # Bayer RGGB: keep one colour per photosite, then shot + read noise on that photosite.
    mosaic = np.empty((h, w), np.float32)
    mosaic[0::2, 0::2] = raw_rgb[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = raw_rgb[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = raw_rgb[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = raw_rgb[1::2, 1::2, 2]
    mosaic += rng.normal(0, 1, mosaic.shape).astype(np.float32) * np.sqrt(0.05 * mosaic + read_noise**2)
    bayer = np.clip(np.round(mosaic), 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(bayer, cv2.COLOR_BayerRGGB2RGB)
    if jpeg_quality is None:
        return rgb
    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()


def write_jpeg(path, rgb: np.ndarray, *, quality: int = 92, exif: dict | None = None) -> None:
    """Write RGB uint8 as a JPEG (Pillow, so EXIF tags such as Make 0x010F can be set)."""
    from PIL import Image

    img = Image.fromarray(rgb)
    ex = Image.Exif()
    for tag, value in (exif or {}).items():
        ex[tag] = value
    img.save(path, quality=quality, exif=ex.tobytes())

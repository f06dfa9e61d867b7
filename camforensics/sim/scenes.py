"""Scene content: what the camera looks at, as linear RGB radiance (float32 HxWx3, about 0..1).

Three sources:

- flat fields (:func:`render_flat_scene`): a bright, smooth wall or sky with a gentle gradient, what labs shoot
  to estimate a PRNU fingerprint;
- natural scenes (:func:`render_natural_scene`): procedural sky/ground or wall/floor layouts with fractal
  textures, soft objects and sharp-edged shapes, so that residuals carry scene edges and texture as real
  photographs do;
- photographs (:func:`load_photo_scene`): a real photo downscaled by at least 2 (area averaging), which erases
  its own camera's PRNU and JPEG grid, then cropped to size.

Most of the work happens at half resolution and is upsampled once; sharp edges are drawn at full resolution.
None of these functions keeps state between calls: the content depends only on the ``rng`` passed in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from camforensics.errors import InputError, ParameterError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
MIN_PHOTO_DOWNSCALE = 2.0  # a photo is shrunk at least this much, so its own sensor noise averages away
_DISPLAY_GAMMA = 2.2  # colours are drawn display-referred and linearised with this exponent


def _check_size(height: int, width: int) -> None:
    if height < 8 or width < 8:
        raise ParameterError(f"scene size must be at least 8x8 pixels, got {width}x{height}")


def _linear(srgb: np.ndarray) -> np.ndarray:
    return np.power(np.clip(srgb, 0.0, 1.0), _DISPLAY_GAMMA)


def display_render(scene: np.ndarray) -> np.ndarray:
    """A scene as a synthetic image with no camera pipeline (no optics, sensor, colour filter array, demosaicing,
    camera colour processing or JPEG): the linear radiance clipped to 0..1, display-encoded with the exponent the
    scenes are drawn with (1 / 2.2) and rounded to 8 bits. What a renderer writes, SpoC's "synthetic" case."""
    return np.rint(255.0 * np.power(np.clip(scene, 0.0, 1.0), 1.0 / _DISPLAY_GAMMA)).astype(np.uint8)


def _resize(img: np.ndarray, height: int, width: int, *, cubic: bool = False) -> np.ndarray:
    import cv2

    interp = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interp)


def fractal_noise(rng: np.random.Generator, height: int, width: int, *, octaves: int = 5, roughness: float = 0.6) -> np.ndarray:
    """Sum of upsampled white-noise octaves (value noise), zero mean, std 1.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    height, width : int
        Output size.
    octaves : int
        Number of scales, each twice finer than the last; the finest is one sample per output pixel.
    roughness : float
        Amplitude ratio between successive finer octaves (higher = rougher texture).

    Returns
    -------
    numpy.ndarray
        float32 HxW field.
    """
    import cv2

    # Coarse-to-fine: upsample the sum so far by 2 (Gaussian pyramid) and add the next, finer octave. Each
    # level costs a quarter of the next, so the whole field costs about 1.3 passes at full size.
    sizes = [(height, width)]
    for _ in range(octaves - 1):
        h, w = sizes[-1]
        sizes.append((max(2, -(-h // 2)), max(2, -(-w // 2))))
    amp = roughness ** (octaves - 1)
    out = rng.random(sizes[-1], dtype=np.float32)
    for h, w in reversed(sizes[:-1]):
        out = cv2.pyrUp(out, dstsize=(w, h)) if (2 * out.shape[0] - h) in (0, 1) and (2 * out.shape[1] - w) in (0, 1) else _resize(out, h, w)
        fine = rng.random((h, w), dtype=np.float32)
        fine *= np.float32(amp)
        out += fine
        amp /= roughness
    sample = out[:: max(1, height // 64), :: max(1, width // 64)]
    out -= np.float32(sample.mean())
    out *= np.float32(1.0 / max(float(sample.std()), 1e-6))
    return out


def _random_colour(rng: np.random.Generator, *, lo: float = 0.05, hi: float = 0.95, saturation: float = 0.6) -> np.ndarray:
    grey = rng.uniform(lo, hi)
    return np.clip(grey + saturation * rng.uniform(-0.5, 0.5, size=3) * min(grey, 1 - grey) * 2, 0.0, 1.0)


def render_flat_scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A flat field: a bright, smooth wall or sky with a slight gradient and very low-frequency shading.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    height, width : int
        Scene size in pixels.

    Returns
    -------
    numpy.ndarray
        float32 HxWx3 linear radiance, mean about 0.5..0.85.
    """
    _check_size(height, width)
    kind = rng.choice(["wall", "sky"])
    if kind == "sky":
        base = np.array([rng.uniform(0.55, 0.75), rng.uniform(0.7, 0.85), rng.uniform(0.85, 0.97)])
    else:
        base = 0.85 + rng.uniform(-0.12, 0.1, size=1) + rng.uniform(-0.04, 0.04, size=3)
    # Build a tiny grid and upsample: a linear gradient plus a gentle blotch of light, both within +-8%.
    gh, gw = 9, 12
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    ramp = rng.uniform(-0.08, 0.08) * (yy / (gh - 1) - 0.5) + rng.uniform(-0.08, 0.08) * (xx / (gw - 1) - 0.5)
    blotch = 0.03 * rng.standard_normal((3, 4)).astype(np.float32)
    shade = 1.0 + ramp + _resize(blotch, gh, gw, cubic=True)
    grid = _linear(base[None, None, :] * shade[:, :, None]).astype(np.float32)
    # Two steps (cubic to 1/16, then linear): OpenCV's cubic upscale straight from a tiny grid is slow.
    mid = _resize(grid, max(2, height // 16), max(2, width // 16), cubic=True)
    return np.ascontiguousarray(_resize(mid, height, width))


def render_natural_scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A textured natural-looking scene: layout, fractal textures, soft objects, sharp shapes.

    Parameters
    ----------
    rng, height, width
        As :func:`render_flat_scene`: the source of randomness and the scene size in pixels.

    Returns
    -------
    numpy.ndarray
        float32 HxWx3 linear radiance, roughly 0..1.
    """
    import cv2

    _check_size(height, width)
    h2, w2 = -(-height // 2), -(-width // 2)  # luminance texture: half resolution
    h4, w4 = -(-h2 // 2), -(-w2 // 2)  # colours and soft objects: quarter resolution
    yy = np.linspace(0.0, 1.0, h4, dtype=np.float32)[:, None]
    # Layout: a top region (sky / wall) and a bottom region (ground / floor) split at a horizon.
    horizon = rng.uniform(0.25, 0.7) if rng.random() < 0.8 else 1.05
    top_a, top_b = _random_colour(rng, lo=0.5, hi=0.95), _random_colour(rng, lo=0.4, hi=0.9)
    bottom_a, bottom_b = _random_colour(rng, lo=0.1, hi=0.6), _random_colour(rng, lo=0.05, hi=0.5)
    t_top = np.clip(yy / max(horizon, 1e-3), 0, 1)
    t_bottom = np.clip((yy - horizon) / max(1 - horizon, 1e-3), 0, 1)
    rows = np.where(yy < horizon, top_a * (1 - t_top) + top_b * t_top, bottom_a * (1 - t_bottom) + bottom_b * t_bottom)
    rows = _linear(rows).astype(np.float32)[:, None, :]  # h4 x 1 x 3
    blotch = _resize(rng.standard_normal((4, 5, 3)).astype(np.float32), max(2, h4 // 16), max(2, w4 // 16), cubic=True)
    colour = rows * (1.0 + 0.12 * _resize(blotch, h4, w4))
    # Soft objects, each a colour with a smooth shading.
    for _ in range(int(rng.integers(3, 10))):
        ax, ay = int(rng.uniform(0.03, 0.25) * w4) + 1, int(rng.uniform(0.03, 0.25) * h4) + 1
        cx, cy = int(rng.integers(0, w4)), int(rng.integers(0, h4))
        x0, x1, y0, y1 = max(0, cx - ax), min(w4, cx + ax + 1), max(0, cy - ay), min(h4, cy + ay + 1)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.ellipse(mask, (cx - x0, cy - y0), (ax, ay), float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)
        alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
        shade = np.linspace(1.0, rng.uniform(0.6, 1.2), y1 - y0, dtype=np.float32)[:, None, None]
        tint = _linear(_random_colour(rng)).astype(np.float32)
        colour[y0:y1, x0:x1] = colour[y0:y1, x0:x1] * (1 - alpha) + tint * shade * alpha
    # Luminance texture at half resolution: rough below the horizon (grass, gravel), gentle above (clouds, plaster).
    rough = fractal_noise(rng, h2, w2, octaves=7, roughness=rng.uniform(0.55, 0.8))
    amp = np.where(np.linspace(0.0, 1.0, h2, dtype=np.float32)[:, None] < horizon, rng.uniform(0.03, 0.1), rng.uniform(0.15, 0.3))
    luminance = np.float32(1.0) + amp.astype(np.float32) * rough
    np.maximum(luminance, np.float32(0.05), out=luminance)
    img = _resize(colour, h2, w2)
    img *= luminance[:, :, None]
    np.clip(img, 0.0, 1.5, out=img)
    full = _resize(img, height, width, cubic=True)
    # Sharp-edged shapes at full resolution: buildings, signs, poles, text.
    for _ in range(int(rng.integers(4, 16))):
        colour = tuple(float(c) for c in _linear(_random_colour(rng)))
        kind = rng.integers(0, 4)
        if kind == 0:
            x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
            x1 = x0 + int(rng.uniform(0.03, 0.3) * width)
            y1 = y0 + int(rng.uniform(0.03, 0.3) * height)
            cv2.rectangle(full, (x0, y0), (x1, y1), colour, -1, cv2.LINE_AA)
        elif kind == 1:
            pts = rng.uniform([0, 0], [width, height], size=(int(rng.integers(3, 7)), 2)).astype(np.int32)
            cv2.fillPoly(full, [pts], colour, cv2.LINE_AA)
        elif kind == 2:
            p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(full, p0, p1, colour, max(1, int(rng.uniform(0.002, 0.01) * width)), cv2.LINE_AA)
        else:
            _draw_text(rng, full, colour)
    return full


def _draw_text(rng: np.random.Generator, img: np.ndarray, colour: tuple[float, ...]) -> None:
    """Draw a random word in place (OpenCV draws text on uint8 only: draw a mask over the word's box)."""
    import cv2

    height, width = img.shape[:2]
    scale = max(0.3, width / 1000 * rng.uniform(0.5, 1.5))
    thickness = max(1, int(2 * scale))
    text = "".join(rng.choice(list("ABCDEFGHKLMNPRSTUVXYZ0123456789"), size=int(rng.integers(3, 9))))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
    box = img[y0 : y0 + th + base + thickness, x0 : x0 + tw + thickness]
    if box.size == 0:
        return
    mask = np.zeros(box.shape[:2], np.uint8)
    cv2.putText(mask, text, (0, th), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
    box[...] = box * (1 - alpha) + np.asarray(colour, np.float32) * alpha


def list_photos(scene_dir: str | Path) -> list[Path]:
    """Image files under ``scene_dir`` (recursively), sorted, to serve as scene content.

    Raises
    ------
    InputError
        If the folder is missing or holds no image file.
    """
    folder = Path(scene_dir)
    if not folder.is_dir():
        raise InputError(f"scene folder {folder} does not exist or is not a folder")
    photos = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise InputError(f"scene folder {folder} holds no image ({', '.join(PHOTO_SUFFIXES)})")
    return photos


def load_photo_scene(path: str | Path, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A real photograph as scene content: shrunk by at least 2x (area average) and randomly cropped.

    Shrinking by ``MIN_PHOTO_DOWNSCALE`` or more averages the photo's own PRNU, noise and JPEG block grid well
    below the simulated sensor's. A photo too small for that is refused rather than upscaled.

    Parameters
    ----------
    path : path-like
        Image file readable by Pillow (EXIF orientation is applied: this is content, not evidence).
    rng : numpy.random.Generator
        Chooses the crop and a random mirror.
    height, width : int
        Scene size.

    Returns
    -------
    numpy.ndarray
        float32 HxWx3 linear radiance (display values linearised with gamma 2.2).

    Raises
    ------
    InputError
        If the file cannot be read or is smaller than twice the scene size.
    """
    import cv2
    from PIL import Image, ImageOps, UnidentifiedImageError

    _check_size(height, width)
    try:
        with Image.open(path) as im:
            need = (int(width * MIN_PHOTO_DOWNSCALE), int(height * MIN_PHOTO_DOWNSCALE))
            im.draft("RGB", need)  # JPEG DCT-domain downscale where it keeps at least `need`: fast on big photos
            photo = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"cannot read scene photo {path}: {exc}") from None
    ph, pw = photo.shape[:2]
    scale = max(height / ph, width / pw)  # smallest shrink that still covers the scene
    if scale > 1.0 / MIN_PHOTO_DOWNSCALE:
        raise InputError(
            f"scene photo {path} is {pw}x{ph}: it must be at least {MIN_PHOTO_DOWNSCALE:g}x the scene size "
            f"({int(width * MIN_PHOTO_DOWNSCALE)}x{int(height * MIN_PHOTO_DOWNSCALE)}) so that its own traces vanish"
        )
    scale *= rng.uniform(1.0, 1.25)  # a little zoom variety
    nh, nw = max(height, round(ph * scale)), max(width, round(pw * scale))
    small = cv2.resize(photo, (nw, nh), interpolation=cv2.INTER_AREA)
    y0 = int(rng.integers(0, nh - height + 1))
    x0 = int(rng.integers(0, nw - width + 1))
    crop = small[y0 : y0 + height, x0 : x0 + width]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    lut = ((np.arange(256, dtype=np.float32) / 255.0) ** _DISPLAY_GAMMA).astype(np.float32)
    return cv2.LUT(np.ascontiguousarray(crop), lut)

"""Decode images in sensor (stored) pixel order, with the checks a batch over evidence folders needs.

Pixels are never rotated by EXIF Orientation: camera files store the sensor's pixel order and PRNU must be
compared in that order. The orientation tag is read and reported.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from camforensics.errors import InputError
from camforensics.io.hashing import sha256_bytes

# Largest image decoded by default: 200 MP phones exist; much more is a decompression bomb for a 24 GB machine.
DEFAULT_MAX_PIXELS = 250_000_000
# Largest file read (bytes): far above any camera JPEG or 16-bit TIFF of the pixel limit.
MAX_FILE_BYTES = 2_000_000_000

_EXIF_MAKE, _EXIF_MODEL, _EXIF_ORIENTATION, _EXIF_DATETIME = 0x010F, 0x0110, 0x0112, 0x0132
_EXIF_IFD, _EXIF_DIGITAL_ZOOM = 0x8769, 0xA404  # DigitalZoomRatio lives in the Exif sub-IFD
# Held while Pillow's process-wide bomb limit and the warning filters are changed around a header parse: a read
# ahead (:func:`prefetch_image`) may parse one while the caller's thread parses another.
_PIL_GLOBALS = threading.RLock()


@dataclass(frozen=True)
class ImageInfo:
    """What a report records about one input image."""

    path: str  # as given (absolute or relative to the working directory)
    sha256: str  # of the file's bytes
    size_bytes: int
    format: str  # container format (JPEG, PNG, TIFF, ...)
    width: int
    height: int
    channels: int  # channels of the decoded pixels (1 or 3)
    bit_depth: int  # bits per sample in the file (8 or 16)
    mode: str  # Pillow mode of the file (RGB, L, CMYK, I;16, ...)
    exif_make: str | None = None
    exif_model: str | None = None
    exif_orientation: int | None = None  # 1..8; reported only, pixels stay in stored order
    exif_datetime: str | None = None
    # EXIF DigitalZoomRatio when the camera recorded one above 1: the frame is an upscaled crop of the sensor, so
    # its PRNU is not at the sensor's scale (enroll refuses such references); None when absent, 0 or 1
    exif_digital_zoom: float | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d


@dataclass(frozen=True)
class LoadedImage:
    """Decoded pixels and their provenance."""

    pixels: np.ndarray  # HxW or HxWx3, uint8 (8-bit files) or float32 on a 0..255 scale (16-bit files), RGB
    info: ImageInfo


def _open_regular(path: Path) -> tuple[BinaryIO, int]:
    """Open ``path`` for reading if it is a regular file; (file, size in bytes).

    The file is opened without blocking and checked with fstat before anything is read: a named pipe, a device
    or a socket is refused at once instead of hanging the run.
    """
    import stat

    from camforensics.io.safety import input_problem

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: {input_problem(path) or 'no such file'}") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        problem = input_problem(path)
        raise InputError(f"{path}: {problem or f'cannot read ({exc.strerror or exc})'}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = input_problem(path) or "not a regular file"
            raise InputError(f"{path}: {kind}; only regular files are read as images")
        if st.st_size == 0:
            raise InputError(f"{path}: empty file (0 bytes)")
        if st.st_size > MAX_FILE_BYTES:
            raise InputError(f"{path}: file of {st.st_size} bytes is larger than the {MAX_FILE_BYTES}-byte limit")
        return os.fdopen(fd, "rb"), int(st.st_size)
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes`` (a FIFO, device or socket is refused
    at once, never read: see :func:`_open_regular`).

    Raises
    ------
    InputError
        Missing, not a regular file, empty, larger than ``max_bytes`` or unreadable.
    """
    p = Path(path)
    f, size = _open_regular(p)
    with f:
        if size > max_bytes:
            raise InputError(f"{p}: file of {size} bytes is larger than the {max_bytes}-byte limit of this reader")
        return _read_all(f, p)


def _read_all(f: BinaryIO, path: Path) -> bytes:
    try:
        f.seek(0)
        return f.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _header(f: BinaryIO, path: Path, max_pixels: int) -> tuple[str, str, int, int, Any]:
    """(format, mode, width, height, lazy Pillow image) from the header alone, refusing a decompression bomb
    (``width * height > max_pixels``) before any pixel, EXIF block or further byte is read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _PIL_GLOBALS, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own bomb warning: we apply our own limit below
            saved_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                img = Image.open(f)  # lazy: parses the header only
            finally:
                Image.MAX_IMAGE_PIXELS = saved_limit
            fmt, mode, (width, height) = img.format or "unknown", img.mode, img.size
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (no known image format)") from None
    except Exception as exc:  # any header parse failure of a hostile file is that file's error
        raise InputError(f"{path}: unreadable image header ({exc})") from None
    if width <= 0 or height <= 0:
        raise InputError(f"{path}: image header gives an empty size {width}x{height}")
    if width * height > max_pixels:
        raise InputError(
            f"{path}: {width}x{height} = {width * height / 1e6:.0f} MP exceeds the {max_pixels / 1e6:.0f} MP limit "
            "(possible decompression bomb, refused from its header before decoding; raise --max-pixels if the "
            "image is genuine)"
        )
    return fmt, mode, int(width), int(height), img


def read_header(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[str, int, int]:
    """(format, width, height) of an image file from its header, without decoding pixels.

    Raises
    ------
    InputError
        Not a regular file, unreadable, not an image, or larger than ``max_pixels`` (never blocks on a FIFO).
    """
    path = Path(path)
    f, _ = _open_regular(path)
    with f:
        fmt, _, width, height, _ = _header(f, path, max_pixels)
    return fmt, width, height


def _jpeg_is_complete(data: bytes) -> bool:
    """True when a JPEG stream has an end-of-image marker after its first scan.

    Inside entropy-coded data 0xFF is always followed by 0x00 or a restart marker, so an FF D9 after the start of
    scan can only be the real end of image; a thumbnail's FF D9 lies in APP1, before the scan.
    """
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan
            return data.find(b"\xff\xd9", pos) != -1
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        pos += 2 + length
    return False


def _exif_fields(img: Any) -> tuple[str | None, str | None, int | None, str | None]:
    try:
        exif = img.getexif()
    except Exception:  # malformed EXIF must not lose the image; the pixels are what matter
        return None, None, None, None

    def text(tag: int) -> str | None:
        v = exif.get(tag)
        if v is None:
            return None
        if isinstance(v, bytes):
            v = v.decode("latin-1", "replace")
        v = str(v).strip().strip("\x00").strip()
        return v or None

    orientation = exif.get(_EXIF_ORIENTATION)
    try:
        orientation = int(orientation) if orientation is not None else None
    except (TypeError, ValueError):
        orientation = None
    return text(_EXIF_MAKE), text(_EXIF_MODEL), orientation, text(_EXIF_DATETIME)


def _exif_digital_zoom(img: Any) -> float | None:
    """The EXIF DigitalZoomRatio when above 1 (0 means 'not used' in the EXIF standard), else None."""
    try:
        value = img.getexif().get_ifd(_EXIF_IFD).get(_EXIF_DIGITAL_ZOOM)
        zoom = float(value) if value is not None else 0.0
    except Exception:  # malformed EXIF must not lose the image
        return None
    return zoom if np.isfinite(zoom) and zoom > 1.0 else None


def load_image(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read and decode an image in stored (sensor) pixel order, RGB channel order.

    The file is read once; its sha256 is taken from the same bytes that are decoded. The header is checked
    before decoding (format, size against ``max_pixels``), JPEGs are checked for truncation, 16-bit samples are
    scaled to 0..255 (float32), an alpha channel is dropped, grey images stay single-channel. Anything else that
    is unusual (CMYK, palette, 16-bit) is decoded and noted in ``info.warnings``.

    Parameters
    ----------
    path : path-like
        The image file. Never written to.
    max_pixels : int, keyword-only
        Refuse images with more pixels (decompression-bomb guard).

    Returns
    -------
    LoadedImage

    Raises
    ------
    InputError
        Missing, unreadable, empty, not an image, truncated, too large, or undecodable files.
    """
    path = Path(path)
    ahead = _claim_prefetched(path, max_pixels)
    return ahead() if ahead is not None else _load(path, max_pixels)


# Images being read ahead (:func:`prefetch_image`): (path, max_pixels) -> (stat before the read, the result).
_AHEAD: dict[tuple[str, int], tuple[tuple[int, int, int], Any]] = {}


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def prefetch_image(
    path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, then: Callable[[LoadedImage], Any] | None = None
) -> None:
    """Start :func:`load_image` of ``path`` in a background thread: the next ``load_image`` of the same path and
    ``max_pixels`` in this process takes its result (pixels, or the same error), once.

    For a command about to import its pipeline (GIL-bound) before it reads one photo: the decoder, the read and
    the hash let go of the GIL, so they run on another core meanwhile. A file whose inode, size or modification
    time changed between the read ahead and the claim is read again. Call it only after the command's
    evidence-safety checks (:func:`camforensics.io.safety.check_outputs`): it reads the input. ``then(image)``
    runs in the same thread after a successful read (its errors are ignored), before the claim gets the image.
    """
    p = Path(path)
    key = _stat_key(p)
    if key is None or (str(p), max_pixels) in _AHEAD:
        return  # a path that cannot be read is left to load_image, which says why
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["image"] = _load(p, max_pixels)
        except BaseException as exc:  # noqa: BLE001 - handed to the claimant, raised there
            box["error"] = exc
            return
        if then is not None:
            try:
                then(box["image"])
            except Exception:  # noqa: BLE001 - a helper's failure must not cost the image
                pass

    thread = threading.Thread(target=run, name="camforensics-prefetch-image", daemon=True)

    def outcome() -> tuple[LoadedImage | None, BaseException | None]:
        thread.join()
        return box.get("image"), box.get("error")

    _AHEAD[(str(p), max_pixels)] = (key, outcome)
    thread.start()


def _claim_prefetched(path: Path, max_pixels: int) -> Any:
    """A function that returns the image read ahead of ``path`` or raises its error; None when there was no read
    ahead, or the file changed since (then it is read again)."""
    entry = _AHEAD.pop((str(path), max_pixels), None)
    if entry is None:
        return None
    key, outcome = entry
    image, error = outcome()
    if _stat_key(path) != key:
        return None

    def claimed() -> LoadedImage:
        if error is not None:
            raise error
        return image  # type: ignore[return-value]

    return claimed


def _load(path: Path, max_pixels: int) -> LoadedImage:
    """:func:`load_image` itself."""
    import cv2
    from PIL import Image

    notes: list[str] = []
    f, _ = _open_regular(path)
    with f:
        fmt, mode, width, height, _ = _header(f, path, max_pixels)  # a bomb is refused here, before any decoding
        data = _read_all(f, path)
    digest = sha256_bytes(data)
    try:
        with _PIL_GLOBALS, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            saved_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                img = Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = saved_limit
            if (img.format or "unknown", img.size) != (fmt, (width, height)):
                raise InputError(f"{path}: the file changed while it was read; read it again")
            make, model, orientation, when = _exif_fields(img)
            zoom = _exif_digital_zoom(img)
            n_frames = getattr(img, "n_frames", 1)
    except InputError:
        raise
    except Exception as exc:  # any header parse failure of a hostile file is that file's error
        raise InputError(f"{path}: unreadable image header ({exc})") from None
    if fmt == "JPEG" and not _jpeg_is_complete(data):
        raise InputError(f"{path}: truncated JPEG (no end-of-image marker after the scan data)")
    if n_frames > 1:
        notes.append(f"file holds {n_frames} frames; only the first is analysed")

    # A colour JPEG is decoded straight to RGB (the same samples as BGR reversed, without a copy of the pixels).
    rgb = fmt == "JPEG" and mode == "RGB" and hasattr(cv2, "IMREAD_COLOR_RGB")
    flags = (cv2.IMREAD_COLOR_RGB if rgb else cv2.IMREAD_UNCHANGED) | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if pixels is None:
        raise InputError(f"{path}: {fmt} data could not be decoded (corrupt or truncated file)")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.shape[0] != height or pixels.shape[1] != width:
        raise InputError(
            f"{path}: decoded size {pixels.shape[1]}x{pixels.shape[0]} differs from the header's {width}x{height}"
        )
    if pixels.ndim == 3:
        if pixels.shape[2] == 4:
            notes.append("alpha channel dropped")
            pixels = pixels[:, :, :3]
        elif pixels.shape[2] != 3:
            raise InputError(f"{path}: {pixels.shape[2]} channels are not supported (grey, RGB or RGBA expected)")
        if not rgb:
            pixels = np.ascontiguousarray(pixels[:, :, ::-1])  # OpenCV decodes BGR
    if mode == "CMYK":
        notes.append("CMYK file converted to RGB by the decoder: not a camera original, PRNU may be attenuated")
    elif mode == "P":
        notes.append("palette image: colours are quantised, PRNU is largely destroyed")
    if pixels.dtype == np.uint16:
        bit_depth = 16
        pixels = pixels.astype(np.float32) * np.float32(255.0 / 65535.0)
        notes.append("16-bit samples scaled to the 0..255 range")
    elif pixels.dtype == np.uint8:
        bit_depth = 8
    elif pixels.dtype in (np.float32, np.float64):
        bit_depth = 32
        pixels = pixels.astype(np.float32)
        notes.append("floating-point samples used as they are (expected on a 0..255 scale)")
    else:
        raise InputError(f"{path}: sample type {pixels.dtype} is not supported (8 or 16 bits per sample expected)")
    info = ImageInfo(
        path=str(path),
        sha256=digest,
        size_bytes=len(data),
        format=fmt,
        width=int(width),
        height=int(height),
        channels=1 if pixels.ndim == 2 else 3,
        bit_depth=bit_depth,
        mode=mode,
        exif_make=make,
        exif_model=model,
        exif_orientation=orientation,
        exif_datetime=when,
        exif_digital_zoom=zoom,
        warnings=tuple(notes),
    )
    return LoadedImage(pixels=pixels, info=info)

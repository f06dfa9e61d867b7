import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from camforensics.errors import InputError
from camforensics.io.folders import collect_images
from camforensics.io.images import load_image, prefetch_image


def _jpeg_bytes(rgb, **kw):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", **kw)
    return buf.getvalue()


@pytest.fixture()
def rgb():
    return np.random.default_rng(0).integers(0, 255, (48, 64, 3)).astype(np.uint8)


def test_jpeg_with_exif_is_read_in_stored_order(tmp_path, rgb):
    ex = Image.Exif()
    ex[0x010F], ex[0x0110], ex[0x0112] = "Canon", "Canon IXUS 70", 6  # Orientation 6: display rotated 90 cw
    p = tmp_path / "with space ü.jpg"
    p.write_bytes(_jpeg_bytes(rgb, quality=100, subsampling=0, exif=ex.tobytes()))
    img = load_image(p)
    assert img.pixels.shape == (48, 64, 3)  # never auto-rotated
    assert img.info.exif_orientation == 6 and img.info.exif_make == "Canon" and img.info.exif_model == "Canon IXUS 70"
    assert img.info.format == "JPEG" and img.info.bit_depth == 8
    assert np.abs(img.pixels.astype(int) - rgb).mean() < 8  # RGB order, not BGR
    assert len(img.info.sha256) == 64


def test_png_rgb_order_and_grey(tmp_path, rgb):
    p = tmp_path / "x.png"
    Image.fromarray(rgb).save(p)
    assert np.array_equal(load_image(p).pixels, rgb)
    g = tmp_path / "g.png"
    Image.fromarray(rgb[:, :, 0]).save(g)
    img = load_image(g)
    assert img.pixels.shape == (48, 64) and img.info.channels == 1


def test_16bit_png_is_scaled_to_0_255(tmp_path):
    a = (np.arange(48 * 64).reshape(48, 64) * 20).astype(np.uint16)
    p = tmp_path / "deep.png"
    cv2.imwrite(str(p), a)
    img = load_image(p)
    assert img.info.bit_depth == 16 and img.pixels.dtype == np.float32
    assert np.allclose(img.pixels, a * (255 / 65535), atol=1e-3)
    assert any("16-bit" in w for w in img.info.warnings)


def test_16bit_tiff_rgb(tmp_path):
    a = np.random.default_rng(1).integers(0, 65535, (32, 40, 3)).astype(np.uint16)
    p = tmp_path / "deep.tif"
    cv2.imwrite(str(p), a[:, :, ::-1])
    img = load_image(p)
    assert img.info.bit_depth == 16 and np.allclose(img.pixels, a * (255 / 65535), atol=1e-3)


def test_rgba_drops_alpha_and_cmyk_warns(tmp_path, rgb):
    p = tmp_path / "a.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(p)
    img = load_image(p)
    assert img.pixels.shape == (48, 64, 3) and "alpha channel dropped" in img.info.warnings
    c = tmp_path / "c.jpg"
    Image.fromarray(rgb).convert("CMYK").save(c, quality=95)
    img = load_image(c)
    assert img.pixels.shape == (48, 64, 3) and any("CMYK" in w for w in img.info.warnings)


def test_bad_files_give_clear_errors(tmp_path, rgb):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        load_image(empty)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(InputError, match="not an image"):
        load_image(text)
    data = _jpeg_bytes(rgb, quality=90)
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match="truncated JPEG"):
        load_image(trunc)
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path)


def test_truncated_png_is_refused(tmp_path, rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    p = tmp_path / "t.png"
    p.write_bytes(buf.getvalue()[:-200])
    with pytest.raises(InputError):
        load_image(p)


def _png_header_only(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(60000, 60000))
    with pytest.raises(InputError, match="decompression bomb"):
        load_image(p)
    with pytest.raises(InputError, match="exceeds"):
        load_image(p, max_pixels=100)


def test_unreadable_file(tmp_path, rgb, monkeypatch):
    p = tmp_path / "locked.jpg"
    p.write_bytes(_jpeg_bytes(rgb))

    import os

    real_open = os.open

    def denied(path, *args, **kwargs):
        if str(path) == str(p):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)  # root reads files whatever their mode
    with pytest.raises(InputError, match="permission denied"):
        load_image(p)


def test_inputs_are_never_written(tmp_path, rgb):
    p = tmp_path / "x.jpg"
    p.write_bytes(_jpeg_bytes(rgb))
    before = (p.read_bytes(), p.stat().st_mtime_ns)
    load_image(p)
    assert (p.read_bytes(), p.stat().st_mtime_ns) == before


def test_collect_images_walks_folders_and_keeps_named_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "1.JPG").write_bytes(b"x")
    (tmp_path / "a" / "b" / "2.png").write_bytes(b"x")
    (tmp_path / "a" / ".hidden.jpg").write_bytes(b"x")
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "odd.dat").write_bytes(b"x")
    found = collect_images([tmp_path / "a", tmp_path / "odd.dat", tmp_path / "a" / "1.JPG"])
    assert [f.name for f in found] == ["1.JPG", "2.png", "odd.dat"]
    assert [f.name for f in collect_images([tmp_path / "a"], recursive=False)] == ["1.JPG"]
    with pytest.raises(InputError, match="no such file"):
        collect_images([tmp_path / "nope"])


def test_a_read_ahead_gives_what_load_image_gives_once(tmp_path, rgb):
    p = tmp_path / "x.jpg"
    p.write_bytes(_jpeg_bytes(rgb, quality=95))
    direct = load_image(p)
    prefetch_image(p, max_pixels=10**6)
    ahead = load_image(p, max_pixels=10**6)
    assert np.array_equal(ahead.pixels, direct.pixels) and ahead.info == direct.info
    again = load_image(p, max_pixels=10**6)  # claimed once: read again
    assert again.pixels is not ahead.pixels and np.array_equal(again.pixels, direct.pixels)
    prefetch_image(p, max_pixels=10**6)
    assert load_image(p).info == direct.info  # another limit: not the read ahead (left unclaimed)


def test_a_read_ahead_keeps_the_error_and_a_changed_file_is_read_again(tmp_path, rgb):
    p = tmp_path / "x.jpg"
    data = _jpeg_bytes(rgb, quality=95)
    p.write_bytes(data[: len(data) // 2])  # truncated
    prefetch_image(p)
    with pytest.raises(InputError, match="truncated"):
        load_image(p)
    prefetch_image(p)
    p.write_bytes(data)  # replaced after the read ahead: the claim sees another size and reads it again
    assert load_image(p).pixels.shape == rgb.shape
    prefetch_image(tmp_path / "missing.jpg")  # nothing to read ahead; load_image says why
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "missing.jpg")


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_jpeg_decodes_to_the_samples_opencv_decodes_in_stored_order(tmp_path, mode):
    import cv2

    rng = np.random.default_rng(3)
    shape = (97, 131, 3) if mode == "RGB" else (97, 131)
    p = tmp_path / f"x_{mode}.jpg"
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(p, quality=90)
    bgr = cv2.imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    got = load_image(p).pixels
    assert got.flags.c_contiguous and got.dtype == np.uint8
    assert np.array_equal(got, bgr[:, :, ::-1] if mode == "RGB" else bgr)


def test_digital_zoom_is_read_from_the_exif_sub_ifd_only_when_above_one(tmp_path, rgb):
    from PIL import TiffImagePlugin

    for ratio, expected in (((169, 100), 1.69), ((1, 1), None), ((0, 1), None)):  # 0: "not used" in EXIF
        ex = Image.Exif()
        ex.get_ifd(0x8769)[0xA404] = TiffImagePlugin.IFDRational(*ratio)
        p = tmp_path / f"zoom{ratio[0]}.jpg"
        p.write_bytes(_jpeg_bytes(rgb, quality=95, exif=ex.tobytes()))
        zoom = load_image(p).info.exif_digital_zoom
        assert zoom == (pytest.approx(expected) if expected else None)
    p = tmp_path / "plain.jpg"
    p.write_bytes(_jpeg_bytes(rgb, quality=95))
    assert load_image(p).info.exif_digital_zoom is None and "exif_digital_zoom" in load_image(p).info.to_dict()


def test_enroll_refuses_digitally_zoomed_references_unless_allowed(tmp_path):
    from PIL import TiffImagePlugin

    from camforensics.pipelines.enroll import enroll_device

    rng = np.random.default_rng(1)
    folder = tmp_path / "refs"
    folder.mkdir()
    for i in range(4):
        ex = Image.Exif()
        if i == 3:
            ex.get_ifd(0x8769)[0xA404] = TiffImagePlugin.IFDRational(4235, 1000)
        px = np.clip(128 + rng.normal(0, 10, (128, 128, 3)), 0, 255).astype(np.uint8)
        (folder / f"r{i}.jpg").write_bytes(_jpeg_bytes(px, quality=95, exif=ex.tobytes()))
    rep, entry = enroll_device([folder], name="cam", library=tmp_path / "lib")
    assert entry.meta["n_images"] == 3
    assert [Path(r["path"]).name for r in entry.meta["refused"]] == ["r3.jpg"]
    assert "digitally zoomed 4.24x" in entry.meta["refused"][0]["reason"]
    _, kept = enroll_device([folder], name="cam", library=tmp_path / "lib2", allow_digital_zoom=True)
    assert kept.meta["n_images"] == 4 and not kept.meta["refused"]

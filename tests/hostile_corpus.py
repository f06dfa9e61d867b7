"""A hostile corpus, generated in the test run: broken and odd images, odd names, files that are not files,
output-path mistakes, library and model tampering, interruption.

Each case has an id; docs/cli.md ("What happens to bad input") has one row per id and tests/test_hostile.py checks
that the two lists are the same. :func:`build` writes the files; the tests run them through every command.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

import synth

SIDE = 128  # the good images and the library's fingerprints


@dataclass(frozen=True)
class Case:
    id: str
    group: str  # decoding, names, file types, output paths, library, models, reports, interruption
    expect: str  # "error": a per-file error; "ok": processed; "either": decoded or a per-file error; "refused": exit 2
    what: str


CASES: tuple[Case, ...] = (
    # decoding: files with image names in the evidence folder
    Case("dec-empty", "decoding", "error", "empty file (0 bytes)"),
    Case("dec-random", "decoding", "error", "random bytes named .jpg"),
    Case("dec-text", "decoding", "error", "a text file named .jpg"),
    Case("dec-npy-as-jpg", "decoding", "error", "a .npy array named .jpg"),
    Case("dec-truncated-jpeg", "decoding", "error", "JPEG cut at 60 %"),
    Case("dec-header-only-jpeg", "decoding", "error", "JPEG cut after its headers"),
    Case("dec-corrupt-scan-jpeg", "decoding", "either", "JPEG with flipped bytes in its scan data"),
    Case("dec-truncated-png", "decoding", "error", "PNG cut at half"),
    Case("dec-bad-crc-png", "decoding", "either", "PNG with a damaged IDAT chunk"),
    Case("dec-zero-size-png", "decoding", "error", "PNG header declaring 0x0 pixels"),
    Case("dec-bomb-png-1bit", "decoding", "error", "~110 KB 1-bit PNG declaring 30000x30000 (900 MP)"),
    Case("dec-bomb-png-8bit", "decoding", "error", "~250 KB 8-bit PNG declaring 16000x16000 (256 MP)"),
    Case("dec-bomb-jpeg", "decoding", "error", "JPEG whose frame header declares 60000x60000"),
    Case("dec-bomb-tiff", "decoding", "error", "TIFF declaring 50000x50000"),
    Case("dec-bomb-webp", "decoding", "error", "WebP (VP8L) header declaring 16384x16384 (268 MP)"),
    Case("dec-bomb-gif", "decoding", "error", "GIF screen of 65535x65535"),
    Case("dec-bomb-bmp", "decoding", "error", "BMP header declaring 100000x100000"),
    Case("dec-tiny-1x1", "decoding", "error", "a 1x1 image"),
    Case("dec-strip-4000x8", "decoding", "error", "a 4000x8 strip"),
    Case("dec-cmyk-jpeg", "decoding", "ok", "CMYK JPEG (converted, with a warning)"),
    Case("dec-16bit-png", "decoding", "ok", "16-bit PNG (scaled, with a warning)"),
    Case("dec-palette-png", "decoding", "ok", "palette PNG (with a warning)"),
    Case("dec-rgba-png", "decoding", "ok", "RGBA PNG (alpha dropped)"),
    Case("dec-bad-exif", "decoding", "ok", "JPEG with a garbage EXIF block"),
    Case("dec-png-as-jpg", "decoding", "ok", "a PNG named .jpg"),
    Case("dec-multiframe-tiff", "decoding", "ok", "2-frame TIFF (first frame used, noted)"),
    # names
    Case("name-not-utf8", "names", "ok", "file name with the byte 0xFF (not UTF-8)"),
    Case("name-newline", "names", "ok", "file name with a newline"),
    Case("name-markup", "names", "ok", "file name with [markup], * and ?"),
    Case("name-unicode", "names", "ok", "non-ASCII UTF-8 file name"),
    Case("name-long", "names", "ok", "244-byte file name"),
    Case("name-leading-dash", "names", "ok", "file name starting with '-' (given as ./-r.jpg)"),
    Case("name-twins", "names", "ok", "equal file names and contents in two folders"),
    # file types: named on the command line
    Case("type-fifo", "file types", "error", "a named pipe (FIFO) named .jpg"),
    Case("type-symlink-loop", "file types", "error", "a symlink loop"),
    Case("type-dangling-symlink", "file types", "error", "a symlink to nothing"),
    Case("type-char-device", "file types", "error", "/dev/null"),
    Case("type-socket", "file types", "error", "a unix socket named .jpg"),
    Case("type-symlink-good", "file types", "ok", "a symlink to a good image"),
    Case("type-hardlink-good", "file types", "ok", "a hard link to a good image"),
    # output paths: refused before any work
    Case("out-report-is-input", "output paths", "refused", "identify X -r X"),
    Case("out-verify-report-is-input", "output paths", "refused", "verify A B -r A"),
    Case("out-report-existing-folder", "output paths", "refused", "-r EXISTING_FOLDER"),
    Case("out-report-unwritable", "output paths", "refused", "-r /proc/x.json"),
    Case("out-report-parent-is-file", "output paths", "refused", "-r IMAGE/x.json"),
    Case("out-journal-is-folder", "output paths", "refused", "-r R where R.partial.jsonl is a folder"),
    Case("out-report-overwrites-library", "output paths", "refused", "identify --library LIB -r LIB/library.json"),
    Case("out-folder-is-input-folder", "output paths", "refused", "extract DIR -o DIR"),
    Case("out-folder-inside-input", "output paths", "refused", "extract DIR -o DIR/sub"),
    Case("out-folder-existing-file", "output paths", "refused", "extract -o EXISTING_FILE"),
    Case("out-folder-unwritable", "output paths", "refused", "extract -o /proc/x"),
    Case("out-anonymize-inside-input", "output paths", "refused", "anonymize DIR -o DIR/anon"),
    Case("out-library-inside-input", "output paths", "refused", "enroll DIR --library DIR/lib"),
    Case("out-evaluate-inside-input", "output paths", "refused", "evaluate REPORT --truth T -o T/eval"),
    Case("out-cluster-store-inside-input", "output paths", "refused", "cluster DIR --store DIR/res"),
    Case("out-cluster-enroll-inside-input", "output paths", "refused", "cluster DIR --enroll DIR/lib"),
    # library tampering
    Case("lib-corrupt-fingerprint", "library", "either", "fingerprint.npy altered"),
    Case("lib-corrupt-digest", "library", "either", "digest.npy altered"),
    Case("lib-malformed-entry", "library", "either", "entry.json not JSON"),
    Case("lib-missing-header", "library", "refused", "library.json missing"),
    # model tampering
    Case("model-garbage-matching-sha", "models", "refused", "garbage .onnx whose sha256 the manifest matches"),
    Case("model-sha-mismatch", "models", "refused", ".onnx replaced, manifest unchanged"),
    # reports read by evaluate
    Case("rep-garbage", "reports", "error", "a report file that is not JSON"),
    Case("rep-truncated", "reports", "error", "a report cut in half"),
    # interruption
    Case("int-extract-sigint", "interruption", "ok", "Ctrl-C in a 2-worker extract, then --resume"),
)

CASE_IDS = tuple(c.id for c in CASES)


def jpeg_bytes(rgb: np.ndarray, quality: int = 92) -> bytes:
    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def png_bytes(pixels: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", pixels)
    assert ok
    return buf.tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int, height: int, bit_depth: int) -> bytes:
    """A valid PNG of zeros (grey), streamed through zlib so that building it never holds the pixels."""
    row = b"\x00" * (1 + (width * bit_depth + 7) // 8)  # filter byte + packed samples
    comp = zlib.compressobj(9)
    parts = []
    block = row * 256
    for _ in range(height // 256):
        parts.append(comp.compress(block))
    parts.append(comp.compress(row * (height % 256)))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def _patch_sof(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    pos = 2
    while pos < len(out):
        marker, length = out[pos + 1], int.from_bytes(out[pos + 2 : pos + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            out[pos + 5 : pos + 9] = struct.pack(">HH", height, width)
            return bytes(out)
        pos += 2 + length
    raise AssertionError("no SOF marker")


def _tiff(width: int, height: int) -> bytes:
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8),
            (277, 3, 1), (278, 4, height), (279, 4, 16)]  # fmt: skip
    ifd_at = 8 + 16
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, k, 1, v) for t, k, v in tags) + b"\0" * 4
    return b"II*\x00" + struct.pack("<I", ifd_at) + b"\0" * 16 + ifd


def _webp_vp8l(width: int, height: int) -> bytes:
    payload = b"\x2f" + struct.pack("<I", (width - 1) | ((height - 1) << 14)) + b"\0" * 32
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) % 2)  # RIFF pads to even
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _pil(img, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@dataclass
class Corpus:
    root: Path
    evidence: Path  # generic data set layout: evidence/SynthCam_A/nat/* (good images and decoding cases)
    flat: Path  # flat-field images of the same device (enroll, verify's other side)
    library: Path  # SynthCam_A enrolled from flat
    good: list[Path]
    files: dict[str, list[Path]]  # case id -> the files named for it
    special: list[Path]  # files that are not regular files (named explicitly: folder walks skip them)


def build(root: Path) -> Corpus:
    """Write the corpus under ``root`` (about 0.5 MB and 2 s)."""
    from PIL import Image

    k = synth.make_prnu((SIDE, SIDE), 7)
    evidence = root / "evidence" / "SynthCam_A" / "nat"
    flat = root / "flat" / "SynthCam_A" / "flat"
    evidence.mkdir(parents=True)
    flat.mkdir(parents=True)
    good = []
    for j in range(3):
        p = evidence / f"good{j}.jpg"
        p.write_bytes(jpeg_bytes(synth.shoot(k, 50 + j)))
        good.append(p)
    for j in range(5):
        (flat / f"flat{j}.jpg").write_bytes(jpeg_bytes(synth.shoot(k, j, flat=True)))
    other = root / "evidence" / "OtherCam_B" / "nat"  # a second device: evaluate verification draws pairs
    other.mkdir(parents=True)
    k_other = synth.make_prnu((SIDE, SIDE), 8)
    for j in range(4):
        (other / f"b{j}.jpg").write_bytes(jpeg_bytes(synth.shoot(k_other, 300 + j)))
    from camforensics.pipelines.enroll import enroll_device

    library = root / "library"
    enroll_device(sorted(flat.glob("*.jpg")), name="SynthCam_A", library=library)

    rgb = synth.shoot(k, 99)
    jpg = jpeg_bytes(rgb)
    files: dict[str, list[Path]] = {}

    def put(case: str, name: str | bytes, data: bytes, folder: Path = evidence) -> Path:
        p = Path(os.fsdecode(os.path.join(os.fsencode(folder), os.fsencode(name))))
        p.write_bytes(data)
        files.setdefault(case, []).append(p)
        return p

    rng = np.random.default_rng(0)
    put("dec-empty", "empty.jpg", b"")
    put("dec-random", "random.jpg", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    put("dec-text", "notes.jpg", b"this is not a photograph\n" * 20)
    npy = io.BytesIO()
    np.save(npy, rgb)
    put("dec-npy-as-jpg", "array.jpg", npy.getvalue())
    put("dec-truncated-jpeg", "truncated.jpg", jpg[: int(len(jpg) * 0.6)])
    put("dec-header-only-jpeg", "headeronly.jpg", jpg[: jpg.find(b"\xff\xda") + 4])
    scan = bytearray(jpg)
    start = jpg.find(b"\xff\xda") + 20
    for i in range(start, len(scan) - 4, 97):
        scan[i] = (scan[i] + 0x41) & 0xFF or 1
    put("dec-corrupt-scan-jpeg", "corruptscan.jpg", bytes(scan))
    png = png_bytes(rgb[:, :, ::-1])
    put("dec-truncated-png", "truncated.png", png[: len(png) // 2])
    crc = bytearray(png)
    idat = png.find(b"IDAT")
    crc[idat + 40 : idat + 60] = b"\xaa" * 20
    put("dec-bad-crc-png", "badcrc.png", bytes(crc))
    zero = bytearray(png)
    zero[16:24] = struct.pack(">II", 0, 0)
    zero[29:33] = struct.pack(">I", zlib.crc32(bytes(zero[12:29])) & 0xFFFFFFFF)
    put("dec-zero-size-png", "zerosize.png", bytes(zero))
    put("dec-bomb-png-1bit", "bomb_1bit.png", bomb_png(30000, 30000, 1))
    put("dec-bomb-png-8bit", "bomb_8bit.png", bomb_png(16000, 16000, 8))
    put("dec-bomb-jpeg", "bomb.jpg", _patch_sof(jpg, 60000, 60000))
    put("dec-bomb-tiff", "bomb.tif", _tiff(50000, 50000))
    put("dec-bomb-webp", "bomb.webp", _webp_vp8l(16384, 16384))
    put("dec-bomb-gif", "bomb.gif", bytes(bytearray(_pil(Image.new("L", (8, 8)), "GIF")[:6]) + struct.pack("<HH", 65535, 65535)
                                            + _pil(Image.new("L", (8, 8)), "GIF")[10:]))
    bmp = bytearray(_pil(Image.new("RGB", (8, 8)), "BMP"))
    bmp[18:26] = struct.pack("<ii", 100000, 100000)
    put("dec-bomb-bmp", "bomb.bmp", bytes(bmp))
    put("dec-tiny-1x1", "tiny.png", png_bytes(np.zeros((1, 1, 3), np.uint8)))
    put("dec-strip-4000x8", "strip.png", png_bytes(np.full((8, 4000, 3), 128, np.uint8)))
    put("dec-cmyk-jpeg", "cmyk.jpg", _pil(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=92))
    put("dec-16bit-png", "deep.png", png_bytes((rgb[:, :, ::-1].astype(np.uint16) * 257)))
    put("dec-palette-png", "palette.png", _pil(Image.fromarray(rgb).convert("P"), "PNG"))
    put("dec-rgba-png", "rgba.png", _pil(Image.fromarray(rgb).convert("RGBA"), "PNG"))
    app1 = b"Exif\x00\x00" + b"MM\x00\x2a\x00\x00\x00\x08" + b"\xff" * 64
    put("dec-bad-exif", "badexif.jpg", jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpg[2:])
    put("dec-png-as-jpg", "reallypng.jpg", png)
    frames = [Image.fromarray(rgb), Image.fromarray(rgb[::-1].copy())]
    put("dec-multiframe-tiff", "frames.tif", _pil(frames[0], "TIFF", save_all=True, append_images=frames[1:]))

    other = synth.shoot(k, 200)
    put("name-not-utf8", b"bad\xffname.jpg", jpeg_bytes(other))
    put("name-newline", "line\nbreak.jpg", jpeg_bytes(synth.shoot(k, 201)))
    put("name-markup", "[bold red]x[link=y] *?.jpg", jpeg_bytes(synth.shoot(k, 202)))
    put("name-unicode", "ümlaut-日本.jpg", jpeg_bytes(synth.shoot(k, 203)))
    put("name-long", "L" * 240 + ".jpg", jpeg_bytes(synth.shoot(k, 204)))
    put("name-leading-dash", "-r.jpg", jpeg_bytes(synth.shoot(k, 205)))
    twins = root / "twins"
    for side in ("a", "b"):
        (twins / side).mkdir(parents=True)
        put("name-twins", "same.jpg", jpg, twins / side)

    special = []
    fifo = evidence / "fifo.jpg"
    os.mkfifo(fifo)
    loop_a, loop_b = evidence / "loop.jpg", evidence / "loop2.jpg"
    os.symlink(loop_b.name, loop_a)
    os.symlink(loop_a.name, loop_b)
    dangling = evidence / "dangling.jpg"
    os.symlink("nowhere.jpg", dangling)
    sock_path = evidence / "sock.jpg"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(sock_path))
    sock.close()  # the socket file stays
    files["type-fifo"] = [fifo]
    files["type-symlink-loop"] = [loop_a]
    files["type-dangling-symlink"] = [dangling]
    files["type-char-device"] = [Path("/dev/null")]
    files["type-socket"] = [sock_path]
    special = [fifo, loop_a, dangling, Path("/dev/null"), sock_path]
    elsewhere = root / "elsewhere"  # outside the walked folder: a link to a file also walked would be deduplicated
    elsewhere.mkdir()
    (elsewhere / "target.jpg").write_bytes(jpeg_bytes(synth.shoot(k, 206)))
    link = evidence / "link.jpg"
    os.symlink(elsewhere / "target.jpg", link)
    files["type-symlink-good"] = [link]
    hard = evidence / "hardlink.jpg"
    os.link(good[1], hard)
    files["type-hardlink-good"] = [hard]
    return Corpus(root, evidence, flat, library, good, files, special)


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every regular file under ``root`` (others: their kind), for 'no input was modified'."""
    import hashlib
    import stat

    out = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[os.fsdecode(p)] = hashlib.sha256(f.read()).hexdigest()
            else:
                out[os.fsdecode(p)] = f"mode {stat.S_IFMT(st.st_mode):o}" + (
                    f" -> {os.readlink(p)!r}" if stat.S_ISLNK(st.st_mode) else ""
                )
    return out

"""The JPEG coding signature of a file, read from its markers (Kee, Johnson & Farid 2011).

A camera writes its JPEGs with its own coding choices: the quantization tables (DQT), the chroma subsampling
(component sampling factors of the SOF frame header), the Huffman tables (DHT: the standard tables of ITU-T T.81
Annex K, or custom ones), baseline or progressive coding, the frame size, and its EXIF Make/Model/Software. A photo
re-saved by an editor gets the editor's choices instead. This module parses the markers itself from the bytes (no
decoder is involved, nothing is decompressed) and returns a :class:`JpegSignature`; matching against a table of
known cameras is :mod:`camforensics.pipelines.signatures`.

Parsing is defensive: a malformed or truncated marker stream raises :class:`~camforensics.errors.InputError` with
the offset, never an IndexError; counts are bounded (at most 4 quantization and 8 Huffman tables are kept, as T.81
allows).

References
----------
E. Kee, M. K. Johnson, H. Farid, "Digital image authentication from JPEG headers", IEEE TIFS 6(3), 2011.
ITU-T T.81 (JPEG), Annex B (marker syntax) and Annex K (typical Huffman tables, example quantization tables).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camforensics.errors import InputError

# T.81 Annex K.3: the typical ("standard") Huffman tables: (class, bits[16], values) for luminance/chrominance DC/AC.
_STD_DC_LUM = (
    (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0),
    tuple(range(12)),
)
_STD_DC_CHR = (
    (0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0),
    tuple(range(12)),
)
_STD_AC_LUM = (
    (0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D),
    bytes.fromhex(
        "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435"
        "363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798"
        "999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4"
        "f5f6f7f8f9fa"
    ),
)
_STD_AC_CHR = (
    (0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77),
    bytes.fromhex(
        "000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a162434e125f11718191a262728292a"
        "35363738393a434445464748494a535455565758595a636465666768696a737475767778797a82838485868788898a9293949596"
        "9798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4"
        "f5f6f7f8f9fa"
    ),
)
STANDARD_HUFFMAN: frozenset[tuple[tuple[int, ...], tuple[int, ...]]] = frozenset(
    (tuple(bits), tuple(values)) for bits, values in (_STD_DC_LUM, _STD_DC_CHR, _STD_AC_LUM, _STD_AC_CHR)
)

# T.81 Annex K.1: example luminance and chrominance quantization tables (natural order), which libjpeg (IJG)
# scales by its quality factor.
_IJG_LUM = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
    87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
_IJG_CHR = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99,
    99, 99, 99, *([99] * 32),
)  # fmt: skip
# Zig-zag order: ZIGZAG[k] is the natural (row-major) index of the k-th coefficient in a DQT segment.
ZIGZAG = (
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
    28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61,
    54, 47, 55, 62, 63,
)  # fmt: skip

_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: no length field
_MAX_SEGMENTS = 10_000  # a real file has a few dozen; a hostile one does not make us loop for long


def ijg_table(base: tuple[int, ...], quality: int) -> tuple[int, ...]:
    """libjpeg's ``jpeg_quality_scaling`` of a T.81 Annex K table (natural order), baseline-clamped to 1..255."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return tuple(min(max((v * scale + 50) // 100, 1), 255) for v in base)


_IJG_BY_TABLES: dict[tuple[tuple[int, ...], ...], int] = {}


def ijg_quality(tables: tuple[tuple[int, ...], ...]) -> int | None:
    """The libjpeg quality factor whose standard tables are exactly ``tables`` (natural order; luminance first),
    else None. Editors and many programs save with these; cameras mostly use their own."""
    if not _IJG_BY_TABLES:
        for q in range(1, 101):
            lum, chr_ = ijg_table(_IJG_LUM, q), ijg_table(_IJG_CHR, q)
            _IJG_BY_TABLES.setdefault((lum,), q)
            _IJG_BY_TABLES.setdefault((lum, chr_), q)
    return _IJG_BY_TABLES.get(tuple(tables))


@dataclass(frozen=True)
class HuffmanTable:
    table_class: int  # 0 = DC, 1 = AC
    table_id: int
    bits: tuple[int, ...]  # 16 code-length counts
    values: tuple[int, ...]

    @property
    def standard(self) -> bool:
        return (self.bits, self.values) in STANDARD_HUFFMAN


@dataclass(frozen=True)
class JpegSignature:
    """What a JPEG file says about the coder that wrote it (see the module docstring)."""

    width: int
    height: int
    components: int
    sampling: tuple[tuple[int, int], ...]  # (H, V) sampling factors per component
    subsampling: str  # "4:4:4", "4:2:2", "4:2:0", "4:4:0", "4:1:1", "grey" or "H1xV1,..."
    progressive: bool
    sof: int  # the frame marker (0xC0 baseline, 0xC1 extended, 0xC2 progressive, ...)
    precision: int  # sample precision, bits
    quant_tables: tuple[tuple[int, ...], ...]  # used tables in component order of first use, natural order
    huffman: tuple[HuffmanTable, ...] = ()
    restart_interval: int = 0
    exif_make: str | None = None
    exif_model: str | None = None
    exif_software: str | None = None
    exif_structure: str | None = None  # entries per EXIF directory (see exif_structure()); None without EXIF
    markers: tuple[str, ...] = field(default=(), compare=False)  # APPn / COM markers present, in order

    @property
    def huffman_standard(self) -> bool | None:
        """True when every Huffman table is a T.81 Annex K table (None when the file defines none)."""
        return all(t.standard for t in self.huffman) if self.huffman else None

    @property
    def ijg_quality(self) -> int | None:
        return ijg_quality(self.quant_tables)

    def quant_key(self) -> str:
        """A short stable key of the quantization tables and the subsampling (what a camera model's firmware
        chooses and a lossless crop keeps): 16 hex digits of a SHA-256."""
        text = self.subsampling + "|" + ";".join(",".join(map(str, t)) for t in self.quant_tables)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def huffman_key(self) -> str:
        """``standard`` or 16 hex digits of the custom tables (lossless re-coders like jpegtran rewrite them)."""
        if self.huffman_standard is not False:
            return "standard"
        text = ";".join(f"{t.table_class}{t.table_id}:{t.bits}:{t.values}" for t in self.huffman)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "components": self.components,
            "subsampling": self.subsampling,
            "sampling": [list(s) for s in self.sampling],
            "progressive": self.progressive,
            "sof": f"0x{self.sof:02X}",
            "precision": self.precision,
            "quant_key": self.quant_key(),
            "quant_tables": [list(t) for t in self.quant_tables],
            "ijg_quality": self.ijg_quality,
            "huffman": self.huffman_key(),
            "huffman_standard": self.huffman_standard,
            "restart_interval": self.restart_interval,
            "exif_make": self.exif_make,
            "exif_model": self.exif_model,
            "exif_software": self.exif_software,
            "exif_structure": self.exif_structure,
            "markers": list(self.markers),
        }


def _subsampling_name(sampling: tuple[tuple[int, int], ...]) -> str:
    if len(sampling) == 1:
        return "grey"
    (h0, v0), rest = sampling[0], sampling[1:]
    if len(sampling) == 3 and rest[0] == rest[1] == (1, 1):
        names = {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (1, 2): "4:4:0", (4, 1): "4:1:1"}
        if (h0, v0) in names:
            return names[(h0, v0)]
    return ",".join(f"{h}x{v}" for h, v in sampling)


class _Reader:
    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name = data, name

    def fail(self, what: str, pos: int) -> InputError:
        return InputError(f"{self.name}: not a readable JPEG marker stream ({what} at byte {pos})")

    def u8(self, pos: int) -> int:
        if pos >= len(self.data):
            raise self.fail("truncated", pos)
        return self.data[pos]

    def u16(self, pos: int) -> int:
        if pos + 2 > len(self.data):
            raise self.fail("truncated", pos)
        return int.from_bytes(self.data[pos : pos + 2], "big")


def _skip_entropy(data: bytes, pos: int) -> int:
    """Offset of the next marker after entropy-coded data (0xFF followed by neither 0x00 nor RSTn)."""
    n = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= n:
            return n
        nxt = data[pos + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
            pos += 1 if nxt == 0xFF else 2
            continue
        return pos


def parse_jpeg_signature(data: bytes, *, name: str = "<bytes>") -> JpegSignature:
    """Parse the coding signature from a JPEG file's bytes (markers only; nothing is decoded).

    Raises
    ------
    InputError
        Not a JPEG (no SOI), no frame header, a quantization table the frame uses is missing, or a malformed or
        truncated segment.
    """
    r = _Reader(data, name)
    if data[:2] != b"\xff\xd8":
        raise InputError(f"{name}: not a JPEG file (no SOI marker); the JPEG signature needs the camera's JPEG")
    pos = 2
    dqt: dict[int, tuple[int, ...]] = {}
    huff: dict[tuple[int, int], HuffmanTable] = {}
    sof: tuple[int, int, int, int, list[tuple[int, int, int, int]]] | None = None
    restart = 0
    markers: list[str] = []
    for _ in range(_MAX_SEGMENTS):
        if pos >= len(data):
            break
        if r.u8(pos) != 0xFF:
            raise r.fail("expected a marker", pos)
        marker = r.u8(pos + 1)
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            break
        if marker in _STANDALONE:
            pos += 2
            continue
        length = r.u16(pos + 2)
        if length < 2 or pos + 2 + length > len(data):
            raise r.fail(f"segment 0xFF{marker:02X} of length {length}", pos)
        seg, body = pos + 4, pos + 2 + length
        if marker == 0xDB:
            p = seg
            while p < body:
                pq_tq = r.u8(p)
                precision, tid = pq_tq >> 4, pq_tq & 0x0F
                size = 128 if precision else 64
                if tid > 3 or precision > 1 or p + 1 + size > body:
                    raise r.fail("malformed quantization table", p)
                if precision:
                    zz = [int.from_bytes(data[p + 1 + 2 * k : p + 3 + 2 * k], "big") for k in range(64)]
                else:
                    zz = list(data[p + 1 : p + 65])
                natural = [0] * 64
                for k, v in enumerate(zz):
                    natural[ZIGZAG[k]] = v
                dqt[tid] = tuple(natural)
                p += 1 + size
        elif marker == 0xC4:
            p = seg
            while p < body:
                tc_th = r.u8(p)
                if p + 17 > body:
                    raise r.fail("malformed Huffman table", p)
                bits = tuple(data[p + 1 : p + 17])
                count = sum(bits)
                if tc_th >> 4 > 1 or (tc_th & 0x0F) > 3 or p + 17 + count > body:
                    raise r.fail("malformed Huffman table", p)
                values = tuple(data[p + 17 : p + 17 + count])
                huff[(tc_th >> 4, tc_th & 0x0F)] = HuffmanTable(tc_th >> 4, tc_th & 0x0F, bits, values)
                p += 17 + count
        elif marker in _SOF_MARKERS:
            if length < 8:
                raise r.fail("short frame header", pos)
            precision, height, width, ncomp = r.u8(seg), r.u16(seg + 1), r.u16(seg + 3), r.u8(seg + 5)
            if ncomp < 1 or ncomp > 4 or length < 8 + 3 * ncomp:
                raise r.fail(f"frame header with {ncomp} components", pos)
            comps = []
            for c in range(ncomp):
                cid, hv, tq = r.u8(seg + 6 + 3 * c), r.u8(seg + 7 + 3 * c), r.u8(seg + 8 + 3 * c)
                comps.append((cid, hv >> 4, hv & 0x0F, tq))
            if sof is None:  # the first frame header is the image's (a thumbnail lives inside APP1)
                sof = (marker, precision, width, height, comps)
        elif marker == 0xDD:
            restart = r.u16(seg)
        elif 0xE0 <= marker <= 0xEF or marker == 0xFE:
            markers.append(f"APP{marker - 0xE0}" if marker != 0xFE else "COM")
        if marker == 0xDA:  # SOS: skip the scan's entropy-coded data; progressive files have more DHT/SOS after
            pos = _skip_entropy(data, body)
            continue
        pos = body
    if sof is None:
        raise InputError(f"{name}: a JPEG without a frame header (SOF); cannot read its coding signature")
    marker, precision, width, height, comps = sof
    missing = sorted({c[3] for c in comps} - set(dqt))
    if missing:
        raise InputError(f"{name}: the frame uses quantization table(s) {missing} that the file never defines")
    order: list[int] = []
    for c in comps:
        if c[3] not in order:
            order.append(c[3])
    sampling = tuple((c[1], c[2]) for c in comps)
    return JpegSignature(
        width=width,
        height=height,
        components=len(comps),
        sampling=sampling,
        subsampling=_subsampling_name(sampling),
        progressive=marker in _PROGRESSIVE,
        sof=marker,
        precision=precision,
        quant_tables=tuple(dqt[t] for t in order),
        huffman=tuple(huff[k] for k in sorted(huff)),
        restart_interval=restart,
        markers=tuple(markers),
    )


_EXIF_SOFTWARE = 0x0131
_GPS_POINTER, _EXIF_POINTER, _INTEROP_POINTER = 0x8825, 0x8769, 0xA005
_IFD1 = -1  # Pillow's ExifTags.IFD.IFD1: the thumbnail's directory


def exif_structure(exif: Any) -> str | None:
    """How many entries each EXIF directory holds, as Kee, Johnson & Farid (2011) count them: the main image's IFD0,
    the Exif sub-IFD, the Interoperability IFD and the thumbnail's IFD1, e.g. ``"ifd0=10 exif=32 interop=2 ifd1=6"``.
    A camera's firmware writes a fixed set of tags (a few vary with the shot); an editor rewrites the directories.
    The GPS pointer is not counted (location is often stripped before photos are shared, as in the project's data
    sets), nor the GPS directory. None when the file has no EXIF."""
    try:
        ifd0 = dict(exif)
    except Exception:  # noqa: BLE001 - malformed EXIF: no structure to report
        return None
    if not ifd0:
        return None
    counts = {"ifd0": sum(1 for t in ifd0 if t != _GPS_POINTER)}
    for name, tag in (("exif", _EXIF_POINTER), ("interop", _INTEROP_POINTER)):
        try:
            sub = exif.get_ifd(tag)
        except Exception:  # noqa: BLE001
            sub = {}
        counts[name] = len(sub)
    try:
        counts["ifd1"] = len(exif.get_ifd(_IFD1))
    except Exception:  # noqa: BLE001 - a broken thumbnail directory
        counts["ifd1"] = 0
    return " ".join(f"{k}={v}" for k, v in counts.items())


def exif_camera(data: bytes) -> tuple[str | None, str | None, str | None]:
    """EXIF Make, Model and Software of a JPEG's bytes (Pillow's EXIF reader, through :mod:`camforensics.io.images`
    for Make/Model); (None, None, None) when the file has no readable EXIF."""
    make, model, software, _ = exif_fields(data)
    return make, model, software


def exif_fields(data: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    """EXIF Make, Model, Software and :func:`exif_structure` of a JPEG's bytes (all None without readable EXIF)."""
    import io
    import warnings

    from PIL import Image

    from camforensics.io.images import _exif_fields

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                make, model, _, _ = _exif_fields(img)
                try:
                    exif = img.getexif()
                    software = exif.get(_EXIF_SOFTWARE)
                    structure = exif_structure(exif)
                except Exception:  # noqa: BLE001 - malformed EXIF: the signature stands without it
                    software = structure = None
    except Exception:  # noqa: BLE001 - Pillow cannot open it: no EXIF to report (the markers were still parsed)
        return None, None, None, None
    if isinstance(software, bytes):
        software = software.decode("latin-1", "replace")
    software = str(software).strip().strip("\x00").strip() if software is not None else None
    return make, model, software or None, structure


MAX_SIGNATURE_BYTES = 200 * 1024 * 1024  # a camera JPEG is a few MB; refuse to read a file this large


def read_jpeg_signature(path: str | os.PathLike[str]) -> JpegSignature:
    """The coding signature of a JPEG file, with its EXIF Make/Model/Software.

    Raises
    ------
    InputError
        Unreadable, too large, not a JPEG, or a malformed marker stream.
    """
    from camforensics.io.images import read_regular_file  # regular files only: a FIFO is refused, never read

    p = Path(path)
    data = read_regular_file(p, max_bytes=MAX_SIGNATURE_BYTES)
    sig = parse_jpeg_signature(data, name=str(p))
    make, model, software, structure = exif_fields(data)
    from dataclasses import replace

    return replace(sig, exif_make=make, exif_model=model, exif_software=software, exif_structure=structure)

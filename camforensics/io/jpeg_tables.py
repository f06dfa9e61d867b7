"""The JPEG coding choices a transplant copies: quantization tables and chroma subsampling, read from a file's
markers by Pillow's header parser (no pixel is decoded).

Pillow returns the DQT tables in natural (row-major) order and takes the same order in ``Image.save(...,
qtables=...)``, so tables read here can be written back unchanged. The full marker parser of the JPEG coding
signature (Huffman tables, progressive coding, frame size) is :mod:`camforensics.io.jpeg_signature` (issue 18);
this module keeps only what a camera profile stores.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from camforensics.errors import InputError

# Pillow's ``subsampling=`` codes and the names a profile stores.
SUBSAMPLING_NAMES = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
SUBSAMPLING_CODES = {v: k for k, v in SUBSAMPLING_NAMES.items()}


@dataclass(frozen=True)
class JpegTables:
    """The quantization tables (natural order, 64 values each, table id order) and the chroma subsampling."""

    qtables: tuple[tuple[int, ...], ...]
    subsampling: str  # 4:4:4, 4:2:2, 4:2:0, or "other (h1v1,h2v2,...)"

    def key(self) -> tuple[Any, ...]:
        return (self.qtables, self.subsampling)

    def to_dict(self) -> dict[str, Any]:
        return {"qtables": [list(t) for t in self.qtables], "subsampling": self.subsampling}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JpegTables:
        return cls(tuple(tuple(int(v) for v in t) for t in d["qtables"]), str(d["subsampling"]))

    def save_options(self) -> dict[str, Any]:
        """Keyword arguments of Pillow's JPEG save that write these tables and this subsampling."""
        out: dict[str, Any] = {"qtables": [list(t) for t in self.qtables]}
        if self.subsampling in SUBSAMPLING_CODES:
            out["subsampling"] = SUBSAMPLING_CODES[self.subsampling]
        return out


def read_jpeg_tables(data: bytes, *, name: str = "the file") -> JpegTables | None:
    """The tables of JPEG bytes; None when the bytes are no JPEG (a PNG, a TIFF).

    Raises
    ------
    InputError
        A JPEG whose header cannot be parsed, or one with no or more than four quantization tables.
    """
    if not data.startswith(b"\xff\xd8"):
        return None
    from PIL import Image, JpegImagePlugin

    try:
        with Image.open(io.BytesIO(data)) as im:
            quant = getattr(im, "quantization", None) or {}
            layers = getattr(im, "layer", None) or []
            code = JpegImagePlugin.get_sampling(im) if len(layers) == 3 else -1
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{name}: unreadable JPEG header ({exc})") from None
    if not 1 <= len(quant) <= 4:
        raise InputError(f"{name}: a JPEG with {len(quant)} quantization tables (1 to 4 expected)")
    tables = tuple(tuple(int(v) for v in quant[k]) for k in sorted(quant))
    if len(layers) != 3:
        sub = "grey" if len(layers) == 1 else f"other ({len(layers)} components)"
    else:
        sub = SUBSAMPLING_NAMES.get(code) or "other (" + ",".join(f"h{h}v{v}" for _, h, v, _ in layers) + ")"
    return JpegTables(tables, sub)

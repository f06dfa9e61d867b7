"""Names that are not UTF-8, written to UTF-8 reports without loss.

On POSIX a file name is bytes; Python decodes the bytes that are not UTF-8 as lone surrogates (U+DC80..U+DCFF,
"surrogateescape"), which no UTF-8 writer accepts. A report writes such a string with each undecodable byte as
the four characters ``\\xHH`` (readable, and what ``ls -b`` shows) and, beside it, the exact bytes of the name
in hex under ``<member>_hex`` (lossless: ``os.fsdecode(bytes.fromhex(value))`` gives the original name back).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEX_SUFFIX = "_hex"


def has_surrogates(text: str) -> bool:
    """True when ``text`` holds a lone surrogate (it cannot be encoded as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def raw_bytes(text: str) -> bytes:
    """The bytes a surrogate-escaped string stands for (the file name as the file system holds it)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates outside the escape range: their UTF-16 code units, as written
        return text.encode("utf-8", "surrogatepass")


def escape_text(text: str) -> str:
    """``text`` with each byte that is not UTF-8 written as ``\\xHH`` (unchanged when it is valid)."""
    if not has_surrogates(text):
        return text
    return raw_bytes(text).decode("utf-8", "backslashreplace")


def escape_tree(value: Any) -> Any:
    """A copy of a JSON-like tree with every string escaped (:func:`escape_text`); a mapping member whose string
    value needed escaping gets a sibling ``<member>_hex`` with the exact bytes."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = escape_text(str(k))
            out[key] = escape_tree(v)
            if isinstance(v, str) and has_surrogates(v):
                out[key + HEX_SUFFIX] = raw_bytes(v).hex()
        return out
    if isinstance(value, (list, tuple)):
        return [escape_tree(v) for v in value]
    return value


def recorded_path(record: Mapping[str, Any], member: str = "path") -> str:
    """The original path a report record names under ``member`` (from ``<member>_hex`` when it was escaped),
    for reading the file again."""
    raw = record.get(member + HEX_SUFFIX)
    if isinstance(raw, str):
        import os

        return os.fsdecode(bytes.fromhex(raw))
    return str(record[member])

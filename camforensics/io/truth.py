"""Ground truth for evaluation: which data-set record a report's input was, and library names of devices.

A report names each input by its sha256 and its path as given. :class:`TruthIndex` finds the data-set record of
the same bytes: first the record at the same (resolved) path, when its hash agrees, else any record of that hash
(the whole data set is hashed once, only when needed). Inputs without a hash (files that could not be read) are
matched by resolved path alone.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camforensics.errors import InputError
from camforensics.io.records import ImageRecord


def _resolved(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))


@dataclass(frozen=True)
class TruthMatch:
    """The outcome of looking up one report input."""

    record: ImageRecord | None  # the data-set record, None when unmatched
    how: str  # "sha256" or "path" when matched; otherwise why not


class TruthIndex:
    """Data-set records found by the sha256 or path of a report's input.

    Parameters
    ----------
    records : iterable of ImageRecord
        The ground truth, e.g. :func:`camforensics.io.datasets.read_dataset`.
    """

    def __init__(self, records: Iterable[ImageRecord]) -> None:
        self.records = tuple(records)
        self._by_path = {_resolved(r.path): r for r in self.records}
        self._hash_of: dict[Path, str] = {}
        self._by_hash: dict[str, list[ImageRecord]] | None = None

    def _hash(self, record: ImageRecord) -> str:
        if record.path not in self._hash_of:
            self._hash_of[record.path] = record.sha256()
        return self._hash_of[record.path]

    def _hash_index(self) -> dict[str, list[ImageRecord]]:
        if self._by_hash is None:
            index: dict[str, list[ImageRecord]] = {}
            for r in self.records:
                index.setdefault(self._hash(r), []).append(r)
            self._by_hash = index
        return self._by_hash

    @property
    def n_hashed(self) -> int:
        """How many data-set files were hashed so far."""
        return len(self._hash_of)

    def lookup(self, item: Mapping[str, Any]) -> TruthMatch:
        """The record of a report result's ``input`` member (``sha256`` and/or ``path``).

        A hash known under several devices is ambiguous and not matched; a path whose file now has another
        hash than the report's input is not matched either (the evaluated bytes are not that record's).
        """
        sha = item.get("sha256")
        path = item.get("path")
        at_path = self._by_path.get(_resolved(path)) if path else None
        if not sha:
            if at_path is not None:
                return TruthMatch(at_path, "path")
            return TruthMatch(None, "no sha256 in the report and the path is not in the truth data set")
        if at_path is not None and self._hash(at_path) == sha:
            return TruthMatch(at_path, "sha256")
        found = self._hash_index().get(sha, [])
        devices = sorted({r.device for r in found})
        if len(devices) > 1:
            return TruthMatch(None, f"ambiguous truth: the same file is in devices {', '.join(devices)}")
        if found:
            return TruthMatch(found[0], "sha256")
        if at_path is not None:
            return TruthMatch(None, "the file at this path changed since the report (its sha256 differs)")
        return TruthMatch(None, "no file of this sha256 in the truth data set")


def read_device_map(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a CSV of ``library_name,device`` rows (an optional header row of exactly those names).

    Maps the names devices were enrolled under to the truth data set's device names.

    Raises
    ------
    InputError
        A missing or undecodable file, a row without two non-empty cells, or a name mapped twice differently.
    """
    mapping: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for n, row in enumerate(csv.reader(f), start=1):
                cells = [c.strip() for c in row]
                if not any(cells):
                    continue
                if n == 1 and [c.casefold() for c in cells] == ["library_name", "device"]:
                    continue
                if len(cells) != 2 or not all(cells):
                    raise InputError(f"device map {str(path)!r} line {n}: expected 'library_name,device', got {row!r}")
                name, device = cells
                if mapping.get(name, device) != device:
                    raise InputError(
                        f"device map {str(path)!r} line {n}: {name!r} is mapped to both {mapping[name]!r} and "
                        f"{device!r}"
                    )
                mapping[name] = device
    except FileNotFoundError:
        raise InputError(f"device map {str(path)!r} does not exist") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read device map {str(path)!r}: {exc}; save it as UTF-8 CSV") from None
    return mapping

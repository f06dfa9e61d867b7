"""Search a fingerprint library for the devices that match a query residual."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camforensics.core.matching import Query, candidate_rotations, match_query
from camforensics.core.params import MatchParams
from camforensics.core.pce import Spectrum, spectrum_of
from camforensics.errors import LibraryError, SizeMismatchError
from camforensics.io.library import FingerprintLibrary, LibraryEntry


class SpectrumCache:
    """Spectra of loaded fingerprints, least recently used first out, within a byte budget."""

    def __init__(self, budget_bytes: int = 4 << 30) -> None:
        self.budget = budget_bytes
        self._items: OrderedDict[str, Spectrum] = OrderedDict()
        self._bytes = 0

    def get(self, entry: LibraryEntry) -> Spectrum:
        k = self._items.get(entry.name)
        if k is not None:
            self._items.move_to_end(entry.name)
            return k
        k = spectrum_of(entry.load())
        self._items[entry.name] = k
        self._bytes += k.nbytes
        while self._bytes > self.budget and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes
        return k


@dataclass
class SearchOutcome:
    """Ranked candidates of one query."""

    candidates: list[dict[str, Any]]  # {"device": name, **MatchResult.to_dict()}, best PCE first
    n_fitting: int  # fingerprints whose size fits the query in an allowed rotation
    n_compared: int  # fingerprints compared by full PCE
    prefilter: dict[str, Any] | None = None  # what the prefilter did, when one ran
    used: list[str] = field(default_factory=list)  # names of the entries compared


class FingerprintIndex:
    """The entries of a library, ready to rank a query against them by PCE.

    Parameters
    ----------
    library : FingerprintLibrary
    match : MatchParams, keyword-only
        Rotations, shift range, exclusion window.
    cache_bytes : int, keyword-only
        Memory for cached fingerprint spectra.

    Raises
    ------
    LibraryError
        If the library has no enrolled device.
    """

    def __init__(self, library: FingerprintLibrary, *, match: MatchParams = MatchParams(), cache_bytes: int = 4 << 30) -> None:
        self.library = library
        self.match = match
        self.entries = list(library.entries())
        if not self.entries:
            raise LibraryError(f"library {library.root} has no enrolled device; enroll one with 'camforensics enroll'")
        self._cache = SpectrumCache(cache_bytes)

    @property
    def sizes(self) -> list[str]:
        return sorted({f"{e.shape[1]}x{e.shape[0]}" for e in self.entries})

    def fitting(self, shape: tuple[int, ...]) -> list[LibraryEntry]:
        """Entries whose fingerprint fits a query of ``shape`` in an allowed rotation."""
        return [e for e in self.entries if candidate_rotations(shape, e.shape, mode=self.match.rotations)]

    def require_fit(self, shape: tuple[int, ...]) -> list[LibraryEntry]:
        """The fitting entries; raises SizeMismatchError (with the enrolled sizes) when there are none."""
        fits = self.fitting(shape)
        if not fits:
            h, w = shape[:2]
            raise SizeMismatchError(
                f"image of {w}x{h} matches no fingerprint size in the library "
                f"(enrolled sizes: {', '.join(self.sizes)}; rotations tried: {self.match.rotations})"
            )
        return fits

    def rank(self, residual: np.ndarray, grey: np.ndarray) -> SearchOutcome:
        """PCE of the query (residual W and grey intensity I) against every fitting fingerprint, best first.

        Raises
        ------
        SizeMismatchError
            If no fingerprint fits the query's size.
        """
        fits = self.require_fit(residual.shape)
        query = Query(residual, grey)
        candidates = []
        for entry in fits:
            res = match_query(query, self._cache.get(entry), match=self.match)
            candidates.append({"device": entry.name, **res.to_dict()})
        candidates.sort(key=lambda c: c["pce"], reverse=True)
        return SearchOutcome(candidates=candidates, n_fitting=len(fits), n_compared=len(fits), used=[e.name for e in fits])

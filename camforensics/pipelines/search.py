"""Search a fingerprint library for the devices that match a query residual.

Small libraries are searched exhaustively by PCE. Large ones (more than ``SearchParams.min_library``
fingerprints of a fitting size) first rank every fingerprint by the sign agreement of 1-bit digests (see
:mod:`camforensics.core.digest`, 32 times less data than the fingerprints) and confirm a shortlist by full PCE:
the ``shortlist`` best z-scores plus every fingerprint above ``z_threshold``. A match at PCE 60 has a digest
z-score of about 4.9 against a standard-normal null, so the true device is in the shortlist unless many
unrelated fingerprints beat it by chance; ``bench/bench_prnu.py`` checks that the top candidate and decision
equal the exhaustive search's.

Bodies of one camera model share row and column patterns (the model's pipeline under its vignetting) that raise
the PCE between them (``bench/bench_nonunique.py``). Where the library holds two or more entries of one camera
model (the EXIF make and model enroll records), a query is correlated with those entries' axis-notched spectra
(:func:`camforensics.core.residual.notched_spectrum`, ``SearchParams.sibling_notch`` bins; 0 turns it off); a
model's only body, and an entry whose model is unknown, are compared as they are. Each candidate reports the
``axis_notch`` it was compared through.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.cropsearch import MIN_CROP_SIDE
from camforensics.core.digest import digest_z_scores, sign_digest
from camforensics.core.matching import Query, candidate_rotations, crop_plan, fits, match_query
from camforensics.core.params import MatchParams
from camforensics.core.pce import Spectrum
from camforensics.core.residual import notched_spectrum
from camforensics.errors import LibraryError, ParameterError, SizeMismatchError
from camforensics.io.library import FingerprintLibrary, LibraryEntry


@dataclass(frozen=True)
class SearchParams:
    """How a library is searched."""

    prefilter: str = "auto"  # "auto": digest prefilter for large libraries; "off": exhaustive PCE always
    min_library: int = 32  # fitting fingerprints above which the prefilter runs
    shortlist: int = 8  # fingerprints with the best digest z-scores always confirmed by full PCE
    z_threshold: float = 3.0  # and every fingerprint whose digest z-score exceeds this
    # Fourier bins next to the axes zeroed in the spectra of the entries whose camera model the library holds more
    # than once (their shared row and column patterns; bench/bench_nonunique.py); 0: every entry compared as is
    sibling_notch: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.sibling_notch, bool) or not isinstance(self.sibling_notch, int) or self.sibling_notch < 0:
            raise ParameterError(
                f"sibling_notch must be an int >= 0 (Fourier bins; 0 turns it off), got {self.sibling_notch!r}"
            )
        if self.prefilter not in ("auto", "off"):
            raise ParameterError(f"prefilter must be 'auto' or 'off', got {self.prefilter!r}")
        if self.shortlist < 1:
            raise ParameterError(f"shortlist must be >= 1, got {self.shortlist!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spectrum_bytes(entry: LibraryEntry) -> int:
    h, w = entry.shape
    return h * (w // 2 + 1) * 8


@dataclass
class _DigestGroup:
    """Digests of all fingerprints of one shape, one row each."""

    shape: tuple[int, int]
    names: list[str]
    matrix: np.ndarray  # uint8, (n, bytes)


def sibling_groups(entries: list[LibraryEntry]) -> dict[str, list[str]]:
    """The camera models held by two or more of ``entries`` (``LibraryEntry.camera_model``), each with the names
    of its entries; one pass over the listed metadata (entries of unknown model are in no group)."""
    groups: dict[str, list[str]] = {}
    for e in entries:
        model = e.camera_model
        if model is not None:
            groups.setdefault(model, []).append(e.name)
    return {m: names for m, names in groups.items() if len(names) > 1}


class SpectrumCache:
    """Spectra of loaded fingerprints, least recently used first out, within a byte budget; keyed by entry and
    axis notch (0: the plain spectrum).

    A spectrum not held here comes from the library's verified on-disk cache, or is computed from the hash-checked
    fingerprint and cached there (:meth:`camforensics.io.library.LibraryEntry.spectrum`; ``disk=False``: computed
    in memory only); a notched one is derived from that once (:func:`~camforensics.core.residual.notched_spectrum`,
    no FFT) and held instead of it.
    """

    def __init__(self, budget_bytes: int = 4 << 30, *, disk: bool = True) -> None:
        self.budget = budget_bytes
        self.disk = disk
        self._items: OrderedDict[tuple[str, int], Spectrum] = OrderedDict()
        self._bytes = 0

    def held(self, name: str, notch: int = 0) -> bool:
        return (name, notch) in self._items

    def get(self, entry: LibraryEntry, notch: int = 0) -> Spectrum:
        k = self._items.get((entry.name, notch))
        if k is not None:
            self._items.move_to_end((entry.name, notch))
            return k
        return self.put(entry, entry.spectrum(cache=self.disk), notch)

    def put(self, entry: LibraryEntry, k: Spectrum, notch: int = 0) -> Spectrum:
        """Hold ``entry``'s plain spectrum ``k`` with ``notch`` applied (oldest out past the budget)."""
        k = notched_spectrum(k, notch)
        self._items[(entry.name, notch)] = k
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
    skipped: dict[str, str] = field(default_factory=dict)  # corrupted or malformed entries left out, with why


@dataclass(frozen=True)
class LibraryListing:
    """A library's entries as listed once, by the process that opened it: what the workers of a batch index
    instead of opening and listing the library again (picklable; the fingerprints are still loaded, and
    hash-checked, by each worker on demand)."""

    root: Path
    listed: tuple[LibraryEntry, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (name, why) of corrupted or malformed entries left out

    @classmethod
    def of(cls, library: FingerprintLibrary) -> LibraryListing:
        listed, skipped = [], []
        for name in library.names():
            try:
                listed.append(library.entry(name))
            except LibraryError as exc:
                skipped.append((name, str(exc)))
        return cls(library.root, tuple(listed), tuple(skipped))

    def entries(self) -> Iterator[LibraryEntry]:
        return iter(self.listed)


class FingerprintIndex:
    """The entries of a library, ready to rank a query against them by PCE.

    Parameters
    ----------
    library : FingerprintLibrary or LibraryListing
    match : MatchParams, keyword-only
        Rotations, shift range, exclusion window.
    cache_bytes : int, keyword-only
        Memory for cached fingerprint spectra.
    disk_cache : bool, keyword-only
        Read the spectra from the library's on-disk cache and write those missing (:mod:`camforensics.io.spectra`;
        a read-only library is searched without it either way).

    A corrupted or malformed entry (unreadable entry.json, a fingerprint or digest whose sha256 differs from the
    one recorded) is left out with a warning (``skipped``: name -> reason) and the intact entries are still used.

    Raises
    ------
    LibraryError
        If the library has no enrolled device, or no intact one.
    """

    def __init__(
        self,
        library: FingerprintLibrary | LibraryListing,
        *,
        match: MatchParams = MatchParams(),
        search: SearchParams = SearchParams(),
        cache_bytes: int = 4 << 30,
        disk_cache: bool = True,
    ) -> None:
        self.library = library
        self.match = match
        self.search = search
        self._groups: dict[tuple[int, int], _DigestGroup] = {}
        listing = library if isinstance(library, LibraryListing) else LibraryListing.of(library)
        self.entries: list[LibraryEntry] = list(listing.listed)
        self.skipped: dict[str, str] = dict(listing.skipped)
        if not self.entries:
            if self.skipped:
                raise LibraryError(
                    f"library {library.root}: no intact entry ({'; '.join(self.skipped.values())}); run "
                    "'camforensics library check' and enroll the devices again"
                )
            raise LibraryError(f"library {library.root} has no enrolled device; enroll one with 'camforensics enroll'")
        self._cache = SpectrumCache(cache_bytes, disk=disk_cache)
        # once per library load: the models held more than once, and the notch each entry is compared through
        self.siblings = sibling_groups(self.entries) if search.sibling_notch > 0 else {}
        self.notch: dict[str, int] = {n: search.sibling_notch for names in self.siblings.values() for n in names}

    def _skip(self, entry: LibraryEntry, exc: LibraryError) -> None:
        """Leave out an entry found corrupted (its reason kept for the report)."""
        self.skipped[entry.name] = str(exc)
        self.entries = [e for e in self.entries if e.name != entry.name]
        self._groups = {k: g for k, g in self._groups.items() if entry.name not in g.names}

    def _spectra(self, entries: list[LibraryEntry]) -> dict[str, Spectrum]:
        """Hash-checked spectra of ``entries``; corrupted ones are left out (see :meth:`_skip`).

        Those not yet in memory are read (and hash-checked) in threads: reading and hashing release the GIL, so
        one core hashes one file while the other reads the next.
        """
        notch = self.notch
        missing = [e for e in entries if not self._cache.held(e.name, notch.get(e.name, 0))]
        loaded: dict[str, Spectrum | LibraryError] = {}
        if len(missing) > 1 and self._cache.budget >= sum(_spectrum_bytes(e) for e in missing):
            from concurrent.futures import ThreadPoolExecutor

            def one(e: LibraryEntry) -> Spectrum | LibraryError:
                try:
                    return e.spectrum(cache=self._cache.disk)
                except LibraryError as exc:
                    return exc

            with ThreadPoolExecutor(max_workers=min(len(missing), os.cpu_count() or 1, 4)) as pool:
                loaded = dict(zip((e.name for e in missing), pool.map(one, missing)))
        out = {}
        for e in entries:
            try:
                got = loaded.get(e.name)
                if isinstance(got, LibraryError):
                    raise got
                n = notch.get(e.name, 0)
                out[e.name] = self._cache.put(e, got, n) if got is not None else self._cache.get(e, n)
            except LibraryError as exc:
                self._skip(e, exc)
        return out

    @property
    def sizes(self) -> list[str]:
        return sorted({f"{e.shape[1]}x{e.shape[0]}" for e in self.entries})

    def fitting(self, shape: tuple[int, ...]) -> list[LibraryEntry]:
        """Entries whose fingerprint fits a query of ``shape``: same size in an allowed rotation, or as a crop."""
        return [e for e in self.entries if fits(shape, e.shape, match=self.match)]

    def require_fit(self, shape: tuple[int, ...]) -> list[LibraryEntry]:
        """The fitting entries; raises SizeMismatchError (with the enrolled sizes) when there are none."""
        fits = self.fitting(shape)
        if not fits:
            h, w = shape[:2]
            m = self.match
            if not m.searches_crops:
                how = "crop search off (--crop-anchor none)"
            else:
                how = f"nor as a crop: larger than every fingerprint at the scales searched {list(m.scales)}"
                if m.crop_anchor != "any":
                    how += f" or no offset near the crop anchor {m.crop_anchor}"
                how += f", or a side under {MIN_CROP_SIDE} pixels"
            raise SizeMismatchError(
                f"image of {w}x{h} matches no fingerprint size in the library "
                f"(enrolled sizes: {', '.join(self.sizes)}; rotations tried: {m.rotations}; {how})"
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
        held = self._spectra(fits)  # once per query: inside the comprehension below it ran once per entry (N^2)
        fits = [e for e in fits if e.name in held]  # corrupted entries left out, with a warning
        if not fits:
            raise LibraryError(
                "every fingerprint that fits this image is corrupted ("
                + "; ".join(self.skipped.values())
                + "); run 'camforensics library check' and enroll those devices again"
            )
        query = Query(residual, grey)
        prefilter = None
        z: dict[str, float] = {}
        shortlist = fits
        aligned = all(candidate_rotations(query.shape, e.shape, mode=self.match.rotations) for e in fits)
        if aligned and self.uses_prefilter(len(fits)):
            z = self._digest_scores(query, fits)
            fits = [e for e in fits if e.name in z]  # an entry whose digest is corrupted was left out
            ranked = sorted(fits, key=lambda e: z[e.name], reverse=True)
            keep = {e.name for e in ranked[: self.search.shortlist]}
            keep |= {name for name, score in z.items() if score > self.search.z_threshold}
            shortlist = [e for e in fits if e.name in keep]
            prefilter = {
                "method": "sign digest",
                "n_fitting": len(fits),
                "n_shortlisted": len(shortlist),
                "best_z": [[e.name, round(z[e.name], 2)] for e in ranked[:5]],
            }
        # Crops are searched in their stored order against every fingerprint first; the other orientations
        # (a full search each) only when no fingerprint matched that way.
        notch = self.notch
        results = {
            e.name: match_query(query, held[e.name], match=self.match, orientation_fallback=False) for e in shortlist
        }
        if not any(r.is_match for r in results.values()):
            for entry in shortlist:
                if results[entry.name].search == "crop" and all(crop_plan(query.shape, entry.shape, match=self.match)):
                    results[entry.name] = match_query(query, held[entry.name], match=self.match)
        candidates = [
            {
                "device": e.name,
                **results[e.name].to_dict(),
                "axis_notch": notch.get(e.name, 0),  # >0: another body of its camera model is enrolled
                **({"digest_z": z[e.name]} if z else {}),
            }
            for e in shortlist
        ]
        candidates.sort(key=lambda c: c["pce"], reverse=True)
        return SearchOutcome(
            candidates=candidates,
            n_fitting=len(fits),
            n_compared=len(shortlist),
            prefilter=prefilter,
            used=[e.name for e in shortlist],
            skipped=dict(self.skipped),
        )

    def uses_prefilter(self, n_fitting: int) -> bool:
        """Whether a query with ``n_fitting`` candidate fingerprints goes through the digest prefilter.

        Only aligned searches (no shift range, every fitting fingerprint of the query's size) use it: a digest
        scores the zero shift alone, so crops are always searched exhaustively.
        """
        s = self.search
        return s.prefilter == "auto" and n_fitting > s.min_library and self.match.shift_range == (0, 0)

    def _group(self, shape: tuple[int, int]) -> _DigestGroup:
        group = self._groups.get(shape)
        if group is None:
            members, digests = [], []
            for e in [e for e in self.entries if e.shape == shape]:
                try:
                    digests.append(e.load_digest())
                    members.append(e)
                except LibraryError as exc:
                    self._skip(e, exc)
            if not members:
                return _DigestGroup(shape=shape, names=[], matrix=np.zeros((0, 8), np.uint8))
            matrix = np.stack(digests)
            group = self._groups[shape] = _DigestGroup(shape=shape, names=[e.name for e in members], matrix=matrix)
        return group

    def _digest_scores(self, query: Query, fits: list[LibraryEntry]) -> dict[str, float]:
        """Best digest z-score over the allowed rotations for every fitting fingerprint."""
        best: dict[str, float] = {}
        for shape in sorted({e.shape for e in fits}):
            group = self._group(shape)
            if not group.names:
                continue
            n_bits = shape[0] * shape[1]
            for r in candidate_rotations(query.shape, shape, mode=self.match.rotations):
                scores = digest_z_scores(sign_digest(np.rot90(query.signal, r // 90)), group.matrix, n_bits)
                for name, score in zip(group.names, scores):
                    best[name] = max(best.get(name, -np.inf), float(score))
        return best

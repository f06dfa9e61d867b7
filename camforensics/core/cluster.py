"""Blind clustering of noise residuals: which photos share a sensor, with no reference images and no device count.

Pure numpy; no file access. The input is one matrix of residual vectors (one row per photo, each the zero-mean,
L2-normalised residual of the same central crop of ``d`` pixels), so that every pairwise normalised correlation
(NCC) is one entry of the Gram matrix ``G = X X^T``, computed in blocks (:func:`gram_blocks`).

The clustering is agglomerative on *cluster fingerprints* (Marra, Poggi, Sansone, Verdoliva 2017; Lin & Li 2017):
the fingerprint of a cluster A is estimated as the sum of its members' residuals ``S_A``, and two clusters are
merged when their fingerprints correlate. Every such correlation follows from ``G`` alone,
``NCC(S_A, S_B) = C_AB / sqrt(C_AA C_BB)`` with ``C_AB`` the sum of ``G`` over A x B, so nothing is re-read.
Under the null hypothesis (A and B from different sensors) ``z_AB = sqrt(d) NCC`` would be standard normal for
white residuals whatever the cluster sizes, while for one sensor it grows with the sizes: weak photos join once
their cluster is large enough. Real residuals are not white: the z of two photos of different sensors is close
to N(0, s_i s_j) with a spread ``s_i`` of each photo (scene leakage; 1.0 to 1.7 on real photos, about 1.3 for
the simulator's small images). Each photo's spread is measured from its own row of z (negative side, shrunk to
the overall spread: :func:`photo_spreads`), and every z, of photos or of clusters, is divided by
``sqrt(s_A s_B)`` (a cluster's spread is its members' mean), which brings the measured null back to N(0, 1)
so that ``P_FA`` means what it says. Clusters are merged, best pair first, while the best ``z`` exceeds the
threshold :func:`threshold_for` derived from a family-wise false-alarm probability over every test the
agglomeration can make (Bonferroni over at most ``n (n - 1)`` tests and the orientation variants tried; half of
``P_FA``). Then each photo is re-assigned to the cluster whose fingerprint, estimated without that photo,
correlates best with it (:func:`reassign`), and a second pass tests each remaining singleton against the
clusters' fingerprints with the Bonferroni threshold of that smaller family (``n_singletons x n_clusters``
tests; the other half of ``P_FA``: :func:`attach_singletons`). No number of devices is needed; a photo that
never passes stays a singleton.

The rows themselves (:func:`cluster_row`) are the residual with the peaks of its spectrum cut
(:func:`equalise_spectrum`), brought to unit local energy (:func:`even_local_energy`), then zero-mean and
unit-L2.

References
----------
F. Marra, G. Poggi, C. Sansone, L. Verdoliva, "Blind PRNU-based image clustering for source identification",
IEEE Trans. Information Forensics and Security 12(9), 2017.
X. Lin, C.-T. Li, "Large-scale image clustering based on camera fingerprints", IEEE Trans. Information
Forensics and Security 12(4), 2017.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from camforensics.errors import ParameterError

DEFAULT_P_FA = 1e-3  # family-wise probability that any two sensors are merged by chance (Gaussian null)
SPREAD_PRIOR = 64  # pseudo-values of the overall null spread in each photo's own estimate (photo_spreads)
PEAK_RATIO = 3.0  # spectrum equalisation: amplitudes cut to this many times their neighbourhood's mean
PEAK_WINDOW = 15  # frequencies on a side of that neighbourhood
ENERGY_WINDOW = 16  # pixels on a side of the local RMS the weighted residual is divided by
PREFILTER_MIN = 4096  # photos of one group from which prefilter "auto" skips the n x n matrix (400 MB at 10,000)
ATTACH_ROUNDS = 3  # rounds of the second pass (singletons against the re-estimated cluster fingerprints)


@dataclass(frozen=True)
class ClusterParams:
    """Parameters of :func:`cluster_gram`, written into the report."""

    p_fa: float = DEFAULT_P_FA  # family-wise false-merge probability under the Gaussian null of NCC
    crop: int = 1024  # side of the common central crop (pixels); smaller images use their whole size
    block: int = 256  # rows per block of the Gram matrix (memory: block x d floats per operand)
    prefilter: str = "auto"  # "on": sign-digest candidates (core.cluster_sparse); "off": every pair; "auto": on past PREFILTER_MIN photos

    def __post_init__(self) -> None:
        if self.prefilter not in ("auto", "on", "off"):
            raise ParameterError(f"prefilter must be auto, on or off, got {self.prefilter!r}")
        if not 0 < self.p_fa < 1:
            raise ParameterError(f"p_fa must be in (0, 1), got {self.p_fa!r}")
        if self.crop < 64:
            raise ParameterError(f"crop must be >= 64 pixels, got {self.crop!r}")
        if self.block < 1:
            raise ParameterError(f"block must be >= 1, got {self.block!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalise_vector(residual: np.ndarray) -> np.ndarray:
    """The residual as a zero-mean, unit-L2 float32 row vector (all zeros when it is constant).

    Parameters
    ----------
    residual : ndarray, 2-D

    Returns
    -------
    ndarray, float32, 1-D of ``residual.size``
    """
    v = np.asarray(residual, dtype=np.float32).ravel().copy()
    v -= v.mean(dtype=np.float64)
    norm = float(np.linalg.norm(v.astype(np.float64)))
    if norm > 0:
        v /= norm
    return v


def equalise_spectrum(residual: np.ndarray, *, peak: float = PEAK_RATIO, window: int = PEAK_WINDOW) -> np.ndarray:
    """The residual with the peaks of its amplitude spectrum cut down to ``peak`` times their neighbourhood's mean.

    Periodic artefacts shared by many cameras (JPEG blocks, demosaicing, sensor read-out lines) sit in few strong
    frequencies; the sensor pattern is spread over all of them. Cutting each amplitude to at most ``peak`` times
    the mean of the ``window x window`` frequencies around it removes those peaks while keeping the broad shape of
    the spectrum, which weights the frequencies the camera's processing left to the pattern (spectrum
    equalisation, Lin & Li, IEEE TIFS 11(1), 2016). Flattening the whole amplitude instead (phase only) gives the
    frequencies the camera's denoising and JPEG emptied the same weight as the others: on the development corpus
    it lowered the weak phones' scores (measured in docs/algorithms.md).

    Returns
    -------
    ndarray, float32, same shape
    """
    from scipy.ndimage import uniform_filter

    r = np.asarray(residual, np.float64)
    spectrum = np.fft.rfft2(r)
    amplitude = np.abs(spectrum)
    local = uniform_filter(amplitude, window, mode="wrap") + 1e-30
    return np.fft.irfft2(spectrum / np.maximum(1.0, amplitude / (peak * local)), s=r.shape).astype(np.float32)


def even_local_energy(residual: np.ndarray, *, window: int = ENERGY_WINDOW) -> np.ndarray:
    """Content-adaptive weighting: the residual divided by its local RMS over ``window x window`` pixels.

    Textured areas leak the scene's edges into the residual (the denoiser cannot tell them from noise) and would
    dominate a correlation; bringing every area to the same energy lets the flat and textured parts count
    alike. (Weighting by the intensity as well, the matched filter of a multiplicative pattern, was measured and
    left out: it added a component common to every simulated photo, mean pair z +0.1, enough to chain 1,000
    simulated photos into one cluster.)

    Returns
    -------
    ndarray, float32, same shape
    """
    from scipy.ndimage import uniform_filter

    w = np.asarray(residual, np.float32)
    energy = uniform_filter(w * w, window)
    floor = np.float32(1e-6 * float(energy.mean()) + 1e-30)
    return (w / np.sqrt(energy + floor)).astype(np.float32)


def cluster_row(residual: np.ndarray) -> np.ndarray:
    """The row a photo is clustered by: :func:`equalise_spectrum`, :func:`even_local_energy`, then zero-mean and
    unit-L2 (:func:`normalise_vector`)."""
    return normalise_vector(even_local_energy(equalise_spectrum(residual)))


def central_crop(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """The central ``height x width`` window of a 2-D (or H x W x C) array (the whole axis when it is smaller)."""
    h, w = a.shape[:2]
    ch, cw = min(h, height), min(w, width)
    top, left = (h - ch) // 2, (w - cw) // 2
    return a[top : top + ch, left : left + cw]


def threshold_for(p_fa: float, n_photos: int, n_variants: int = 1) -> float:
    """The z-score a cluster-fingerprint correlation must exceed for a merge.

    Bonferroni over every test the agglomeration can make: at most ``n (n - 1)`` cluster pairs are compared
    in all (``n (n - 1) / 2`` at the start, at most ``n`` new ones per merge), each maximised over
    ``n_variants`` orientations; under the Gaussian null each comparison passes with probability ``Q(t)``.

    Parameters
    ----------
    p_fa : float
        Family-wise probability of any false merge.
    n_photos : int
    n_variants : int
        Orientations tried per pair (2 when portrait photos are compared rotated both ways).

    Returns
    -------
    float
        ``t`` with ``n (n - 1) n_variants Q(t) = p_fa`` (at least the one-test threshold).
    """
    from scipy.special import ndtri

    tests = max(1, n_photos * (n_photos - 1)) * max(1, n_variants)
    return float(-ndtri(p_fa / tests))


def gram_blocks(
    rows: Callable[[int, int], np.ndarray], n: int, *, block: int = 256, tick: Callable[[int], None] | None = None
) -> np.ndarray:
    """``X X^T`` of an ``n x d`` matrix read block by block (memory: two blocks of rows and the n x n result).

    Parameters
    ----------
    rows : callable
        ``rows(i0, i1)`` returns rows ``i0:i1`` of X as float32 (e.g. slices of a memory-mapped store).
    n : int
    block : int, keyword-only
        Rows per block.
    tick : callable, optional, keyword-only
        Called with the number of block products done.

    Returns
    -------
    ndarray, float32, (n, n), symmetric
    """
    g = np.zeros((n, n), np.float32)
    done = 0
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        a = np.ascontiguousarray(rows(i0, i1), dtype=np.float32)
        g[i0:i1, i0:i1] = a @ a.T
        for j0 in range(i1, n, block):
            j1 = min(n, j0 + block)
            b = np.ascontiguousarray(rows(j0, j1), dtype=np.float32)
            g[i0:i1, j0:j1] = a @ b.T
            g[j0:j1, i0:i1] = g[i0:i1, j0:j1].T
            done += 1
            if tick is not None:
                tick(done)
        done += 1
        if tick is not None:
            tick(done)
    return g


def fold_variants(g: np.ndarray, owner: Sequence[int], n: int) -> np.ndarray:
    """Pairwise NCC of photos from the Gram matrix of their orientation variants (rows ``owner[v]`` = photo).

    A pair of photos gets the largest correlation over the variants of each (a portrait photo is compared in
    both 90-degree rotations); the diagonal is the first variant's self-correlation (1 for unit vectors).

    Returns
    -------
    ndarray, float32, (n, n)
    """
    owner = np.asarray(owner)
    if owner.size == n and np.array_equal(owner, np.arange(n)):
        return g
    out = np.full((n, n), -np.inf, np.float32)
    for v in range(owner.size):
        p = owner[v]
        row = np.full(n, -np.inf, np.float32)
        np.maximum.at(row, owner, g[v])
        out[p] = np.maximum(out[p], row)
    np.fill_diagonal(out, 1.0)
    return out


@dataclass
class Clustering:
    """The outcome of :func:`cluster_gram`."""

    labels: np.ndarray  # int, (n,): cluster of each photo, clusters numbered by decreasing size from 0
    threshold: float  # the z a merge needed
    merges: list[tuple[int, int, float]]  # (cluster a, cluster b, z) of each merge in order (indices at the time)
    scores: np.ndarray  # float, (n,): each photo's z to its cluster's fingerprint without itself (nan: singleton)
    null_spread: float  # robust std of the pairwise z of different sensors (negative side; 1 under the white null)
    n_reassigned: int  # photos moved by the re-assignment
    spreads: np.ndarray  # float, (n,): each photo's null spread (photo_spreads); every z is divided by it
    threshold_attach: float  # the z a singleton needed against a cluster in the second pass (nan: none tested)
    n_attached: int  # singletons attached by the second pass


def negative_side_spread(values: np.ndarray) -> tuple[float, int]:
    """Robust std of a symmetric null from its negative half: ``1.4826 x median(-v)`` over ``v < 0``.

    Pairs of one sensor have positive z; the negative side holds (almost) only the null, so the estimate is not
    inflated by the matches, whatever their share. Returns (spread, number of negative values); nan when none.
    """
    v = np.asarray(values, np.float64).ravel()
    neg = -v[v < 0]
    return (float(1.4826 * np.median(neg)) if neg.size else float("nan")), int(neg.size)


class SpreadMeter:
    """Per-photo and overall negative-side null spreads, fed rows of z in blocks (memory: the n results).

    ``add(i0, z)`` takes the z of photos ``i0 .. i0 + len(z)`` against others (a photo's z with itself must be 0
    or positive: only negative values count); ``finish`` shrinks each photo's estimate towards the overall one
    with ``prior`` pseudo-values and floors it at 1 (see :func:`photo_spreads`).
    """

    BIN = 0.005  # |z| histogram bin of the overall median

    def __init__(self, n: int) -> None:
        self.med = np.full(n, np.nan)
        self.count = np.zeros(n, np.int64)
        self.hist = np.zeros(4096, np.int64)

    def add(self, i0: int, z: np.ndarray) -> None:
        neg = np.where(z < 0, -z, np.nan)
        self.count[i0 : i0 + z.shape[0]] = np.count_nonzero(z < 0, axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a row without a negative value: nan, handled below
            self.med[i0 : i0 + z.shape[0]] = np.nanmedian(neg, axis=1)
        bins = np.minimum((neg[np.isfinite(neg)] / self.BIN).astype(np.int64), self.hist.size - 1)
        self.hist += np.bincount(bins, minlength=self.hist.size)

    def finish(self, prior: int = SPREAD_PRIOR) -> tuple[np.ndarray, float]:
        total = int(self.hist.sum())
        overall = float(1.4826 * self.BIN * (np.searchsorted(np.cumsum(self.hist), (total + 1) / 2) + 0.5)) if total else float("nan")
        base = max(1.0, overall) if math.isfinite(overall) else 1.0
        own = np.where(np.isfinite(self.med), 1.4826 * self.med, base)
        spreads = (self.count * own + prior * base) / (self.count + prior)
        return np.maximum(spreads, 1.0), overall


def photo_spreads(g: np.ndarray, d: int, *, prior: int = SPREAD_PRIOR, block: int = 1024) -> tuple[np.ndarray, float]:
    """Each photo's measured null spread: the robust std of its z against the other photos.

    On real photos the z of two different sensors is not N(0, 1) but close to N(0, s_i s_j), with a spread s_i
    of each photo (scene leakage that survives the equalisation: 1.0 to 1.7 on the development corpus). Each s_i
    is :func:`negative_side_spread` of the photo's row of z, shrunk towards the spread of all pairs with
    ``prior`` pseudo-values (a row of a few dozen photos gives a noisy estimate), and never below 1 (the
    white-noise null).

    Returns
    -------
    (spreads, overall)
        float64 (n,) per photo, and the negative-side spread of all pairs (not floored; nan under 2 photos).
    """
    n = g.shape[0]
    if n < 2:
        return np.ones(n), float("nan")
    meter = SpreadMeter(n)
    for i0 in range(0, n, block):
        rows = np.asarray(g[i0 : i0 + block], np.float32) * np.float32(math.sqrt(d))
        rows[np.arange(rows.shape[0]), np.arange(i0, i0 + rows.shape[0])] = 0.0
        meter.add(i0, rows)
    return meter.finish(prior)


def agglomerate(
    g: np.ndarray, d: int, threshold: float, spreads: np.ndarray | None = None, sizes: np.ndarray | None = None
) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Merge clusters, best fingerprint correlation first, while its z exceeds ``threshold``.

    Parameters
    ----------
    g : ndarray, (n, n)
        Pairwise NCC of unit residual vectors (diagonal 1). Not modified.
    d : int
        Pixels per residual vector.
    threshold : float
    spreads : ndarray, optional
        Each photo's null spread (:func:`photo_spreads`); a cluster's is the mean of its members', and the z of
        two clusters is divided by the square root of the product of theirs. Default 1 (the white-noise null).
    sizes : ndarray, optional
        Photos behind each row when the rows are already clusters (``g`` then holds the sums ``C_AB`` and
        ``spreads`` the clusters' mean spreads); default one each.

    Returns
    -------
    (labels, merges)
        Cluster index of each photo (the index of its cluster's first row) and the merges made.
    """
    n = g.shape[0]
    # C_AB: sums of G over A x B, rows of merged clusters updated in place (float32 past 4096 photos: 64 MB .. 400 MB)
    c = np.array(g, dtype=np.float64 if n <= 4096 else np.float32)
    alive = np.ones(n, bool)
    members: list[list[int]] = [[i] for i in range(n)]
    sqrt_d = math.sqrt(d)
    size = np.ones(n) if sizes is None else np.asarray(sizes, np.float64).copy()
    s_sum = size.copy() if spreads is None else np.asarray(spreads, np.float64) * size

    def z_row(a: int) -> np.ndarray:
        diag = np.clip(np.diagonal(c), 1e-30, None) * (s_sum / size)
        z = sqrt_d * c[a] / np.sqrt(diag[a] * diag)
        z[~alive] = -np.inf
        z[a] = -np.inf
        return z

    best = np.full(n, -np.inf)
    arg = np.zeros(n, np.int64)
    for a in range(n):
        z = z_row(a)
        arg[a] = int(np.argmax(z)) if n > 1 else 0
        best[a] = z[arg[a]] if n > 1 else -np.inf
    merges: list[tuple[int, int, float]] = []
    while True:
        a = int(np.argmax(best))
        zab = float(best[a])
        if not zab > threshold:
            break
        b = int(arg[a])
        a, b = min(a, b), max(a, b)
        merges.append((a, b, zab))
        c[a] += c[b]
        c[:, a] += c[:, b]  # c[a, a] now C_AA + 2 C_AB + C_BB
        s_sum[a] += s_sum[b]
        size[a] += size[b]
        alive[b] = False
        best[b] = -np.inf
        members[a].extend(members[b])
        members[b] = []
        za = z_row(a)
        arg[a] = int(np.argmax(za))
        best[a] = za[arg[a]]
        # other rows: the new cluster may now be their best; rows whose best was a or b are recomputed
        others = alive.copy()
        others[a] = False
        better = others & (za > best)
        best[better] = za[better]
        arg[better] = a
        for r in np.flatnonzero(others & ((arg == b) | ((arg == a) & ~better))):
            zr = z_row(int(r))
            arg[r] = int(np.argmax(zr))
            best[r] = zr[arg[r]]
    labels = np.empty(n, np.int64)
    for a in np.flatnonzero(alive):
        labels[members[a]] = a
    return labels, merges


def multi_photo_clusters(labels: np.ndarray) -> np.ndarray:
    """Labels of the clusters holding two or more photos, sorted."""
    ids, counts = np.unique(labels, return_counts=True)
    return ids[counts > 1]


def _member_sums(g: np.ndarray, labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``sum_{j in cluster k} G_ij`` for every photo i and cluster ``ids[k]``: float64 (n, len(ids)), one sparse
    product (work n x the number of members, whatever the number of clusters)."""
    from scipy import sparse

    n = labels.size
    col = np.searchsorted(ids, labels)
    inside = (col < ids.size) & (ids[np.minimum(col, max(ids.size - 1, 0))] == labels) if ids.size else np.zeros(n, bool)
    rows = np.flatnonzero(inside)
    member = sparse.csr_matrix((np.ones(rows.size, np.float32), (col[rows], rows)), shape=(ids.size, n))
    return np.asarray(member @ g, dtype=np.float64).T  # (member @ g)[k, i] = sum over k's members j of G_ji


def scores_to_clusters(
    g: np.ndarray, labels: np.ndarray, d: int, ids: np.ndarray | None = None, spreads: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """z of every photo against clusters' fingerprints (the sum of the members' residuals, leaving the photo
    itself out of its own cluster).

    Parameters
    ----------
    ids : ndarray, optional
        The clusters to score against (sorted labels); default every cluster.
    spreads : ndarray, optional
        Each photo's null spread (:func:`photo_spreads`): z is divided by ``sqrt(s_i * s_cluster)``, the
        cluster's spread being the mean of its members' (without the photo itself). Default 1.

    Returns
    -------
    (ids, z)
        ``ids``: the cluster labels, in column order; ``z``: float64 (n, k), nan where the fingerprint is empty
        (a singleton's own cluster).
    """
    ids = np.unique(labels) if ids is None else np.asarray(ids)
    own = labels[:, None] == ids[None, :]
    gc = _member_sums(g, labels, ids)
    cc = np.array([gc[labels == k, c].sum() for c, k in enumerate(ids)], np.float64)  # C_AA
    self_g = np.diagonal(g).astype(np.float64)
    num = gc - own * self_g[:, None]  # leave each photo out of its own cluster
    norm2 = cc[None, :] - own * (2 * gc - self_g[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        z = math.sqrt(d) * num / (np.sqrt(np.where(norm2 > 1e-12, norm2, np.nan)) * np.sqrt(np.clip(self_g, 1e-30, None))[:, None])
        if spreads is not None:
            sp = np.asarray(spreads, np.float64)
            size = np.array([np.count_nonzero(labels == k) for k in ids], np.float64)
            total = np.array([sp[labels == k].sum() for k in ids], np.float64)
            mean = (total[None, :] - own * sp[:, None]) / (size[None, :] - own)
            z = z / np.sqrt(sp[:, None] * mean)
    return ids, z


def reassign(
    g: np.ndarray, labels: np.ndarray, d: int, threshold: float, *, rounds: int = 3, spreads: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Move each photo to the cluster of two or more photos whose fingerprint (without the photo) correlates best
    with it.

    A photo goes to the cluster of highest z when that z exceeds ``threshold``; a photo with no cluster above
    it becomes (or stays) a singleton. (Two singletons above the threshold were already merged by
    :func:`agglomerate`.) Repeated until nothing moves (at most ``rounds`` times).

    Returns
    -------
    (labels, n_moved)
    """
    labels = labels.copy()
    moved_total = 0
    for _ in range(rounds):
        targets = multi_photo_clusters(labels)
        if targets.size == 0:
            break
        ids, z = scores_to_clusters(g, labels, d, targets, spreads)
        zz = np.where(np.isnan(z), -np.inf, z)
        best = np.argmax(zz, axis=1)
        best_z = zz[np.arange(labels.size), best]
        new = np.where(best_z > threshold, ids[best], -1)
        fresh = np.flatnonzero(new < 0)
        # photos that pass nowhere become singletons (a singleton keeps its label, others get new ones)
        top = int(labels.max()) + 1
        counts = np.bincount(labels)
        new[fresh] = np.where(counts[labels[fresh]] == 1, labels[fresh], top + np.arange(fresh.size))
        moved = int(np.count_nonzero(new != labels))
        labels = new
        moved_total += moved
        if not moved:
            break
    return labels, moved_total


def attach_singletons(
    g: np.ndarray, labels: np.ndarray, d: int, p_fa: float, *, spreads: np.ndarray | None = None,
    n_variants: int = 1, rounds: int = ATTACH_ROUNDS,
) -> tuple[np.ndarray, int, float]:
    """Second pass: each singleton tested against the fingerprints of the clusters of two or more photos.

    The clusters found by :func:`agglomerate` have stronger fingerprints than any single photo, so a weak photo
    that never passed the pairwise threshold may pass against its cluster. The family of tests is smaller
    (``n_singletons x n_clusters`` instead of ``n (n - 1)``), so the Bonferroni threshold is lower for the same
    ``p_fa`` (split over ``rounds``: each round re-estimates the fingerprints with the photos just attached). A
    singleton joins the cluster of its best z when that z exceeds the threshold.

    Returns
    -------
    (labels, n_attached, threshold)
        ``threshold`` of the first round (nan when there was nothing to test).
    """
    from scipy.special import ndtri

    labels = labels.copy()
    attached = 0
    first = float("nan")
    for _ in range(rounds):
        targets = multi_photo_clusters(labels)
        counts = np.bincount(labels)
        single = np.flatnonzero(counts[labels] == 1)
        if targets.size == 0 or single.size == 0:
            break
        t = float(-ndtri(p_fa / (rounds * single.size * targets.size * max(1, n_variants))))
        first = t if math.isnan(first) else first
        ids, z = scores_to_clusters(g, labels, d, targets, spreads)
        zs = np.where(np.isnan(z[single]), -np.inf, z[single])
        best = np.argmax(zs, axis=1)
        go = zs[np.arange(single.size), best] > t
        if not go.any():
            break
        labels[single[go]] = ids[best[go]]
        attached += int(go.sum())
    return labels, attached, first


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0, 1, ... by decreasing cluster size (ties by the first photo)."""
    ids, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(ids.size), key=lambda k: (-counts[k], first[k]))
    remap = {int(ids[k]): r for r, k in enumerate(order)}
    return np.array([remap[int(x)] for x in labels], np.int64)


def cluster_gram(g: np.ndarray, d: int, *, p_fa: float = DEFAULT_P_FA, n_variants: int = 1) -> Clustering:
    """Cluster photos from the pairwise NCC of their residuals (see the module docstring).

    Each photo's null spread is measured (:func:`photo_spreads`) and every z divided by it; then agglomeration
    and re-assignment at the Bonferroni threshold for ``n (n - 1)`` tests, and the second pass
    (:func:`attach_singletons`) at the threshold for ``n_singletons x n_clusters`` tests. ``p_fa`` is split
    evenly between the two passes.

    Parameters
    ----------
    g : ndarray, (n, n)
        Pairwise NCC of unit residual vectors (e.g. :func:`gram_blocks`, then :func:`fold_variants`).
    d : int
        Pixels per residual vector (the null std of an NCC is ``1 / sqrt(d)``).
    p_fa : float, keyword-only
        Family-wise false-merge probability.
    n_variants : int, keyword-only
        Orientation variants maximised over per pair (enters the Bonferroni count).

    Returns
    -------
    Clustering
    """
    n = g.shape[0]
    t = threshold_for(p_fa / 2, n, n_variants)
    if n == 0:
        return Clustering(np.zeros(0, np.int64), t, [], np.zeros(0), float("nan"), 0, np.zeros(0), float("nan"), 0)
    spreads, overall = photo_spreads(g, d)
    labels, merges = agglomerate(g, d, t, spreads)
    labels, moved = reassign(g, labels, d, t, spreads=spreads)
    labels, attached, t_attach = attach_singletons(g, labels, d, p_fa / 2, spreads=spreads, n_variants=n_variants)
    labels = relabel_by_size(labels)
    ids, z = scores_to_clusters(g, labels, d, multi_photo_clusters(labels), spreads)
    scores = np.full(n, np.nan)
    col = np.searchsorted(ids, labels)
    inside = col < ids.size
    inside[inside] = ids[col[inside]] == labels[inside]
    scores[inside] = z[np.flatnonzero(inside), col[inside]]
    return Clustering(labels, t, merges, scores, overall, moved, spreads, t_attach, attached)


def between_clusters(
    g: np.ndarray, labels: np.ndarray, d: int, ids: np.ndarray | None = None, spreads: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """z between every two clusters' fingerprints (sums of members' residuals): the evidence that they differ.

    Parameters
    ----------
    ids : ndarray, optional
        The clusters compared (sorted labels); default every cluster.
    spreads : ndarray, optional
        Each photo's null spread; z is divided by ``sqrt(s_a s_b)`` of the clusters' mean spreads. Default 1.

    Returns
    -------
    (ids, z)
        ``z`` float64 (k, k), diagonal nan.
    """
    ids = np.unique(labels) if ids is None else np.asarray(ids)
    gc = _member_sums(g, labels, ids)
    cc = np.stack([gc[labels == k].sum(axis=0) for k in ids]) if ids.size else np.zeros((0, 0))
    diag = np.clip(np.diagonal(cc), 1e-30, None)
    z = math.sqrt(d) * cc / np.sqrt(np.outer(diag, diag))
    if spreads is not None and ids.size:
        mean = np.array([np.mean(np.asarray(spreads)[labels == k]) for k in ids])
        z = z / np.sqrt(np.outer(mean, mean))
    np.fill_diagonal(z, np.nan)
    return ids, z

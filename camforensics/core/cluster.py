"""Blind clustering of noise residuals: which photos share a sensor, with no reference images and no device count.

Pure numpy; no file access. The input is one matrix of residual vectors (one row per photo, each the zero-mean,
L2-normalised residual of the same central crop of ``d`` pixels), so that every pairwise normalised correlation
(NCC) is one entry of the Gram matrix ``G = X X^T``, computed in blocks (:func:`gram_blocks`).

The clustering is agglomerative on *cluster fingerprints* (Marra, Poggi, Sansone, Verdoliva 2017; Lin & Li 2017):
the fingerprint of a cluster A is estimated as the sum of its members' residuals ``S_A``, and two clusters are
merged when their fingerprints correlate. Every such correlation follows from ``G`` alone,
``NCC(S_A, S_B) = C_AB / sqrt(C_AA C_BB)`` with ``C_AB`` the sum of ``G`` over A x B, so nothing is re-read.
Under the null hypothesis (A and B from different sensors, residuals independent, near white after the Wiener
filter) ``z_AB = sqrt(d) NCC`` is standard normal whatever the cluster sizes, while for one sensor it grows
with the sizes: weak photos join once their cluster is large enough. Clusters are merged, best pair first,
while the best ``z`` exceeds the threshold :func:`threshold_for` derived from a family-wise false-alarm
probability ``P_FA`` over every test the agglomeration can make (Bonferroni over at most ``n (n - 1)`` tests
and the orientation variants tried). No number of devices is needed; a photo that never passes stays a
singleton. Then each photo is re-assigned to the cluster whose fingerprint, estimated without that photo,
correlates best with it (:func:`reassign`); a photo whose best score is under the threshold becomes a singleton.

References
----------
F. Marra, G. Poggi, C. Sansone, L. Verdoliva, "Blind PRNU-based image clustering for source identification",
IEEE Trans. Information Forensics and Security 12(9), 2017.
X. Lin, C.-T. Li, "Large-scale image clustering based on camera fingerprints", IEEE Trans. Information
Forensics and Security 12(4), 2017.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from camforensics.errors import ParameterError

DEFAULT_P_FA = 1e-3  # family-wise probability that any two sensors are merged by chance (Gaussian null)


@dataclass(frozen=True)
class ClusterParams:
    """Parameters of :func:`cluster_gram`, written into the report."""

    p_fa: float = DEFAULT_P_FA  # family-wise false-merge probability under the Gaussian null of NCC
    crop: int = 1024  # side of the common central crop (pixels); smaller images use their whole size
    block: int = 256  # rows per block of the Gram matrix (memory: block x d floats per operand)

    def __post_init__(self) -> None:
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


def whiten_spectrum(residual: np.ndarray) -> np.ndarray:
    """The residual with a flat amplitude spectrum (phase only): spectrum equalisation of the residual.

    Scene detail and periodic artefacts that leak into residuals (JPEG blocks, demosaicing, shared by many
    cameras) sit in few strong frequencies; the sensor pattern is spread over all of them. Flattening the
    amplitude makes the residual close to white, so that the NCC of two unrelated photos has the null std
    ``1 / sqrt(d)`` the threshold assumes, and shared artefacts no longer chain different cameras together
    (Lin & Li, "Preprocessing reference sensor pattern noise via spectrum equalization", IEEE TIFS 11(1), 2016;
    the cross-spectrum of PCE is flattened the same way in phase correlation).

    Returns
    -------
    ndarray, float32, same shape
    """
    r = np.asarray(residual, np.float64)
    spectrum = np.fft.rfft2(r)
    amplitude = np.abs(spectrum)
    floor = 1e-9 * float(amplitude.mean()) + 1e-30
    return np.fft.irfft2(spectrum / (amplitude + floor), s=r.shape).astype(np.float32)


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
    null_spread: float  # robust std of the off-diagonal pairwise z (1 under the white-noise null)
    n_reassigned: int  # photos moved by the re-assignment


def pair_z(g: np.ndarray, d: int) -> np.ndarray:
    """``sqrt(d) G`` as float32 with the diagonal zeroed: the pairwise z-scores of unit residual vectors."""
    z = g.astype(np.float32) * np.float32(math.sqrt(d))
    np.fill_diagonal(z, 0.0)
    return z


def robust_null_spread(z: np.ndarray, *, max_pairs: int = 2_000_000, seed: int = 0) -> float:
    """Robust std (1.4826 x median |z|) of the off-diagonal z-scores: 1 when the Gaussian null holds.

    Most pairs of a mixed folder are of different sensors, so the median ignores the matching ones. Reported
    as a check of the null; the threshold does not use it.
    """
    n = z.shape[0]
    if n < 2:
        return float("nan")
    iu = np.triu_indices(n, 1) if n * (n - 1) // 2 <= max_pairs else None
    if iu is not None:
        vals = z[iu]
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, max_pairs)
        j = rng.integers(0, n, max_pairs)
        keep = i != j
        vals = z[i[keep], j[keep]]
    return float(1.4826 * np.median(np.abs(vals)))


def agglomerate(g: np.ndarray, d: int, threshold: float) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Merge clusters, best fingerprint correlation first, while its z exceeds ``threshold``.

    Parameters
    ----------
    g : ndarray, (n, n)
        Pairwise NCC of unit residual vectors (diagonal 1). Not modified.
    d : int
        Pixels per residual vector.
    threshold : float

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

    def z_row(a: int) -> np.ndarray:
        diag = np.clip(np.diagonal(c), 1e-30, None)
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
    g: np.ndarray, labels: np.ndarray, d: int, ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """z of every photo against clusters' fingerprints (the sum of the members' residuals, leaving the photo
    itself out of its own cluster).

    Parameters
    ----------
    ids : ndarray, optional
        The clusters to score against (sorted labels); default every cluster.

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
    return ids, z


def reassign(g: np.ndarray, labels: np.ndarray, d: int, threshold: float, *, rounds: int = 3) -> tuple[np.ndarray, int]:
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
        ids, z = scores_to_clusters(g, labels, d, targets)
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


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0, 1, ... by decreasing cluster size (ties by the first photo)."""
    ids, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(ids.size), key=lambda k: (-counts[k], first[k]))
    remap = {int(ids[k]): r for r, k in enumerate(order)}
    return np.array([remap[int(x)] for x in labels], np.int64)


def cluster_gram(g: np.ndarray, d: int, *, p_fa: float = DEFAULT_P_FA, n_variants: int = 1) -> Clustering:
    """Cluster photos from the pairwise NCC of their residuals (see the module docstring).

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
    t = threshold_for(p_fa, n, n_variants)
    if n == 0:
        return Clustering(np.zeros(0, np.int64), t, [], np.zeros(0), float("nan"), 0)
    labels, merges = agglomerate(g, d, t)
    labels, moved = reassign(g, labels, d, t)
    labels = relabel_by_size(labels)
    ids, z = scores_to_clusters(g, labels, d, multi_photo_clusters(labels))
    scores = np.full(n, np.nan)
    col = np.searchsorted(ids, labels)
    inside = col < ids.size
    inside[inside] = ids[col[inside]] == labels[inside]
    scores[inside] = z[np.flatnonzero(inside), col[inside]]
    return Clustering(labels, t, merges, scores, robust_null_spread(pair_z(g, d)), moved)


def between_clusters(g: np.ndarray, labels: np.ndarray, d: int, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """z between every two clusters' fingerprints (sums of members' residuals): the evidence that they differ.

    Parameters
    ----------
    ids : ndarray, optional
        The clusters compared (sorted labels); default every cluster.

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
    np.fill_diagonal(z, np.nan)
    return ids, z

"""Blind clustering of many photos: a sign-digest prefilter bounds the exact work and the memory.

The dense path (:func:`camforensics.core.cluster.cluster_gram`) holds the n x n matrix of every pair (400 MB at
10,000 photos, 40 GB at 100,000) and computes every exact correlation. Here, as in identify's library search
(:mod:`camforensics.core.digest`), each row is first reduced to its sign digest (1 bit per pixel, 32 times
smaller than the float32 row), and every pair is scored by sign agreement (``z_digest ~ (2 / pi) z`` for one
sensor). Each photo's ``TOP`` best digest partners are candidates; their exact z (the larger over quarter
turns) is computed, and a candidate pair is *confirmed* when it passes the dense path's merge threshold. Then:

1. each photo's null spread (:class:`~camforensics.core.cluster.SpreadMeter`) from its exact z against a random
   panel of ``PANEL`` photos (one product, n x PANEL);
2. each connected component of the confirmed pairs is clustered exactly (its own dense Gram matrix, the
   agglomeration and re-assignment of the dense path, at the dense path's threshold for all n photos);
3. the clusters' fingerprints (sums of their rows, K x d floats) are compared with each other and merged by
   the same agglomeration (clusters of one sensor that no candidate pair linked);
4. the second pass of the dense path: each remaining singleton against every cluster's fingerprint, at the
   Bonferroni threshold of ``n_singletons x n_clusters`` tests.

Memory: the digests (n d / 8 bytes), the candidate pairs, the largest component's Gram matrix and the K x d
cluster fingerprints; never n x n. Exact work: n x (TOP + PANEL) + the components' pairs + K^2 + n_singletons x K
dot products of d instead of n^2 / 2 (the digest comparison still visits every pair, 64 pixels per word
operation). Steps 3 and 4 repeat while anything changes. A portrait photo is compared in both quarter turns by
the prefilter and within its component; the fingerprints of steps 3 and 4 use each photo's stored (landscape)
row only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camforensics.core.cluster import ATTACH_ROUNDS, Clustering, SpreadMeter, agglomerate, fold_variants, gram_blocks
from camforensics.core.cluster import multi_photo_clusters, reassign, relabel_by_size
from camforensics.core.cluster import threshold_for
from camforensics.core.digest import sign_digest

PANEL = 128  # photos every photo is compared with exactly, for its null spread
TOP = 16  # candidate partners per photo from the digests (confirmed by their exact z)
TEMP_BYTES = 1 << 25  # bytes of XOR temporaries per step of the digest comparison
ROW_BYTES = 1 << 28  # bytes of rows held at once by the digest pass


@dataclass
class SparseResult:
    """The clustering and what the report needs, without any n x n matrix."""

    clustering: Clustering
    multi: np.ndarray  # labels of the clusters of 2+ photos, sorted
    between: np.ndarray  # z between those clusters (k x k, diagonal nan)
    to_clusters: np.ndarray  # z of every photo against those clusters (n x k; nan for its own cluster)
    stats: dict[str, Any] = field(default_factory=dict)


def digest_candidates(digests: np.ndarray, n_bits: int, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``top`` best partners by digest z (sign agreement), over every other row.

    Parameters
    ----------
    digests : ndarray, uint8, (v, bytes)
        :func:`sign_digest` of each row (length a multiple of 8 bytes).

    Returns
    -------
    (partners, z)
        int64 and float64 (v, top): the partners' row indices (-1 where fewer rows) and their digest z.
    """
    words = np.ascontiguousarray(digests).view(np.uint64)
    v = words.shape[0]
    top = max(1, min(top, v - 1))
    best_j = np.full((v, top), -1, np.int64)
    best_z = np.full((v, top), -np.inf)
    step = max(1, TEMP_BYTES // max(1, words.shape[1] * 8))
    norm = 1.0 / math.sqrt(n_bits)
    for a in range(v):
        for b0 in range(a + 1, v, step):
            block = words[b0 : b0 + step]
            z = (n_bits - 2.0 * np.bitwise_count(np.bitwise_xor(block, words[a])).sum(axis=1, dtype=np.int64)) * norm
            # row a keeps its best over this block
            pool_z = np.concatenate([best_z[a], z])
            pool_j = np.concatenate([best_j[a], np.arange(b0, b0 + z.size)])
            keep = np.argsort(-pool_z, kind="stable")[:top]
            best_z[a], best_j[a] = pool_z[keep], pool_j[keep]
            # and each row b of the block keeps a when it beats b's worst
            worst = np.argmin(best_z[b0 : b0 + z.size], axis=1)
            better = np.flatnonzero(z > best_z[b0 + np.arange(z.size), worst])
            best_z[b0 + better, worst[better]] = z[better]
            best_j[b0 + better, worst[better]] = a
    return best_j, best_z


def cluster_prefiltered(
    row_at: Callable[[int], np.ndarray],
    owner: Sequence[int],
    n: int,
    d: int,
    *,
    p_fa: float,
    n_variants: int = 1,
    block: int = 256,
    seed: int = 0,
) -> SparseResult:
    """Cluster ``n`` photos from their rows with the digest prefilter (see the module docstring).

    Parameters
    ----------
    row_at : callable
        ``row_at(v)`` the unit float32 row of variant ``v``; variants ``0 .. n - 1`` are the photos' stored rows.
    owner : sequence of int
        The photo of each variant (``owner[v] == v`` for ``v < n``).
    p_fa, n_variants : keyword-only
        As in :func:`~camforensics.core.cluster.cluster_gram` (same thresholds for the same n).

    Returns
    -------
    SparseResult
    """
    owner = np.asarray(owner, np.int64)
    sqrt_d = math.sqrt(d)
    t = threshold_for(p_fa / 2, n, n_variants)

    def rows(idx: Sequence[int]) -> np.ndarray:
        out = np.empty((len(idx), d), np.float32)
        for k, v in enumerate(idx):
            out[k] = row_at(int(v))
        return out

    # 1. digests of every variant row and each photo's z against the panel (one read of every row)
    rng = np.random.default_rng(seed)
    panel = np.sort(rng.choice(n, size=min(PANEL, n), replace=False))
    panel_rows = rows(panel)
    meter = SpreadMeter(n)
    digests = []
    step = max(1, min(block, ROW_BYTES // (4 * d)))
    for v0 in range(0, owner.size, step):
        x = rows(range(v0, min(owner.size, v0 + step)))
        digests.extend(sign_digest(r) for r in x)
        if v0 < n:
            x = x[: max(0, min(step, n - v0))]
            z = sqrt_d * (x @ panel_rows.T)
            z[np.arange(v0, v0 + x.shape[0])[:, None] == panel[None, :]] = 0.0  # a photo against itself
            meter.add(v0, z)
    spreads, overall = meter.finish()
    del panel_rows
    words = np.stack(digests).view(np.uint64)
    partners, _ = digest_candidates(words.view(np.uint8), d, TOP)
    del words, digests
    # exact z of the candidate pairs (the larger over variants), confirmed at the merge threshold
    exact: dict[tuple[int, int], float] = {}
    for v in range(owner.size):
        mates = [int(w) for w in partners[v] if w >= 0 and owner[w] != owner[v]]
        if not mates:
            continue
        z = sqrt_d * (rows(mates) @ np.asarray(row_at(v), np.float32))
        for w, zw in zip(mates, z):
            key = (min(int(owner[v]), int(owner[w])), max(int(owner[v]), int(owner[w])))
            exact[key] = max(exact.get(key, -np.inf), float(zw))
    keys = list(exact)
    confirmed = [(i, j) for i, j in keys if exact[(i, j)] / math.sqrt(spreads[i] * spreads[j]) > t]
    ei = np.array([i for i, _ in confirmed], np.int64)
    ej = np.array([j for _, j in confirmed], np.int64)
    n_candidates = len(keys)

    # 2. components of the candidate graph, each clustered exactly
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(ei.size), (ei, ej)), shape=(n, n))
    n_comp, comp = connected_components(graph, directed=False)
    labels = np.arange(n)
    sizes = np.bincount(comp, minlength=n_comp)
    exact_pairs = 0
    merges: list[tuple[int, int, float]] = []
    moved = 0
    by_photo = [np.flatnonzero(owner == p) for p in range(n)] if owner.size > n else None
    for c in np.flatnonzero(sizes > 1):
        members = np.flatnonzero(comp == c)
        variants = members if by_photo is None else np.concatenate([by_photo[p] for p in members])
        local = {int(p): k for k, p in enumerate(members)}
        g = gram_blocks(lambda a, b, vs=variants: rows(vs[a:b]), variants.size, block=block)
        g = fold_variants(g, [local[int(owner[v])] for v in variants], members.size)
        exact_pairs += members.size * (members.size - 1) // 2
        sub, sub_merges = agglomerate(g, d, t, spreads[members])
        sub, sub_moved = reassign(g, sub, d, t, spreads=spreads[members])
        labels[members] = members[sub]
        merges += [(int(members[a]), int(members[b]), z) for a, b, z in sub_merges]
        moved += sub_moved

    # 3. clusters' fingerprints, merged with each other; 4. singletons attached to them
    n_cross, attached, t_attach = 0, 0, float("nan")
    for _ in range(ATTACH_ROUNDS):  # fragments of one sensor grown by the attached photos may now pass
        labels, crossed, fp, ids = _merge_clusters(labels, rows, spreads, d, t, n)
        labels, more, first, fp, ids = _attach(labels, rows, spreads, d, p_fa / 2, n_variants, fp, ids, n, block)
        n_cross, attached = n_cross + crossed, attached + more
        t_attach = first if math.isnan(t_attach) else t_attach
        if not crossed and not more:
            break
    order = relabel_by_size(labels)
    scores, to_clusters, between, multi = _final_scores(order, labels, rows, spreads, d, fp, ids, n, block)
    result = Clustering(order, t, merges, scores, overall, moved, spreads, t_attach, attached)
    stats = {
        "method": "sign digest",
        "candidates_per_photo": TOP,
        "n_candidate_pairs": n_candidates,
        "n_confirmed_pairs": int(ei.size),
        "n_components": int(np.count_nonzero(sizes > 1)),
        "largest_component": int(sizes.max()) if sizes.size else 0,
        "exact_pairs": int(exact_pairs + n * panel.size + n_candidates),
        "all_pairs": n * (n - 1) // 2,
        "cross_component_merges": n_cross,
    }
    return SparseResult(result, multi, between, to_clusters, stats)


def _fingerprints(labels: np.ndarray, ids: np.ndarray, rows: Callable[[Sequence[int]], np.ndarray], d: int) -> np.ndarray:
    """Sum of the stored rows of each cluster in ``ids`` (k x d, float32)."""
    fp = np.zeros((ids.size, d), np.float32)
    for k, label in enumerate(ids):
        fp[k] = rows(np.flatnonzero(labels == label)).sum(axis=0)
    return fp


def _cluster_spreads(labels: np.ndarray, ids: np.ndarray, spreads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = np.array([np.count_nonzero(labels == k) for k in ids], np.float64)
    total = np.array([spreads[labels == k].sum() for k in ids], np.float64)
    return size, total


def _merge_clusters(labels, rows, spreads, d, t, n):
    ids = multi_photo_clusters(labels)
    fp = _fingerprints(labels, ids, rows, d)
    if ids.size < 2:
        return labels, 0, fp, ids
    size, total = _cluster_spreads(labels, ids, spreads)
    c = (fp @ fp.T).astype(np.float64)
    merged, cross = agglomerate(c, d, t, total / size, size)
    if cross:
        remap = dict(zip(ids.tolist(), ids[merged].tolist()))
        labels = np.array([remap.get(int(x), int(x)) for x in labels])
        ids = multi_photo_clusters(labels)
        fp = _fingerprints(labels, ids, rows, d)
    return labels, len(cross), fp, ids


def _attach(labels, rows, spreads, d, p_fa, n_variants, fp, ids, n, block):
    from scipy.special import ndtri

    attached, first = 0, float("nan")
    for _ in range(ATTACH_ROUNDS):
        single = np.flatnonzero(np.bincount(labels, minlength=n)[labels] == 1)
        if ids.size == 0 or single.size == 0:
            break
        t = float(-ndtri(p_fa / (ATTACH_ROUNDS * single.size * ids.size * max(1, n_variants))))
        first = t if math.isnan(first) else first
        size, total = _cluster_spreads(labels, ids, spreads)
        norm = np.sqrt(np.clip(np.einsum("kd,kd->k", fp, fp, dtype=np.float64), 1e-30, None) * total / size)
        best = np.zeros(single.size, np.int64)
        best_z = np.full(single.size, -np.inf)
        for i0 in range(0, single.size, block):
            part = single[i0 : i0 + block]
            z = math.sqrt(d) * (rows(part) @ fp.T) / norm[None, :] / np.sqrt(spreads[part])[:, None]
            best[i0 : i0 + part.size] = np.argmax(z, axis=1)
            best_z[i0 : i0 + part.size] = z[np.arange(part.size), best[i0 : i0 + part.size]]
        go = best_z > t
        if not go.any():
            break
        labels = labels.copy()
        labels[single[go]] = ids[best[go]]
        attached += int(go.sum())
        for i, k in zip(single[go], best[go]):
            fp[k] += rows([i])[0]
    return labels, attached, first, fp, ids


def _final_scores(order, labels, rows, spreads, d, fp, ids, n, block):
    """Each photo's leave-one-out z to its cluster, every photo's z to the clusters of 2+ photos, and the z
    between those clusters, all in the numbering of ``order`` (cluster 0 the largest)."""
    size, total = _cluster_spreads(labels, ids, spreads)
    fp_norm2 = np.einsum("kd,kd->k", fp, fp, dtype=np.float64)
    col = {int(k): c for c, k in enumerate(ids)}
    to = np.full((n, ids.size), np.nan)
    scores = np.full(n, np.nan)
    for i0 in range(0, n, block):
        idx = np.arange(i0, min(n, i0 + block))
        x = rows(idx)
        dots = (x @ fp.T).astype(np.float64)
        for r, i in enumerate(idx):
            c = col.get(int(labels[i]))
            row = math.sqrt(d) * dots[r] / np.sqrt(np.clip(fp_norm2, 1e-30, None) * spreads[i] * total / size)
            if c is not None:
                rest2 = fp_norm2[c] - 2 * dots[r, c] + float(x[r] @ x[r])
                rest_s = (total[c] - spreads[i]) / (size[c] - 1)
                scores[i] = math.sqrt(d) * (dots[r, c] - float(x[r] @ x[r])) / math.sqrt(max(rest2, 1e-30) * spreads[i] * rest_s)
                row[c] = np.nan
            to[i] = row
    between = math.sqrt(d) * (fp @ fp.T).astype(np.float64)
    mean = total / size
    between /= np.sqrt(np.outer(np.clip(fp_norm2, 1e-30, None) * mean, np.clip(fp_norm2, 1e-30, None) * mean))
    np.fill_diagonal(between, np.nan)
    # renumber the clusters of 2+ photos as relabel_by_size did
    new_ids = np.array([order[np.flatnonzero(labels == k)[0]] for k in ids], np.int64)
    perm = np.argsort(new_ids)
    return scores, to[:, perm], between[np.ix_(perm, perm)], new_ids[perm]

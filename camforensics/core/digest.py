"""Sign digests: 1 bit per pixel of a fingerprint, for a fast first pass over large libraries.

For jointly Gaussian signals with correlation rho, two signs agree with probability 1/2 + arcsin(rho)/pi, so the
agreement count of N sign pairs gives ``z = (N - 2 * hamming) / sqrt(N)``, standard normal for unrelated
fingerprints and about ``(2 / pi) * sqrt(PCE)`` for a match (z ~ 4.9 at PCE 60). 32 times smaller than the
float32 fingerprint, and compared with XOR and population counts.
"""

from __future__ import annotations

import math

import numpy as np


def sign_digest(a: np.ndarray) -> np.ndarray:
    """Packed sign bits (``a > 0``) of a 2-D array, row-major, padded with zero bytes to a multiple of 8 bytes.

    Returns
    -------
    ndarray, uint8, 1-D
    """
    bits = np.packbits(np.asarray(a) > 0, axis=None)
    pad = (-bits.size) % 8
    return np.concatenate([bits, np.zeros(pad, np.uint8)]) if pad else bits


def digest_z_scores(query: np.ndarray, digests: np.ndarray, n_bits: int) -> np.ndarray:
    """z-scores of sign agreement between one query digest and each row of ``digests``.

    Parameters
    ----------
    query : ndarray, uint8, 1-D
        :func:`sign_digest` of the query.
    digests : ndarray, uint8, (n, len(query))
        Digests of n fingerprints of the same shape.
    n_bits : int
        Pixels per digest (the padding bits are zero on both sides and do not count).

    Returns
    -------
    ndarray, float64, (n,)
    """
    q = np.ascontiguousarray(query).view(np.uint64)
    d = np.ascontiguousarray(digests).view(np.uint64).reshape(digests.shape[0], -1)
    hamming = np.empty(d.shape[0], np.int64)
    step = max(1, (1 << 24) // max(q.size, 1))  # rows per block: ~128 MB of temporaries at most
    for i in range(0, d.shape[0], step):
        block = np.bitwise_xor(d[i : i + step], q)
        hamming[i : i + step] = np.bitwise_count(block).sum(axis=1, dtype=np.int64)
    return (n_bits - 2.0 * hamming) / math.sqrt(n_bits)

"""Enrolment from natural photos: content-adaptive pixel weights and each image's agreement with the others.

Both work on the per-image terms of :meth:`camforensics.core.fingerprint.FingerprintAccumulator.terms_of` (per
channel wavelet noise W_c and pixel weight w_c), before they are folded into the sums; neither is a default of
``enroll``: ``bench/bench_natural_enroll.py`` measures them (docs/prnu-accuracy.md).

- :func:`texture_weighted`: the MLE ``K = sum W I / sum I**2`` assumes noise of one variance everywhere. In a
  natural photo the residual's variance follows the scene (edges and texture leak through the denoiser), so each
  pixel's noise and weight are divided by the local standard deviation of its noise (relative to the image's
  median): the weighted estimate ``sum W I / s**2 / sum I**2 / s**2`` of noise whose variance varies over the
  image. Textured regions count less, smooth ones more.
- :func:`leave_one_out_pces`: the PCE of each image's signal (grey residual times weight) against the fingerprint
  of all the other images: an image whose residual does not correlate with the rest (another camera, a resized
  or heavily processed copy) stands out with a PCE near 0 while the others score high.
"""

from __future__ import annotations

import numpy as np

from camforensics.core.fingerprint import FingerprintAccumulator
from camforensics.core.pce import pce_from_spectra, spectrum_of
from camforensics.core.residual import finish_residual, grey_from_channels, local_scale
from camforensics.errors import ParameterError


def texture_weighted(terms: tuple[list, list], *, window: int = 15) -> tuple[list, list]:
    """An image's terms with each channel's noise and weight divided by :func:`local_scale` of its noise (new
    arrays; ``terms`` are not modified).

    Raises
    ------
    ParameterError
        A window that is not an odd size >= 3.
    """
    if window < 3 or window % 2 == 0:
        raise ParameterError(f"window must be an odd size >= 3, not {window}")
    noise, weights = terms
    out_noise, out_weights = [], []
    for n, w in zip(noise, weights):
        s = local_scale(n, window)
        out_noise.append(np.ascontiguousarray(n, dtype=np.float32) / s)
        out_weights.append(np.asarray(w, dtype=np.float32) / s)
    return out_noise, out_weights


def leave_one_out_pces(terms: list[tuple[list, list]], *, acc: FingerprintAccumulator | None = None) -> list[float]:
    """For each image's terms, the PCE (zero shift) of its signal ``W * w`` (grey residual, finished as a query's,
    times its grey weight) against the fingerprint of the other images' terms.

    ``acc``: an accumulator that already holds exactly these terms (saves folding them again).

    Raises
    ------
    ParameterError
        Fewer than two images.
    """
    if len(terms) < 2:
        raise ParameterError(f"leave-one-out needs at least two images, got {len(terms)}")
    if acc is None:
        acc = FingerprintAccumulator()
        for t in terms:
            acc.add_terms(t)
    num, den = acc.sums()
    pces = []
    for noise, weights in terms:
        rest_num = [a - np.asarray(n, np.float32) * w for a, n, w in zip(num, noise, weights)]
        rest_den = [a - np.asarray(w, np.float32) ** 2 for a, w in zip(den, weights)]
        rest = FingerprintAccumulator.from_sums(rest_num, rest_den, acc.n_images - 1, params=acc.params).finish().k
        w_grey = finish_residual(grey_from_channels([np.ascontiguousarray(n, np.float32) for n in noise]), params=acc.params.residual)
        signal = w_grey * grey_from_channels([np.asarray(w, np.float32) for w in weights])
        pces.append(pce_from_spectra(spectrum_of(signal), spectrum_of(rest, conjugate=True)).pce)
    return pces

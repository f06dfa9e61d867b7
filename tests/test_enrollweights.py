"""Content-adaptive enrolment weights and leave-one-out agreement (camforensics.core.enrollweights)."""

from __future__ import annotations

import numpy as np
import pytest
import synth

from camforensics.core.enrollweights import leave_one_out_pces, texture_weighted
from camforensics.core.fingerprint import FingerprintAccumulator
from camforensics.core.residual import local_scale
from camforensics.errors import ParameterError

SHAPE = (256, 256)


def test_texture_weights_fall_where_the_noise_is_strong():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, SHAPE).astype(np.float32)
    noise[:, 128:] *= 4  # a textured half: the residual is mostly scene there
    weights = np.full(SHAPE, 0.5, np.float32)
    (n2,), (w2,) = texture_weighted(([noise], [weights]), window=15)
    assert np.median(w2[:, :100]) > 3 * np.median(w2[:, 160:])
    assert np.allclose(n2 / noise, w2 / weights, rtol=1e-5)  # noise and weight divided by the same scale
    assert np.all(np.isfinite(local_scale(np.zeros(SHAPE, np.float32), 15)))
    assert np.array_equal(weights, np.full(SHAPE, 0.5, np.float32))  # inputs untouched
    with pytest.raises(ParameterError):
        texture_weighted(([noise], [weights]), window=4)


def test_an_image_of_another_camera_stands_out_of_the_leave_one_out_pces():
    k, other = synth.make_prnu(SHAPE, 61), synth.make_prnu(SHAPE, 62)
    acc = FingerprintAccumulator()
    shots = [synth.shoot(k, 6100 + j) for j in range(5)] + [synth.shoot(other, 6200)]
    terms = [acc.terms_of(s) for s in shots]
    pces = leave_one_out_pces(terms)
    own, stranger = pces[:5], pces[5]
    assert min(own) > 60 and abs(stranger) < 30, pces
    for t in terms:
        acc.add_terms(t)
    assert leave_one_out_pces(terms, acc=acc) == pytest.approx(pces, rel=1e-4)
    with pytest.raises(ParameterError):
        leave_one_out_pces(terms[:1])

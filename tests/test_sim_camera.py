"""Simulated camera models and devices: distinct pipelines per model, shared pipeline within a model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from camforensics.errors import ParameterError
from camforensics.sim import make_camera_models, make_devices
from camforensics.sim.camera import CFA_PATTERNS, DEMOSAIC_METHODS, model_name
from camforensics.sim.sensor import sensor_pattern


def test_models_are_deterministic_and_prefix_stable():
    assert make_camera_models(3, 7) == make_camera_models(3, 7)
    assert make_camera_models(5, 7)[:3] == make_camera_models(3, 7)  # more models only append
    assert make_camera_models(3, 7) != make_camera_models(3, 8)


def test_cfa_and_demosaic_differ_across_models():
    models = make_camera_models(12, 0)
    assert len({(m.cfa, m.demosaic) for m in models}) == 12  # all combinations, none repeated
    assert {m.cfa for m in models[:4]} == set(CFA_PATTERNS)
    assert {m.demosaic for m in models[:3]} == set(DEMOSAIC_METHODS)
    a, b = models[:2]
    assert a.cfa != b.cfa and a.demosaic != b.demosaic


def test_model_names_fit_the_device_folder_convention():
    models = make_camera_models(30, 1)
    names = [m.name for m in models]
    assert len(set(names)) == 30
    assert names[0] == "ModelA" and names[25] == "ModelZ" and names[26] == "ModelAA" and model_name(27) == "ModelAB"
    for m in models:
        assert "_" not in m.make and "_" not in m.name


def test_devices_round_robin_share_model_and_differ_in_sensor():
    models = make_camera_models(2, 3)
    devices = make_devices(models, 5, 3)
    assert [d.name for d in devices] == [
        "SimCam_ModelA_0", "SimCam_ModelB_0", "SimCam_ModelA_1", "SimCam_ModelB_1", "SimCam_ModelA_2",
    ]
    a0, a1 = devices[0], devices[2]
    assert a0.model is a1.model  # the whole pipeline is shared...
    assert a0.sensor_seed != a1.sensor_seed  # ...but not the sensor
    pa, pb = sensor_pattern(a0, 64, 64), sensor_pattern(a1, 64, 64)
    assert abs(np.corrcoef(pa.prnu.ravel(), pb.prnu.ravel())[0, 1]) < 0.1
    assert not np.array_equal(pa.dark_e, pb.dark_e)
    assert pa.prnu.std() == pytest.approx(a0.model.sensor.prnu_sigma, rel=0.01)
    np.testing.assert_array_equal(pa.prnu, sensor_pattern(a0, 64, 64).prnu)  # deterministic


def test_model_parameters_are_plain_json():
    import json

    m = make_camera_models(1, 0)[0]
    d = json.loads(json.dumps(m.to_dict()))
    assert d["sensor"]["prnu_sigma"] == m.sensor.prnu_sigma
    assert dataclasses.is_dataclass(m) and m.__dataclass_params__.frozen


@pytest.mark.parametrize("args", [(0, 0), (2, -1)])
def test_bad_model_arguments_are_refused(args):
    with pytest.raises(ParameterError):
        make_camera_models(*args)


def test_fewer_devices_than_models_is_refused():
    with pytest.raises(ParameterError, match="n_devices"):
        make_devices(make_camera_models(3, 0), 2, 0)

"""Open-set decision, aggregation and EXIF consistency of model attribution (no torch: a stub graph)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from camforensics.inference.attribution import AttributionParams, attribute_pixels, exif_consistency
from camforensics.inference.patches import aggregate_log_probs, decision_patches
from camforensics.inference.registry import LoadedModel, ModelEntry

CLASSES = ("Canon Ixus70", "Nikon D70", "Sony DSC-H50")


class StubSession:
    """Returns the same per-patch log-probabilities for every patch."""

    def __init__(self, probs):
        self.lp = np.log(np.asarray(probs, np.float32))

    def get_inputs(self):
        class I:
            name = "input"

        return [I()]

    def run(self, _outputs, feeds):
        n = feeds["input"].shape[0]
        return [np.repeat(self.lp[None], n, axis=0)]


def model(probs, threshold):
    meta = {"decision": {"patches_per_image": 8, "open_set": {"threshold": threshold}}}
    entry = ModelEntry("stub", Path("stub.onnx"), "0" * 64, "camera-model-attribution", CLASSES, "RGB", 64, (0.0, 255.0), meta)
    return LoadedModel(entry, StubSession(probs), ("CPUExecutionProvider",))


def image(seed=0, size=256):
    return np.random.default_rng(seed).integers(40, 200, (size, size, 3), dtype=np.uint8)


def test_confident_patches_are_attributed_and_ranked():
    out = attribute_pixels(image(), model([0.1, 0.8, 0.1], threshold=-1.0), params=AttributionParams(top_k=2))
    assert out["decision"]["model"] == "Nikon D70" and out["decision"]["unknown"] is False
    assert out["decision"]["score"] == pytest.approx(np.log(0.8), rel=1e-5)
    assert [t["model"] for t in out["top_k"]] == ["Nikon D70", "Canon Ixus70"]
    assert out["n_patches"] == 8  # the model's own patch count
    assert sum(t["probability"] for t in out["top_k"]) <= 1.0 + 1e-9


def test_a_score_below_the_calibrated_threshold_is_unknown():
    out = attribute_pixels(image(), model([0.4, 0.35, 0.25], threshold=np.log(0.5)))
    assert out["decision"]["unknown"] is True and out["decision"]["model"] is None
    assert out["top_k"][0]["model"] == "Canon Ixus70"  # the ranking is still reported


def test_exif_consistency_cases():
    assert exif_consistency("Canon", "Canon IXUS70", CLASSES, "Canon Ixus70")["consistent"] is True  # case, make prefix
    assert exif_consistency("Canon", "Ixus70", CLASSES, "Sony DSC-H50")["consistent"] is False
    assert exif_consistency("Canon", "Ixus70", CLASSES, None)["consistent"] is False  # known camera, called unknown
    # An EXIF camera outside the classes: a named class contradicts it, "unknown" agrees with it.
    outside = exif_consistency("Apple", "iPhone 4", CLASSES, "Canon Ixus70")
    assert outside["consistent"] is False and "contradict" in outside["note"] and outside["in_classes"] is False
    assert exif_consistency("Apple", "iPhone 4", CLASSES, None)["consistent"] is True
    assert exif_consistency(None, None, CLASSES, "Canon Ixus70")["consistent"] is None  # EXIF names no camera
    assert exif_consistency("Canon", "", CLASSES, None)["consistent"] is None


def test_aggregation_is_the_mean_log_probability():
    lp = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    mean, prob = aggregate_log_probs(lp)
    np.testing.assert_allclose(mean, lp.mean(axis=0))
    assert prob.sum() == pytest.approx(1.0) and prob.argmax() == mean.argmax()


def test_decision_patches_skip_saturated_and_flat_patches():
    img = image(1)
    img[:64, :64] = 255  # saturated
    img[64:128, :64] = 3  # dark
    batch, pos = decision_patches(img, preprocessor="RGB", n=100)
    assert batch.shape == (14, 3, 64, 64) and batch.dtype == np.float32
    assert not any((p == (0, 0)).all() or (p == (64, 0)).all() for p in pos)
    with pytest.raises(ValueError, match="smaller than one"):
        decision_patches(img[:32], preprocessor="RGB")


def test_grid_scores_equal_the_quality_filter_on_cut_patches():
    from camforensics.inference.patches import grid_scores
    from camforensics.io.patches import QualityFilter, extract_patches, grid_positions

    img = image(3, 300)
    img[:64, 64:128] = 252  # saturated cell
    img[128:192, :64] = 5  # dark cell
    q = QualityFilter()
    expected = q.scores(extract_patches(img, grid_positions(img.shape, size=64), size=64))
    got = grid_scores(img, size=64, quality=q)
    assert ((got < 0) == (expected < 0)).all()  # the same cells rejected
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)  # float32 cell means


def test_manifest_decision_and_metrics_are_typed_with_defaults_for_absent_members():
    from camforensics.inference.manifest import Decision, Metrics

    dec = Decision.from_dict(
        {"patches_per_image": "32", "open_set": {"score": "max_mean_log_prob", "threshold": -1.5}, "aggregation": "mean"}
    )
    assert dec.patches_per_image == 32 and dec.open_set_threshold == -1.5 and dec.positions is None
    assert dec.fusion == {} and dec.siamese_threshold == 0.0 and dec.prnu_parameters == {}
    ver = Decision.from_dict({"positions": 128, "fusion": {"w_prnu": 1.0}, "siamese_threshold": {"threshold": 0.25},
                              "set_sizes_trained": [1, 8], "calibration_area_pixels": [1, 2, 3]})  # fmt: skip
    assert (ver.positions, ver.fusion, ver.siamese_threshold, ver.set_sizes_trained) == (128, {"w_prnu": 1.0}, 0.25, [1, 8])
    assert Decision.from_dict(None) == Decision()
    m = Metrics.from_dict({"judge": "internal", "validation": {"image_accuracy": 0.9, "siamese": {"auc": 0.8}}})
    assert list(m.splits) == ["validation"]  # members that are not per-split figures are left out
    assert m.split("validation").image_accuracy == 0.9 and m.split("validation").auc["siamese"] == 0.8
    assert m.split("test").image_accuracy is None and m.split("test").auc == {}


def test_sessions_sleep_between_operators_and_give_the_outputs_of_spinning_ones():
    import onnxruntime as ort

    from camforensics.inference.session import new_session

    model = Path(__file__).resolve().parents[1] / "models" / "attributor-hp.onnx"
    if not model.is_file():
        pytest.skip("the shipped attributor is not in this tree")
    data = model.read_bytes()
    ours = new_session(data, device="cpu", threads=2)
    assert ours.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    spinning = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    inp = ours.get_inputs()[0]
    shape = [16, 3, 64, 64]  # 16 patches of the manifest's 64 x 64
    batch = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    a = ours.run(None, {inp.name: batch})[0]
    b = spinning.run(None, {inp.name: batch})[0]
    assert a.dtype == b.dtype and np.array_equal(a, b)

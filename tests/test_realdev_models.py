"""Real-data tier: the shipped camera-model attributors and their panel on held-out real photos, through onnxruntime.

Skipped when ../shared/data/real-dev is absent. For each registered attributor trained on the real corpora, the split
is made again from its recorded settings (it must hold, model by model, as many photos in each split as the manifest
records), the held-out photos are attributed exactly as ``identify`` does, and the accuracy must equal the one the
manifest states (measured in torch at training time) up to one image, and be far above chance. The panel's recorded
test figures are reproduced the same way, and a few full frames of real-full must get their crop's answer.
Run with ``-s`` to see the figures.
"""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import REAL_DEV

from camforensics.inference.attribution import attribute_pixels, fuse_decision
from camforensics.inference.panel import default_panel, load_panel, panel_entry
from camforensics.inference.registry import ModelRegistry
from camforensics.io.images import load_image
from camforensics.pipelines.signatures import file_evidence, table_from_records
from camforensics.training.attributor import AttributorConfig, make_split

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not REAL_DEV.is_dir(), reason=f"real-dev corpus not found at {REAL_DEV}"),
]
DATA = REAL_DEV.parent
REAL_FULL = DATA / "real-full"


def shipped_attributors() -> list[str]:
    reg = ModelRegistry()
    return [
        e.name
        for e in reg.entries()
        if e.task == "camera-model-attribution"
        and "real-dev" in e.meta.get("training", {}).get("data", {}).get("dataset", "").split("+")
    ]


def remade_split(meta: dict):
    pytest.importorskip("torch")  # make_split lives in training/ (no torch call, but the module imports it)
    data = meta["training"]["data"]
    roots = [DATA / name for name in data["dataset"].split("+")]
    if not all(r.is_dir() for r in roots):
        pytest.skip(f"the corpora {data['dataset']} are not all in {DATA}")
    test_only = [REAL_FULL] if any("test-only" in w for w in data.get("warnings", [])) else []
    cfg = AttributorConfig.from_dict(meta["training"]["config"])
    split = make_split(roots, "auto", cfg, None, test_only)
    for part in ("train", "validation", "test"):
        counts = dict(sorted(Counter(r.model_id for r in split.records[part]).items()))
        assert counts == data[part]["images_per_model"], f"{part} split differs from the manifest's"
    return split


@pytest.mark.parametrize("name", shipped_attributors() or [pytest.param(None, marks=pytest.mark.skip("no shipped attributor"))])
def test_shipped_attributor_on_held_out_real_images(name):
    reg = ModelRegistry()
    model = reg.load(name, device="cpu")
    split = remade_split(model.entry.meta)
    hits = 0
    for rec in split.test:
        out = attribute_pixels(load_image(rec.path).pixels, model)
        hits += out["top_k"][0]["model"] == rec.model_id
    n = len(split.test)
    recorded = model.entry.meta["metrics"]["test"]
    assert n == recorded["n_images"]
    assert abs(hits - round(recorded["image_accuracy"] * n)) <= 1, (hits, recorded["image_accuracy"])
    assert hits / n > 3.0 / len(model.entry.classes)  # far above chance
    print(f"\n{name}: test {hits / n:.3f} on {n} images (manifest {recorded['image_accuracy']:.3f})")


def test_shipped_panel_reproduces_its_recorded_test_figures():
    reg = ModelRegistry()
    name = default_panel(reg)
    if name is None:
        pytest.skip("no shipped panel")
    entry = panel_entry(reg, name)
    panel = load_panel(reg, name, device="cpu")
    split = remade_split(reg.entry(next(iter(entry.members))).meta)
    outs = [attribute_pixels(load_image(r.path).pixels, panel) for r in split.test]
    preds = [o["top_k"][0]["model"] for o in outs]
    hits = sum(p == r.model_id for p, r in zip(preds, split.test))
    recorded = entry.meta["metrics"]["test"]
    assert len(split.test) == recorded["n_images"]
    assert hits == round(recorded["image_accuracy"] * len(split.test))  # onnxruntime both times: the same figure
    print(f"\n{name}: test {hits / len(preds):.3f} on {len(preds)} images")
    fused_recorded = ((entry.meta["metrics"].get("fusion") or {}).get("fusion") or {}).get("test")
    if fused_recorded is None:
        return
    # The fused decision with a signature table of the TRAINING photos only, as models/measure_attribution.py
    # measured it: the same closed-set figure, and the CNN's own name wherever the tables name no known camera.
    table, _ = table_from_records(split.train)
    fused = [fuse_decision(o, file_evidence(r.path, table), fused_threshold=None) for o, r in zip(outs, split.test)]
    fused_hits = sum(f["top"] == r.model_id for f, r in zip(fused, split.test))
    assert fused_hits == round(fused_recorded["fused"]["image_accuracy"] * len(split.test))
    assert all(f["top"] == p for f, p in zip(fused, preds) if f["coding"]["status"] != "camera")
    print(f"{name} + JPEG signature: test {fused_hits / len(preds):.3f}")


@pytest.mark.skipif(not REAL_FULL.is_dir(), reason=f"real-full not found at {REAL_FULL}")
def test_a_full_frame_gets_its_crops_answer():
    reg = ModelRegistry()
    name = default_panel(reg)
    if name is None:
        pytest.skip("no shipped panel")
    panel = load_panel(reg, name, device="cpu")
    frames = sorted(REAL_FULL.glob("*/nat/*"))[::7]  # 3 of the 20 frames, 12-20 MP
    for frame in frames:
        crop = DATA / "real-models" / frame.relative_to(REAL_FULL)
        a = attribute_pixels(load_image(frame).pixels, panel)
        b = attribute_pixels(load_image(crop).pixels, panel)
        assert a["top_k"][0]["model"] == b["top_k"][0]["model"], frame
        assert a["decision"]["score"] == pytest.approx(b["decision"]["score"], abs=0.05)

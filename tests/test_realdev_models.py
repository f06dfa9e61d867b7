"""Real-data tier: the shipped camera-model attributors on held-out real-dev images, through onnxruntime.

Skipped when ../shared/data/real-dev is absent. For each registered attributor trained on real-dev, the split is
made again from its recorded settings (it must give the same held-out devices as the manifest records), every
held-out image (validation and test splits) is attributed exactly as ``identify`` does, and the accuracy must
equal the one the manifest states (measured in torch at training time) up to one image, and be far above chance.
Run with ``-s`` to see the table.
"""

from __future__ import annotations

import pytest
from conftest import REAL_DEV

from camforensics.inference.attribution import attribute_pixels
from camforensics.inference.registry import ModelRegistry
from camforensics.io.datasets import scan_dataset
from camforensics.io.images import load_image
from camforensics.io.splits import split_by_device

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not REAL_DEV.is_dir(), reason=f"real-dev corpus not found at {REAL_DEV}"),
]


def shipped_attributors() -> list[str]:
    reg = ModelRegistry()
    return [
        e.name
        for e in reg.entries()
        if e.task == "camera-model-attribution" and e.meta.get("training", {}).get("data", {}).get("dataset") == "real-dev"
    ]


@pytest.mark.parametrize("name", shipped_attributors() or [pytest.param(None, marks=pytest.mark.skip("no shipped attributor"))])
def test_shipped_attributor_on_held_out_real_images(name):
    reg = ModelRegistry()
    model = reg.load(name, device="cpu")
    meta = model.entry.meta
    cfg = meta["training"]["config"]
    scan = scan_dataset(REAL_DEV)
    split = split_by_device(
        scan.records,
        fractions=tuple(cfg["split_fractions"]),
        seed=cfg["seed"],
        single_device=cfg["single_device"],
        root=REAL_DEV,
        layout=scan.layout,
    )
    data = meta["training"]["data"]
    for part in ("train", "validation", "test"):
        assert sorted(split.devices(part)) == data[part]["devices"], f"{part} split differs from the manifest's"
    rows = []
    for part in ("validation", "test"):
        hits = 0
        for rec in split.records[part]:
            out = attribute_pixels(load_image(rec.path).pixels, model)
            hits += out["top_k"][0]["model"] == rec.model_id
        n = len(split.records[part])
        recorded = meta["metrics"][part]
        rows.append((part, n, hits / n, recorded["image_accuracy"]))
        assert n == recorded["n_images"]
        assert abs(hits - round(recorded["image_accuracy"] * n)) <= 1, (part, hits, recorded["image_accuracy"])
        assert hits / n > 2.0 / len(model.entry.classes)  # far above chance (1/7)
    print(f"\n{name}: " + "; ".join(f"{p} {acc:.3f} on {n} images (manifest {rec:.3f})" for p, n, acc, rec in rows))

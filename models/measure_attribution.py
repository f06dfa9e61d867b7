"""Measure the shipped attributor panel beyond its split and record the figures in models/manifest.json.

    python models/measure_attribution.py --data ../shared/data [--panel attributor-panel] [--folds runs/fold1 ...]
        [--json runs/attribution-measures.json] [--record]

1. Size independence on real-full/: each full frame against its 1024x1024 crop in real-models/ (the same photo;
   the crops are test-only in the panel's split) and against the four 512x512 quadrants of that crop: agreement of
   the top-1 model and of the decision (a name or "unknown"), accuracy of frames and crops. The same figures with
   the old rule (best patches of the whole frame, window 0) are measured beside them.
2. Open set on leave-3-models-out folds (runs trained by models/openset_folds.sh): unknown-model photos flagged and
   known-model photos rejected, for each cue alone and combined: ``cnn`` (the fold model's threshold, calibrated on
   its validation split), ``sig`` (quantization tables that no training photo of a known model has), ``agree``
   (the CNN's top model never wrote these tables in training) and ``cnn_or_agree`` (either flags).

With --record the figures go into the panel's manifest entry (metrics.real_full, metrics.open_set_folds).
Needs torch for the folds (their checkpoints are read directly).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def size_independence(data: Path, panel_name: str, models_dir: str | None) -> dict:
    from camforensics.inference.attribution import AttributionParams, attribute_pixels
    from camforensics.inference.panel import load_panel
    from camforensics.inference.registry import ModelRegistry
    from camforensics.io.datasets import scan_dataset
    from camforensics.io.images import load_image

    reg = ModelRegistry(models_dir)
    panel = load_panel(reg, panel_name, device="cpu")
    rows = []
    for rec in scan_dataset(data / "real-full").records:
        rel = rec.path.relative_to((data / "real-full").absolute())
        crop_path = data / "real-models" / rel
        frame = load_image(rec.path)
        crop = load_image(crop_path).pixels
        row = {"file": rel.as_posix(), "truth": rec.model_id, "size": list(frame.pixels.shape[:2]),
               "orientation": frame.info.exif_orientation}
        for label, params in (("", AttributionParams()), ("whole_frame_", AttributionParams(window=0))):
            f = attribute_pixels(frame.pixels, panel, params=params)
            row[label + "frame_top"] = f["top_k"][0]["model"]
            row[label + "frame_decision"] = f["decision"]["model"]
        c = attribute_pixels(crop, panel)
        row["crop_top"], row["crop_decision"] = c["top_k"][0]["model"], c["decision"]["model"]
        subs = []
        for y in (0, 512):
            for x in (0, 512):
                s = attribute_pixels(np.ascontiguousarray(crop[y : y + 512, x : x + 512]), panel)
                subs.append((s["top_k"][0]["model"], s["decision"]["model"]))
        row["subcrop_tops"] = [s[0] for s in subs]
        row["subcrop_decisions"] = [s[1] for s in subs]
        rows.append(row)
        print(f"{row['file']}: frame {row['frame_top']}, crop {row['crop_top']}, 512 crops {row['subcrop_tops']}, "
              f"whole-frame rule {row['whole_frame_frame_top']} (truth {row['truth']})", file=sys.stderr)
    n = len(rows)

    def share(pred) -> float:
        return float(np.mean([pred(r) for r in rows])) if rows else float("nan")

    return {
        "n_frames": n,
        "frame_accuracy": share(lambda r: r["frame_top"] == r["truth"]),
        "crop_accuracy": share(lambda r: r["crop_top"] == r["truth"]),
        "subcrop_accuracy": share(lambda r: np.mean([t == r["truth"] for t in r["subcrop_tops"]])),
        "frame_decision_accuracy": share(lambda r: r["frame_decision"] == r["truth"]),
        "crop_decision_accuracy": share(lambda r: r["crop_decision"] == r["truth"]),
        "agreement_frame_crop": share(lambda r: r["frame_top"] == r["crop_top"]),
        "agreement_frame_crop_decision": share(lambda r: r["frame_decision"] == r["crop_decision"]),
        "agreement_frame_subcrops": share(lambda r: np.mean([t == r["frame_top"] for t in r["subcrop_tops"]])),
        "agreement_frame_subcrops_decision": share(
            lambda r: np.mean([d == r["frame_decision"] for d in r["subcrop_decisions"]])
        ),
        "whole_frame_rule": {
            "frame_accuracy": share(lambda r: r["whole_frame_frame_top"] == r["truth"]),
            "agreement_frame_crop": share(lambda r: r["whole_frame_frame_top"] == r["crop_top"]),
        },
        "note": "top-1 model unless '_decision' (a name or unknown); crops are test-only in the panel's split",
        "frames": rows,
    }


def open_set_folds(folds: list[Path]) -> dict:
    import torch

    from camforensics.io.jpeg_signature import read_jpeg_signature
    from camforensics.io.splits import Split
    from camforensics.training.attributor import AttributorConfig, decision_scores, held_out, image_log_probs
    from camforensics.training.checkpoint import load_checkpoint
    from camforensics.training.nets import Attributor

    out = []
    cues = ("cnn", "sig", "agree", "cnn_or_agree")
    totals = {f"{c}_{k}": [0, 0] for c in cues for k in ("u", "k")}
    for run in folds:
        state = load_checkpoint(run / "best.pt")
        cfg = AttributorConfig.from_dict(state["config"])
        classes = tuple(state["classes"])
        model = Attributor(cfg.preprocessor, cfg.architecture, len(classes), width=cfg.width)
        model.load_state_dict(state["model"])
        split = Split.load(run / "split.json")
        test = held_out(split.test, classes, cfg)
        per_image = image_log_probs(model, test, torch.device("cpu"))
        preds, scores = decision_scores(per_image)
        cnn_flag = scores < float(state["open_set"]["threshold"])
        # The signature table as the fold knows it: the training photos of its known models.
        keys_of: dict[str, set[str]] = {}
        for r in split.train:
            keys_of.setdefault(r.model_id, set()).add(read_jpeg_signature(r.path).quant_key())
        known_keys = set().union(*keys_of.values())
        test_keys = [read_jpeg_signature(r.path).quant_key() for r in test.records]
        sig_flag = np.array([k not in known_keys for k in test_keys])
        agree_flag = np.array([k not in keys_of.get(classes[int(p)], set()) for k, p in zip(test_keys, preds)])
        unknown = test.labels < 0
        flags = {"cnn": cnn_flag, "sig": sig_flag, "agree": agree_flag, "cnn_or_agree": cnn_flag | agree_flag}
        fold = {"run": run.name, "left_out": list(cfg.unknown_models), "n_unknown": int(unknown.sum()),
                "n_known": int((~unknown).sum())}
        for cue, f in flags.items():
            fold[f"{cue}_unknown_flagged"] = float(f[unknown].mean())
            fold[f"{cue}_known_rejected"] = float(f[~unknown].mean())
            totals[cue + "_u"][0] += int(f[unknown].sum())
            totals[cue + "_u"][1] += int(unknown.sum())
            totals[cue + "_k"][0] += int(f[~unknown].sum())
            totals[cue + "_k"][1] += int((~unknown).sum())
        fold["unknown_flagged"], fold["known_rejected"] = fold["cnn_unknown_flagged"], fold["cnn_known_rejected"]
        fold["cues"] = "; ".join(
            f"{cue} {fold[cue + '_unknown_flagged']:.2f} / {fold[cue + '_known_rejected']:.2f}" for cue in cues
        ) + " (unknown flagged / known rejected)"
        known_right = preds[~unknown] == test.labels[~unknown]
        fold["known_accuracy"] = float(known_right.mean())
        fold["known_accuracy_accepted"] = float(known_right[~flags["cnn_or_agree"][~unknown]].mean())
        out.append(fold)
        print(json.dumps({k: v for k, v in fold.items() if k != "cues"}), file=sys.stderr)
    overall = {cue: {"unknown_flagged": totals[cue + "_u"][0] / max(totals[cue + "_u"][1], 1),
                     "known_rejected": totals[cue + "_k"][0] / max(totals[cue + "_k"][1], 1)}
               for cue in cues}
    return {"folds": out, "overall": overall}


# Camera models whose photos come from one source of one scene type (MANIFEST.csv 'source'): a model that learned the
# scene instead of the camera would confuse them with each other more than with the rest.
SCENE_GROUPS = {
    "aerial survey (OpenDroneMap data sets)": ["Canon EOS DIGITAL REBEL XSi", "Canon IXUS 125 HS", "Canon PowerShot S100"],
    "flat fields, ernestbies/Camera-Fingerprint-PRNU": ["LG LG-D605", "Samsung GT-I9300", "Samsung SM-J330F"],
    "flat fields, sim-pez/prnu": ["Apple iPhone 4", "Samsung GT-P5210", "Wiko RIDGE 4G"],
}


def scene_confusions(confusion: dict) -> dict:
    """Errors between models of one scene group, against what errors spread evenly over the other models give."""
    classes, mat = confusion["classes"], np.asarray(confusion["matrix"])
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for group, models in SCENE_GROUPS.items():
        rows = [index[m] for m in models if m in index]
        errors = int(sum(mat[i].sum() - mat[i, i] for i in rows))
        within = int(sum(mat[i, j] for i in rows for j in rows if i != j))
        even = (len(rows) - 1) / (len(classes) - 1)
        out[group] = {"models": models, "errors": errors, "errors_within_group": within,
                      "share_within": within / errors if errors else None, "share_if_even": even}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--panel", default="attributor-panel")
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--folds", type=Path, nargs="*", default=[])
    ap.add_argument("--fold-protocol", default="")
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--record", action="store_true", help="write the figures into the panel's manifest entry")
    args = ap.parse_args()
    result: dict = {}
    if not args.skip_full:
        result["real_full"] = size_independence(args.data, args.panel, args.models_dir)
    if args.folds:
        result["open_set_folds"] = {"protocol": args.fold_protocol, **open_set_folds(args.folds)}
    from camforensics.inference.panel import panel_entry
    from camforensics.inference.registry import ModelRegistry

    test = panel_entry(ModelRegistry(args.models_dir), args.panel).meta.get("metrics", {}).get("test", {})
    if test.get("confusion"):
        result["scene_groups"] = scene_confusions(test["confusion"])
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    summary = {k: ({kk: vv for kk, vv in v.items() if kk not in ("frames",)} if isinstance(v, dict) else v)
               for k, v in result.items()}
    print(json.dumps(summary, indent=2))
    if args.record:
        from camforensics.inference.panel import panel_entry, register_panel
        from camforensics.inference.registry import ModelRegistry

        reg = ModelRegistry(args.models_dir)
        entry = json.loads(json.dumps(panel_entry(reg, args.panel).meta))
        if "real_full" in result:
            entry["metrics"]["real_full"] = {k: v for k, v in result["real_full"].items() if k != "frames"}
        if "open_set_folds" in result:
            entry["metrics"]["open_set_folds"] = result["open_set_folds"]
        if "scene_groups" in result:
            entry["metrics"]["test"]["scene_groups"] = result["scene_groups"]
        register_panel(reg, args.panel, entry)
        print(f"recorded in {reg.manifest_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

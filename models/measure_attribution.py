"""Measure the shipped attributor panel beyond its split and record the figures in models/manifest.json.

    python models/measure_attribution.py --data ../shared/data [--panel attributor-panel] [--folds runs/fold1 ...]
        [--json runs/attribution-measures.json] [--record]

1. Size independence on real-full/: each full frame against its 1024x1024 crop in real-models/ (the same photo;
   the crops are test-only in the panel's split) and against the four 512x512 quadrants of that crop: agreement of
   the top-1 model and of the decision (a name or "unknown"), accuracy of frames and crops. The same figures with
   the old rule (best patches of the whole frame, window 0) are measured beside them.
2. The fused decision (CNN panel + JPEG coding signature, camforensics.inference.attribution.fuse_scores) on the
   panel's validation and test photos and on real-full (frames, crops, 512 sub-crops as lossless crops that keep
   the crop's tables and as pixels only), beside the panel alone; with the EXIF directories' structure (identify's
   default) and with the quantization tables alone. The signature table is built from the panel's TRAINING photos
   only; the fused threshold is calibrated on validation (recorded as the panel's decision.fusion).
3. Open set on leave-3-models-out folds (runs trained by models/openset_folds.sh): unknown-model photos flagged and
   known-model photos rejected per cue (see open_set_folds), each fold's signature table from its training photos.

With --record the figures go into the panel's manifest entry (decision.fusion, metrics.fusion, metrics.real_full,
metrics.open_set_folds); the members' entries and files are not touched.
Needs torch for the folds (their checkpoints are read directly).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
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


OLD_ACCEPT = 0.95  # last session's rule, measured beside the new one: 95 % of validation photos accepted


def signature_or_none(path):
    from camforensics.errors import InputError
    from camforensics.io.jpeg_signature import read_jpeg_signature

    try:
        return read_jpeg_signature(path)
    except InputError:
        return None


def nested_threshold(records, means, table, classes, cnn_thr: float, *, exif: bool) -> dict:
    """The fused threshold chosen by nested leave-one-model-out on the validation photos
    (camforensics.pipelines.fusion_calibration)."""
    from camforensics.pipelines.fusion_calibration import CalibrationPhoto, choose_fused_threshold

    photos = [CalibrationPhoto(r.model_id, np.asarray(m), signature_or_none(r.path)) for r, m in zip(records, means)]
    return choose_fused_threshold(photos, table, classes, cnn_threshold=cnn_thr, exif_structure=exif)


def accept_share_threshold(means, evidence, classes, cnn_thr: float, accept: float) -> float:
    """Last session's rule: the threshold accepting ``accept`` of the validation photos whose tables are known."""
    from camforensics.inference.attribution import CODING_CAMERA, fuse_scores
    from camforensics.training.attributor import calibrate_open_set

    scores = [fuse_scores(m, classes, e, cnn_threshold=cnn_thr, fused_threshold=None).score
              for m, e in zip(means, evidence) if e.status == CODING_CAMERA]
    return calibrate_open_set(np.asarray([v for v in scores if np.isfinite(v)]), accept)


def panel_split(data: Path):
    """The panel's split, made again from its recipe (models/build.sh: --split-by image, seed 0, real-full test-only);
    checked against the numbers the panel's manifest entry records."""
    from camforensics.training.attributor import AttributorConfig, make_split

    cfg = AttributorConfig(split_by="image", seed=0)
    return make_split([data / "real-dev", data / "real-models"], "auto", cfg, None, [data / "real-full"])


def fusion_metrics(rows: list[dict], classes: tuple[str, ...], cnn_thr: float, fused_thr: float | None) -> dict:
    """Closed-set accuracy, per-model recall and confusion of the CNN alone and of the fused decision; open-set
    figures (known photos rejected, accuracy of the names given) of both. ``rows``: truth, mean, evidence."""
    from camforensics.inference.attribution import fuse_scores

    index = {c: i for i, c in enumerate(classes)}
    out: dict = {"n_images": len(rows)}
    fused = [fuse_scores(r["mean"], classes, r["evidence"], cnn_threshold=cnn_thr, fused_threshold=fused_thr)
             for r in rows]
    cnn = [fuse_scores(r["mean"], classes, None, cnn_threshold=cnn_thr, fused_threshold=None) for r in rows]
    for label, decs in (("cnn", cnn), ("fused", fused)):
        mat = np.zeros((len(classes), len(classes)), np.int64)
        for r, d in zip(rows, decs):
            mat[index[r["truth"]], index[d.top]] += 1
        named = [d.model for d in decs]
        out[label] = {
            "image_accuracy": float(np.trace(mat) / max(mat.sum(), 1)),
            "per_class_recall": {c: (float(mat[i, i] / mat[i].sum()) if mat[i].sum() else None)
                                 for i, c in enumerate(classes)},
            "confusion": {"classes": list(classes), "matrix": mat.tolist(), "rows": "truth", "cols": "predicted"},
            "known_rejected": float(np.mean([m is None for m in named])),
            "decision_accuracy": float(np.mean([m == r["truth"] for m, r in zip(named, rows)])),
        }
    out["fused"]["by"] = dict(Counter(" + ".join(d.by) for d in fused))
    out["fused"]["known_rejected_by"] = dict(Counter(rejection_cause(d, r["evidence"])
                                                     for d, r in zip(fused, rows) if d.unknown))
    out["coding"] = dict(Counter(r["evidence"].status for r in rows))
    out["exif_structure"] = dict(Counter(str(r["evidence"].structure_match) for r in rows))
    return out


def panel_fusion(
    data: Path, panel_name: str, models_dir: str | None, cache: Path | None, *, exif: bool = True
) -> tuple[dict, dict]:
    """The fused decision (CNN panel + JPEG coding signature) on the panel's validation and test photos and on
    real-full. The signature table is built from the panel's TRAINING photos only (a test photo never matches its
    own tables); the fused open-set threshold is chosen by nested leave-one-model-out over the training models on
    the validation photos (camforensics.pipelines.fusion_calibration). Returns the figures and the calibration (for
    the panel's manifest entry)."""
    from camforensics.inference.attribution import CodingEvidence, attribute_pixels, fuse_scores
    from camforensics.inference.panel import load_panel
    from camforensics.inference.registry import ModelRegistry
    from camforensics.io.datasets import scan_dataset
    from camforensics.io.images import load_image
    from camforensics.pipelines.signatures import file_evidence, table_from_records

    panel = load_panel(ModelRegistry(models_dir), panel_name, device="cpu")
    classes = tuple(panel.entry.classes)
    cnn_thr = float(panel.entry.decision.open_set_threshold)
    split = panel_split(data)
    recorded = panel.entry.meta.get("training", {}).get("data", {})
    for name in ("train", "validation", "test"):
        want = recorded.get(name, {}).get("n_images")
        if want is not None and want != len(split.records[name]):
            raise SystemExit(f"the remade split has {len(split.records[name])} {name} photos, the panel {want}")
    table, skipped = table_from_records(split.train)
    if skipped:
        raise SystemExit(f"training photos without a JPEG signature: {skipped}")
    memo: dict = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    memo = memo if memo.get("panel") == panel.entry.sha256 else {"panel": panel.entry.sha256}

    def mean_of(key: str, pixels_fn) -> np.ndarray:
        if key not in memo:
            a = attribute_pixels(pixels_fn(), panel)
            memo[key] = {"log_probs": a["log_probs"], "n_patches": a["n_patches"]}
        return np.asarray(memo[key]["log_probs"])

    def rows_of(records) -> list[dict]:
        return [{"truth": r.model_id, "file": str(r.path), "evidence": file_evidence(r.path, table, exif_structure=exif),
                 "mean": mean_of(str(r.path), lambda r=r: load_image(r.path).pixels)} for r in records]

    val, test = rows_of(split.validation), rows_of(split.test)
    # The fused threshold: nested leave-one-model-out over the training models, on the validation photos.
    nested = nested_threshold(split.validation, [r["mean"] for r in val], table, classes, cnn_thr, exif=exif)
    fused_thr = nested["threshold"]
    old_thr = accept_share_threshold([r["mean"] for r in val], [r["evidence"] for r in val], classes, cnn_thr,
                                     OLD_ACCEPT)
    uniform = [{**r, "evidence": CodingEvidence(r["evidence"].status, {c: 1.0 for c in r["evidence"].candidates},
                                                 r["evidence"].listed, r["evidence"].reason)} for r in val]
    old_test = fusion_metrics(test, classes, cnn_thr, old_thr)["fused"]
    result = {
        "table": "built from the panel's training photos only",
        "fused_threshold": fused_thr,
        "calibration": nested,
        "accept95_rule": {"threshold": old_thr, "test_known_rejected": old_test["known_rejected"],
                          "test_decision_accuracy": old_test["decision_accuracy"]},
        "validation": fusion_metrics(val, classes, cnn_thr, fused_thr),
        "validation_uniform_prior": {k: v for k, v in fusion_metrics(uniform, classes, cnn_thr, fused_thr)["fused"].items()
                                     if k in ("image_accuracy", "decision_accuracy", "known_rejected")},
        "test": fusion_metrics(test, classes, cnn_thr, fused_thr),
    }
    # real-full: each frame, its 1024 crop (real-models) and the crop's four 512 quadrants (pixels: no coding, and
    # as lossless crops, which keep the crop file's tables).
    frames = []
    for rec in scan_dataset(data / "real-full").records:
        rel = rec.path.relative_to((data / "real-full").absolute())
        crop_path = data / "real-models" / rel
        crop = None

        def crop_pixels() -> np.ndarray:
            nonlocal crop
            crop = load_image(crop_path).pixels if crop is None else crop
            return crop

        f_ev = file_evidence(rec.path, table, exif_structure=exif)
        c_ev = file_evidence(crop_path, table, exif_structure=exif)
        fm = mean_of("frame:" + str(rec.path), lambda: load_image(rec.path).pixels)
        cm = mean_of(str(crop_path), crop_pixels)
        subs, n_sub = [], []
        for y in (0, 512):
            for x in (0, 512):
                key = f"sub:{crop_path}:{y}:{x}"
                subs.append(mean_of(key, lambda y=y, x=x: np.ascontiguousarray(crop_pixels()[y : y + 512, x : x + 512])))
                n_sub.append(memo[key]["n_patches"])

        def dec(mean, ev):
            return fuse_scores(mean, classes, ev, cnn_threshold=cnn_thr, fused_threshold=fused_thr)

        row = {"file": rel.as_posix(), "truth": rec.model_id, "frame_coding": f_ev.status, "crop_coding": c_ev.status,
               "sub_patches": n_sub}
        for label, ev_f, ev_c, ev_s in (("cnn", None, None, None), ("fused", f_ev, c_ev, c_ev),
                                        ("fused_pixel_subcrops", f_ev, c_ev, None)):
            row[label] = {
                "frame": dec(fm, ev_f).top, "crop": dec(cm, ev_c).top, "subcrops": [dec(m, ev_s).top for m in subs],
                "frame_decision": dec(fm, ev_f).model, "crop_decision": dec(cm, ev_c).model,
                "subcrop_decisions": [dec(m, ev_s).model for m in subs],
            }
        frames.append(row)
        print(f"{row['file']}: {row['truth']} cnn {row['cnn']['frame']} / {row['cnn']['subcrops']}; fused "
              f"{row['fused']['frame']} / {row['fused']['subcrops']}", file=sys.stderr)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(memo))

    def share(label: str, pred) -> float:
        return float(np.mean([pred(r[label], r) for r in frames]))

    result["real_full"] = {"n_frames": len(frames)}
    for label in ("cnn", "fused", "fused_pixel_subcrops"):
        result["real_full"][label] = {
            "frame_accuracy": share(label, lambda d, r: d["frame"] == r["truth"]),
            "crop_accuracy": share(label, lambda d, r: d["crop"] == r["truth"]),
            "subcrop_accuracy": share(label, lambda d, r: np.mean([t == r["truth"] for t in d["subcrops"]])),
            "agreement_frame_crop": share(label, lambda d, r: d["frame"] == d["crop"]),
            "agreement_frame_subcrops": share(label, lambda d, r: np.mean([t == d["frame"] for t in d["subcrops"]])),
            "agreement_frame_subcrops_decision": share(
                label, lambda d, r: np.mean([t == d["frame_decision"] for t in d["subcrop_decisions"]])),
            "frame_decision_accuracy": share(label, lambda d, r: d["frame_decision"] == r["truth"]),
        }
    result["real_full"]["note"] = ("top-1 model unless '_decision'; 'fused' sub-crops keep the crop file's JPEG "
                                   "tables (lossless crops), 'fused_pixel_subcrops' are pixels only (CNN alone)")
    result["real_full"]["frames"] = frames
    return result, nested


def open_set_folds(folds: list[Path]) -> dict:
    """Unknown-model photos flagged and known-model photos rejected in each leave-3-out fold, per cue:

    - ``cnn``: the fold model's maximum mean log-probability against its own threshold (validation-calibrated);
    - ``sig``: the quantization tables are those of no training photo of a known model;
    - ``agree``: the CNN's top model never wrote these tables in training (last session's veto);
    - ``fused_tables``: the fused decision (:func:`camforensics.inference.attribution.fuse_scores`) with the tables
      alone: tables of no known camera -> unknown, else the CNN restricted to the cameras that wrote them, unknown
      below the fused threshold, chosen by nested leave-one-model-out over the fold's TRAINING models on its
      VALIDATION photos (camforensics.pipelines.fusion_calibration; never on the fold's test photos);
    - ``fused``: the same with the EXIF directories' structure narrowing the candidates (identify's default);
    - ``fused_accept95``: ``fused`` with last session's threshold (95 % of the validation photos accepted).

    ``known_rejected_by`` says why the fused rule rejected known photos: tables of no known camera, EXIF directories
    of none of the candidates, below the threshold, or the CNN alone (no usable coding).
    Each fold's signature table is built from its TRAINING photos only: without the left-out models and without
    any test photo.
    """
    import torch

    from camforensics.inference.attribution import CODING_CAMERA, fuse_scores
    from camforensics.inference.patches import aggregate_log_probs
    from camforensics.io.splits import Split
    from camforensics.pipelines.signatures import file_evidence, table_from_records
    from camforensics.training.attributor import AttributorConfig, held_out, image_log_probs
    from camforensics.training.checkpoint import load_checkpoint
    from camforensics.training.nets import Attributor

    out = []
    cues = ("cnn", "sig", "agree", "fused_tables", "fused", "fused_accept95")
    totals = {f"{c}_{k}": [0, 0] for c in cues for k in ("u", "k")}
    causes_total: Counter = Counter()
    for run in folds:
        state = load_checkpoint(run / "best.pt")
        cfg = AttributorConfig.from_dict(state["config"])
        classes = tuple(state["classes"])
        model = Attributor(cfg.preprocessor, cfg.architecture, len(classes), width=cfg.width)
        model.load_state_dict(state["model"])
        split = Split.load(run / "split.json")
        table, _ = table_from_records(split.train)
        cnn_thr = float(state["open_set"]["threshold"])

        def means(records):
            data = held_out(records, classes, cfg)
            return data, [aggregate_log_probs(lp)[0] for lp in image_log_probs(model, data, torch.device("cpu"))]

        val, val_means = means(split.validation)
        test, test_means = means(split.test)
        unknown = test.labels < 0
        flags, calib = {}, {}
        for label, exif in (("fused_tables", False), ("fused", True), ("fused_accept95", True)):
            if label == "fused_accept95":
                val_ev = [file_evidence(r.path, table, exif_structure=exif) for r in val.records]
                thr = accept_share_threshold(val_means, val_ev, classes, cnn_thr, OLD_ACCEPT)
            else:
                calib[label] = nested_threshold(val.records, val_means, table, classes, cnn_thr, exif=exif)
                thr = calib[label]["threshold"]
            ev = [file_evidence(r.path, table, exif_structure=exif) for r in test.records]
            decs = [fuse_scores(m, classes, e, cnn_threshold=cnn_thr, fused_threshold=thr)
                    for m, e in zip(test_means, ev)]
            flags[label] = np.array([d.unknown for d in decs])
            if label == "fused":
                fused_decs, fused_ev = decs, ev
            elif label == "fused_tables":
                tables_ev = ev
        preds = np.array([int(np.argmax(m)) for m in test_means])
        cnn_flag = np.array([m.max() < cnn_thr for m in test_means])
        flags["cnn"] = cnn_flag
        flags["sig"] = np.array([e.status != CODING_CAMERA for e in tables_ev])
        flags["agree"] = np.array([not (e.status == CODING_CAMERA and classes[p] in e.candidates)
                                   for e, p in zip(tables_ev, preds)])
        flags = {c: flags[c] for c in cues}
        causes = Counter(rejection_cause(d, e) for d, e, u in zip(fused_decs, fused_ev, unknown) if d.unknown and not u)
        causes_total.update(causes)
        fold = {"run": run.name, "left_out": list(cfg.unknown_models), "n_unknown": int(unknown.sum()),
                "n_known": int((~unknown).sum()), "fused_threshold": calib["fused"]["threshold"],
                "calibration": calib, "known_rejected_by": dict(causes)}
        for cue, f in flags.items():
            fold[f"{cue}_unknown_flagged"] = float(f[unknown].mean())
            fold[f"{cue}_known_rejected"] = float(f[~unknown].mean())
            totals[cue + "_u"][0] += int(f[unknown].sum())
            totals[cue + "_u"][1] += int(unknown.sum())
            totals[cue + "_k"][0] += int(f[~unknown].sum())
            totals[cue + "_k"][1] += int((~unknown).sum())
        fold["unknown_flagged"], fold["known_rejected"] = fold["fused_unknown_flagged"], fold["fused_known_rejected"]
        fold["cues"] = "; ".join(
            f"{cue} {fold[cue + '_unknown_flagged']:.2f} / {fold[cue + '_known_rejected']:.2f}" for cue in cues
        ) + " (unknown flagged / known rejected)"
        truth = test.labels[~unknown]
        fold["known_accuracy_cnn"] = float((preds[~unknown] == truth).mean())
        named = np.array([-1 if d.model is None else classes.index(d.model) for d in fused_decs])[~unknown]
        fold["known_accuracy_fused_accepted"] = float((named[named >= 0] == truth[named >= 0]).mean())
        missed = [r.model_id for r, f, u in zip(test.records, flags["fused"], unknown) if u and not f]
        fold["unknown_missed_by_model"] = dict(Counter(missed))
        out.append(fold)
        print(json.dumps({k: v for k, v in fold.items() if k != "cues"}), file=sys.stderr)
    overall = {cue: {"unknown_flagged": totals[cue + "_u"][0] / max(totals[cue + "_u"][1], 1),
                     "known_rejected": totals[cue + "_k"][0] / max(totals[cue + "_k"][1], 1)}
               for cue in cues}
    return {"folds": out, "overall": overall, "known_rejected_by": dict(causes_total)}


def rejection_cause(decision, evidence) -> str:
    """Why the fused rule said unknown (see open_set_folds)."""
    from camforensics.inference.attribution import CODING_UNKNOWN

    if decision.by == ("cnn",):
        return "cnn alone (no usable coding)"
    if evidence.status == CODING_UNKNOWN:
        return "tables of no known camera"
    if evidence.structure_match is False:
        return "EXIF directories of none of the candidates"
    if not decision.candidates:
        return "tables of cameras the model does not know"
    return "below the fused threshold"


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
    ap.add_argument("--skip-fusion", action="store_true")
    ap.add_argument("--cache", type=Path, default=Path("runs/attribution-cache.json"),
                    help="panel log-probabilities per photo, reused while the panel's members are unchanged")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--record", action="store_true", help="write the figures into the panel's manifest entry")
    args = ap.parse_args()
    result: dict = {}
    if not args.skip_full:
        result["real_full"] = size_independence(args.data, args.panel, args.models_dir)
    if not args.skip_fusion:
        result["fusion"], calibration = panel_fusion(args.data, args.panel, args.models_dir, args.cache)
        result["fusion_tables_only"], _ = panel_fusion(args.data, args.panel, args.models_dir, args.cache, exif=False)
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
    for label in ("fusion", "fusion_tables_only"):
        if label in summary:
            summary[label]["real_full"] = {k: v for k, v in summary[label]["real_full"].items() if k != "frames"}
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
        if "fusion" in result:
            entry["decision"]["fusion"] = {
                "rule": "JPEG coding signature (quantization tables + subsampling, narrowed by the EXIF directories' "
                        "structure) -> candidate cameras; name = argmax over candidates of panel mean log-probability "
                        "+ log prior (share of the camera's reference photos with these tables); tables of no known "
                        "camera -> unknown, unless the EXIF directories, subsampling and Huffman tables are those of a "
                        "known camera that writes new tables for a share of its photos (adaptive quantization: it is "
                        "the candidate, prior = that share); EXIF directories of none of the candidates -> unknown; "
                        "re-saved/edited files, "
                        "generic tables without camera EXIF, non-JPEG -> the panel alone",
                "threshold": calibration["threshold"],
                "score": "the chosen candidate's panel mean log-probability",
                "calibration": calibration["criterion"],
                "inner_unknown_flagged": calibration["inner_unknown_flagged"],
                "inner_known_rejected": calibration["inner_known_rejected"],
                "calibrated_on": "validation photos of the training models, each training model left out in turn "
                                 "(signature table of the training photos without it)",
                "n_calibration_images": calibration["n_photos"],
            }
            brief = ("image_accuracy", "known_rejected", "decision_accuracy")

            def compact(split: dict, *, full: bool) -> dict:
                """The CNN's figures are the panel's own (metrics.test); the fused ones in full on test only."""
                keep = (*brief, "per_class_recall", "confusion") if full else (*brief, "per_class_recall")
                return {"n_images": split["n_images"], "coding": split["coding"],
                        "cnn": {k: split["cnn"][k] for k in brief},
                        "fused": {k: split["fused"][k] for k in keep if k in split["fused"]}}

            entry["metrics"]["fusion"] = {
                label: {
                    "table": result[label]["table"],
                    "fused_threshold": result[label]["fused_threshold"],
                    "validation": compact(result[label]["validation"], full=False),
                    "test": compact(result[label]["test"], full=label == "fusion"),
                    "real_full": {k: v for k, v in result[label]["real_full"].items() if k != "frames"},
                }
                for label in ("fusion", "fusion_tables_only")
            }
        if "scene_groups" in result:
            entry["metrics"]["test"]["scene_groups"] = result["scene_groups"]
        register_panel(reg, args.panel, entry)
        print(f"recorded in {reg.manifest_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

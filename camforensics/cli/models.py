"""camforensics models: the shipped / registered deep models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import cli_errors, out

models_app = typer.Typer(
    help="List, describe and check the registered deep models (models/manifest.json).", no_args_is_help=True
)
ModelsDirOpt = Annotated[
    Path | None,
    typer.Option("--models-dir", help="Registry folder (default: $CAMFORENSICS_MODELS or the shipped models/)."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


def _metric(entry: dict, split: str) -> str:
    m = entry.get("metrics", {}).get(split, {})
    if entry.get("task") == "same-device-verification":  # pairs of sets: the fused score's AUC
        fused = m.get("fused") or {}
        return "-" if fused.get("auc") is None else f"AUC {fused['auc']:.3f} ({fused.get('n_pairs')})"
    if entry.get("task") in ("targeted-anonymization", "trace-erasing"):  # internal evaluator's success, PSNR
        success = m.get("targeted_success", m.get("untargeted_success"))
        return "-" if success is None else f"success {success:.3f}, {m.get('psnr', 0):.1f} dB ({m.get('n_patches')})"
    acc = m.get("image_accuracy")
    return "-" if acc is None else f"{acc:.3f} ({m.get('n_images')})"


@models_app.command("list")
def list_models(
    models_dir: ModelsDirOpt = None, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """List the registered models with task, preprocessor, classes and held-out accuracy."""
    with cli_errors():
        from camforensics.inference.registry import ModelRegistry

        reg = ModelRegistry(models_dir)
        rows = []
        for e in reg.entries():
            default = reg.default(e.task) == e.name
            rows.append(
                {
                    **e.summary(),
                    "default": default,
                    "size_bytes": e.meta.get("size_bytes"),
                    "validation_accuracy": e.metrics.split("validation").image_accuracy,
                    "test_accuracy": e.metrics.split("test").image_accuracy,
                }
            )
        if as_json:
            typer.echo(json.dumps({"models_dir": str(reg.root), "models": rows}, indent=2, ensure_ascii=False))
            return
        from rich.table import Table

        table = Table(title=f"{reg.root}: {len(rows)} models", title_justify="left")
        for col in ("name", "task", "preprocessor", "classes", "val acc (n)", "test acc (n)", "MB", "sha256"):
            table.add_column(col)
        for e, r in zip(reg.entries(), rows):
            table.add_row(
                r["name"] + (" [bold](default)[/]" if r["default"] else ""),
                r["task"],
                r["preprocessor"],
                str(len(r["classes"])),
                _metric(e.meta, "validation"),
                _metric(e.meta, "test"),
                f"{(r['size_bytes'] or 0) / 1e6:.2f}",
                r["sha256"][:16],
            )
        out.print(table)
        _list_panels(reg)


def _list_panels(reg) -> None:  # noqa: ANN001 - a ModelRegistry
    from camforensics.inference.panel import default_panel, panel_entry, panel_names

    for name in panel_names(reg):
        p = panel_entry(reg, name)
        test = p.meta.get("metrics", {}).get("test", {})
        acc = test.get("image_accuracy")
        out.print(
            f"panel {name}{' [bold](default)[/]' if default_panel(reg) == name else ''}: "
            f"{' + '.join(p.members)}, {len(p.classes)} classes, test accuracy "
            f"{'-' if acc is None else f'{acc:.3f}'} ({test.get('n_images')})"
        )


def _show_recall_and_confusion(s: dict) -> None:
    """Per-model recall and the largest off-diagonal confusions of one split's metrics."""
    recall = s.get("per_class_recall") or {}
    if recall:
        out.print(
            "  recall: " + ", ".join(f"{c} {'-' if r is None else f'{r:.2f}'}" for c, r in recall.items())
        )
    conf = s.get("confusion") or {}
    mat, classes = conf.get("matrix"), conf.get("classes")
    if mat and classes:
        pairs = sorted(
            ((mat[i][j], classes[i], classes[j]) for i in range(len(classes)) for j in range(len(classes)) if i != j and mat[i][j]),
            reverse=True,
        )
        out.print(
            "  confusions (truth -> predicted): "
            + ("; ".join(f"{t} -> {p} {n}" for n, t, p in pairs[:8]) if pairs else "none")
        )


def _panel_info(reg, name: str, as_json: bool) -> None:  # noqa: ANN001 - a ModelRegistry
    from camforensics.inference.panel import default_panel, panel_entry

    p = panel_entry(reg, name)
    m = p.meta
    if as_json:
        typer.echo(json.dumps({"name": name, **m}, indent=2, ensure_ascii=False))
        return
    out.print(f"[bold]{name}[/] (panel, {m['task']}{', default' if default_panel(reg) == name else ''})")
    out.print(m.get("description", ""))
    out.print("members: " + ", ".join(f"{k} (sha256 {v[:16]}...)" for k, v in p.members.items()))
    out.print(f"classes ({len(p.classes)}): {', '.join(p.classes)}")
    dec = m.get("decision", {})
    os_ = dec.get("open_set", {})
    out.print(
        f"decision: {dec.get('patches_per_image')} patches of the centred {dec.get('window')}-pixel window, "
        f"{dec.get('aggregation')}; 'unknown' below {os_.get('threshold')} (calibrated on {os_.get('calibrated_on')})"
    )
    fusion = dec.get("fusion")
    if fusion:
        out.print(
            f"fused decision (identify's default with the JPEG signature table): {fusion.get('rule')}; 'unknown' "
            f"below {_threshold_text(fusion.get('threshold'))} ({fusion.get('score')}; calibrated on "
            f"{fusion.get('calibrated_on')})"
        )
        if fusion.get("calibration"):
            out.print(
                f"  fused threshold chosen by {fusion['calibration']}: inner left-out photos flagged "
                f"{fusion.get('inner_unknown_flagged', float('nan')):.2f}, inner known rejected "
                f"{fusion.get('inner_known_rejected', float('nan')):.2f}"
            )
    _data_summary(m.get("training", {}).get("data", {}))
    metrics = m.get("metrics", {})
    for split in ("validation", "test"):
        s = metrics.get(split)
        if s:
            out.print(
                f"{split}: image accuracy {s.get('image_accuracy')} on {s.get('n_images')} images; known rejected "
                f"{s.get('open_set_false_reject_rate')}"
            )
            _show_recall_and_confusion(s)
    if metrics.get("members_test"):
        out.print("members on test: " + ", ".join(f"{k} {v}" for k, v in metrics["members_test"].items()))
    _extra_metrics(metrics)
    out.print(f"command: {m.get('training', {}).get('command')}")


def _data_summary(data: dict) -> None:
    if not data:
        return
    out.print(
        f"trained on: data set {data.get('dataset')!r} ({data.get('layout')}); "
        + "; ".join(
            f"{s} {data[s]['n_images']} images / {data[s]['n_devices']} devices"
            for s in ("train", "validation", "test")
            if s in data
        )
    )
    per = (data.get("train") or {}).get("images_per_model") or {}
    if per:
        out.print("  training images per model: " + ", ".join(f"{k} {v}" for k, v in per.items()))
    for w in data.get("warnings", []):
        out.print(f"  [yellow]note:[/] {w}")


def _threshold_text(threshold: float | None) -> str:
    return "-inf (none)" if threshold is None else f"{threshold:.3f}"


def _extra_metrics(metrics: dict) -> None:
    """Figures recorded by models/build.sh beside the split's: full frames vs crops, open-set folds."""
    rf = metrics.get("real_full")
    if rf:
        out.print(
            f"full frames ({rf.get('n_frames')}): accuracy {rf.get('frame_accuracy')}, their 1024 crops "
            f"{rf.get('crop_accuracy')}, agreement frame/crop {rf.get('agreement_frame_crop')}, frame/512 sub-crops "
            f"{rf.get('agreement_frame_subcrops')}"
        )
    groups = (metrics.get("test") or {}).get("scene_groups")
    if groups:
        out.print(
            "test errors within a scene group (same source and scene type; learning the scene would raise them): "
            + "; ".join(
                f"{g}: {v['errors_within_group']} of {v['errors']} errors (even spread {v['share_if_even']:.2f})"
                for g, v in groups.items()
            )
        )
    for label, title in (("fusion", "tables + EXIF directories"), ("fusion_tables_only", "quantization tables only")):
        fm = (metrics.get("fusion") or {}).get(label)
        if not fm:
            continue
        out.print(f"fused with the JPEG signature ({title}; {fm.get('table')}; relies on the file keeping its "
                  "camera's coding):")
        for split in ("validation", "test"):
            s = fm.get(split) or {}
            if not s:
                continue
            cnn, fused = s["cnn"], s["fused"]
            out.print(
                f" {split} ({s['n_images']}): image accuracy CNN alone {cnn['image_accuracy']:.3f}, fused "
                f"{fused['image_accuracy']:.3f}; known rejected CNN {cnn['known_rejected']:.3f}, fused "
                f"{fused['known_rejected']:.3f}"
            )
            if split == "test":
                _show_recall_and_confusion(fused)
        rf = fm.get("real_full") or {}
        for cue in ("cnn", "fused", "fused_pixel_subcrops"):
            r = rf.get(cue)
            if r:
                out.print(
                    f"  full frames, {cue}: frame accuracy {r['frame_accuracy']:.2f}, crop {r['crop_accuracy']:.2f}, "
                    f"512 sub-crops {r['subcrop_accuracy']:.3f}; agreement frame/crop {r['agreement_frame_crop']:.2f},"
                    f" frame/512 sub-crops {r['agreement_frame_subcrops']:.3f}"
                )
    folds = metrics.get("open_set_folds")
    if folds:
        out.print(f"open set, leave-3-models-out folds ({folds.get('protocol')}):")
        for f in folds.get("folds", []):
            out.print(
                f"  left out {', '.join(f['left_out'])} ({f.get('n_unknown')} / {f.get('n_known')} photos): "
                + (f['cues'] if f.get("cues") else f"unknown flagged {f.get('unknown_flagged')}, known rejected "
                   f"{f.get('known_rejected')}")
            )
        if folds.get("overall"):
            out.print(
                "  pooled (unknown flagged / known rejected): "
                + "; ".join(f"{c} {v['unknown_flagged']:.2f} / {v['known_rejected']:.2f}" for c, v in folds["overall"].items())
            )
        if folds.get("known_rejected_by") is not None:
            causes = folds["known_rejected_by"]
            out.print("  known photos the fused rule rejected, by cause: "
                      + ("; ".join(f"{k}: {v}" for k, v in causes.items()) if causes else "none"))


@models_app.command("info")
def info(
    name: Annotated[str, typer.Argument(help="Model name (see 'camforensics models list').")],
    models_dir: ModelsDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole manifest entry as JSON.")] = False,
) -> None:
    """What a model knows: classes, training data, preprocessing, decision rule, validation metrics, provenance."""
    with cli_errors():
        from camforensics.inference.registry import ModelRegistry

        reg = ModelRegistry(models_dir)
        from camforensics.inference.panel import panel_names

        if name in panel_names(reg):
            _panel_info(reg, name, as_json)
            return
        e = reg.entry(name)
        m = e.meta
        if as_json:
            typer.echo(json.dumps({"name": name, **m}, indent=2, ensure_ascii=False))
            return
        t = m.get("training", {})
        data = t.get("data", {})
        out.print(f"[bold]{name}[/] ({m['task']}{', default' if reg.default(e.task) == name else ''})")
        out.print(m.get("description", ""))
        out.print(f"file {m['file']} ({m.get('size_bytes', 0) / 1e6:.2f} MB), sha256 {m['sha256']}")
        if e.classes:
            out.print(f"classes ({len(e.classes)}): {', '.join(e.classes)}")
        out.print(
            f"input: {m['input']['patch_size']}x{m['input']['patch_size']} patches, {m['input']['layout']}, values {m['input']['value_range']}, preprocessor {m['preprocessor']}, architecture {m.get('architecture')}"
        )
        dec = m.get("decision", {})
        if e.task == "same-device-verification":
            _verifier_info(m)
        elif dec:
            os_ = dec.get("open_set", {})
            out.print(
                f"decision: {dec.get('patches_per_image')} patches per image, {dec.get('aggregation')}; 'unknown' below {os_.get('score')} {os_.get('threshold')} (calibrated on {os_.get('calibrated_on')})"
            )
        _data_summary(data)
        for split in ("validation", "test"):
            s = m.get("metrics", {}).get(split)
            if s and e.task in ("targeted-anonymization", "trace-erasing"):
                out.print(f"{split}: {_metric(m, split)} patches; judge: {m['metrics'].get('judge')}")
            elif s and e.task != "same-device-verification":
                out.print(
                    f"{split}: image accuracy {s.get('image_accuracy')} on {s.get('n_images')} images (devices {', '.join(s.get('devices', []))}); patch accuracy {s.get('patch_accuracy')}"
                )
                if e.task == "camera-model-attribution":
                    _show_recall_and_confusion(s)
        if e.task == "camera-model-attribution":
            _extra_metrics(m.get("metrics", {}))
        out.print(
            f"training command: {t.get('command')}; commit {t.get('commit')}{' (dirty tree)' if t.get('dirty') else ''}; torch {t.get('torch')}"
        )
        ex = m.get("export", {})
        out.print(
            f"export: opset {ex.get('opset')}, onnx checker {ex.get('onnx_checker')}, onnxruntime vs torch max |diff| {ex.get('parity_max_abs_diff')} (tolerance {ex.get('tolerance')})"
        )


def _verifier_info(m: dict) -> None:
    dec = m.get("decision", {})
    f = dec.get("fusion", {})
    sizes = dec.get("set_sizes_trained") or ["?", "?"]
    out.print(
        f"decision: mean logit over {dec.get('positions')} positions of {dec.get('crop')}x{dec.get('crop')} patches "
        f"(trained with {sizes[0]}..{sizes[1]} images per side), Siamese threshold "
        f"{(dec.get('siamese_threshold') or {}).get('threshold')}; fused probability sigmoid({f.get('intercept')} + "
        f"{f.get('w_prnu')} * sign(pce) log1p|pce| + {f.get('w_siamese')} * logit) > {f.get('threshold')} "
        f"({f.get('operating_point')}, calibrated on {dec.get('calibrated_on')})"
    )
    for split in ("validation", "test"):
        s = m.get("metrics", {}).get(split) or {}
        blocks = [(k, s[k]) for k in ("prnu_pce", "siamese", "fused") if isinstance(s.get(k), dict)]
        if blocks:
            out.print(
                f"{split}: {blocks[0][1].get('n_pairs')} pairs; "
                + "; ".join(f"{k} AUC {b.get('auc')}, EER {b.get('eer')}" for k, b in blocks)
            )
        elif s.get("note"):
            out.print(f"{split}: {s['note']}")


@models_app.command("check")
def check(models_dir: ModelsDirOpt = None) -> None:
    """Verify every model file against the sha256 in the manifest (exit 1 if any fails)."""
    with cli_errors():
        from camforensics.errors import ModelError
        from camforensics.inference.registry import ModelRegistry

        reg = ModelRegistry(models_dir)
        bad = 0
        for n in reg.names:
            try:
                reg.verify(n)
                out.print(f"[green]ok[/]       {n}")
            except ModelError as exc:
                bad += 1
                out.print(f"[red]refused[/]  {n}: {exc}")
    raise typer.Exit(1 if bad else 0)


@models_app.command("panel")
def panel(
    name: Annotated[str, typer.Argument(help="Registry name of the panel (e.g. attributor-panel).")],
    member: Annotated[list[str], typer.Option("--member", help="A registered attributor; repeat for each member.")],
    split: Annotated[Path, typer.Option(help="The members' split.json (runs/<member>/split.json).")],
    data_root: Annotated[
        Path | None, typer.Option(help="Where the split's data set root is now, when it moved.")
    ] = None,
    accept: Annotated[
        float, typer.Option(help="Share of known-model validation images the panel's 'unknown' threshold accepts.")
    ] = 0.95,
    default: Annotated[bool, typer.Option("--default", help="Make the panel identify's default decision.")] = False,
    threads: Annotated[int, typer.Option(help="onnxruntime threads (0 = all cores).")] = 0,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Register a panel of attributors (mean of their log-probabilities): its open-set threshold is calibrated on the
    split's validation images, its accuracy, per-model recall and confusion measured on the test images."""
    import shlex
    import sys

    with cli_errors():
        from camforensics.inference.registry import ModelRegistry
        from camforensics.pipelines.attribution_panel import build_panel

        entry = build_panel(
            ModelRegistry(models_dir),
            name,
            member,
            split,
            accept=accept,
            default=default,
            command=shlex.join(["camforensics", *sys.argv[1:]]),
            data_root=data_root,
            threads=threads,
        )
        m = entry["metrics"]
        out.print(
            f"panel {name}: validation {m['validation']['image_accuracy']:.3f} ({m['validation']['n_images']}), test "
            f"{m['test']['image_accuracy']:.3f} ({m['test']['n_images']}); members on test: "
            + ", ".join(f"{k} {v:.3f}" for k, v in m["members_test"].items())
            + f"; 'unknown' below {entry['decision']['open_set']['threshold']:.4f}"
        )

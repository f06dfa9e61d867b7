"""camforensics train: train deep models (needs the ``train`` extra: torch)."""

from __future__ import annotations

import importlib
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from camforensics.cli.common import cli_errors, err, fail, out, progress_bar
from camforensics.cli.options import QuietOpt, options_from

train_app = typer.Typer(
    help="Train deep models on a data set folder (needs torch: pip install 'camforensics[train]').",
    no_args_is_help=True,
)


LayoutOpt = Annotated[str, typer.Option(help="Data set layout: auto, dresden, vision, kaggle, generic.")]
TorchDeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")]
ThreadsOpt = Annotated[int, typer.Option(help="torch CPU threads (0 = all cores).")]
MIX_IMAGES_HELP = "Image draws whose patches are pooled and shuffled into batches (1: draw order)."
ImagesPerEpochOpt = Annotated[int, typer.Option(help="Class-balanced image draws per epoch.")]
PatchesPerImageOpt = Annotated[int, typer.Option(help="Training patches per image draw.")]
BatchSizeOpt = Annotated[int, typer.Option(help="Patches per optimiser step.")]


def _split_opt(default: str) -> Any:
    """The --split option of a trainer whose own split is ``default``."""
    return Annotated[
        Path | None, typer.Option(help=f"Split file from 'camforensics datasets split' (default: {default}).")
    ]


NewSplitOpt = _split_opt("a new device-disjoint split")
AttributorSplitOpt = _split_opt("the attributor's device split")
ResumeTrainingOpt = Annotated[
    bool, typer.Option("--resume", help="Continue the run in --output from its last checkpoint.")
]


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")


# Trainer of each command: its module, configuration class and entry point (camforensics.training).
TRAINERS = {
    "attributor": ("camforensics.training.attributor", "AttributorConfig", "train_attributor"),
    "siamese": ("camforensics.training.siamese", "SiameseConfig", "train_siamese"),
    "anonymizer": ("camforensics.training.anonymizer", "AnonymizerConfig", "train_anonymizer"),
}


def _train(
    kind: str,
    flags: dict[str, Any],
    show: Callable[[dict[str, Any]], None],
    *,
    run_options: dict[str, Any] | None = None,
    **computed: Callable[[], Any],
) -> None:
    """Build the trainer's configuration from the command's flags (by field name; ``computed`` gives the fields
    whose flag needs converting), run the training loop with the command line recorded and the progress bar
    shown (``run_options``: further keywords of the trainer), and show the summary."""
    _need_torch()
    with cli_errors():
        where, config_name, train_name = TRAINERS[kind]
        trainer = importlib.import_module(where)
        config = options_from(getattr(trainer, config_name), flags, **{name: make() for name, make in computed.items()})
        train = getattr(trainer, train_name)
        command = shlex.join(["camforensics", *sys.argv[1:]])
        quiet = flags["quiet"]
        with _TrainProgress(quiet) as hook:
            summary = train(
                flags["data"],
                flags["output"],
                config=config,
                layout=flags["layout"],
                split_file=flags["split"],
                resume=flags["resume"],
                command=command,
                on_progress=hook,
                **(run_options or {}),
            )
        if not quiet:
            show(summary)


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise fail("training needs torch: pip install 'camforensics[train]' (pins torch==2.13.0)") from None


@train_app.command("attributor")
def attributor(
    data: Annotated[
        list[Path],
        typer.Argument(help="Data set folder(s) (Dresden, VISION, Kaggle or generic layout); several train one model."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Run folder: checkpoints, training log, split, summary.")
    ],
    preprocessor: Annotated[
        str,
        typer.Option(
            help="Input preprocessor: RGB, HP (5x5 KV high-pass), FD (3rd-order differences), CC (constrained conv), WW (wavelet Wiener residual)."
        ),
    ] = "HP",
    split_by: Annotated[
        str, typer.Option(help="device (device-disjoint split) or image (each body's images split train/val/test).")
    ] = "device",
    test_only: Annotated[
        list[Path] | None,
        typer.Option(
            "--test-only",
            metavar="DIR",
            help="Photos of DIR (same device and file name, e.g. full frames of crops in DATA) stay out of training; repeatable.",
        ),
    ] = None,
    leave_out: Annotated[
        list[str] | None,
        typer.Option(
            "--leave-out",
            metavar="MODEL",
            help="Camera model ('Make Model') kept out of training, tested as unknown (open-set folds); repeatable.",
        ),
    ] = None,
    eval_window: Annotated[
        int, typer.Option(help="Decisions use patches of the centred window of this side (0: whole image).")
    ] = 1024,
    dih4: Annotated[bool, typer.Option("--dih4/--no-dih4", help="Random flips and quarter turns of training patches.")] = True,
    architecture: Annotated[str, typer.Option(help="Network: bondi (small CNN) or resnet (small ResNet).")] = "bondi",
    width: Annotated[int, typer.Option(help="Channels of the first layer (the others scale with it).")] = 16,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 15,
    images_per_epoch: ImagesPerEpochOpt = 256,
    patches_per_image: PatchesPerImageOpt = 32,
    mix_images: Annotated[int, typer.Option(help=MIX_IMAGES_HELP)] = 8,
    patch_size: Annotated[int, typer.Option(help="Patch side in pixels.")] = 64,
    batch_size: BatchSizeOpt = 64,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate (cosine-annealed).")] = 1e-3,
    eval_patches: Annotated[int, typer.Option(help="Grid patches per image for image-level decisions.")] = 64,
    open_set_accept: Annotated[
        float, typer.Option(help="Share of known-model validation images the 'unknown' threshold accepts.")
    ] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of the split, the patch sampling and torch.")] = 0,
    adversarial_eps: Annotated[
        float,
        typer.Option(
            help="Fast adversarial training: each batch replaced by its random-start FGSM example within this L_inf budget in grey levels of the 0..255 pixels (0: off; the shipped slightly robust HP surrogate used 0.05: 0.25 already cost it most of its accuracy)."
        ),
    ] = 0.0,
    layout: LayoutOpt = "auto",
    split: NewSplitOpt = None,
    single_device: Annotated[
        str,
        typer.Option(
            help="Models with a single device: split_images (hold out some of its images, stated in the split), train, or exclude."
        ),
    ] = "split_images",
    device: TorchDeviceOpt = "auto",
    threads: ThreadsOpt = 0,
    resume: ResumeTrainingOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a camera-model attributor; validation accuracy per epoch, best checkpoint kept, open-set threshold calibrated."""
    flags = dict(locals())
    flags["data"] = data[0] if len(data) == 1 else data  # several folders: one model trained on all of them
    _train(
        "attributor",
        flags,
        _show_summary,
        run_options={"test_only": test_only or ()},
        unknown_models=lambda: tuple(leave_out or ()),
    )


def _fractions(text: str) -> tuple[float, float, float]:
    from camforensics.errors import ParameterError

    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise ParameterError(f"--fractions {text!r}: give three shares of devices, train,validation,test (e.g. 0.6,0.2,0.2)")
    return parts  # type: ignore[return-value]


@train_app.command("siamese")
def siamese(
    data: Annotated[Path, typer.Argument(help="Data set folder (Dresden, VISION, Kaggle or generic layout).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Run folder: checkpoints, training log, split, summary.")
    ],
    extra_train: Annotated[
        list[Path] | None,
        typer.Option(
            "--extra-train",
            metavar="DIR",
            help="Another data set whose devices join training only (e.g. a 'camforensics simulate' corpus); repeatable.",
        ),
    ] = None,
    preprocessor: Annotated[
        str,
        typer.Option(
            help="Input: WW (wavelet Wiener residual, before the graph) or HP, FD, CC (inside the graph, on averaged pixels)."
        ),
    ] = "WW",
    comparison: Annotated[
        str, typer.Option(help="aligned (feature maps compared position by position) or pooled (pooled vectors).")
    ] = "aligned",
    width: Annotated[int, typer.Option(help="Channels of the first layer of the twin feature extractor.")] = 16,
    crop: Annotated[int, typer.Option(help="Patch side in pixels.")] = 64,
    cache_side: Annotated[int, typer.Option(help="Centred square of each image kept in memory (pixels).")] = 512,
    set_size_min: Annotated[int, typer.Option(help="Fewest images per side of a training pair.")] = 1,
    set_size_max: Annotated[int, typer.Option(help="Most images per side of a training pair.")] = 8,
    same_model_fraction: Annotated[
        float, typer.Option(help="Share of different-device pairs taken from two devices of one model (when any).")
    ] = 0.3,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    pairs_per_epoch: Annotated[int, typer.Option(help="Training pairs per epoch.")] = 2048,
    batch_size: Annotated[int, typer.Option(help="Pairs per optimiser step.")] = 32,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate (cosine-annealed).")] = 1e-3,
    val_pairs: Annotated[int, typer.Option(help="Fixed validation pairs of held-out devices.")] = 128,
    val_set_size: Annotated[int, typer.Option(help="Images per side of validation pairs.")] = 4,
    val_positions: Annotated[int, typer.Option(help="Positions per validation pair and epoch.")] = 16,
    positions: Annotated[int, typer.Option(help="Positions of extended inference (calibration and verify).")] = 128,
    calibration_pairs: Annotated[
        int, typer.Option(help="Held-out pairs scored like verify (whole images) to fit the fusion with PRNU.")
    ] = 128,
    operating_point: Annotated[
        str, typer.Option(help="Where thresholds are set on the calibration pairs: eer or fpr:RATE (e.g. fpr:0.01).")
    ] = "eer",
    fractions: Annotated[str, typer.Option(help="Shares of devices for train,validation,test.")] = "0.6,0.2,0.2",
    seed: Annotated[int, typer.Option(help="Seed of the split, the pairs and torch.")] = 0,
    layout: LayoutOpt = "auto",
    split: NewSplitOpt = None,
    device: TorchDeviceOpt = "auto",
    threads: ThreadsOpt = 0,
    resume: ResumeTrainingOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a Siamese same-device verifier on held-out-device validation; calibrate its fusion with PRNU."""
    _train(
        "siamese",
        locals(),
        _show_siamese_summary,
        split_fractions=lambda: _fractions(fractions),
        extra_train=lambda: tuple(str(p) for p in extra_train or ()),
    )


@train_app.command("anonymizer")
def anonymizer(
    data: Annotated[Path, typer.Argument(help="Data set folder (Dresden, VISION, Kaggle or generic layout).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Run folder: checkpoints, training log, split, summary.")
    ],
    kind: Annotated[
        str, typer.Option(help="targeted (Cama: make an image look taken by a chosen model) or erase (SiamTE-style).")
    ] = "targeted",
    width: Annotated[int, typer.Option(help="Channels of the first layer of every network (Cama: 64).")] = 16,
    blocks: Annotated[int, typer.Option(help="Residual blocks of the generator and of E0 (Cama: 2).")] = 2,
    depth: Annotated[int, typer.Option(help="Convolution layers of the eraser.")] = 6,
    global_skip: Annotated[
        bool, typer.Option(help="Generator output = demosaiced input + tanh correction (--no-global-skip: Cama's tanh).")
    ] = True,
    epochs: Annotated[int, typer.Option(help="Training epochs, evaluator phase included.")] = 10,
    evaluator_epochs: Annotated[int, typer.Option(help="First epochs that train only the internal evaluator.")] = 3,
    images_per_epoch: ImagesPerEpochOpt = 64,
    patches_per_image: PatchesPerImageOpt = 16,
    mix_images: Annotated[
        int, typer.Option(help="Image draws whose patches are pooled and shuffled into batches (1: one image's).")
    ] = 8,
    patch_size: Annotated[int, typer.Option(help="Patch side in pixels (a multiple of 4).")] = 64,
    batch_size: BatchSizeOpt = 16,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate of the anonymizer and discriminator.")] = 2e-4,
    evaluator_learning_rate: Annotated[float, typer.Option(help="Adam learning rate of the internal evaluator.")] = 1e-3,
    fidelity_weight: Annotated[float, typer.Option(help="Weight of L1 (targeted) or truncated L1 (erase).")] = 10.0,
    classifier_weight: Annotated[float, typer.Option(help="Weight of Cama's evaluator term L_clf.")] = 0.01,
    erase_threshold: Annotated[float, typer.Option(help="Erase: grey levels of change that cost nothing.")] = 2.0,
    erase_max_change: Annotated[
        float,
        typer.Option(help="Erase: most grey levels any pixel may change (bounds the PSNR on every image; 0: unbounded)."),
    ] = 3.0,
    val_patches: Annotated[int, typer.Option(help="Grid patches per validation image.")] = 8,
    min_psnr: Annotated[float, typer.Option(help="dB the best epoch must reach on validation.")] = 30.0,
    seed: Annotated[int, typer.Option(help="Seed of the split, the patch sampling, the targets and torch.")] = 0,
    layout: LayoutOpt = "auto",
    split: AttributorSplitOpt = None,
    device: TorchDeviceOpt = "auto",
    threads: ThreadsOpt = 0,
    resume: ResumeTrainingOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a learned anonymizer: Cama's targeted generator or a SiamTE-style trace eraser (PSNR and internal
    success per epoch, best checkpoint kept); export it with 'camforensics export RUN/best.pt -o models/NAME.onnx'."""
    _train("anonymizer", locals(), _show_anonymizer_summary)


@train_app.command("lgv")
def lgv(
    start: Annotated[
        Path, typer.Argument(help="Attributor checkpoint to start from: a shipped models/surrogates/NAME.pt or RUN/best.pt.")
    ],
    data: Annotated[list[Path], typer.Argument(help="The data set folder(s) the start net trained on.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder: lgv.pt, training log, split, summary.")],
    split: Annotated[Path, typer.Option(help="The split the start net trained on (its training part trains, its validation part measures each snapshot).")],
    epochs: Annotated[int, typer.Option(help="Epochs of the continued training.")] = 5,
    snapshots_per_epoch: Annotated[int, typer.Option(help="Weight snapshots per epoch, at equal step intervals.")] = 2,
    learning_rate: Annotated[float, typer.Option(help="Constant learning rate (no schedule).")] = 5e-4,
    optimizer: Annotated[str, typer.Option(help="sgd (Gubri et al.: momentum 0.9) or adam.")] = "sgd",
    momentum: Annotated[float, typer.Option(help="SGD momentum.")] = 0.9,
    weight_decay: Annotated[float, typer.Option(help="Weight decay.")] = 1e-4,
    images_per_epoch: ImagesPerEpochOpt = 256,
    seed: Annotated[int, typer.Option(help="Seed of the patch draws and of torch (dropout).")] = 1,
    device: TorchDeviceOpt = "auto",
    threads: ThreadsOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Collect LGV snapshots (Gubri et al. 2022): continue a trained attributor's training at a high constant
    learning rate and keep weight snapshots, a surrogate ensemble for the transfer refinement (ship it with
    camforensics.training.transfer.ship_surrogate RUN/lgv.pt)."""
    _need_torch()
    with cli_errors():
        from camforensics.training.lgv import LGVConfig, train_lgv

        flags = dict(locals())
        config = options_from(LGVConfig, flags)
        with _TrainProgress(quiet) as hook:
            summary = train_lgv(
                start,
                data[0] if len(data) == 1 else data,
                output,
                split_file=split,
                config=config,
                command=shlex.join(["camforensics", *sys.argv[1:]]),
                on_progress=hook,
            )
        if not quiet:
            accs = summary["snapshot_val_image_accuracy"]
            start_acc = summary["start_val_image_accuracy"]
            out.print(
                f"{summary['n_snapshots']} snapshots; validation image accuracy "
                f"{', '.join('-' if a is None else f'{a:.3f}' for a in accs)} (start net "
                f"{'-' if start_acc is None else f'{start_acc:.3f}'})"
            )
            out.print(f"collection {summary['checkpoint']}")


def _show_anonymizer_summary(summary: dict[str, Any]) -> None:
    for name in ("validation", "test"):
        m = summary["metrics"].get(name)
        if m:
            success = m.get("targeted_success", m.get("untargeted_success"))
            out.print(
                f"{name}: PSNR {m['psnr']:.2f} dB, success {success:.3f} (internal evaluator), "
                f"judge accuracy on real patches {m['judge_accuracy_real']:.3f} ({m['n_patches']} patches)"
            )
    out.print(f"checkpoint {summary['checkpoint']}")


class _TrainProgress:
    """Rich progress bar over all optimiser steps, plus one line per epoch (also when stderr is not a terminal)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> _TrainProgress:
        if not self.quiet and sys.stderr.isatty():
            self.bar = progress_bar()
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if self.quiet:
            return
        if event == "setup" and "classes" not in info:
            err.print(
                f"training on {info['device']}: {info['n_train_images']} images of {info['n_train_devices']} devices, "
                f"validation {info['n_val_images']} images of {info['n_val_devices']} held-out devices "
                f"({info['cache_mb']:.0f} MB of cached inputs); epochs {info['start_epoch'] + 1}-{info['epochs']}"
            )
            if self.bar is not None:
                remaining = (info["epochs"] - info["start_epoch"]) * info["steps_per_epoch"]
                self.task = self.bar.add_task("train", total=remaining)
        elif event == "setup":
            err.print(
                f"training on {info['device']}: {info['n_train']} training images, {info['n_val']} validation images, "
                f"{len(info['classes'])} classes; epochs {info['start_epoch'] + 1}-{info['epochs']}"
            )
            if self.bar is not None:
                remaining = (info["epochs"] - info["start_epoch"]) * info["steps_per_epoch"]
                self.task = self.bar.add_task("train", total=remaining)
        elif event == "step" and self.bar is not None:
            self.bar.update(self.task, advance=1, description=f"epoch {info['epoch'] + 1} loss {info['loss']:.3f}")
        elif event == "scoring":
            err.print(f"scoring {info['pairs']} {info['split']} pairs of whole images as verify does (PRNU and Siamese)")
        elif event == "epoch" and "phase" in info:
            success = info.get("val_targeted_success", info.get("val_untargeted_success"))
            psnr = info.get("val_psnr")
            # the anonymizer's loss, or in the first phase the loss of the network that is trained alone
            loss_key = "train_loss" if "train_loss" in info else next((k for k in info if k.startswith("train_")), None)
            loss = "" if loss_key is None else f"{loss_key.removeprefix('train_').replace('_', ' ')} {info[loss_key]:.3f}, "
            err.print(
                f"epoch {info['epoch'] + 1} ({info['phase']}): {loss}"
                f"judge accuracy {info['val_judge_accuracy_real']:.3f}"
                + ("" if psnr is None else f", validation PSNR {psnr:.2f} dB, success {success:.3f}")
                + f" ({info['seconds']:.0f} s)"
            )
        elif event == "epoch" and "val_auc" in info:
            err.print(
                f"epoch {info['epoch'] + 1}: loss {info['train_loss']:.3f}, train accuracy {info['train_accuracy']:.3f}, "
                f"validation AUC {info['val_auc']:.3f}, EER {info['val_eer']:.3f} ({info['seconds']:.0f} s)"
            )
        elif event == "epoch" and "snapshot" in info:
            acc = info["val_image_accuracy"]
            err.print(
                f"epoch {info['epoch'] + 1} snapshot {info['snapshot'] + 1}: loss {info['train_loss']:.3f}, "
                f"validation image acc {acc if acc is None else f'{acc:.3f}'} ({info['seconds']:.0f} s)"
            )
        elif event == "epoch":
            acc = info["val_image_accuracy"]
            err.print(
                f"epoch {info['epoch'] + 1}: loss {info['train_loss']:.3f}, train patch acc {info['train_patch_accuracy']:.3f}, "
                f"validation image acc {acc if acc is None else f'{acc:.3f}'}, patch acc {info['val_patch_accuracy']:.3f} ({info['seconds']:.0f} s)"
            )


def _show_summary(summary: dict[str, Any]) -> None:
    m = summary["metrics"]
    for split in ("validation", "test"):
        if split in m:
            s = m[split]
            acc = s["image_accuracy"]
            out.print(
                f"{split}: image accuracy {acc if acc is None else f'{acc:.3f}'} on {s['n_images']} images; patch accuracy {s['patch_accuracy']:.3f}"
            )
            if s.get("unknown_model_rejection_rate") is not None:
                out.print(
                    f"{split}: left-out models' photos flagged unknown {s['unknown_model_rejection_rate']:.3f}, known "
                    f"models' photos rejected {s.get('open_set_false_reject_rate', 0.0):.3f}"
                )
    out.print(
        f"open-set threshold {summary['open_set']['threshold']:.4f} (mean log-probability); checkpoint {summary['checkpoint']}"
    )


def _show_siamese_summary(summary: dict[str, Any]) -> None:
    for split in ("validation", "test"):
        m = summary["metrics"].get(split, {})
        if "siamese" not in m:
            out.print(f"{split}: {m.get('note', 'no figures')}")
            continue
        figures = ", ".join(
            f"{name} AUC {m[name]['auc']:.3f} EER {m[name]['eer']:.3f}"
            for name in ("prnu_pce", "siamese", "fused")
            if m[name].get("auc") is not None
        )
        out.print(f"{split} ({m['siamese']['n_pairs']} pairs): {figures}")
    f = summary["calibration"]["fusion"]
    out.print(
        f"fusion: sigmoid({f['intercept']:.3f} + {f['w_prnu']:.3f} * prnu + {f['w_siamese']:.3f} * siamese), threshold "
        f"{f['threshold']:.3f} at {f['operating_point']}; checkpoint {summary['checkpoint']}"
    )

"""camforensics anonymize: remove a device's sensor fingerprint, imitate another device or camera model, erase
camera traces, or apply a baseline; judge the result with the registered camera-model attributors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from camforensics.cli.common import check_format, cli_errors, emit_report, execution_of, human_output, out, progress
from camforensics.cli.common import report_target, show_errors
from camforensics.cli.options import FormatOpt, MaxPixelsOpt, ModelsDirOpt, QuietOpt, ReportOpt, WorkersOpt
from camforensics.cli.common import check_outputs, literal
from camforensics.core.params import REFINE_DOMAIN, REFINE_EPSILON, REFINE_ITERATIONS, REFINE_PSNR, REMOVAL_OVERSHOOT

if TYPE_CHECKING:
    from camforensics.reports.report import Report

METHOD_HELP = (
    "transplant (impose the traces of the camera profile --target: CFA and demosaicing, residual spectrum and "
    "pattern, JPEG tables), retable (re-save with the target's JPEG tables only), "
    "remove-fingerprint (subtract the enrolled fingerprint of --remove-fingerprint), spoof (plant the fingerprint "
    "of --spoof-device), targeted (a registered Cama-style model makes the image look taken by --target), erase (a "
    "registered trace eraser), fgsm or pgd (adversarial attacks on the attributor checkpoint --attack-model), or a "
    "baseline: median, gaussian (--kernel), jpeg (--recompress-quality), denoise (wavelet Wiener, --denoise-sigma0). "
    "--target alone implies transplant (targeted with --model)."
)
TARGET_HELP = (
    "The camera model the output should look taken by; case and spaces do not matter. transplant / retable (the "
    "default with --target): a shipped camera profile (models/profiles; a wrong name lists them), one of --profiles "
    "DIR, or a profile file from 'camforensics profile'. targeted (with --model): one of the model's classes; fgsm / "
    "pgd: a class of --attack-model."
)
ATTACK_MODEL_HELP = (
    "fgsm / pgd: the attacked camera-model attributor, a training checkpoint (RUN/best.pt of 'camforensics train "
    "attributor'); needs torch."
)
JUDGES_HELP = (
    "Camera-model attributors whose top-1 verdict is reported before and after: all (every attributor of the "
    "registry), none (no judging), or NAME,NAME."
)


def method_of(method: str | None, target: str | None, model: str | None = None) -> str:
    """The method a command line asks for: ``--target`` alone means ``transplant`` (``targeted`` when a learned
    ``--model`` is named); with ``fgsm`` or ``pgd`` it makes the attack targeted.

    Raises
    ------
    ParameterError
        Neither given, or ``--target`` with another method.
    """
    from camforensics.errors import ParameterError

    if target is not None:
        if method in ("fgsm", "pgd", "targeted", "transplant", "retable"):
            return method
        if method is not None:
            raise ParameterError(
                f"--target needs --method transplant, retable, targeted, fgsm or pgd, not {method}; drop --method or "
                "--target"
            )
        return "targeted" if model is not None else "transplant"
    if method is None:
        raise ParameterError("give --method (see --help) or --target 'MAKE MODEL' (targeted anonymization)")
    return method


NO_FINGERPRINT = (
    "--method {method} uses no fingerprint; drop --remove-fingerprint/--spoof-device "
    "(measure the PCE against enrolled devices with --verify-library LIB)"
)


def _method_options(method: str, flags: dict[str, Any]) -> Any:
    """The options object of ``method``'s family, from the command line's flags (each class checks itself).

    Raises
    ------
    ParameterError
        An unknown method, or a flag of another method family (a model, an attack model, a device).
    """
    from camforensics.core.anonymize import PlantParams, RemovalParams
    from camforensics.core.params import ResidualParams
    from camforensics.errors import ParameterError
    from camforensics.pipelines.anonymize.attacks import ATTACK_METHODS, attack_choice
    from camforensics.pipelines.anonymize.baselines import BaselineOptions
    from camforensics.pipelines.anonymize.batch import METHODS
    from camforensics.pipelines.anonymize.fingerprint import FINGERPRINT_METHODS, DeviceRef, FingerprintOptions
    from camforensics.pipelines.anonymize.learned import LEARNED_METHODS, anonymizer_choice
    from camforensics.pipelines.anonymize.transplant import TRANSPLANT_METHODS, transplant_options

    f = flags
    if method not in METHODS:
        raise ParameterError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if f["model"] is not None and method not in LEARNED_METHODS:
        raise ParameterError(f"--model names a learned anonymizer; --method {method} runs none")
    if f["attack_model"] is not None and method not in ATTACK_METHODS:
        raise ParameterError(f"--attack-model is for --method fgsm or pgd, not {method}")
    remove, spoof = f["remove_fingerprint"], f["spoof_device"]
    if method not in FINGERPRINT_METHODS and (remove is not None or spoof is not None):
        raise ParameterError(NO_FINGERPRINT.format(method=method))
    if f["profiles"] is not None and method not in TRANSPLANT_METHODS:
        raise ParameterError(f"--profiles is for --method transplant or retable, not {method}")
    if method in TRANSPLANT_METHODS:
        refine = None
        if f["refine"]:
            from camforensics.pipelines.anonymize.refine import refine_options

            refine = refine_options(f["refine"], f["models_dir"], epsilon=f["refine_epsilon"],
                                    iterations=f["refine_iterations"], threads=f["model_threads"],
                                    psnr_floor=f["refine_psnr"] or None, domain=f["refine_domain"])  # fmt: skip
        return transplant_options(method, f["target"], profiles=f["profiles"], shape_spectrum=f["shape_spectrum"],
                                  pattern_strength=f["pattern_strength"], exif=f["exif"], refine=refine)  # fmt: skip
    if method in LEARNED_METHODS:
        return anonymizer_choice(method, f["model"], f["models_dir"], target=f["target"], tile=f["tile"],
                                 overlap=f["overlap"], threads=f["model_threads"])  # fmt: skip
    if method in ATTACK_METHODS:
        return attack_choice(method, f["attack_model"], epsilon=f["epsilon"], step=f["pgd_step"],
                             iterations=f["pgd_iterations"], target=f["target"], threads=f["model_threads"])  # fmt: skip
    if method not in FINGERPRINT_METHODS:
        return BaselineOptions(method, f["kernel"], f["recompress_quality"], f["denoise_sigma0"])
    residual = ResidualParams(sigma0=f["sigma0"])
    return FingerprintOptions(
        method,
        remove=DeviceRef.parse(remove) if remove else None,
        spoof=DeviceRef.parse(spoof, option="--spoof-device") if spoof else None,
        removal=RemovalParams(overshoot=f["overshoot"], residual=residual),
        debias=f["debias"],
        plant=PlantParams(target_pce=f["target_pce"], residual=residual),
        strength=f["strength"],
    )


def register(app: typer.Typer) -> None:
    app.command("anonymize")(anonymize)


def anonymize(
    paths: Annotated[list[Path], typer.Argument(help="Images: files and/or folders (walked recursively).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the anonymized images.")],
    method: Annotated[str | None, typer.Option("--method", "-m", help=METHOD_HELP, show_default=False)] = None,
    target: Annotated[str | None, typer.Option("--target", help=TARGET_HELP, show_default=False)] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Learned anonymizer to run (targeted / erase); default: the registry's default of that task.",
            show_default=False,
        ),
    ] = None,
    models_dir: ModelsDirOpt = None,
    model_threads: Annotated[
        int, typer.Option(help="onnxruntime (and fgsm / pgd: torch) threads (0 = all cores; 1 per worker process).")
    ] = 0,
    tile: Annotated[int, typer.Option(help="targeted / erase: tile side in pixels (0: the whole image at once).")] = 512,
    overlap: Annotated[int, typer.Option(help="targeted / erase: overlap and context of the tiles, pixels.")] = 32,
    judges: Annotated[str, typer.Option(help=JUDGES_HELP)] = "all",
    profiles: Annotated[
        str | None,
        typer.Option(help="transplant / retable: folder of camera profiles (default: the shipped models/profiles).",
                     show_default=False),
    ] = None,
    exif: Annotated[str, typer.Option(help="transplant / retable: strip (no metadata) or target (EXIF Make/Model of "
                                           "the target).")] = "strip",
    shape_spectrum: Annotated[
        bool, typer.Option("--shape-spectrum/--no-shape-spectrum", help="transplant: shape the residual spectrum.")
    ] = True,
    pattern_strength: Annotated[
        float, typer.Option(help="transplant: share of the 8x8 mean-pattern difference added (0: none).")
    ] = 1.0,
    refine: Annotated[
        str | None,
        typer.Option(help="transplant: refine against these surrogate attributors (registry names, comma-separated, "
                          "or 'surrogates': every registered surrogate): a transfer attack through the target's JPEG "
                          "save within --refine-epsilon and --refine-psnr (opt-in: tens of seconds per photo).",
                     show_default=False),
    ] = None,
    refine_epsilon: Annotated[
        float, typer.Option(help="--refine: L_inf budget around the transplant, grey levels.")
    ] = REFINE_EPSILON,
    refine_iterations: Annotated[int, typer.Option(help="--refine: attack steps.")] = REFINE_ITERATIONS,
    refine_psnr: Annotated[
        float, typer.Option(help="--refine: PSNR floor (dB) of the saved window against the photo (0: none).")
    ] = REFINE_PSNR,
    refine_domain: Annotated[
        str, typer.Option(help="--refine: steps on the saved file's quantised DCT coefficients (dct) or on the "
                          "pixels (pixels).")
    ] = REFINE_DOMAIN,
    attack_model: Annotated[
        Path | None, typer.Option("--attack-model", help=ATTACK_MODEL_HELP, show_default=False)
    ] = None,
    epsilon: Annotated[
        float, typer.Option(help="fgsm / pgd: L_inf radius of the change, grey levels (0..255 scale).")
    ] = 2.0,
    pgd_step: Annotated[float, typer.Option(help="pgd: step per iteration, grey levels.")] = 0.5,
    pgd_iterations: Annotated[int, typer.Option(help="pgd: number of iterations.")] = 10,
    remove_fingerprint: Annotated[
        str | None,
        typer.Option(
            "--remove-fingerprint",
            help="LIB:DEVICE whose fingerprint is removed (remove-fingerprint; with spoof: removed before planting).",
            show_default=False,
        ),
    ] = None,
    spoof_device: Annotated[
        str | None,
        typer.Option("--spoof-device", help="LIB:DEVICE whose fingerprint is planted (spoof).", show_default=False),
    ] = None,
    strength: Annotated[
        float | None,
        typer.Option(help="Spoof: fixed strength beta of J(1 + beta K); default: fitted to --target-pce.", show_default=False),
    ] = None,
    target_pce: Annotated[float, typer.Option(help="Spoof: PCE against the target that the fitted strength aims at.")] = 120.0,
    overshoot: Annotated[
        float,
        typer.Option(
            help="Removal: multiply the fitted alpha (1 aims at zero correlation with the device; the default "
            "was chosen on simulated devices, see docs/algorithms.md)."
        ),
    ] = REMOVAL_OVERSHOOT,
    debias: Annotated[
        bool,
        typer.Option(
            "--debias/--no-debias",
            help="Removal: divide alpha by the fingerprint's split-half reliability (recorded by enroll), aiming at "
            "the device's pattern rather than at its noisy estimate, so an independent estimate no longer sees it.",
        ),
    ] = True,
    kernel: Annotated[int, typer.Option(help="median / gaussian: window side (odd).")] = 5,
    recompress_quality: Annotated[int, typer.Option(help="jpeg: quality of the re-compression (1-100).")] = 75,
    denoise_sigma0: Annotated[float, typer.Option(help="denoise: noise std of the wavelet Wiener filter (0..255).")] = 3.0,
    library_check: Annotated[
        bool,
        typer.Option(
            "--library-check/--no-library-check",
            help="Measure the PCE of input and output against the removed device and the spoof target.",
        ),
    ] = True,
    verify_library: Annotated[
        Path | None,
        typer.Option(
            "--verify-library",
            help="Also measure input and output against every fitting device of this library.",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[float, typer.Option(help="PCE decision threshold of the checks.")] = 60.0,
    sigma0: Annotated[float, typer.Option(help="Denoiser noise std of the detector residual (0..255).")] = 2.0,
    image_format: Annotated[
        str | None,
        typer.Option("--image-format", help="Output files: png (lossless) or jpeg (default: png; jpeg for transplant "
                     "and retable, which write the target's tables).", show_default=False),
    ] = None,
    quality: Annotated[int, typer.Option(help="JPEG quality of the written images (--image-format jpeg).")] = 95,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
    max_pixels: MaxPixelsOpt = 250_000_000,
    workers: WorkersOpt = None,
) -> None:
    """Write anonymized copies of images: a device's PRNU fingerprint removed, another device's planted
    (fingerprint-copy attack), a learned anonymizer run (targeted at a camera model, or an untargeted trace
    eraser), an attributor attacked (FGSM, PGD), or a classical baseline applied. Each output's PSNR and SSIM against its input, the PCE of input and
    output against the devices involved, and the registered attributors' verdicts before and after are reported.
    Inputs are never written; outputs carry no metadata.
    """
    with cli_errors():
        check_format(fmt)
        from camforensics.core.params import ResidualParams
        from camforensics.pipelines.anonymize.batch import AnonymizeParams, anonymize_images
        from camforensics.pipelines.anonymize.judges import judge_panel

        chosen = method_of(method, target, model)
        options = _method_options(chosen, locals())
        params = AnonymizeParams(
            options=options,
            image_format=image_format or ("jpeg" if chosen in ("transplant", "retable") else "png"),
            quality=quality,
            check=library_check,
            verify_library=str(verify_library) if verify_library is not None else None,
            residual=ResidualParams(sigma0=sigma0),
            threshold=threshold,
            max_pixels=max_pixels,
            judges=judge_panel(judges, models_dir, threads=model_threads),
        )
        destination = report_target(report, "anonymize", fmt)
        check_outputs(paths, report=destination, folder=output)  # before any work
        with progress("anonymize", quiet=quiet) as hooks:
            rep = anonymize_images(
                paths,
                output,
                params=params,
                execution=execution_of(workers, None, "cpu"),
                tick=hooks.tick,
                on_start=hooks.start,
            )
        if human_output(report, quiet):
            _table(rep)
            _judges_lines(rep)
            show_errors(rep)
            from camforensics.cli.render import summary_line

            out.print(f"{summary_line(rep.n_inputs, [(rep.summary['n_ok'], 'anonymized')], rep.n_failed)}; written to {literal(output)}")
        code = emit_report(rep, destination, fmt, quiet=quiet)
    raise typer.Exit(code)


def _pce(check: dict | None) -> str:
    if not check:
        return ""
    return f"{check['pce_before']:.0f} -> {check['pce_after']:.0f}"


def _verdicts(judged: list[dict] | None) -> str:
    """How many judges changed their top-1 camera model (and, targeted, how many now name the target)."""
    ok = [j for j in judged or [] if "error" not in j]
    if not ok:
        return "-"
    text = f"{sum(not j['before_class_kept'] for j in ok)}/{len(ok)} changed"
    if any("after_is_target" in j for j in ok):
        text += f", {sum(j['after_is_target'] for j in ok)} on target"
    return text


def _judges_lines(rep: Report) -> None:
    """Per judge: the share of outputs whose top-1 camera model changed (and reached the target); fgsm / pgd: the
    attacked surrogate's own success."""
    s = rep.summary.get("surrogate")
    if s:
        out.print(f"attack model: decision changed on {s['n_decision_changed']}/{s['n_attacked']} images, "
                  f"success rate {s['success_rate']:.2f} (white-box: the attacked model itself)")  # fmt: skip
    for name, s in (rep.summary.get("judges") or {}).items():
        line = f"{name}: top-1 changed on {s['n_judged'] - s['n_before_class_kept']}/{s['n_judged']} images"
        if "n_after_is_target" in s:
            line += f", names the target on {s['n_after_is_target']}/{s['n_judged']}"
        if s["n_failed"]:
            line += f" ({s['n_failed']} could not be judged)"
        out.print(line)


def _table(rep: Report) -> None:
    """Per anonymized photo: input and output names (wrapped, never cut), picture quality, PCE before -> after and
    the judges' verdicts; tab-separated text when stdout is not a terminal (as identify's table)."""
    from camforensics.cli.render import Column, show_table

    judged = bool((rep.parameters.get("judges") or {}).get("models"))

    def psnr(r: dict) -> str:
        value = r["quality"]["psnr"]
        return value if isinstance(value, str) else f"{value:.1f}"

    cols = [
        Column("input", lambda r: Path(r["input"]["path"]).name, wraps=True),
        Column("output", lambda r: Path(r["output"]["path"]).name, wraps=True),
        Column("PSNR dB", psnr, numeric=True),
        Column("SSIM", lambda r: f"{r['quality']['ssim']:.4f}", numeric=True),
        Column("PCE removed", lambda r: _pce(r.get("removed_device")), numeric=True),
        Column("PCE target", lambda r: _pce(r.get("target_device")), numeric=True),
    ] + ([Column("judges", lambda r: _verdicts(r.get("judges")), wraps=True)] if judged else [])
    show_table(f"anonymize ({rep.parameters['method']})", cols, [r for r in rep.iter_results() if r["status"] == "ok"])

"""camforensics evaluate anonymization: every anonymization method against the panel of camera-model attributors,
with picture quality and the PRNU view (registered into the ``evaluate`` group by :mod:`camforensics.cli.evaluate`)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from camforensics.cli.common import check_format, cli_errors, finish_evaluation, out, output_dir_of, progress_bar
from camforensics.cli.options import FormatOpt, ModelsDirOpt, QuietOpt, ReportOpt
from camforensics.core.params import (
    REFINE_COVER,
    REFINE_DOMAIN,
    REFINE_EPSILON,
    REFINE_ITERATIONS,
    REFINE_MOMENTUM,
    REFINE_PSNR,
    REFINE_STEP,
)

JUDGES_HELP = "Judges (camera-model attributors): all (every one registered), or NAME,NAME."


def evaluate_anonymization(
    data: Annotated[Path, typer.Argument(help="Labelled data set folder (Dresden, VISION, Kaggle or generic layout).")],
    methods: Annotated[
        str | None,
        typer.Option(
            "--methods",
            help="Comma-separated methods: median, gaussian, jpeg, denoise, remove-fingerprint, targeted, erase, "
            "retable, transplant, transplant-refine, fgsm, pgd (the last five toward a seeded target with a camera "
            "profile; fgsm / pgd / transplant-refine attack the shipped surrogates, never the judges). "
            "Default: the first five, plus targeted / erase when a model of that task is registered or named.",
            show_default=False,
        ),
    ] = None,
    images: Annotated[int, typer.Option("--images", min=0, help="Images per device, a seeded draw (0 = all).")] = 0,
    content: Annotated[str, typer.Option("--content", help="Images evaluated: nat, flat or all.")] = "nat",
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the image draw, the flat-field halves, the targets.")
    ] = 0,
    targets_per_image: Annotated[
        int, typer.Option("--targets-per-image", min=1, help="Targets drawn per image (targeted success).")
    ] = 1,
    library: Annotated[
        Path | None,
        typer.Option(
            "--library",
            help="Fingerprints for the PCE check (default: the data set's flat-field halves).",
            show_default=False,
        ),
    ] = None,
    attack_library: Annotated[
        Path | None,
        typer.Option(
            "--attack-library",
            help="With --library: independently enrolled fingerprints that "
            "remove-fingerprint removes (without it, remove-fingerprint is skipped).",
            show_default=False,
        ),
    ] = None,
    device_map: Annotated[
        Path | None,
        typer.Option(
            "--device-map", help="CSV of 'library_name,device' rows (default: the same names).", show_default=False
        ),
    ] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="PCE threshold of the PRNU view.")] = 60.0,
    judges: Annotated[str, typer.Option("--judges", help=JUDGES_HELP)] = "all",
    targeted_model: Annotated[
        str | None,
        typer.Option(
            "--targeted-model", help="Targeted anonymizer (default: the registry's default).", show_default=False
        ),
    ] = None,
    erase_model: Annotated[
        str | None,
        typer.Option("--erase-model", help="Trace eraser (default: the registry's default).", show_default=False),
    ] = None,
    models_dir: ModelsDirOpt = None,
    model_threads: Annotated[int, typer.Option("--model-threads", help="onnxruntime threads (0 = all cores).")] = 0,
    tile: Annotated[int, typer.Option("--tile", help="targeted / erase: tile side in pixels (0: whole image).")] = 512,
    overlap: Annotated[int, typer.Option("--overlap", help="targeted / erase: tile overlap, pixels.")] = 32,
    profiles: Annotated[
        str | None,
        typer.Option("--profiles", help="Camera profiles of the transplant methods (default: models/profiles).",
                     show_default=False),
    ] = None,
    epsilon: Annotated[
        float, typer.Option("--epsilon", help="L_inf budget of fgsm and pgd (grey levels).")
    ] = 4.0,
    refine_epsilon: Annotated[
        float, typer.Option("--refine-epsilon", help="L_inf budget of transplant-refine around the transplant (grey "
                            "levels; --refine-psnr bounds it too).")
    ] = REFINE_EPSILON,
    iterations: Annotated[int, typer.Option("--iterations", help="Steps of pgd.")] = 10,
    refine_iterations: Annotated[
        int, typer.Option("--refine-iterations", help="Steps of transplant-refine.")
    ] = REFINE_ITERATIONS,
    refine_step: Annotated[
        float, typer.Option("--refine-step", help="transplant-refine: sign step (grey levels).")
    ] = REFINE_STEP,
    refine_momentum: Annotated[
        float, typer.Option("--refine-momentum", help="transplant-refine: MI-FGSM momentum (0: plain sign steps).")
    ] = REFINE_MOMENTUM,
    refine_cover: Annotated[
        int, typer.Option("--refine-cover", help="transplant-refine: best-scored grid patches of the window changed "
                          "(0: all).")
    ] = REFINE_COVER,
    refine_domain: Annotated[
        str, typer.Option("--refine-domain", help="transplant-refine: steps on the saved file's quantised DCT "
                          "coefficients (dct) or on the pixels (pixels).")
    ] = REFINE_DOMAIN,
    refine_window: Annotated[
        int, typer.Option("--refine-window", help="transplant-refine: centred window attacked (0: whole image).")
    ] = 1024,
    refine_psnr: Annotated[
        float, typer.Option("--refine-psnr", help="transplant-refine: PSNR floor (dB) of the saved window against the "
                            "photo (0: none).")
    ] = REFINE_PSNR,
    keep_images: Annotated[
        bool, typer.Option("--keep-images", help="Keep the outputs under OUT/images (else a temporary folder).")
    ] = False,
    layout: Annotated[
        str, typer.Option("--layout", help="Data set layout: auto, dresden, vision, kaggle, generic.")
    ] = "auto",
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            "-o",
            help="Folder for metrics.json, table.md and the report. Default: camforensics_evaluate_<UTC time>.",
            show_default=False,
        ),
    ] = None,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
) -> None:
    """Table of anonymization methods x judges: targeted (untargeted) success, PSNR / SSIM, PCE below threshold.

    Every selected image is altered by every method as 'camforensics anonymize' alters it, judged before and
    after by each camera-model attributor, and checked against its own device's fingerprint. remove-fingerprint
    removes a fingerprint independent of the one the PCE is checked against (two disjoint seeded halves of each
    device's flat-field images, or --attack-library beside --library). Writes OUT/metrics.json, OUT/table.md and
    the report (default OUT/report.json, one result per image, method and target).
    """
    with cli_errors():
        check_format(fmt)
        from camforensics.io.truth import read_device_map
        from camforensics.pipelines.anonymize.judges import judge_panel
        from camforensics.pipelines.anonymize.evaluate import (
            EvalAnonParams,
            LearnedOptions,
        )
        from camforensics.pipelines.anonymize.evaluate import (
            evaluate_anonymization as run,
        )

        params = EvalAnonParams(
            methods=tuple(m.strip() for m in methods.split(",") if m.strip()) if methods else None,
            images_per_device=images,
            content=content,
            seed=seed,
            targets_per_image=targets_per_image,
            threshold=threshold,
            keep_images=keep_images,
        )
        if judges.strip().lower() == "none":
            raise typer.BadParameter("--judges none leaves no column to the table; give all or NAME,NAME")
        learned = LearnedOptions(str(models_dir) if models_dir else None, targeted_model, erase_model, tile, overlap,
                                 model_threads, profiles, epsilon, iterations, refine_window,
                                 refine_psnr or None, refine_iterations, refine_epsilon, refine_step, refine_momentum,
                                 refine_cover, refine_domain)  # fmt: skip
        output_dir = output_dir_of(output_dir, [data], report)
        with _bars(quiet) as (on_flat, on_item):
            rep = run(
                data,
                params=params,
                judges=judge_panel(judges, models_dir, threads=model_threads),
                learned=learned,
                layout=layout,
                library=library,
                attack_library=attack_library,
                device_map=read_device_map(device_map) if device_map is not None else None,
                output_dir=output_dir,
                on_item=on_item,
                on_flat=on_flat,
            )
        code = finish_evaluation(
            rep, report=report, fmt=fmt, quiet=quiet, output_dir=output_dir, render=lambda: _table(rep.summary)
        )
    raise typer.Exit(code)


@contextlib.contextmanager
def _bars(quiet: bool) -> Iterator[tuple[Callable[[int, int], None], Callable[[int, int], None]]]:
    """Two progress callbacks on one bar display (stderr, a terminal, not quiet): fingerprint halves, then items."""
    if quiet or not sys.stderr.isatty():
        yield (lambda done, total: None), (lambda done, total: None)
        return
    with progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def hook(description: str) -> Callable[[int, int], None]:
            def advance(done: int, total: int) -> None:
                if description not in tasks:
                    tasks[description] = bar.add_task(description, total=total)
                bar.update(tasks[description], completed=done)

            return advance

        yield hook("estimating flat-field fingerprint halves"), hook("anonymizing and judging")


def _table(summary: dict[str, Any]) -> None:
    from rich.table import Table

    from camforensics.pipelines.anonymize.table import table_cells

    header, rows = table_cells(summary["methods"], [j["name"] for j in summary["judges"]], summary.get("inputs"))
    t = Table(title="judges: targeted success (untargeted); PCE < threshold after (before)", title_justify="left")
    for i, col in enumerate(header):
        # every cell and header wraps onto more lines when the terminal is narrow (a method or judge name is never cut)
        t.add_column(col, justify="left" if i == 0 or i == len(header) - 1 else "right", overflow="fold")
    for r in rows:
        t.add_row(*r)
    out.print(t)

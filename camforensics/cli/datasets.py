"""``camforensics datasets``: what a data set folder holds, and device-disjoint splits of it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import check_format, cli_errors, emit_report, out
from camforensics.cli.options import FormatOpt, QuietOpt, ReportOpt

LayoutOpt = Annotated[
    str, typer.Option("--layout", "-l", help="Data set layout: auto, dresden, vision, kaggle or generic.")
]


def _parse_fractions(text: str) -> tuple[float, ...]:
    from camforensics.errors import ParameterError

    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ParameterError(f"--fractions must be three numbers like 0.7,0.15,0.15, not {text!r}") from None


def inspect(
    folder: Annotated[Path, typer.Argument(help="Data set folder.", show_default=False)],
    layout: LayoutOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    show_skipped: Annotated[bool, typer.Option("--skipped", help="List every skipped file with its reason.")] = False,
    hashes: Annotated[bool, typer.Option("--hashes", help="Put every image's sha256 in the report.")] = False,
    report: ReportOpt = None,
    fmt: FormatOpt = "json",
    quiet: QuietOpt = False,
) -> None:
    """Show the models, devices and image counts (per content kind) a data set folder holds.

    A report (one result per image, the counts as its summary) is written only when --report is given.
    """
    with cli_errors():
        check_format(fmt)
        from camforensics.pipelines.datasets import inspect_report

        rep, summary = inspect_report(folder, layout=layout, with_hashes=hashes)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    elif not quiet and not (report is not None and str(report) == "-"):
        _print_summary(summary, show_skipped=show_skipped)
    if report is not None:
        raise typer.Exit(emit_report(rep, report, fmt, quiet=quiet or as_json))


def _print_summary(summary: dict, *, show_skipped: bool) -> None:
    from rich.table import Table

    kinds = summary["content_kinds"]
    table = Table(title=f"{summary['root']}  (layout: {summary['layout']})")
    for col in ("model", "device"):
        table.add_column(col, overflow="fold")
    for k in [*kinds, "images"]:
        table.add_column(k, justify="right")
    for model in summary["models"]:
        for i, device in enumerate(d for d in summary["devices"] if d["model"] == model["model"]):
            counts = [str(device["by_content"][k]) for k in kinds]
            table.add_row(model["model"] if i == 0 else "", device["device"], *counts, str(device["images"]))
    table.add_section()
    table.add_row(
        f"{summary['n_models']} models",
        f"{summary['n_devices']} devices",
        *[str(summary["by_content"][k]) for k in kinds],
        str(summary["n_images"]),
    )
    out.print(table)
    out.print(f"skipped files: {summary['n_skipped']}")
    for reason, n in summary["skipped_by_reason"].items():
        out.print(f"  {n:>6}  {reason}")
    if show_skipped:
        for s in summary["skipped"]:
            out.print(f"  {s['path']}: {s['reason']}")


def split(
    folder: Annotated[Path, typer.Argument(help="Data set folder.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Split file to write (JSON).", show_default=False)],
    layout: LayoutOpt = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the device shuffles.")] = 0,
    fractions: Annotated[
        str, typer.Option("--fractions", help="Train, validation, test shares of each model's devices.")
    ] = "0.7,0.15,0.15",
    single_device: Annotated[
        str,
        typer.Option(
            "--single-device",
            help="Models with one device: train (all in train), exclude, or split_images (NOT device-disjoint).",
        ),
    ] = "train",
    stratify: Annotated[
        bool, typer.Option("--stratify/--no-stratify", help="Split each model's devices separately.")
    ] = True,
    hashes: Annotated[bool, typer.Option("--hashes", help="Store the sha256 of every image in the split.")] = False,
    validation_devices: Annotated[
        str,
        typer.Option(
            "--validation-devices", help="Comma-separated devices for validation (hand-made split: the rest train)."
        ),
    ] = "",
    test_devices: Annotated[
        str, typer.Option("--test-devices", help="Comma-separated devices for test (hand-made split: the rest train).")
    ] = "",
) -> None:
    """Split a data set into train / validation / test by device (no device in two splits) and save it.

    With --validation-devices / --test-devices the named devices go there and every other one to train (the
    fractions, seed and stratification are then not used).
    """
    with cli_errors():
        from camforensics.pipelines.datasets import make_split, split_summary

        result = make_split(
            folder,
            output,
            layout=layout,
            fractions=_parse_fractions(fractions),
            seed=seed,
            single_device=single_device,
            stratify=stratify,
            with_hashes=hashes,
            validation_devices=[d.strip() for d in validation_devices.split(",") if d.strip()],
            test_devices=[d.strip() for d in test_devices.split(",") if d.strip()],
        )
    from rich.table import Table

    console = out
    table = Table(title=f"split of {result.root} (seed {seed})")
    for col in ("split", "devices", "models", "images"):
        table.add_column(col, justify="right" if col != "split" else "left")
    for row in split_summary(result):
        table.add_row(row["split"], str(len(row["devices"])), str(len(row["models"])), str(row["images"]))
    console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"split written to {output}")


def register(app: typer.Typer) -> None:
    """Add the ``datasets`` command group to the ``camforensics`` app."""
    group = typer.Typer(
        name="datasets",
        help="Read data set folders (Dresden, VISION, Kaggle, generic) and split them by device.",
        no_args_is_help=True,
    )
    group.command("inspect")(inspect)
    group.command("split")(split)
    app.add_typer(group, name="datasets")

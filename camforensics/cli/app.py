"""The ``camforensics`` command: a typer app that each command module registers itself into.

Each module in :mod:`camforensics.cli` exposes ``register(app)``. Keep this module light: ``--help`` and
``--version`` must answer without importing numpy-heavy or model code.
"""

from __future__ import annotations

import typer

from camforensics import __version__

app = typer.Typer(
    name="camforensics",
    help="Source-camera forensics: sensor fingerprints (PRNU), identification, verification, residuals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"camforensics {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """camforensics: source-camera forensics for labs. Every command writes a JSON report."""


def _register_commands() -> None:
    from camforensics.cli import COMMAND_MODULES

    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"camforensics.cli.{name}").register(app)


_register_commands()


def main() -> None:
    from camforensics.runtime.heap import retain_freed_memory

    retain_freed_memory()  # large arrays reused instead of fresh pages per image (camforensics.runtime.heap)
    import sys

    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is shown as \xHH, never a traceback
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    app()

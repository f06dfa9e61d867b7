"""The ``camforensics`` command: a typer app that each command module registers itself into.

Each module in :mod:`camforensics.cli` exposes ``register(app)``. Keep this module light: ``--help`` and
``--version`` must answer without importing numpy-heavy or model code.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from camforensics import __version__


def _tidy(command: Any) -> None:
    """Arguments and option values shown as click writes them (``PATHS...``, ``PATH``), not typer 0.29's
    ``{paths}...`` / ``<list[Path]>`` / ``<path>``.

    Relies on typer's TyperArgument (``_usage_display_name``, ``display_type_rich``): typer is pinned in
    pyproject.toml and tests/test_help.py renders every command's help.
    """
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "argument" and not getattr(param, "_camforensics_tidy", False):
            name = (param.metavar or param.name or "arg").upper()
            shown = name + ("..." if param.nargs != 1 else "")
            usage = shown if param.required else f"[{shown}]"
            param.metavar = shown
            param._usage_display_name = lambda usage=usage: usage  # type: ignore[attr-defined]
            param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
            param._camforensics_tidy = True  # type: ignore[attr-defined]
        elif getattr(param, "param_type_name", "") == "option" and param.metavar is None and not param.is_flag:
            typed = param.display_type  # click's PATH, FLOAT, not typer's <path>, <float>
            param.display_type_rich = lambda ctx, typed=typed: typed(ctx).strip("<>").upper()  # type: ignore[method-assign]
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub)


class _Group(TyperGroup):
    """The root group: tidies a command's help before click renders it."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _tidy(command)
        return command


app = typer.Typer(
    cls=_Group,
    name="camforensics",
    help="Source-camera forensics: sensor fingerprints (PRNU), identification, verification, residuals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: square brackets shown as written (camforensics[train]), no type noise
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

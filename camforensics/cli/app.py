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
    """The root group: tidies a command's help before click renders it, and converts its plain values itself
    (:mod:`camforensics.cli.coercion`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from camforensics.cli.coercion import install

        install(self, ctx)  # the root's own options (--version, --help)
        return super().parse_args(ctx, args)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            from camforensics.cli.coercion import install

            _tidy(command)
            install(command, ctx)  # plain values converted without importing pydantic
        return command


class _App(typer.Typer):
    """The root app, whose command modules (:data:`camforensics.cli.COMMAND_MODULES`) register themselves on first
    use: all of them for ``--help`` or for a test's CliRunner, only the one named on the command line while
    :func:`main` runs it (typer builds the click command of every registered command on each run: the 27 others
    and their modules' imports cost about 0.1 s of a one-photo command)."""

    def __init__(self, **kwargs: Any) -> None:
        self._loaded: dict[str, tuple[list[Any], list[Any]]] = {}  # module -> its commands and groups
        self._only: str | None = None  # the module of the command main() is running
        super().__init__(**kwargs)

    def _load(self, name: str) -> tuple[list[Any], list[Any]]:
        if name not in self._loaded:
            import importlib

            scratch = typer.Typer()
            importlib.import_module(f"camforensics.cli.{name}").register(scratch)
            self._loaded[name] = (scratch.registered_commands, scratch.registered_groups)
        return self._loaded[name]

    def _modules(self) -> tuple[str, ...]:
        from camforensics.cli import COMMAND_MODULES

        return (self._only,) if self._only is not None else COMMAND_MODULES

    @property  # type: ignore[override]
    def registered_commands(self) -> list[Any]:
        return [c for name in self._modules() for c in self._load(name)[0]]

    @registered_commands.setter
    def registered_commands(self, value: list[Any]) -> None:
        if value:
            raise TypeError("camforensics commands are registered by their modules (camforensics.cli.COMMAND_MODULES)")

    @property  # type: ignore[override]
    def registered_groups(self) -> list[Any]:
        return [g for name in self._modules() for g in self._load(name)[1]]

    @registered_groups.setter
    def registered_groups(self, value: list[Any]) -> None:
        if value:
            raise TypeError("camforensics command groups are registered by their modules (camforensics.cli.COMMAND_MODULES)")

    def run_one(self, name: str | None) -> None:
        """Run the command line with only the module of command ``name`` registered (all where ``name`` names no
        command module: root help, --version, a mistyped command)."""
        from camforensics.cli import COMMAND_MODULES

        self._only = name if name in COMMAND_MODULES else None
        try:
            self()
        finally:
            self._only = None


app = _App(
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


def main(*, leave: bool = True) -> None:
    """The ``camforensics`` program: runs the command line in ``sys.argv``; then, with ``leave``, ends the process
    without the interpreter's teardown once its results are out (:func:`camforensics.runtime.leave.leave`), else
    raises the command's ``SystemExit`` (a caller that goes on afterwards: pass ``leave=False``)."""
    import sys

    from camforensics.cli.early import start_early
    from camforensics.runtime import leave as ending
    from camforensics.runtime.heap import retain_freed_memory

    start_early(sys.argv)  # where the program's entry (camforensics.cli.entry) did not already: a caller of main()
    retain_freed_memory()  # large arrays reused instead of fresh pages per image (camforensics.runtime.heap)
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is shown as \xHH, never a traceback
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        app.run_one(sys.argv[1] if len(sys.argv) > 1 else None)
    except SystemExit as exc:
        if not leave:
            raise
        ending.leave(exc.code)
    if leave:
        ending.leave(0)

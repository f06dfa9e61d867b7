"""Command-line values converted without pydantic where typer's own rule has a known result.

typer 0.29 converts every parameter's value through a pydantic ``TypeAdapter`` built on the command's first run:
importing pydantic and building the adapters took about 0.1 s of a one-photo command. For the plain types our
commands use (str, int, float, bool, pathlib.Path and lists of them, with no range, parser or choice), the values a
command line gives are converted here as typer's adapters convert them: a str stays itself, a decimal integer or
float literal becomes that number, a path goes through typer's own :func:`typer._param_types.coerce_cli_path` (its
existence and kind checks). Anything else, a value not written in that plain form (``" 2"``, ``"1e"``, ``"0x10"``)
or a path check that fails, is handed to typer's adapter, so that the result and every error message stay typer's.
typer is pinned in pyproject.toml; ``tests/test_cli_coercion.py`` compares both ways on every parameter of every
command.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from typer._coercion import RuntimeParam, build_runtime_param

_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})\Z")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17})?(?:[eE][+-]?[0-9]{1,3})?\Z")


class _Unsure(Exception):
    """The value is left to typer's own adapter."""


def _as_str(value: Any, param: Any, ctx: Any, info: Any) -> Any:
    if type(value) is str:
        return value
    raise _Unsure


def _as_number(kind: type, literal: re.Pattern[str]) -> Callable[..., Any]:
    """The converter to ``kind`` (int or float) of a value of that type or a str in the plain ``literal`` form."""

    def convert(value: Any, param: Any, ctx: Any, info: Any) -> Any:
        if type(value) is kind:
            return value
        if type(value) is str and literal.match(value):
            return kind(value)
        raise _Unsure

    return convert


_as_int = _as_number(int, _INT)
_as_float = _as_number(float, _FLOAT)


def _as_bool(value: Any, param: Any, ctx: Any, info: Any) -> Any:
    if type(value) is bool:
        return value
    raise _Unsure


def _within(convert: Callable[..., Any], low: float | None, high: float | None) -> Callable[..., Any]:
    """``convert`` for a value in [low, high]; typer's adapter says why any other is refused."""

    def ranged(value: Any, param: Any, ctx: Any, info: Any) -> Any:
        number = convert(value, param, ctx, info)
        if (low is not None and number < low) or (high is not None and number > high):
            raise _Unsure
        return number

    return ranged


def _as_path(path_type: type) -> Callable[..., Any]:
    def convert(value: Any, param: Any, ctx: Any, info: Any) -> Any:
        from typer._click.exceptions import BadParameter
        from typer._param_types import coerce_cli_path

        if type(value) is not str or not value or "\x00" in value:
            raise _Unsure
        try:
            return coerce_cli_path(path_type(value), info, path_type=path_type, param=param, ctx=ctx)
        except BadParameter:
            raise _Unsure from None  # typer's adapter says it, in its words

    return convert


def _leaf(annotation: Any, info: Any) -> Callable[..., Any] | None:
    """The converter of a plain annotation, None for any other."""
    from typer._param_types import lenient_issubclass, routes_to_path

    if info.parser is not None or getattr(info, "click_type", None) is not None:
        return None
    simple = {str: _as_str, int: _as_int, float: _as_float, bool: _as_bool}
    if annotation in (int, float) and (info.min is not None or info.max is not None):
        if info.clamp:
            return None
        return _within(simple[annotation], info.min, info.max)
    if annotation in simple:
        return simple[annotation]
    if routes_to_path(annotation, info) and lenient_issubclass(annotation, Path):
        path_type = info.path_type if info.path_type is not None else annotation
        if path_type is str or path_type is bytes or not lenient_issubclass(path_type, Path):
            return None
        return _as_path(path_type)
    return None


@dataclass(frozen=True)
class PlainParam(RuntimeParam):
    """typer's runtime conversion of one parameter, done here for plain values (see the module's text)."""

    descriptor: Any = None
    convert: Callable[..., Any] | None = None
    listed: bool = False

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        assert self.convert is not None
        try:
            if not self.listed:
                return self.convert(value, param, ctx, self.parameter_info)
            items = value if isinstance(value, (list, tuple)) else [value]
            return [self.convert(item, param, ctx, self.parameter_info) for item in items]
        except _Unsure:
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)


def plain_param(descriptor: Any) -> PlainParam | None:
    """A :class:`PlainParam` for a typer type descriptor of a plain annotation, or None."""
    annotation, info = descriptor.annotation, descriptor.parameter_info
    if descriptor.file_annotation is not None:
        return None
    listed = get_origin(annotation) is list
    if listed:
        args = get_args(annotation)
        if len(args) != 1:
            return None
        annotation = args[0]
    elif get_origin(annotation) is not None:
        return None
    convert = _leaf(annotation, info)
    if convert is None:
        return None
    return PlainParam(info, descriptor.annotation, descriptor=descriptor, convert=convert, listed=listed)


def install(command: Any, ctx: Any) -> None:
    """Give every plain parameter of ``command`` (its help option included, made here with ``ctx``'s names as
    click makes it once) and of its subcommands a :class:`PlainParam`."""
    for param in command.get_params(ctx):
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", 0) is not None:
            continue
        plain = plain_param(descriptor)
        if plain is not None:
            param._runtime_param = plain
    for sub in getattr(command, "commands", {}).values():
        install(sub, ctx)

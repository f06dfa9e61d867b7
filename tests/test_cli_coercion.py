"""Command-line values: camforensics.cli.coercion converts them as typer's pydantic adapters do, on every parameter of
every command, and a one-photo command runs without importing pydantic or the other commands' modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from camforensics.cli.app import app
from camforensics.cli.coercion import PlainParam, plain_param

SAMPLES = {
    str: ["abc", "", " x ", "é", "a\udcffb", "-", "2"],
    int: ["0", "5", "-3", "007", " 5", "5.0", "1e3", "abc", "99999999999999999999", "+4", "", "1_000", "-0"],
    float: ["2", "2.5", "-0.1", "1e-3", "1E5", "2.5e+300", ".5", "5.", "inf", "nan", " 2", "abc", "1_000", "", "0.1",
            "123456789.123456789", "1e999", "-0"],  # fmt: skip
    bool: [True, False],
}


def _commands():
    import typer.main

    root = typer.main.get_command(app)
    found = []

    def walk(command, name):
        found.append((name or "root", command))
        for sub_name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{name} {sub_name}".strip())

    walk(root, "")
    return found


def _outcome(convert, value):
    try:
        result = convert(value)
    except Exception as exc:  # noqa: BLE001 - the message is what is compared
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        return ("error", type(exc).__name__, message)
    return ("ok", type(result).__name__, [type(x).__name__ for x in result] if isinstance(result, list) else None, repr(result))


def _params():
    from typer._click import Context

    cases = []
    for name, command in _commands():
        ctx = Context(command, info_name=name)
        for param in command.get_params(ctx):
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is not None:
                cases.append((name, param, ctx, descriptor))
    return cases


PARAMS = _params()


def test_most_parameters_are_plain():
    plain = [p for _, p, _, d in PARAMS if plain_param(d) is not None]
    assert len(plain) >= 0.9 * len(PARAMS), [(n, p.name, d.annotation) for n, p, _, d in PARAMS if plain_param(d) is None]


@pytest.mark.parametrize("case", PARAMS, ids=lambda c: f"{c[0]}:{c[1].name}")
def test_plain_values_convert_as_typer_converts_them(case, tmp_path):
    from typer._coercion import build_runtime_param

    _, param, ctx, descriptor = case
    plain = plain_param(descriptor)
    if plain is None:
        pytest.skip("left to typer")
    assert isinstance(plain, PlainParam)
    typer_own = build_runtime_param(descriptor)
    annotation = descriptor.annotation
    leaf = annotation.__args__[0] if getattr(annotation, "__origin__", None) is list else annotation
    if leaf in SAMPLES:
        values = SAMPLES[leaf]
    else:  # paths
        (tmp_path / "photo.jpg").write_bytes(b"x")
        values = ["photo.jpg", str(tmp_path / "photo.jpg"), str(tmp_path), str(tmp_path / "missing"), "", "a//b", "./x",
                  "n\udcffme.jpg", "-", 5]  # fmt: skip
    if leaf is not bool and getattr(annotation, "__origin__", None) is list:
        values = values + [values[:3]]
    for value in values:
        fast = _outcome(lambda v: plain.coerce(v, param=param, ctx=ctx), value)
        slow = _outcome(lambda v: typer_own.coerce(v, param=param, ctx=ctx), value)
        assert fast == slow, (param.name, value)


def test_one_photo_command_imports_neither_pydantic_nor_other_commands(tmp_path):
    code = (
        "import sys\n"
        "from camforensics.cli.app import main\n"
        f"sys.argv = ['camforensics', 'extract', {str(tmp_path / 'missing.jpg')!r}, '-o', {str(tmp_path / 'out')!r}, "
        "'--sigma0', '2.5', '--max-pixels', '1000', '-j', '1', '-q']\n"
        "try:\n"
        "    main(leave=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith(('pydantic', 'camforensics.cli.'))))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})  # fmt: skip
    loaded = eval(res.stdout.split("LOADED", 1)[1])  # noqa: S307 - our own print of a list of names
    assert not [m for m in loaded if m.startswith("pydantic")], loaded
    commands = {m.rsplit(".", 1)[1] for m in loaded if m.startswith("camforensics.cli.")}
    assert "extract" in commands and not commands & {"identify", "enroll", "train", "models", "anonymize"}, commands


def test_a_bad_value_is_refused_in_typer_s_words():
    from typer.testing import CliRunner

    res = CliRunner().invoke(app, ["extract", "x.jpg", "-o", "out", "--sigma0", "two"])
    assert res.exit_code == 2
    assert "Invalid value for '--sigma0'" in res.output and "valid number" in res.output
    res = CliRunner().invoke(app, ["extract", "x.jpg", "-o", "out", "-j", "0"])
    assert res.exit_code == 2 and "'--workers'" in res.output

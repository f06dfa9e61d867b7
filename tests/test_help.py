"""Every command's --help renders, reads cleanly and shows install extras as written (camforensics[train])."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from camforensics.cli.app import app

runner = CliRunner()


def _commands() -> list[list[str]]:
    import typer.main

    root = typer.main.get_command(app)
    found: list[list[str]] = [[]]

    def walk(group, prefix):
        for name, cmd in getattr(group, "commands", {}).items():
            found.append([*prefix, name])
            walk(cmd, [*prefix, name])

    walk(root, [])
    return found


COMMANDS = _commands()


def test_every_command_is_listed():
    names = {" ".join(c) for c in COMMANDS}
    assert {"identify", "verify", "enroll", "extract", "anonymize", "report", "train attributor", "library check"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_is_clean(command):
    res = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    text = res.output
    for noise in ("<bool>", "<list[", "<str>", "<path>", "<int", "<float>", "{paths}", "\\["):
        assert noise not in text, f"{noise!r} in the help of {command}:\n{text}"
    assert "Usage:" in text


def _help(*command: str) -> str:
    res = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    return " ".join(res.output.split())


def test_extras_are_shown_literally():
    assert "pip install 'camforensics[train]'" in _help("train")
    assert "camforensics[dask]" in _help("identify")
    assert "camforensics[gpu-torch]" in _help("identify")


def test_arguments_read_as_click_writes_them():
    text = _help("identify")
    assert "identify [OPTIONS] PATHS..." in text
    assert "--library PATH" in text and "--threshold FLOAT" in text


def test_help_imports_no_heavy_module():
    code = (
        "import sys\n"
        "from camforensics.cli.app import main\n"
        "for argv in (['camforensics', '--help'], ['camforensics', 'identify', '--help'], ['camforensics', 'report', '--help']):\n"
        "    sys.argv = argv\n"
        "    try:\n"
        "        main(leave=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('HEAVY', sorted(m for m in ('numpy', 'torch', 'onnxruntime', 'matplotlib', 'sklearn', 'skimage', 'scipy') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout, res.stdout[-500:]

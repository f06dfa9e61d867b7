"""What an examiner reads: 80-column tables, TSV in logs, closing counts, plain words; lab-friendly files."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from camforensics.cli.app import app
from camforensics.cli.render import Column, show_table
from camforensics.reports.words import enroll_warnings, exif_sentence, p_fa_words, summary_line, verify_lines

runner = CliRunner()


def invoke(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, **kw)


ROWS = [
    {"photo": "a_very_long_file_name_from_a_seized_phone_2023-01-01_12-00-00.jpg", "verdict": "same camera",
     "device": "Samsung_GT-I9300_1_evidence_item_42", "pce": "4691.8", "extra": "x"},  # fmt: skip
    {"photo": "[red]b.jpg", "verdict": "no match", "device": "LG_D605_0", "pce": "3.1", "extra": "y"},
]
COLS = [
    Column("photo", lambda r: r["photo"], wraps=True),
    Column("verdict", lambda r: r["verdict"]),
    Column("device", lambda r: r["device"], wraps=True),
    Column("PCE", lambda r: r["pce"], numeric=True),
    Column("extra", lambda r: r["extra"], wide_only=True),
]


def test_terminal_table_fits_80_columns_and_wraps_names_whole():
    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=True, color_system=None)
    show_table("t", COLS, ROWS, console=console, tsv=False)
    lines = buf.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in buf.getvalue()  # nothing cut
    header = next(line for line in lines if "verdict" in line)
    body = lines[lines.index(header) + 2 :]
    for start, end, name in ((0, header.index("verdict"), ROWS[0]["photo"]), (header.index("device"), header.index("PCE") - 3, ROWS[0]["device"])):
        column = "".join(line[start:end].strip() for line in body)
        assert column.startswith(name)  # wrapped over lines, every character kept
    assert "[red]b.jpg" in buf.getvalue()  # a name is never markup
    assert "extra" not in buf.getvalue()  # --wide only


def test_tsv_when_not_a_terminal():
    buf = io.StringIO()
    console = Console(file=buf, width=80)
    show_table("t", COLS, ROWS, console=console, wide=True)  # StringIO is not a terminal: TSV
    lines = buf.getvalue().splitlines()
    assert lines[0].split("\t") == ["photo", "verdict", "device", "PCE", "extra"]
    assert lines[1].split("\t")[0] == ROWS[0]["photo"] and lines[2].split("\t")[0] == "[red]b.jpg"
    assert all(len(line.split("\t")) == 5 for line in lines)


def test_words():
    assert summary_line(43, [(7, "matched"), (36, "no match")], 0) == "7 of 43 matched, 36 no match, 0 failed"
    assert p_fa_words(-4223.3) == "< 1e-300" and p_fa_words(-42.7) == "1 in 10^42"
    assert p_fa_words(-4.47) == "1 in 29,512" and p_fa_words(None) == "-"
    a = {"top_k": [{"model": "Samsung SM-J330F", "probability": 0.4}], "decision": {"unknown": False},
         "exif": {"model_id": "LG LG-D605", "consistent": False, "in_classes": True}}  # fmt: skip
    assert exif_sentence(a).startswith("EXIF says LG LG-D605, but the attributor's lead is Samsung SM-J330F")
    a["decision"]["unknown"] = True  # a known model in EXIF, "unknown" from the attributor: not a contradicting name
    assert "calls the photo unknown" in exif_sentence(a) and "but the attributor's lead is" not in exif_sentence(a)
    d = {"same_device": True, "pce": 4691.8, "threshold": 60.0, "log10_p_fa": -900, "rotation": 0, "n_images_a": 3,
         "n_images_b": 2}  # fmt: skip
    s = {"model": "siam", "mean_logit": -0.5, "threshold": -0.1, "std_logit": 0.03, "n_positions": 121,
         "same_device": False, "fused_same_device": True, "fused_probability": 0.97, "fused_threshold": 0.5}  # fmt: skip
    lines = verify_lines({"decision": d, "siamese": s})
    assert lines[0].startswith("PRNU: same camera") and "< 1e-300" in lines[0]
    assert lines[1].startswith("Siamese verifier siam: different cameras") and lines[2].startswith("fused verdict: same camera")


def test_enroll_warnings_say_what_they_mean():
    notes = enroll_warnings(10, 0.209)
    assert len(notes) == 2 and "fewer than 20" in notes[0] and "21%" in notes[1] and "estimation noise" in notes[1]
    assert enroll_warnings(40, 0.9) == []


def test_identify_output_in_a_log_is_tsv_with_a_closing_count(device_tree, tmp_path):
    lib = tmp_path / "lib"
    assert invoke("enroll", device_tree / "cam_a" / "flat", "--name", "cam_a", "--library", lib, "-r", tmp_path / "e.json").exit_code == 0
    res = invoke("identify", device_tree / "cam_a" / "nat", device_tree / "cam_b" / "nat", "--library", lib, "--no-model", "-r", tmp_path / "i.json")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split("\t") == ["photo", "verdict", "device", "PCE"]
    assert sum("\tsame camera\tcam_a\t" in line for line in lines) == 3
    assert "3 of 6 matched, 3 no match, 0 failed" in res.stdout
    doc = json.loads((tmp_path / "i.json").read_text())
    assert doc["run"]["execution"]["executor"] == "in-process"  # a small job pays no pool


def test_enroll_warns_in_words(device_tree, tmp_path):
    res = invoke("enroll", device_tree / "cam_a" / "flat", "--name", "cam_a", "--library", tmp_path / "lib", "-r", tmp_path / "e.json")
    assert res.exit_code == 0
    assert "only 6 images" in res.output and "fewer than 20" in res.output


def test_default_report_goes_to_the_reports_folder_not_the_working_folder(device_tree, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reports = tmp_path / "state"
    monkeypatch.setenv("CAMFORENSICS_REPORTS", str(reports))
    res = invoke("extract", device_tree / "cam_a" / "nat" / "nat 0.jpg", "-o", tmp_path / "out", "--no-png")
    assert res.exit_code == 0, res.output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("camforensics_")] == []
    assert len(list(reports.glob("camforensics_extract_*.json"))) == 1


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_honour_the_umask(tmp_path, mask):
    from camforensics.reports.atomic import atomic_write_text

    old = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "x.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o666 & ~mask


def test_extract_pictures_are_titled_and_readable(device_tree, tmp_path):
    from PIL import Image

    src = tmp_path / "Ünï [x].jpg"
    src.write_bytes((device_tree / "cam_a" / "nat" / "nat 0.jpg").read_bytes())
    res = invoke("extract", src, "-o", tmp_path / "out", "-r", tmp_path / "r.json")
    assert res.exit_code == 0, res.output
    outputs = json.loads((tmp_path / "r.json").read_text())["results"][0]["outputs"]
    for key in ("residual_png", "spectrum_png"):
        with Image.open(Path(outputs[key])) as img:
            assert img.size[0] > 500 and img.size[1] > 400  # a figure with axes, not the bare array
            assert len(np.unique(np.asarray(img.convert("L")))) > 50


def test_extract_model_spectra_side_by_side(device_tree, tmp_path):
    from PIL import Image

    png = tmp_path / "models.png"
    res = invoke("extract", device_tree / "cam_a" / "nat", device_tree / "cam_b" / "nat", "-o", tmp_path / "out", "--no-png",
                 "--model-spectra", png, "-r", tmp_path / "r.json")  # fmt: skip
    assert res.exit_code == 0, res.output
    with Image.open(png) as img:
        width, height = img.size
    assert width > 1.5 * height  # two panels side by side (EXIF models cam_a and cam_b)
    res = invoke("extract", device_tree / "cam_a" / "nat", "-o", tmp_path / "o2", "--no-npy", "--model-spectra", tmp_path / "m2.png")
    assert res.exit_code == 2 and "--no-npy" in res.output and not (tmp_path / "o2").exists()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_anonymize_table_wraps_names_instead_of_cutting_them(monkeypatch):
    import camforensics.cli.common as common
    from camforensics.cli.anonymize import _table

    long_in = "a_very_long_file_name_from_a_seized_phone_2023-01-01_12-00-00_item_42.jpg"
    long_out = "a_very_long_file_name_from_a_seized_phone_2023-01-01_12-00-00_item_42_0123abcd.remove-fingerprint.png"
    result = {"status": "ok", "input": {"path": f"/evidence/{long_in}"}, "output": {"path": f"/out/{long_out}"},
              "quality": {"psnr": 51.23, "ssim": 0.99912}, "removed_device": {"pce_before": 4691.8, "pce_after": 3.2},
              "judges": [{"judge": "attributor-cc", "before_class_kept": False}]}  # fmt: skip

    class Rep:
        parameters = {"method": "remove-fingerprint", "judges": {"models": ["attributor-cc"]}}

        def iter_results(self):
            return iter([result])

    buf = _Tty()
    monkeypatch.setattr(common, "out", Console(file=buf, width=80, force_terminal=True, color_system=None))
    _table(Rep())
    text = buf.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in text  # fits, nothing cut
    header = next(line for line in lines if "output" in line)
    body = lines[lines.index(header) + 2 :]
    start, end = header.index("output"), header.index("PSNR")
    assert "".join(line[: start].strip() for line in body).startswith(long_in)  # wrapped, every character kept
    assert "".join(line[start:end].strip() for line in body).startswith(long_out)
    assert "51.2" in text and "0.9991" in text and "4692 ->" in text and "1/1" in text and "changed" in text


def test_evaluate_anonymization_table_wraps_names_instead_of_cutting_them(monkeypatch):
    from camforensics.cli import evaluate_anonymization

    method = "transplant-refine-with-a-very-long-method-name"
    monkeypatch.setattr(
        "camforensics.pipelines.anonymize.table.table_cells",
        lambda methods, judges, inputs: (["method", "attributor-cc-judge-with-long-name", "PSNR / SSIM", "note"],
                                         [[method, "0.50 (0.75)", "41.2 / 0.981", "a note that is long enough to wrap"]]),
    )  # fmt: skip
    buf = _Tty()
    monkeypatch.setattr(evaluate_anonymization, "out", Console(file=buf, width=60, force_terminal=True, color_system=None))
    evaluate_anonymization._table({"methods": {}, "judges": [{"name": "x"}]})
    text = buf.getvalue()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 60
    cells = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    first = "".join(c[1].strip() for c in cells)
    assert first.startswith(method)  # the method name wrapped over lines, every character kept


def test_the_command_line_s_consoles_are_made_on_first_use_and_print_as_rich_does():
    import io

    from rich.console import Console

    from camforensics.cli.common import LazyConsole, real_console

    lazy = LazyConsole(file=io.StringIO(), width=40, highlight=False, soft_wrap=True)
    assert lazy._console is None  # nothing made (nor rich imported for it) before the first use
    plain = Console(file=io.StringIO(), width=40, highlight=False, soft_wrap=True)
    for console in (lazy, plain):
        console.print("[bold]1 of 1[/] extracted, written to [x]", markup=True)
    assert isinstance(real_console(lazy), Console) and real_console(plain) is plain
    assert real_console(lazy).file.getvalue() == plain.file.getvalue()

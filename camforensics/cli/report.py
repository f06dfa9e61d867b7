"""camforensics report: a report of any command as one self-contained HTML case file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import check_outputs, cli_errors, err, literal

MAX_EMBEDDED_BYTES = 20 << 20  # a picture file larger than this is not embedded (named only)


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    source: Annotated[Path, typer.Argument(help="A report written by any camforensics command (json or jsonl).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write, e.g. case.html.")],
    pictures: Annotated[
        bool, typer.Option("--pictures/--no-pictures", help="Embed a chart per photo and the pictures it names.")
    ] = True,
) -> None:
    """Write REPORT as one self-contained HTML case file: per photo the verdict and its evidence (PCE, false-alarm
    probability, rotation, crop position, camera-model lead, EXIF and JPEG-signature checks when present), input
    hashes, tool and model versions, the method in plain words with references. Pictures are embedded; the file
    makes no network request and opens in any browser.
    """
    with cli_errors():
        check_outputs([source], files=[("--output", output)])  # before any work
        from camforensics.io.hashing import sha256_file
        from camforensics.pipelines.case_report import render_html
        from camforensics.reports.atomic import atomic_write_text
        from camforensics.reports.reader import read_report

        doc = read_report(source)

        def embed(path: str) -> bytes | None:
            p = Path(path)
            try:
                if p.suffix.lower() != ".png" or not p.is_file() or p.stat().st_size > MAX_EMBEDDED_BYTES:
                    return None
                return p.read_bytes()
            except OSError:
                return None

        page = render_html(doc, source=source, source_sha256=sha256_file(source), pictures=pictures, embed=embed)
        atomic_write_text(output, page)
        err.print(f"case report: {literal(output)}")

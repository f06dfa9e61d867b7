"""What an examiner reads on the terminal: tables that fit 80 columns, plain words, a closing count.

Every command renders through here, so that output reads the same everywhere:

- :func:`show_table`: a rich table on a terminal (a short default column set, ``--wide`` for the rest; long
  names wrap, never cut), plain tab-separated text when stdout is a file or a pipe (``identify ... > log``).
- :func:`summary_line`: the closing line of every batch command, e.g. ``7 of 43 matched, 36 no match, 0 failed``.
- :func:`p_fa_words`: a false-alarm probability as ``1 in 10^N`` or ``< 1e-300``.
- :func:`prnu_verdict`, :func:`exif_sentence`, :func:`verify_lines`: verdicts and disagreements in sentences.

Only rich is imported here (no numpy): rendering must stay cheap.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from camforensics.reports.words import (  # noqa: F401 - the words every command prints, re-exported
    enroll_warnings,
    exif_sentence,
    model_lead,
    p_fa_words,
    prnu_verdict,
    rotation_words,
    same_device_words,
    summary_line,
    verify_lines,
    where_words,
)

TERMINAL_WIDTH = 80  # a table never grows wider than this unless the terminal is wider and --wide is asked


@dataclass(frozen=True)
class Column:
    """One table column: its header, the cell text of a row, whether it is numeric (right-aligned), and whether
    it is shown only with ``--wide``."""

    header: str
    cell: Callable[[dict[str, Any]], str]
    numeric: bool = False
    wide_only: bool = False
    wraps: bool = False  # a name: wrapped onto more lines when the table is too narrow


def to_terminal(stream: Any = None) -> bool:
    """True when ``stream`` (stdout by default) is an interactive terminal."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def show_table(
    title: str,
    columns: Sequence[Column],
    rows: Iterable[dict[str, Any]],
    *,
    wide: bool = False,
    caption: str | None = None,
    console: Any = None,
    tsv: bool | None = None,
) -> None:
    """Print ``rows`` under ``columns``: a rich table on a terminal, TSV (header line first) elsewhere.

    Cells are plain text (never rich markup: a file name such as ``[red]x.jpg`` is shown as it is).
    """
    from camforensics.cli.common import out

    console = console or out
    shown = [c for c in columns if wide or not c.wide_only]
    cells = [[_clean(c.cell(r)) for c in shown] for r in rows]
    if tsv if tsv is not None else not to_terminal(console.file):
        lines = ["\t".join(c.header for c in shown), *("\t".join(row) for row in cells)]
        console.file.write("\n".join(lines) + "\n")
        if caption:
            console.file.write(f"# {caption}\n")
        console.file.flush()
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    width = None if wide else min(TERMINAL_WIDTH, console.width)
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, caption=caption, width=None, pad_edge=False, expand=False
    )
    for c in shown:
        table.add_column(
            c.header,
            justify="right" if c.numeric else "left",
            overflow="fold" if c.wraps else "ellipsis",
            no_wrap=c.numeric,
            min_width=min(len(c.header), 12),
        )
    for row in cells:
        table.add_row(*(Text(v) for v in row))
    console.print(table, width=width)


def _clean(value: Any) -> str:
    """A cell as one line of plain text (tabs and newlines would break TSV)."""
    return " ".join(str(value).split()) if value is not None else "-"

"""The ``camforensics`` program's entry (the installed script and ``python -m camforensics``).

It starts what :mod:`camforensics.cli.early` starts before the command line is read (typer, rich and numpy not yet
imported), then runs :func:`camforensics.cli.app.main`.
"""

from __future__ import annotations


def main() -> None:
    """Run the command line in ``sys.argv`` (see the module's text)."""
    import sys

    from camforensics.cli.early import start_early

    start_early(sys.argv)
    from camforensics.cli.app import main as run

    run()

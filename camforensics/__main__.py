import sys

from camforensics.cli.early import start_early

start_early(sys.argv)  # before typer and numpy are imported (camforensics.cli.early)

from camforensics.cli.app import main  # noqa: E402

main()

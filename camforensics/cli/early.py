"""What the program starts before it reads its command line (nothing here imports typer or numpy).

A one-photo ``extract`` draws its two pictures in a helper process that imports matplotlib (about 0.3 s of CPU)
while the command decodes the photo and computes its residual (:func:`camforensics.core.figures.drawing_process_started`).
Forked where the command body starts, that import still ran beside the residual, on the core the residual's
threads wanted. Forked here, before the command line is parsed (typer, rich and the command's modules: about 0.2 s on one core
while the other has nothing to do), it imports matplotlib beside that instead. numpy and PIL, which both processes
need, are imported once, before the fork.

The command line is not parsed yet, so the helper is started on a plain guess: the command is ``extract`` and
no word of the line says that no pictures are wanted or that the run is a help text. The command body then keeps
it only where its own rule holds (one photo file, pictures wanted, in this process) and ends it otherwise
(:func:`camforensics.runtime.forked.discard`: a helper that was given no call is killed, not waited for): a wrong
guess costs some CPU on the second core for the fraction of a second before the command body runs.
"""

from __future__ import annotations

from collections.abc import Sequence

# The name the drawing helper is registered under: camforensics.core.figures.DRAWING_HELPER (a test holds them equal).
DRAWING_HELPER = "camforensics.core.figures"

# Words after which an ``extract`` never draws in a helper forked now.
_NO_PICTURES = frozenset({"--no-png", "--help", "-h", "--resume"})


def start_early(argv: Sequence[str]) -> bool:
    """Fork the drawing helper of an ``extract`` command line ``argv`` (``sys.argv``) now, where the guess in the
    module's text holds and :func:`camforensics.runtime.forked.start` may fork; True where one was started."""
    if len(argv) < 3 or argv[1] != "extract" or any(word in _NO_PICTURES for word in argv[2:]):
        return False
    # numpy and PIL first: the command needs both (it decodes with them), and the helper, forked after, shares them
    # instead of importing them again (0.06-0.1 s of CPU on the core the residual's threads want)
    import numpy  # noqa: F401
    from PIL import Image  # noqa: F401

    from camforensics.runtime import forked

    return forked.start(DRAWING_HELPER, prepare=_prepare_drawing) is not None


def _prepare_drawing() -> None:
    """In the helper: import numpy, matplotlib and the figures module, and build the pictures' frames."""
    from camforensics.core.figures import prepare_drawing

    prepare_drawing()

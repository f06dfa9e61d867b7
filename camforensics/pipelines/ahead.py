"""A one-photo command's residual, started as soon as its photo is decoded, beside the command's imports and setup.

A one-photo ``identify`` or ``extract`` decodes its photo in a background thread while it imports its pipeline
(:func:`camforensics.cli.common.read_ahead`); the residual then waited for the imports, the model sessions and the
camera-model attribution, all on one core, while the other had nothing to do. :func:`start_residual` computes it
in another background thread as soon as the pixels are there (identify meanwhile computes the grey intensities its
search needs on the thread that waits for it);
the run takes it with :func:`claim_residual` (through :func:`residual_of`), for the very same pixel array and
parameters only (the same function on the same input: the same residual), and otherwise computes its own.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from camforensics.core.params import ResidualParams

# Residuals being computed: (the pixel array, its parameters, the thread, its result box).
_AHEAD: list[tuple[np.ndarray, ResidualParams, threading.Thread, dict[str, Any]]] = []
_LOCK = threading.Lock()


def start_residual(pixels: np.ndarray, params: ResidualParams) -> None:
    """Compute the numpy engine's residual of ``pixels`` in a background thread, for :func:`claim_residual`."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            from camforensics.core.residual import extract_residual
            from camforensics.pipelines.batch import POOL_MIN_MEGAPIXELS
            from camforensics.runtime.heap import small_pages_for_arrays

            if pixels.shape[0] * pixels.shape[1] / 1e6 < POOL_MIN_MEGAPIXELS:
                small_pages_for_arrays()  # the batch loop's rule for a short job, which it applies only later
            box["residual"] = extract_residual(pixels, params=params)
        except BaseException as exc:  # noqa: BLE001 - handed to the claimant, raised there
            box["error"] = exc

    thread = threading.Thread(target=run, name="camforensics-residual-ahead", daemon=True)
    with _LOCK:
        _AHEAD.append((pixels, params, thread, box))
    thread.start()


def claim_residual(pixels: np.ndarray, params: ResidualParams) -> np.ndarray | None:
    """The residual started ahead for this very array and these parameters (once; its error raised here), or None
    where none was started."""
    with _LOCK:
        found = next((i for i, (p, q, _, _) in enumerate(_AHEAD) if p is pixels and q == params), None)
        if found is None:
            return None
        _, _, thread, box = _AHEAD.pop(found)
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["residual"]


def residual_of(pixels: np.ndarray, params: ResidualParams, device: str) -> np.ndarray:
    """The residual of ``pixels``: the one started ahead for this very array (numpy engine, ``device`` "cpu"), else
    computed now by ``device``'s engine."""
    ahead = claim_residual(pixels, params) if device == "cpu" else None
    if ahead is not None:
        return ahead
    from camforensics.pipelines.device import residual_extractor

    return residual_extractor(device)(pixels, params=params)

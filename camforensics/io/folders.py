"""Expand command-line paths (files and folders) into the list of image files to process."""

from __future__ import annotations

import os
import re
from pathlib import Path

from camforensics.errors import InputError

# File endings read as images when a folder is walked (a file named explicitly is always tried).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm"})


def safe_file_part(name: str) -> str:
    """``name`` with every run of characters other than letters, digits and ``._+-`` replaced by ``_`` (for
    device, model and camera names inside output file names on any file system)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name)


def is_image_name(path: Path) -> bool:
    """True for a visible file whose ending is a known image type (case-insensitive)."""
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def collect_images(paths: list[str | os.PathLike[str]], *, recursive: bool = True) -> list[Path]:
    """Files named directly, plus the image files found in named folders, in a stable sorted order.

    Parameters
    ----------
    paths : list of path-like
        Files and folders as given on the command line. A named file is kept whatever its ending, so that a
        mis-named or broken file is reported rather than silently skipped.
    recursive : bool, keyword-only
        Walk sub-folders.

    Returns
    -------
    list of Path
        Without duplicates.

    Raises
    ------
    InputError
        If a named path does not exist.
    """
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            walker = p.rglob("*") if recursive else p.glob("*")
            found = sorted(f for f in walker if f.is_file() and is_image_name(f) and not _hidden(f, p))
        elif p.exists() or p.is_symlink():
            found = [p]
        else:
            raise InputError(f"{p}: no such file or folder")
        for f in found:
            try:
                key = f.resolve()
            except (OSError, RuntimeError):  # a symlink loop: kept, and load_image reports it as that file's error
                key = Path(os.path.abspath(f))
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)

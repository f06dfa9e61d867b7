"""Evidence safety: what a command checks before any work, so that no input is ever written and no finished
work is lost to a bad output path.

* :func:`check_outputs` compares every output path a command will write (report, its journal, an output folder,
  a library) with every input, once, before any image is read: an output that is an input, a folder output equal
  to or inside an input folder, an output file that would overwrite an existing file inside an input folder (a
  new report beside the evidence is allowed: it is never read as an image), an existing file where a folder is
  needed (and the reverse), and a destination that cannot be written are refused with one line that names the
  way out.
* :func:`input_problem` says why a path named as an input is no image file (a symlink loop, a named pipe, a
  device, a socket, a folder) without opening it: opening a FIFO blocks until a writer appears.
* :func:`unique_stems` gives inputs that share a file name (from different folders) distinct, deterministic output
  stems, so that their outputs never overwrite each other.
* :func:`sweep_temporaries` removes the temporary files of atomic writes that a killed worker left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from camforensics.errors import OutputPathError

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def input_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be an image file (None when it is a regular file, through any symlinks).

    Never opens the file. The reason is a short phrase such as ``"a symlink loop"`` or ``"a named pipe (FIFO)"``.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop (the link points back to itself)"
        if exc.errno == errno.ENOENT:
            return "a dangling symlink" if os.path.islink(path) else "missing (no such file)"
        if exc.errno == errno.ENAMETOOLONG:
            return "a name too long for the file system"
        return f"not readable ({exc.strerror or exc})"
    if stat.S_ISREG(st.st_mode):
        return None
    for test, kind in _KINDS:
        if test(st.st_mode):
            return f"{kind}, not a regular file"
    return "not a regular file"


def _key(path: Path) -> str:
    """A comparable absolute path (symlinks resolved where possible; a loop is kept as written)."""
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):
        return os.path.abspath(path)


def _inside(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)


def _writable_dir(folder: Path, option: str, shown: Path) -> None:
    """Refuse ``folder`` unless a file can be created in it (or, when missing, in its nearest existing parent)."""
    probe = folder
    while not probe.exists():
        if probe.is_symlink():
            raise OutputPathError(f"{option} {shown}: {probe} is a dangling symlink; choose another path")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"{option} {shown}: {probe} is an existing file, not a folder; choose another path")
    try:
        fd, name = tempfile.mkstemp(prefix=".camforensics-write-test.", dir=probe)
    except OSError as exc:
        raise OutputPathError(
            f"{option} {shown}: cannot write in {probe} ({exc.strerror or exc}); choose a writable location"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)


def check_outputs(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    report: str | os.PathLike[str] | None = None,
    folder: str | os.PathLike[str] | None = None,
    folder_option: str = "--output",
    files: Sequence[tuple[str, str | os.PathLike[str]]] = (),
) -> None:
    """Refuse, before any work, output paths that would write an input or cannot be written.

    Parameters
    ----------
    inputs : iterable of path-like
        The files and folders named as inputs (not expanded).
    report : path-like, optional, keyword-only
        The report file (``-`` for stdout, None for no check); its journal ``REPORT.partial.jsonl`` and the csv
        side file ``REPORT.run.json`` are checked with it.
    folder : path-like, optional, keyword-only
        An output folder (``--output``, ``--library``, ...), named ``folder_option`` in messages.
    files : sequence of (option, path), keyword-only
        Further output files.

    Raises
    ------
    OutputPathError
        With one line naming the option, the path and the way out.
    """
    named = [Path(p) for p in inputs]
    in_files = {_key(p) for p in named if not p.is_dir()}
    in_dirs = {_key(p): p for p in named if p.is_dir()}
    outputs: list[tuple[str, Path]] = list((opt, Path(p)) for opt, p in files)
    if report is not None and str(report) != "-":
        r = Path(report)
        outputs += [("--report", r), ("--report", r.with_name(r.name + ".partial.jsonl")),
                    ("--report", r.with_name(r.name + ".run.json"))]
    for option, path in outputs:
        key = _key(path)
        if key in in_files:
            raise OutputPathError(
                f"{option} {path} is one of the inputs: writing it would destroy evidence; choose another path"
            )
        if path.is_dir():
            raise OutputPathError(f"{option} {path} is an existing folder; give a file name (e.g. {path / 'report.json'})")
        if path.exists() or path.is_symlink():
            for dkey, given in in_dirs.items():
                if _inside(key, dkey):
                    raise OutputPathError(
                        f"{option} {path} would overwrite a file inside the input folder {given}; choose another path"
                    )
    if report is not None and str(report) != "-":
        _writable_dir(Path(report).parent if str(Path(report).parent) else Path("."), "--report", Path(report))
    for option, path in files:
        _writable_dir(path.parent, option, path)
    if folder is None:
        return
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"{folder_option} {out} is an existing file; give a folder")
    key = _key(out)
    if key in in_files:
        raise OutputPathError(f"{folder_option} {out} is one of the inputs; give a folder outside the inputs")
    for dkey, given in in_dirs.items():
        if _inside(key, dkey):
            raise OutputPathError(
                f"{folder_option} {out} is inside the input folder {given}: it would write into the evidence and "
                "its outputs would be read as inputs by the next run; choose a folder outside the inputs"
            )
    _writable_dir(out, folder_option, out)


def refuse_overwrite(output: str | os.PathLike[str], inputs: Iterable[str]) -> None:
    """Refuse one output file that would land on an input (``inputs``: resolved paths, see :func:`resolved`)."""
    if _key(Path(output)) in set(inputs):
        raise OutputPathError(f"output {output} would overwrite an input; choose another output folder")


def resolved(paths: Iterable[Path]) -> frozenset[str]:
    """Comparable absolute paths of input files (for :func:`refuse_overwrite`)."""
    return frozenset(_key(p) for p in paths)


# Longest output stem (bytes): output names add ~40 bytes (sha256 prefix, suffixes, the temporary name's
# ".XXXXXXXX.tmp") and file systems allow 255.
MAX_STEM_BYTES = 120


def short_stem(stem: str, limit: int = MAX_STEM_BYTES) -> str:
    """``stem`` cut at a character boundary to at most ``limit`` bytes, plus ``~`` and 6 hex of the sha256 of the
    whole stem when it was cut (so two long names that share a beginning stay distinct)."""
    raw = os.fsencode(stem)
    if len(raw) <= limit:
        return stem
    import hashlib

    cut = stem
    while len(os.fsencode(cut)) > limit - 7:
        cut = cut[:-1]
    return f"{cut}~{hashlib.sha256(raw).hexdigest()[:6]}"


def unique_stems(files: Sequence[Path]) -> dict[str, str]:
    """An output stem for every input that no other input shares, deterministic for the same list of inputs.

    Stems longer than :data:`MAX_STEM_BYTES` are shortened (:func:`short_stem`). Inputs whose stems are unique keep
    them. Inputs sharing a stem (compared case-insensitively, as on case-insensitive file systems) from different
    folders get ``<stem>~<n>`` with n = 1, 2, ... in input order (the sorted order of
    :func:`camforensics.io.folders.collect_images`); the report records each input's output paths, which is the
    mapping.

    Returns
    -------
    dict
        ``str(path)`` -> stem.
    """
    groups: dict[str, list[tuple[Path, str]]] = {}
    for f in files:
        stem = short_stem(f.stem)
        groups.setdefault(stem.casefold(), []).append((f, stem))
    out: dict[str, str] = {}
    for group in groups.values():
        if len(group) == 1:
            out[str(group[0][0])] = group[0][1]
        else:
            for i, (f, stem) in enumerate(group, start=1):
                out[str(f)] = f"{stem}~{i}"
    return out


_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # tempfile.mkstemp(prefix=".NAME.", suffix=".tmp")


def sweep_temporaries(folder: str | os.PathLike[str], *, since: float) -> list[Path]:
    """Delete the temporary files of atomic writes (``.NAME.XXXXXXXX.tmp``) created in ``folder`` since ``since``
    (a ``time.time()``): a worker process stopped by Ctrl-C cannot clean up its own. Returns those deleted."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        if not _TEMPORARY.match(e.name):
            continue
        try:
            if e.is_file(follow_symlinks=False) and e.stat(follow_symlinks=False).st_mtime >= since - 1.0:
                os.unlink(e.path)
                removed.append(Path(e.path))
        except OSError:
            continue
    return removed


@contextlib.contextmanager
def temporaries_swept(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Around a run that writes into ``folder``: whatever happens (Ctrl-C included), the temporary files of
    atomic writes begun during it are gone afterwards (see :func:`sweep_temporaries`)."""
    since = time.time()
    try:
        yield
    finally:
        sweep_temporaries(folder, since=since)


# Smallest side of an image any command analyses: the smallest crop identify searches
# (camforensics.core.cropsearch.MIN_CROP_SIDE; a test keeps the two equal).
MIN_IMAGE_SIDE = 64


def require_analysable(shape: tuple[int, ...], path: str | os.PathLike[str]) -> None:
    """Refuse an image too small to carry a usable sensor pattern (a side under :data:`MIN_IMAGE_SIDE` pixels,
    which also covers degenerate strips such as 4000x8), as identify refuses it."""
    from camforensics.errors import InputError

    h, w = int(shape[0]), int(shape[1])
    if min(h, w) < MIN_IMAGE_SIDE:
        raise InputError(
            f"{path}: image of {w}x{h} has a side under {MIN_IMAGE_SIDE} pixels: too small to carry a usable sensor "
            "pattern (identify refuses it too); nothing written"
        )

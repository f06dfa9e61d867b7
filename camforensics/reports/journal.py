"""The result journal: a run's results streamed to disk as they come, so memory stays flat and a run can resume.

A journal is a jsonl file beside the report (``REPORT.partial.jsonl``). Its first line is a header with the
command and every parameter; each further line is one result with the size and modification time its input had::

    {"record": "journal", "schema": "camforensics-journal", "version": 1, "command": "identify", "parameters": {...}}
    {"record": "session", "started": "...", "n_resumed": 0}
    {"record": "result", "stamp": {"size": 123, "mtime_ns": 456}, "result": {...}, "extras": {...}}

Lines are flushed and fsync'd every :data:`FSYNC_EVERY` results (and at the end), so a crash or Ctrl-C loses at
most those. A resumed run appends a new ``session`` line, then one line per input in input order (results of
finished inputs are copied from the earlier sessions), so the final report reads the last session from start to
end. Only successful results are reused; failed inputs are tried again.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from camforensics.errors import CamforensicsError
from camforensics.reports.escape import escape_text, escape_tree

JOURNAL_SCHEMA = "camforensics-journal"
JOURNAL_VERSION = 1
JOURNAL_SUFFIX = ".partial.jsonl"
FSYNC_EVERY = 64  # results between fsyncs: a crash loses at most these
FSYNC_SECONDS = 2.0  # ... or at most this much work


def journal_path_for(report: str | os.PathLike[str]) -> Path:
    """Where the journal of the report at ``report`` lives: ``REPORT.partial.jsonl`` beside it."""
    p = Path(report)
    return p.with_name(p.name + JOURNAL_SUFFIX)


def input_stamp(path: str | os.PathLike[str]) -> dict[str, int] | None:
    """Size and modification time of an input (what says it is unchanged since a result was made); None if gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def _dotted(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _dotted(v, f"{prefix}{k}.")
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): value}


def parameter_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted names of the parameters that differ (``match.threshold: 60.0 -> 40.0``)."""
    a, b = _dotted(old), _dotted(new)
    return [f"{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


class Journal:
    """Append-only result journal of one run (see the module docstring).

    Parameters
    ----------
    path : path-like
        The journal file.
    command : str
    parameters : mapping
        JSON-safe parameters of the run; a resumed run must have the same.
    resume : bool, keyword-only
        Reuse an existing journal at ``path``; otherwise any existing file is replaced by a fresh one.

    Raises
    ------
    CamforensicsError
        On resume: the journal is missing, not a journal, of another command, or its parameters differ (the
        message lists which).
    """

    def __init__(self, path: str | os.PathLike[str], *, command: str, parameters: Mapping[str, Any], resume: bool = False) -> None:
        self.path = Path(path)
        self.command = command
        self.parameters = escape_tree(json.loads(json.dumps(parameters)))  # names that are not UTF-8 escaped
        self._done: dict[str, tuple[int, int, int]] = {}  # path -> (line offset, size, mtime_ns) of its last ok result
        self.n_resumed = 0
        self._unsynced = 0
        self._last_sync = time.monotonic()
        if resume:
            self._load()
            self._fh = open(self.path, "ab")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "wb")
            header = {"record": "journal", "schema": JOURNAL_SCHEMA, "version": JOURNAL_VERSION, "command": command,
                      "parameters": self.parameters}
            self._write(header)
        # Flushed at interpreter exit even if never closed (a run stopped by a fatal error): the program ends without
        # finalising objects (camforensics.runtime.leave), where an unclosed file's buffer would be lost.
        weakref.finalize(self, _flush_quietly, self._fh)
        self.session_start = self._fh.tell()
        self._write({"record": "session", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        self.sync()
        self._reader: Any = None  # opened on the first reuse

    # -------------------------------------------------------------------------------------------- resume
    def _load(self) -> None:
        if not self.path.is_file():
            raise CamforensicsError(
                f"nothing to resume: {self.path} does not exist (give the same --report as the interrupted run, "
                "or run without --resume)"
            )
        good_end = 0
        with open(self.path, "rb") as f:
            first = f.readline()
            try:
                head = json.loads(first)
            except ValueError:
                head = None
            if not isinstance(head, dict) or head.get("schema") != JOURNAL_SCHEMA:
                raise CamforensicsError(f"{self.path} is not a camforensics journal; remove it or run without --resume")
            if head.get("command") != self.command:
                raise CamforensicsError(
                    f"{self.path} is the journal of a {head.get('command')!r} run, not {self.command!r}; "
                    "give another --report or run without --resume"
                )
            diff = parameter_differences(head.get("parameters", {}), self.parameters)
            if diff:
                raise CamforensicsError(
                    f"cannot resume {self.path}: the parameters differ from the interrupted run's ({'; '.join(diff)}); "
                    "run with the same options, or without --resume to start again"
                )
            good_end = f.tell()
            while True:
                offset = f.tell()
                line = f.readline()
                if not line:
                    break
                try:
                    rec = json.loads(line)
                except ValueError:
                    break  # a line cut by the interruption: everything after it is dropped
                if not line.endswith(b"\n"):
                    break
                good_end = f.tell()
                if rec.get("record") != "result":
                    continue
                path = rec["result"]["input"]["path"]
                stamp = rec.get("stamp") or {}
                if rec["result"].get("status") == "ok" and stamp:
                    self._done[path] = (offset, int(stamp["size"]), int(stamp["mtime_ns"]))
                else:
                    self._done.pop(path, None)
        if good_end < self.path.stat().st_size:
            with open(self.path, "r+b") as f:
                f.truncate(good_end)

    def can_reuse(self, path: str | os.PathLike[str]) -> bool:
        """True when an earlier session finished ``path`` successfully, the file is unchanged since, and every
        file that result lists under ``outputs`` (e.g. extract's residual files) still exists."""
        done = self._done.get(escape_text(str(path)))  # results record names escaped (reports.escape)
        if done is None:
            return False
        stamp = input_stamp(path)
        if stamp is None or (stamp["size"], stamp["mtime_ns"]) != done[1:]:
            return False
        outputs = self.reuse(path)[0].get("outputs")
        return not isinstance(outputs, Mapping) or all(Path(str(p)).is_file() for p in outputs.values())

    def reuse(self, path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
        """(result, extras, stamp) of the earlier session's result for ``path`` (check :meth:`can_reuse` first)."""
        offset = self._done[escape_text(str(path))][0]
        if self._reader is None:
            self._reader = open(self.path, "rb")
        self._reader.seek(offset)
        rec = json.loads(self._reader.readline())
        return rec["result"], rec.get("extras") or {}, rec["stamp"]

    # -------------------------------------------------------------------------------------------- writing
    def _write(self, obj: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n")

    def append(self, result: Mapping[str, Any], *, stamp: Mapping[str, int] | None, extras: Mapping[str, Any] | None = None) -> None:
        """Add one (JSON-safe) result; fsync'd in batches."""
        rec: dict[str, Any] = {"record": "result", "stamp": dict(stamp) if stamp else None, "result": result}
        if extras:
            rec["extras"] = extras
        self._write(rec)
        self._unsynced += 1
        if self._unsynced >= FSYNC_EVERY or time.monotonic() - self._last_sync > FSYNC_SECONDS:
            self.sync()

    def sync(self) -> None:
        """Flush and fsync what was appended."""
        if self._fh.closed:
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def results(self) -> Iterator[dict[str, Any]]:
        """The results of this session, in the order they were appended (read from disk, one at a time)."""
        self.sync()
        with open(self.path, "rb") as f:
            f.seek(self.session_start)
            for line in f:
                rec = json.loads(line)
                if rec.get("record") == "result":
                    yield rec["result"]

    def close(self) -> None:
        """Flush, fsync and close (idempotent); the results stay readable with :meth:`results`."""
        self.sync()
        self._fh.close()
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def discard(self) -> None:
        """Close and delete the journal (after the final report was written)."""
        self.close()
        self.path.unlink(missing_ok=True)


def _flush_quietly(fh: Any) -> None:
    """Flush ``fh`` unless it is closed."""
    try:
        if not fh.closed:
            fh.flush()
    except (OSError, ValueError):
        pass

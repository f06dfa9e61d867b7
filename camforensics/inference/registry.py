"""The model registry: one manifest from model name to file, sha256, task, classes and input contract.

A model is loaded only through :meth:`ModelRegistry.load`, which reads the file's bytes once, checks their sha256
against the manifest, and builds the onnxruntime session from those same bytes. Nothing is ever inferred from the
graph: classes, preprocessor, value range and the decision threshold come from the manifest (STYLE.md item 4).

Where models live: ``$CAMFORENSICS_MODELS`` when set, else the ``models/`` folder shipped beside the package.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camforensics.errors import ModelError, ParameterError
from camforensics.inference.manifest import EntryViews
from camforensics.reports.atomic import atomic_write_text

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "camforensics.models"
MANIFEST_VERSION = 1
MODELS_ENV = "CAMFORENSICS_MODELS"
TASKS: tuple[str, ...] = (
    "camera-model-attribution",
    "same-device-verification",
    "anonymization",
    "targeted-anonymization",
    "trace-erasing",
)
TASK_NOUNS: dict[str, str] = {
    "camera-model-attribution": "camera-model attributor",
    "same-device-verification": "same-device verifier",
    "anonymization": "anonymizer",
    "targeted-anonymization": "targeted camera-model anonymizer",
    "trace-erasing": "camera-trace eraser",
}


def onnxruntime_device(device: str) -> str:
    """The onnxruntime device for a command's ``--device`` (``cuda:N`` of the torch backend -> ``cuda``)."""
    return "cuda" if device.startswith("cuda") else device


def default_models_dir() -> Path:
    """``$CAMFORENSICS_MODELS``, else the repository's / distribution's ``models/`` folder."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class ModelEntry(EntryViews):
    """One manifest entry (the whole entry is kept in :attr:`meta`)."""

    name: str
    path: Path  # the .onnx file
    sha256: str  # of the file's bytes
    task: str
    classes: tuple[str, ...]
    preprocessor: str
    patch_size: int
    value_range: tuple[float, float]
    meta: dict[str, Any] = field(repr=False, compare=False, hash=False)

    @classmethod
    def from_manifest(cls, name: str, entry: dict[str, Any], root: Path) -> ModelEntry:
        try:
            inp = entry["input"]
            return cls(
                name=name,
                path=root / entry["file"],
                sha256=str(entry["sha256"]).lower(),
                task=str(entry["task"]),
                classes=tuple(entry.get("classes", ())),
                preprocessor=str(entry["preprocessor"]),
                patch_size=int(inp["patch_size"]),
                value_range=(float(inp["value_range"][0]), float(inp["value_range"][1])),
                meta=entry,
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(
                f"manifest entry {name!r} is incomplete or malformed ({type(exc).__name__}: {exc})"
            ) from None

    @property
    def training_data(self) -> dict[str, Any]:
        """What the model was trained on (``training.data``: data set name, split, ...); empty when not recorded."""
        return (self.meta.get("training") or {}).get("data") or {}

    def summary(self) -> dict[str, Any]:
        """Name, file, sha256 and what a report needs to reproduce a decision."""
        return {
            "name": self.name,
            "file": self.path.name,
            "sha256": self.sha256,
            "task": self.task,
            "preprocessor": self.preprocessor,
            "classes": list(self.classes),
        }


@dataclass(frozen=True)
class LoadedModel:
    """A verified model and its onnxruntime session."""

    entry: ModelEntry
    session: Any  # onnxruntime.InferenceSession
    providers: tuple[str, ...]  # the providers actually attached

    def run(self, batch) -> Any:
        """Run the graph on one input batch; returns the first output."""
        name = self.session.get_inputs()[0].name
        return self.session.run(None, {name: batch})[0]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ModelRegistry:
    """The models of one folder, as its ``manifest.json`` lists them."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_models_dir()
        self.manifest_path = self.root / MANIFEST_NAME
        self._manifest = self._read()

    def _read(self) -> dict[str, Any]:
        if not self.manifest_path.is_file():
            return {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "models": {}, "defaults": {}}
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{self.manifest_path}: unreadable model manifest ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise ModelError(f"{self.manifest_path}: not a camforensics model manifest")
        if int(data.get("version", 0)) > MANIFEST_VERSION:
            raise ModelError(
                f"{self.manifest_path}: manifest version {data.get('version')} is newer than this camforensics "
                f"understands ({MANIFEST_VERSION}); upgrade camforensics"
            )
        data.setdefault("models", {})
        data.setdefault("defaults", {})
        return data

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._manifest["models"]))

    def entries(self) -> list[ModelEntry]:
        return [self.entry(n) for n in self.names]

    def _available(self) -> str:
        return ", ".join(self.names) if self.names else f"none (no models in {self.root})"

    def entry(self, name: str) -> ModelEntry:
        """The manifest entry of ``name``; an unknown name is refused with the list of available models."""
        models = self._manifest["models"]
        if name not in models:
            raise ModelError(f"unknown model {name!r}; available: {self._available()}")
        return ModelEntry.from_manifest(name, models[name], self.root)

    def default(self, task: str) -> str | None:
        """Name of the default model of ``task`` (None when the manifest names none)."""
        name = self._manifest["defaults"].get(task)
        return name if name in self._manifest["models"] else None

    def resolve(self, name: str | None, task: str) -> ModelEntry | None:
        """The entry a command should run for ``task``: ``name``, else the task's default, else None.

        Raises
        ------
        ModelError
            ``name`` is unknown (the available models are listed).
        ParameterError
            ``name`` is a model of another task (the user named the wrong one).
        """
        chosen = name or self.default(task)
        if chosen is None:
            return None
        entry = self.entry(chosen)
        if entry.task != task:
            raise ParameterError(
                f"model {chosen!r} is a {TASK_NOUNS.get(entry.task, entry.task)}, not a "
                f"{TASK_NOUNS.get(task, task)} (see 'camforensics models list')"
            )
        return entry

    def read_verified(self, name: str) -> tuple[ModelEntry, bytes]:
        """The entry and the file's bytes, after checking them against the manifest's sha256.

        Raises
        ------
        ModelError
            Unknown name, missing file, or a sha256 that differs from the manifest (tampered or replaced file).
        """
        entry = self.entry(name)
        try:
            data = entry.path.read_bytes()
        except OSError as exc:
            raise ModelError(f"model {name!r}: cannot read {entry.path} ({exc.strerror or exc})") from None
        digest = sha256_bytes(data)
        if digest != entry.sha256:
            raise ModelError(
                f"model {name!r}: {entry.path.name} has sha256 {digest[:16]}..., the manifest says "
                f"{entry.sha256[:16]}...; the file was modified or replaced, refusing to load it "
                f"(available: {self._available()})"
            )
        return entry, data

    def verify(self, name: str) -> ModelEntry:
        """Check one model's file against the manifest (see :meth:`read_verified`)."""
        return self.read_verified(name)[0]

    def load(self, name: str, *, device: str = "auto", threads: int = 0) -> LoadedModel:
        """A verified model with its session (:func:`camforensics.inference.session.new_session`)."""
        from camforensics.inference.session import new_session

        entry, data = self.read_verified(name)
        try:
            session = new_session(data, device=device, threads=threads)
        except ModelError as exc:
            raise ModelError(f"model {name!r} ({entry.path}): {exc}") from None
        return LoadedModel(entry, session, tuple(session.get_providers()))

    def register(self, name: str, entry: dict[str, Any], *, default_for: str | None = None) -> None:
        """Add or replace ``name`` in the manifest (written atomically); optionally make it a task's default."""
        if not name or any(c in name for c in "/\\") or name.startswith("."):
            raise ModelError(f"invalid model name {name!r}: use letters, digits, '-', '_' and '.'")
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        # Two exports into one folder at once must not drop each other's entry: lock, re-read, update, write.
        with open(self.root / ".manifest.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._manifest = self._read()
            self._manifest["models"][name] = entry
            if default_for:
                self._manifest["defaults"][default_for] = name
            self._manifest["models"] = dict(sorted(self._manifest["models"].items()))
            atomic_write_text(self.manifest_path, json.dumps(self._manifest, indent=2, ensure_ascii=False) + "\n")

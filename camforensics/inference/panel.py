"""A panel of camera-model attributors judged together: the mean of the members' image log-probabilities.

The members (e.g. HP, CC and RGB preprocessors, the same network) see the same decision patches of an image (the
preprocessing is inside each graph) and make partly independent errors: the HP and CC residual filters suppress
scene content, the RGB member does not. The panel's image score per class is the mean over members of each
member's mean patch log-probability; its open-set threshold is calibrated on the members' common validation split
(never on test photos) and stored in the manifest's ``panels`` section with the panel's own metrics.

A panel entry (``manifest.json`` -> ``panels`` -> name)::

    {"task": "camera-model-attribution", "members": {"attributor-hp": "<sha256>", ...}, "classes": [...],
     "decision": {"patches_per_image": 64, "window": 1024, "open_set": {"threshold": ...}, ...},
     "metrics": {...}, "description": "..."}

Loading checks every member's file against the sha256 the panel was calibrated with, so a member replaced later
cannot silently change the panel's decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camforensics.errors import ModelError
from camforensics.inference.manifest import EntryViews
from camforensics.inference.registry import LoadedModel, ModelRegistry

TASK = "camera-model-attribution"
PANELS_KEY = "panels"
DEFAULT_PANEL_KEY = "camera-model-attribution-panel"  # manifest "defaults": the panel identify uses by default


@dataclass(frozen=True)
class PanelEntry(EntryViews):
    """A panel's manifest entry."""

    name: str
    members: dict[str, str]  # member name -> sha256 the panel was calibrated with
    classes: tuple[str, ...]
    meta: dict[str, Any] = field(repr=False, compare=False, hash=False)

    @property
    def task(self) -> str:
        return TASK

    @property
    def sha256(self) -> str:
        """A digest of the members' digests (what a report records for the panel)."""
        import hashlib

        text = ";".join(f"{n}:{s}" for n, s in sorted(self.members.items()))
        return hashlib.sha256(text.encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": None,
            "sha256": self.sha256,
            "task": TASK,
            "preprocessor": "+".join(sorted(self.members)),
            "classes": list(self.classes),
            "members": dict(self.members),
        }


@dataclass(frozen=True)
class LoadedPanel:
    """A verified panel: its entry and each member's session."""

    entry: PanelEntry
    members: tuple[LoadedModel, ...]

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(sorted({p for m in self.members for p in m.providers}))


def panel_names(registry: ModelRegistry) -> tuple[str, ...]:
    return tuple(sorted(registry._manifest.get(PANELS_KEY, {})))  # noqa: SLF001 - the panels share its manifest


def default_panel(registry: ModelRegistry) -> str | None:
    name = registry._manifest.get("defaults", {}).get(DEFAULT_PANEL_KEY)  # noqa: SLF001
    return name if name in panel_names(registry) else None


def panel_entry(registry: ModelRegistry, name: str) -> PanelEntry:
    """The panel ``name`` of the registry's manifest.

    Raises
    ------
    ModelError
        No such panel, a malformed entry, a member that is not registered, or members whose classes differ.
    """
    panels = registry._manifest.get(PANELS_KEY, {})  # noqa: SLF001
    if name not in panels:
        raise ModelError(f"unknown panel {name!r}; panels: {', '.join(panels) or 'none'}")
    raw = panels[name]
    try:
        members = {str(k): str(v).lower() for k, v in raw["members"].items()}
        classes = tuple(raw["classes"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"panel entry {name!r} is malformed ({type(exc).__name__}: {exc})") from None
    if len(members) < 1:
        raise ModelError(f"panel {name!r} has no members")
    for member in members:
        e = registry.entry(member)
        if e.task != TASK:
            raise ModelError(f"panel {name!r}: member {member!r} is a {e.task} model, not an attributor")
        if tuple(e.classes) != classes:
            raise ModelError(f"panel {name!r}: member {member!r} has other classes than the panel; rebuild the panel")
    return PanelEntry(name, members, classes, raw)


def load_panel(registry: ModelRegistry, name: str, *, device: str = "auto", threads: int = 0) -> LoadedPanel:
    """Load every member, each checked against its own manifest sha256 and the one the panel was calibrated with."""
    entry = panel_entry(registry, name)
    loaded = []
    for member, digest in entry.members.items():
        _check_calibrated(name, member, registry.entry(member).sha256, digest)
        loaded.append(registry.load(member, device=device, threads=threads))
    return LoadedPanel(entry, tuple(loaded))


def verify_panel(registry: ModelRegistry, name: str) -> PanelEntry:
    """Check every member's file against its manifest sha256 and the one the panel was calibrated with, without a
    session (what a command refuses before it reads any image; :func:`load_panel` checks the same when loading)."""
    entry = panel_entry(registry, name)
    for member, digest in entry.members.items():
        _check_calibrated(name, member, registry.verify(member).sha256, digest)
    return entry


def _check_calibrated(name: str, member: str, sha256: str, calibrated: str) -> None:
    """Refuse a member whose manifest sha256 is not the one the panel was calibrated with."""
    if sha256 != calibrated:
        raise ModelError(
            f"panel {name!r}: member {member!r} changed since the panel was calibrated (sha256 "
            f"{sha256[:16]}... vs {calibrated[:16]}...); rebuild the panel (models/build.sh)"
        )


def register_panel(
    registry: ModelRegistry, name: str, entry: dict[str, Any], *, default: bool = False
) -> None:
    """Add or replace a panel in the manifest (written atomically under the registry's lock)."""
    import fcntl
    import json

    from camforensics.reports.atomic import atomic_write_text

    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ModelError(f"invalid panel name {name!r}")
    if name in registry.names:
        raise ModelError(f"{name!r} is already a model's name; give the panel another")
    root = Path(registry.root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        registry._manifest = registry._read()  # noqa: SLF001
        panels = registry._manifest.setdefault(PANELS_KEY, {})  # noqa: SLF001
        panels[name] = entry
        if default:
            registry._manifest["defaults"][DEFAULT_PANEL_KEY] = name  # noqa: SLF001
        atomic_write_text(
            registry.manifest_path, json.dumps(registry._manifest, indent=2, ensure_ascii=False) + "\n"  # noqa: SLF001
        )

"""Which camera-model attributor identify runs (the registry's default panel, a named model or panel), checked
before any image is read. Light on imports: a one-photo identify checks the model, then starts decoding its photo
while it imports the rest of its pipeline."""

from __future__ import annotations

import os
from dataclasses import dataclass

from camforensics.errors import ParameterError
from camforensics.inference.attribution import TASK as TASK_ATTRIBUTION
from camforensics.inference.attribution import AttributionParams
from camforensics.inference.panel import LoadedPanel, default_panel, load_panel, panel_entry, panel_names, verify_panel
from camforensics.inference.registry import LoadedModel, ModelRegistry, onnxruntime_device


@dataclass(frozen=True)
class ModelChoice:
    """Which camera-model attributor identify runs beside PRNU, and how (picklable: workers load it themselves)."""

    name: str  # registry name
    models_dir: str  # registry folder, as the workers see it
    params: AttributionParams = AttributionParams()
    device: str = "auto"  # onnxruntime device: auto, cpu, cuda
    threads: int = 0  # onnxruntime intra-op threads (0 = all cores; 1 in each process-pool worker)
    panel: bool = False  # ``name`` is a panel of attributors (camforensics.inference.panel)

    def verify(self) -> None:
        """Check the model's file (a panel's every member) against its sha256 without building a session: identify
        refuses a changed model before it reads any image; :meth:`load` checks them again as it loads."""
        registry = ModelRegistry(self.models_dir)
        if self.panel:
            verify_panel(registry, self.name)
        else:
            registry.verify(self.name)

    def load(self) -> LoadedModel | LoadedPanel:
        registry = ModelRegistry(self.models_dir)
        if self.panel:
            return load_panel(registry, self.name, device=self.device, threads=self.threads)
        return registry.load(self.name, device=self.device, threads=self.threads)


def model_choice(
    name: str | None,
    models_dir: str | os.PathLike[str] | None,
    *,
    patches: int | None = None,
    top_k: int = 3,
    threads: int = 0,
    device: str = "auto",
    required: bool = False,
) -> ModelChoice | None:
    """The attributor identify should run: ``name`` (a model or a panel), else the registry's default panel, else
    its default model (None when it has neither and ``required`` is false).

    Raises
    ------
    ModelError
        Unknown ``name`` (the message lists the available models).
    ParameterError
        ``name`` is a model of another task, or ``required`` and no model is named or registered as default.
    """
    registry = ModelRegistry(models_dir)
    params = AttributionParams(n_patches=patches, top_k=top_k)
    panel = name if name in panel_names(registry) else (default_panel(registry) if name is None else None)
    if panel is not None:
        panel_entry(registry, panel)  # a malformed panel or missing member is refused here, before any image
        return ModelChoice(panel, str(registry.root), params, onnxruntime_device(device), threads, panel=True)
    entry = registry.resolve(name, TASK_ATTRIBUTION)
    if entry is None:
        if required:
            raise ParameterError(
                f"no fingerprint library (--library) and no default camera-model attributor in {registry.root}; "
                f"name one with --model (available: {', '.join(registry.names) or 'none'})"
            )
        return None
    return ModelChoice(entry.name, str(registry.root), params, onnxruntime_device(device), threads)

"""The bounded refinement of a transplant (``anonymize --method transplant --refine NAMES``): a transfer-friendly
targeted attack (:mod:`camforensics.training.transfer`) against an ensemble of surrogate attributors.

The surrogates are torch checkpoints listed in ``models/surrogates/manifest.json`` (format
``camforensics.surrogates``): name, file, sha256, classes, preprocessor, architecture, seed and the training
command of each, every entry marked ``"role": "surrogate"``. They are never judges: ``evaluate anonymization``
refuses a judge trained with the same recipe (preprocessor, architecture, width and seed) as a surrogate.
torch is imported only when a refinement is loaded or run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.params import (
    REFINE_COVER,
    REFINE_DIH4,
    REFINE_DOMAIN,
    REFINE_EPSILON,
    REFINE_FUSE,
    REFINE_GHOST,
    REFINE_ITERATIONS,
    REFINE_LOSS,
    REFINE_MOMENTUM,
    REFINE_PATCHES,
    REFINE_PSNR,
    REFINE_STEP,
)
from camforensics.errors import CamforensicsError, InputError, ParameterError

SURROGATES_DIR = Path(__file__).resolve().parents[3] / "models" / "surrogates"
FORMAT = "camforensics.surrogates"
TORCH_MISSING = 'the --refine step needs torch: pip install "camforensics[train]"'


@dataclass(frozen=True)
class SurrogateRef:
    name: str
    path: str  # absolute
    sha256: str
    classes: tuple[str, ...]
    recipe: tuple[str, str, int, int]  # preprocessor, architecture, width, seed
    weight: float = 1.0  # its weight in the default ensemble (``--refine surrogates``; 0: only when named)


def read_surrogates(folder: str | os.PathLike[str] | None = None) -> list[SurrogateRef]:
    """The surrogate entries of ``folder/manifest.json`` (default: the shipped ``models/surrogates``); [] when none.

    Raises
    ------
    InputError
        A manifest that is not a surrogate manifest.
    """
    root = Path(folder) if folder is not None else SURROGATES_DIR
    man = root / "manifest.json"
    if not man.is_file():
        return []
    try:
        doc = json.loads(man.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{man}: unreadable surrogate manifest ({exc})") from None
    if doc.get("format") != FORMAT:
        raise InputError(f"{man}: not a surrogate manifest (format {doc.get('format')!r})")
    out = []
    for name, e in sorted(doc.get("surrogates", {}).items()):
        if e.get("role") != "surrogate":
            raise InputError(f"{man}: entry {name!r} is not marked \"role\": \"surrogate\"")
        t = e.get("training", {})
        recipe = (str(t.get("preprocessor")), str(t.get("architecture")), int(t.get("width", 0)), int(t.get("seed", -1)))
        weight = float(e.get("ensemble_weight", 1.0))
        if not weight >= 0:
            raise InputError(f"{man}: entry {name!r} has ensemble_weight {weight!r}; give a weight >= 0")
        out.append(SurrogateRef(name, str((root / e["file"]).resolve()), e["sha256"], tuple(e["classes"]), recipe, weight))
    return out


def judge_recipe(entry: Any) -> tuple[str, str, int, int] | None:
    """(preprocessor, architecture, width, seed) of a judge's manifest entry, from its training record."""
    t = (getattr(entry, "meta", None) or {}).get("training") or {}
    cfg = t.get("config") or {} if isinstance(t, dict) else {}
    if not cfg:
        return None
    return (str(cfg.get("preprocessor")), str(cfg.get("architecture")), int(cfg.get("width", 0)), int(cfg.get("seed", t.get("seed", -1))))


DEFAULT_EPSILON, DEFAULT_ITERATIONS, DEFAULT_PSNR_FLOOR = REFINE_EPSILON, REFINE_ITERATIONS, REFINE_PSNR


@dataclass(frozen=True)
class RefineOptions:
    """The refinement's surrogates and budget (written into the report); checks itself."""

    surrogates: tuple[SurrogateRef, ...]
    epsilon: float = DEFAULT_EPSILON  # L_inf budget around the transplant, grey levels
    iterations: int = DEFAULT_ITERATIONS
    momentum: float = REFINE_MOMENTUM
    window: int = 1024  # centred window attacked (0: the whole image)
    seed: int = 0
    threads: int = 0  # torch CPU threads (0: torch's default)
    psnr_floor: float | None = DEFAULT_PSNR_FLOOR  # the saved window's PSNR against the photo stays >= this
    loss: str = REFINE_LOSS  # judge (the judges' rule: mean patch log-probability margin), ce, margin or logit
    patches_per_step: int = REFINE_PATCHES  # random covered patches each surrogate reads per step (0: all)
    dih4: bool = REFINE_DIH4  # random flips / quarter turns of the patches (input diversity)
    shift: int = 0  # random grid shifts in multiples of this (0: the attributors' own grid only)
    ti: int = 0  # translation-invariant gradient smoothing width (0: none)
    cover: int = REFINE_COVER  # attack only this many best-scored grid patches of the window (0: all)
    norm: str = "linf"  # linf: sign steps; l2: gradient steps (the PSNR floor is an L2 bound)
    step: float | None = REFINE_STEP  # grey levels per step, at most epsilon (None: the attack's rule from epsilon and iterations)
    domain: str = REFINE_DOMAIN  # pixels: steps on the pixels (BPDA through the save); dct: on the saved file's coefficients
    weights: tuple[float, ...] | None = None  # each surrogate's weight in the step (None: 1 each)
    fuse: str = REFINE_FUSE  # gradients: normalised per surrogate and summed; logits: one margin on their mean
    ghost: float = REFINE_GHOST  # ghost networks: dropout rate after every ReLU of the surrogates, per step (0: off)

    def __post_init__(self) -> None:
        if not self.surrogates:
            raise ParameterError("--refine needs at least one surrogate")
        if not 0 < self.epsilon <= 16:
            raise ParameterError(f"--refine-epsilon must lie in (0, 16] grey levels, got {self.epsilon!r}")
        if not 1 <= self.iterations <= 200:
            raise ParameterError(f"--refine-iterations must lie in 1..200, got {self.iterations!r}")
        if self.window < 0:
            raise ParameterError(f"the refinement window must be >= 0, got {self.window}")
        if self.step is not None and not self.step > 0:
            raise ParameterError(f"the refinement step must be > 0 grey levels, got {self.step!r}")
        if self.domain not in ("pixels", "dct"):
            raise ParameterError(f"--refine-domain must be pixels or dct, got {self.domain!r}")
        if self.weights is not None and (len(self.weights) != len(self.surrogates) or not all(w > 0 for w in self.weights)):
            raise ParameterError(f"give one weight > 0 per surrogate ({len(self.surrogates)}), got {list(self.weights)}")
        if self.fuse not in ("gradients", "logits"):
            raise ParameterError(f"the refinement's ensemble fusion must be gradients or logits, got {self.fuse!r}")
        if not 0.0 <= self.ghost < 1.0:
            raise ParameterError(f"the ghost-network dropout rate must lie in [0, 1), got {self.ghost!r}")
        if self.psnr_floor is not None and not 20 <= self.psnr_floor <= 60:
            raise ParameterError(f"--refine-psnr must lie in [20, 60] dB, got {self.psnr_floor!r}")

    def load(self) -> list[Any]:
        try:
            import torch

            from camforensics.training.adversarial import load_surrogate
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] == "torch":
                raise CamforensicsError(TORCH_MISSING) from None
            raise
        if self.threads:
            torch.set_num_threads(self.threads)
        loaded = []
        for ref in self.surrogates:
            s = load_surrogate(ref.path)
            if s.sha256 != ref.sha256:
                raise InputError(f"{ref.path}: surrogate {ref.name} has sha256 {s.sha256}, its manifest says {ref.sha256}")
            loaded.append(s)
        return loaded

    def attack(
        self, pixels: np.ndarray, surrogates: list[Any], target: str, *, reference: np.ndarray | None = None,
        jpeg: Any = None, tables: Any = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """The refined image and its record; ``reference`` is the photo before the transplant (for the PSNR floor),
        ``jpeg`` the encoder-decoder of the output (the attack reads the surrogates on the saved pixels) and
        ``tables`` its quantization tables and subsampling (the DCT domain steps on their lattice)."""
        from camforensics.training.transfer import transfer_attack

        out, record = transfer_attack(pixels, surrogates, target=target, epsilon=self.epsilon, iterations=self.iterations,
                                      momentum=self.momentum, window=self.window, seed=self.seed, loss=self.loss,
                                      patches_per_step=self.patches_per_step, ti=self.ti, cover=self.cover,
                                      psnr_floor=self.psnr_floor, reference=reference, jpeg=jpeg, shift=self.shift,
                                      dih4=self.dih4, norm=self.norm, domain=self.domain if jpeg is not None else "pixels",
                                      tables=tables, weights=self.weights, fuse=self.fuse, ghost=self.ghost,
                                      step=None if self.step is None else min(self.step, self.epsilon))  # fmt: skip
        names = {r.sha256: r.name for r in self.surrogates}
        for s in record["surrogates"]:
            s["name"] = names.get(s["sha256"])
        return out, record

    def to_dict(self) -> dict[str, Any]:
        return {
            "surrogates": [{"name": r.name, "sha256": r.sha256, "preprocessor": r.recipe[0], "architecture": r.recipe[1],
                            "seed": r.recipe[3], "weight": 1.0 if self.weights is None else self.weights[i]}
                           for i, r in enumerate(self.surrogates)],  # fmt: skip
            "epsilon": self.epsilon,
            "iterations": self.iterations,
            "momentum": self.momentum,
            "step": self.step,
            "window": self.window,
            "seed": self.seed,
            "psnr_floor": self.psnr_floor,
            "loss": self.loss,
            "patches_per_step": self.patches_per_step,
            "dih4": self.dih4,
            "shift": self.shift,
            "ti": self.ti,
            "cover": self.cover,
            "step_norm": self.norm,
            "domain": self.domain,
            "fuse": self.fuse,
            "ghost": self.ghost,
            "norm": "L_inf around the transplant, grey levels, and the PSNR floor of the saved window against the photo",
        }


def refine_options(
    spec: str, folder: str | os.PathLike[str] | None = None, *, epsilon: float = DEFAULT_EPSILON,
    iterations: int = DEFAULT_ITERATIONS, window: int = 1024, threads: int = 0,
    psnr_floor: float | None = DEFAULT_PSNR_FLOOR, domain: str = REFINE_DOMAIN,
) -> RefineOptions:
    """The refinement of ``--refine NAME[,NAME]`` (those surrogates, equal weights) or ``--refine surrogates`` (the
    default ensemble: every shipped surrogate whose manifest ``ensemble_weight`` (default 1) is above 0, weighted by it).

    Raises
    ------
    ParameterError
        No surrogate registered, or an unknown name (the known ones are listed).
    """
    known = read_surrogates(None if folder is None or not (Path(folder) / "surrogates").is_dir() else Path(folder) / "surrogates")
    by_name = {r.name: r for r in known}
    weights = None
    if spec.strip().lower() == "surrogates":  # the default ensemble: the surrogates of weight > 0, weighted
        chosen = [r for r in known if r.weight > 0]
        weights = tuple(r.weight for r in chosen) if any(r.weight != 1.0 for r in chosen) else None
    else:
        names = [n.strip() for n in spec.split(",") if n.strip()]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ParameterError(f"unknown surrogate {unknown[0]!r}; known: {', '.join(by_name) or 'none'}")
        chosen = [by_name[n] for n in names]
    if not chosen:
        raise ParameterError("no surrogate attributor is registered (models/surrogates/manifest.json); build them with "
                             "models/build_surrogates.sh")  # fmt: skip
    return RefineOptions(tuple(chosen), float(epsilon), int(iterations), window=window, threads=threads,
                         psnr_floor=psnr_floor, domain=domain, weights=weights)  # fmt: skip

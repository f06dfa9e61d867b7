"""A transfer-friendly targeted attack against an ensemble of surrogate attributors: MI-FGSM (Dong et al. 2018)
with input diversity (Xie et al. 2019), within an L_inf budget, on the centred window of an image.

The surrogates are camera-model attributors of ``camforensics train attributor`` (torch checkpoints, several
preprocessors), trained independently of the judges that later decide (other seeds, preprocessors or
architectures). Loss: the sum over surrogates of the mean cross-entropy of their grid patches against the target
(a surrogate that does not know the target is left out). Each iteration draws one random grid offset per surrogate
(an even shift of the patch grid, which keeps the 2x2 CFA phase; the input diversity of a forensic attack, where
resizing would destroy the traces the attributors read), accumulates the L1-normalised gradient with momentum
``mu``, and steps ``alpha = 1.6 eps / iterations`` against its sign, projected on the eps-ball and 0..255. Only the
centred ``window`` x ``window`` pixels are changed (0: the whole image): the cost stays bounded on a 12-20 MP frame.

References
----------
Y. Dong, F. Liao, T. Pang, H. Su, J. Zhu, X. Hu, J. Li, "Boosting adversarial attacks with momentum", CVPR 2018.
C. Xie, Z. Zhang, Y. Zhou, S. Bai, J. Wang, Z. Ren, A. Yuille, "Improving transferability of adversarial examples
with input diversity", CVPR 2019.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from camforensics.errors import ParameterError
from camforensics.inference.anonymizer import class_key
from camforensics.training.adversarial import Surrogate

BATCH = 64


def _patches(x: torch.Tensor, size: int, dy: int, dx: int) -> torch.Tensor:
    """The whole ``size`` patches of (3, H, W) from offset (dy, dx), as (N, 3, size, size) (differentiable)."""
    _, h, w = x.shape
    gh, gw = (h - dy) // size, (w - dx) // size
    v = x[:, dy : dy + gh * size, dx : dx + gw * size]
    return v.reshape(3, gh, size, gw, size).permute(1, 3, 0, 2, 4).reshape(-1, 3, size, size)


def _target_index(s: Surrogate, target: str) -> int | None:
    keys = [class_key(c) for c in s.classes]
    return keys.index(class_key(target)) if class_key(target) in keys else None


@torch.no_grad()
def _share(s: Surrogate, x: torch.Tensor, label: int) -> dict[str, Any]:
    p = _patches(x, s.patch_size, 0, 0)
    lp = torch.cat([s.net(p[i : i + BATCH]) for i in range(0, len(p), BATCH)])
    return {"image_top1": s.classes[int(lp.mean(0).argmax())], "patch_share_target": float((lp.argmax(1) == label).float().mean())}


def transfer_attack(
    pixels: np.ndarray,
    surrogates: list[Surrogate],
    *,
    target: str,
    epsilon: float,
    iterations: int = 10,
    momentum: float = 1.0,
    window: int = 1024,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The attacked uint8 RGB image (``|out - in| <= round(epsilon)`` inside the window, unchanged outside) and a
    record of the surrogates' verdicts on the window before and after.

    Raises
    ------
    ParameterError
        No surrogate knows ``target``, epsilon outside (0, 255], iterations < 1, a grey or too small image.
    """
    if not 0 < epsilon <= 255:
        raise ParameterError(f"--epsilon must lie in (0, 255] grey levels, got {epsilon!r}")
    if iterations < 1:
        raise ParameterError(f"the refinement needs at least 1 iteration, got {iterations!r}")
    if pixels.ndim != 3 or pixels.dtype != np.uint8:
        raise ParameterError("the refinement takes 8-bit RGB images")
    used = [(s, i) for s in surrogates if (i := _target_index(s, target)) is not None]
    if not used:
        known = sorted({c for s in surrogates for c in s.classes})
        raise ParameterError(f"no surrogate knows the target {target!r}; they know: {', '.join(known)}")
    h, w = pixels.shape[:2]
    side_h = min(h, window) if window else h
    side_w = min(w, window) if window else w
    top, left = ((h - side_h) // 2) & ~7, ((w - side_w) // 2) & ~7
    size = max(s.patch_size for s, _ in used)
    if min(side_h, side_w) < size:
        raise ParameterError(f"image of {w}x{h} pixels is smaller than one {size}x{size} surrogate patch")
    region = pixels[top : top + side_h, left : left + side_w]
    x0 = torch.from_numpy(np.ascontiguousarray(region.transpose(2, 0, 1)).astype(np.float32))
    eps = float(epsilon)
    low, high = (x0 - eps).clamp(min=0.0), (x0 + eps).clamp(max=255.0)
    alpha = 1.6 * eps / iterations
    gen = torch.Generator().manual_seed(int(seed))
    before = {s.path: _share(s, x0, i) for s, i in used}
    x = x0.clone()
    g = torch.zeros_like(x0)
    for _ in range(int(iterations)):
        x.requires_grad_(True)
        grad = torch.zeros_like(x0)
        for s, label in used:
            ps = s.patch_size
            dy, dx = (2 * int(v) for v in torch.randint(0, ps // 2, (2,), generator=gen))
            p = _patches(x, ps, dy, dx)
            n = len(p)
            for j in range(0, n, BATCH):
                loss = -s.net(p[j : j + BATCH])[:, label].sum() / n
                (gj,) = torch.autograd.grad(loss, x, retain_graph=j + BATCH < n)
                grad += gj
        x = x.detach()
        g = momentum * g + grad / grad.abs().mean().clamp(min=1e-12)
        x = torch.minimum(torch.maximum(x - alpha * g.sign(), low), high)
    q = np.clip(np.rint(x.numpy()), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    out = pixels.copy()
    out[top : top + side_h, left : left + side_w] = q
    xq = torch.from_numpy(np.ascontiguousarray(q.transpose(2, 0, 1)).astype(np.float32))
    after = {s.path: _share(s, xq, i) for s, i in used}
    record = {
        "attack": "MI-FGSM + input diversity (random even grid offsets), ensemble of surrogates",
        "target": target,
        "epsilon": eps,
        "iterations": int(iterations),
        "momentum": float(momentum),
        "step": alpha,
        "window": [int(top), int(left), int(side_h), int(side_w)],
        "surrogates": [{"sha256": s.sha256, "preprocessor": s.preprocessor, "architecture": s.architecture,
                        "before": before[s.path], "after": after[s.path]} for s, _ in used],  # fmt: skip
        "left_out": [s.sha256 for s in surrogates if _target_index(s, target) is None],
    }
    return out, record


def ship_surrogate(checkpoint: str, out_dir: str, name: str, *, command: str, classes: list[str] | None = None) -> dict[str, Any]:
    """Write a surrogate's weights (no optimiser state) to ``out_dir/NAME.pt`` and its entry, marked
    ``"role": "surrogate"``, into ``out_dir/manifest.json``; ``classes`` renames the outputs (same order), e.g. to a
    data-set manifest's spelling. Returns the entry."""
    import json
    from pathlib import Path

    from camforensics.io.hashing import sha256_file
    from camforensics.training.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint)
    if state.get("kind") != "attributor":
        raise ParameterError(f"{checkpoint}: not an attributor checkpoint")
    names = list(classes) if classes is not None else list(state["classes"])
    if len(names) != len(state["classes"]):
        raise ParameterError(f"{len(names)} class names for {len(state['classes'])} outputs")
    keep = {k: state[k] for k in ("format", "version", "kind", "config", "model", "epoch", "provenance") if k in state}
    keep["classes"] = names
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(keep, out / f"{name}.pt")
    cfg = dict(state["config"])
    entry = {
        "file": f"{name}.pt",
        "sha256": sha256_file(out / f"{name}.pt"),
        "role": "surrogate",
        "task": "camera-model-attribution",
        "classes": names,
        "format": "camforensics torch checkpoint (weights only)",
        "training": {"command": command, "preprocessor": cfg.get("preprocessor"), "architecture": cfg.get("architecture"),
                     "width": cfg.get("width"), "seed": cfg.get("seed"), "epoch": state.get("epoch"),
                     "best_val_image_accuracy": state.get("best_val_image_accuracy")},
        "note": "a surrogate of the transfer refinement: never a judge (evaluate anonymization refuses a judge "
                "trained with the same preprocessor, architecture, width and seed)",
    }  # fmt: skip
    man = out / "manifest.json"
    doc = json.loads(man.read_text(encoding="utf-8")) if man.is_file() else {"format": "camforensics.surrogates", "version": 1, "surrogates": {}}
    doc["surrogates"][name] = entry
    man.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return entry

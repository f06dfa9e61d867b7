"""Train a small learned refiner of a crop's query signal (SPN-CNN style, Kirchner & Johnson 2019) on real-dev only.

    OMP_NUM_THREADS=1 nice -n 10 python bench/train_spn_refiner.py --data ../shared/data --minutes 26 --steps 1000 \
        --val-device vivo_iQOO-U1x_1 -o runs/spn/refiner.pt

Training images: the flat-enrolled real-dev devices' flat fields (the first 12 of each) and the natural-enrolled
ones' enrolment photos (2/3 of their natural photos, never a query of the benches); real-models is never seen.
Each image's target is its device's fingerprint estimated from the *other* images (leave-one-out), so the image's
own noise is not in it. Input: the image's grey intensities (0..1) and the engine's scene-weighted query signal
``S0 = W I / local_scale(W, 15)`` (normalised to unit standard deviation); output ``S = S0 + g(grey, S0)`` (the
last layer starts at zero: the refiner starts as the engine). Loss: the signed squared normalised correlation of
``S`` with the target on random 96-pixel patches (the PCE's peak squared over the signal's energy), maximised.
``--val-device``: a device left out of training whose patches give the validation loss.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_natural_enroll import files_of

from camforensics.core.fingerprint import FingerprintAccumulator
from camforensics.core.residual import extract_residual, local_scale, to_grey
from camforensics.io.images import load_image


class Refiner(torch.nn.Module):
    """``S0 + g([grey, S0])``: ``depth`` 3x3 convolutions of ``width`` channels with ReLU, the last one zero at start."""

    def __init__(self, width: int = 24, depth: int = 4) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = [torch.nn.Conv2d(2, width, 3, padding=1), torch.nn.ReLU()]
        for _ in range(depth - 2):
            layers += [torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.ReLU()]
        last = torch.nn.Conv2d(width, 1, 3, padding=1)
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
        self.body = torch.nn.Sequential(*layers, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 1:2] + self.body(x)


def inputs(grey: np.ndarray, s0: np.ndarray) -> tuple[np.ndarray, float]:
    sd = float(s0.std()) or 1.0
    return np.stack([np.asarray(grey, np.float32) / 255.0, (s0 / sd).astype(np.float32)]), sd


def refine(net: Refiner, crop: np.ndarray, query) -> np.ndarray:
    """The refined scene-weighted signal of a crop's :class:`camforensics.core.matching.Query` (same scale as S0)."""
    x, sd = inputs(to_grey(crop), query.scene_weighted(15))
    with torch.no_grad():
        return net(torch.from_numpy(x)[None])[0, 0].numpy().astype(np.float32) * np.float32(sd)


def training_items(data: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, str]]:
    """(grey 0..1, normalised S0, normalised leave-one-out fingerprint, device) of every training image."""
    items = []
    for dev in sorted(p for p in (data / "real-dev").iterdir() if p.is_dir()):
        flat, nat = files_of(dev / "flat"), files_of(dev / "nat")
        src = flat[:12] if flat else [f for i, f in enumerate(nat) if i % 3 != 2]
        acc = FingerprintAccumulator()
        terms = [acc.terms_of(load_image(f).pixels) for f in src]
        for t in terms:
            acc.add_terms(t)
        num, den = acc.sums()
        for f, (noise, weights) in zip(src, terms):
            rest_num = [a - np.asarray(n, np.float32) * w for a, n, w in zip(num, noise, weights)]
            rest_den = [a - np.asarray(w, np.float32) ** 2 for a, w in zip(den, weights)]
            k = FingerprintAccumulator.from_sums(rest_num, rest_den, acc.n_images - 1, params=acc.params).finish().k
            px = load_image(f).pixels
            w = extract_residual(px)
            grey = to_grey(px)
            x, _ = inputs(grey, w * grey / local_scale(w, 15))
            items.append((x[0], x[1], (k / k.std()).astype(np.float32), dev.name))
        print(dev.name, len(src), file=sys.stderr, flush=True)
    return items


def batch(items, n: int, side: int, rng) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ks = [], []
    for _ in range(n):
        g, s, k, _ = items[rng.integers(len(items))]
        y, x = rng.integers(0, g.shape[0] - side), rng.integers(0, g.shape[1] - side)
        xs.append(np.stack([g[y : y + side, x : x + side], s[y : y + side, x : x + side]]))
        ks.append(k[y : y + side, x : x + side])
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ks))[:, None]


def loss_of(out: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    o = out - out.mean((2, 3), keepdim=True)
    kk = k - k.mean((2, 3), keepdim=True)
    c = (o * kk).sum((2, 3)) / torch.sqrt((o * o).sum((2, 3)) * (kk * kk).sum((2, 3)) + 1e-12)
    return -(c.sign() * c * c).mean() * 1e4


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--minutes", type=float, default=26.0, help="wall-clock budget, data preparation included")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: at the time budget only)")
    ap.add_argument("--val-device", default="vivo_iQOO-U1x_1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    t0 = time.time()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    items = training_items(args.data)
    train = [it for it in items if it[3] != args.val_device]
    val = [it for it in items if it[3] == args.val_device]
    net = Refiner()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    rng = np.random.default_rng(args.seed)
    vx, vk = batch(val, 64, 128, np.random.default_rng(args.seed + 1))
    with torch.no_grad():
        identity = loss_of(vx[:, 1:2], vk).item()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    step = 0
    while time.time() - t0 < args.minutes * 60 and not (args.steps and step >= args.steps):
        x, k = batch(train, 16, 96, rng)
        loss = loss_of(net(x), k)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 200 == 0:
            with torch.no_grad():
                v = loss_of(net(vx), vk).item()
            print(f"step {step} train {loss.item():.3f} val {v:.3f} (engine's signal {identity:.3f}) "
                  f"{time.time() - t0:.0f} s", file=sys.stderr, flush=True)
            torch.save(net.state_dict(), args.out)
    torch.save(net.state_dict(), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

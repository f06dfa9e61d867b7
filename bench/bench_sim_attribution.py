"""Are simulated camera models separable? A simple, device-disjoint camera-model attributor.

Features per image (no learning beyond a centroid): high-pass residual statistics that camera pipelines leave
behind: per-channel residual energy ratios, inter-channel residual correlations (demosaicing, chroma
denoising), residual energy on the four 2x2 CFA sub-lattices (CFA pattern and interpolation), 8x8 JPEG
blockiness of luma and chroma, and chroma-to-luma residual ratio. Classifier: nearest centroid on z-scored
features, trained on the devices with index 0 of each model and tested on the other devices (index >= 1) of the
same models, so no test device is seen in training.

Run from the repository root:  python bench/bench_sim_attribution.py [--models 4] [--size 512] [--nat 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # use this checkout's camforensics

import numpy as np


def _highpass(channel: np.ndarray) -> np.ndarray:
    """Residual of a 3x3 mean filter (float32)."""
    import cv2

    return channel - cv2.blur(channel, (3, 3))


def _blockiness(channel: np.ndarray) -> tuple[float, float]:
    """Mean |difference| across 8x8 block boundaries over the mean elsewhere, horizontally and vertically."""
    dx = np.abs(np.diff(channel, axis=1))
    dy = np.abs(np.diff(channel, axis=0))
    on_x = dx[:, 7::8].mean() / max(dx.mean(), 1e-6)
    on_y = dy[7::8, :].mean() / max(dy.mean(), 1e-6)
    return float(on_x), float(on_y)


def model_features(rgb: np.ndarray) -> np.ndarray:
    """Feature vector of one uint8 HxWx3 RGB image (see the module docstring)."""
    import cv2

    img = rgb.astype(np.float32)
    res = [_highpass(np.ascontiguousarray(img[:, :, c])) for c in range(3)]
    std = [float(r.std()) + 1e-6 for r in res]
    feats = [np.log(std[0] / std[1]), np.log(std[2] / std[1])]
    for a, b in ((0, 1), (2, 1), (0, 2)):
        feats.append(float(np.corrcoef(res[a].ravel(), res[b].ravel())[0, 1]))
    for r in res:
        lattice = np.array([float(np.mean(r[dy::2, dx::2] ** 2)) for dy in (0, 1) for dx in (0, 1)])
        feats.extend(np.log(lattice / lattice.mean()))
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    for c in range(3):
        feats.extend(_blockiness(ycc[:, :, c]))
    luma_res = _highpass(np.ascontiguousarray(ycc[:, :, 0])).std() + 1e-6
    for c in (1, 2):
        feats.append(float(np.log(_highpass(np.ascontiguousarray(ycc[:, :, c])).std() / luma_res + 1e-6)))
    return np.asarray(feats, dtype=np.float64)


def nearest_centroid_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> tuple[float, np.ndarray]:
    """Fit class centroids on z-scored training features; return test accuracy and the predictions."""
    mu, sd = train_x.mean(axis=0), train_x.std(axis=0) + 1e-9
    classes = np.unique(train_y)
    centroids = np.stack([((train_x[train_y == c] - mu) / sd).mean(axis=0) for c in classes])
    z = (test_x - mu) / sd
    pred = classes[np.argmin(((z[:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)]
    return float(np.mean(pred == test_y)), pred


def evaluate(rows: list[dict], root: Path, *, contents: tuple[str, ...] = ("nat",)) -> dict:
    """Device-disjoint attribution accuracy on a simulated corpus (train: device index 0, test: index >= 1)."""
    from PIL import Image

    xs, ys, test = [], [], []
    for r in rows:
        if r["content"] not in contents:
            continue
        rgb = np.asarray(Image.open(root / r["file"]).convert("RGB"))
        xs.append(model_features(rgb))
        ys.append(r["model"])
        test.append(not r["device"].endswith("_0"))
    x, y, is_test = np.asarray(xs), np.asarray(ys), np.asarray(test)
    acc, pred = nearest_centroid_accuracy(x[~is_test], y[~is_test], x[is_test], y[is_test])
    return {"accuracy": acc, "n_train": int((~is_test).sum()), "n_test": int(is_test.sum()), "n_features": x.shape[1],
            "chance": 1.0 / len(np.unique(y)), "confusions": sorted({(a, b) for a, b in zip(y[is_test], pred) if a != b})}


def main() -> None:
    from camforensics.sim import SimulationSpec, simulate_corpus

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--nat", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    spec = SimulationSpec(n_models=args.models, n_devices=2 * args.models, n_flat=0, n_nat=args.nat,
                          width=args.size, height=args.size, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rows = simulate_corpus(tmp, spec)
        t_sim = time.perf_counter() - t0
        result = evaluate(rows, Path(tmp))
    print(f"spec: {spec}  (simulated in {t_sim:.1f} s)")
    print(f"device-disjoint model attribution, nearest centroid on {result['n_features']} residual features: "
          f"accuracy {result['accuracy']:.3f} on {result['n_test']} test images "
          f"({result['n_train']} training images; chance {result['chance']:.3f})")
    if result["confusions"]:
        print(f"confused (true -> predicted): {result['confusions']}")


if __name__ == "__main__":
    main()

"""Pictures an examiner looks at, drawn with matplotlib (Agg backend, imported only when a picture is drawn).

Every picture is titled with the file name it shows and the first 12 hex digits of that file's sha256, so a
printed figure can be tied back to its evidence. Non-ASCII names render (DejaVu Sans, matplotlib's own font).

- :func:`residual_figure`: a noise residual or fingerprint, contrast-stretched (1st-99th percentile), colour bar.
- :func:`spectrum_figure`: its 2-D spectrum in dB with frequency axes (cycles/pixel), JPEG (multiples of 1/8)
  and CFA (1/2) peak positions marked.
- :func:`mean_spectra_figure`: per camera model, the mean residual spectrum, side by side (style analysis as in
  cameraGAN, Li et al.).
- :func:`delta_figure`: an anonymization's change, amplified, and its spectrum (as in Cama's figures).
- :func:`roc_figure`, :func:`confusion_figure`: evaluation plots.
- :func:`bars_figure`: scores of candidates against a threshold (the HTML case report).

Each returns PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DPI = 100
TITLE_HASH_DIGITS = 12


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def title_of(name: str, sha256: str | None) -> str:
    """``name (sha256 0123456789ab)``: the file a picture shows, and its hash prefix."""
    safe = name.encode("utf-8", "backslashreplace").decode("utf-8")  # names that are not UTF-8 as \xHH
    safe = safe.replace("$", r"\$")  # mathtext would read $...$
    return f"{safe} (sha256 {sha256[:TITLE_HASH_DIGITS]})" if sha256 else safe


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _stretch(a: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(a[:: max(1, a.shape[0] // 512), :: max(1, a.shape[1] // 512)], [1, 99])
    m = max(abs(float(lo)), abs(float(hi)), 1e-12)
    return -m, m


def _small(a: np.ndarray, side: int = 1024) -> np.ndarray:
    """A view of ``a`` decimated to about ``side`` pixels (drawing every pixel of 12 MP gains nothing)."""
    step = max(1, int(np.ceil(max(a.shape[:2]) / side)))
    return a[::step, ::step]


def residual_figure(w: np.ndarray, *, name: str, sha256: str | None, what: str = "noise residual") -> bytes:
    """A residual (or fingerprint) contrast-stretched to its 1st-99th percentile, symmetric around 0, with a
    colour bar; the centre 256x256 pixels beside it at full resolution (the pattern itself is pixel-scale)."""
    plt = _plt()
    a = np.asarray(w, dtype=np.float32)
    lo, hi = _stretch(a)
    h, wd = a.shape
    c = a[max(0, h // 2 - 128) : h // 2 + 128, max(0, wd // 2 - 128) : wd // 2 + 128]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), gridspec_kw={"width_ratios": [wd / max(h, 1), 1]})
    im = axes[0].imshow(_small(a), cmap="gray", vmin=lo, vmax=hi, extent=(0, wd, h, 0))
    axes[0].set_title(f"{what}, {wd}x{h} (1st-99th percentile)")
    axes[0].set_xlabel("x (pixels)")
    axes[0].set_ylabel("y (pixels)")
    axes[1].imshow(c, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    axes[1].set_title("centre 256x256, every pixel")
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.85, label="residual value (0..255 scale)")
    fig.suptitle(title_of(name, sha256))
    return _png(fig)


def spectrum_db(w: np.ndarray, *, side: int = 512) -> np.ndarray:
    """Mean power spectrum in dB of the ``side`` x ``side`` tiles of ``w`` (Welch-style, zero frequency centred):
    periodic artefacts (JPEG 8x8 blocks, colour filter array) stand out of the averaged noise floor."""
    a = np.asarray(w, dtype=np.float32)
    side = min(side, a.shape[0], a.shape[1])
    acc = np.zeros((side, side), dtype=np.float64)
    n = 0
    for y in range(0, a.shape[0] - side + 1, side):
        for x in range(0, a.shape[1] - side + 1, side):
            t = a[y : y + side, x : x + side]
            acc += np.abs(np.fft.fft2(t - t.mean())) ** 2
            n += 1
            if n >= 48:
                break
        if n >= 48:
            break
    p = np.fft.fftshift(acc / max(n, 1))
    return 10.0 * np.log10(p + 1e-12)


def _spectrum_axes(ax: Any, db: np.ndarray, *, marks: bool, title: str, floor: float | None = None) -> Any:
    side = db.shape[0]
    floor = float(np.median(db)) if floor is None else floor
    im = ax.imshow(db, cmap="magma", vmin=floor - 8, vmax=floor + 22, extent=(-0.5, 0.5, 0.5, -0.5))
    ax.set_xlabel("horizontal frequency (cycles/pixel)")
    ax.set_ylabel("vertical frequency (cycles/pixel)")
    ax.set_title(title)
    if marks:
        for k in range(-4, 5):
            f = k / 8
            if k:
                ax.axvline(f, color="cyan", lw=0.5, ls=":", alpha=0.7)
                ax.axhline(f, color="cyan", lw=0.5, ls=":", alpha=0.7)
        for fy, fx in ((0.5, 0.0), (0.0, 0.5), (0.5, 0.5)):
            for sy in (-1, 1):
                ax.plot([sx * fx for sx in (-1, 1)], [sy * fy] * 2, "o", mfc="none", mec="lime", ms=10)
        ax.plot([], [], ls=":", color="cyan", label="JPEG: multiples of 1/8")
        ax.plot([], [], "o", mfc="none", mec="lime", label="CFA: 1/2")
        ax.legend(loc="lower left", fontsize=7, framealpha=0.6)
    del side
    return im


def spectrum_figure(w: np.ndarray, *, name: str, sha256: str | None, what: str = "noise residual") -> bytes:
    """The residual's mean power spectrum in dB (zero frequency centred), JPEG and CFA peak positions marked."""
    plt = _plt()
    db = spectrum_db(w)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = _spectrum_axes(ax, db, marks=True, title=f"{what}: power spectrum")
    fig.colorbar(im, ax=ax, label="power (dB)")
    fig.suptitle(title_of(name, sha256))
    return _png(fig)


def mean_spectra_figure(spectra: Mapping[str, np.ndarray], *, title: str) -> bytes:
    """Per camera model its mean residual spectrum in dB (see :func:`spectrum_db`), side by side."""
    plt = _plt()
    n = len(spectra)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 4.6 * rows), squeeze=False, layout="constrained")
    im = None
    floor = float(np.median([np.median(db) for db in spectra.values()]))  # one colour scale: comparable panels
    for i, (ax, (model, db)) in enumerate(zip(axes.ravel(), spectra.items())):
        import textwrap

        im = _spectrum_axes(ax, db, marks=False, title="\n".join(textwrap.wrap(model, 28)), floor=floor)
        ax.title.set_fontsize(9)
        if i % cols:
            ax.set_ylabel("")
        if i < n - cols:
            ax.set_xlabel("")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.8, label="power (dB)")
    fig.suptitle(title)
    return _png(fig)


def delta_figure(before: np.ndarray, after: np.ndarray, *, name: str, sha256: str | None, gain: float = 20.0) -> bytes:
    """What an anonymization changed: ``gain`` x (after - before) around grey, and the change's spectrum."""
    plt = _plt()
    a = np.asarray(before, dtype=np.float32)
    b = np.asarray(after, dtype=np.float32)
    d = (b - a).mean(axis=2) if b.ndim == 3 else b - a
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    im0 = axes[0].imshow(_small(np.clip(128 + gain * d, 0, 255)), cmap="gray", vmin=0, vmax=255)
    axes[0].set_title(f"change x{gain:g} (grey = unchanged)")
    fig.colorbar(im0, ax=axes[0], shrink=0.8, label=f"128 + {gain:g} x change")
    im1 = _spectrum_axes(axes[1], spectrum_db(d), marks=True, title="spectrum of the change")
    fig.colorbar(im1, ax=axes[1], shrink=0.8, label="power (dB)")
    fig.suptitle(title_of(name, sha256))
    return _png(fig)


def roc_figure(curves: Mapping[str, tuple[Sequence[float], Sequence[float], float]], *, title: str) -> bytes:
    """ROC curves ``{label: (fpr, tpr, auc)}``, false-positive rate on a log axis where it matters."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for label, (fpr, tpr, area) in curves.items():
        ax.step(fpr, tpr, where="post", label=f"{label} (AUC {area:.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=0.8, label="chance")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    return _png(fig)


def confusion_figure(matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], *, title: str) -> bytes:
    """A confusion matrix, each row normalised to its true class, counts in the cells."""
    plt = _plt()
    m = np.asarray(matrix, dtype=np.float64)
    frac = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(cols), 1.0 + 0.5 * len(rows)))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), labels=list(cols), rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), labels=list(rows), fontsize=7)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=6,
                        color="white" if frac[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class")
    ax.set_title(title)
    return _png(fig)


def bars_figure(values: Mapping[str, float], *, threshold: float | None, name: str, sha256: str | None, xlabel: str) -> bytes:
    """Horizontal bars (log scale when they span decades) of candidate scores, the threshold as a red line."""
    plt = _plt()
    labels = list(values)[:10]
    v = [max(float(values[k]), 1e-3) for k in labels]
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.35 * len(labels)))
    ax.barh(range(len(labels)), v, color=["#2a7" if threshold is not None and x > threshold else "#888" for x in v])
    ax.set_yticks(range(len(labels)), labels=[title_of(k, None) for k in labels], fontsize=8)
    ax.invert_yaxis()
    if max(v) / max(min(v), 1e-3) > 100:
        ax.set_xscale("log")
    if threshold is not None:
        ax.axvline(threshold, color="red", lw=1, label=f"threshold {threshold:g}")
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title_of(name, sha256), fontsize=9)
    return _png(fig)

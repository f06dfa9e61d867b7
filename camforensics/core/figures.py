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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

DPI = 100
TITLE_HASH_DIGITS = 12


def _figure(figsize: tuple[float, float], layout: str | None = "constrained") -> Any:
    """A matplotlib Figure on its own Agg canvas (the object API: no pyplot, no global figure registry, nothing
    to close), laid out by the constrained layout (titles, colour bars) unless ``layout`` is None (the caller
    places the axes: one draw instead of the layout's passes), so saving needs no second "tight" pass."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


_prefetching: list[Any] = []


def prefetch() -> None:
    """Import matplotlib in a background thread, so that a command that will draw pictures has it ready when its
    image work (native code, numpy, OpenCV: the GIL let go) is done. Safe to call more than once."""
    import sys
    import threading

    if _prefetching or "matplotlib.figure" in sys.modules:
        return

    def load() -> None:
        try:
            import_for_drawing()
        except Exception:  # noqa: BLE001 (the drawing itself reports a broken matplotlib)
            pass

    thread = threading.Thread(target=load, name="camforensics-prefetch-matplotlib", daemon=True)
    _prefetching.append(thread)
    thread.start()


def import_for_drawing(*, drawing_process: bool = False) -> None:
    """Import what a command's pictures need, for a command that only draws them (its drawing process, or its read
    ahead of matplotlib: :func:`prefetch`).

    matplotlib gives every Artist class a ``set()`` docstring listing its properties, built as the class is
    created (``matplotlib.artist.kwdoc``: about 0.1 s of matplotlib's 0.37 s of import CPU, spent on documentation
    nobody reads in a command). Where matplotlib is not imported yet, that docstring is left short; the pictures
    are the same (``tests/test_forked.py``). A library user's own ``import matplotlib`` is not touched.

    ``drawing_process``: this process only draws 2-D pictures (the helper a one-photo command forked for them,
    :func:`prepare_drawing`), so matplotlib's 3-D projection is left out where matplotlib is not imported yet
    (:func:`_projections_without_3d`: 0.02-0.03 s of CPU). (A lazy ``fontTools.agl``, 0.016 s, was measured and left
    out: Python 3.11's import statement reads a lazy module's ``__spec__``, which loads it at once.)"""
    import sys

    skip = drawing_process and "matplotlib" not in sys.modules
    if "matplotlib.artist" not in sys.modules:
        from matplotlib import artist

        if callable(getattr(artist, "kwdoc", None)):
            artist.kwdoc = lambda _: "Properties: see matplotlib's documentation of this artist."
    if skip:
        _projections_without_3d()
    import matplotlib.colorbar  # noqa: F401 (the colour bars)
    from matplotlib import figure  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401


def _projections_without_3d() -> None:
    """Import ``matplotlib.projections`` without ``mpl_toolkits.mplot3d`` (0.02 s of CPU), which it imports to
    register the "3d" projection: a stand-in without ``Axes3D`` answers for the duration of that import (matplotlib
    then registers the 2-D projections only, as where mplot3d is missing) and is removed afterwards. For a process
    that only draws this module's 2-D pictures, after ``matplotlib.artist`` and before the rest of matplotlib."""
    import sys
    import types

    if "mpl_toolkits.mplot3d" in sys.modules or "matplotlib.projections" in sys.modules:
        return
    stand_in = types.ModuleType("mpl_toolkits.mplot3d", "stand-in: no 3-D projection in a drawing process")
    stand_in.Axes3D = None  # type: ignore[attr-defined]
    sys.modules["mpl_toolkits.mplot3d"] = stand_in
    try:
        import matplotlib.projections  # noqa: F401
    finally:
        if sys.modules.get("mpl_toolkits.mplot3d") is stand_in:
            del sys.modules["mpl_toolkits.mplot3d"]


DRAWING_HELPER = "camforensics.core.figures"


@contextmanager
def drawing_process_started(wanted: bool = True) -> Iterator[bool]:
    """With ``wanted``, fork the process that will draw this command's pictures
    (:func:`camforensics.runtime.forked.start`): it imports matplotlib on the second core while this process reads
    the photo and computes its residual, and the pictures are then drawn there (:func:`drawing_process`). For a
    one-photo command, before it starts threads; yields False where it could not fork (the pictures are then drawn
    here). On leaving, the process is closed if nothing claimed it.

    A process the program forked for it before reading its command line
    (:func:`camforensics.cli.early.start_early`) is kept where ``wanted``, and ended (killed: it has no call to
    finish) where not."""
    from camforensics.runtime import forked

    if not wanted:
        forked.discard(DRAWING_HELPER)
    started = wanted and (forked.started(DRAWING_HELPER) or forked.start(DRAWING_HELPER, prepare=prepare_drawing) is not None)
    try:
        yield started
    finally:
        if started:
            forked.discard(DRAWING_HELPER)


def prepare_drawing() -> None:
    """What the drawing process does while it waits: import matplotlib, build both figures' frames (not drawn:
    a first draw before the data took 0.2 s of CPU, beside the residual, to save 0.05 s after it)."""
    import_for_drawing(drawing_process=True)
    prepare_spectrum_figure(draw=False)
    prepare_residual_figure(draw=False)


def drawing_process() -> Any:
    """The process :func:`drawing_process_started` forked in this process (once: the caller closes it), or None."""
    from camforensics.runtime import forked

    return forked.claim(DRAWING_HELPER)


def title_of(name: str, sha256: str | None) -> str:
    """``name (sha256 0123456789ab)``: the file a picture shows, and its hash prefix."""
    safe = name.encode("utf-8", "backslashreplace").decode("utf-8")  # names that are not UTF-8 as \xHH
    safe = safe.replace("$", r"\$")  # mathtext would read $...$
    return f"{safe} (sha256 {sha256[:TITLE_HASH_DIGITS]})" if sha256 else safe


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # zlib level 1: a noise picture barely compresses, and level 6 took longer than drawing it
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def _stretch(a: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(a[:: max(1, a.shape[0] // 512), :: max(1, a.shape[1] // 512)], [1, 99])
    m = max(abs(float(lo)), abs(float(hi)), 1e-12)
    return -m, m


def _small(a: np.ndarray, side: int = 640) -> np.ndarray:
    """A view of ``a`` decimated to about ``side`` pixels (drawing every pixel of 12 MP gains nothing)."""
    step = max(1, int(np.ceil(max(a.shape[:2]) / side)))
    return a[::step, ::step]


@dataclass(frozen=True, eq=False)
class ResidualView:
    """What :func:`residual_figure` draws of a residual: small enough to hand to another process."""

    small: np.ndarray  # the residual decimated to about 640 pixels
    centre: np.ndarray  # its centre 256x256 pixels at full resolution
    lo: float  # colour scale (1st-99th percentile, symmetric around 0)
    hi: float
    shape: tuple[int, int]  # the residual's height and width


def residual_view(w: np.ndarray) -> ResidualView:
    """The parts of ``w`` that :func:`draw_residual` shows (copies: they do not keep ``w`` alive)."""
    a = np.asarray(w, dtype=np.float32)
    lo, hi = _stretch(a)
    h, wd = a.shape
    c = a[max(0, h // 2 - 128) : h // 2 + 128, max(0, wd // 2 - 128) : wd // 2 + 128]
    return ResidualView(np.ascontiguousarray(_small(a)), c.copy(), lo, hi, (h, wd))


def residual_figure(w: np.ndarray, *, name: str, sha256: str | None, what: str = "noise residual") -> bytes:
    """A residual (or fingerprint) contrast-stretched to its 1st-99th percentile, symmetric around 0, with a
    colour bar; the centre 256x256 pixels beside it at full resolution (the pattern itself is pixel-scale)."""
    return draw_residual(residual_view(w), name=name, sha256=sha256, what=what)


def draw_residual(view: ResidualView, *, name: str, sha256: str | None, what: str = "noise residual") -> bytes:
    """:func:`residual_figure` of the :func:`residual_view` of a residual (drawn on the figure
    :func:`prepare_residual_figure` built beforehand where there is one: the same pixels)."""
    h, wd = view.shape
    fig, axes, images, cax = _RESIDUAL_BLANKS.pop(what, None) or _residual_blank(what)
    for image, data, extent in ((images[0], view.small, (0, wd, h, 0)), (images[1], view.centre, None)):
        image.set_data(data)
        image.set_extent(extent or (-0.5, data.shape[1] - 0.5, data.shape[0] - 0.5, -0.5))  # imshow's default
        image.set_clim(view.lo, view.hi)
    axes[0].set_title(f"{what}, {wd}x{h} (1st-99th percentile)")
    fig.colorbar(images[0], cax=cax, label="residual value (0..255 scale)")
    fig.suptitle(title_of(name, sha256), y=0.97)
    return _png(fig)


_RESIDUAL_BLANKS: dict[str, tuple[Any, Any, Any, Any]] = {}


def _residual_blank(what: str) -> tuple[Any, Any, Any, Any]:
    """:func:`draw_residual`'s figure before its data: the two axes and their labels, empty images, the colour
    bar's axes (axes placed by hand, in figure fractions: one draw, no layout passes)."""
    fig = _figure((11, 4.8), layout=None)
    axes = [fig.add_axes((0.06, 0.11, 0.50, 0.74)), fig.add_axes((0.60, 0.11, 0.26, 0.74))]
    blank = np.zeros((1, 1), np.float32)
    images = [axes[0].imshow(blank, cmap="gray", extent=(0, 1, 1, 0))]
    axes[0].set_title(f"{what}, ? (1st-99th percentile)")
    axes[0].set_xlabel("x (pixels)")
    axes[0].set_ylabel("y (pixels)")
    images.append(axes[1].imshow(blank, cmap="gray", interpolation="nearest"))
    axes[1].set_title("centre 256x256, every pixel")
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    return fig, axes, images, fig.add_axes((0.89, 0.11, 0.015, 0.74))


def prepare_residual_figure(what: str = "noise residual", *, draw: bool = True) -> None:
    """Build the next :func:`draw_residual` of ``what`` before its data is known, and with ``draw`` draw it once (as
    :func:`prepare_spectrum_figure`)."""
    blank = _residual_blank(what)
    if draw:
        blank[0].canvas.draw()
    _RESIDUAL_BLANKS[what] = blank


# Tiles of :func:`spectrum_db` transformed together: their copies, spectra and powers (about 10 MB for tiles of
# 512) are reused for the next group, not fresh memory for all of them at once (about 150 MB for a 12 MP residual,
# paid for in page faults where the heap had not held that much before: 0.21 -> 0.08-0.13 s of CPU in a fresh
# process, 0.08-0.095 -> 0.067 s after the residual's own arrays were freed).
_SPECTRUM_TILES_AT_ONCE = 4


def spectrum_db(w: np.ndarray, *, side: int = 512) -> np.ndarray:
    """Mean power spectrum in dB of the ``side`` x ``side`` tiles of ``w`` (Welch-style, at most 48 tiles, row by
    row; zero frequency centred): periodic artefacts (JPEG 8x8 blocks, colour filter array) stand out of the
    averaged noise floor.

    The tiles are transformed a few at a time by one real FFT (float32, every core), their powers summed in float64
    tile after tile; the other half plane is the mirror image of the half computed (``P(-u, -v) = P(u, v)`` for a
    real tile).
    """
    from camforensics.runtime import fft

    a = np.asarray(w, dtype=np.float32)
    side = min(side, a.shape[0], a.shape[1])
    ny, nx = a.shape[0] // side, a.shape[1] // side
    rows = min(ny, -(-48 // nx))
    n_tiles = min(rows * nx, 48)  # row by row
    power = None
    tiles = np.empty((min(_SPECTRUM_TILES_AT_ONCE, n_tiles), side, side), np.float32)
    for t0 in range(0, n_tiles, len(tiles)):
        group = tiles[: min(len(tiles), n_tiles - t0)]
        for j, t in enumerate(range(t0, t0 + len(group))):  # copies: ``w`` is never centred in place
            y, x = (t // nx) * side, (t % nx) * side
            group[j] = a[y : y + side, x : x + side]
        group -= group.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(np.float32)
        half = fft.rfft2(group, workers=-1)
        p = np.square(half.real)
        p += np.square(half.imag)  # |F|^2 of each tile in float32
        for tile_power in p:  # summed in float64 in tile order
            if power is None:
                power = tile_power.astype(np.float64)
            else:
                power += tile_power
    power /= n_tiles
    full = np.empty((side, side), np.float64)
    nh = power.shape[1]
    full[:, :nh] = power
    u = (-np.arange(side)) % side
    full[:, nh:] = power[u][:, side - np.arange(nh, side)]
    return 10.0 * np.log10(np.fft.fftshift(full) + 1e-12)


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


def spectrum_figure(
    w: np.ndarray | None, *, name: str, sha256: str | None, what: str = "noise residual", db: np.ndarray | None = None
) -> bytes:
    """The residual's mean power spectrum in dB (zero frequency centred), JPEG and CFA peak positions marked
    (``db``: :func:`spectrum_db` of ``w`` already computed, e.g. in a thread while another picture was drawn).

    Drawn on the figure :func:`prepare_spectrum_figure` built beforehand where there is one (the same pixels)."""
    if db is None:
        db = spectrum_db(w)
    fig, im, cax = _SPECTRUM_BLANKS.pop(what, None) or _spectrum_blank(what)
    floor = float(np.median(db))
    im.set_data(db)
    im.set_clim(floor - 8, floor + 22)
    fig.colorbar(im, cax=cax, label="power (dB)")
    fig.suptitle(title_of(name, sha256), y=0.97)
    return _png(fig)


_SPECTRUM_BLANKS: dict[str, tuple[Any, Any, Any]] = {}


def _spectrum_blank(what: str) -> tuple[Any, Any, Any]:
    """:func:`spectrum_figure`'s figure before its data: axes, marks, legend, an empty image, the colour bar's axes."""
    fig = _figure((7, 6), layout=None)
    ax = fig.add_axes((0.13, 0.09, 0.68, 0.78))
    im = _spectrum_axes(ax, np.zeros((2, 2)), marks=True, title=f"{what}: power spectrum", floor=0.0)
    return fig, im, fig.add_axes((0.84, 0.09, 0.03, 0.78))


def prepare_spectrum_figure(what: str = "noise residual", *, draw: bool = True) -> None:
    """Build the next :func:`spectrum_figure` of ``what`` before its data is known (axes, marks, legend: 0.04 s of
    CPU for both figures), and with ``draw`` draw it once (its ticks, labels and legend laid out: then 0.09 s of CPU
    instead of 0.13 s once the data is there, for 0.1 s more before). For a process that waits for the data (the
    drawing process of a one-photo extract, :func:`drawing_process_started`)."""
    blank = _spectrum_blank(what)
    if draw:
        blank[0].canvas.draw()
    _SPECTRUM_BLANKS[what] = blank


def mean_spectra_figure(spectra: Mapping[str, np.ndarray], *, title: str) -> bytes:
    """Per camera model its mean residual spectrum in dB (see :func:`spectrum_db`), side by side."""
    n = len(spectra)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig = _figure((4.4 * cols, 4.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
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
    a = np.asarray(before, dtype=np.float32)
    b = np.asarray(after, dtype=np.float32)
    d = (b - a).mean(axis=2) if b.ndim == 3 else b - a
    fig = _figure((12, 5))
    axes = fig.subplots(1, 2)
    im0 = axes[0].imshow(_small(np.clip(128 + gain * d, 0, 255)), cmap="gray", vmin=0, vmax=255)
    axes[0].set_title(f"change x{gain:g} (grey = unchanged)")
    fig.colorbar(im0, ax=axes[0], shrink=0.8, label=f"128 + {gain:g} x change")
    im1 = _spectrum_axes(axes[1], spectrum_db(d), marks=True, title="spectrum of the change")
    fig.colorbar(im1, ax=axes[1], shrink=0.8, label="power (dB)")
    fig.suptitle(title_of(name, sha256))
    return _png(fig)


def roc_figure(curves: Mapping[str, tuple[Sequence[float], Sequence[float], float]], *, title: str) -> bytes:
    """ROC curves ``{label: (fpr, tpr, auc)}``, false-positive rate on a log axis where it matters."""
    fig = _figure((6.5, 5.5))
    ax = fig.subplots()
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
    m = np.asarray(matrix, dtype=np.float64)
    frac = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig = _figure((1.0 + 0.6 * len(cols), 1.0 + 0.5 * len(rows)))
    ax = fig.subplots()
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
    labels = list(values)[:10]
    v = [max(float(values[k]), 1e-3) for k in labels]
    fig = _figure((7, 0.6 + 0.35 * len(labels)))
    ax = fig.subplots()
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

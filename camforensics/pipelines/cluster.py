"""cluster: which photos of a folder share a sensor, with no reference images (blind PRNU clustering).

Two passes. First, per photo (through the shared executor: in this process, worker processes or Dask, with the
journal for ``--resume``): the residual of a common central crop, turned to landscape when the photo is stored
portrait, L2-normalised and written as one ``.npy`` row into a residual store folder (memory stays flat; on
Dask the store must be on a shared file system). Second, per sensor-size group (photos whose stored size is the
same up to a 90-degree turn): the Gram matrix of the stored rows in blocks (memory-mapped, two blocks of rows
in memory), then :func:`camforensics.core.cluster.cluster_gram`. A portrait photo is compared in both
90-degree rotations (its second variant is its row reversed: a 180-degree turn of the first). With ``enroll``,
each cluster of two or more photos is enrolled into a fingerprint library with the MLE accumulator of
``enroll`` (its images are read again).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.cluster import ClusterParams, between_clusters, central_crop, cluster_gram, fold_variants
from camforensics.core.cluster import PREFILTER_MIN, cluster_row, gram_blocks, multi_photo_clusters, scores_to_clusters
from camforensics.core.cluster_sparse import cluster_prefiltered
from camforensics.core.params import FingerprintParams, ResidualParams
from camforensics.core.residual import extract_residual
from camforensics.errors import CamforensicsError
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.io.safety import require_analysable
from camforensics.pipelines.batch import gather_inputs, run_tasks
from camforensics.pipelines.executor import IN_PROCESS, Execution
from camforensics.reports.journal import Journal
from camforensics.reports.report import Report

STORE_SUFFIX = ".residuals"
MAX_BETWEEN = 20  # closest other clusters listed per cluster in the report
ROW_VERSION = 3  # in the store's file names: rows of an earlier definition are never reused by --resume


def store_for(report: str | os.PathLike[str]) -> Path:
    """The residual store folder beside a report (``REPORT.residuals``)."""
    p = Path(report)
    return p.with_name(p.name + STORE_SUFFIX)


def group_of(width: int, height: int) -> str:
    """Sensor-size group of a stored size: ``LONGxSHORT`` (a portrait photo joins its landscape twins)."""
    return f"{max(width, height)}x{min(width, height)}"


@dataclass(frozen=True)
class ClusterSetup:
    """What a residual worker needs (picklable); the state is the setup itself."""

    residual: ResidualParams
    crop: int
    store: str
    max_pixels: int

    def __call__(self) -> ClusterSetup:
        return self


def residual_one(path: Path, setup: ClusterSetup, record: dict[str, Any]) -> None:
    """Residual of one photo's central crop, landscape, unit-norm, saved in the store (the per-file task)."""
    img = load_image(path, max_pixels=setup.max_pixels)
    record["input"] = img.info.to_dict()
    require_analysable(img.pixels.shape, path)
    h, w = img.pixels.shape[:2]
    portrait = h > w
    # the crop is taken in landscape terms: crop x crop of the long x short sides, then turned back for portrait
    long_side, short_side = min(setup.crop, max(h, w)), min(setup.crop, min(h, w))
    window = central_crop(img.pixels, long_side, short_side) if portrait else central_crop(img.pixels, short_side, long_side)
    res = extract_residual(window, params=setup.residual)
    row = cluster_row(res).reshape(res.shape)
    if portrait:
        res = row = np.rot90(row)  # landscape; the other quarter turn is compared as the reversed row
    vec = np.ascontiguousarray(row).ravel()
    key = hashlib.sha256(f"{img.info.sha256}:{res.shape}:{ROW_VERSION}".encode()).hexdigest()[:32] + ".npy"
    target = Path(setup.store) / key
    tmp = target.with_name(f".{key}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, vec)
    os.replace(tmp, target)
    record["group"] = group_of(w, h)
    record["orientation"] = "portrait" if portrait else ("square" if h == w else "landscape")
    record["crop"] = [int(res.shape[1]), int(res.shape[0])]  # (width, height) of the landscape crop compared
    record["_vector"] = key


@dataclass
class _Photo:
    index: int  # position among the report's results
    path: str  # as the report writes it (undecodable bytes as \\xHH)
    path_hex: str | None  # the exact bytes of a name that is not UTF-8 (as in the report's input)
    file: Path  # the file itself
    sha256: str | None
    vector: Path
    portrait: bool
    crop: tuple[int, int]


def _rows_reader(photos: list[_Photo], variants: list[tuple[int, bool]], d: int) -> Callable[[int, int], np.ndarray]:
    def rows(i0: int, i1: int) -> np.ndarray:
        out = np.empty((i1 - i0, d), np.float32)
        for k, (p, reverse) in enumerate(variants[i0:i1]):
            v = np.load(photos[p].vector, mmap_mode="r")
            out[k] = v[::-1] if reverse else v
        return out

    return rows


def cluster_group(photos: list[_Photo], params: ClusterParams, tick: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Cluster the photos of one sensor-size group; the report's entry for that group."""
    crop = photos[0].crop
    d = crop[0] * crop[1]
    variants = [(p, False) for p in range(len(photos))]
    square = crop[0] == crop[1]
    if not square:  # a portrait photo: both quarter turns (a square crop keeps the stored order)
        variants += [(p, True) for p, ph in enumerate(photos) if ph.portrait]
    n_variants = 2 if len(variants) > len(photos) else 1
    owner = [p for p, _ in variants]
    prefilter = params.prefilter == "on" or (params.prefilter == "auto" and len(photos) > PREFILTER_MIN)
    if prefilter:
        read = _rows_reader(photos, variants, d)
        sparse = cluster_prefiltered(lambda v: read(v, v + 1)[0], owner, len(photos), d, p_fa=params.p_fa,
                                     n_variants=n_variants, block=params.block)
        result, multi, zbetween, zphoto = sparse.clustering, sparse.multi, sparse.between, sparse.to_clusters
    else:
        g = gram_blocks(_rows_reader(photos, variants, d), len(variants), block=params.block, tick=tick)
        g = fold_variants(g, owner, len(photos))
        result = cluster_gram(g, d, p_fa=params.p_fa, n_variants=n_variants)
        multi = multi_photo_clusters(result.labels)
        _, zbetween = between_clusters(g, result.labels, d, multi, result.spreads)  # among clusters of 2+ photos
        _, zphoto = scores_to_clusters(g, result.labels, d, multi, result.spreads)  # a singleton's z to each of them
        del g
    ids = np.unique(result.labels)
    clusters = []
    for k in ids:
        members = np.flatnonzero(result.labels == k)
        row = zbetween[np.searchsorted(multi, k)] if members.size > 1 else zphoto[members[0]]
        row = np.where(multi == k, np.nan, row)
        order = [int(j) for j in np.argsort(-np.nan_to_num(row, nan=-np.inf)) if multi[j] != k][:MAX_BETWEEN]
        clusters.append(
            {
                "cluster": int(k),
                "n_photos": int(members.size),
                "photos": [
                    {
                        "path": photos[i].path,
                        **({"path_hex": photos[i].path_hex} if photos[i].path_hex else {}),
                        "sha256": photos[i].sha256,
                        "z_to_cluster": None if math.isnan(result.scores[i]) else round(float(result.scores[i]), 3),
                        "null_spread": round(float(result.spreads[i]), 3),
                    }
                    for i in members
                ],
                "closest_clusters": [{"cluster": int(multi[j]), "z": round(float(row[j]), 3)} for j in order],
            }
        )
    return {
        "n_photos": len(photos),
        "crop": list(crop),
        "pixels_compared": d,
        "orientation_variants": n_variants,
        "threshold_z": round(result.threshold, 4),
        "threshold_attach_z": None if math.isnan(result.threshold_attach) else round(result.threshold_attach, 4),
        "null_spread": None if math.isnan(result.null_spread) else round(result.null_spread, 4),
        "n_merges": len(result.merges),
        "n_reassigned": result.n_reassigned,
        "n_attached": result.n_attached,
        "n_clusters": len(ids),
        "n_singletons": int(sum(1 for c in clusters if c["n_photos"] == 1)),
        "prefilter": sparse.stats if prefilter else None,
        "clusters": clusters,
        "_labels": result.labels,
    }


def cluster_photos(
    paths: list[str | Path],
    *,
    store: str | Path,
    params: ClusterParams = ClusterParams(),
    residual_params: ResidualParams = ResidualParams(),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    execution: Execution = IN_PROCESS,
    journal: str | os.PathLike[str] | None = None,
    resume: bool = False,
    enroll: str | Path | None = None,
    tick: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Report:
    """Group the photos under ``paths`` by source sensor with no reference (see the module docstring).

    Parameters
    ----------
    store : path-like, keyword-only
        Folder of the residual rows (created; kept for ``resume``; the caller removes it after the report).
    params : ClusterParams, keyword-only
        False-merge probability, crop side, Gram block size.
    journal, resume : keyword-only
        As in identify: results streamed to the journal; a resumed run reuses the residuals of finished photos.
    enroll : path-like, optional, keyword-only
        Library to enroll each cluster of two or more photos into (as ``cluster-<group>-<k>``).

    Returns
    -------
    Report
        One result per input (its group, crop, orientation; an error for an unreadable file); the clusters of
        each group in ``context["clusters"]``.

    Raises
    ------
    CamforensicsError
        No input files; on resume, a journal of other parameters.
    """
    files = gather_inputs(paths, on_start=on_start)
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    parameters = {"max_pixels": max_pixels, "residual": residual_params.to_dict(), "cluster": params.to_dict()}
    report = Report(
        command="cluster",
        parameters=parameters,
        journal=Journal(journal, command="cluster", parameters=parameters, resume=resume) if journal else None,
    )
    setup = ClusterSetup(residual_params, params.crop, str(store), max_pixels)
    photos_by_group: dict[str, list[_Photo]] = {}
    redo: list[tuple[int, Path]] = []
    position = {"i": 0}

    def on_result(result: dict[str, Any], extras: dict[str, Any]) -> None:
        i = position["i"]
        position["i"] += 1
        if result["status"] != "ok":
            return
        vector = store / extras["vector"]
        info = result["input"]
        photo = _Photo(i, info["path"], info.get("path_hex"), files[i], info.get("sha256"), vector,
                       result["orientation"] == "portrait", tuple(result["crop"]))
        if not vector.is_file():  # a resumed result whose row was removed: computed again below
            redo.append((i, files[i]))
        photos_by_group.setdefault(result["group"], []).append(photo)

    run_tasks(files, residual_one, setup, report, execution=execution, on_result=on_result, tick=tick)
    for _, path in redo:
        record: dict[str, Any] = {"input": {"path": str(path)}}
        residual_one(path, setup, record)
    t_cluster = time.perf_counter()
    groups: dict[str, Any] = {}
    labels_of: dict[str, np.ndarray] = {}
    for name, photos in sorted(photos_by_group.items(), key=lambda kv: -len(kv[1])):
        entry = cluster_group(photos, params)
        labels_of[name] = entry.pop("_labels")
        groups[name] = entry
    report.context["clusters"] = groups
    report.context["timing"] = {"cluster_s": time.perf_counter() - t_cluster}
    report.context["threshold_rule"] = (
        "z = sqrt(pixels) * NCC of two fingerprints (sums of photos' rows), divided by sqrt(s_a * s_b), the mean "
        "measured null spreads of their photos; merge while z > t with n(n-1) * variants * Q(t) = p_fa / 2, then "
        "attach each singleton to its best cluster when z > t' with n_singletons * n_clusters * variants * rounds "
        "* Q(t') = p_fa / 2 (Bonferroni over every test)"
    )
    if enroll is not None:
        members = {
            (name, int(k)): [ph.file for ph, label in zip(photos_by_group[name], labels) if label == k]
            for name, labels in labels_of.items() for k in np.unique(labels)
        }
        report.context["enrolled"] = _enroll_clusters(members, enroll, residual_params, max_pixels, execution)
    n_clusters = sum(g["n_clusters"] for g in groups.values())
    n_single = sum(g["n_singletons"] for g in groups.values())
    report.finish(n_groups=len(groups), n_clusters=n_clusters, n_multi_photo_clusters=n_clusters - n_single, n_singletons=n_single)
    return report


def _enroll_clusters(
    members: dict[tuple[str, int], list[Path]], library: str | Path, residual: ResidualParams, max_pixels: int, execution: Execution
) -> list[dict[str, Any]]:
    """Enroll every cluster of two or more photos into ``library``; one summary per cluster."""
    from camforensics.pipelines.enroll import enroll_device

    out = []
    fp_params = FingerprintParams(residual=ResidualParams(**{**residual.to_dict(), "sigma0": 3.0}))
    for (name, k), files in members.items():
        if len(files) < 2:
            continue
        device = f"cluster-{name}-{k}"
        try:
            rep, entry = enroll_device(
                list(files), name=device, library=library, params=fp_params, max_pixels=max_pixels, execution=execution
            )
        except CamforensicsError as exc:
            out.append({"device": device, "cluster": k, "group": name, "enrolled": False, "reason": str(exc)})
            continue
        out.append({"device": device, "cluster": k, "group": name, "enrolled": entry is not None,
                    "n_images": rep.summary.get("n_images_used")})
    return out


def empty_store(store: str | Path) -> None:
    """Remove the residual rows this command wrote (``<32 hex>.npy``) and the folder when it is then empty;
    nothing else in the folder is touched."""
    import re

    folder = Path(store)
    if not folder.is_dir():
        return
    for f in folder.iterdir():
        if re.fullmatch(r"[0-9a-f]{32}\.npy", f.name) and f.is_file():
            f.unlink()
    try:
        folder.rmdir()
    except OSError:
        pass  # other files are in it: left as they are

"""Pipelines behind ``camforensics datasets``: summarise a data set folder, make and save a split."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camforensics import __version__
from camforensics.io.datasets import scan_dataset
from camforensics.io.records import DatasetScan
from camforensics.io.splits import SPLIT_NAMES, Split, split_by_device, split_named_devices

if TYPE_CHECKING:
    from camforensics.reports.report import Report


def summarize_scan(scan: DatasetScan) -> dict[str, Any]:
    """JSON-ready summary of a scan: per model and per device image counts by content kind, skipped files."""
    kinds = sorted({r.content for r in scan.records})
    per_device: dict[str, Counter[str]] = defaultdict(Counter)
    model_of: dict[str, str] = {}
    make_model: dict[str, tuple[str, str]] = {}
    for r in scan.records:
        per_device[r.device][r.content] += 1
        model_of.setdefault(r.device, r.model_id)
        make_model.setdefault(r.device, (r.make, r.model))
    devices = [
        {
            "device": d,
            "model": model_of[d],
            "make_as_read": make_model[d][0],
            "model_as_read": make_model[d][1],
            "images": sum(per_device[d].values()),
            "by_content": {k: per_device[d][k] for k in kinds},
        }
        for d in sorted(per_device)
    ]
    models = []
    for m in sorted(set(model_of.values())):
        devs = [d for d in devices if d["model"] == m]
        models.append(
            {
                "model": m,
                "devices": [d["device"] for d in devs],
                "images": sum(d["images"] for d in devs),
                "by_content": {k: sum(d["by_content"][k] for d in devs) for k in kinds},
            }
        )
    reasons = Counter(s.reason for s in scan.skipped)
    return {
        "tool_version": __version__,
        "root": str(scan.root),
        "layout": scan.layout,
        "n_images": len(scan.records),
        "n_devices": len(devices),
        "n_models": len(models),
        "content_kinds": kinds,
        "by_content": {k: sum(d["by_content"][k] for d in devices) for k in kinds},
        "models": models,
        "devices": devices,
        "n_skipped": len(scan.skipped),
        "skipped_by_reason": dict(sorted(reasons.items())),
        "skipped": [{"path": str(s.path), "reason": s.reason} for s in scan.skipped],
    }


def inspect_dataset(root: str | os.PathLike[str], *, layout: str = "auto") -> dict[str, Any]:
    """Read a data set folder and summarise what was understood (see :func:`summarize_scan`)."""
    return summarize_scan(scan_dataset(root, layout=layout))


def inspect_report(
    root: str | os.PathLike[str], *, layout: str = "auto", with_hashes: bool = False
) -> tuple[Report, dict[str, Any]]:
    """The ``datasets inspect`` report: one result per image record, the summary as the report summary.

    Parameters
    ----------
    root : path-like
        Data set folder.
    layout : str
        As in :func:`~camforensics.io.datasets.scan_dataset`.
    with_hashes : bool
        Put the sha256 of every image in its result (reads every file).

    Returns
    -------
    report : Report
        Finished report; skipped files are listed in its summary, not as failed results.
    summary : dict
        :func:`summarize_scan` of the scan.
    """
    from camforensics.reports.report import Report

    scan = scan_dataset(root, layout=layout)
    summary = summarize_scan(scan)
    report = Report(
        command="datasets inspect",
        parameters={"root": str(scan.root), "layout": layout, "hashes": with_hashes},
        context={"dataset": {"root": str(scan.root), "layout": scan.layout}},
    )
    for r in scan.records:
        item: dict[str, Any] = {"path": str(r.path)}
        if with_hashes:
            item["sha256"] = r.sha256()
        report.add(
            {
                "input": item,
                "status": "ok",
                "device": r.device,
                "model_id": r.model_id,
                "make": r.make,
                "model": r.model,
                "content": r.content,
            }
        )
    report.finish(**{k: v for k, v in summary.items() if k not in ("root", "tool_version")})
    return report, summary


def make_split(
    root: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    layout: str = "auto",
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    single_device: str = "train",
    stratify: bool = True,
    with_hashes: bool = False,
    validation_devices: Sequence[str] = (),
    test_devices: Sequence[str] = (),
) -> Split:
    """Read a data set, split it by device (:func:`~camforensics.io.splits.split_by_device`, or
    :func:`~camforensics.io.splits.split_named_devices` when devices are named) and save it."""
    scan = scan_dataset(root, layout=layout)
    if validation_devices or test_devices:
        split = split_named_devices(
            scan.records, validation=validation_devices, test=test_devices, root=scan.root, layout=scan.layout
        )
    else:
        split = split_by_device(
            scan.records,
            fractions=fractions,
            seed=seed,
            single_device=single_device,
            stratify=stratify,
            root=scan.root,
            layout=scan.layout,
        )
    split.save(Path(output), with_hashes=with_hashes)
    return split


def split_summary(split: Split) -> list[dict[str, Any]]:
    """Per split: devices, models and image count."""
    return [
        {
            "split": name,
            "devices": list(split.devices(name)),
            "models": list(split.models(name)),
            "images": len(getattr(split, name)),
        }
        for name in SPLIT_NAMES
    ]

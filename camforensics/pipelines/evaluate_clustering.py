"""evaluate clustering: a cluster report against a labelled data set (adjusted Rand index, purity, devices found).

Each clustered photo is matched to its data-set record (by sha256, else path; see
:class:`camforensics.io.truth.TruthIndex`); photos of several sensor-size groups are clustered apart, so a
cluster is named by its group and number. Metrics over the matched photos: the adjusted Rand index (Hubert &
Arabie 1985, scikit-learn's ``adjusted_rand_score``), purity (share of photos in their cluster's majority
device), inverse purity (share of each device's photos in its largest cluster), the number of clusters of two or
more photos vs the number of true devices, the bodies merged (a cluster holding photos of two devices) and the
same-model bodies kept apart.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from camforensics.errors import InputError
from camforensics.io.datasets import read_dataset
from camforensics.io.truth import TruthIndex
from camforensics.reports.reader import read_report
from camforensics.reports.report import Report


def clustering_metrics(truth: Sequence[str], found: Sequence[str]) -> dict[str, Any]:
    """ARI, purity, inverse purity and counts of a clustering ``found`` against device labels ``truth``."""
    from sklearn.metrics import adjusted_rand_score

    n = len(truth)
    if n == 0:
        return {"n_photos": 0}
    by_cluster: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    by_device: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for t, f in zip(truth, found):
        by_cluster[f][t] += 1
        by_device[t][f] += 1
    purity = sum(c.most_common(1)[0][1] for c in by_cluster.values()) / n
    inverse = sum(c.most_common(1)[0][1] for c in by_device.values()) / n
    merged = [sorted(c) for c in by_cluster.values() if len(c) > 1]
    return {
        "n_photos": n,
        "adjusted_rand_index": float(adjusted_rand_score(list(truth), list(found))),
        "purity": purity,
        "inverse_purity": inverse,
        "n_true_devices": len(by_device),
        "n_clusters": len(by_cluster),
        "n_clusters_2plus": sum(1 for c in by_cluster.values() if sum(c.values()) > 1),
        "n_singletons": sum(1 for c in by_cluster.values() if sum(c.values()) == 1),
        "devices_found": sum(1 for d, c in by_device.items() if c.most_common(1)[0][1] > 1 or sum(c.values()) == 1),
        "merged_bodies": merged,
        "per_device": {d: sorted(c.values(), reverse=True) for d, c in sorted(by_device.items())},
    }


def evaluate_clustering(report: str | Path, truth: Sequence[str | Path], *, layout: str = "auto") -> Report:
    """Score a ``cluster`` report against the devices of one or more labelled data set folders.

    Raises
    ------
    InputError
        Not a cluster report, or a truth folder that cannot be read.
    """
    doc = read_report(report)
    if doc["run"].get("command") != "cluster":
        raise InputError(f"{report} is a report of {doc['run'].get('command')!r}, not of 'cluster'")
    records = [r for folder in truth for r in read_dataset(folder, layout=layout)]
    index = TruthIndex(records)
    out = Report(command="evaluate", parameters={"kind": "clustering", "report": str(report),
                                                 "truth": [str(t) for t in truth], "layout": layout})
    labels_t: list[str] = []
    labels_f: list[str] = []
    models: dict[str, str] = {}
    for name, group in (doc["run"].get("clusters") or {}).items():
        for c in group["clusters"]:
            for photo in c["photos"]:
                match = index.lookup(photo)
                row: dict[str, Any] = {"input": {"path": photo["path"], "sha256": photo.get("sha256")},
                                       "cluster": f"{name}/{c['cluster']}"}
                if match.record is None:
                    out.add({**row, "status": "error", "error": {"type": "InputError", "message": match.how}})
                    continue
                labels_t.append(match.record.device)
                labels_f.append(row["cluster"])
                models[match.record.device] = match.record.model_id
                out.add({**row, "status": "ok", "device": match.record.device})
    metrics = clustering_metrics(labels_t, labels_f)
    same_model = collections.defaultdict(list)
    for device, model in models.items():
        same_model[model].append(device)
    pairs = [sorted(v) for v in same_model.values() if len(v) > 1]
    merged = metrics.get("merged_bodies", [])
    metrics["same_model_bodies"] = [
        {"devices": p, "kept_apart": not any(set(p) <= set(m) for m in merged)} for p in pairs
    ]
    metrics["threshold"] = {g: {"threshold_z": v.get("threshold_z"), "threshold_attach_z": v.get("threshold_attach_z"),
                                "null_spread": v.get("null_spread")}
                            for g, v in (doc["run"].get("clusters") or {}).items()}
    out.finish(**metrics)
    return out

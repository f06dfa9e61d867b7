"""Timing and accuracy of blind clustering (camforensics cluster) on simulated corpora.

Simulates ``--photos`` natural photos of ``--photos / --per-device`` devices (camforensics.sim, size ``--size``),
clusters them with the cluster pipeline (residual pass through the executor, then the blocked Gram matrix and
the agglomeration) and prints one JSON line: the wall time of each phase, photos per second, and the adjusted
Rand index, purity and devices found against the simulator's truth.

    nice -n 10 python bench/bench_cluster.py --photos 1000 --size 1024 --workers 2 --work /tmp/bc
    nice -n 10 python bench/bench_cluster.py --photos 10000 --size 128 --workers 2 --work /tmp/bc  # prefilter on (auto)

The simulated corpus is kept in ``--work`` and reused by a later run of the same spec.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=100)
    ap.add_argument("--per-device", type=int, default=10)
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--crop", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--p-fa", type=float, default=1e-3)
    ap.add_argument("--prefilter", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--work", type=Path, required=True)
    args = ap.parse_args()

    from camforensics.core.cluster import ClusterParams
    from camforensics.pipelines.cluster import cluster_photos, empty_store
    from camforensics.pipelines.evaluate_clustering import clustering_metrics
    from camforensics.pipelines.executor import Execution
    from camforensics.sim.corpus import SimulationSpec, simulate_corpus

    n_devices = max(1, args.photos // args.per_device)
    spec = SimulationSpec(
        n_models=min(args.models, n_devices), n_devices=n_devices, n_flat=0, n_nat=args.per_device,
        width=args.size, height=args.size, seed=args.seed,
    )
    corpus = args.work / f"sim_{args.photos}_{args.size}_{args.per_device}_{args.seed}"
    t0 = time.perf_counter()
    stamp = corpus / "spec.json"
    if not (stamp.is_file() and json.loads(stamp.read_text()) == spec.to_dict()):
        simulate_corpus(corpus, spec, workers=args.workers)
        stamp.write_text(json.dumps(spec.to_dict()))
    t_sim = time.perf_counter() - t0
    store = args.work / "store"
    shutil.rmtree(store, ignore_errors=True)
    phases: dict[str, float] = {}
    started = time.perf_counter()
    rep = cluster_photos(
        [corpus], store=store, params=ClusterParams(p_fa=args.p_fa, crop=args.crop, prefilter=args.prefilter),
        execution=Execution(workers=args.workers),
        on_start=lambda n: phases.setdefault("listed", time.perf_counter() - started),
    )
    total = time.perf_counter() - started
    empty_store(store)
    truth, found = [], []
    for name, group in rep.context["clusters"].items():
        for c in group["clusters"]:
            for p in c["photos"]:
                truth.append(Path(p["path"]).parent.parent.name)
                found.append(f"{name}/{c['cluster']}")
    m = clustering_metrics(truth, found)
    m.pop("per_device")
    m["merged_bodies"] = len(m["merged_bodies"])
    groups = rep.context["clusters"]
    print(json.dumps({
        "photos": args.photos, "devices": n_devices, "size": args.size, "workers": args.workers,
        "cpus": os.cpu_count(), "simulate_s": round(t_sim, 1), "cluster_s": round(total, 1),
        "cluster_phase_s": round(rep.context.get("timing", {}).get("cluster_s", float("nan")), 1),
        "photos_per_s": round(args.photos / total, 2),
        "threshold_z": [g["threshold_z"] for g in groups.values()],
        "null_spread": [g["null_spread"] for g in groups.values()],
        "threshold_attach_z": [g["threshold_attach_z"] for g in groups.values()],
        "n_attached": [g["n_attached"] for g in groups.values()],
        "prefilter": [g["prefilter"] for g in groups.values()],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()},
    }))


if __name__ == "__main__":
    main()

"""The white-box upper bound of the refinement: the judges themselves as the attacked ensemble (a diagnostic only).

    python bench/bench_refine_whitebox_judges.py runs/heldout-val [--every K --offset J] [--threads 1] \
        [--config "NAME:key=value,..."]

A real anonymizer never sees the judges (``anonymize --refine`` attacks surrogates, and ``evaluate anonymization``
refuses a judge trained with a surrogate's recipe); this bench measures what the refinement could reach at its
budget if the transfer from the surrogates to the judges were perfect: the shipped ONNX judges are read into torch
(:class:`OnnxTorch`, a differentiable interpreter of the graph's operators, checked against onnxruntime on the
first image's patches) and handed to :func:`camforensics.training.transfer.transfer_attack` as the ensemble, with
the refinement's default settings (the judges' rule, DCT steps on the target's JPEG lattice, eps 8, 30 steps,
128 covered patches, PSNR floor 35.5 dB) unless ``--config`` says otherwise (``bench/bench_refine.py``'s keys;
``jpeg=0``: the attack ignores the JPEG save and the judges read the unsaved pixels, the attack's raw power).
The same photos and seeded targets as ``bench/bench_refine.py``; the judges then decide on the saved file by
onnxruntime as everywhere else. Prints one line per image and configuration and the summary rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

DEFAULT = "loss=judge,epsilon=8,iterations=30,step=1,momentum=1,cover=128,domain=dct,psnr_floor=35.5,patches_per_step=0"


class OnnxTorch(torch.nn.Module):
    """An ONNX attributor graph (Sub, Mul, Conv, Relu, MaxPool, GlobalAveragePool, Flatten, Gemm, LogSoftmax,
    Constant) executed with torch operators: differentiable, the same outputs as onnxruntime up to float rounding."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        import onnx
        from onnx import helper, numpy_helper

        model = onnx.load(str(path))
        self.values = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
        self.nodes = []
        for n in model.graph.node:
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            if n.op_type == "Constant":
                self.values[n.output[0]] = torch.from_numpy(numpy_helper.to_array(attrs["value"]).copy())
                continue
            self.nodes.append((n.op_type, list(n.input), n.output[0], attrs))
        self.input = model.graph.input[0].name
        self.output = model.graph.output[0].name
        unknown = {op for op, *_ in self.nodes} - {"Sub", "Mul", "Add", "Conv", "Relu", "MaxPool", "GlobalAveragePool",
                                                   "Flatten", "Gemm", "LogSoftmax"}  # fmt: skip
        if unknown:
            raise SystemExit(f"{path}: operators this bench does not interpret: {sorted(unknown)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = dict(self.values)
        v[self.input] = x
        F = torch.nn.functional
        for op, ins, out, a in self.nodes:
            args = [v[i] for i in ins if i]
            if op == "Sub":
                r = args[0] - args[1]
            elif op == "Mul":
                r = args[0] * args[1]
            elif op == "Add":
                r = args[0] + args[1]
            elif op == "Conv":
                p = a.get("pads", [0, 0, 0, 0])
                if p[0] != p[2] or p[1] != p[3]:
                    raise SystemExit("asymmetric Conv padding is not interpreted")
                r = F.conv2d(args[0], args[1], args[2] if len(args) > 2 else None, stride=a.get("strides", [1, 1]),
                             padding=(p[0], p[1]), dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))  # fmt: skip
            elif op == "Relu":
                r = F.relu(args[0])
            elif op == "MaxPool":
                r = F.max_pool2d(args[0], a["kernel_shape"], stride=a.get("strides"), ceil_mode=bool(a.get("ceil_mode", 0)))
            elif op == "GlobalAveragePool":
                r = args[0].mean((2, 3), keepdim=True)
            elif op == "Flatten":
                r = args[0].flatten(a.get("axis", 1))
            elif op == "Gemm":
                b = args[1].T if a.get("transB", 0) else args[1]
                r = a.get("alpha", 1.0) * args[0] @ b + a.get("beta", 1.0) * args[2]
            else:  # LogSoftmax
                r = F.log_softmax(args[0], dim=a.get("axis", -1))
            v[out] = r
        return v[self.output]


def judge_surrogate(judge):
    """A judge (a loaded registry model) as a :class:`~camforensics.training.adversarial.Surrogate`."""
    from camforensics.training.adversarial import Surrogate

    net = OnnxTorch(judge.entry.path)
    net.eval()
    net.requires_grad_(False)
    e = judge.entry
    return Surrogate(net, tuple(e.classes), e.patch_size, e.preprocessor, "onnx", str(e.path), e.sha256)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", action="append", default=[])
    args = ap.parse_args()
    from bench_refine import held_out_items, parse_config, transplanted

    from camforensics.core.quality import psnr
    from camforensics.inference.attribution import AttributionParams, attribute_pixels
    from camforensics.inference.patches import decision_patches
    from camforensics.pipelines.anonymize.judges import judge_panel
    from camforensics.training.transfer import transfer_attack

    torch.set_num_threads(args.threads)
    judges = judge_panel("all", None, threads=args.threads).load()
    ensemble = [judge_surrogate(j) for j in judges]
    chosen = held_out_items(args.data, judges)[0][args.offset :: args.every]
    configs = [parse_config(c) for c in args.config] or [parse_config("judges-whitebox:" + DEFAULT)]
    params = AttributionParams(top_k=len(judges[0].entry.classes))
    rows: dict[str, list[dict]] = {name: [] for name, _ in configs}
    checked = False
    for rec, target in chosen:
        pixels, trans, tables, jpeg = transplanted(rec.path, target)
        if not checked:  # the torch reading equals onnxruntime's
            batch, _ = decision_patches(pixels, preprocessor="RGB", size=64, n=128, window=1024)
            for j, s in zip(judges, ensemble):
                with torch.no_grad():
                    diff = float(np.abs(s.net(torch.from_numpy(batch)).numpy() - np.asarray(j.run(batch))).max())
                if diff > 1e-3:
                    raise SystemExit(f"{j.entry.name}: torch reading differs from onnxruntime by {diff}")
            checked = True
        for name, kw in configs:
            kw = dict(kw)
            kw.pop("surrogates", None)
            use_jpeg = bool(kw.pop("jpeg", 1))  # 0: the attack ignores the save, and the judges read the unsaved pixels
            t0 = time.perf_counter()
            out, _ = transfer_attack(trans, ensemble, target=target, window=1024, reference=pixels,
                                     jpeg=jpeg if use_jpeg else None, tables=tables, **kw)  # fmt: skip
            dt = time.perf_counter() - t0
            written = jpeg(out) if use_jpeg else out
            verdicts, ranks = {}, {}
            for j in judges:
                top = attribute_pixels(written, j, params=params)["top_k"]
                verdicts[j.entry.name] = top[0]["model"]
                ranks[j.entry.name] = next((k for k, t in enumerate(top) if t["model"] == target), len(top))
            rows[name].append({"model": rec.model_id, "target": target, "psnr": psnr(pixels, written), "verdicts": verdicts,
                               "ranks": ranks, "seconds": dt})  # fmt: skip
            print(f"  {rec.path.name[:24]:24s} {name:16s} -> {target:28s} {rows[name][-1]['psnr']:.2f} dB {dt:5.1f} s "
                  f"{verdicts} ranks {list(ranks.values())}", flush=True)  # fmt: skip
    print(f"{len(chosen)} images; the judges attacked white-box (a diagnostic: no anonymizer can do this)")
    for name, _ in configs:
        r = rows[name]
        cells = [f"{j.entry.name.split('-')[-1]} {100 * np.mean([x['verdicts'][j.entry.name] == x['target'] for x in r]):5.1f}"
                 for j in judges]  # fmt: skip
        hits = sum(x["verdicts"][j.entry.name] == x["target"] for x in r for j in judges)
        print(f"{name:16s} {' | '.join(cells)} | verdicts {hits} of {len(r) * len(judges)} | mean TSR "
              f"{100 * hits / max(1, len(r) * len(judges)):5.1f} | PSNR {np.mean([x['psnr'] for x in r]):.2f}/"
              f"{np.min([x['psnr'] for x in r]):.2f} | {np.mean([x['seconds'] for x in r]):.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()

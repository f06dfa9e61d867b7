"""Camera-model attribution cost in CPU time (contention-proof figures when the machine is shared), panel of models/.

    python bench/bench_attribution_cpu.py

CPU seconds (time.process_time, onnxruntime on one thread) of: one 64-patch batch per panel member (target <= 20 ms),
and, for each 12 MP frame of ../shared/data/real-full, decoding it and attributing it with the default panel
with the fused decision's JPEG-signature evidence (markers + EXIF of the file, matched against the shipped table)
and the fusion itself (targets: <= 0.5 s per 12 MP photo). On an idle machine the wall time of one thread equals these CPU times; with two
threads it is lower. bench_attribution.py gives wall times (use it on an idle machine).
"""
import time, statistics, numpy as np
from pathlib import Path
from camforensics.inference.attribution import attribute_pixels, fuse_decision
from camforensics.pipelines.signatures import SignatureTable, default_table_path, file_evidence
from camforensics.inference.panel import default_panel, load_panel
from camforensics.inference.registry import ModelRegistry
from camforensics.io.images import load_image
reg = ModelRegistry(); panel = load_panel(reg, default_panel(reg), device="cpu", threads=1)
table = SignatureTable.load(default_table_path())
def cpu(fn, r=5):
    fn(); ts=[]
    for _ in range(r):
        t=time.process_time(); fn(); ts.append(time.process_time()-t)
    return statistics.median(ts)
b = np.random.default_rng(0).uniform(0,255,(64,3,64,64)).astype(np.float32)
print("64-patch batch, CPU time on one thread:", {m.entry.name: round(cpu(lambda m=m: m.run(b), 20)*1e3,1) for m in panel.members}, "ms")
frames = sorted((Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-full").glob("*/nat/*"))
res=[]
for f in frames:
    px = load_image(f).pixels
    if not 11e6 <= px.shape[0]*px.shape[1] <= 13e6: continue
    a = attribute_pixels(px, panel)
    res.append((cpu(lambda: load_image(f), 3), cpu(lambda: attribute_pixels(px, panel), 3),
                cpu(lambda: fuse_decision(a, file_evidence(f, table), fused_threshold=-2.0), 3)))
med = lambda i: round(statistics.median(r[i] for r in res), 3)
print(len(res), "12 MP real frames, CPU seconds on one thread: decode median", med(0), "panel attribution median",
      med(1), "signature evidence + fusion median", med(2), "total median", round(statistics.median(sum(r) for r in res), 3),
      "max", round(max(sum(r) for r in res), 3))

"""Speed of the camera simulator: one 12 MP image (scene + camera pipeline + JPEG), and the demo corpus.

Prints, for each of the first few simulated models, the wall time of the stages of a 4000x3000 natural image
(median and best of --repeat runs, after one warm-up that also builds the device's sensor pattern), then the
time of the demo corpus (2 models, 3 devices, 8 flat + 4 natural images each, 512x512).

Run from the repository root:  python bench/bench_simulator.py [--models 3] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # use this checkout's camforensics

import numpy as np

from camforensics.sim import (
    SimulationSpec,
    encode_jpeg,
    make_camera_models,
    make_devices,
    simulate_corpus,
)
from camforensics.sim.cfa import demosaic
from camforensics.sim.pipeline import apply_colour, capture_mosaic, meter
from camforensics.sim.scenes import render_flat_scene, render_natural_scene
from camforensics.sim.sensor import device_response

WIDTH, HEIGHT = 4000, 3000


def _time(fn, repeat: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"cpus: {os.cpu_count()}  load average: {os.getloadavg()[0]:.2f}  size: {WIDTH}x{HEIGHT}")
    models = make_camera_models(args.models, 0)
    devices = make_devices(models, len(models), 0)
    rng = np.random.default_rng(0)
    for device in devices:
        m = device.model
        t0 = time.perf_counter()
        device_response(device, HEIGHT, WIDTH)  # once per device and size (cached): PRNU, dark signal, vignetting
        t_pattern = time.perf_counter() - t0
        state = {}

        def scene():
            state["scene"] = render_natural_scene(rng, HEIGHT, WIDTH)
            return state["scene"]

        def capture():
            s = state["scene"]
            state["mosaic"] = capture_mosaic(device, s, rng, exposure=meter(s, m, level=m.ae_target) / 2.0, iso_gain=2.0)

        def develop():
            state["rgb"] = apply_colour(demosaic(state["mosaic"], m.cfa, m.demosaic), m)

        def jpeg():
            state["jpeg"] = encode_jpeg(state["rgb"], quality=m.jpeg_quality, subsampling=m.jpeg_subsampling, make=m.make, model=m.name)

        def whole():
            scene(), capture(), develop(), jpeg()

        whole()  # warm-up
        stages = {name: _time(fn, args.repeat)[:2] for name, fn in
                  (("natural scene", scene), ("optics+sensor+tone", capture), ("demosaic+colour", develop), ("jpeg", jpeg))}
        total_med, total_best, _ = _time(whole, args.repeat)
        flat_med, _, _ = _time(lambda: render_flat_scene(rng, HEIGHT, WIDTH), args.repeat)
        print(f"{m.name}: cfa {m.cfa}, demosaic {m.demosaic}, luma NR {m.luma_denoise}, chroma NR {m.chroma_denoise}, "
              f"sharpen {m.sharpen_amount}, JPEG q{m.jpeg_quality} {m.jpeg_subsampling}")
        for name, (med, best) in stages.items():
            print(f"    {name:<20} median {med * 1000:6.0f} ms   best {best * 1000:6.0f} ms")
        print(f"    {'TOTAL 12 MP image':<20} median {total_med * 1000:6.0f} ms   best {total_best * 1000:6.0f} ms"
              f"   (flat scene instead of natural: {flat_med * 1000:.0f} ms; sensor pattern, once per device: "
              f"{t_pattern * 1000:.0f} ms; JPEG {len(state['jpeg']) / 1e6:.1f} MB)")
    spec = SimulationSpec(n_models=2, n_devices=3, n_flat=8, n_nat=4, width=512, height=512, seed=0)
    times = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            rows = simulate_corpus(tmp, spec)
            times.append(time.perf_counter() - t0)
    print(f"demo corpus ({len(rows)} images of 512x512, 3 devices, 2 models): median {statistics.median(times):.2f} s, "
          f"best {min(times):.2f} s")


if __name__ == "__main__":
    main()

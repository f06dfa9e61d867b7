"""demo: a complete case on simulated cameras, with a known answer to check every decision against."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camforensics.errors import CamforensicsError
from camforensics.reports.atomic import atomic_write_text

MARKER = ".camforensics-demo"


@dataclass
class DemoOutcome:
    """What the demo did and whether every decision matched the simulated ground truth."""

    out_dir: Path
    devices: dict[str, str]  # device -> camera model
    identify: list[dict[str, Any]] = field(default_factory=list)  # per query: file, truth, decision, PCEs
    verify: list[dict[str, Any]] = field(default_factory=list)  # per pair: sets, expected, decision, PCE
    reports: list[Path] = field(default_factory=list)

    @property
    def all_correct(self) -> bool:
        return all(q["correct"] for q in self.identify) and all(v["correct"] for v in self.verify)


def _prepare(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise CamforensicsError(f"{out} is not empty and was not made by 'camforensics demo'; choose another --output")
        for child in ("data", "library", "reports"):
            shutil.rmtree(out / child, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MARKER, "made by camforensics demo; the whole folder may be deleted\n")


def run_demo(
    out_dir: str | Path,
    *,
    seed: int = 0,
    size: int = 512,
    step: Callable[[str], None] | None = None,
) -> DemoOutcome:
    """Simulate 3 devices of 2 camera models, enroll, identify and verify; check against the ground truth.

    Devices 0 and 2 are two bodies of one model (the hard case for PRNU: everything but the sensor is shared).
    Folder layout: ``data/`` (the simulated photos), ``library/`` (fingerprints), ``reports/`` (one report per
    step, in the standard schema).

    Parameters
    ----------
    out_dir : path-like
        Created when missing; a folder of a previous demo is reused; any other non-empty folder is refused.
    seed : int, keyword-only
        Simulation seed.
    size : int, keyword-only
        Image side in pixels.
    step : callable, optional, keyword-only
        Called with a short description before each stage.
    """
    from camforensics.pipelines.enroll import enroll_device
    from camforensics.pipelines.identify import identify_images
    from camforensics.pipelines.verify import verify_sets
    from camforensics.sim import SimulationSpec, simulate_corpus

    say = step or (lambda _msg: None)
    out = Path(out_dir)
    _prepare(out)
    data, library, reports = out / "data", out / "library", out / "reports"

    say("simulating 3 cameras (2 models) with 8 flat-field and 4 natural photos each")
    # Daylight photos at base ISO (nat_iso_stops=(0, 0)): at 512x512 with 8 flat fields, simulated devices with
    # weak PRNU shot at high ISO fall near the PCE 60 threshold, as real ones do at that size (docs/simulator.md).
    spec = SimulationSpec(
        n_models=2, n_devices=3, n_flat=8, n_nat=4, width=size, height=size, seed=seed, nat_iso_stops=(0.0, 0.0)
    )
    rows = simulate_corpus(data, spec)
    devices = {r["device"]: r["model"] for r in rows}
    outcome = DemoOutcome(out_dir=out, devices=devices)

    for device in devices:
        say(f"enrolling {device}")
        rep, entry = enroll_device([data / device / "flat"], name=device, library=library, overwrite=True)
        if entry is None:
            raise CamforensicsError(f"demo: enrolling {device} failed; see {reports}")
        outcome.reports += rep.write(reports / f"enroll_{device}.json")

    say("identifying every natural photo against the library")
    rep = identify_images([data / d / "nat" for d in devices], library=library)
    outcome.reports += rep.write(reports / "identify.json")
    for r in rep.results:
        truth = Path(r["input"]["path"]).parts[-3]
        if r["status"] != "ok":
            outcome.identify.append({"file": r["input"]["path"], "truth": truth, "decision": None, "correct": False})
            continue
        pce = {c["device"]: c["pce"] for c in r["candidates"]}
        outcome.identify.append(
            {
                "file": r["input"]["path"],
                "truth": truth,
                "decision": r["decision"]["device"],
                "own_pce": pce[truth],
                "max_other_pce": max(v for k, v in pce.items() if k != truth),
                "correct": r["decision"]["device"] == truth,
            }
        )

    names = list(devices)
    sibling = next(d for d in names[1:] if devices[d] == devices[names[0]])
    pairs = [
        (names[0], names[0], True),  # natural photos vs flat-field photos of the same device
        (names[0], sibling, False),  # same model, other body
    ]
    for a, b, expected in pairs:
        say(f"verifying {a} natural photos against {b} flat-field photos")
        rep = verify_sets([data / a / "nat"], [data / b / "flat"])
        outcome.reports += rep.write(reports / f"verify_{a}_vs_{b}.json")
        d = rep.summary["decision"]
        outcome.verify.append(
            {"a": f"{a}/nat", "b": f"{b}/flat", "expected_same": expected, "same_device": d["same_device"],
             "pce": d["pce"], "correct": d["same_device"] == expected}
        )
    return outcome

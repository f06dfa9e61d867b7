"""camforensics demo: the whole classical workflow on simulated cameras, no data of the user's needed."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import cli_errors, err, out


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the demo's data, library and reports.")] = Path(
        "camforensics-demo"
    ),
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the verdict line.")] = False,
) -> None:
    """Simulate three cameras (two of one model), enroll them, identify their photos, verify two pairs.

    Every decision is checked against the simulated ground truth; the exit code is 1 if any is wrong.
    """
    with cli_errors():
        from camforensics.pipelines.demo import run_demo

        t0 = time.perf_counter()
        outcome = run_demo(output, seed=seed, step=None if quiet else (lambda msg: err.print(f"[dim]- {msg}[/]")))
        elapsed = time.perf_counter() - t0
    if not quiet:
        from camforensics.cli.render import Column, show_table

        rows = []
        for device, model in outcome.devices.items():
            mine = [q for q in outcome.identify if q["truth"] == device]
            own = [q["own_pce"] for q in mine if "own_pce" in q]
            other = [q["max_other_pce"] for q in mine if "max_other_pce" in q]
            rows.append({"device": device, "model": model, "photos": str(len(mine)),
                         "right": f"{sum(q['correct'] for q in mine)}/{len(mine)}",
                         "own": f"{statistics.median(own):.0f}" if own else "-",
                         "other": f"{max(other):.1f}" if other else "-"})  # fmt: skip
        cols = [Column("device", lambda r: r["device"], wraps=True), Column("model", lambda r: r["model"], wraps=True),
                Column("photos", lambda r: r["photos"], numeric=True),
                Column("right", lambda r: r["right"], numeric=True),
                Column("own PCE", lambda r: r["own"], numeric=True),
                Column("top other PCE", lambda r: r["other"], numeric=True)]  # fmt: skip
        show_table("identify: natural photos against the 3 fingerprints (PCE threshold 60)", cols, rows)
        for v in outcome.verify:
            verdict = "same device" if v["same_device"] else "different devices"
            mark = "[green]correct[/]" if v["correct"] else "[red]WRONG[/]"
            out.print(f"verify {v['a']} vs {v['b']}: {verdict} (PCE {v['pce']:.1f}) {mark}")
        out.print(f"library: {output / 'library'}   reports: {output / 'reports'}   photos: {output / 'data'}")
    n_id = len(outcome.identify)
    n_ok = sum(q["correct"] for q in outcome.identify) + sum(v["correct"] for v in outcome.verify)
    total = n_id + len(outcome.verify)
    status = "[green]all decisions correct[/]" if outcome.all_correct else "[red]some decisions are wrong[/]"
    out.print(f"demo: {n_ok}/{total} decisions match the simulated truth ({status}) in {elapsed:.1f} s")
    raise typer.Exit(0 if outcome.all_correct else 1)

"""The options every command shares, in one place: report, format, quiet, bomb guard, workers, device, scheduler,
resume and model-registry flags; identify's and verify's matching flags and their parsers; options dataclasses
built from a command's flags by field name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from camforensics.core.params import MatchParams

T = TypeVar("T")

ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        "-r",
        help="Where to write the report ('-' for stdout). Default: camforensics_<command>_<UTC time>.<format> in "
        "$CAMFORENSICS_REPORTS, else ~/.local/state/camforensics/reports (never the working folder).",
        show_default=False,
    ),
]
FormatOpt = Annotated[str, typer.Option("--format", help="Report format: json, jsonl or csv.")]
WideOpt = Annotated[
    bool, typer.Option("--wide", help="All columns in the terminal table (default: the few that fit 80 columns).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary table.")]
MaxPixelsOpt = Annotated[
    int, typer.Option("--max-pixels", help="Refuse images with more pixels (decompression-bomb guard).")
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-j",
        min=1,
        help="Worker processes. Default: one per core; 1 runs in this process.",
        show_default=False,
    ),
]
ModelsDirOpt = Annotated[
    Path | None,
    typer.Option("--models-dir", help="Model registry folder (default: the shipped models/).", show_default=False),
]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        help="Compute device: auto (a CUDA GPU when torch sees one, else cpu), cpu (numpy engine), cuda or cuda:N "
        "(torch backend, one process; install with pip install 'camforensics[gpu-torch]').",
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Run on a Dask cluster: its scheduler's address, e.g. tcp://host:8786 (needs camforensics[dask]; "
        "workers must see the same input and output paths).",
        show_default=False,
    ),
]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue an interrupted run with the same --report and options: inputs it finished (unchanged "
        "since) are not computed again.",
    ),
]


def parse_shift_range(text: str) -> tuple[int, int]:
    """'0' -> (0, 0); '16' -> (16, 16); '8,32' -> (8, 32) (rows, columns)."""
    from camforensics.errors import ParameterError

    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise ParameterError(f"--shift-range {text!r}: give N or DY,DX in pixels, e.g. 16 or 8,32") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 0:
        raise ParameterError(f"--shift-range {text!r}: give N or DY,DX (non-negative pixels)")
    return parts[0], parts[1]


def parse_scales(text: str) -> tuple[float, ...]:
    """'1' -> (1.0,); '1,0.75,0.5' -> a list; '0.5:1:0.05' -> START:STOP:STEP, both ends included."""
    from camforensics.errors import ParameterError

    hint = "give SCALE[,SCALE...] or START:STOP:STEP, e.g. 1,0.75,0.5 or 0.5:1:0.05 (query pixels per sensor pixel)"
    try:
        if ":" in text:
            start, stop, step = (float(p) for p in text.split(":"))
            if not step > 0 or stop < start:
                raise ValueError
            n = round((stop - start) / step) + 1
            if n > 1000:
                raise ParameterError(f"--scales {text!r}: {n} scales; use a coarser step (at most 1000)")
            return tuple(round(start + i * step, 6) for i in range(n))
        return tuple(float(p) for p in text.split(","))
    except ValueError:
        raise ParameterError(f"--scales {text!r}: {hint}") from None


def parse_crop_anchor(text: str) -> str | tuple[int, int]:
    """'any', 'centre' (or 'center'), 'corner', 'none', or 'Y,X' (pixels)."""
    from camforensics.errors import ParameterError

    word = text.strip().lower()
    if word == "center":
        word = "centre"
    if word in ("any", "centre", "corner", "none"):
        return word
    try:
        y, x = (int(p) for p in word.split(","))
    except ValueError:
        raise ParameterError(
            f"--crop-anchor {text!r}: give any, centre, corner, none or Y,X (the crop's top-left on the sensor, pixels)"
        ) from None
    return y, x


ROTATIONS_HELP = (
    "'all': the rotations whose size fits (same size); crops: stored order, then the 8 turns/mirrors if it "
    "fails. 'dih4': the 8 turns and mirrors always. 'none': stored order only."
)
CROP_ANCHOR_HELP = (
    "Queries smaller than a fingerprint (crops): 'any' searches every offset; 'centre', 'corner' or Y,X (top-left "
    "on the sensor, pixels) search +-shift-range around it; 'none': crops fit no fingerprint."
)
SCALES_HELP = (
    "Scales searched for downscaled queries (query pixels per sensor pixel, 0.25..1): '1', '1,0.75,0.5' or "
    "START:STOP:STEP such as 0.5:1:0.01 (a fine step: the match is lost beyond ~1/size scale error)."
)
SHIFT_RANGE_HELP = (
    "Same-size queries: search the PCE peak within +-N pixels (or DY,DX) of zero shift; crops with a "
    "--crop-anchor other than 'any': within +-N of that offset."
)


def match_params_of(threshold: float, rotations: str, shift_range: str, crop_anchor: str, scales: str) -> MatchParams:
    """The :class:`~camforensics.core.params.MatchParams` of identify's and verify's matching flags."""
    from camforensics.core.params import MatchParams

    return MatchParams(
        threshold=threshold,
        rotations=rotations,
        shift_range=parse_shift_range(shift_range),
        crop_anchor=parse_crop_anchor(crop_anchor),
        scales=parse_scales(scales),
    )


def options_from(cls: type[T], flags: Mapping[str, Any], **computed: Any) -> T:
    """An options dataclass built from a command's keyword arguments (``locals()``) by field name.

    Fields with no flag of their name keep their defaults; ``computed`` gives the fields whose flag needs
    converting first (e.g. ``split_fractions`` parsed from ``--fractions``). Flags that are no field (``--output``,
    ``--quiet``, ...) are left out.
    """
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in flags.items() if k in names and k not in computed}, **computed)

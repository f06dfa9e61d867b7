"""anonymize: remove a device's fingerprint, plant another's, run a learned anonymizer, attack an attributor
(FGSM, PGD), or apply a classical baseline; measure the result.

Each input image is read in stored (sensor) order, altered by one method of :mod:`camforensics.core.anonymize`,
by a registered learned anonymizer (:mod:`camforensics.pipelines.anonymize.learned`) or by an adversarial attack on
an attributor checkpoint (:mod:`camforensics.pipelines.anonymize.attacks`), written without metadata
into the output folder, and measured: PSNR and SSIM against the input, the PCE of input and output against the
devices involved (the removed device, the spoof target, every device of a verification library), and the
verdicts of the camera-model attributors (the judges) before and after.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.anonymize import fitting_residual_params
from camforensics.core.matching import Query, fits, match_query
from camforensics.core.params import PCE_THRESHOLD, MatchParams, ResidualParams
from camforensics.core.quality import psnr, ssim
from camforensics.core.residual import extract_residual, to_grey
from camforensics.errors import InputError, ParameterError
from camforensics.inference.registry import LoadedModel
from camforensics.io.encoding import IMAGE_FORMATS, decode_image, encode_image
from camforensics.io.folders import safe_file_part
from camforensics.io.hashing import sha256_bytes
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.io.library import FingerprintLibrary, LibraryEntry
from camforensics.io.safety import check_outputs, require_analysable, resolved, temporaries_swept, unique_stems
from camforensics.pipelines.anonymize.attacks import ATTACK_METHODS, AttackChoice, attack_context
from camforensics.pipelines.anonymize.baselines import BASELINE_METHODS, BaselineOptions
from camforensics.pipelines.anonymize.fingerprint import (
    FINGERPRINT_METHODS,
    DeviceRef,
    FingerprintOptions,
    Reference,
    removal_note,
)
from camforensics.pipelines.anonymize.judges import JudgePanel, JudgeTally, judge_before_after, judge_context, model_context, top1
from camforensics.pipelines.anonymize.learned import LEARNED_METHODS, AnonymizerChoice
from camforensics.pipelines.anonymize.transplant import TRANSPLANT_METHODS, TransplantOptions
from camforensics.pipelines.batch import gather_inputs, run_tasks
from camforensics.pipelines.executor import IN_PROCESS, Execution
from camforensics.pipelines.search import LibraryListing
from camforensics.reports.atomic import atomic_write_bytes
from camforensics.reports.report import Report

METHODS = (*FINGERPRINT_METHODS, *LEARNED_METHODS, *ATTACK_METHODS, *TRANSPLANT_METHODS, *BASELINE_METHODS)
SSIM_ON = "mean of the per-channel SSIM (R, G, B); grey images: the one channel"

# The options of one method family, each checking itself: which family a method belongs to is its class.
MethodOptions = FingerprintOptions | BaselineOptions | AnonymizerChoice | AttackChoice | TransplantOptions


@dataclass(frozen=True)
class AnonymizeParams:
    """Every choice of an anonymize run; written into the report's ``run.parameters``."""

    options: MethodOptions  # the method and its own options (fingerprint, baseline, learned model or attack)
    image_format: str = "png"  # output container: png (lossless) or jpeg
    quality: int = 95  # JPEG quality of the written outputs (image_format "jpeg")
    check: bool = True  # measure the PCE of input and output against the removed device and the spoof target
    verify_library: str | None = None  # also measure against every fitting device of this library
    residual: ResidualParams = field(default_factory=ResidualParams)  # residual of the PCE checks (queries)
    threshold: float = PCE_THRESHOLD  # PCE decision threshold of the checks
    max_pixels: int = DEFAULT_MAX_PIXELS  # decompression-bomb guard
    judges: JudgePanel | None = None  # attributors judging each image before and after; None: no judging

    def __post_init__(self) -> None:
        if self.image_format not in IMAGE_FORMATS:
            raise ParameterError(f"unknown image format {self.image_format!r}; choose one of {', '.join(IMAGE_FORMATS)}")
        if not 1 <= self.quality <= 100:
            raise ParameterError(f"--quality must be between 1 and 100, got {self.quality!r}")
        if isinstance(self.options, TransplantOptions) and self.image_format != "jpeg":
            raise ParameterError(f"--method {self.method} writes a JPEG with the target's tables; use --format jpeg")

    @property
    def method(self) -> str:
        return self.options.method

    @property
    def fingerprints(self) -> FingerprintOptions | None:
        """The options of remove-fingerprint / spoof (None for the other methods)."""
        return self.options if isinstance(self.options, FingerprintOptions) else None

    @property
    def match(self) -> MatchParams:
        """Checks match same-size images in any rotation that fits, at zero shift (no crop search)."""
        return MatchParams(threshold=self.threshold, crop_anchor="none")

    def method_parameters(self) -> dict[str, Any]:
        """The parameters that shape the method's output (written with every result)."""
        return self.options.parameters()

    @property
    def target(self) -> str | None:
        """The camera model the output should look taken by (targeted, or a targeted attack); else None."""
        return self.options.target if isinstance(self.options, (AnonymizerChoice, AttackChoice, TransplantOptions)) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "method_parameters": self.method_parameters(),
            "image_format": self.image_format,
            "quality": self.quality if self.image_format == "jpeg" else None,
            "check": self.check,
            "verify_library": self.verify_library,
            "residual": self.residual.to_dict(),
            "match": self.match.to_dict(),
            "max_pixels": self.max_pixels,
            "ssim_on": SSIM_ON,
            "judges": self.judges.to_dict() if self.judges is not None else None,
        }


def output_name(path: Path, sha256: str, params: AnonymizeParams) -> str:
    """``<stem>_<sha256[:8]>.<method>.<ext>`` (spoof: ``spoof-<device>``, targeted: ``targeted-<camera model>``,
    a targeted attack: ``fgsm-<camera model>`` / ``pgd-<camera model>``), so equal names never collide."""
    tag = params.method
    fp = params.fingerprints
    if params.method == "spoof" and fp is not None and fp.spoof is not None:
        tag = f"spoof-{safe_file_part(fp.spoof.device)}"
    if params.method in ("targeted", *ATTACK_METHODS, *TRANSPLANT_METHODS) and params.target:
        tag = f"{params.method}-{safe_file_part(params.target)}"
    return f"{path.stem}_{sha256[:8]}.{tag}{IMAGE_FORMATS[params.image_format]}"


def check_output_folder(out: Path, inputs: list[str | Path]) -> None:
    """Refuse an output folder that is an input file, or equal to or inside an input folder.

    Outputs inside an input folder would be read as inputs by the next run over that folder.

    Raises
    ------
    CamforensicsError
    """
    check_outputs(inputs, folder=out)  # camforensics.io.safety: the same rule for every command


@dataclass(frozen=True)
class AnonymizeSetup:
    """What an anonymize worker needs; calling it loads the fingerprints once per worker."""

    params: AnonymizeParams
    out_dir: str  # output folder, as the workers see it
    inputs: frozenset[str]  # resolved paths of every input file: never written
    devices: dict[str, LibraryEntry] = field(default_factory=dict)  # "removed" / "target": the caller's entries
    verify: LibraryListing | None = None  # the entries of the verify library, as the caller listed them
    stems: Mapping[str, str] = field(default_factory=dict)  # output stem of inputs sharing a file name (io.safety)

    def __call__(self) -> AnonymizeState:
        p = self.params
        fp = p.fingerprints
        removed = target = None
        if fp is not None and fp.remove:
            removed = Reference.load("removed", fp.remove, self.devices.get("removed"))
        if fp is not None and fp.spoof:
            target = Reference.load("target", fp.spoof, self.devices.get("target"))
        library: list[Reference] = []
        if p.verify_library is not None:
            listing = self.verify or LibraryListing.of(FingerprintLibrary(p.verify_library))
            library = [Reference.load("library", DeviceRef(p.verify_library, e.name), e) for e in listing.entries()]
        model = p.options.load() if isinstance(p.options, AnonymizerChoice) else None
        judges = p.judges.load() if p.judges is not None else []
        surrogate = p.options.load() if isinstance(p.options, (AttackChoice, TransplantOptions)) else None
        return AnonymizeState(self, removed, target, library, model, judges, surrogate)


@dataclass
class AnonymizeState:
    setup: AnonymizeSetup
    removed: Reference | None
    target: Reference | None
    library: list[Reference]
    model: LoadedModel | None = None  # the learned anonymizer (targeted, erase)
    judges: list[LoadedModel] = field(default_factory=list)  # the attributors judging before and after
    surrogate: Any = None  # fgsm / pgd: the attacked attributor; transplant: (profile, surrogates of the refinement)
    memo: InputMemo | None = None  # the last input's own measurements, shared by calls on that input


@dataclass
class InputMemo:
    """What :func:`anonymize_one` measures on an input regardless of the method (its residual query, the judges'
    verdicts), kept for the next call on the same input: evaluate anonymization runs every method on an image in
    turn. Holds one input at a time (keyed by its sha256)."""

    sha256: str | None = None
    values: dict[Any, Any] = field(default_factory=dict)

    def get(self, sha256: str, key: Any, compute: Callable[[], Any]) -> Any:
        if sha256 != self.sha256:
            self.sha256, self.values = sha256, {}
        if key not in self.values:
            self.values[key] = compute()
        return self.values[key]


def _alter(pixels: np.ndarray, state: AnonymizeState) -> tuple[np.ndarray, dict[str, Any]]:
    """The altered image and what the method fitted (alpha, strength, the attacked surrogate's verdicts)."""
    o = state.setup.params.options
    if isinstance(o, BaselineOptions):
        return o.alter(pixels)
    if isinstance(o, AnonymizerChoice):
        return o.alter(pixels, state.model)  # type: ignore[arg-type]
    if isinstance(o, AttackChoice):
        return o.attack(pixels, state.surrogate)
    if isinstance(o, TransplantOptions):
        return o.alter(pixels, state.surrogate)
    return o.alter(pixels, state.removed, state.target)


def _metadata_note(o: Any) -> str:
    if isinstance(o, TransplantOptions) and o.exif == "target":
        return f"EXIF Make and Model of the target ({o.target}) only; no XMP, ICC or text chunks"
    return "none (EXIF, XMP, ICC and text chunks are not written)"


def _query(pixels: np.ndarray, residual: ResidualParams) -> Query:
    rp = fitting_residual_params(residual, pixels.shape)
    return Query(extract_residual(pixels, params=rp), to_grey(pixels))


def _check(ref: Reference, before: Query, after: Query, match: MatchParams) -> dict[str, Any] | None:
    """PCE of input and output against one fingerprint (None when the image fits it in no rotation)."""
    if not fits(before.shape, ref.spectrum.shape, match=match):
        return None
    b = match_query(before, ref.spectrum, match=match)
    a = match_query(after, ref.spectrum, match=match)
    return {
        "device": ref.ref.device,
        "library": ref.ref.library,
        "threshold": match.threshold,
        "pce_before": b.pce,
        "pce_after": a.pce,
        "match_before": b.is_match,
        "match_after": a.is_match,
        "rotation_before": b.rotation,
        "rotation_after": a.rotation,
        "log10_p_fa_after": a.log10_p_fa,
    }


def anonymize_one(path: Path, state: AnonymizeState, record: dict[str, Any]) -> None:
    """Anonymize one image, write it and measure it (the per-file task of :func:`anonymize_images`)."""
    setup = state.setup
    p = setup.params
    img = load_image(path, max_pixels=p.max_pixels)
    record["input"] = img.info.to_dict()
    require_analysable(img.pixels.shape, path)  # what identify could not use is not "anonymized" either
    out_path = Path(setup.out_dir) / output_name(path.with_name(setup.stems.get(str(path), path.stem) + path.suffix), img.info.sha256, p)
    if str(out_path.resolve()) in setup.inputs:
        raise InputError(f"{path}: its output {out_path} would overwrite an input; choose another --output folder")
    pixels = img.pixels
    notes = []
    if pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        notes.append(f"{img.info.bit_depth}-bit samples rounded to 8 bits before the attack")
    if p.fingerprints is not None and (note := removal_note(p.fingerprints, state.removed)):
        notes.append(note)
    altered, fitted = _alter(pixels, state)
    o = p.options
    if isinstance(o, TransplantOptions):
        data = o.encode(altered, state.surrogate)
    else:
        data = encode_image(altered, p.image_format, p.quality)
    atomic_write_bytes(out_path, data)
    written = decode_image(data)  # measured as saved (a JPEG output includes its own loss)
    record["output"] = {
        "path": str(out_path),
        "sha256": sha256_bytes(data),
        "size_bytes": len(data),
        "format": p.image_format,
        "quality": p.quality if p.image_format == "jpeg" and not isinstance(o, TransplantOptions) else None,
        "metadata": _metadata_note(o),
        "notes": notes,
    }
    record["method"] = {"name": p.method, "parameters": p.method_parameters(), "fitted": fitted}
    record["quality"] = {"psnr": psnr(pixels, written), "ssim": ssim(pixels, written), "ssim_on": SSIM_ON}
    refs = [r for r in (state.removed, state.target) if r is not None and p.check] + state.library
    memo = state.memo or InputMemo()
    sha = img.info.sha256
    if refs:
        before = memo.get(sha, ("query", p.residual), lambda: _query(pixels, p.residual))
        after = _query(written, p.residual)
        checks = {r.role: _check(r, before, after, p.match) for r in refs if r.role != "library"}
        for role, found in checks.items():
            record[f"{role}_device"] = found
        if state.library:
            record["library_check"] = [c for r in state.library if (c := _check(r, before, after, p.match))]
    if state.judges and p.judges is not None:
        record["judges"] = judge_before_after(
            pixels,
            written,
            state.judges,
            params=p.judges.params,
            target=p.target,
            exif_make=img.info.exif_make,
            exif_model=img.info.exif_model,
            before_top1=lambda judge: memo.get(
                sha, ("judge", judge.entry.sha256, p.judges.params), lambda: top1(pixels, judge, p.judges.params)  # type: ignore[union-attr]
            ),
        )


class _Tally:
    """Summary counts kept while the results come in."""

    def __init__(self) -> None:
        self.psnr: list[float] = []
        self.ssim: list[float] = []
        self.removed = [0, 0]  # [checked, below threshold after]
        self.target = [0, 0]  # [checked, above threshold after]
        self.library_matched_after = 0
        self.judges = JudgeTally()
        self.surrogate = [0, 0, 0]  # fgsm / pgd: [attacked, image decision changed, image decision = label after]

    def __call__(self, result: dict[str, Any], extras: dict[str, Any]) -> None:
        if result.get("status") != "ok":
            return
        self.psnr.append(float(result["quality"]["psnr"]))
        self.ssim.append(float(result["quality"]["ssim"]))
        if result.get("removed_device"):
            self.removed[0] += 1
            self.removed[1] += not result["removed_device"]["match_after"]
        if result.get("target_device"):
            self.target[0] += 1
            self.target[1] += bool(result["target_device"]["match_after"])
        self.library_matched_after += any(c["match_after"] for c in result.get("library_check", []))
        self.judges.add(result.get("judges", []))
        attacked = result["method"]["fitted"].get("surrogate")
        if attacked:
            self.surrogate[0] += 1
            self.surrogate[1] += attacked["after"]["image_top1"] != attacked["before"]["image_top1"]
            self.surrogate[2] += attacked["after"]["image_top1"] == attacked["label"]

    def summary(self, *, targeted: bool = False) -> dict[str, Any]:
        finite = [v for v in self.psnr if np.isfinite(v)]
        out: dict[str, Any] = {
            "psnr_mean": float(np.mean(finite)) if finite else None,
            "psnr_min": float(min(self.psnr)) if self.psnr else None,
            "n_psnr_infinite": len(self.psnr) - len(finite),
            "ssim_mean": float(np.mean(self.ssim)) if self.ssim else None,
        }
        if self.removed[0]:
            out["removed_device"] = {"n_checked": self.removed[0], "n_below_threshold_after": self.removed[1]}
        if self.target[0]:
            out["target_device"] = {"n_checked": self.target[0], "n_above_threshold_after": self.target[1]}
        out["n_library_matched_after"] = self.library_matched_after
        if self.judges.counts:
            out["judges"] = self.judges.summary(targeted=targeted)
        n = self.surrogate[0]
        if n:
            out["surrogate"] = {
                "n_attacked": n,
                "n_decision_changed": self.surrogate[1],
                "success_rate": (self.surrogate[2] if targeted else self.surrogate[1]) / n,
            }
        return out


def anonymize_images(
    paths: list[str | Path],
    out_dir: str | Path,
    *,
    params: AnonymizeParams,
    execution: Execution = IN_PROCESS,
    tick: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Report:
    """Anonymize every image under ``paths`` into ``out_dir`` with ``params.method``; one result per image.

    Outputs are named ``<stem>_<sha256[:8]>.<method>.png`` (``.jpg`` with ``image_format="jpeg"``; the spoof
    and targeted methods' names hold the target device or camera model) and carry no metadata. With
    ``params.judges``, every judge's top-1 camera model of input and output is recorded per image. No input is ever written: an output folder
    equal to or inside an input folder is refused, and an output that would land on an input file is that file's
    error. A bad file becomes its own error result and the batch goes on.

    Raises
    ------
    CamforensicsError
        No input files, an output folder among the inputs, an unknown library or device (the message lists the
        enrolled ones), a model file whose sha256 differs from its manifest entry.
    """
    out = Path(out_dir)
    check_output_folder(out, paths)
    fp = params.fingerprints
    roles = (("removed", fp.remove), ("target", fp.spoof)) if fp is not None else ()
    used = [(role, ref) for role, ref in roles if ref is not None]
    entries = {role: (ref, ref.entry()) for role, ref in used}  # fails here, once, for an unknown library or device
    verify = None
    if params.verify_library is not None:
        verify = LibraryListing.of(FingerprintLibrary(params.verify_library))  # opened and listed once
    # Check the models' files (sha256) once, before any image is read; their providers go into run.models.
    o = params.options
    model = o.load() if isinstance(o, AnonymizerChoice) else None
    judges = params.judges.load() if params.judges is not None else []
    if isinstance(o, (AttackChoice, TransplantOptions)):
        o.load()  # the surrogate checkpoint / the profile: readable, the sha256 the choice recorded
    files = gather_inputs(paths, on_start=on_start)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(command="anonymize", parameters=params.to_dict())
    models = [model_context(model, "anonymizer", o.to_dict())] if model is not None else []
    if isinstance(o, AttackChoice):
        models.append(attack_context(o))
    if isinstance(o, TransplantOptions):
        report.context["profile"] = o.load()[0].summary()  # the target's camera profile and its sha256
    models += [judge_context(j) for j in judges]
    if models:
        report.context["models"] = models
    if params.judges is not None and not params.judges.names:
        report.context["judges_note"] = f"no camera-model attributor is registered in {params.judges.models_dir}"
    report.context["devices"] = {role: {"library": ref.library, **e.summary()} for role, (ref, e) in entries.items()}
    if params.verify_library is not None and verify is not None:
        report.context["verify_library"] = {
            "path": params.verify_library,
            "entries_used": [e.summary() for e in verify.entries()],
        }
    parallel = execution.scheduler is not None or (execution.workers or os.cpu_count() or 1) > 1
    if parallel:  # one process per core: no onnxruntime intra-op threads on top
        if isinstance(o, (AnonymizerChoice, AttackChoice)) and o.threads == 0:
            params = replace(params, options=replace(o, threads=1))
        if params.judges is not None and params.judges.threads == 0:
            params = replace(params, judges=replace(params.judges, threads=1))
    entries_by_role = {role: e for role, (_, e) in entries.items()}
    setup = AnonymizeSetup(params, str(out), resolved(files), entries_by_role, verify, unique_stems(files))
    tally = _Tally()
    with temporaries_swept(out):  # a worker stopped by Ctrl-C leaves no half-written output
        run_tasks(files, anonymize_one, setup, report, execution=execution, on_result=tally, tick=tick)
    report.finish(**tally.summary(targeted=params.target is not None))
    return report

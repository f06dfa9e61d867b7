"""anonymize: remove a device's fingerprint, plant another's, run a learned anonymizer, attack an attributor
(FGSM, PGD), or apply a classical baseline; measure the result.

Each input image is read in stored (sensor) order, altered by one method of :mod:`camforensics.core.anonymize`,
by a registered learned anonymizer (:mod:`camforensics.pipelines.anonymize_models`) or by an adversarial attack on
an attributor checkpoint (:mod:`camforensics.pipelines.anonymize_attacks`), written without metadata
into the output folder, and measured: PSNR and SSIM against the input, the PCE of input and output against the
devices involved (the removed device, the spoof target, every device of a verification library), and the
verdicts of the camera-model attributors (the judges) before and after.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.anonymize import (
    BASELINES,
    PlantParams,
    RemovalParams,
    apply_plant,
    apply_removal,
    fit_plant,
    fit_removal,
    fitting_residual_params,
)
from camforensics.core.fingerprint import Reliability
from camforensics.core.matching import Query, fits, match_query
from camforensics.core.params import PCE_THRESHOLD, MatchParams, ResidualParams
from camforensics.core.pce import Spectrum, spectrum_of
from camforensics.core.quality import psnr, ssim
from camforensics.core.residual import extract_residual, to_grey
from camforensics.errors import CamforensicsError, InputError, ParameterError, SizeMismatchError
from camforensics.inference.anonymizer import anonymize_image
from camforensics.inference.registry import LoadedModel
from camforensics.io.folders import safe_file_part
from camforensics.io.hashing import sha256_bytes
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.io.library import FingerprintLibrary, LibraryEntry
from camforensics.io.safety import check_outputs, require_analysable, resolved, temporaries_swept, unique_stems
from camforensics.pipelines.anonymize_attacks import ATTACK_METHODS, AttackChoice, attack_context
from camforensics.pipelines.anonymize_models import (
    LEARNED_METHODS,
    AnonymizerChoice,
    JudgePanel,
    JudgeTally,
    judge_before_after,
    judge_context,
    model_context,
    top1,
)
from camforensics.pipelines.batch import gather_inputs, run_tasks
from camforensics.pipelines.executor import IN_PROCESS, Execution
from camforensics.reports.atomic import atomic_write_bytes
from camforensics.reports.report import Report

FINGERPRINT_METHODS = ("remove-fingerprint", "spoof")
METHODS = (*FINGERPRINT_METHODS, *LEARNED_METHODS, *ATTACK_METHODS, *BASELINES)  # + targeted, erase, fgsm, pgd, ...
IMAGE_FORMATS = {"png": ".png", "jpeg": ".jpg"}
SSIM_ON = "mean of the per-channel SSIM (R, G, B); grey images: the one channel"


@dataclass(frozen=True)
class DeviceRef:
    """A device in a fingerprint library, written ``LIB:DEVICE`` on the command line."""

    library: str  # library folder
    device: str  # enrolled name

    @classmethod
    def parse(cls, text: str, *, option: str = "--remove-fingerprint") -> DeviceRef:
        """Split ``LIB:DEVICE`` at the last colon (device names cannot hold one; library paths may).

        Raises
        ------
        ParameterError
            No colon, or an empty library or device part.
        """
        lib, sep, name = text.rpartition(":")
        if not sep or not lib or not name:
            raise ParameterError(f"{option} {text!r}: expected LIB:DEVICE, e.g. lib/:Canon_Ixus70_0")
        return cls(lib, name)

    def entry(self) -> LibraryEntry:
        """The library entry (LibraryError naming the enrolled devices when unknown)."""
        return FingerprintLibrary(self.library).entry(self.device)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AnonymizeParams:
    """Every choice of an anonymize run; written into the report's ``run.parameters``."""

    method: str  # one of METHODS
    remove: DeviceRef | None = None  # the device whose fingerprint is removed (spoof: removed first when given)
    spoof: DeviceRef | None = None  # the target device of the fingerprint-copy attack
    removal: RemovalParams = field(default_factory=RemovalParams)  # alpha fit of the removal
    debias: bool = True  # divide the removal by the removed fingerprint's split-half reliability when it has one
    plant: PlantParams = field(default_factory=PlantParams)  # strength fit of the copy attack
    strength: float | None = None  # fixed copy-attack strength; None fits it to plant.target_pce
    kernel: int = 5  # side of the median / Gaussian window (pixels)
    recompress_quality: int = 75  # JPEG quality of the "jpeg" baseline
    denoise_sigma0: float = 3.0  # sigma0 of the "denoise" baseline (0..255 scale)
    image_format: str = "png"  # output container: png (lossless) or jpeg
    quality: int = 95  # JPEG quality of the written outputs (image_format "jpeg")
    check: bool = True  # measure the PCE of input and output against the removed device and the spoof target
    verify_library: str | None = None  # also measure against every fitting device of this library
    residual: ResidualParams = field(default_factory=ResidualParams)  # residual of the PCE checks (queries)
    threshold: float = PCE_THRESHOLD  # PCE decision threshold of the checks
    max_pixels: int = DEFAULT_MAX_PIXELS  # decompression-bomb guard
    anonymizer: AnonymizerChoice | None = None  # the learned model of "targeted" / "erase" (anonymizer_choice)
    judges: JudgePanel | None = None  # attributors judging each image before and after; None: no judging
    attack: AttackChoice | None = None  # the surrogate and strength of "fgsm" / "pgd" (attack_choice)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ParameterError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.method in LEARNED_METHODS and self.anonymizer is None:
            raise ParameterError(f"--method {self.method} needs a registered model (see anonymizer_choice)")
        if self.method not in LEARNED_METHODS and self.anonymizer is not None:
            raise ParameterError(f"--method {self.method} runs no learned model; use --method targeted or erase")
        if self.method in ATTACK_METHODS and self.attack is None:
            raise ParameterError(f"--method {self.method} needs --attack-model RUN/best.pt (see attack_choice)")
        if self.method not in ATTACK_METHODS and self.attack is not None:
            raise ParameterError(f"--attack-model is for --method fgsm or pgd, not {self.method}")
        if self.method in (*LEARNED_METHODS, *ATTACK_METHODS) and (self.remove is not None or self.spoof is not None):
            raise ParameterError(
                f"--method {self.method} uses no fingerprint; drop --remove-fingerprint/--spoof-device "
                "(measure the PCE against enrolled devices with --verify-library LIB)"
            )
        if self.method == "remove-fingerprint" and self.remove is None:
            raise ParameterError("--method remove-fingerprint needs --remove-fingerprint LIB:DEVICE")
        if self.method == "spoof" and self.spoof is None:
            raise ParameterError("--method spoof needs --spoof-device LIB:DEVICE (the device to imitate)")
        if self.method in BASELINES and (self.remove is not None or self.spoof is not None):
            raise ParameterError(
                f"--method {self.method} uses no fingerprint; drop --remove-fingerprint/--spoof-device "
                "(measure the PCE against enrolled devices with --verify-library LIB)"
            )
        if self.method == "remove-fingerprint" and self.spoof is not None:
            raise ParameterError("--spoof-device needs --method spoof")
        if self.image_format not in IMAGE_FORMATS:
            raise ParameterError(f"unknown image format {self.image_format!r}; choose one of {', '.join(IMAGE_FORMATS)}")
        for name, value in (("--quality", self.quality), ("--recompress-quality", self.recompress_quality)):
            if not 1 <= value <= 100:
                raise ParameterError(f"{name} must be between 1 and 100, got {value!r}")
        if self.kernel < 3 or self.kernel % 2 == 0:
            raise ParameterError(f"--kernel must be an odd size >= 3, got {self.kernel!r}")
        if not self.denoise_sigma0 > 0:
            raise ParameterError(f"--denoise-sigma0 must be > 0, got {self.denoise_sigma0!r}")
        if self.strength is not None and not self.strength > 0:
            raise ParameterError(f"--strength must be > 0, got {self.strength!r}")

    @property
    def match(self) -> MatchParams:
        """Checks match same-size images in any rotation that fits, at zero shift (no crop search)."""
        return MatchParams(threshold=self.threshold, crop_anchor="none")

    def baseline_options(self) -> dict[str, Any]:
        """Keyword arguments of the baseline function of ``method``."""
        if self.method in ("median", "gaussian"):
            return {"size": self.kernel}
        if self.method == "jpeg":
            return {"quality": self.recompress_quality}
        if self.method == "denoise":
            return {"params": ResidualParams(sigma0=self.denoise_sigma0)}
        return {}

    def method_parameters(self) -> dict[str, Any]:
        """The parameters that shape the method's output (written with every result)."""
        if self.method == "remove-fingerprint":
            return {
                "device": self.remove.to_dict(),  # type: ignore[union-attr]
                "removal": self.removal.to_dict(),
                "debias": self.debias,
            }
        if self.method in LEARNED_METHODS:
            return self.anonymizer.to_dict()  # type: ignore[union-attr]
        if self.method in ATTACK_METHODS:
            return self.attack.to_dict()  # type: ignore[union-attr]
        if self.method == "spoof":
            return {
                "target": self.spoof.to_dict(),  # type: ignore[union-attr]
                "removed_first": self.remove.to_dict() if self.remove else None,
                "strength": self.strength if self.strength is not None else "fitted",
                "plant": self.plant.to_dict(),
                "removal": self.removal.to_dict() if self.remove else None,
                "debias": self.debias if self.remove else None,
            }
        options = self.baseline_options()
        if "params" in options:
            options = {"residual": options["params"].to_dict()}
        return options

    @property
    def target(self) -> str | None:
        """The camera model the output should look taken by (targeted, or a targeted attack); else None."""
        if self.anonymizer is not None:
            return self.anonymizer.target
        return self.attack.target if self.attack is not None else None

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
    if params.method == "spoof" and params.spoof is not None:
        tag = f"spoof-{safe_file_part(params.spoof.device)}"
    if params.method in ("targeted", *ATTACK_METHODS) and params.target:
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


def encode_image(pixels: np.ndarray, image_format: str, quality: int) -> bytes:
    """PNG or JPEG bytes of an 8-bit grey or RGB image, with no metadata (no EXIF, XMP, ICC, text chunks)."""
    import cv2

    bgr = pixels if pixels.ndim == 2 else np.ascontiguousarray(pixels[:, :, ::-1])
    flags = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if image_format == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 6]
    ok, buf = cv2.imencode(IMAGE_FORMATS[image_format], bgr, flags)
    if not ok:
        raise CamforensicsError(f"could not encode the output as {image_format}")
    return buf.tobytes()


def decode_image(data: bytes) -> np.ndarray:
    """Pixels (RGB or grey, uint8) of bytes written by :func:`encode_image`."""
    import cv2

    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    return pixels if pixels.ndim == 2 else np.ascontiguousarray(pixels[:, :, ::-1])


@dataclass(frozen=True)
class Reference:
    """A fingerprint checked against: its spectrum for PCE, and K itself for the attacks."""

    role: str  # "removed", "target" or "library"
    ref: DeviceRef
    k: np.ndarray
    spectrum: Spectrum
    reliability: float | None = None  # split-half reliability of K (library entry); None: not recorded

    @classmethod
    def load(cls, role: str, ref: DeviceRef, entry: LibraryEntry | None = None) -> Reference:
        entry = entry or ref.entry()
        k = entry.load()
        rel = Reliability.from_dict(entry.meta.get("reliability"))
        return cls(role, ref, k, spectrum_of(k, conjugate=True), rel.reliability if rel is not None else None)


@dataclass(frozen=True)
class AnonymizeSetup:
    """What an anonymize worker needs; calling it loads the fingerprints once per worker."""

    params: AnonymizeParams
    out_dir: str  # output folder, as the workers see it
    inputs: frozenset[str]  # resolved paths of every input file: never written
    stems: Mapping[str, str] = field(default_factory=dict)  # output stem of inputs sharing a file name (io.safety)

    def __call__(self) -> AnonymizeState:
        p = self.params
        removed = Reference.load("removed", p.remove) if p.remove else None
        target = Reference.load("target", p.spoof) if p.spoof else None
        library: list[Reference] = []
        if p.verify_library is not None:
            lib = FingerprintLibrary(p.verify_library)
            library = [Reference.load("library", DeviceRef(p.verify_library, e.name), e) for e in lib.entries()]
        model = p.anonymizer.load() if p.anonymizer is not None else None
        judges = p.judges.load() if p.judges is not None else []
        surrogate = p.attack.load() if p.attack is not None else None
        return AnonymizeState(self, removed, target, library, model, judges, surrogate)


@dataclass
class AnonymizeState:
    setup: AnonymizeSetup
    removed: Reference | None
    target: Reference | None
    library: list[Reference]
    model: LoadedModel | None = None  # the learned anonymizer (targeted, erase)
    judges: list[LoadedModel] = field(default_factory=list)  # the attributors judging before and after
    surrogate: Any = None  # the attacked attributor of fgsm / pgd (camforensics.training.adversarial.Surrogate)
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


def removal_params(p: AnonymizeParams, removed: Reference) -> RemovalParams:
    """The removal fit's parameters for the removed fingerprint: debiased by its reliability when ``p.debias``
    and the library entry records one above zero."""
    if p.debias and removed.reliability:
        return replace(p.removal, reliability=removed.reliability)
    return p.removal


# Below this reliability the debiased removal subtracts more than ten times the fitted pattern: said in a note.
LOW_RELIABILITY = 0.1


def removal_note(p: AnonymizeParams, removed: Reference | None) -> str | None:
    """Why the removal could not be debiased, or that it is heavily debiased (None otherwise)."""
    if removed is None or not p.debias:
        return None
    if removed.reliability and removed.reliability < LOW_RELIABILITY:
        return (
            f"fingerprint of {removed.ref.device!r} has reliability {removed.reliability:.3f}: most of the estimate is "
            f"estimation noise, and the debiased removal subtracts {1 / removed.reliability:.0f} times the fitted "
            "pattern (PSNR falls accordingly); enrolling more flat-field images makes it lighter"
        )
    if removed.reliability:
        return None
    why = "reliability 0: its halves share no pattern" if removed.reliability == 0 else "no reliability recorded"
    return (
        f"fingerprint of {removed.ref.device!r} has {why} (one image, or enrolled by an older version): the removal "
        "zeroes the correlation with that estimate only, and an examiner's independent estimate of the sensor will "
        "still see the part of its pattern the estimate lacks; enroll the device again from two or more images"
    )


def _needs_size(ref: Reference, shape: tuple[int, ...]) -> np.ndarray:
    """K of ``ref`` when the image has its size in stored order; else a SizeMismatchError naming both sizes."""
    if ref.k.shape != tuple(shape[:2]):
        h, w = shape[:2]
        kh, kw = ref.k.shape
        raise SizeMismatchError(
            f"image is {w}x{h} pixels but the fingerprint of {ref.ref.device!r} is {kw}x{kh} (width x height, stored "
            "order): the attack needs a full-size camera original of that device's sensor"
        )
    return ref.k


def _alter(pixels: np.ndarray, state: AnonymizeState) -> tuple[np.ndarray, dict[str, Any]]:
    """The altered image and what the method fitted (alpha, strength)."""
    p = state.setup.params
    if p.method in BASELINES:
        return BASELINES[p.method](pixels, **p.baseline_options()), {}
    if p.method in LEARNED_METHODS:
        a = p.anonymizer
        out = anonymize_image(pixels, state.model, target=a.target, tile=a.tile, overlap=a.overlap)  # type: ignore
        if pixels.ndim == 2:  # the graph sees grey as three equal channels; give back one
            out = np.clip(np.rint(out.mean(axis=2)), 0, 255).astype(np.uint8)
        return out, {}
    if p.method in ATTACK_METHODS:
        return p.attack.attack(pixels, state.surrogate)  # type: ignore[union-attr]
    fitted: dict[str, Any] = {}
    x = pixels
    if p.remove is not None:
        k = _needs_size(state.removed, x.shape)  # type: ignore[arg-type]
        fit = fit_removal(x, k, params=removal_params(p, state.removed))  # type: ignore[arg-type]
        x = apply_removal(x, k, fit.alpha, dither_seed=p.removal.dither_seed)
        fitted["removal"] = fit.to_dict()
    if p.method == "spoof":
        k = _needs_size(state.target, x.shape)  # type: ignore[arg-type]
        if p.strength is None:
            plant = fit_plant(x, k, params=p.plant)
            strength = plant.strength
            fitted["plant"] = plant.to_dict()
        else:
            strength = p.strength
        x = apply_plant(x, k, strength, dither_seed=p.plant.dither_seed)
        fitted["strength"] = strength
    return x, fitted


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
    if p.remove is not None and (note := removal_note(p, state.removed)):
        notes.append(note)
    altered, fitted = _alter(pixels, state)
    data = encode_image(altered, p.image_format, p.quality)
    atomic_write_bytes(out_path, data)
    written = decode_image(data)  # measured as saved (a JPEG output includes its own loss)
    record["output"] = {
        "path": str(out_path),
        "sha256": sha256_bytes(data),
        "size_bytes": len(data),
        "format": p.image_format,
        "quality": p.quality if p.image_format == "jpeg" else None,
        "metadata": "none (EXIF, XMP, ICC and text chunks are not written)",
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
    if state.judges:
        record["judges"] = judge_before_after(
            pixels,
            written,
            state.judges,
            params=p.judges.params,  # type: ignore[union-attr]
            target=p.target,
            exif_make=img.info.exif_make,
            exif_model=img.info.exif_model,
            before_top1=lambda judge: memo.get(
                sha, ("judge", judge.entry.sha256, p.judges.params), lambda: top1(pixels, judge, p.judges.params)
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
    used = [(role, ref) for role, ref in (("removed", params.remove), ("target", params.spoof)) if ref is not None]
    entries = {role: (ref, ref.entry()) for role, ref in used}  # fails here, once, for an unknown library or device
    if params.verify_library is not None:
        verify = FingerprintLibrary(params.verify_library)
    # Check the models' files (sha256) once, before any image is read; their providers go into run.models.
    model = params.anonymizer.load() if params.anonymizer is not None else None
    judges = params.judges.load() if params.judges is not None else []
    if params.attack is not None:
        params.attack.load()  # the surrogate checkpoint: readable, an attributor, the sha256 the choice recorded
    files = gather_inputs(paths, on_start=on_start)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(command="anonymize", parameters=params.to_dict())
    models = [model_context(model, "anonymizer", params.anonymizer.to_dict())] if model is not None else []  # type: ignore[union-attr]
    if params.attack is not None:
        models.append(attack_context(params.attack))
    models += [judge_context(j) for j in judges]
    if models:
        report.context["models"] = models
    if params.judges is not None and not params.judges.names:
        report.context["judges_note"] = f"no camera-model attributor is registered in {params.judges.models_dir}"
    report.context["devices"] = {role: {"library": ref.library, **e.summary()} for role, (ref, e) in entries.items()}
    if params.verify_library is not None:
        report.context["verify_library"] = {
            "path": params.verify_library,
            "entries_used": [e.summary() for e in verify.entries()],
        }
    parallel = execution.scheduler is not None or (execution.workers or os.cpu_count() or 1) > 1
    if parallel:  # one process per core: no onnxruntime intra-op threads on top
        if params.anonymizer is not None and params.anonymizer.threads == 0:
            params = replace(params, anonymizer=replace(params.anonymizer, threads=1))
        if params.judges is not None and params.judges.threads == 0:
            params = replace(params, judges=replace(params.judges, threads=1))
        if params.attack is not None and params.attack.threads == 0:
            params = replace(params, attack=replace(params.attack, threads=1))
    setup = AnonymizeSetup(params, str(out), resolved(files), unique_stems(files))
    tally = _Tally()
    with temporaries_swept(out):  # a worker stopped by Ctrl-C leaves no half-written output
        run_tasks(files, anonymize_one, setup, report, execution=execution, on_result=tally, tick=tick)
    report.finish(**tally.summary(targeted=params.target is not None))
    return report

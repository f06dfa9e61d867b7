"""camforensics evaluate anonymization: the table of anonymization methods against a panel of judges (issue 7,
after Cama, Andrews et al. 2020).

Rows are the methods (the classical baselines, remove-fingerprint, and the learned ``targeted`` / ``erase``
anonymizers when a model of that task is registered), columns the registered camera-model attributors (the
judges, which must be independent of anything a learned anonymizer was trained against). Each image of a
labelled data set is altered by each method exactly as ``camforensics anonymize`` alters it
(:func:`camforensics.pipelines.anonymize.anonymize_one`), judged before and after
(:func:`~camforensics.pipelines.anonymize.learned.judge_before_after`) and measured for quality and for the PCE
with its own device, against a fingerprint independent of the one remove-fingerprint subtracts
(:mod:`camforensics.pipelines.anonymize.prints`). The counts and rates are in
:mod:`camforensics.pipelines.anonymize.table`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from camforensics import __version__
from camforensics.core.anonymize import BASELINES
from camforensics.core.params import (
    PCE_THRESHOLD,
    REFINE_COVER,
    REFINE_DOMAIN,
    REFINE_EPSILON,
    REFINE_ITERATIONS,
    REFINE_MOMENTUM,
    REFINE_PSNR,
    REFINE_STEP,
)
from camforensics.errors import CamforensicsError, ParameterError
from camforensics.inference.anonymizer import class_key
from camforensics.inference.registry import ModelRegistry
from camforensics.io.datasets import scan_dataset
from camforensics.io.records import ImageRecord
from camforensics.pipelines.anonymize.baselines import BaselineOptions
from camforensics.pipelines.anonymize.batch import (
    AnonymizeParams,
    AnonymizeSetup,
    AnonymizeState,
    InputMemo,
    MethodOptions,
    anonymize_one,
    check_output_folder,
)
from camforensics.pipelines.anonymize.fingerprint import DeviceRef, FingerprintOptions
from camforensics.pipelines.anonymize.judges import JudgePanel, judge_context, model_context
from camforensics.pipelines.anonymize.learned import TASK_OF_METHOD, AnonymizerChoice, anonymizer_choice, no_model_message
from camforensics.pipelines.anonymize.prints import DevicePrints, prints_from_flats, prints_from_libraries
from camforensics.pipelines.anonymize.table import InputsTally, MethodTally, judge_outcomes, markdown_table
from camforensics.pipelines.executor import run_one
from camforensics.reports.atomic import atomic_write_text
from camforensics.reports.report import Report

REMOVE = "remove-fingerprint"
DEFAULT_METHODS = (*BASELINES, REMOVE)  # median, gaussian, jpeg, denoise, remove-fingerprint (+ learned, if any)
# The targeted methods without a learned model (camera profiles, surrogates), run when asked for by --methods.
TRANSFER_METHODS = ("retable", "transplant", "transplant-refine", "fgsm", "pgd")
EVAL_METHODS = (*DEFAULT_METHODS, *TASK_OF_METHOD, *TRANSFER_METHODS)  # spoof is not a row: it needs a target device
_IMAGE_STREAM = 0xA70E  # seed-sequence tags: image selection, target draws
_TARGET_STREAM = 0x7A26


@dataclass(frozen=True)
class EvalAnonParams:
    """How images, targets and methods are chosen (written into the report so a run can be repeated)."""

    methods: tuple[str, ...] | None = None  # None: DEFAULT_METHODS plus targeted / erase when a model exists
    images_per_device: int = 0  # images drawn per device (seeded); 0: all of them
    content: str = "nat"  # images evaluated: nat (natural scenes), flat, or all
    seed: int = 0  # seed of the image draw, the flat-field halves and the targets
    targets_per_image: int = 1  # targets drawn per image among the classes other than its true model
    threshold: float = PCE_THRESHOLD  # PCE below which an image no longer matches its own device
    keep_images: bool = False  # keep the outputs under OUT/images (else a temporary folder, deleted)

    def __post_init__(self) -> None:
        if self.content not in ("all", "nat", "flat"):
            raise ParameterError(f"unknown content {self.content!r}; choose nat, flat or all")
        if self.images_per_device < 0:
            raise ParameterError(f"--images must be >= 0 (0: all), got {self.images_per_device}")
        if self.targets_per_image < 1:
            raise ParameterError(f"--targets-per-image must be >= 1, got {self.targets_per_image}")
        for m in self.methods or ():
            if m not in EVAL_METHODS:
                raise ParameterError(f"unknown method {m!r}; choose among {', '.join(EVAL_METHODS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LearnedOptions:
    """Which learned anonymizers may run and how (the --targeted-model / --erase-model options)."""

    models_dir: str | None = None  # registry folder (None: the shipped models/)
    targeted_model: str | None = None  # registry name; None: the default targeted anonymizer, if any
    erase_model: str | None = None  # registry name; None: the default trace eraser, if any
    tile: int = 512  # tile side in pixels (0: whole image)
    overlap: int = 32  # tile overlap and context, pixels
    threads: int = 0  # onnxruntime intra-op threads
    profiles: str | None = None  # camera profiles of transplant / retable (None: the shipped models/profiles)
    epsilon: float = 4.0  # L_inf budget of fgsm and pgd (grey levels)
    iterations: int = 10  # iterations of pgd
    refine_window: int = 1024  # centred window of the refinement (0: whole image)
    refine_psnr: float | None = REFINE_PSNR  # PSNR floor of the refinement (None: none)
    refine_iterations: int = REFINE_ITERATIONS  # steps of transplant-refine
    refine_epsilon: float = REFINE_EPSILON  # L_inf budget of transplant-refine around the transplant (grey levels)
    refine_step: float = REFINE_STEP  # its sign step (grey levels)
    refine_momentum: float = REFINE_MOMENTUM  # its MI-FGSM momentum
    refine_cover: int = REFINE_COVER  # its covered decision patches (0: the whole window)
    refine_domain: str = REFINE_DOMAIN  # its steps: on the pixels or on the saved file's DCT coefficients


def plan_methods(
    params: EvalAnonParams, learned: LearnedOptions
) -> tuple[list[str], dict[str, str], dict[str, AnonymizerChoice]]:
    """The methods to run, the skipped ones with their reason, and the learned models' choices.

    A learned method is in the default list when a model of its task is registered as default or named;
    asked for (or named) without a model, it is skipped with the reason.
    """
    registry = ModelRegistry(learned.models_dir)
    names = {"targeted": learned.targeted_model, "erase": learned.erase_model}
    choices: dict[str, AnonymizerChoice] = {}
    missing: dict[str, str] = {}
    for method, task in TASK_OF_METHOD.items():
        entry = registry.resolve(names[method], task)  # unknown names fail here, loudly
        if entry is None:
            missing[method] = no_model_message(method, registry)
            continue
        target = entry.classes[0] if method == "targeted" else None  # replaced per item
        choices[method] = anonymizer_choice(method, entry.name, learned.models_dir, target=target, tile=learned.tile,
                                            overlap=learned.overlap, threads=learned.threads)  # fmt: skip
    wanted = list(params.methods) if params.methods else [*DEFAULT_METHODS, *choices]
    wanted = list(dict.fromkeys(wanted))
    from camforensics.pipelines.anonymize.refine import read_surrogates
    from camforensics.pipelines.profile import known_profiles

    if any(m in ("retable", "transplant", "transplant-refine") for m in wanted) and not known_profiles(learned.profiles):
        for m in ("retable", "transplant", "transplant-refine"):
            missing[m] = f"no camera profile in {learned.profiles or 'models/profiles'} (build them with models/build_profiles.sh)"
    if any(m in ("transplant-refine", "fgsm", "pgd") for m in wanted) and not read_surrogates():
        for m in ("transplant-refine", "fgsm", "pgd"):
            missing.setdefault(m, "no surrogate attributor in models/surrogates (build them with models/build_surrogates.sh)")
    run = [m for m in wanted if m not in missing]
    return run, {m: missing[m] for m in wanted if m in missing}, choices


def select_images(
    records: Sequence[ImageRecord], params: EvalAnonParams, exclude: frozenset[Path]
) -> list[ImageRecord]:
    """The images evaluated: of the chosen content, not used for a fingerprint, ``images_per_device`` per device
    drawn at random (seeded; all when 0), in path order."""
    by_device: dict[str, list[ImageRecord]] = {}
    for r in sorted(records):
        if r.path in exclude or (params.content != "all" and not r.content.lower().startswith(params.content)):
            continue
        by_device.setdefault(r.device, []).append(r)
    chosen: list[ImageRecord] = []
    rng = np.random.default_rng(np.random.SeedSequence([params.seed, _IMAGE_STREAM]))
    for device in sorted(by_device):
        recs = by_device[device]
        keep = rng.permutation(len(recs))[: params.images_per_device or len(recs)]
        chosen += [recs[i] for i in sorted(keep)]
    return sorted(chosen)


def draw_targets(true_model: str, classes: Sequence[str], n: int, *, seed: int, index: int) -> list[str]:
    """``n`` distinct classes other than ``true_model`` (compared ignoring case, spaces, underscores), seeded by
    ``seed`` and the image's ``index``; fewer when the classes do not have ``n`` others."""
    others = [c for c in classes if class_key(c) != class_key(true_model)]
    rng = np.random.default_rng(np.random.SeedSequence([seed, _TARGET_STREAM, index]))
    return [others[i] for i in rng.permutation(len(others))[:n]]


def _target_classes(
    methods: Sequence[str], choices: dict[str, AnonymizerChoice], judges: list[Any]
) -> tuple[list[str], str]:
    if "targeted" in methods:
        name = choices["targeted"].name
        return list(ModelRegistry(choices["targeted"].models_dir).entry(name).classes), f"the classes of {name}"
    if not judges:
        return [], "no targets: no targeted anonymizer and no judge"
    keys = set.intersection(*({class_key(c) for c in j.entry.classes} for j in judges))
    return [c for c in judges[0].entry.classes if class_key(c) in keys], "the classes every judge knows"


def evaluate_anonymization(
    data: str | os.PathLike[str],
    *,
    params: EvalAnonParams = EvalAnonParams(),
    judges: JudgePanel | None,
    learned: LearnedOptions = LearnedOptions(),
    layout: str = "auto",
    library: str | os.PathLike[str] | None = None,
    attack_library: str | os.PathLike[str] | None = None,
    device_map: dict[str, str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    on_item: Callable[[int, int], None] | None = None,
    on_flat: Callable[[int, int], None] | None = None,
) -> Report:
    """Run every method on every selected image, judge and measure it, and tabulate.

    Parameters
    ----------
    data : path-like
        A labelled data set (any layout of :func:`camforensics.io.datasets.scan_dataset`).
    params : EvalAnonParams, keyword-only
    judges : JudgePanel or None, keyword-only
        The camera-model attributors judging each image (:func:`~camforensics.pipelines.anonymize.learned.judge_panel`).
    learned : LearnedOptions, keyword-only
    library, attack_library : path-like, optional, keyword-only
        Fingerprints for the PCE check and for remove-fingerprint; default: the data set's flat-field halves.
    device_map : dict, optional, keyword-only
        Library name -> data set device, when they differ.
    output_dir : path-like, optional, keyword-only
        Where metrics.json, table.md (and images/ with ``keep_images``) go; None writes nothing.
    on_item : callable, optional, keyword-only
        Called with (items done, items in all) after each item (progress).
    on_flat : callable, optional, keyword-only
        Called with (flat-field images read, in all) while the fingerprint halves are estimated (progress).

    Returns
    -------
    Report
        One result per (image, method[, target]); ``summary`` holds the metrics and ``outputs``.

    Raises
    ------
    CamforensicsError
        No image to evaluate, no method left to run, an unknown model name, an output folder inside the data set.
    """
    from camforensics.pipelines.evaluate import write_metrics

    scan = scan_dataset(data, layout=layout)
    if not scan.records:
        raise CamforensicsError(f"the data set {str(scan.root)!r} holds no image records (layout {scan.layout})")
    out = Path(output_dir) if output_dir is not None else None
    if out is not None and params.keep_images:
        check_output_folder(out, [scan.root])
    methods, skipped, choices = plan_methods(params, learned)
    if library is not None:
        prints = prints_from_libraries(scan.devices, library, attack_library=attack_library, device_map=device_map)
    else:
        prints = prints_from_flats(scan.records, seed=params.seed, on_image=on_flat)
    if REMOVE in methods and prints.attack_refused:
        skipped[REMOVE] = prints.attack_refused
        methods.remove(REMOVE)
    if not methods:
        raise CamforensicsError(f"no method can run: {'; '.join(f'{m}: {r}' for m, r in skipped.items())}")
    loaded_judges = judges.load() if judges is not None else []
    transfer = TransferRun(learned, methods, loaded_judges) if any(m in TRANSFER_METHODS for m in methods) else None
    taught = transfer.profile_photos(scan.records) if transfer is not None else frozenset()
    images = select_images(scan.records, params, prints.used_paths | taught)  # never a photo a profile learned from
    if not images:
        raise CamforensicsError(
            f"no {params.content} image of {scan.root} is left to evaluate (flat-field images that made a "
            "fingerprint are never evaluated)"
        )
    models = {m: c.load() for m, c in choices.items() if m in methods}
    classes, rule = _target_classes(methods, choices, loaded_judges)
    if transfer is not None and "targeted" not in methods:
        classes, rule = transfer.classes(classes), rule + " that have a camera profile"
    targets = {r.path: draw_targets(r.model_id, classes, params.targets_per_image, seed=params.seed, index=i)
               for i, r in enumerate(images)}  # fmt: skip
    notes = _notes(scan, images, loaded_judges, prints, methods)

    report = Report(
        command="evaluate anonymization",
        parameters={
            "data": str(scan.root),
            "layout": scan.layout,
            "evaluation": params.to_dict(),
            "methods_run": methods,
            "library": str(library) if library is not None else None,
            "attack_library": str(attack_library) if attack_library is not None else None,
            "judges": judges.to_dict() if judges is not None else None,
            "output_dir": str(out) if out is not None else None,
        },
        context={
            "models": [judge_context(j) for j in loaded_judges]
            + [model_context(models[m], "anonymizer", choices[m].to_dict()) for m in models]
        },
    )
    items = [
        (r, m, t) for r in images for m in methods
        for t in ((targets[r.path] or [None]) if m in ("targeted", *TRANSFER_METHODS) else [None])
    ]
    tallies = {m: MethodTally() for m in methods}
    inputs_tally = InputsTally()
    not_run: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="camforensics-evalanon-") as tmp:
        img_root = out / "images" if out is not None and params.keep_images else Path(tmp)
        inputs = frozenset(str(r.path.resolve()) for r in images)
        memo = InputMemo()  # each image's own query and verdicts, computed once for all its methods
        for done, (rec, method, target) in enumerate(items, start=1):
            if method == REMOVE and rec.device not in prints.attack:
                why = prints.devices.get(rec.device, {}).get("reason", "no attack fingerprint for this device")
                not_run.setdefault(method, {})[rec.device] = why
            else:
                result = _run_item(rec, method, target, targets[rec.path], params=params, prints=prints,
                                   judges=(judges, loaded_judges), model=(choices.get(method), models.get(method)),
                                   out_dir=img_root / method, inputs=inputs, keep=params.keep_images, memo=memo,
                                   transfer=transfer)  # fmt: skip
                report.add(result)
                tallies[method].add(result, threshold=params.threshold)
                inputs_tally.add(result)
            if on_item is not None:
                on_item(done, len(items))

    table: dict[str, Any] = {}
    for m in list(params.methods or []) + [m for m in [*methods, *skipped] if m not in (params.methods or [])]:
        if m in skipped:
            table[m] = {"status": "skipped", "reason": skipped[m]}
        elif m in tallies:
            table[m] = tallies[m].summary(threshold=params.threshold)
            if m in not_run:
                table[m]["images_not_run"] = {"n": sum(1 for r in images if r.device in not_run[m]),
                                              "devices": not_run[m]}  # fmt: skip
    metrics: dict[str, Any] = {
        "schema": "camforensics-anonymization-evaluation",
        "schema_version": "1.0",
        "tool_version": __version__,
        "data": {"root": str(scan.root), "layout": scan.layout, "content": params.content, "n_images": len(images),
                 "devices": sorted({r.device for r in images}), "models": sorted({r.model_id for r in images})},
        "judges": [{"name": j.entry.name, "sha256": j.entry.sha256, "classes": list(j.entry.classes),
                    "trained_on": j.entry.training_data.get("dataset")} for j in loaded_judges],
        "inputs": inputs_tally.summary(threshold=params.threshold),
        "methods": table,
        "prnu": {"threshold": params.threshold, "source": prints.source, "devices": prints.devices},
        "targets": {"rule": f"{params.targets_per_image} per image, a seeded draw among {rule} other than the image's "
                    "true camera model", "classes": classes, "n_images_without_target": sum(not t for t in targets.values())},
        "notes": notes,
        "plots": {},  # none drawn; kept for the layout every metrics.json shares
    }  # fmt: skip
    metrics, outputs = write_metrics(metrics, out, plots=False, plot_size=0)
    metrics.pop("plots", None)
    outputs.pop("plots", None)
    if out is not None:
        atomic_write_text(out / "table.md", markdown_table(metrics))
        outputs["table_md"] = str(out / "table.md")
        outputs["images"] = str(out / "images") if params.keep_images else None
    report.finish(**{k: v for k, v in metrics.items() if k not in ("schema", "schema_version", "tool_version")},
                  outputs=outputs)  # fmt: skip
    return report


def _run_item(
    rec: ImageRecord,
    method: str,
    target: str | None,
    drawn: list[str],
    *,
    params: EvalAnonParams,
    prints: DevicePrints,
    judges: tuple[JudgePanel | None, list[Any]],
    model: tuple[AnonymizerChoice | None, Any],
    out_dir: Path,
    inputs: frozenset[str],
    keep: bool,
    memo: InputMemo,
    transfer: TransferRun | None = None,
) -> dict[str, Any]:
    """One (image, method[, target]) through :func:`anonymize_one`, with the data set's truth added."""
    panel, loaded = judges
    choice, session = model
    if choice is not None and method == "targeted":
        choice = replace(choice, target=target)
    removing = method == REMOVE
    options: MethodOptions
    if removing:
        options = FingerprintOptions(method, remove=DeviceRef(prints.attack[rec.device].ref.library, rec.device))
    elif method in TASK_OF_METHOD:
        options = choice  # type: ignore[assignment]
    elif method in TRANSFER_METHODS and transfer is not None:
        if target is None:
            return {"input": {"path": str(rec.path)}, "status": "error", "error": "no target drawn for this image",
                    "item": {"method": method, "target": None, "device": rec.device, "model": rec.model_id}}  # fmt: skip
        options, session = transfer.options(method, target)
    else:
        options = BaselineOptions(method)
    aparams = AnonymizeParams(
        options=options,
        image_format="jpeg" if method in ("retable", "transplant", "transplant-refine") else "png",
        check=removing,  # the removed (attack) fingerprint's PCE: kept in the result, never in the table
        threshold=params.threshold,
        judges=panel,
    )
    check = prints.check.get(rec.device)
    state = AnonymizeState(
        AnonymizeSetup(aparams, str(out_dir), inputs),
        removed=prints.attack[rec.device] if removing else None,
        target=None,
        library=[check] if check is not None else [],
        model=session if method in TASK_OF_METHOD else None,
        judges=loaded,
        surrogate=session if method in TRANSFER_METHODS else None,
        memo=memo,
    )
    result, _ = run_one(anonymize_one, state, rec.path)
    result["item"] = {"method": method, "target": target, "device": rec.device, "model": rec.model_id,
                      "content": rec.content}  # fmt: skip
    if result["status"] != "ok":
        return result
    checks = result.pop("library_check", None)
    result["own_device_check"] = checks[0] if checks else None
    if check is None:
        result["own_device_check_note"] = prints.devices.get(rec.device, {}).get("reason", "no fingerprint")
    elif not checks:
        result["own_device_check_note"] = "the image does not fit the device's fingerprint in any rotation"
    if removing and result.get("removed_device"):
        result["removed_device"]["note"] = "PCE against the fingerprint removed (not independent; not in the table)"
    if not keep:
        result["output"]["path"] = None
        result["output"]["kept"] = False
    by_name = {j.entry.name: j.entry.classes for j in loaded}
    for j in result.get("judges", []):
        judge_outcomes(j, rec.model_id, [target] if target is not None else drawn, by_name[j["judge"]])
    return result


def _notes(
    scan: Any, images: list[ImageRecord], judges: list[Any], prints: DevicePrints, methods: list[str]
) -> list[str]:
    notes = []
    for j in judges:
        trained = j.entry.training_data.get("dataset")
        if trained and trained == Path(scan.root).name:
            notes.append(
                f"judge {j.entry.name} was trained on a data set named {trained!r}: evaluated images may be among its "
                "training images, which makes it harder to fool than an unseen classifier"
            )
    no_print = sorted({r.device for r in images} - set(prints.check))
    if no_print:
        notes.append(f"no PCE check for {', '.join(no_print)} (no fingerprint; reasons under prnu.devices)")
    if not judges:
        notes.append("no judge: the registry has no camera-model attributor, so no success rate is measured")
    if any(m in TASK_OF_METHOD for m in methods):
        notes.append(
            "judges must be independent of the learned anonymizers' training (not their evaluator or classifier "
            "streams); check the models' training records in run.models"
        )
    return notes


class TransferRun:
    """The profiles and surrogates of the transfer methods (retable, transplant, transplant-refine, fgsm, pgd),
    loaded once; refuses a judge trained with a surrogate's recipe."""

    def __init__(self, learned: LearnedOptions, methods: list[str], judges: list[Any]) -> None:
        from camforensics.pipelines.anonymize.refine import judge_recipe, read_surrogates, refine_options
        from camforensics.pipelines.profile import known_profiles

        self.learned = learned
        self.profiles = known_profiles(learned.profiles)
        self.surrogates = read_surrogates()
        recipes = {s.recipe: s.name for s in self.surrogates}
        for j in judges:
            r = judge_recipe(j.entry)
            if r is not None and r in recipes:
                raise ParameterError(f"judge {j.entry.name} was trained with the recipe of surrogate {recipes[r]} "
                                     f"({', '.join(map(str, r))}): a judge must be independent of the surrogates")  # fmt: skip
        self.refine = None
        self._loaded: dict[str, Any] = {}
        if self.surrogates and any(m in ("transplant-refine", "fgsm", "pgd") for m in methods):
            self.refine = refine_options("surrogates", None, epsilon=learned.refine_epsilon, iterations=learned.refine_iterations,
                                         window=learned.refine_window, threads=learned.threads,
                                         psnr_floor=learned.refine_psnr)  # fmt: skip
            self.refine = replace(self.refine, step=learned.refine_step, momentum=learned.refine_momentum,
                                  cover=learned.refine_cover, domain=learned.refine_domain)
            self._loaded["surrogates"] = self.refine.load()
        self._cache: dict[tuple[str, str], Any] = {}

    def profile_photos(self, images: Sequence[ImageRecord]) -> frozenset[Path]:
        """The images whose sha256 a profile records (never evaluated: they taught the target's traces)."""
        from camforensics.io.hashing import sha256_file
        from camforensics.pipelines.profile import read_profile

        used = {ph["sha256"] for f in self.profiles.values() for ph in read_profile(f).meta.get("photos", [])}
        return frozenset(r.path for r in images if sha256_file(r.path) in used)

    def classes(self, classes: Sequence[str]) -> list[str]:
        keys = {class_key(n) for n in self.profiles}
        return [c for c in classes if class_key(c) in keys]

    def options(self, method: str, target: str) -> tuple[Any, Any]:
        """The options of ``method`` toward ``target`` and what its worker state holds (cached per pair)."""
        key = (method, target)
        if key not in self._cache:
            if method in ("fgsm", "pgd"):
                from camforensics.pipelines.anonymize.attacks import AttackChoice

                # the FD surrogate when shipped (the baseline rows stay comparable as surrogates are added)
                i = next((k for k, r in enumerate(self.surrogates) if r.name == "surrogate-fd"), 0)
                first = self.surrogates[i]
                if "attack" not in self._loaded:  # not necessarily in the refinement's default ensemble
                    from camforensics.training.adversarial import load_surrogate

                    self._loaded["attack"] = load_surrogate(first.path)
                loaded = self._loaded["attack"]
                name = loaded.classes[[class_key(c) for c in loaded.classes].index(class_key(target))]
                opt: Any = AttackChoice(method, first.path, first.sha256, loaded.classes, self.learned.epsilon,
                                        self.learned.epsilon / 4, self.learned.iterations, name)  # fmt: skip
                self._cache[key] = (opt, loaded)
            else:
                from camforensics.pipelines.anonymize.transplant import transplant_options

                base = "retable" if method == "retable" else "transplant"
                refine = self.refine if method == "transplant-refine" else None
                opt = transplant_options(base, target, profiles=self.learned.profiles, refine=refine)
                prof, _ = replace(opt, refine=None).load()
                self._cache[key] = (opt, (prof, self._loaded.get("surrogates") if refine else None))
        return self._cache[key]

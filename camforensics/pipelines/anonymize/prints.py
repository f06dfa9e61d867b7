"""The fingerprints of ``evaluate anonymization``: one to attack with, an independent one to check with.

remove-fingerprint subtracts an estimate of the device's PRNU from each image. Measuring its success with the
PCE against *the same* estimate is meaningless: the removal is fitted to make exactly that correlation vanish,
including the estimate's own noise, which carries no information about the sensor. So each device's
flat-field images are split into two disjoint seeded halves; the attack subtracts the fingerprint of one half,
and the PCE is measured against the fingerprint of the other. With a library given for the check, a second,
independently enrolled library must be given for the attack, or remove-fingerprint is not run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camforensics.core.fingerprint import HalvesAccumulator, Reliability
from camforensics.core.params import FingerprintParams
from camforensics.core.pce import spectrum_of
from camforensics.errors import CamforensicsError
from camforensics.io.images import DEFAULT_MAX_PIXELS, load_image
from camforensics.io.library import FingerprintLibrary
from camforensics.io.records import ImageRecord
from camforensics.pipelines.anonymize.fingerprint import DeviceRef, Reference

_SPLIT_STREAM = 0xF1A7  # seed-sequence tag of the flat-field split
MIN_FLAT = 2  # flat-field images a device needs for two disjoint halves


@dataclass
class DevicePrints:
    """Per device: the fingerprint the attack removes and the one the PCE is checked against."""

    source: str  # how they were obtained, in words (report and table)
    attack: dict[str, Reference] = field(default_factory=dict)  # device -> fingerprint removed
    check: dict[str, Reference] = field(default_factory=dict)  # device -> fingerprint of the PCE check
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # device -> what was used, or why not
    attack_refused: str | None = None  # why remove-fingerprint cannot run at all (None: it can, where attack has K)
    used_paths: frozenset[Path] = frozenset()  # images that went into a fingerprint (never evaluated)


def split_halves(paths: Sequence[Path], seed: int, device: str) -> tuple[list[Path], list[Path]]:
    """Two disjoint halves of ``paths`` (attack, check), seeded by ``seed`` and the device name; the check half
    gets the extra image of an odd count. The order of ``paths`` does not matter."""
    ordered = sorted(paths)
    tag = [int(b) for b in device.encode("utf-8")]
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_STREAM, *tag]))
    perm = rng.permutation(len(ordered))
    n_attack = len(ordered) // 2
    return [ordered[i] for i in sorted(perm[:n_attack])], [ordered[i] for i in sorted(perm[n_attack:])]


def _estimate(
    paths: Sequence[Path], params: FingerprintParams, tick: Callable[[], None] | None
) -> tuple[np.ndarray, Reliability | None, list[str]]:
    """The fingerprint of ``paths``, its split-half reliability (as enroll records it) and the images' sha256s."""
    acc = HalvesAccumulator(params=params)
    hashes = []
    for p in paths:
        img = load_image(p, max_pixels=DEFAULT_MAX_PIXELS)
        acc.add(img.pixels)
        hashes.append(img.info.sha256)
        if tick is not None:
            tick()
    fp, reliability = acc.finish()
    return fp.k, reliability, hashes


def _ref(role: str, label: str, device: str, k: np.ndarray, reliability: Reliability | None = None) -> Reference:
    r = reliability.reliability if reliability is not None else None
    return Reference(role, DeviceRef(label, device), k, spectrum_of(k, conjugate=True), r)


def prints_from_flats(
    records: Sequence[ImageRecord],
    *,
    seed: int,
    params: FingerprintParams | None = None,
    on_image: Callable[[int, int], None] | None = None,
) -> DevicePrints:
    """Split each device's flat-field images into seeded halves and estimate a fingerprint of each half.

    A device with fewer than :data:`MIN_FLAT` flat-field images, or whose flat fields cannot be read or differ in
    size, gets none (its reason is in ``devices``). ``on_image`` is called with (images read, images in all)."""
    params = params or FingerprintParams()
    prints = DevicePrints(
        source="the data set's flat-field images, each device's split into two disjoint seeded halves: the attack "
        "(remove-fingerprint) uses the fingerprint of one half, the PCE check the fingerprint of the other"
    )
    flats: dict[str, list[Path]] = {}
    for r in records:
        if r.is_flat:
            flats.setdefault(r.device, []).append(r.path)
    used: set[Path] = set()
    total = sum(len(p) for p in flats.values() if len(p) >= MIN_FLAT)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if on_image is not None:
            on_image(done, total)

    for device in sorted({r.device for r in records}):
        paths = flats.get(device, [])
        if len(paths) < MIN_FLAT:
            prints.devices[device] = {
                "status": "skipped",
                "reason": f"{len(paths)} flat-field image(s); two disjoint halves need at least {MIN_FLAT}",
            }
            continue
        attack, check = split_halves(paths, seed, device)
        try:
            k_attack, rel_attack, h_attack = _estimate(attack, params, tick)
            k_check, rel_check, h_check = _estimate(check, params, tick)
        except (CamforensicsError, OSError) as exc:
            prints.devices[device] = {"status": "skipped", "reason": f"flat-field fingerprint failed: {exc}"}
            continue
        used.update(paths)
        prints.attack[device] = _ref("removed", "flat-field half 'attack'", device, k_attack, rel_attack)
        prints.check[device] = _ref("library", "flat-field half 'check'", device, k_check)
        prints.devices[device] = {
            "status": "fingerprinted",
            "attack": {"n_images": len(attack), "sha256": h_attack, "paths": [str(p) for p in attack],
                       "reliability": rel_attack.to_dict() if rel_attack is not None else None},
            "check": {"n_images": len(check), "sha256": h_check, "paths": [str(p) for p in check],
                      "reliability": rel_check.to_dict() if rel_check is not None else None},
            "disjoint": not set(h_attack) & set(h_check),
        }
    prints.used_paths = frozenset(used)
    return prints


def _entries_by_device(lib: FingerprintLibrary, device_map: dict[str, str] | None) -> dict[str, Any]:
    mapping = device_map or {}
    return {mapping.get(e.name, e.name): e for e in lib.entries()}


def prints_from_libraries(
    devices: Sequence[str],
    library: str | Path,
    *,
    attack_library: str | Path | None = None,
    device_map: dict[str, str] | None = None,
) -> DevicePrints:
    """The check fingerprints from ``library`` and the attack fingerprints from ``attack_library`` (entries named
    like the data set's devices, or mapped by ``device_map``: library name -> device). Without an attack library
    (or with the same folder twice) remove-fingerprint is refused: its PCE would be measured against the very
    estimate it removed."""
    check_lib = FingerprintLibrary(library)
    source = f"library {library} for the PCE check"
    refused = None
    attack_entries: dict[str, Any] = {}
    if attack_library is None:
        refused = "with --library the removal needs an independently enrolled --attack-library (not given)"
    elif Path(attack_library).resolve() == Path(library).resolve():
        refused = "--attack-library is the --library itself: the PCE check would use the fingerprint removed"
    else:
        attack_entries = _entries_by_device(FingerprintLibrary(attack_library), device_map)
        source += f", library {attack_library} for the removal"
    prints = DevicePrints(source=source, attack_refused=refused)
    check_entries = _entries_by_device(check_lib, device_map)
    for device in sorted(devices):
        entry = check_entries.get(device)
        if entry is None:
            prints.devices[device] = {"status": "skipped", "reason": f"no entry of {library} maps to this device"}
            continue
        prints.check[device] = Reference.load("library", DeviceRef(str(library), device), entry)
        info: dict[str, Any] = {"status": "fingerprinted", "check": entry.summary()}
        a = attack_entries.get(device)
        if a is not None:  # with the reliability its entry records, as anonymize reads it
            prints.attack[device] = Reference.load("removed", DeviceRef(str(attack_library), device), a)
            info["attack"] = a.summary()
        prints.devices[device] = info
    return prints

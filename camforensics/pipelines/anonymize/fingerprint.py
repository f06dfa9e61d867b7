"""The fingerprint methods of anonymize: remove a device's PRNU fingerprint (remove-fingerprint), or plant another
device's (spoof, the fingerprint-copy attack; the own one may be removed first).

The fits are :func:`camforensics.core.anonymize.fit_removal` and :func:`~camforensics.core.anonymize.fit_plant`;
the fingerprints come from a library (``LIB:DEVICE`` on the command line).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from camforensics.core.anonymize import PlantParams, RemovalParams, apply_plant, apply_removal, fit_plant, fit_removal
from camforensics.core.fingerprint import Reliability
from camforensics.core.pce import Spectrum
from camforensics.errors import ParameterError, SizeMismatchError
from camforensics.io.library import FingerprintLibrary, LibraryEntry

FINGERPRINT_METHODS: tuple[str, ...] = ("remove-fingerprint", "spoof")

# Below this reliability the debiased removal subtracts more than ten times the fitted pattern: said in a note.
LOW_RELIABILITY = 0.1


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
        return cls(role, ref, k, entry.spectrum(), rel.reliability if rel is not None else None)  # library's cache


@dataclass(frozen=True)
class FingerprintOptions:
    """remove-fingerprint or spoof, with the devices involved and the fits' settings."""

    method: str  # remove-fingerprint or spoof
    remove: DeviceRef | None = None  # the device whose fingerprint is removed (spoof: removed first when given)
    spoof: DeviceRef | None = None  # the target device of the fingerprint-copy attack
    removal: RemovalParams = field(default_factory=RemovalParams)  # alpha fit of the removal
    debias: bool = True  # divide the removal by the removed fingerprint's split-half reliability when it has one
    plant: PlantParams = field(default_factory=PlantParams)  # strength fit of the copy attack
    strength: float | None = None  # fixed copy-attack strength; None fits it to plant.target_pce

    def __post_init__(self) -> None:
        if self.method not in FINGERPRINT_METHODS:
            raise ParameterError(f"{self.method!r} uses no fingerprint; choose one of {', '.join(FINGERPRINT_METHODS)}")
        if self.method == "remove-fingerprint" and self.remove is None:
            raise ParameterError("--method remove-fingerprint needs --remove-fingerprint LIB:DEVICE")
        if self.method == "spoof" and self.spoof is None:
            raise ParameterError("--method spoof needs --spoof-device LIB:DEVICE (the device to imitate)")
        if self.method == "remove-fingerprint" and self.spoof is not None:
            raise ParameterError("--spoof-device needs --method spoof")
        if self.strength is not None and not self.strength > 0:
            raise ParameterError(f"--strength must be > 0, got {self.strength!r}")

    def parameters(self) -> dict[str, Any]:
        """The parameters that shape the output (written with every result)."""
        if self.method == "remove-fingerprint":
            return {"device": self.remove.to_dict(), "removal": self.removal.to_dict(), "debias": self.debias}  # type: ignore[union-attr]
        return {
            "target": self.spoof.to_dict(),  # type: ignore[union-attr]
            "removed_first": self.remove.to_dict() if self.remove else None,
            "strength": self.strength if self.strength is not None else "fitted",
            "plant": self.plant.to_dict(),
            "removal": self.removal.to_dict() if self.remove else None,
            "debias": self.debias if self.remove else None,
        }

    def removal_params(self, removed: Reference) -> RemovalParams:
        """The removal fit's parameters for the removed fingerprint: debiased by its reliability when ``debias``
        and the library entry records one above zero."""
        if self.debias and removed.reliability:
            return replace(self.removal, reliability=removed.reliability)
        return self.removal

    def alter(
        self, pixels: np.ndarray, removed: Reference | None, target: Reference | None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """The altered image and what was fitted (the removal's alpha, the plant's strength)."""
        fitted: dict[str, Any] = {}
        x = pixels
        if removed is not None:
            k = _needs_size(removed, x.shape)
            fit = fit_removal(x, k, params=self.removal_params(removed))
            x = apply_removal(x, k, fit.alpha, dither_seed=self.removal.dither_seed)
            fitted["removal"] = fit.to_dict()
        if target is not None:
            k = _needs_size(target, x.shape)
            if self.strength is None:
                plant = fit_plant(x, k, params=self.plant)
                strength = plant.strength
                fitted["plant"] = plant.to_dict()
            else:
                strength = self.strength
            x = apply_plant(x, k, strength, dither_seed=self.plant.dither_seed)
            fitted["strength"] = strength
        return x, fitted


def removal_note(options: FingerprintOptions, removed: Reference | None) -> str | None:
    """Why the removal could not be debiased, or that it is heavily debiased (None otherwise)."""
    if removed is None or not options.debias:
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

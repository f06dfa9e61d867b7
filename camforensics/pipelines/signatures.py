"""JPEG coding signatures of known cameras: build a table from reference photos, match a file against it.

The table (a JSON file, ``camforensics.jpeg-signatures``) lists, per camera model (the data set's label, as the
attributor's classes), the coding signatures its photos were written with (:mod:`camforensics.io.jpeg_signature`):
the quantization tables with the chroma subsampling (``quant_key``; what the camera's firmware chooses and a
lossless crop keeps), the Huffman tables (standard or custom), baseline/progressive, the frame sizes and the EXIF
Software values seen. A lab extends it with its own reference photos (``camforensics signatures build`` with
``--table`` of the existing one). Matching says which known cameras share a file's signature, whether that agrees
with the file's EXIF camera and with the CNN's decision, and flags files that look re-saved or edited.

Kee, Johnson & Farid (2011) found that the signature alone separates most camera models from each other and from
editing software; models of one maker often share tables (here e.g. Canon EOS 6D and EOS Rebel XSi), and phones
with adaptive quantization write many (Nikon D70 here): a shared or unseen signature is a clue, not a verdict.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from camforensics import __version__
from camforensics.errors import CamforensicsError, InputError
from camforensics.inference.attribution import (
    CODING_CAMERA,
    CODING_UNKNOWN,
    CODING_UNUSABLE,
    CodingEvidence,
    exif_model_id,
)
from camforensics.io.datasets import read_manifest, scan_dataset
from camforensics.io.jpeg_signature import JpegSignature, read_jpeg_signature
from camforensics.reports.atomic import atomic_write_text

TABLE_FORMAT = "camforensics.jpeg-signatures"
TABLE_VERSION = 1
DEFAULT_TABLE_NAME = "jpeg-signatures.json"  # shipped beside the models

# EXIF Software values written by editors and converters (a camera writes its firmware version or nothing).
EDITOR_SOFTWARE = re.compile(
    r"photoshop|lightroom|gimp|snapseed|paint\.net|\bpaint\b|picasa|acdsee|irfanview|pixelmator|affinity|"
    r"capture one|darktable|rawtherapee|photoscape|fotor|instagram|facebook|whatsapp|windows photo|"
    r"microsoft photos|imagemagick|graphicsmagick|digikam|aperture|iphoto|luminar|canva|xnview|faststone|"
    r"corel|paintshop|photoimpact|dxo|on1 |skylum|google photos|photos \d|vsco|lightzone|shotwell|gthumb|"
    r"photo gallery|adobe|pillow|python|libjpeg|mozjpeg|guetzli|jpegoptim|tinypng|squoosh",
    re.IGNORECASE,
)


@dataclass
class SignatureTable:
    """Known cameras' JPEG coding signatures (see the module docstring for the format)."""

    cameras: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SignatureTable:
        """Read a table written by :meth:`save`.

        Raises
        ------
        InputError
            Unreadable, not a signature table, or of a newer format version.
        """
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"cannot read signature table {str(path)!r}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != TABLE_FORMAT:
            raise InputError(f"{str(path)!r} is not a JPEG signature table (no format {TABLE_FORMAT!r})")
        if int(doc.get("version", 0)) > TABLE_VERSION:
            raise InputError(f"{str(path)!r} has table version {doc.get('version')}; upgrade camforensics")
        cameras = doc.get("cameras")
        if not isinstance(cameras, dict):
            raise InputError(f"signature table {str(path)!r} has no 'cameras' object; build a new one")
        return cls(cameras=cameras, sources=list(doc.get("sources", [])))

    def save(self, path: str | os.PathLike[str]) -> None:
        doc = {
            "format": TABLE_FORMAT,
            "version": TABLE_VERSION,
            "tool_version": __version__,
            "note": "JPEG coding signatures (quantization tables + chroma subsampling, Huffman tables, progressive, "
            "frame sizes, EXIF Software) per camera model; tables only, no photos. Built by "
            "'camforensics signatures build'.",
            "sources": self.sources,
            "cameras": dict(sorted(self.cameras.items())),
        }
        atomic_write_text(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")

    def add(self, camera: str, sig: JpegSignature, *, frame_size: str | None = None) -> None:
        """Add one reference photo's signature to ``camera``'s entry."""
        cam = self.cameras.setdefault(camera, {"n_files": 0, "signatures": {}, "sizes": [], "software": []})
        cam["n_files"] += 1
        key = sig.quant_key()
        entry = cam["signatures"].setdefault(
            key,
            {
                "n": 0,
                "subsampling": sig.subsampling,
                "quant_tables": [list(t) for t in sig.quant_tables],
                "ijg_quality": sig.ijg_quality,
                "huffman": [],
                "progressive": [],
            },
        )
        entry["n"] += 1
        for name, value in (("huffman", sig.huffman_key()), ("progressive", sig.progressive)):
            if value not in entry[name]:
                entry[name].append(value)
        if sig.exif_structure is not None:
            structures = cam.setdefault("exif_structures", {})
            structures[sig.exif_structure] = structures.get(sig.exif_structure, 0) + 1
        size = frame_size or f"{sig.width}x{sig.height}"
        if size not in cam["sizes"]:
            cam["sizes"].append(size)
        if sig.exif_software and sig.exif_software not in cam["software"]:
            cam["software"].append(sig.exif_software)

    def cameras_with(self, quant_key: str) -> list[str]:
        """Cameras whose reference photos were written with this quantization signature."""
        return sorted(c for c, e in self.cameras.items() if quant_key in e.get("signatures", {}))

    def without(self, cameras: Sequence[str]) -> SignatureTable:
        """A copy of the table without ``cameras`` (open-set folds: what the table knows without them)."""
        drop = set(cameras)
        return SignatureTable({c: e for c, e in self.cameras.items() if c not in drop}, list(self.sources))


def _frame_sizes(root: Path) -> dict[str, str]:
    """``original_size`` of the data set's MANIFEST.csv per file (its crops keep the camera's coding but not its
    frame size), when the manifest has that column."""
    path = root / "MANIFEST.csv"
    if not path.is_file():
        return {}
    rows = read_manifest(path)
    return {f: r["original_size"].strip() for f, r in rows.items() if (r.get("original_size") or "").strip()}


def build_table(
    folders: Sequence[str | os.PathLike[str]],
    *,
    layout: str = "auto",
    table: SignatureTable | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> tuple[SignatureTable, dict[str, str]]:
    """Signatures of every JPEG in the data set ``folders`` (labels as the data set gives them), added to ``table``.

    Returns the table and the files that were skipped (not JPEG, malformed), with the reason.
    """
    out = table or SignatureTable()
    skipped: dict[str, str] = {}
    for folder in folders:
        root = Path(folder)
        scan = scan_dataset(root, layout=layout)
        sizes = _frame_sizes(root)
        n = 0
        for rec in scan.records:
            if on_file is not None:
                on_file(rec.path)
            try:
                sig = read_jpeg_signature(rec.path)
            except CamforensicsError as exc:
                skipped[str(rec.path)] = str(exc)
                continue
            base = root.absolute()
            rel = rec.path.relative_to(base).as_posix() if rec.path.is_relative_to(base) else rec.path.name
            out.add(rec.model_id, sig, frame_size=sizes.get(rel))
            n += 1
        out.sources.append(
            {
                "folder": root.name,
                "layout": scan.layout,
                "n_files": n,
                "cameras": sorted({r.model_id for r in scan.records}),
                "added": datetime.now(UTC).date().isoformat(),
            }
        )
    return out, skipped


def table_from_records(records: Sequence[Any]) -> tuple[SignatureTable, dict[str, str]]:
    """A table of the given data-set records (``path``, ``model_id``): e.g. the training split of an attributor, so
    that a measurement on its test photos never matches a test photo's own tables. Returns it and the skipped files."""
    out = SignatureTable()
    skipped: dict[str, str] = {}
    for rec in records:
        try:
            out.add(rec.model_id, read_jpeg_signature(rec.path))
        except CamforensicsError as exc:
            skipped[str(rec.path)] = str(exc)
    return out, skipped


def match_signature(
    sig: JpegSignature,
    table: SignatureTable,
    *,
    cnn_model: str | None = None,
    cnn_classes: Sequence[str] = (),
) -> dict[str, Any]:
    """What the file's coding signature says, against the table of known cameras.

    Returns
    -------
    dict
        ``signature`` (the file's), ``cameras`` (known cameras with the same quantization signature),
        ``known`` (any camera has it), ``exif`` (``model_id``, ``in_table``, ``agrees``: True/False when EXIF names
        a camera of the table, None otherwise), ``cnn`` (``model``, ``agrees``: the CNN's decided model is among
        ``cameras``; None without a decision or when the table does not list the CNN's model), ``size_known``
        (the frame size was seen for the EXIF camera; None when the table has no such camera), ``resaved``
        (``flag`` and ``reasons``), ``note`` (one sentence for the examiner).
    """
    key = sig.quant_key()
    cameras = table.cameras_with(key)
    lookup = {c.casefold(): c for c in table.cameras}
    mid = exif_model_id(sig.exif_make, sig.exif_model)
    exif_cam = lookup.get(mid.casefold()) if mid else None
    exif_agrees = None if exif_cam is None else exif_cam in cameras
    cnn_in_table = cnn_model is not None and cnn_model in table.cameras
    cnn_agrees = (cnn_model in cameras) if cnn_in_table else None
    size = f"{sig.width}x{sig.height}"
    size_known = None
    if exif_cam is not None:
        sizes = set(table.cameras[exif_cam].get("sizes", []))
        size_known = size in sizes or f"{sig.height}x{sig.width}" in sizes
    reasons = []
    if sig.exif_software and EDITOR_SOFTWARE.search(sig.exif_software):
        reasons.append(f"EXIF Software is an editor or converter ({sig.exif_software!r})")
    if not cameras:
        reasons.append("the quantization tables are those of no known camera")
    if sig.progressive and not any(
        True in s.get("progressive", []) for e in table.cameras.values() for s in e.get("signatures", {}).values()
    ):
        reasons.append("progressive coding (no known camera writes it)")
    if exif_cam is not None and sig.huffman_standard is False:
        known_huff = {h for s in table.cameras[exif_cam].get("signatures", {}).values() for h in s.get("huffman", [])}
        if known_huff == {"standard"}:
            reasons.append("custom (optimised) Huffman tables where the EXIF camera writes the standard ones")
    # Unknown tables alone are not proof of editing (an unlisted camera or setting writes them too): the flag is
    # raised for an editor's Software tag, or unknown tables together with another sign.
    flag = bool(reasons) and (reasons[0].startswith("EXIF Software") or len(reasons) >= 2)
    if flag:
        note = "looks re-saved or edited: " + "; ".join(reasons)
    elif not cameras:
        note = "coding signature of no known camera: an unlisted camera or setting, or a re-saved file"
    else:
        note = f"coding signature shared by {', '.join(cameras)}"
        if exif_agrees is False:
            note += f"; not by the EXIF camera {exif_cam}"
    if cnn_agrees is False:
        note += f"; the CNN's {cnn_model} writes other tables"
    return {
        "signature": sig.to_dict(),
        "cameras": cameras,
        "known": bool(cameras),
        "exif": {"model_id": mid, "in_table": exif_cam is not None, "agrees": exif_agrees},
        "cnn": {"model": cnn_model, "in_table": cnn_in_table, "agrees": cnn_agrees},
        "size_known": size_known,
        "resaved": {"flag": flag, "reasons": reasons},
        "note": note,
    }


def new_tables_rate(entry: dict[str, Any]) -> float:
    """How often a camera's reference photos brought quantization tables its earlier photos had not shown: ``(K - 1)
    / N`` for K distinct signatures in N photos. 0 for a camera that writes one set (or has one photo); about 0.5
    for one with adaptive quantization (Nikon D70 here: a new set for every other photo). The estimated chance that
    the camera's next photo has tables the table does not list."""
    n = int(entry.get("n_files", 0))
    k = len(entry.get("signatures", {}))
    return (k - 1) / n if n > 0 and k > 1 else 0.0


def adaptive_candidates(sig: JpegSignature, table: SignatureTable) -> dict[str, float]:
    """Cameras that may have written tables no reference photo shows: those that write new tables for a share of
    their photos (:func:`new_tables_rate` > 0) and wrote this file's EXIF directories (the same entry counts), chroma
    subsampling and Huffman tables. Each maps to that rate, its prior. Unseen tables are then no proof of an unknown
    camera, the EXIF structure is the evidence, and the CNN with its threshold decides. Without EXIF: none."""
    if sig.exif_structure is None:
        return {}
    out = {}
    for cam, e in table.cameras.items():
        rate = new_tables_rate(e)
        if rate <= 0.0 or sig.exif_structure not in (e.get("exif_structures") or {}):
            continue
        huffman = sig.huffman_key()
        if any(s.get("subsampling") == sig.subsampling and huffman in s.get("huffman", []) for s in e["signatures"].values()):
            out[cam] = rate
    return out


def coding_evidence(
    sig: JpegSignature | None, table: SignatureTable, *, why_none: str = "", exif_structure: bool = True
) -> CodingEvidence:
    """What the file's coding says about its camera, for the fused decision
    (:func:`camforensics.inference.attribution.fuse_decision`).

    ``unusable`` (the CNN decides alone) when there is no signature (``why_none``: not a JPEG, pixels only), when
    the file looks re-saved or edited (:func:`match_signature`'s flag: an editor's Software tag, or unknown tables
    with another sign), or when its tables are libjpeg's standard ones (any program writes them) and the file names
    no camera in EXIF (an editor or converter that dropped it); ``unknown`` when no known camera wrote the
    quantization tables (with the subsampling), unless the file's EXIF directories are those of a camera that
    writes new tables for many photos (:func:`adaptive_candidates`; only with ``exif_structure``); else ``camera``
    with each such camera's prior, the share of its reference photos written with these tables, smoothed as
    ``(n + 0.5) / (N + 1)``, narrowed by the EXIF directories' structure unless ``exif_structure`` is False (the
    quantization tables alone).
    """
    if sig is None:
        return CodingEvidence(CODING_UNUSABLE, reason=why_none or "not a JPEG file")
    match = match_signature(sig, table)
    listed = frozenset(table.cameras)
    if match["resaved"]["flag"]:
        return CodingEvidence(CODING_UNUSABLE, listed=listed, reason="; ".join(match["resaved"]["reasons"]))
    if sig.ijg_quality is not None and not (sig.exif_model or "").strip():
        return CodingEvidence(
            CODING_UNUSABLE, listed=listed,
            reason=f"libjpeg's standard quality-{sig.ijg_quality} tables and no camera in EXIF (written by a program?)",
        )
    if not match["cameras"]:
        adaptive = adaptive_candidates(sig, table) if exif_structure else {}
        if adaptive:
            cams = ", ".join(f"{c} ({p:.0%} of its reference photos brought new tables)" for c, p in sorted(adaptive.items()))
            return CodingEvidence(
                CODING_CAMERA, adaptive, listed, structure_match=True,
                reason=f"JPEG tables of no known camera, but EXIF directories ({sig.exif_structure}), subsampling and "
                f"Huffman tables of {cams}: a camera that writes new tables for many photos",
            )
        return CodingEvidence(CODING_UNKNOWN, listed=listed, reason="the JPEG tables are those of no known camera")
    key = sig.quant_key()
    priors = {}
    for cam in match["cameras"]:
        e = table.cameras[cam]
        n = int(e["signatures"][key].get("n", 1))
        total = max(int(e.get("n_files", n)), n)
        priors[cam] = (n + 0.5) / (total + 1.0)
    reason = f"JPEG tables written by {', '.join(sorted(priors))}"
    # The EXIF directories' entry counts (Kee et al.'s EXIF part of the signature) narrow the candidates to the
    # cameras that wrote this structure too; when none of them did: an unknown camera sharing their tables, other
    # firmware, or rewritten EXIF (structure_match False). Cameras without recorded structures (older tables, files
    # without EXIF) give no evidence either way.
    recorded = {c: table.cameras[c].get("exif_structures") or {} for c in priors}
    structure_match = None
    if exif_structure and sig.exif_structure is not None and any(recorded.values()):
        same = {c: p for c, p in priors.items() if sig.exif_structure in recorded[c]}
        structure_match = bool(same)
        if same:
            dropped = sorted(set(priors) - set(same))
            priors = same
            reason += f"; EXIF directories ({sig.exif_structure}) as {', '.join(sorted(same))}"
            reason += f", not as {', '.join(dropped)}" if dropped else ""
        else:
            reason += f"; but EXIF directories ({sig.exif_structure}) of none of them"
    return CodingEvidence(CODING_CAMERA, priors, listed, reason=reason, structure_match=structure_match)


def file_evidence(path: str | os.PathLike[str], table: SignatureTable, *, exif_structure: bool = True) -> CodingEvidence:
    """:func:`coding_evidence` of a file (a file that is not a readable JPEG gives ``unusable``, not an error)."""
    try:
        sig = read_jpeg_signature(path)
    except InputError as exc:
        return coding_evidence(None, table, why_none=f"no JPEG coding signature ({exc})")
    return coding_evidence(sig, table, exif_structure=exif_structure)


def default_table_path(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The shipped table beside the models (``$CAMFORENSICS_MODELS`` or the repository's ``models/``)."""
    from camforensics.inference.registry import default_models_dir

    return (Path(models_dir) if models_dir is not None else default_models_dir()) / DEFAULT_TABLE_NAME

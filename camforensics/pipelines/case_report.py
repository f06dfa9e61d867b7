"""A case report: one self-contained HTML file from a camforensics report (``camforensics report``).

Everything is inside the file: styles inline, pictures as ``data:image/png;base64`` URIs, no script, no network
request. Every name, path and value taken from the report is HTML-escaped (a file may be called
``<script>.jpg``). Per photo: the verdict in words and the evidence behind it (PCE, false-alarm probability,
rotation, crop position, camera-model lead, EXIF and JPEG-signature checks when the report has them), its
sha256; then the tool, model and fingerprint versions and the method in plain words with references.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

MAX_PICTURES = 50  # photos with an embedded chart; the rest are listed with their evidence only

METHOD = {
    "prnu": (
        "Every camera sensor has a unique, stable pattern of pixel sensitivities (photo-response non-uniformity, "
        "PRNU). A device's pattern (its fingerprint) is estimated from many of its images; each questioned photo's "
        "noise residual (the photo minus a denoised version of itself) is correlated with every fingerprint of its "
        "size. The peak-to-correlation energy (PCE) measures how far the correlation peak stands out; above the "
        "threshold (60 by default) the photo is attributed to that camera. The false-alarm probability is the "
        "chance that a photo from another camera scores this high, corrected for the positions and rotations "
        "searched.",
        [
            "J. Lukas, J. Fridrich, M. Goljan, \"Digital camera identification from sensor pattern noise\", IEEE "
            "Trans. Information Forensics and Security 1(2), 2006.",
            "M. Chen, J. Fridrich, M. Goljan, J. Lukas, \"Determining image origin and integrity using sensor "
            "noise\", IEEE Trans. Information Forensics and Security 3(1), 2008.",
            "M. Goljan, J. Fridrich, T. Filler, \"Large scale test of sensor fingerprint camera identification\", "
            "Proc. SPIE 7254, 2009.",
        ],
    ),
    "model": (
        "A convolutional network trained on photos of known camera models ranks the models a photo's pixels look "
        "like (the 'lead'). It cannot tell two devices of one model apart, and below its calibrated score it "
        "answers 'unknown' (a model it was not trained on, or too little evidence). Its lead is compared with the "
        "camera model written in the photo's EXIF metadata: a disagreement means the metadata or the pixels were "
        "changed, or the network errs.",
        [
            "L. Bondi, L. Baroffio, D. Guera, P. Bestagini, E. J. Delp, S. Tubaro, \"First steps toward camera "
            "model identification with convolutional neural networks\", IEEE Signal Processing Letters 24(3), 2017.",
        ],
    ),
}


def _e(value: Any) -> str:
    return html.escape("-" if value is None else str(value), quote=True)


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _table(rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows if v is not None)
    return f"<table class='kv'>{body}</table>"


STYLE = """
body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em auto;max-width:60em;color:#222;line-height:1.4}
h1{font-size:1.6em;border-bottom:2px solid #333}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #aaa}
h3{font-size:1.05em;margin-bottom:.3em}.verdict{font-weight:bold;padding:.1em .5em;border-radius:.3em}
.match{background:#cfc}.nomatch{background:#eee}.warn{background:#fdb}.fail{background:#fcc}
table.kv{border-collapse:collapse;margin:.4em 0}table.kv th{text-align:left;padding:.15em 1em .15em 0;
font-weight:normal;color:#555;vertical-align:top}table.kv td{padding:.15em 0;word-break:break-all}
.photo{border:1px solid #ccc;border-radius:.4em;padding:.4em 1em 1em;margin:1em 0}
img{max-width:100%}code{font-size:.9em}.small{font-size:.85em;color:#555}
"""


def _verdict(r: dict[str, Any]) -> tuple[str, str]:
    """(words, css class) of one result."""
    from camforensics.reports.words import prnu_verdict

    if r.get("status") != "ok":
        return "failed: " + str((r.get("error") or {}).get("message", "")), "fail"
    if "decision" in r and r.get("decision") is not None and "match" in r["decision"]:
        d = r["decision"]
        words = prnu_verdict(d)
        if d.get("match"):
            words += f": {d.get('device')}"
        return words, "match" if d.get("match") and not d.get("ambiguous") else ("warn" if d.get("ambiguous") else "nomatch")
    if "decision" in r and r.get("decision") is None and "candidates" in r:
        return prnu_verdict(None), "nomatch"
    if isinstance(r.get("camera_model"), dict):  # the fused verdict (CNN + JPEG signature) where there is one
        cm = r["camera_model"]
        return f"camera model: {cm['top']}{'?' if cm.get('unknown') else ''}", "nomatch"
    if "model_attribution" in r:
        from camforensics.reports.words import model_lead

        return f"camera model: {model_lead(r['model_attribution'])}", "nomatch"
    return "done", "nomatch"


def _evidence(r: dict[str, Any]) -> list[tuple[str, Any]]:
    from camforensics.reports.words import exif_sentence, model_lead, p_fa_words, rotation_words, where_words

    rows: list[tuple[str, Any]] = []
    d = r.get("decision")
    if isinstance(d, dict) and "pce" in d:
        cands = r.get("candidates") or []
        rows += [
            ("best fingerprint", (cands[0]["device"] if cands else d.get("device"))),
            ("PCE", f"{d['pce']:.1f} (threshold {d['threshold']:.1f})"),
            ("false-alarm probability", p_fa_words(d.get("log10_p_fa"))),
            ("rotation", rotation_words(d)),
            ("position on the sensor", where_words(d)),
            ("runner-up", f"{cands[1]['device']}, PCE {cands[1]['pce']:.1f}" if len(cands) > 1 else None),
            ("fingerprints compared", r.get("n_fingerprints_compared")),
        ]
    a = r.get("model_attribution")
    if a:
        top = a["top_k"]
        rows += [
            ("camera-model lead", f"{model_lead(a)} (p {top[0]['probability']:.2f}; by {a.get('model')})"),
            ("next models", ", ".join(f"{t['model']} {t['probability']:.2f}" for t in top[1:]) or None),
            ("EXIF check", exif_sentence(a)),
        ]
        if isinstance(a.get("panel"), dict):  # the attributor panel's decision (when the report has one)
            rows.append(("attributor panel", _flat(a["panel"])))
    cm = r.get("camera_model")
    if isinstance(cm, dict) and cm.get("note"):
        rows.append(("camera model, both cues", f"{cm['note']} (decided by {' + '.join(cm.get('by') or [])})"))
    for key, value in r.items():  # JPEG-signature and other checks added by later versions, shown as they are
        if "jpeg" in key.lower() or "signature" in key.lower():
            rows.append((key.replace("_", " "), _flat(value)))
    q = r.get("quality")
    if isinstance(q, dict) and "psnr" in q:
        psnr = q["psnr"] if isinstance(q["psnr"], str) else f"{q['psnr']:.1f} dB"
        rows.append(("picture quality kept", f"PSNR {psnr}, SSIM {q.get('ssim', float('nan')):.4f}"))
    for key, words in (("removed_device", "PCE against the removed device"), ("target_device", "PCE against the planted device")):
        c = r.get(key)
        if isinstance(c, dict) and "pce_before" in c:
            rows.append((words, f"{c['pce_before']:.1f} before, {c['pce_after']:.1f} after"))
    if isinstance(r.get("output"), dict):
        rows.append(("output", f"{r['output'].get('path')} (sha256 {r['output'].get('sha256')})"))
    if isinstance(r.get("residual"), dict):
        rows.append(("residual RMS", f"{r['residual'].get('rms', 0):.3f}"))
    return rows


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_flat(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _summary_sentence(doc: dict[str, Any]) -> str:
    from camforensics.reports.words import summary_line

    results = doc.get("results") or []
    n = len(results)
    failed = sum(1 for r in results if r.get("status") != "ok")
    if doc["run"].get("command") == "identify" and any("decision" in r for r in results):
        matched = sum(1 for r in results if (r.get("decision") or {}).get("match"))
        return summary_line(n, [(matched, "matched"), (n - failed - matched, "no match")], failed)
    return summary_line(n, [(n - failed, "done")], failed)


def _photo_chart(r: dict[str, Any]) -> bytes | None:
    from camforensics.core.figures import bars_figure

    cands = r.get("candidates") or []
    d = r.get("decision") or {}
    name = Path(str(r["input"].get("path", "?"))).name
    if cands:
        return bars_figure(
            {c["device"]: c["pce"] for c in cands},
            threshold=d.get("threshold"),
            name=name,
            sha256=r["input"].get("sha256"),
            xlabel="PCE against each fingerprint",
        )
    a = r.get("model_attribution")
    if a:
        return bars_figure(
            {t["model"]: t["probability"] for t in a["top_k"]},
            threshold=None,
            name=name,
            sha256=r["input"].get("sha256"),
            xlabel="camera-model probability",
        )
    return None


def _delta_chart(r: dict[str, Any]) -> bytes | None:
    """An anonymization's change (amplified) and its spectrum, from the input and output files when both are
    still there and unchanged (their sha256 checked against the report); None otherwise."""
    from camforensics.core.figures import delta_figure
    from camforensics.errors import CamforensicsError
    from camforensics.io.images import load_image

    inp, outp = r.get("input") or {}, r.get("output") or {}
    if not inp.get("path") or not outp.get("path"):
        return None
    try:
        before = load_image(inp["path"])
        after = load_image(outp["path"])
    except (CamforensicsError, OSError):
        return None
    if before.info.sha256 != inp.get("sha256") or (outp.get("sha256") and after.info.sha256 != outp["sha256"]):
        return None  # not the files the report speaks of
    if before.pixels.shape != after.pixels.shape:
        return None
    return delta_figure(before.pixels, after.pixels, name=Path(str(outp["path"])).name, sha256=after.info.sha256)


def render_html(doc: dict[str, Any], *, source: Path, source_sha256: str, pictures: bool = True,
                embed: Callable[[str], bytes | None] | None = None) -> str:  # fmt: skip
    """The case report of ``doc`` (as :func:`camforensics.reports.reader.read_report` returns it).

    ``embed(path)`` may return a PNG's bytes for a picture file named in a result's ``outputs`` (extract's
    residual and spectrum pictures); None leaves it out.
    """
    run = doc["run"]
    results = doc.get("results") or []
    params = run.get("parameters") or {}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">",
        f"<title>camforensics {_e(run.get('command'))}: case report</title><style>{STYLE}</style></head><body>",
        f"<h1>camforensics {_e(run.get('command'))}: case report</h1>",
        f"<p><b>{_e(_summary_sentence(doc))}</b></p>",
        _table(
            [
                ("report file", source.name),
                ("report sha256", source_sha256),
                ("run started", run.get("started")),
                ("run finished", run.get("finished")),
                ("command line", " ".join(str(a) for a in (run.get("argv") or [])[1:])),
            ]
        ),
    ]
    summary = doc.get("summary") or {}
    if run.get("command") == "verify" and isinstance(summary.get("decision"), dict):
        from camforensics.reports.words import verify_lines

        parts.append("<h2>Verdict</h2><ul>" + "".join(f"<li>{_e(x)}</li>" for x in verify_lines(summary)) + "</ul>")
    parts.append("<h2>Photos</h2>")
    for i, r in enumerate(results):
        inp = r.get("input") or {}
        words, css = _verdict(r)
        name = Path(str(inp.get("path", "?"))).name
        parts.append(f"<div class='photo'><h3>{_e(name)}</h3><span class='verdict {css}'>{_e(words)}</span>")
        parts.append(
            _table(
                [
                    ("path", inp.get("path")),
                    ("sha256", inp.get("sha256")),
                    ("size", f"{inp['width']}x{inp['height']}, {inp.get('format')}" if "width" in inp else None),
                    ("EXIF camera", " ".join(x for x in (inp.get("exif_make"), inp.get("exif_model")) if x) or None),
                    *_evidence(r),
                ]
            )
        )
        if pictures and r.get("status") == "ok" and i < MAX_PICTURES:
            chart = _photo_chart(r) if run.get("command") != "anonymize" else _delta_chart(r)
            if chart is not None:
                parts.append(f"<img alt='scores of {_e(name)}' src='{_png_uri(chart)}'>")
            for key, path in sorted((r.get("outputs") or {}).items()):
                if key.endswith("_png") and embed is not None:
                    data = embed(str(path))
                    if data is not None:
                        parts.append(f"<img alt='{_e(key)} of {_e(name)}' src='{_png_uri(data)}'>")
        parts.append("</div>")
    parts.append("<h2>Tools, models and fingerprints</h2>")
    env = run.get("environment") or {}
    rows = [("camforensics", run.get("tool_version")), ("python", env.get("python")), ("platform", env.get("platform"))]
    rows += [(k, v) for k, v in sorted((env.get("packages") or {}).items())]
    for key in ("attribution", "siamese", "verifier"):
        m = params.get(key)
        if isinstance(m, dict) and m.get("model"):
            rows.append((f"{key} model", f"{m['model']} (sha256 {m.get('model_sha256', '?')})"))
    parts.append(_table(rows))
    lib = run.get("library") or {}
    if lib.get("entries_used"):
        parts.append(f"<p>Fingerprint library {_e(lib.get('path'))}: {_e(lib.get('n_entries'))} fingerprints.</p>")
        parts.append(
            "<table class='kv'><tr><th>device</th><th>images</th><th>fingerprint sha256</th></tr>"
            + "".join(
                f"<tr><td>{_e(e.get('name'))}</td><td>{_e(e.get('n_images'))}</td><td><code>{_e(e.get('fingerprint_sha256'))}</code></td></tr>"
                for e in lib["entries_used"]
            )
            + "</table>"
        )
    parts.append("<h2>Method</h2>")
    for key in ("prnu", "model"):
        if key == "prnu" and "match" not in params and run.get("command") not in ("verify", "enroll", "extract"):
            continue
        if key == "model" and "attribution" not in params:
            continue
        text, refs = METHOD[key]
        parts.append(f"<p>{_e(text)}</p><ol class='small'>" + "".join(f"<li>{_e(x)}</li>" for x in refs) + "</ol>")
    parts.append(f"<p class='small'>Parameters: <code>{_e(_flat(params))}</code></p>")
    parts.append("</body></html>")
    return "\n".join(parts)

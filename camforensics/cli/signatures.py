"""camforensics signatures: JPEG coding signatures of known cameras (build a table, match files against it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import check_outputs, cli_errors, err, literal, out
from camforensics.cli.options import QuietOpt

signatures_app = typer.Typer(
    help="JPEG coding signatures (quantization and Huffman tables, subsampling, EXIF): build a table, match files.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(signatures_app, name="signatures")


@signatures_app.command("build")
def build(
    data: Annotated[list[Path], typer.Argument(help="Data set folder(s) of reference photos (any supported layout).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The table to write (JSON).")],
    table: Annotated[
        Path | None, typer.Option("--table", help="An existing table to extend (e.g. the shipped one).")
    ] = None,
    layout: Annotated[str, typer.Option(help="Data set layout: auto, dresden, vision, kaggle, generic.")] = "auto",
    quiet: QuietOpt = False,
) -> None:
    """Read the coding signature of every JPEG in DATA (labelled by its camera model, as the data set names it) and
    write the table; with --table, add to an existing one. Tables only: no pixels are kept."""
    with cli_errors():
        from camforensics.pipelines.signatures import SignatureTable, build_table

        check_outputs([*data, *([table] if table is not None else [])], report=output)  # before any work
        base = SignatureTable.load(table) if table is not None else None
        result, skipped = build_table(data, layout=layout, table=base)
        result.save(output)
        if not quiet:
            n = sum(c["n_files"] for c in result.cameras.values())
            out.print(f"{literal(output)}: {len(result.cameras)} cameras, {n} reference photos")
            for cam, e in sorted(result.cameras.items()):
                out.print(f"  {cam}: {e['n_files']} photos, {len(e['signatures'])} quantization signature(s)")
            for path, why in list(skipped.items())[:10]:
                err.print(f"[yellow]skipped[/] {literal(path)}: {literal(why)}")
            if len(skipped) > 10:
                err.print(f"[yellow]skipped[/] {len(skipped) - 10} more files")


@signatures_app.command("match")
def match(
    files: Annotated[list[Path], typer.Argument(help="JPEG files to check.")],
    table: Annotated[
        Path | None, typer.Option("--table", help="Signature table (default: the shipped models/jpeg-signatures.json).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Which known cameras share each file's coding signature, whether EXIF agrees, and whether it looks re-saved."""
    with cli_errors():
        from camforensics.errors import CamforensicsError
        from camforensics.io.jpeg_signature import read_jpeg_signature
        from camforensics.pipelines.signatures import SignatureTable, default_table_path, match_signature

        tab = SignatureTable.load(table if table is not None else default_table_path())
        results, bad = [], 0
        for f in files:
            try:
                results.append({"file": str(f), **match_signature(read_jpeg_signature(f), tab)})
            except CamforensicsError as exc:
                bad += 1
                results.append({"file": str(f), "error": str(exc)})
        if as_json:
            typer.echo(json.dumps(results, indent=2, ensure_ascii=False))
        else:
            for r in results:
                if "error" in r:
                    err.print(f"[red]{literal(r['file'])}[/]: {literal(r['error'])}")
                    continue
                s = r["signature"]
                exif = r["exif"]
                agree = {True: "agrees", False: "[red]disagrees[/]", None: "not comparable"}[exif["agrees"]]
                out.print(
                    f"{literal(Path(r['file']).name)}: {s['width']}x{s['height']} {s['subsampling']}, tables {s['quant_key']}"
                    f"{' (IJG quality ' + str(s['ijg_quality']) + ')' if s['ijg_quality'] else ''}, Huffman "
                    f"{s['huffman']}; EXIF {exif['model_id'] or 'none'} ({agree}); {r['note']}"
                )
    raise typer.Exit(1 if bad else 0)

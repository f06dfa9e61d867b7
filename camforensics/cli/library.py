"""camforensics library: look into a fingerprint library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from camforensics.cli.common import cli_errors, out

library_app = typer.Typer(help="List and check the devices of a fingerprint library.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(library_app, name="library")


@library_app.command("list")
def list_devices(
    library: Annotated[Path, typer.Argument(help="Fingerprint library folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the enrolled devices with their size, image count, reliability (the split-half estimate of the share of
    the fingerprint that is the device's pattern; - when unknown) and fingerprint hash."""
    with cli_errors():
        from camforensics.io.library import FingerprintLibrary

        lib = FingerprintLibrary(library)
        entries = [e.summary() | {"exif_make": e.meta.get("exif_make"), "exif_model": e.meta.get("exif_model")} for e in lib.entries()]
        if as_json:
            typer.echo(json.dumps({"library": str(lib.root), "devices": entries}, indent=2, ensure_ascii=False))
            return
        from rich.table import Table

        table = Table(title=f"{lib.root}: {len(entries)} devices", title_justify="left")
        for col in ("device", "size", "images", "reliability", "EXIF make / model", "created", "sha256"):
            table.add_column(col)
        for e in entries:
            h, w = e["shape"]
            make = " / ".join(x for x in (e["exif_make"], e["exif_model"]) if x) or "-"
            rel = "-" if e["reliability"] is None else f"{e['reliability']:.3f}"
            table.add_row(
                e["name"], f"{w}x{h}", str(e["n_images"]), rel, make, str(e["created"]), e["fingerprint_sha256"][:16]
            )
        out.print(table)


@library_app.command("check")
def check(library: Annotated[Path, typer.Argument(help="Fingerprint library folder.")]) -> None:
    """Verify every file of every entry against the sha256 its entry.json records (fingerprint.npy, digest.npy),
    and that each entry.json is well formed (exit 1 if any fails)."""
    with cli_errors():
        from camforensics.errors import LibraryError
        from camforensics.io.library import FingerprintLibrary

        lib = FingerprintLibrary(library)
        bad = 0
        for name in lib.names():
            try:
                checked = lib.entry(name).verify()
                out.print(f"[green]ok[/]      {name} ({', '.join(checked)})")
            except LibraryError as exc:
                bad += 1
                out.print(f"[red]corrupt[/] {name}: {exc}")
    raise typer.Exit(1 if bad else 0)

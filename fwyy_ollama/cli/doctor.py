"""`fwyy doctor`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from fwyy_ollama.cli.common import console, json_option, offline_option, print_json, profile_option
from fwyy_ollama.doctor import run_checks
from fwyy_ollama.profiles import load_profile


@click.command()
@profile_option
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("out"), show_default=True
)
@offline_option
@json_option
def doctor(profile: str | None, out: Path, as_json: bool) -> None:
    """Check torch/CUDA, unsloth, llama.cpp, gpt4all, Go, the Ollama daemon and disk for a profile.

    Exits non-zero when something would stop `fwyy build --profile P`.
    """
    prof = load_profile(profile)
    checks = run_checks(prof, out)
    blocked = [c for c in checks if c.blocking and not c.ok]
    if as_json:
        print_json({"profile": prof.name, "ok": not blocked, "checks": [c.to_json() for c in checks]})
    else:
        table = Table(title=f"fwyy doctor: {prof.name}")
        table.add_column("check")
        table.add_column("status")
        table.add_column("detail")
        for c in checks:
            status = (
                "[green]ok[/]" if c.ok else ("[red]blocks build[/]" if c.blocking else "[yellow]missing[/]")
            )
            table.add_row(c.name, status, escape(c.detail))
        console.print(table)
        if blocked:
            console.print(f"[red]{len(blocked)} problem(s) stop `fwyy build --profile {prof.name}`.[/]")
    sys.exit(1 if blocked else 0)

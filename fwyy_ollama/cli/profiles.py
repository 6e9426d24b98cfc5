"""`fwyy profiles`."""

from __future__ import annotations

import click
from rich.table import Table

from fwyy_ollama.cli.common import console, json_option, print_json
from fwyy_ollama.profiles import DEFAULT_PROFILE, load_profile_file, shipped_profiles


@click.command()
@json_option
def profiles(as_json: bool) -> None:
    """List the shipped profiles (use one with --profile NAME, or pass your own TOML file)."""
    loaded = [load_profile_file(path) for path in shipped_profiles().values()]
    if as_json:
        print_json([p.settings() | {"file": str(p.source)} for p in loaded])
        return
    table = Table(title="fwyy profiles")
    for col in ("name", "base model", "family", "lang", "device", "quant", "steps"):
        table.add_column(col)
    for p in loaded:
        name = f"{p.name} (default)" if p.name == DEFAULT_PROFILE else p.name
        table.add_row(
            name, p.base.hf_id, p.chat_family, p.language, p.device, p.export.quant, str(p.train.max_steps)
        )
    console.print(table)

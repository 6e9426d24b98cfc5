"""Console objects and option helpers shared by the command modules."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def print_json(value: Any) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else on it."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
profile_option = click.option(
    "--profile",
    "-p",
    "profile",
    default=None,
    help="Shipped profile name (see `fwyy profiles`) or a path to your own TOML. Default: fwyy-qwen2.",
)

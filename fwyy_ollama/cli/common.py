"""Console objects and option helpers shared by the command modules."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

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


ProgressFn = Callable[[float, float | None, str], None]


@contextmanager
def progress_callback(first: str, *, disable: bool = False) -> Iterator[ProgressFn]:
    """A transient bar on stderr, moved by a stage's progress(completed, total, description).

    Stages report through that callback and never print; this is the one place that shows it.
    """
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True, disable=disable) as bar:
        task = bar.add_task(first, total=None)

        def update(completed: float, total: float | None, description: str) -> None:
            bar.update(task, completed=completed, total=total, description=description)

        yield update

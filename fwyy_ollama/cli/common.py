"""Console objects and option helpers shared by the command modules.

Output that goes to a pipe or a file (CI logs, `2> err.txt`, a test's capture) is read by programs
and pasted by people, so nothing there may be hard-wrapped at 80 columns or cut with "…": a path
broken across two lines no longer names the file, and a wrapped Python snippet is not Python.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console, ConsoleDimensions
from rich.measure import Measurement
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

# Layout width for output that is not a terminal: wide enough that no line is ever wrapped.
UNBOUNDED_WIDTH = 1 << 20


class PlainConsole(Console):
    """rich's Console, except that output to a non-terminal is laid out at its natural width.

    rich lays out for 80 columns (or $COLUMNS) when its file is not a tty, so an error message
    naming a long temp path came out on two lines and tables cut paths with "…". Here the layout
    width is unbounded for such files and each print is given the width its content needs, so
    panels and tables are exactly as wide as their longest line. The tty test reads the file
    itself (not rich's is_terminal, which FORCE_COLOR turns on in CI logs) and is made at every
    print, because the file behind sys.stdout changes (click's test runner swaps it).
    """

    def writes_to_tty(self) -> bool:
        """Whether this console's file is a terminal now (FORCE_COLOR and TTY_COMPATIBLE aside)."""
        isatty = getattr(self.file, "isatty", None)
        try:
            return bool(isatty is not None and isatty())
        except ValueError:  # a closed file
            return False

    @property
    def size(self) -> ConsoleDimensions:
        dims = Console.size.fget(self)  # type: ignore[attr-defined]
        return dims if self.writes_to_tty() else ConsoleDimensions(UNBOUNDED_WIDTH, dims.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    def natural_width(self, *objects: Any, markup: bool | None = None) -> int:
        """The width the widest of these renderables needs so that none of its lines wraps."""
        widest = 1
        options = self.options
        for obj in objects:
            if isinstance(obj, str):
                obj = self.render_str(obj, markup=markup, highlight=False)
            elif not isinstance(obj, Text) and not hasattr(obj, "__rich_measure__"):
                continue  # unmeasurable (a Control code, a live display): lays out as it likes
            widest = max(widest, Measurement.get(self, options, obj).maximum)
        return widest

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if kwargs.get("width") is None and objects and not self.writes_to_tty():
            kwargs["width"] = self.natural_width(*objects, markup=kwargs.get("markup"))
            kwargs.setdefault("soft_wrap", True)
        super().print(*objects, **kwargs)


console = PlainConsole()
err_console = PlainConsole(stderr=True)


def print_json(value: Any) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else on it."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _set_offline(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:  # huggingface_hub's own switch, read by fwyy_ollama.hub at call time
        import os

        os.environ["HF_HUB_OFFLINE"] = "1"


offline_option = click.option(
    "--offline",
    is_flag=True,
    expose_value=False,
    callback=_set_offline,
    help="Use only models already on this machine; never download (same as HF_HUB_OFFLINE=1).",
)
profile_option = click.option(
    "--profile",
    "-p",
    "profile",
    default=None,
    help="Shipped profile name (see `fwyy profiles`) or a path to your own TOML. Default: fwyy-qwen2.",
)




def build_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--out, --model and --profile: which `fwyy build` output a command reads (card, push hf)."""
    for option in reversed(
        (
            click.option(
                "--out",
                type=click.Path(file_okay=False, path_type=Path),
                default=Path("out"),
                show_default=True,
                help="Where `fwyy build` wrote its outputs.",
            ),
            click.option("--model", "model", default=None, help="The build: OUT/<MODEL> [default: the last build]."),
            click.option(
                "--profile",
                "-p",
                "profile",
                default=None,
                help="The profile it was built from [default: found from the build].",
            ),
        )
    ):
        func = option(func)
    return func


ProgressFn = Callable[[float, float | None, str], None]


@contextmanager
def progress_callback(first: str, *, disable: bool = False) -> Iterator[ProgressFn]:
    """A transient bar on stderr, moved by a stage's progress(completed, total, description).

    Stages report through that callback and never print; this is the one place that shows it.
    Not on a pipe or file: a log gets no bar, and rich's blank line after one stays out of it.
    """
    disable = disable or not err_console.writes_to_tty()
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

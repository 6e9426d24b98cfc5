"""What the CLI writes to a pipe or a file is whole: no hard wraps, no "…", whatever the path length.

rich lays output out for 80 columns (or $COLUMNS) when it is not a terminal; an error naming a long
temp path came out on two lines and `make test` failed in a fresh clone depending on where the
checkout was. These tests use paths far longer than any terminal and unset COLUMNS and FORCE_COLOR
so the result does not depend on the machine that runs them.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.panel import Panel
from rich.table import Table

from fwyy_ollama.cli.common import PlainConsole

REPO = Path(__file__).resolve().parents[1]


def _long_dir(tmp_path: Path) -> Path:
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / ("and-another-one-" * 5)
    deep.mkdir(parents=True)
    return deep


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    return env | {"HF_HUB_OFFLINE": "1"} | extra


def test_error_with_long_path_is_one_line(tmp_path: Path) -> None:
    model = _long_dir(tmp_path)
    assert len(str(model)) > 200
    for extra in ({}, {"COLUMNS": "40"}, {"FORCE_COLOR": "1", "COLUMNS": "60"}):
        proc = subprocess.run(
            [sys.executable, "-m", "fwyy_ollama", "export", "--model", str(model), "-q", "f16"],
            cwd=REPO, capture_output=True, text=True, check=False, env=_env(**extra),
        )  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        first = proc.stderr.splitlines()[0]
        assert str(model) in first and "config.json is missing" in first, (extra, proc.stderr)
        assert "Traceback" not in proc.stderr and "…" not in proc.stderr


def test_tables_and_panels_keep_long_cells_whole() -> None:
    path = "/tmp/" + "x" * 300 + "/model.gguf"
    out = io.StringIO()
    con = PlainConsole(file=out)
    table = Table(show_header=False, box=None)
    table.add_row("model file", path)
    table.add_row("quantization", "q4_0")
    con.print(table)
    grid = Table("name", "path")
    grid.add_row("fwyy", path)
    con.print(grid)
    con.print(Panel(f"pick {path} in the menu", title="GPT4All desktop"))
    con.print(Panel("short", title="t"))
    text = out.getvalue()
    assert text.count(path) == 3 and "…" not in text
    lines = text.splitlines()
    # Tables and panels are as wide as their content, not padded to some assumed width.
    assert max(len(line) for line in lines) < len(path) + 40
    assert lines[-1] == "╰───────╯" and lines[-2] == "│ short │"


def test_terminal_output_still_fits_the_terminal() -> None:
    out = io.StringIO()
    out.isatty = lambda: True  # type: ignore[method-assign]
    con = PlainConsole(file=out, width=50, force_terminal=True, color_system=None)
    con.print("word " * 30)
    assert max(len(line) for line in out.getvalue().splitlines()) <= 50


def test_gpt4all_snippet_is_valid_python_as_printed() -> None:
    """The bindings snippet export-gpt4all prints pastes into Python: nothing wraps or cuts it."""
    import ast

    from fwyy_ollama.cli.gpt4all import bindings_snippet

    system = "<|im_start|>system\n" + "You are fwyy, a defensive security analyst. " * 12 + "<|im_end|>\n"
    template = "<|im_start|>user\n{0}<|im_end|>\n<|im_start|>assistant\n"
    gguf = Path("/tmp") / ("models-" * 30) / "fwyy-smollm2.q4_0.gguf"
    out = io.StringIO()
    PlainConsole(file=out).print(bindings_snippet(gguf, system, template), markup=False, highlight=False)
    printed = out.getvalue()
    tree = ast.parse(printed)
    values = {
        node.targets[0].id: ast.literal_eval(node.value)  # type: ignore[attr-defined]
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
    }
    assert values["SYSTEM"] == system and values["TEMPLATE"] == template
    assert str(gguf.parent) in printed

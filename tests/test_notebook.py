"""train/fwyy_colab.ipynb: valid nbformat, and every fwyy command in it parses with today's CLI."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import nbformat
import pytest

from fwyy_ollama.cli import COMMANDS, cli

NOTEBOOK = Path(__file__).resolve().parent.parent / "train" / "fwyy_colab.ipynb"


def fwyy_commands(nb: nbformat.NotebookNode) -> list[str]:
    """`!fwyy ...` lines of code cells and `fwyy ...` lines of fenced blocks in markdown cells."""
    found: list[str] = []
    for cell in nb.cells:
        lines = cell.source.splitlines()
        if cell.cell_type == "code":
            found += [ln.strip()[1:] for ln in lines if ln.strip().startswith("!fwyy ")]
        elif cell.cell_type == "markdown":
            fenced = False
            for ln in lines:
                if ln.strip().startswith("```"):
                    fenced = not fenced
                elif fenced and ln.strip().startswith("fwyy "):
                    found.append(ln.strip())
    return found


def test_notebook_is_valid_nbformat() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)  # raises on any schema violation
    assert nb.metadata["accelerator"] == "GPU" and nb.metadata["colab"]["gpuType"] == "T4"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "fwyy-ollama[train,unsloth" in code and "pip install" in code
    assert "!fwyy build --profile fwyy-qwen2" in code
    assert ".gguf" in code  # it shows how to fetch the GGUF


def _parse(command: str) -> click.Context:
    argv = shlex.split(command)
    assert argv[0] == "fwyy"
    name, args = argv[1], argv[2:]
    assert name in COMMANDS, f"{command!r}: no such fwyy command"
    with click.Context(cli, info_name="fwyy") as parent:
        sub = cli.get_command(parent, name)
        assert sub is not None
        # Strict parsing (not resilient): unknown options, bad choices and missing values all fail here.
        return sub.make_context(name, args, parent=parent)


@pytest.mark.parametrize("command", fwyy_commands(nbformat.read(NOTEBOOK, as_version=4)))
def test_every_fwyy_command_in_the_notebook_parses(command: str) -> None:
    ctx = _parse(command)
    assert ctx.command.name is not None


def test_the_notebook_has_the_commands_we_expect() -> None:
    commands = fwyy_commands(nbformat.read(NOTEBOOK, as_version=4))
    assert "fwyy build --profile fwyy-qwen2 --no-ollama" in commands
    assert any(c.startswith("fwyy doctor") for c in commands)
    assert len(commands) >= 4


def test_a_wrong_command_would_be_caught() -> None:
    """The parser used above really rejects what the CLI would reject."""
    with pytest.raises(click.UsageError):
        _parse("fwyy build --profile fwyy-qwen2 --no-such-option")
    with pytest.raises(click.BadParameter):
        _parse("fwyy train --backend tpu")

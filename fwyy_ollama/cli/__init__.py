"""The `fwyy` command: a Click group whose commands live one module each under fwyy_ollama.cli.

Commands are imported only when called, so `fwyy --help` starts fast with the core install. A
command parses its options, calls a stage function and prints with rich; it holds no logic.
"""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Any

import click

from fwyy_ollama import __version__
from fwyy_ollama.errors import FwyyError

# command name -> "module:attribute" (module relative to fwyy_ollama.cli)
COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("build:build", "Run every stage: dataset, train, export, Modelfile, ollama create."),
    "profiles": ("profiles:profiles", "List the shipped profiles."),
    "doctor": ("doctor:doctor", "Check this machine for what each stage needs."),
    "dataset": ("dataset:dataset", "Generate, import, validate and inspect security datasets."),
    "train": ("train:train", "Fine-tune a profile's base model with LoRA (Unsloth or HF)."),
    "export": ("export:export", "Merge an adapter and write a (quantized) GGUF."),
    "modelfile": ("modelfile:modelfile", "Render or check an Ollama Modelfile."),
    "create": ("ollama:create", "Create an Ollama model through the daemon's API."),
    "ls": ("ollama:ls", "List the daemon's models."),
    "show": ("ollama:show", "Show an Ollama model's details."),
    "rm": ("ollama:rm", "Delete an Ollama model."),
    "chat": ("chat:chat", "Talk to the analyst in a rich terminal REPL."),
    "analyze": ("analyze:analyze", "Analyze one file or stdin and print a four-part report."),
    "export-gpt4all": ("gpt4all:export_gpt4all", "Install a GGUF into GPT4All with its settings."),
    "eval": ("eval:eval_", "Compare models on the eval set: accuracy, F1, format, speed."),
    "card": ("card:card", "Write a build's Hugging Face model card (README.md) again."),
    "push": ("push:push", "Share a build on the Hugging Face Hub or an Ollama registry."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        target, _ = COMMANDS[name]
        module_name, attr = target.split(":")
        module = importlib.import_module(f"fwyy_ollama.cli.{module_name}")
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so --help imports no command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fwyy")
def cli() -> None:
    """fwyy (风灵月影): turn an open model into a local security analyst.

    fwyy build && ollama run fwyy-qwen2
    """


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> Any:
    """Entry point: user mistakes (FwyyError) print a message and exit non-zero, no traceback."""
    from rich.markup import escape

    from fwyy_ollama.cli.common import err_console

    # SIGTERM (a `kill`, a CI timeout) unwinds like Ctrl-C, so temporary files are removed.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = cli.main(args=argv, prog_name="fwyy", standalone_mode=False)
        # Without standalone mode click returns ctx.exit()'s code instead of exiting with it.
        if isinstance(code, int) and code:
            sys.exit(code)
        return code
    except FwyyError as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err_console.print(f"  [dim]hint:[/] {escape(exc.hint)}", highlight=False)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)

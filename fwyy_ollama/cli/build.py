"""`fwyy build`: every stage, with a progress line per stage and a results table."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from fwyy_ollama.cli.common import (
    console,
    err_console,
    json_option,
    offline_option,
    print_json,
    profile_option,
)
from fwyy_ollama.pipeline import BuildOptions, StageHooks, StageOutcome
from fwyy_ollama.pipeline import build as run_build
from fwyy_ollama.profiles import load_profile


class _RichHooks(StageHooks):
    """One progress task per stage; the stage's own callback moves its bar."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = None

    def start(self, stage: str, note: str):  # type: ignore[no-untyped-def]
        self.task = self.progress.add_task(f"[bold]{stage}[/]", total=None)
        task = self.task

        def update(completed: float, total: float | None, description: str) -> None:
            self.progress.update(
                task, completed=completed, total=total, description=f"[bold]{stage}[/] {description}"
            )

        return update

    def done(self, outcome: StageOutcome) -> None:
        mark = {
            "ran": "[green]done[/]",
            "skipped": "[cyan]skipped[/]",
            "not run": "[yellow]not run[/]",
        }
        text = f"[bold]{outcome.name}[/] {mark[outcome.status]}"
        if outcome.note:
            text += f" [dim]{outcome.note}[/]"
        if outcome.status == "ran" and self.task is not None:
            self.progress.update(self.task, description=text, completed=1, total=1)
            self.task = None
        else:
            self.progress.console.print(f"  {text}")


@click.command()
@profile_option
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Folder for the build; each profile gets OUT/<name>/ with its manifest.json.",
)
@click.option("--quant", default=None, help="GGUF quantization (default: the profile's, e.g. q4_k_m).")
@click.option("--skip-train", is_flag=True, help="Export the base model as it is, without fine-tuning.")
@click.option("--no-ollama", is_flag=True, help="Stop after the Modelfile; don't talk to the Ollama daemon.")
@click.option(
    "--max-steps", type=click.IntRange(min=1), default=None, help="Override the profile's training steps."
)
@click.option("--backend", type=click.Choice(["auto", "unsloth", "hf"]), default="auto", show_default=True)
@click.option("--force", is_flag=True, help="Rerun every stage even when nothing changed.")
@offline_option
@json_option
def build(
    profile: str | None,
    out: Path,
    quant: str | None,
    skip_train: bool,
    no_ollama: bool,
    max_steps: int | None,
    backend: str,
    force: bool,
    as_json: bool,
) -> None:
    """Build a local security analyst: dataset, train, export, Modelfile, ollama create.

    \b
    fwyy build --profile fwyy-smollm2      # the CPU demo, minutes
    fwyy build && ollama run fwyy-qwen2    # the default, on an NVIDIA GPU
    """
    prof = load_profile(profile)
    options = BuildOptions(
        out=out,
        quant=quant,
        skip_train=skip_train,
        ollama=not no_ollama,
        max_steps=max_steps,
        backend=backend,
        force=force,
    )
    shown = err_console if as_json else console
    shown.print(
        f"Building [bold]{prof.name}[/] ({prof.base.hf_id}, {prof.chat_family}) into {out / prof.name}"
    )
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=shown, transient=False) as progress:
        result = run_build(prof, options, _RichHooks(progress))
    if as_json:
        print_json(result.to_json())
        return
    table = Table(title=f"{prof.name}: stages")
    for col in ("stage", "status", "seconds", "note"):
        table.add_column(col)
    for s in result.stages:
        table.add_row(s.name, s.status, f"{s.seconds:.1f}" if s.status == "ran" else "-", s.note)
    console.print(table)
    console.print(f"GGUF:      {result.gguf}")
    console.print(f"Modelfile: {result.modelfile}")
    if result.created:
        console.print(f"Ollama has it: [bold]ollama run {prof.name}[/]")
    else:
        console.print(f"No Ollama model created. When a daemon runs: [bold]{result.ollama_command}[/]")
        console.print(f"Or chat now without Ollama: [bold]fwyy chat --gguf {result.gguf}[/]")

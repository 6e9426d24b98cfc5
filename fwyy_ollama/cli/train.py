"""`fwyy train`: fine-tune a profile's base with LoRA and write the adapter folder.

Runs unchanged under several processes (only rank 0 shows progress and writes):

    torchrun --nproc_per_node 4 -m fwyy_ollama train --profile fwyy-qwen2 --backend hf
    accelerate launch -m fwyy_ollama train --profile fwyy-qwen2 --backend hf
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fwyy_ollama.cli.common import (
    console,
    err_console,
    json_option,
    offline_option,
    print_json,
    profile_option,
)
from fwyy_ollama.finetune.backends import BACKEND_CHOICES
from fwyy_ollama.profiles import load_profile


@click.command("train")
@profile_option
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Alpaca JSONL training file (repeatable). Default: the profile's data.",
)
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Override the profile's steps.")
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="auto", show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint next to the adapter folder.")
@click.option(
    "--recipe",
    type=click.Choice(("auto", "cpu", "gpu")),
    default="auto",
    show_default=True,
    help="The profile's [train] (cpu) or [train.gpu] recipe; auto: gpu when CUDA is present.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Adapter folder. Default: out/<profile>/adapter (where `fwyy build` puts it).",
)
@offline_option
@json_option
def train(
    profile: str | None,
    data: tuple[Path, ...],
    max_steps: int | None,
    backend: str,
    resume: bool,
    recipe: str,
    out: Path | None,
    as_json: bool,
) -> None:
    """Fine-tune the profile's base model with LoRA (Unsloth on NVIDIA, HF + PEFT + TRL elsewhere)."""
    from fwyy_ollama.finetune import train_adapter

    prof = load_profile(profile)
    out_dir = out or Path("out") / prof.name / "adapter"
    main_rank = os.environ.get("RANK", "0") == "0"
    kwargs = dict(
        data_files=list(data) or None,
        out_dir=out_dir,
        max_steps=max_steps,
        backend=backend,
        resume=resume,
        recipe=recipe,
    )
    if not main_rank:
        train_adapter(prof, **kwargs)
        return
    columns = (
        TextColumn("[bold]train[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console if as_json else console, transient=as_json) as bar:
        task = bar.add_task(prof.name, total=None)

        def progress(completed: float, total: float | None, description: str) -> None:
            bar.update(task, completed=completed, total=total, description=description)

        result = train_adapter(prof, progress=progress, **kwargs)
    if as_json:
        print_json(result.to_json())
        return
    meta = result.metadata
    table = Table(title=f"fwyy train {prof.name}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    loss = (
        f"{result.first_loss:.4f} -> {result.final_loss:.4f}"
        if result.first_loss is not None and result.final_loss is not None
        else "-"
    )
    rows = [
        ("adapter", str(result.adapter_dir)),
        ("backend", f"{result.backend} ({meta.get('backend_settings', {}).get('device', '?')})"),
        ("base", f"{meta['base']['hf_id']}  [dim]{meta['base_model_dir']}[/]"),
        (
            "steps",
            f"{result.steps}"
            + (f" (resumed from {meta['resumed_from']})" if meta.get("resumed_from") else ""),
        ),
        ("loss", loss),
        ("tokens/s", f"{result.tokens_per_second:.0f}" if result.tokens_per_second else "-"),
        ("time", f"{result.seconds:.1f} s"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    console.print(f"next: [bold]fwyy export --adapter {result.adapter_dir}[/]")

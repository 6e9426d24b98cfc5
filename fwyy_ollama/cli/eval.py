"""`fwyy eval`: models side by side on the eval set (accuracy, macro-F1, format, speed)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fwyy_ollama.cli.common import console, err_console, json_option, print_json


def _pct(x: float) -> str:
    return f"{x:.1%}"


@click.command("eval")
@click.option(
    "--model",
    "-m",
    "models",
    multiple=True,
    required=True,
    metavar="SPEC",
    help="Model to evaluate (repeat).",
)
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Eval JSONL (default: the shipped eval set).",
)
@click.option(
    "--limit", type=int, default=None, help="Evaluate only N records, spread over categories and labels."
)
@click.option("--max-tokens", type=int, default=384, show_default=True, help="Longest answer per record.")
@click.option(
    "--plot",
    "plot_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a PNG of per-category accuracy.",
)
@click.option("--no-cache", is_flag=True, help="Ask every model again instead of reusing cached answers.")
@click.option("--answers", is_flag=True, help="With --json: include every answer and its score.")
@json_option
def eval_(
    models: tuple[str, ...],
    data: Path | None,
    limit: int | None,
    max_tokens: int,
    plot_file: Path | None,
    no_cache: bool,
    answers: bool,
    as_json: bool,
) -> None:
    """Compare models on the eval set.

    SPEC: NAME (the Ollama model, or that profile's last build GGUF when no daemon has it),
    ollama:NAME, gguf:PATH or PATH.gguf, demo (the shipped SmolLM2-135M GGUF), hf:BASE_DIR,
    hf:BASE_DIR+adapter:ADAPTER_DIR, or adapter:ADAPTER_DIR. Prefix LABEL= to name a column,
    e.g. `fwyy eval -m before=demo -m after=fwyy-smollm2 --limit 40 --plot eval.png`.
    """
    from fwyy_ollama.evaluate import evaluate, plot

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("eval", total=None)

        def progress(done: float, total: float | None, description: str) -> None:
            bar.update(task, completed=done, total=total, description=description)

        result = evaluate(
            models, data=data, limit=limit, max_tokens=max_tokens, use_cache=not no_cache, progress=progress
        )
    if plot_file is not None:
        plot(result, plot_file)
    if as_json:
        print_json(result.to_json(answers=answers) | ({"plot": str(plot_file)} if plot_file else {}))
        return

    table = Table(title=f"fwyy eval: {result.n} records of {result.data.name}")
    table.add_column("metric")
    for m in result.models:
        table.add_column(m.spec.display, justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("label accuracy", [_pct(m.metrics.accuracy) for m in result.models]),
        ("macro-F1", [f"{m.metrics.macro_f1:.3f}" for m in result.models]),
        ("format compliance", [_pct(m.metrics.format_compliance) for m in result.models]),
    ]
    categories = sorted({c for m in result.models for c in m.metrics.per_category})
    for c in categories:
        rows.append(
            (
                f"  {c} accuracy",
                [
                    _pct(m.metrics.per_category[c]["accuracy"]) if c in m.metrics.per_category else "-"
                    for m in result.models
                ],
            )
        )
    rows += [
        ("mean latency", [f"{m.metrics.mean_latency_s:.2f} s" for m in result.models]),
        ("tokens/s", [f"{m.metrics.tokens_per_s:.1f}" for m in result.models]),
        ("backend", [m.backend for m in result.models]),
        ("cached answers", [f"{m.cached}/{result.n}" for m in result.models]),
    ]
    for name, values in rows:
        table.add_row(name, *values)
    console.print(table)
    for m in result.models:
        conf = Table(
            title=f"{m.spec.display}: confusion (rows gold, columns predicted)", title_justify="left"
        )
        conf.add_column("gold")
        columns = list(next(iter(m.metrics.confusion.values())))
        for col in columns:
            conf.add_column(col, justify="right")
        for gold, row in m.metrics.confusion.items():
            if sum(row.values()):
                conf.add_row(gold, *(str(row[c]) if row[c] else "." for c in columns))
        console.print(conf)
    if plot_file is not None:
        console.print(f"plot: {plot_file}")

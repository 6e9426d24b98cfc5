"""`fwyy eval`: models and classical detectors side by side on an eval set (safe-vs-risky accuracy,
risky precision / recall / F1, 5-way accuracy, macro-F1, format compliance, speed)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fwyy_ollama.cli.common import console, err_console, json_option, print_json


@click.command("eval")
@click.option(
    "--model",
    "-m",
    "models",
    multiple=True,
    required=True,
    metavar="SPEC",
    help="Model or detector to evaluate (repeat).",
)
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Eval JSONL: Alpaca records or real-world items (default: the shipped eval set).",
)
@click.option(
    "--limit", type=int, default=None, help="Evaluate only N items, spread over categories and labels."
)
@click.option(
    "--max-tokens",
    type=int,
    default=None,
    help="Longest answer per item [default: 384 free, none under a llama.cpp grammar, 1024 under Ollama's schema].",
)
@click.option(
    "--constrain/--no-constrain",
    default=True,
    show_default=True,
    help="Constrained decoding (the report's grammar on llama.cpp, its JSON schema on Ollama), as `fwyy analyze`.",
)
@click.option("--both", is_flag=True, help="Run each model constrained and free: two rows each.")
@click.option(
    "--findings/--no-findings",
    default=True,
    show_default=True,
    help="Give each prompt fwyy's static-check line, as `fwyy analyze` does.",
)
@click.option(
    "--veto/--no-veto",
    default=True,
    show_default=True,
    help="With --findings: a sure-fire static rule (findings.VETO_RULES) overrules a 'safe' answer, as in `fwyy analyze`.",
)
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    default=None,
    help="Ask real-world items in this language [default: each model's own, else en].",
)
@click.option(
    "--plot",
    "plot_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a PNG of per-category accuracy.",
)
@click.option("--markdown", is_flag=True, help="Print the table as GitHub markdown (for a README).")
@click.option("--no-cache", is_flag=True, help="Ask every model again instead of reusing cached answers.")
@click.option("--answers", is_flag=True, help="With --json: include every answer and its score.")
@json_option
def eval_(
    models: tuple[str, ...],
    data: Path | None,
    limit: int | None,
    max_tokens: int | None,
    constrain: bool,
    both: bool,
    findings: bool,
    veto: bool,
    lang: str | None,
    plot_file: Path | None,
    markdown: bool,
    no_cache: bool,
    answers: bool,
    as_json: bool,
) -> None:
    """Compare models and classical detectors on an eval set.

    SPEC: NAME (the Ollama model, or that profile's last build GGUF when no daemon has it),
    ollama:NAME, gguf:PATH or PATH.gguf, demo (the shipped SmolLM2-135M GGUF), hf:BASE_DIR,
    hf:BASE_DIR+adapter:ADAPTER_DIR, adapter:ADAPTER_DIR, or a detector: libinjection (SQL, XSS),
    bandit (Python), always-risky. Prefix LABEL= to name a column, e.g.
    `fwyy eval --data train/data/realworld.eval.jsonl -m base=demo -m fwyy-smollm2 -m libinjection -m bandit`.
    """
    from fwyy_ollama.evaluation import evaluate, markdown_table, plot, rows

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
            models,
            data=data,
            limit=limit,
            max_tokens=max_tokens,
            use_cache=not no_cache,
            constrain=constrain,
            both=both,
            findings=findings,
            veto=veto,
            lang=lang,
            progress=progress,
        )
    from fwyy_ollama.model_card import record_eval

    record_eval(result)  # each build folder evaluated keeps this table for its model card (`fwyy card`)
    if plot_file is not None:
        plot(result, plot_file)
    if as_json:
        print_json(result.to_json(answers=answers) | ({"plot": str(plot_file)} if plot_file else {}))
        return
    if markdown:
        click.echo(markdown_table(result), nl=False)
        return

    table = Table(title=f"fwyy eval: {result.n} items of {result.data.name} ({result.format})")
    table.add_column("metric")
    for m in result.models:
        table.add_column(m.name, justify="right")
    for name, values in rows(result):
        table.add_row(name, *values)
    table.add_row(
        "cached answers", *(f"{m.cached}/{m.metrics.n}" if not m.is_detector else "—" for m in result.models)
    )
    console.print(table)
    for m in result.models:
        if m.is_detector or not m.metrics.n_labelled:
            continue
        conf = Table(title=f"{m.name}: 5-way confusion (rows gold, columns predicted)", title_justify="left")
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

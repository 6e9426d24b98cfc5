"""`fwyy create`, `fwyy ls`, `fwyy show`, `fwyy rm`: the Ollama daemon through its API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from fwyy_ollama.cli.common import console, err_console, json_option, print_json
from fwyy_ollama.errors import FwyyError

host_option = click.option(
    "--host", default=None, help="The Ollama daemon's address. Default: $OLLAMA_HOST, else 127.0.0.1:11434."
)


@contextmanager
def progress_bar(quiet: bool) -> Iterator[Callable[[float, float | None, str], None] | None]:
    """A rich progress bar fed by the stage's progress(completed, total, description) callback.

    Only on a terminal: in a log a bar is noise (and rich would end it with a blank line).
    """
    if quiet or not err_console.writes_to_tty():
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task("connecting", total=None)
        last = {"description": ""}

        def update(completed: float, total: float | None, description: str) -> None:
            short = description if len(description) < 60 else description[:57] + "..."
            if short != last["description"]:
                last["description"] = short
                bar.update(task, description=short, total=total, completed=completed)
            else:
                bar.update(task, total=total, completed=completed)

        yield update


@click.command()
@click.argument("name")
@click.option(
    "--modelfile",
    "-f",
    "modelfile",
    type=click.Path(dir_okay=False),
    default=None,
    help="Create from this Modelfile (as `ollama create -f`).",
)
@click.option(
    "--profile",
    "-p",
    "profile",
    default=None,
    help="Create from a profile instead: its template, system prompt and parameters, sent through the API.",
)
@click.option(
    "--gguf",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --profile: the GGUF (default ./<profile>.<quant>.gguf).",
)
@click.option(
    "--lang", type=click.Choice(["zh", "en"]), default=None, help="With --profile: system prompt language."
)
@click.option(
    "--quantize",
    "-q",
    default=None,
    help="Let Ollama quantize an F16/BF16/F32 GGUF: q8_0, q4_K_S or q4_K_M.",
)
@click.option("--force", is_flag=True, help="Replace a model of that name.")
@host_option
@json_option
def create(
    name: str,
    modelfile: str | None,
    profile: str | None,
    gguf: str | None,
    lang: str | None,
    quantize: str | None,
    force: bool,
    host: str | None,
    as_json: bool,
) -> None:
    """Create the Ollama model NAME: upload the GGUF, then create it with template, system and parameters."""
    from fwyy_ollama import ollama_api

    if modelfile and profile:
        raise click.UsageError("give --modelfile or --profile, not both")
    with progress_bar(as_json) as progress:
        if modelfile:
            result = ollama_api.create_model(
                name, modelfile, quantize=quantize, force=force, progress=progress, host=host
            )
        else:
            from fwyy_ollama.modelfile import default_gguf_name
            from fwyy_ollama.profiles import load_profile

            prof = load_profile(profile)
            path = Path(gguf) if gguf else Path(default_gguf_name(prof))
            if not path.is_file():
                raise FwyyError(
                    f"{path}: no such GGUF for profile {prof.name}",
                    hint="pass --gguf FILE, or write it with `fwyy export`",
                )
            result = ollama_api.create_from_profile(
                name, prof, path, lang=lang, quantize=quantize, force=force, progress=progress, host=host
            )
    if as_json:
        print_json(
            {
                "name": result.name,
                "host": result.host,
                "gguf": str(result.gguf) if result.gguf else None,
                "digest": result.digest,
                "uploaded": result.uploaded,
                "quantize": result.quantize,
                "replaced": result.replaced,
                "statuses": list(result.statuses),
                "seconds": round(result.seconds, 3),
                "notes": list(result.notes),
            }
        )
        return
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    blob = "uploaded" if result.uploaded else "already on the daemon"
    what = "replaced" if result.replaced else "created"
    console.print(
        f"[bold green]{what}[/] {escape(result.name)} at {escape(result.host)} (GGUF {blob}, {result.seconds:.1f}s)"
    )
    console.print(
        f"  run it: [bold]ollama run {result.name}[/]   or   [bold]fwyy chat --model {result.name}[/]"
    )


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


@click.command()
@host_option
@json_option
def ls(host: str | None, as_json: bool) -> None:
    """List the daemon's models."""
    from fwyy_ollama.ollama_api import host_url, list_models
    from fwyy_ollama.redact import redact_url

    models = list_models(host)
    if as_json:
        print_json(models)
        return
    table = Table(title=f"Ollama models at {redact_url(host_url(host))}")
    for col in ("name", "size", "family", "params", "quant", "modified"):
        table.add_column(col)
    for m in models:
        table.add_row(
            m["name"],
            _size(m["size"]),
            m["family"] or "",
            m["parameter_size"] or "",
            m["quantization"] or "",
            (m["modified_at"] or "")[:19].replace("T", " "),
        )
    console.print(table)


@click.command()
@click.argument("name")
@click.option("--modelfile", "modelfile", is_flag=True, help="Print only the model's Modelfile.")
@host_option
@json_option
def show(name: str, modelfile: bool, host: str | None, as_json: bool) -> None:
    """Show a model's details, template, system prompt and parameters."""
    from fwyy_ollama.ollama_api import show_model

    info = show_model(name, host)
    if as_json:
        print_json(info)
        return
    if modelfile:
        click.echo(info.get("modelfile", ""), nl=False)
        return
    details = info.get("details") or {}
    table = Table(title=name, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("family", "parameter_size", "quantization_level", "format"):
        if details.get(key):
            table.add_row(key.replace("_", " "), str(details[key]))
    if info.get("capabilities"):
        table.add_row("capabilities", ", ".join(info["capabilities"]))
    if info.get("parameters"):
        table.add_row("parameters", info["parameters"])
    if info.get("system"):
        table.add_row("system", info["system"])
    if info.get("template"):
        table.add_row("template", info["template"])
    if info.get("license"):
        table.add_row("license", info["license"].splitlines()[0])
    console.print(table)


@click.command()
@click.argument("names", nargs=-1, required=True)
@host_option
@json_option
def rm(names: tuple[str, ...], host: str | None, as_json: bool) -> None:
    """Delete Ollama models."""
    from fwyy_ollama.ollama_api import delete_model

    for name in names:
        delete_model(name, host)
        if not as_json:
            console.print(f"deleted {name}")
    if as_json:
        print_json({"deleted": list(names)})

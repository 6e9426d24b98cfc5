"""`fwyy export-gpt4all`: put a model into GPT4All's folder with its chat template and system message."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from fwyy_ollama.cli.common import (
    console,
    err_console,
    json_option,
    print_json,
    profile_option,
    progress_callback,
)


@click.command("export-gpt4all")
@profile_option
@click.option(
    "--gguf", type=click.Path(dir_okay=False, path_type=Path), help="Export this GGUF instead of a build."
)
@click.option(
    "--quant",
    type=click.Choice(["q4_0", "q4_1", "f16", "q4_k_m"]),
    default=None,
    help="Quantization (profile build default: q4_0; --gguf default: keep the file's own).",
)
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="GPT4All's model folder (default: the app's download path).",
)
@click.option(
    "--settings",
    "settings_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="GPT4All's settings file (default: where the app keeps GPT4All.ini).",
)
@click.option("--name", default=None, help="Model name (file name base); default: profile or GGUF name.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None, help="System prompt language.")
@click.option("--system", default=None, help="System message to use instead of fwyy's security prompt.")
@click.option(
    "--out", "out_dir", default="out", type=click.Path(file_okay=False, path_type=Path), show_default=True
)
@click.option(
    "--gpt4all-version",
    default=None,
    metavar="X.Y.Z",
    help="The GPT4All app version to write settings for (default: the one that last ran with the "
    "settings file). 3.0-3.4 read promptTemplate/systemPrompt, 3.5+ chatTemplate/systemMessage.",
)
@click.option(
    "--verify/--no-verify", default=True, help="Load the result with the gpt4all package if installed."
)
@json_option
def export_gpt4all(
    profile: str | None,
    gguf: Path | None,
    quant: str | None,
    models_dir: Path | None,
    settings_file: Path | None,
    name: str | None,
    lang: str | None,
    system: str | None,
    out_dir: Path,
    gpt4all_version: str | None,
    verify: bool,
    as_json: bool,
) -> None:
    """Install a model into GPT4All (desktop app and Python bindings).

    Copies the GGUF into GPT4All's model folder (fixing metadata its llama.cpp refuses), writes the
    app's chat template and system message into GPT4All.ini, and prints the prompt template and
    system prompt for the gpt4all Python package.
    """
    from fwyy_ollama.gpt4all import export_gpt4all as run

    with progress_callback("exporting", disable=as_json) as progress:
        result = run(
            gguf=gguf,
            profile=profile,
            quant=quant,
            models_dir=models_dir,
            settings_file=settings_file,
            name=name,
            system=system,
            lang=lang,
            out_dir=out_dir,
            gpt4all_version=gpt4all_version,
            progress=progress,
        )
    loads: bool | None = None
    if verify:
        try:
            from fwyy_ollama.gpt4all import check_loads

            loads = check_loads(result.gguf)
        except Exception as exc:  # noqa: BLE001 - the gpt4all extra is optional here
            err_console.print(f"[yellow]not verified:[/] {escape(str(exc))}", highlight=False)
    if as_json:
        print_json(result.to_json() | {"gpt4all_loads": loads})
        return

    table = Table(show_header=False, box=None)
    table.add_row("model file", escape(str(result.gguf)))
    table.add_row(
        "quantization", result.quant + ("" if result.gpu_ok else "  (GPT4All runs it on the CPU only)")
    )
    table.add_row("settings", escape(f"{result.settings_file}  [{result.group}]"))
    table.add_row(
        "written for",
        f"GPT4All {result.app_version or '3.5+ (version unknown)'}: "
        + (
            "promptTemplate, systemPrompt"
            if result.settings_format == "legacy"
            else "chatTemplate, systemMessage"
        ),
    )
    table.add_row("source", escape(str(result.source)))
    if loads is not None:
        table.add_row("gpt4all loads it", "[green]yes[/]" if loads else "[red]no[/]")
    console.print(table)
    for change in result.changes:
        console.print(f"[yellow]changed:[/] {escape(change)}", highlight=False)
    console.print(
        Panel(
            f"Close GPT4All before exporting (it rewrites GPT4All.ini on exit), then start it and pick "
            f"[bold]{escape(result.name)}[/] in the model menu at the top of a chat (Settings > Model shows its "
            "chat template and system message).",
            title="GPT4All desktop",
        )
    )
    b = result.bindings
    if b.note:
        console.print(f"[yellow]note:[/] {escape(b.note)}")
    console.print("[dim]gpt4all Python bindings (they do not read GPT4All.ini):[/]")
    # Plain text, never wrapped by rich, so the block pastes into Python as it is.
    console.print(bindings_snippet(result.gguf, b.system_prompt, b.prompt_template), markup=False,
                  highlight=False, soft_wrap=True)  # fmt: skip


def bindings_snippet(gguf: Path, system_prompt: str, prompt_template: str) -> str:
    """Python that loads the exported model with gpt4all's bindings and fwyy's prompts.

    Literals are repr()s on one line each: whatever the terminal does with long lines, the text
    copied from it is valid Python.
    """
    return (
        "from gpt4all import GPT4All\n"
        f"SYSTEM = {system_prompt!r}\n"
        f"TEMPLATE = {prompt_template!r}  # {{0}} is your message\n"
        f"m = GPT4All({gguf.name!r}, model_path={str(gguf.parent)!r}, allow_download=False)\n"
        'text = "paste the code or log to analyze here"\n'
        "with m.chat_session(system_prompt=SYSTEM, prompt_template=TEMPLATE):\n"
        "    print(m.generate(text, max_tokens=1024))\n"
    )

"""`fwyy chat [MODEL]`: the rich terminal REPL (fwyy_ollama.repl) over Ollama or local llama.cpp."""

from __future__ import annotations

import click
from rich.markup import escape

from fwyy_ollama.cli.analyze import backend_options, run_options
from fwyy_ollama.cli.common import console, err_console


@click.command("chat")
@click.argument("model", required=False)
@backend_options
@click.option("--system", default=None, help="Replace fwyy's system prompt for this session.")
def chat(
    model: str | None,
    backend: str,
    gguf: str | None,
    lang: str | None,
    n_ctx: int | None,
    threads: int | None,
    out_dir: str,
    max_tokens: int | None,
    system: str | None,
) -> None:
    """Talk to the analyst: streamed answers, reports as coloured panels, /help for commands.

    MODEL is an Ollama model name (default: the default profile's, fwyy-qwen2). Without a daemon
    that has it, the local backend loads the profile's last build, or the demo GGUF.
    """
    from fwyy_ollama.repl import ChatSession, fwyy_home
    from fwyy_ollama.runtime import open_backend

    with err_console.status("loading the model…", spinner="dots"):
        be = open_backend(model, backend=backend, gguf=gguf, n_ctx=n_ctx, n_threads=threads, out_dir=out_dir)
    try:
        session = ChatSession(
            backend=be,
            console=console,
            lang=lang or be.language or "zh",
            system=system,
            options=run_options(max_tokens),
            history_file=fwyy_home() / "history",
        )
        banner = (
            f"[bold]fwyy chat[/] · [cyan]{be.name}[/]: {escape(be.model)}\n"
            f"[dim]{escape(be.source)} · context {be.context_length} tokens · language {session.lang}[/]"
        )
        session.run(banner=banner)
    finally:
        be.close()

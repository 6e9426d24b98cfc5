"""`fwyy chat [MODEL]`: the rich terminal REPL (fwyy_ollama.repl) over Ollama or local llama.cpp."""

from __future__ import annotations

import click
from rich.markup import escape

from fwyy_ollama.cli.analyze import backend_options, constrain_option, run_options
from fwyy_ollama.cli.common import console, err_console


@click.command("chat")
@click.argument("model", required=False)
@backend_options
@constrain_option
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
    constrain: bool,
    system: str | None,
) -> None:
    """Talk to the analyst: streamed answers, reports as coloured panels, /help for commands.

    MODEL is an Ollama model name (default: the model `fwyy build` last built into --out, else
    the default profile's, fwyy-qwen2). Without a daemon that has it, the local backend loads the
    profile's last build, or the demo GGUF. The session speaks the model's language unless --lang.
    """
    from fwyy_ollama.repl import ChatSession, fwyy_home
    from fwyy_ollama.runtime import open_backend
    from fwyy_ollama.safe_text import for_terminal

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
            constrain=constrain,
        )
        banner = (
            f"[bold]fwyy chat[/] · [cyan]{be.name}[/]: {escape(for_terminal(be.model))}\n"
            f"[dim]{escape(for_terminal(be.source))} · context {be.context_length} tokens · "
            f"language {session.lang}{'' if constrain else ' · /file unconstrained'}[/]"
        )
        session.run(banner=banner)
    finally:
        be.close()

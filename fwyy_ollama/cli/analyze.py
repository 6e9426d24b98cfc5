"""`fwyy analyze (FILE | -)`: one four-part report for a file or stdin; the exit status gates pipelines.

Exit status: 0 the label is safe; 1 any other label (risky), or an answer that is not a report
("could not confirm safe": it fails closed, the raw answer is shown); 2 an error (unreadable,
empty or binary input, no model, daemon down), never the model's doing. The answer is constrained
to the report's grammar (llama.cpp) or JSON schema (Ollama) unless --no-constrain.
`--json` always prints one object on stdout, in the shape of
fwyy_ollama.analysis.result_json_schema(), errors included, so a script never parses prose.
Everything printed for a person goes through safe_text.for_terminal and rich's escaping: a file
name, an input or an answer can hold neither terminal escapes nor rich markup that takes effect.
"""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from fwyy_ollama.cli.common import console, err_console, json_option
from fwyy_ollama.errors import FwyyError


def backend_options(func):  # type: ignore[no-untyped-def]
    """--model/--backend/--gguf/--lang/--ctx/--threads/--max-tokens, shared by chat and analyze."""
    opts = [
        click.option(
            "--backend",
            type=click.Choice(["auto", "ollama", "local"]),
            default="auto",
            show_default=True,
            help="auto: Ollama when the daemon (OLLAMA_HOST) has the model, else llama.cpp on a GGUF.",
        ),
        click.option(
            "--gguf",
            type=click.Path(dir_okay=False, path_type=str),
            default=None,
            help="GGUF for the local backend (default: out/<profile>/<profile>.<quant>.gguf, else the demo).",
        ),
        click.option("--lang", type=click.Choice(["zh", "en"]), default=None, help="Prompt/report language."),
        click.option(
            "--ctx", "n_ctx", type=click.IntRange(256), default=None, help="Context size in tokens."
        ),
        click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads (local backend)."),
        click.option(
            "--out",
            "out_dir",
            type=click.Path(file_okay=False, path_type=str),
            default="out",
            show_default=True,
            help="Where `fwyy build` wrote its outputs (to find the default GGUF).",
        ),
        click.option(
            "--max-tokens",
            type=click.IntRange(1),
            default=None,
            help="Longest answer (Ollama's num_predict).",
        ),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def run_options(max_tokens: int | None) -> dict[str, int]:
    return {"num_predict": max_tokens} if max_tokens else {}


def constrain_option(func):  # type: ignore[no-untyped-def]
    """--constrain/--no-constrain, shared by analyze and chat (the REPL's /file)."""
    return click.option(
        "--constrain/--no-constrain",
        default=True,
        show_default=True,
        help="Constrain the answer to the four-part report (llama.cpp grammar, Ollama JSON schema).",
    )(func)


FINDINGS_HELP = "Tell the model what fwyy's static checks found in the input (one line before it)."
VETO_HELP = (
    "With --findings: a sure-fire static rule (reverse shell, msfvenom, pipe to sh, ...) "
    "overrules a 'safe' answer; the report becomes the rules' own."
)


@click.command("analyze")
@click.argument("source", metavar="(FILE | -)")
@click.option(
    "--model",
    "-m",
    default=None,
    help="Ollama model name or profile (default: the last `fwyy build` in --out, else fwyy-qwen2).",
)
@backend_options
@constrain_option
@click.option("--findings/--no-findings", default=True, show_default=True, help=FINDINGS_HELP)
@click.option("--veto/--no-veto", default=True, show_default=True, help=VETO_HELP)
@json_option
def analyze(
    source: str,
    model: str | None,
    backend: str,
    gguf: str | None,
    lang: str | None,
    n_ctx: int | None,
    threads: int | None,
    out_dir: str,
    max_tokens: int | None,
    constrain: bool,
    findings: bool,
    veto: bool,
    as_json: bool,
) -> None:
    """Analyze one file (or - for stdin) and print its four-part report. The file is read, never run.

    Exit status: 0 safe, 1 risky (low to critical) or no report ("could not confirm safe"),
    2 error (bad input, no model).
    """
    from fwyy_ollama.analysis import INPUT_ERROR_EXIT, error_json

    try:
        result = _analyze(
            source, model, backend, gguf, lang, n_ctx, threads, out_dir, max_tokens, constrain, as_json, findings,
            veto,
        )
    except FwyyError as exc:
        if as_json:
            _print_json(error_json(str(exc), model=model, backend=None if backend == "auto" else backend))
            sys.exit(INPUT_ERROR_EXIT)
        # Any failure is 2: a plain FwyyError's code 1 would read as "risky" to a pipeline.
        raise FwyyError(exc.message, exit_code=INPUT_ERROR_EXIT, hint=exc.hint) from None
    except Exception:  # a bug: keep its traceback, but never let a crash exit 1 ("risky")
        import traceback

        traceback.print_exc()
        sys.exit(INPUT_ERROR_EXIT)
    sys.exit(result.exit_code)


def _print_json(value: object) -> None:
    """print_json, with C1/bidi controls escaped too (JSON escapes C0 itself): same value."""
    from fwyy_ollama.safe_text import json_for_terminal

    sys.stdout.write(json_for_terminal(value) + "\n")
    sys.stdout.flush()


def _analyze(source, model, backend, gguf, lang, n_ctx, threads, out_dir, max_tokens, constrain, as_json, findings, veto):  # type: ignore[no-untyped-def]
    from fwyy_ollama.analysis import MAX_READ_BYTES, decode_input, read_input
    from fwyy_ollama.analysis import analyze as run_analysis
    from fwyy_ollama.repl import report_renderable
    from fwyy_ollama.runtime import open_backend
    from fwyy_ollama.safe_text import for_terminal

    if source == "-":
        if sys.stdin.isatty():
            err_console.print("[dim]reading the text to analyze from the terminal; end it with Ctrl-D[/]")
        data = sys.stdin.buffer.read(MAX_READ_BYTES + 1)
        text, longer, name = (
            decode_input(data[:MAX_READ_BYTES], name="stdin"),
            len(data) > MAX_READ_BYTES,
            "stdin",
        )
    else:
        (text, longer), name = read_input(source), source
    if not text.strip():
        raise FwyyError(f"{name}: is empty; nothing to analyze")
    with err_console.status("loading the model…", spinner="dots"):
        be = open_backend(model, backend=backend, gguf=gguf, n_ctx=n_ctx, n_threads=threads, out_dir=out_dir)
    shown_name = escape(for_terminal(name))
    try:
        if not as_json:
            err_console.print(f"[dim]{escape(for_terminal(be.describe()))}[/]", highlight=False)
        with err_console.status(f"analyzing {shown_name}…", spinner="dots"):
            result = run_analysis(
                text,
                backend=be,
                lang=lang,
                options=run_options(max_tokens) or None,
                name=name,
                already_truncated=longer,
                constrain=constrain,
                findings=findings,
                veto=veto,
            )
    finally:
        be.close()
    if as_json:
        _print_json(result.to_json())
        return result
    if result.notice:
        err_console.print(f"[yellow]note:[/] {escape(for_terminal(result.notice))}", highlight=False)
    if result.veto_note:
        err_console.print(
            f"[yellow]note:[/] {escape(for_terminal(result.veto_note))} (--no-veto keeps the model's report)",
            highlight=False,
        )
    if result.report is not None:
        console.print(report_renderable(result.report, result.lang, title=name, console=console))
    else:
        # Fail closed: no report is not a verdict of "safe" (exit 1, like risky).
        err_console.print(
            f"[bold red]could not confirm safe:[/] {escape(for_terminal(result.error or ''))}", highlight=False
        )
        if result.raw.strip():
            err_console.print("[dim]the model's answer was:[/]")
            err_console.print(for_terminal(result.raw), markup=False, highlight=False)
    err_console.print(
        f"[dim]{result.backend}: {escape(for_terminal(result.model))} · {result.latency_s:.1f}s"
        f"{'' if result.constrained else ' · unconstrained'}[/]",
        highlight=False,
    )
    return result

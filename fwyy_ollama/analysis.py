"""`analyze`: one piece of text (a file, a log, a command) in, one typed four-part report out.

Scripts and CI pipelines gate on the result, so every way it can go wrong ends in a clear state:
- input that is empty, binary or not text raises FwyyError (exit code 2) before a model is loaded;
- input longer than the model's context is cut at the limit and the result says so (`notice`);
- an answer that is not a four-part report gives a result with `report=None` and `error` saying why
  (the raw answer is kept), never a guessed label.

With Ollama the request carries `format=report_json_schema()` (structured outputs), so the daemon
constrains the answer to the report's JSON; the local llama.cpp backend gets the plain chat and the
answer is read with the same tolerant `parse_report` the eval uses (the fine-tuned models answer in
the four-part text form they were trained on).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.runtime import Backend, open_backend

if TYPE_CHECKING:  # pragma: no cover
    from fwyy_ollama.report import Label, Report

INPUT_ERROR_EXIT = 2
MAX_READ_BYTES = 4 * 1024 * 1024
"""Bytes read from a file at most: far beyond any context window, and keeps a 10 GB log out of memory."""
ANSWER_RESERVE = 512
"""Tokens kept free for the answer when cutting long input (less if the context is tiny)."""

INSTRUCTIONS = {
    "en": "Analyze the following input for security risks.",
    "zh": "分析以下输入的安全风险。",
}
"""The user turn's first line: the generic instruction the shipped training data uses (each about 50
times in train/data/security.train.jsonl), so a fine-tuned model is asked the way it was taught."""
TRUNCATION_NOTE = {
    "en": "[input truncated here: the first {kept} of {total} characters fit the model's context]",
    "zh": "[输入在此截断：模型上下文只容纳前 {kept} / {total} 个字符]",
}


def result_json_schema() -> dict[str, Any]:
    """The JSON `fwyy analyze --json` prints (documented shape, tested against real output).

    Success: the report's four keys (as in report_json_schema) plus model, backend, latency_s,
    truncated, notice, and error = null. Failure (input problem, model down, an answer that is not
    a report): the four keys are null, `error` says why, and `raw` holds the model's answer if any.
    """
    from fwyy_ollama.report import Label

    meta = {
        "model": {"type": ["string", "null"]},
        "backend": {"type": ["string", "null"], "enum": ["ollama", "local", None]},
        "source": {"type": ["string", "null"]},
        "latency_s": {"type": ["number", "null"], "minimum": 0},
        "truncated": {"type": "boolean"},
        "notice": {"type": ["string", "null"]},
        "raw": {"type": ["string", "null"]},
    }
    text = {"type": "string", "minLength": 1}
    ok = {
        "type": "object",
        "properties": {
            "analysis": text,
            "label": {"type": "string", "enum": [lab.value for lab in Label]},
            "risk": text,
            "solution": text,
            "error": {"type": "null"},
            **meta,
        },
        "required": ["analysis", "label", "risk", "solution", "model", "backend", "latency_s", "error"],
        "additionalProperties": False,
    }
    failed = {
        "type": "object",
        "properties": {
            "analysis": {"type": "null"},
            "label": {"type": "null"},
            "risk": {"type": "null"},
            "solution": {"type": "null"},
            "error": text,
            **meta,
        },
        "required": ["analysis", "label", "risk", "solution", "error"],
        "additionalProperties": False,
    }
    return {"title": "fwyy analyze --json", "oneOf": [ok, failed]}


@dataclass(frozen=True)
class AnalysisResult:
    """What `analyze` returns. `report` is None exactly when `error` is set."""

    report: Report | None
    raw: str
    model: str
    backend: str
    latency_s: float
    error: str | None = None
    source: str = ""
    truncated: bool = False
    notice: str | None = None
    lang: str = "zh"

    @property
    def ok(self) -> bool:
        return self.report is not None

    @property
    def label(self) -> Label | None:
        return self.report.label if self.report is not None else None

    @property
    def exit_code(self) -> int:
        """0 safe, 1 risky (any other label), 2 no report: what a pipeline gates on."""
        if self.report is None:
            return INPUT_ERROR_EXIT
        return 1 if self.report.label.is_risky else 0

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "analysis": r.analysis if r else None,
            "label": r.label.value if r else None,
            "risk": r.risk if r else None,
            "solution": r.solution if r else None,
            "model": self.model,
            "backend": self.backend,
            "source": self.source,
            "latency_s": round(self.latency_s, 3),
            "truncated": self.truncated,
            "notice": self.notice,
            "error": self.error,
            **({} if r else {"raw": self.raw}),
        }


def error_json(message: str, *, model: str | None = None, backend: str | None = None) -> dict[str, Any]:
    """The failure shape of result_json_schema() for errors raised before any answer exists."""
    return {
        "analysis": None,
        "label": None,
        "risk": None,
        "solution": None,
        "model": model,
        "backend": backend,
        "latency_s": None,
        "truncated": False,
        "notice": None,
        "error": message,
        "raw": None,
    }


# ------------------------------------------------------------------------------------------------ input


def decode_input(data: bytes, *, name: str = "input") -> str:
    """Text from bytes, or FwyyError for binary data (NUL bytes, undecodable, mostly control chars)."""
    head = data[:8192]
    if b"\x00" in head:
        raise FwyyError(
            f"{name}: looks like a binary file (it contains NUL bytes); fwyy analyzes text",
            exit_code=INPUT_ERROR_EXIT,
            hint="for a binary, analyze its `strings` output or a disassembly instead",
        )
    text = None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError as exc:
            # A multi-byte character cut by MAX_READ_BYTES at the very end is not binary.
            if (
                encoding == "utf-8-sig"
                and exc.start >= len(data) - 4
                and exc.reason.startswith("unexpected end")
            ):
                text = data[: exc.start].decode("utf-8-sig")
                break
    if text is None:
        raise FwyyError(
            f"{name}: is neither UTF-8 nor GB18030 text (binary data?)",
            exit_code=INPUT_ERROR_EXIT,
            hint="convert it to UTF-8 first, e.g. `iconv -f <encoding> -t utf-8`",
        )
    sample = text[:8192]
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f\v\x1b")
    if sample and control / len(sample) > 0.1:
        raise FwyyError(
            f"{name}: looks like a binary file ({control} control characters in the first {len(sample)})",
            exit_code=INPUT_ERROR_EXIT,
        )
    return text


def read_input(path: str | os.PathLike[str]) -> tuple[str, bool]:
    """A file's text (at most MAX_READ_BYTES read) and whether it was longer. Never executes anything."""
    p = Path(path)
    if p.is_dir():
        raise FwyyError(f"{p}: is a folder; give one file", exit_code=INPUT_ERROR_EXIT)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_READ_BYTES + 1)
    except FileNotFoundError:
        raise FwyyError(f"{p}: no such file", exit_code=INPUT_ERROR_EXIT) from None
    except OSError as exc:
        raise FwyyError(f"{p}: cannot read it: {exc.strerror}", exit_code=INPUT_ERROR_EXIT) from None
    longer = len(data) > MAX_READ_BYTES
    return decode_input(data[:MAX_READ_BYTES], name=str(p)), longer


def _truncate(backend: Backend, text: str, budget: int) -> str:
    """The longest prefix of `text` that fits `budget` tokens (tokenizer-exact on the local backend)."""
    if budget <= 0:
        return ""
    lo, hi = 0, len(text)
    # Start near the right cut, then binary search on characters (a few tokenizer calls).
    total = max(backend.count_tokens(text), 1)
    guess = min(len(text), int(len(text) * budget / total))
    if backend.count_tokens(text[:guess]) <= budget:
        lo = guess
    else:
        hi = guess
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if backend.count_tokens(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid
    return text[:lo]


def default_lang(model: str | None) -> str:
    """The language of the profile a model was built from (its Ollama name), else the default profile's."""
    from fwyy_ollama.runtime import profile_for

    try:
        return profile_for(model).language
    except FwyyError:
        return "zh"


def _system_prompt(lang: str) -> str:
    from fwyy_ollama.prompts import system_prompt

    return system_prompt(lang)


def build_messages(text: str, lang: str, *, system: str | None = None) -> list[dict[str, str]]:
    """System prompt + the same user layout as training (instruction, blank line, input)."""
    return [
        {"role": "system", "content": system if system is not None else _system_prompt(lang)},
        {"role": "user", "content": f"{INSTRUCTIONS[lang]}\n\n{text}"},
    ]


def fit_to_context(
    backend: Backend, text: str, lang: str, *, system: str | None = None, reserve: int | None = None
) -> tuple[str, str | None]:
    """Cut `text` so prompt + answer fit the backend's context; returns (text, notice or None)."""
    ctx = backend.context_length
    want = (
        reserve if reserve is not None else int(backend.default_options.get("num_predict") or ANSWER_RESERVE)
    )
    reserve = max(64, min(want, ctx // 4))
    overhead = (
        backend.count_tokens("".join(m["content"] for m in build_messages("", lang, system=system))) + 48
    )
    budget = ctx - reserve - overhead - backend.count_tokens(TRUNCATION_NOTE[lang]) - 8
    if backend.count_tokens(text) <= budget:
        return text, None
    kept = _truncate(backend, text, budget)
    notice = (
        f"input truncated: the first {len(kept)} of {len(text)} characters fit the context of "
        f"{ctx} tokens ({reserve} kept for the answer)"
    )
    return kept + "\n" + TRUNCATION_NOTE[lang].format(kept=len(kept), total=len(text)), notice


# --------------------------------------------------------------------------------------------- analysis


def _read_answer(raw: str, structured: bool) -> tuple[Report | None, str | None]:
    from fwyy_ollama.report import Report, ReportFormatError, parse_report

    try:
        if structured:
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                return parse_report(raw), None  # a daemon that ignored format= but wrote the text form
            return Report.from_json(obj), None
        return parse_report(raw), None
    except ReportFormatError as exc:
        if not raw.strip():
            return None, "the model gave an empty answer"
        return None, f"the model did not answer in the four-part report format: {exc.reason}"


@dataclass(frozen=True)
class AnalysisRequest:
    """What is sent to the model for one analysis (so the REPL can stream it and still get a result)."""

    messages: list[dict[str, str]]
    format: dict[str, Any] | None
    lang: str
    notice: str | None


def prepare_analysis(
    backend: Backend,
    text: str | bytes,
    *,
    lang: str | None = None,
    system: str | None = None,
    name: str = "input",
    already_truncated: bool = False,
) -> AnalysisRequest:
    """Check the input, cut it to the context and build the messages (and Ollama's format=)."""
    if isinstance(text, bytes):
        text = decode_input(text, name=name)
    if not text.strip():
        raise FwyyError(f"{name}: is empty; nothing to analyze", exit_code=INPUT_ERROR_EXIT)
    if lang is not None and lang not in INSTRUCTIONS:
        raise FwyyError(f"unknown language {lang!r} (choose zh or en)", exit_code=INPUT_ERROR_EXIT)
    lang = lang or backend.language or default_lang(backend.model if backend.name == "ollama" else None)
    body, notice = fit_to_context(backend, text, lang, system=system)
    if already_truncated and notice is None:
        notice = f"input truncated: only the first {MAX_READ_BYTES} bytes were read"
    fmt = None
    if backend.name == "ollama":
        from fwyy_ollama.report import report_json_schema

        fmt = report_json_schema()
    return AnalysisRequest(build_messages(body, lang, system=system), fmt, lang, notice)


def finish_analysis(request: AnalysisRequest, backend: Backend, raw: str, latency_s: float) -> AnalysisResult:
    """Read the model's answer into an AnalysisResult (report, or the reason there is none)."""
    report, error = _read_answer(raw, request.format is not None)
    return AnalysisResult(
        report=report,
        raw=raw,
        model=backend.model,
        backend=backend.name,
        latency_s=latency_s,
        error=error,
        source=backend.source,
        truncated=request.notice is not None,
        notice=request.notice,
        lang=request.lang,
    )


def analyze(
    text: str | bytes,
    *,
    model: str | None = None,
    backend: str | Backend = "auto",
    gguf: str | os.PathLike[str] | None = None,
    lang: str | None = None,
    system: str | None = None,
    options: Mapping[str, Any] | None = None,
    on_token: Callable[[str], None] | None = None,
    name: str = "input",
    already_truncated: bool = False,
) -> AnalysisResult:
    """Analyze `text` and return its four-part report (or why there is none).

    backend: "auto" | "ollama" | "local", or an open Backend to reuse (the REPL, the eval).
    lang: "zh" or "en" for the system prompt and instruction; default: the model's profile language.
    on_token: called with each streamed chunk (to show the answer as it comes).
    Raises FwyyError (exit_code 2) for empty or binary input; a backend that cannot be opened or
    reached raises FwyyError too. An answer that is not a report is a result with `error` set.
    """
    if isinstance(text, bytes):
        text = decode_input(text, name=name)
    if not text.strip():  # before loading any model
        raise FwyyError(f"{name}: is empty; nothing to analyze", exit_code=INPUT_ERROR_EXIT)
    owned = not isinstance(backend, Backend)
    be = open_backend(model, backend=backend, gguf=gguf) if owned else backend  # type: ignore[arg-type]
    try:
        request = prepare_analysis(
            be, text, lang=lang, system=system, name=name, already_truncated=already_truncated
        )
        chunks: list[str] = []
        start = time.perf_counter()
        for chunk in be.chat(request.messages, stream=True, format=request.format, options=options):
            chunks.append(chunk)
            if on_token is not None:
                on_token(chunk)
        return finish_analysis(request, be, "".join(chunks), time.perf_counter() - start)
    finally:
        if owned:
            be.close()


def analyze_file(path: str | os.PathLike[str], **kwargs: Any) -> AnalysisResult:
    """Analyze a file's text (read, never executed); same keywords as `analyze`."""
    text, longer = read_input(path)
    return analyze(text, name=str(path), already_truncated=longer, **kwargs)

"""`analyze`: one piece of text (a file, a log, a command) in, one typed four-part report out.

Scripts and CI pipelines gate on the result, so every way it can go wrong ends in a clear state:
- input that is empty, binary or not text raises FwyyError (exit code 2) before a model is loaded;
  so does a backend that cannot be reached: exit 2 means "no verdict because of an error";
- input longer than the model's context is cut at the limit and the result says so (`notice`);
- an answer that is not a four-part report gives a result with `report=None`, `error` saying why and
  the raw answer kept, never a guessed label. It fails closed: verdict "unconfirmed", exit 1, the
  same status as "risky", because nothing confirmed the input safe. A model straying from the
  format is never exit 2;
- a finding of one of the high or critical rules that never match benign training inputs
  (fwyy_ollama.findings.VETO_RULES) vetoes a "safe" verdict: the report becomes the rules' own
  (the finding's label, what matched, its CWE, the category's remedy: findings.veto_report), and
  the result keeps what the model said (`model_label`, `raw`) and the finding (`raised_by`). A
  risky label stands as the model gave it. `veto=False` turns it off.

Constrained decoding (on by default, `constrain=False` / `--no-constrain` turns it off) makes that
last case practically impossible: on llama.cpp the answer is sampled under the report's GBNF grammar
(fwyy_ollama.report_grammar), on Ollama the request carries `format=report_json_schema()`
(structured outputs). Either way the answer is read with the same tolerant `parse_report` the eval
uses. A backend that can do neither (the eval's transformers backend) answers unconstrained.

The analyzed text is data: on llama.cpp message contents are tokenized without special tokens, on
Ollama control-token strings in them are broken with a zero-width joiner (fwyy_ollama.safe_text),
and an input holding such strings gets a `notice` saying so.
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
    from fwyy_ollama.findings import Finding
    from fwyy_ollama.report import Label, Report

INPUT_ERROR_EXIT = 2
UNCONFIRMED_EXIT = 1
"""No parsable report: fail closed, with the status of "risky" (nothing confirmed the input safe)."""
VERDICTS = ("safe", "risky", "unconfirmed", "error")
"""`verdict` values: exit status 0, 1, 1 and 2."""
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

    Success: the report's four keys (as in report_json_schema) plus verdict ("safe" / "risky"),
    model_label (the model's own label) and raised_by (null, or the static finding that vetoed the
    model's "safe": then the four keys are the rules' report and `raw` holds the model's answer),
    model, backend, latency_s, truncated, notice, constrained, and error = null. Failure: the four
    keys are null, `error` says why, `raw` holds the model's answer if any, and verdict is
    "unconfirmed" (an answer that is not a report: exit 1) or "error" (bad input, model down: exit 2).
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
        "constrained": {"type": "boolean"},
    }
    text = {"type": "string", "minLength": 1}
    label = {"type": "string", "enum": [lab.value for lab in Label]}
    raised_by = {
        "type": "object",
        "properties": {"rule": text, "label": label, "cwe": text, "text": text},
        "required": ["rule", "label", "cwe", "text"],
        "additionalProperties": False,
    }
    ok = {
        "type": "object",
        "properties": {
            "analysis": text,
            "label": label,
            "risk": text,
            "solution": text,
            "error": {"type": "null"},
            "verdict": {"enum": ["safe", "risky"]},
            "model_label": label,
            "raised_by": {"oneOf": [{"type": "null"}, raised_by]},
            **meta,
        },
        "required": [
            "analysis", "label", "risk", "solution", "verdict", "model", "backend", "latency_s", "error"
        ],
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
            "verdict": {"enum": ["unconfirmed", "error"]},
            "model_label": {"type": "null"},
            "raised_by": {"type": "null"},
            **meta,
        },
        "required": ["analysis", "label", "risk", "solution", "verdict", "error"],
        "additionalProperties": False,
    }
    return {"title": "fwyy analyze --json", "oneOf": [ok, failed]}


@dataclass(frozen=True)
class AnalysisResult:
    """What `analyze` returns. `report` is None exactly when `error` is set.

    Read `verdict` (always a string), `label` (a Label or None) and `is_safe` rather than
    `report.label`: they never raise, whatever the model answered.
    """

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
    constrained: bool = False
    """Whether the answer was sampled under the report's grammar or JSON schema."""
    model_label: Label | None = None
    """The model's own label (None: the report's); `report.label` differs only when `raised_by` raised it."""
    raised_by: Finding | None = None
    """The static finding that vetoed the model's "safe" (findings.VETO_RULES), or None."""

    @property
    def ok(self) -> bool:
        return self.report is not None

    @property
    def veto_note(self) -> str | None:
        """For a person, when the label was raised: what the model said and which rule raised it."""
        f = self.raised_by
        if f is None or self.model_label is None:
            return None
        return (
            f"the model said {self.model_label.value}; fwyy's static checks raised it to {f.label.value} "
            f"and wrote the report: {f.text} ({f.cwe})"
        )

    @property
    def label(self) -> Label | None:
        """The report's label, or None when the answer was not a report."""
        return self.report.label if self.report is not None else None

    @property
    def verdict(self) -> str:
        """"safe", "risky" (any other label) or "unconfirmed" (no report: not confirmed safe)."""
        if self.report is None:
            return "unconfirmed"
        return "risky" if self.report.label.is_risky else "safe"

    @property
    def is_safe(self) -> bool:
        """True only when a parsed report labels the input safe."""
        return self.verdict == "safe"

    @property
    def exit_code(self) -> int:
        """0 safe, 1 risky or unconfirmed (fail closed): what a pipeline gates on. 2 is for errors,
        which raise FwyyError before any result exists."""
        return 0 if self.is_safe else 1

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "analysis": r.analysis if r else None,
            "label": r.label.value if r else None,
            "risk": r.risk if r else None,
            "solution": r.solution if r else None,
            "verdict": self.verdict,
            "model_label": (self.model_label or r.label).value if r else None,
            "raised_by": _finding_json(self.raised_by),
            "model": self.model,
            "backend": self.backend,
            "source": self.source,
            "latency_s": round(self.latency_s, 3),
            "truncated": self.truncated,
            "notice": self.notice,
            "constrained": self.constrained,
            "error": self.error,
            **({} if r and self.raised_by is None else {"raw": self.raw}),
        }


def _finding_json(f: Finding | None) -> dict[str, str] | None:
    if f is None:
        return None
    return {"rule": f.rule, "label": f.label.value, "cwe": f.cwe, "text": f.text}


def error_json(message: str, *, model: str | None = None, backend: str | None = None) -> dict[str, Any]:
    """The failure shape of result_json_schema() for errors raised before any answer exists."""
    return {
        "analysis": None,
        "label": None,
        "risk": None,
        "solution": None,
        "verdict": "error",
        "model_label": None,
        "raised_by": None,
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


def build_messages(
    text: str, lang: str, *, system: str | None = None, findings: bool = True
) -> list[dict[str, str]]:
    """System prompt + the same user layout as training: instruction, fwyy's static-check line
    (unless `findings` is off; fwyy_ollama.findings), blank line, input."""
    from fwyy_ollama.findings import user_turn

    return [
        {"role": "system", "content": system if system is not None else _system_prompt(lang)},
        {"role": "user", "content": user_turn(INSTRUCTIONS[lang], text, lang, findings=findings)},
    ]


def fit_to_context(
    backend: Backend,
    text: str,
    lang: str,
    *,
    system: str | None = None,
    reserve: int | None = None,
    findings: bool = True,
) -> tuple[str, str | None]:
    """Cut `text` so prompt + answer fit the backend's context; returns (text, notice or None)."""
    from fwyy_ollama.findings import findings_line

    ctx = backend.context_length
    want = (
        reserve if reserve is not None else int(backend.default_options.get("num_predict") or ANSWER_RESERVE)
    )
    reserve = max(64, min(want, ctx // 4))
    overhead = (
        backend.count_tokens("".join(m["content"] for m in build_messages("", lang, system=system))) + 48
    )
    if findings:  # the line for the whole text: about as long as the line for a cut one
        overhead += backend.count_tokens(findings_line(text, lang)) + 2
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
    """What is sent to the model for one analysis (so the REPL can stream it and still get a result).

    Send it with `backend.chat(request.messages, **request.chat_kwargs())`.
    """

    messages: list[dict[str, str]]
    format: dict[str, Any] | None
    lang: str
    notice: str | None
    grammar: str | None = None
    """GBNF text of the report (llama.cpp backends), when constrained."""
    truncated: bool = False
    veto: Finding | None = None
    """The static finding that vetoes a "safe" report (findings.VETO_RULES), or None."""
    veto_report: Report | None = None
    """The rules' report that replaces a vetoed "safe" one (findings.veto_report)."""

    @property
    def constrained(self) -> bool:
        return self.format is not None or self.grammar is not None

    def chat_kwargs(self) -> dict[str, Any]:
        """`format=` and, for a backend that takes it, `grammar=`."""
        return {"format": self.format, **({"grammar": self.grammar} if self.grammar is not None else {})}


def _check_text(text: str | bytes, name: str) -> str:
    if isinstance(text, bytes):
        text = decode_input(text, name=name)
    if not text.strip():  # before loading any model
        raise FwyyError(f"{name}: is empty; nothing to analyze", exit_code=INPUT_ERROR_EXIT)
    return text


def prepare_analysis(
    backend: Backend,
    text: str | bytes,
    *,
    lang: str | None = None,
    system: str | None = None,
    name: str = "input",
    already_truncated: bool = False,
    constrain: bool = True,
    findings: bool = True,
    veto: bool = True,
) -> AnalysisRequest:
    """Check the input, cut it to the context and build the messages, and with `constrain` the
    report's grammar (llama.cpp) or JSON schema (Ollama's format=); with `findings`, the user turn
    carries fwyy's static-check line (fwyy_ollama.findings), and with `veto` too, a finding of
    a VETO_RULES rule vetoes a "safe" report."""
    from fwyy_ollama.findings import veto_finding, veto_report
    from fwyy_ollama.safe_text import special_token_strings

    text = _check_text(text, name)
    if lang is not None and lang not in INSTRUCTIONS:
        raise FwyyError(f"unknown language {lang!r} (choose zh or en)", exit_code=INPUT_ERROR_EXIT)
    lang = lang or backend.language or default_lang(backend.model if backend.name == "ollama" else None)
    body, notice = fit_to_context(backend, text, lang, system=system, findings=findings)
    truncated = notice is not None
    if already_truncated and notice is None:
        notice, truncated = f"input truncated: only the first {MAX_READ_BYTES} bytes were read", True
    tokens = special_token_strings(text)
    if tokens:
        shown = ", ".join(tokens[:3]) + (", …" if len(tokens) > 3 else "")
        injected = (
            f"the input holds chat control-token text ({shown}); it was given to the model as plain "
            "text, not as turns of the conversation"
        )
        notice = f"{notice}; {injected}" if notice else injected
    fmt, grammar = None, None
    if constrain and backend.name == "ollama":
        from fwyy_ollama.report import report_json_schema

        fmt = report_json_schema()
    elif constrain and getattr(backend, "accepts_grammar", False):
        from fwyy_ollama.report_grammar import report_gbnf

        grammar = report_gbnf(lang)
    vetoing = veto_finding(body, lang) if findings and veto else None
    return AnalysisRequest(
        build_messages(body, lang, system=system, findings=findings),
        fmt,
        lang,
        notice,
        grammar=grammar,
        truncated=truncated,
        veto=vetoing,
        veto_report=veto_report(body, vetoing, lang) if vetoing is not None else None,
    )


def finish_analysis(request: AnalysisRequest, backend: Backend, raw: str, latency_s: float) -> AnalysisResult:
    """Read the model's answer into an AnalysisResult (report, or the reason there is none)."""
    from fwyy_ollama.findings import vetoed

    report, error = _read_answer(raw, request.format is not None)
    if error is not None and request.grammar is not None:
        error += " (it was sampled under the report grammar, so it was cut: by --max-tokens or the context)"
    model_label, raised_by = (report.label if report else None), None
    if report is not None and request.veto_report is not None:
        _, raised_by = vetoed(report.label, request.veto)
        if raised_by is not None:
            report = request.veto_report
    return AnalysisResult(
        report=report,
        raw=raw,
        model=backend.model,
        backend=backend.name,
        latency_s=latency_s,
        error=error,
        source=backend.source,
        truncated=request.truncated,
        notice=request.notice,
        lang=request.lang,
        constrained=request.constrained,
        model_label=model_label,
        raised_by=raised_by,
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
    constrain: bool = True,
    out_dir: str | os.PathLike[str] = "out",
    findings: bool = True,
    veto: bool = True,
) -> AnalysisResult:
    """Analyze `text` and return its four-part report (or why there is none).

    backend: "auto" | "ollama" | "local", or an open Backend to reuse (the REPL, the eval).
    lang: "zh" or "en" for the system prompt and instruction; default: the model's language.
    constrain: sample under the report's grammar (llama.cpp) or JSON schema (Ollama), so the answer
    is a report; False asks plainly (to measure what the model does alone).
    findings: give the model fwyy's static-check line before the input (fwyy_ollama.findings), as
    the shipped profiles are trained; False asks with the input alone.
    veto: with findings, a finding of a VETO_RULES rule (high or critical, never matching benign
    training inputs) vetoes a "safe" report: the report becomes the rules' own (findings.veto_report;
    `result.raised_by` says when it did); False keeps the model's report.
    on_token: called with each streamed chunk (to show the answer as it comes).
    Raises FwyyError (exit_code 2) for empty or binary input; a backend that cannot be opened or
    reached raises FwyyError too. An answer that is not a report is a result with `error` set and
    verdict "unconfirmed"; `result.verdict`, `result.label` and `result.is_safe` are always readable.
    """
    text = _check_text(text, name)
    owned = not isinstance(backend, Backend)
    be = (
        open_backend(model, backend=backend, gguf=gguf, out_dir=out_dir)  # type: ignore[arg-type]
        if owned
        else backend
    )
    try:
        request = prepare_analysis(
            be,
            text,
            lang=lang,
            system=system,
            name=name,
            already_truncated=already_truncated,
            constrain=constrain,
            findings=findings,
            veto=veto,
        )
        chunks: list[str] = []
        start = time.perf_counter()
        for chunk in be.chat(request.messages, stream=True, options=options, **request.chat_kwargs()):
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

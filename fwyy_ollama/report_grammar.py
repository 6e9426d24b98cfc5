"""The four-part report as a grammar, so a constrained model can only write a report that parses.

`fwyy analyze` gates pipelines on the label, so "the model wandered off the format" must not be a
possible outcome. With llama.cpp the answer is sampled under a GBNF grammar (`report_gbnf`): one
line per part, in the order and with the headings `fwyy_ollama.report.render_report` writes, the
label from the fixed scale written exactly as the renderer writes it in that language (``high`` in
English, ``高危（high）`` in Chinese), every part non-empty, and each part at most a bounded number
of characters, so a model that loops is forced on to the next heading and the answer ends after
the Solution line (llama.cpp then allows only the end-of-generation token). An untuned model
sampled under this grammar still produces a report that `parse_report` reads; the tests prove it
on the real SmolLM2 demo GGUF. Ollama has no GBNF input: there the report's JSON schema goes in
`format` (fwyy_ollama.report.report_json_schema).

`report_pattern` is the same language as a Python regular expression (built from the same pieces),
for tests and for checking an answer without a model. The grammar text is plain data: the heavy
llama_cpp import happens only in `llama_grammar`.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from fwyy_ollama.report import LANGS, PARTS, Label, Report, render_report

PART_LIMITS: dict[str, dict[str, int]] = {
    # About twice the longest part in the shipped training data (en 276/100/106 characters,
    # zh 207/50/66): room for a real explanation, and a hard stop for a model that repeats itself.
    "en": {"analysis": 480, "risk": 240, "solution": 240},
    "zh": {"analysis": 320, "risk": 160, "solution": 160},
}
"""Most characters each free-text part may hold under the grammar, per language."""

# Characters a part may not hold: line breaks (one line per part), other C0/C1 controls (no
# terminal escapes), the Unicode line/paragraph separators and the bidi overrides.
_NEVER = r"\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
# Nor may a part start with a character `parse_report` would strip or read as decoration
# (whitespace of any kind, `*`/`_` emphasis), so no part can parse as empty.
_NOT_FIRST = r"\x09\x20\xa0\u1680\u2000-\u200a\u202f\u205f\u3000*_"


@functools.cache
def _layout(lang: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the four heading prefixes, the label texts) exactly as render_report writes them."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    marks = {part: f"\ue000{part}\ue001" for part in ("analysis", "risk", "solution")}
    label_lines = [render_report(Report(label=lab, **marks), lang).split("\n") for lab in Label]
    if any(len(lines) != len(PARTS) for lines in label_lines):  # pragma: no cover - renderer's contract
        raise AssertionError("render_report no longer writes one line per part")
    # The label line's heading is what the renders of two different labels have in common.
    safe, critical = label_lines[0][1], label_lines[-1][1]
    n = 0
    while n < min(len(safe), len(critical)) and safe[n] == critical[n]:
        n += 1
    prefixes = [
        safe[:n] if part == "label" else line[: len(line) - len(marks[part])]
        for part, line in zip(PARTS, label_lines[0], strict=True)
    ]
    return tuple(prefixes), tuple(lines[1][n:] for lines in label_lines)


def _gbnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _one_language(lang: str, prefix: str) -> list[str]:
    heads, labels = _layout(lang)
    limits = PART_LIMITS[lang]
    seq = []
    for i, part in enumerate(PARTS):
        sep = "" if i == 0 else '"\\n" '
        body = f"{prefix}label" if part == "label" else f"{prefix}{part}"
        seq.append(f"{sep}{_gbnf_literal(heads[i])} {body}")
    rules = [f"{prefix}report ::= " + " ".join(seq)]
    rules.append(f"{prefix}label ::= " + " | ".join(_gbnf_literal(lab) for lab in labels))
    for part in ("analysis", "risk", "solution"):
        rules.append(f"{prefix}{part} ::= first char{{0,{limits[part] - 1}}}")
    return rules


def report_gbnf(lang: str | None = None) -> str:
    """The GBNF grammar of a report in `lang` ("en" or "zh"), or in either language when None."""
    langs = LANGS if lang is None else (lang,)
    rules: list[str] = []
    for one in langs:
        rules += _one_language(one, f"{one}-")
    root = "root ::= " + " | ".join(f"{one}-report" for one in langs)
    rules += [
        f"first ::= [^{_NEVER}{_NOT_FIRST}]",
        f"char ::= [^{_NEVER}]",
    ]
    return "\n".join([root, *rules]) + "\n"


def _regex_class(gbnf_class: str) -> str:
    r"""A GBNF class body (\x/\u escapes, ranges) as a Python regex class body (same syntax here)."""
    return gbnf_class.replace("*", r"\*")


@functools.cache
def report_pattern(lang: str | None = None) -> re.Pattern[str]:
    """The grammar's language as a compiled regex (fullmatch it), built from the same pieces."""
    langs = LANGS if lang is None else (lang,)
    alternatives = []
    for one in langs:
        heads, labels = _layout(one)
        limits = PART_LIMITS[one]
        first, char = f"[^{_regex_class(_NEVER + _NOT_FIRST)}]", f"[^{_regex_class(_NEVER)}]"
        pieces = []
        for i, part in enumerate(PARTS):
            if part == "label":
                value = "(?:" + "|".join(re.escape(lab) for lab in labels) + ")"
            else:
                value = f"{first}{char}{{0,{limits[part] - 1}}}"
            pieces.append(("\n" if i else "") + re.escape(heads[i]) + value)
        alternatives.append("".join(pieces))
    return re.compile("(?:" + "|".join(alternatives) + ")")


def longest_report_chars(lang: str) -> int:
    """Characters in the longest report the grammar allows (to size the answer's token budget)."""
    heads, labels = _layout(lang)
    return sum(len(h) for h in heads) + max(map(len, labels)) + sum(PART_LIMITS[lang].values()) + 3


@functools.lru_cache(maxsize=4)
def llama_grammar(lang: str | None = None) -> Any:
    """The grammar compiled for llama-cpp-python (a LlamaGrammar); cached per language."""
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(report_gbnf(lang), verbose=False)

"""fwyy's static checks, told to the model beside the input it judges.

Why: a small model learns the report's form quickly and the judgment slowly; most of what it
must notice in an input is a concrete technique (a stacked `DROP`, an `onerror` handler,
`/dev/tcp`, `pickle.loads`) that a rule finds for certain. So fwyy runs its rules (the same
`dataset.explain` features that word the training analyses) over the input for every category
and gives the model what matched, with the category each rule belongs to, in one line before the
input. The model stays the judge: a shell rule matching inside an HTML page, an escaped payload
or a payload in a comment must not make an input risky, and an attack no rule knows must still
be caught. Training shows the line on most records, not all, so the model also judges an input
alone (`ollama run` sends no line).

The line quotes at most a short, one-line, backtick-free snippet of the input, which the prompt
holds anyway: it adds no new channel for hostile text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fwyy_ollama.report import Label, Report

CATEGORIES = ("sqli", "xss", "bash", "python")
MAX_SHOWN = 2
"""Findings named in the line at most (the most severe first)."""
TRAIN_SHARE = 0.75
"""In training, this share of the records (chosen by a hash of each input) carries the line, unless
a recipe asks for another (train.findings_share): the rest teach the model to judge without it."""

_KIND = {
    "en": {"sqli": "SQL", "xss": "HTML/JS", "bash": "shell", "python": "Python"},
    "zh": {"sqli": "SQL", "xss": "HTML/JS", "bash": "Shell", "python": "Python"},
}
_HEAD = {
    "en": "fwyy static checks (rules; may be wrong): ",
    "zh": "fwyy 静态规则检查（仅供参考，可能有误）：",
}
_NONE = {"en": "no known technique matched.", "zh": "未匹配到已知手法。"}
_SEP = {"en": "; ", "zh": "；"}


@dataclass(frozen=True)
class Finding:
    category: str
    name: str
    label: Label
    text: str
    """What the rule saw, in the record's language, with the matched snippet quoted."""
    cwe: str

    @property
    def rule(self) -> str:
        """"category:name", as VETO_RULES, the fwyy-rules detector and `raised_by` name it."""
        return f"{self.category}:{self.name}"


def static_findings(text: str, lang: str = "en") -> list[Finding]:
    """Every category's matching rules, most severe first, one per rule name."""
    from fwyy_ollama.dataset.explain import find_features

    found: list[Finding] = []
    seen: set[str] = set()
    for category in CATEGORIES:
        for feature, snippet in find_features(text, category):
            key = f"{category}:{feature.name}"
            if key in seen:
                continue
            seen.add(key)
            words = (feature.zh if lang == "zh" else feature.en).format(m=snippet)
            found.append(Finding(category, feature.name, feature.label, words, feature.cwe))
    found.sort(key=lambda f: -f.label.severity)
    return found


def findings_line(text: str, lang: str = "en") -> str:
    """The one line the model reads before the input."""
    found = static_findings(text, lang)
    if not found:
        return _HEAD[lang] + _NONE[lang]
    kind = _KIND[lang]
    parts = [f"{kind[f.category]}: {f.text} ({f.cwe})" for f in found[:MAX_SHOWN]]
    return _HEAD[lang] + _SEP[lang].join(parts) + ("." if lang == "en" else "。")


VETO_RULES = frozenset(
    {
        "bash:attack_tool",
        "bash:destroy",
        "bash:payload",
        "bash:pipe_sh",
        "bash:revshell",
        "bash:root_shell",
        "bash:setuid",
        "bash:shell_escape",
        "python:deserialize",
        "python:deserialize_more",
        "python:encrypt_loop",
        "python:exec_payload",
        "python:popen",
        "python:revshell",
        "python:shell_input",
        "python:sql_format",
        "sqli:os_exec",
        "xss:takeover",
    }
)
"""The rules whose finding vetoes a "safe" answer: the report becomes the rules' own (veto_report).

Why: a small model weighs the findings line as one more hint and now and then calls a `/dev/tcp`
reverse shell or an `msfvenom` payload "safe" with the line in front of it. These are the high
and critical rules that match no safe input of fwyy's training data (2,126 of them: generated
look-alikes and the real corpora; tests/test_findings.py derives the set from the data again), so
a "safe" does not stand against them. The other high rules match real benign inputs there (a
query with UNION, `--` comments, DDL run as stacked statements, an escaped `<script>` shown in a
page, `eval` in minified JavaScript) and stay hints for the model to weigh. A risky label stands
as the model gave it: it weighs context a rule's fixed severity does not."""


def veto_finding(text: str, lang: str = "en") -> Finding | None:
    """The most severe finding of a VETO_RULES rule in `text`, or None."""
    return next((f for f in static_findings(text, lang) if f.rule in VETO_RULES), None)


def veto_report(text: str, veto: Finding, lang: str = "en") -> Report:
    """The report fwyy's rules write for `text` when `veto` overrules a "safe" answer.

    A model that called the input safe argued for it in its analysis, risk and solution ("None"),
    which would contradict the raised label; the rules' own report goes out instead: what matched,
    its CWE and the category's remedy, as the training data words it for such an input. The model's
    answer stays in the result (`raw`, `model_label`)."""
    from fwyy_ollama.dataset.explain import explain

    return explain(text, veto.category, veto.label, lang)


def vetoed(label: Label, veto: Finding | None) -> tuple[Label, Finding | None]:
    """(the label reported, the finding that set it): the veto's label when the model said safe,
    else the model's own label and None."""
    if veto is not None and label is Label.SAFE:
        return veto.label, veto
    return label, None


def user_turn(instruction: str, text: str, lang: str, *, findings: bool) -> str:
    """The user message: the instruction, the findings line when asked, a blank line, the input."""
    if not text.strip():
        return instruction
    if not findings:
        return f"{instruction}\n\n{text}"
    return f"{instruction}\n{findings_line(text, lang)}\n\n{text}"


def shown_in_training(text: str, share: float = TRAIN_SHARE) -> bool:
    """Whether a training record with this input carries the findings line (stable across runs)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big") < share * 2**32

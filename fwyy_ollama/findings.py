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

from fwyy_ollama.report import Label

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


VETO = Label.HIGH
"""A static finding this severe or worse vetoes a "safe" verdict: the label becomes the finding's.

Why: a small model weighs the findings line as one more hint and now and then calls a
`/dev/tcp` reverse shell or an `msfvenom` payload "safe" with the line in front of it. The high
and critical rules name concrete attack techniques and are written not to match their look-alikes
(a payload quoted in HTML, a tool's name in prose); on the shipped eval set and the real-world
set they fired on no safe input at all, while each model still missed some of those they fired
on. So a model's "safe" does not stand against those rules; a risky label stands as the model
gave it (it weighs context the rule's fixed severity does not: raising "medium" answers to the
rule's "high" made the GPU model's 5-way labels worse on the real-world set). Medium and low rules
(a quote in SQL, an encoded string, `curl -o`) match benign code too, and stay hints."""


def veto_finding(text: str, lang: str = "en") -> Finding | None:
    """The most severe finding at or above VETO in `text`, or None."""
    found = static_findings(text, lang)
    return found[0] if found and found[0].label.severity >= VETO.severity else None


def vetoed(label: Label, veto: Finding | None) -> Label:
    """`label`, or the veto's label when the model said safe."""
    return veto.label if veto is not None and label is Label.SAFE else label


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

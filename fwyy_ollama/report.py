"""The four-part security report: one renderer, one parser, one JSON schema.

Every answer fwyy trains on, asks for, shows or scores has the same four parts, always in this
order: analysis, label, risk, solution. The dataset writes them with `render_report`, the chat,
`analyze` and the eval read them (from our own data and from model answers) with `parse_report`,
and Ollama's structured outputs get `report_json_schema()`. Keeping one format with one parser is
what lets an answer written by a small model be checked the same way as the training data.

Rendered form (headings in Chinese or English, one part per heading, text may span lines)::

    分析：……                      Analysis: ...
    标签：高危（high）               Label: high
    风险：……                      Risk: ...
    解决方案：……                    Solution: ...

The parser is tolerant of how models actually write: markdown emphasis (``**分析**``, ``### Risk``,
``- **Label:** High``), numbered items, 【】 brackets, full-width or ASCII colons, extra spacing,
headings in either language (and a few common synonyms such as 风险等级 / Severity / Remediation),
a label given in English or Chinese, and a JSON object (structured outputs). It rejects an answer
that lacks a part, repeats one, leaves one empty or gives no recognisable label, and says which.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from fwyy_ollama.errors import FwyyError

PARTS = ("analysis", "label", "risk", "solution")
LANGS = ("zh", "en")


class Label(str, Enum):
    """The fixed rating scale, mildest first (so `list(Label)` is ordered by severity)."""

    SAFE = "safe"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def zh(self) -> str:
        """The Chinese name used in Chinese reports."""
        return _ZH_NAMES[self]

    @property
    def is_risky(self) -> bool:
        """Anything but safe counts as a detection (for precision / recall in the eval)."""
        return self is not Label.SAFE

    @property
    def severity(self) -> int:
        """0 (safe) to 4 (critical)."""
        return list(Label).index(self)

    @classmethod
    def parse(cls, value: str) -> Label:
        """A label from an English or Chinese name (or a common synonym), ignoring decoration.

        Raises ReportFormatError when no label, or two different ones, are named.
        """
        return _parse_label(value)

    def __str__(self) -> str:
        return self.value


_ZH_NAMES = {
    Label.SAFE: "安全",
    Label.LOW: "低危",
    Label.MEDIUM: "中危",
    Label.HIGH: "高危",
    Label.CRITICAL: "严重",
}

# Canonical headings the renderer writes.
HEADINGS: dict[str, dict[str, str]] = {
    "zh": {"analysis": "分析", "label": "标签", "risk": "风险", "solution": "解决方案"},
    "en": {"analysis": "Analysis", "label": "Label", "risk": "Risk", "solution": "Solution"},
}
_COLON = {"zh": "：", "en": ": "}

# Headings the parser accepts (canonical ones first). Longer names are tried before their
# prefixes, so "风险等级" is a label and "Risk level" is not the risk part.
_ALIASES: dict[str, tuple[str, ...]] = {
    "analysis": ("分析", "分析结果", "详细分析", "Analysis", "Analyses"),
    "label": (
        "标签",
        "等级",
        "风险等级",
        "评级",
        "危险等级",
        "严重程度",
        "结论",
        "判定",
        "Label",
        "Rating",
        "Severity",
        "Risk level",
        "Risk rating",
        "Verdict",
        "Classification",
    ),
    "risk": ("风险", "风险说明", "风险描述", "危害", "潜在风险", "Risk", "Risks", "Impact"),
    "solution": (
        "解决方案",
        "解决办法",
        "修复建议",
        "修复方案",
        "建议",
        "处置建议",
        "缓解措施",
        "Solution",
        "Solutions",
        "Fix",
        "Remediation",
        "Mitigation",
        "Recommendation",
        "Recommendations",
    ),
}
_ALIAS_TO_PART = {alias.casefold(): part for part, names in _ALIASES.items() for alias in names}
_ALIAS_RE = "|".join(re.escape(a) for a in sorted(_ALIAS_TO_PART, key=len, reverse=True))
_EMPH = r"(?:\*\*|__|\*|_)?"
# A heading line: optional markdown heading / bullet / number / bracket / emphasis, the name,
# closing emphasis, then a closing bracket, a colon (either width) or the end of the line.
_HEADING_RE = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:[-*+•][ \t]+)?(?:\d{1,2}[.)、][ \t]*)?"
    + _EMPH
    + r"[ \t]*[【\[]?[ \t]*(?P<name>"
    + _ALIAS_RE
    + r")[ \t]*"
    + _EMPH
    + r"[ \t]*(?:[】\]][ \t]*[:：]?|[:：]|(?=[ \t]*$))[ \t]*"
    + r"(?:(?:\*\*|__)(?=[ \t]|$))?",
    re.IGNORECASE | re.MULTILINE,
)

# Canonical headings inside a line (after a space or a sentence end), colon required.
_INLINE_RE = re.compile(
    r"(?:^|(?<=[\s。．.;；,，]))\**[ \t]*(?P<name>"
    + "|".join(re.escape(h) for lang in LANGS for h in HEADINGS[lang].values())
    + r")[ \t]*\**[ \t]*[:：][ \t]*(?:\*\*(?=[ \t]))?",
    re.IGNORECASE,
)

_LABEL_WORDS: dict[str, Label] = {
    **{lab.value: lab for lab in Label},
    **{lab.zh: lab for lab in Label},
    "none": Label.SAFE,
    "benign": Label.SAFE,
    "no risk": Label.SAFE,
    "not malicious": Label.SAFE,
    "moderate": Label.MEDIUM,
    "severe": Label.CRITICAL,
    "无风险": Label.SAFE,
    "无害": Label.SAFE,
    "正常": Label.SAFE,
    "低风险": Label.LOW,
    "低危险": Label.LOW,
    "中风险": Label.MEDIUM,
    "中等": Label.MEDIUM,
    "高风险": Label.HIGH,
    "致命": Label.CRITICAL,
    "危急": Label.CRITICAL,
    "严重风险": Label.CRITICAL,
}
# Longest first so "低风险" wins over "低"; ASCII words must stand alone ("low" not in "follow").
_LABEL_RE = re.compile(
    "|".join(
        (r"(?<![A-Za-z])" + re.escape(w) + r"(?![A-Za-z])") if w.isascii() else re.escape(w)
        for w in sorted(_LABEL_WORDS, key=len, reverse=True)
    ),
    re.IGNORECASE,
)

# "not safe" / 不安全 must not read as "safe".
_NOT_SAFE_RE = re.compile(r"\b(?:not|un)[ -]?safe\b|不安全|非安全", re.IGNORECASE)


class ReportFormatError(FwyyError):
    """A text is not a four-part report; `reason` says what is wrong, `part` which part if one."""

    def __init__(self, reason: str, *, part: str | None = None) -> None:
        super().__init__(f"not a four-part report: {reason}")
        self.reason = reason
        self.part = part


@dataclass(frozen=True)
class Report:
    """One security report. `lang` remembers the language it was parsed from (None if mixed/unknown)."""

    analysis: str
    label: Label
    risk: str
    solution: str
    lang: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.label, Label):
            object.__setattr__(self, "label", Label.parse(str(self.label)))

    def to_json(self) -> dict[str, str]:
        """The structured-output form (keys of report_json_schema())."""
        return {
            "analysis": self.analysis,
            "label": self.label.value,
            "risk": self.risk,
            "solution": self.solution,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Report:
        """A Report from a structured-output object; every key required, label in English or Chinese."""
        if not isinstance(value, dict):
            raise ReportFormatError(f"expected a JSON object, got {type(value).__name__}")
        for part in PARTS:
            if part not in value:
                raise ReportFormatError(f"missing key {part!r}", part=part)
            if not isinstance(value[part], str) or not value[part].strip():
                raise ReportFormatError(f"key {part!r} must be a non-empty string", part=part)
        return cls(
            analysis=value["analysis"].strip(),
            label=Label.parse(value["label"]),
            risk=value["risk"].strip(),
            solution=value["solution"].strip(),
        )

    def render(self, lang: str | None = None) -> str:
        return render_report(self, lang or self.lang or "zh")


def _parse_label(value: str) -> Label:
    # Only the first line rates; later lines may explain (and mention other words).
    first = value.strip().splitlines()[0] if value.strip() else ""
    text = re.sub(r"[*_`#【】\[\]]", " ", first).strip()
    if not text:
        raise ReportFormatError("the label part is empty", part="label")
    found = {_LABEL_WORDS[m.group(0).casefold()] for m in _LABEL_RE.finditer(_NOT_SAFE_RE.sub(" ", text))}
    if not found and _NOT_SAFE_RE.search(text):
        raise ReportFormatError(f"label {text[:40]!r} says 'not safe' but gives no rating", part="label")
    if not found:
        names = ", ".join(f"{lab.value}/{lab.zh}" for lab in Label)
        raise ReportFormatError(f"label {text[:40]!r} is not on the scale ({names})", part="label")
    if len(found) > 1:
        both = " and ".join(sorted(lab.value for lab in found))
        raise ReportFormatError(f"label {text[:40]!r} names two ratings ({both})", part="label")
    return found.pop()


def render_report(report: Report, lang: str = "zh") -> str:
    """The text form: four heading lines in fixed order. zh labels read e.g. ``高危（high）``."""
    if lang not in HEADINGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    h, colon = HEADINGS[lang], _COLON[lang]
    label = f"{report.label.zh}（{report.label.value}）" if lang == "zh" else report.label.value
    values = {"analysis": report.analysis, "label": label, "risk": report.risk, "solution": report.solution}
    return "\n".join(f"{h[part]}{colon}{values[part].strip()}" for part in PARTS)


def _strip_fences(text: str) -> str:
    m = re.fullmatch(r"\s*```[A-Za-z]*\s*\n(.*?)\n\s*```\s*", text, re.DOTALL)
    return m.group(1) if m else text


def parse_report(text: str, *, strict: bool = False) -> Report:
    """Read a report from a model answer or a dataset output (text form or a JSON object).

    Tolerant by default (see the module docstring). `strict=True` is for our own data: the parts
    must come in the fixed order and nothing may precede the first heading.
    Raises ReportFormatError with the reason (which part is missing, repeated, empty or bad).
    """
    if not isinstance(text, str):
        raise ReportFormatError(f"expected text, got {type(text).__name__}")
    body = _strip_fences(text).strip()
    if not body:
        raise ReportFormatError("the text is empty")
    if body.startswith("{"):
        try:
            obj = json.loads(body)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            return Report.from_json(obj)

    try:
        parts, order, langs = _split_parts(body, list(_HEADING_RE.finditer(body)), strict)
    except ReportFormatError as exc:
        # Small models sometimes run the four parts together on one line ("Analysis: ... Label:
        # high Risk: ..."). Tolerant mode retries with the canonical headings anywhere after a
        # space or sentence end; it is used only if that finds all four parts.
        if strict or exc.reason.startswith(("the ", "text before")):
            raise
        inline = list(_INLINE_RE.finditer(body))
        try:
            parts, order, langs = _split_parts(body, inline, strict)
        except ReportFormatError as inline_exc:
            # Report the reading that found more headings: its reason is the more useful one.
            line_start = len(_HEADING_RE.findall(body))
            raise (inline_exc if len(inline) > line_start else exc) from None
    for part in PARTS:
        if not parts[part]:
            raise ReportFormatError(f"the {part} part is empty", part=part)
    if strict and tuple(order) != PARTS:
        raise ReportFormatError(f"parts out of order: {', '.join(order)} (expected {', '.join(PARTS)})")
    label = _parse_label(parts["label"])
    return Report(
        analysis=parts["analysis"],
        label=label,
        risk=parts["risk"],
        solution=parts["solution"],
        lang=langs.pop() if len(langs) == 1 else None,
    )


def _split_parts(
    body: str, matches: list[re.Match[str]], strict: bool
) -> tuple[dict[str, str], list[str], set[str]]:
    """The text under each heading match; raises when none, a repeat, or a missing part."""
    if not matches:
        raise ReportFormatError(
            "no headings found (expected lines starting with 分析/标签/风险/解决方案 or "
            "Analysis/Label/Risk/Solution)"
        )
    parts: dict[str, str] = {}
    order: list[str] = []
    langs: set[str] = set()
    if strict and body[: matches[0].start()].strip():
        raise ReportFormatError(f"text before the first heading: {body[: matches[0].start()].strip()[:40]!r}")
    for i, m in enumerate(matches):
        name = m.group("name")
        part = _ALIAS_TO_PART[name.casefold()]
        if part in parts:
            raise ReportFormatError(f"the {part} part appears twice", part=part)
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        parts[part] = body[m.end() : end].strip()
        order.append(part)
        langs.add("en" if name.isascii() else "zh")
    missing = [p for p in PARTS if p not in parts]
    if missing:
        first = missing[0]
        raise ReportFormatError(
            f"missing the {first} part (a line starting with '{HEADINGS['zh'][first]}：' or "
            f"'{HEADINGS['en'][first]}:')"
            + (f"; also missing: {', '.join(missing[1:])}" if missing[1:] else ""),
            part=missing[0],
        )
    return parts, order, langs


def report_json_schema() -> dict[str, Any]:
    """JSON schema of the report, for Ollama's `format=` structured outputs."""
    text = {"type": "string", "minLength": 1}
    return {
        "title": "fwyy security report",
        "type": "object",
        "properties": {
            "analysis": {
                **text,
                "description": "What the input does, step by step, and which weakness it uses.",
            },
            "label": {"type": "string", "enum": [lab.value for lab in Label], "description": "Rating."},
            "risk": {**text, "description": "What an attacker gains; CWE id where one applies."},
            "solution": {**text, "description": "How to fix or block it."},
        },
        "required": list(PARTS),
        "additionalProperties": False,
    }

"""The security analyst's system prompt, in Chinese and English.

The text lives in templates/system_prompt.<lang>.txt so people can read and edit it; training
(dataset.records.to_messages), the Modelfile's SYSTEM, GPT4All's settings and the chat all take it
from here, so a model is always asked the way it was trained. It is short on purpose: the demo
trains a 135M model on 512-token sequences, and every prompt token is paid on every example.
"""

from __future__ import annotations

from functools import cache

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.resources import templates_dir

LANGUAGES = ("zh", "en")

SECTION_HEADINGS: dict[str, tuple[str, str, str, str]] = {
    "zh": ("分析", "标签", "风险", "解决方案"),
    "en": ("Analysis", "Label", "Risk", "Solution"),
}
"""The four parts' headings as the prompt names them (analysis, label, risk, solution); they must
be the headings fwyy_ollama.report.render_report writes, which a test checks."""

LABEL_NAMES: dict[str, tuple[str, ...]] = {
    "zh": ("安全", "低危", "中危", "高危", "严重"),
    "en": ("safe", "low", "medium", "high", "critical"),
}
"""The label scale as the prompt spells it, mildest first (report.Label values and their .zh)."""


def prompt_path(lang: str):  # type: ignore[no-untyped-def]
    if lang not in LANGUAGES:
        raise FwyyError(f"language {lang!r} is not one of {', '.join(LANGUAGES)}")
    return templates_dir() / f"system_prompt.{lang}.txt"


@cache
def system_prompt(lang: str = "zh") -> str:
    """The system prompt for `lang` ("zh" or "en"), without a trailing newline."""
    path = prompt_path(lang)
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise FwyyError(f"{path}: the {lang} system prompt is missing; reinstall fwyy-ollama") from None

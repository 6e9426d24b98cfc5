"""The sample catalog: parameterised templates of malicious inputs and benign look-alikes.

A template holds one kind of sample at one label: an input pattern and, in English and Chinese,
an analysis, a risk and a solution written for that pattern. Placeholders (`{table}`, `{ip}`,
`{v_cmd}`) are filled from the template's own choices or its category's pool, and the same values
go into the explanation, so every analysis talks about the actual payload (which table, which
host, which variable), not about its category in general. Placeholders starting with ``v_`` are
variable names: the generator redraws them to make "renamed variables" variants.

Every analysis opens with a subject that names the input's kind ("This SQL query", "这条 Shell
命令"): that is what records.record_category reads, and the generator checks it.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from fwyy_ollama.report import Label, Report

Params = dict[str, str]


@dataclass(frozen=True)
class Template:
    key: str
    category: str
    label: Label
    input: str
    en: tuple[str, str, str]
    """analysis predicate (follows the subject), risk, solution."""
    zh: tuple[str, str, str]
    params: Mapping[str, Sequence[str]] = field(default_factory=dict)
    derive: Callable[[Params], Params] | None = None
    subject: tuple[str, str] | None = None
    """(en, zh) subject overriding the category's openers."""
    uses: tuple[str, ...] = ()
    """Placeholders `derive` needs that no text mentions."""

    def fields(self) -> list[str]:
        names: list[str] = list(self.uses)
        for text in (self.input, *self.en, *self.zh, *(self.subject or ())):
            for _, name, _, _ in string.Formatter().parse(text):
                if name and name not in names:
                    names.append(name)
        return names


@dataclass(frozen=True)
class Category:
    name: str
    pool: Mapping[str, Sequence[str]]
    subjects: Mapping[str, Sequence[str]]
    templates: Sequence[Template]


def draw_params(
    t: Template, pool: Mapping[str, Sequence[str]], rng: random.Random, keep: Params | None = None
) -> Params:
    """Values for every placeholder; `keep` fixes some (all but the variable names, for renames)."""
    params: Params = {}
    for name in t.fields():
        if keep and name in keep:
            params[name] = keep[name]
        elif name in t.params:
            params[name] = rng.choice(list(t.params[name]))
        elif name in pool:
            params[name] = rng.choice(list(pool[name]))
    if t.derive:
        params.update(t.derive(params))
    missing = [n for n in t.fields() if n not in params]
    if missing:
        raise KeyError(f"template {t.key}: no values for {', '.join(missing)}")
    return params


def render_input(t: Template, params: Params) -> str:
    return t.input.format(**params)


def render_texts(t: Template, params: Params, lang: str, subject: str) -> Report:
    analysis, risk, solution = t.en if lang == "en" else t.zh
    subject = (t.subject[0] if lang == "en" else t.subject[1]).format(**params) if t.subject else subject
    # English: a space; Chinese: none, except after a Latin word ("HTML 从").
    sep = " " if lang == "en" or subject[-1:].isascii() else ""
    return Report(
        analysis=f"{subject}{sep}{analysis.format(**params)}",
        label=t.label,
        risk=risk.format(**params),
        solution=solution.format(**params),
    )


def categories() -> list[Category]:
    from fwyy_ollama.dataset.catalog import bash, pycode, sqli, xss

    return [sqli.CATEGORY, xss.CATEGORY, bash.CATEGORY, pycode.CATEGORY]

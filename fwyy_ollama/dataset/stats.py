"""Dataset statistics: counts per category x label and language, and token lengths.

Token lengths are measured the way training sees a record: the whole chat (system prompt, user,
assistant) through the profile's own tokenizer and chat template, so "does it fit max_seq_length"
has a real answer per profile.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fwyy_ollama.dataset.records import (
    CATEGORIES,
    Record,
    record_category,
    record_label,
    record_lang,
    to_messages,
)
from fwyy_ollama.report import Label

Progress = Callable[[float, float | None, str], None]


@dataclass(frozen=True)
class TokenStats:
    tokenizer: str
    count: int
    percentiles: dict[str, int]
    """p50, p90, p95, p99, max (tokens per whole chat)."""
    max_seq_length: int | None = None
    over_limit: int = 0
    by_lang: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per output language: the same percentiles plus `over_limit` and `count`."""


@dataclass(frozen=True)
class DatasetStats:
    records: int
    cells: dict[tuple[str, str], int]
    """(category or '?', label) -> records."""
    languages: dict[str, int]
    unique_inputs: int
    tokens: TokenStats | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "unique_inputs": self.unique_inputs,
            "languages": self.languages,
            "cells": {f"{c}/{lab}": n for (c, lab), n in sorted(self.cells.items())},
            "tokens": None if self.tokens is None else self.tokens.__dict__,
        }


def _percentile(sorted_values: Sequence[int], q: float) -> int:
    if not sorted_values:
        return 0
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def count_stats(records: Sequence[Record]) -> DatasetStats:
    from fwyy_ollama.dataset.records import normalize_input

    cells: Counter[tuple[str, str]] = Counter()
    langs: Counter[str] = Counter()
    for r in records:
        cells[(record_category(r) or "?", record_label(r).value)] += 1
        langs[record_lang(r)] += 1
    unique = len({normalize_input(r["input"]) for r in records})
    return DatasetStats(len(records), dict(cells), dict(langs), unique)


def token_lengths(
    records: Sequence[Record], tokenizer: Any, *, progress: Progress | None = None
) -> list[int]:
    """Tokens of each record's whole chat under the tokenizer's chat template."""
    out: list[int] = []
    for i, r in enumerate(records):
        ids = tokenizer.apply_chat_template(to_messages(r), tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        out.append(len(ids))
        if progress and i % 200 == 0:
            progress(i, len(records), "tokenizing")
    return out


def token_stats(lengths: Sequence[int], name: str, max_seq_length: int | None = None) -> TokenStats:
    s = sorted(lengths)
    pct = {f"p{q}": _percentile(s, q) for q in (50, 90, 95, 99)}
    pct["max"] = s[-1] if s else 0
    over = sum(1 for n in s if max_seq_length and n > max_seq_length)
    return TokenStats(name, len(s), pct, max_seq_length, over)


def profile_tokenizer(profile_name: str | None, *, progress: Progress | None = None) -> tuple[Any, Any]:
    """(tokenizer, profile) for a profile's base model, found locally via base_model.resolve_base_model."""
    from fwyy_ollama.base_model import resolve_base_model
    from fwyy_ollama.errors import require
    from fwyy_ollama.profiles import load_profile

    profile = load_profile(profile_name)
    folder = resolve_base_model(profile, progress=progress)
    require("transformers", "train", "Counting tokens")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder)), profile


def full_stats(
    records: Sequence[Record], *, profile: str | None = None, progress: Progress | None = None
) -> DatasetStats:
    """Counts, plus token percentiles when a profile is given."""
    stats = count_stats(records)
    if profile is None:
        return stats
    tokenizer, prof = profile_tokenizer(profile, progress=progress)
    lengths = token_lengths(records, tokenizer, progress=progress)
    limit = prof.train.max_seq_length
    by_lang: dict[str, dict[str, int]] = {}
    langs = [record_lang(r) for r in records]
    for lang in sorted(set(langs)):
        sub = token_stats([n for n, lg in zip(lengths, langs, strict=True) if lg == lang], lang, limit)
        by_lang[lang] = {**sub.percentiles, "over_limit": sub.over_limit, "count": sub.count}
    overall = token_stats(lengths, f"{prof.name} ({prof.base.hf_id})", limit)
    tokens = TokenStats(
        overall.tokenizer, overall.count, overall.percentiles, limit, overall.over_limit, by_lang
    )
    return DatasetStats(stats.records, stats.cells, stats.languages, stats.unique_inputs, tokens)


def cell_table_rows(stats: DatasetStats) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the category x label table (with totals), for rich or plain output."""
    labels = [lab.value for lab in Label]
    cats = list(CATEGORIES) + sorted({c for c, _ in stats.cells} - set(CATEGORIES))
    rows: list[list[str]] = []
    for c in cats:
        counts = [stats.cells.get((c, lab), 0) for lab in labels]
        if any(counts) or c in CATEGORIES:
            rows.append([c, *map(str, counts), str(sum(counts))])
    totals = [sum(stats.cells.get((c, lab), 0) for c in cats) for lab in labels]
    rows.append(["total", *map(str, totals), str(sum(totals))])
    return ["category", *labels, "total"], rows

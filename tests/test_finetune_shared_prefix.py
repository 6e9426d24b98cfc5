"""The HF backend's CPU fast path computes the plain path's loss, gradients and adapter.

The fast path (finetune.shared_prefix, finetune.lora_addmm) runs a padding-free batch's shared
prompt prefix once, attention per example, and LoRA's add inside its matmul. It is only allowed
because it is the same function of the LoRA weights: these tests hold it to the plain padding-free
path (finetune.sft.answer_loss_sum, peft's own LoRA forward) within float noise.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_finetune import small, write_records

REL = 1e-5
"""Largest relative difference allowed: float32 sums taken in another order, nothing more."""


def _features(
    model_dir: Path, tmp: Path, n: int = 4, *, repeat_first: bool = False
) -> list[dict[str, list[int]]]:
    """n training examples as fwyy tokenizes them: system prompt + user turn + answer (ChatML)."""
    from transformers import AutoTokenizer

    from fwyy_ollama.chat_families import get_family
    from fwyy_ollama.dataset.records import load_records, to_messages
    from fwyy_ollama.finetune.data import tokenize_all

    records = load_records(write_records(tmp / "records.jsonl", n))
    if repeat_first:
        records = [records[0]] * n
    family = get_family("chatml")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = tokenize_all(
        tokenizer,
        [to_messages(r, "en") for r in records],
        chat_template=family.hf_chat_template,
        turn_end=family.eos_token,
        max_seq_length=512,
    )
    return [{"input_ids": e.input_ids, "labels": e.labels} for e in examples.examples]


def _padding_free(feats: list[dict[str, list[int]]]) -> dict[str, Any]:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(feats)


def _lora_model(model_dir: Path, layers: list[int] | None = None) -> Any:
    """The model with LoRA on every projection and B nonzero (else A's gradients are all zero)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa")
    model.config.use_cache = False
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    config = LoraConfig(r=8, lora_alpha=16, target_modules=targets, layers_to_transform=layers)
    model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
    model.train()
    return model


def _rel(a: Any, b: Any) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


def _loss_and_grads(model: Any, batch: dict[str, Any], *, fast: bool) -> tuple[Any, Any, dict[str, Any]]:
    from fwyy_ollama.finetune.lora_addmm import fuse_lora, unfuse_lora
    from fwyy_ollama.finetune.sft import answer_loss_sum
    from fwyy_ollama.finetune.shared_prefix import answer_loss_sum_shared, plan_pack

    model.zero_grad(set_to_none=True)
    if fast:
        fuse_lora(model)
        pack = plan_pack(batch)
        assert pack is not None
        total, count = answer_loss_sum_shared(model, pack)
    else:
        total, count = answer_loss_sum(model, batch)
    (total / count).backward()
    unfuse_lora(model)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return total.detach(), count, grads


# ----------------------------------------------------------------------------- the pack


def test_the_shared_prompt_prefix_is_kept_once(smollm2_dir: Path, tmp_path: Path) -> None:
    """Four examples with fwyy's system prompt: it is run once, the rest keep their own positions."""
    import torch

    from fwyy_ollama.finetune.shared_prefix import plan_pack

    feats = _features(smollm2_dir, tmp_path)
    batch = _padding_free(feats)
    pack = plan_pack(batch)
    assert pack is not None
    ids = [f["input_ids"] for f in feats]
    common = next(i for i in range(min(map(len, ids))) if len({s[i] for s in ids}) > 1)
    assert pack.prefix == common > 50  # the system prompt and the user turn's opening
    assert pack.original_tokens == sum(map(len, ids))
    assert pack.input_ids.shape[1] == pack.original_tokens - 3 * pack.prefix
    # Every example's own tokens, at their own positions.
    for (a, b), seq in zip(pack.spans, ids, strict=True):
        assert pack.input_ids[0, a:b].tolist() == seq[pack.prefix :]
        assert pack.position_ids[0, a:b].tolist() == list(range(pack.prefix, len(seq)))
    # The same answer tokens to predict, none in the prefix.
    labels = batch["labels"][0]
    assert int((pack.targets != -100).sum()) == int((labels[1:] != -100).sum())
    assert bool((pack.targets[: pack.prefix] == -100).all())
    assert torch.equal(pack.targets[pack.targets != -100], labels[labels != -100])


def test_the_prefix_stops_before_the_first_answer_token(smollm2_dir: Path, tmp_path: Path) -> None:
    """Identical examples share everything but the prefix ends where a loss is taken."""
    from fwyy_ollama.finetune.shared_prefix import plan_pack

    feats = _features(smollm2_dir, tmp_path, 3, repeat_first=True)
    pack = plan_pack(_padding_free(feats))
    assert pack is not None
    prompt = sum(1 for x in feats[0]["labels"] if x == -100)
    # Position prompt-1 predicts the first answer token: it stays in every example.
    assert pack.prefix == prompt - 1
    assert int((pack.targets != -100).sum()) == 3 * (len(feats[0]["labels"]) - prompt)


def test_padded_batches_and_lone_examples_keep_the_plain_layout(smollm2_dir: Path, tmp_path: Path) -> None:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from fwyy_ollama.finetune.shared_prefix import plan_pack

    feats = _features(smollm2_dir, tmp_path, 2)
    assert plan_pack(DataCollatorForLanguageModeling(pad_token_id=0)(feats)) is None
    lone = plan_pack(_padding_free(feats[:1]))
    assert lone is not None and lone.prefix == 0 and lone.spans == [(0, len(feats[0]["input_ids"]))]
    # A prefix shorter than MIN_PREFIX is not worth sharing: attention per example only.
    none = plan_pack(_padding_free(feats), min_prefix=10_000)
    assert none is not None and none.prefix == 0 and none.input_ids.shape[1] == none.original_tokens


# ----------------------------------------------------------------------------- same numbers


@pytest.mark.parametrize("model_fixture", ["tiny_llama_dir", "tiny_qwen2_dir"])
def test_same_loss_gradients_and_step_as_the_plain_path(
    model_fixture: str, request: pytest.FixtureRequest, smollm2_dir: Path, tmp_path: Path
) -> None:
    import torch

    from fwyy_ollama.finetune.shared_prefix import shared_prefix_usable

    model_dir = request.getfixturevalue(model_fixture)
    model = _lora_model(model_dir)
    assert shared_prefix_usable(model) is None
    batch = _padding_free(_features(smollm2_dir, tmp_path))
    plain_loss, plain_count, plain = _loss_and_grads(model, batch, fast=False)
    fast_loss, fast_count, fast = _loss_and_grads(model, batch, fast=True)
    assert int(plain_count) == int(fast_count)
    assert abs(float(fast_loss) - float(plain_loss)) <= REL * abs(float(plain_loss))
    assert plain.keys() == fast.keys() and len(plain) == 2 * 7 * 2
    for name in plain:
        assert _rel(fast[name], plain[name]) < REL, name
    # One AdamW step from each gives the same adapter.
    start = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    after = []
    for grads in (plain, fast):
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.requires_grad:
                    p.copy_(start[n])
                    p.grad = grads[n].clone()
        params = [p for p in model.parameters() if p.requires_grad]
        torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01).step()
        after.append({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
    for name in start:
        assert _rel(after[1][name], after[0][name]) < REL, name


def test_demo_model_with_lora_on_the_top_layers(smollm2_dir: Path, tmp_path: Path) -> None:
    """The real SmolLM2-135M with the demo's top_layers: the frozen lower layers change nothing."""
    model = _lora_model(smollm2_dir, layers=list(range(10, 30)))
    batch = _padding_free(_features(smollm2_dir, tmp_path))
    plain_loss, _, plain = _loss_and_grads(model, batch, fast=False)
    fast_loss, _, fast = _loss_and_grads(model, batch, fast=True)
    assert abs(float(fast_loss) - float(plain_loss)) <= REL * abs(float(plain_loss))
    assert len(plain) == 20 * 7 * 2
    worst = max(_rel(fast[n], plain[n]) for n in plain)
    assert worst < REL, worst


def test_lora_addmm_is_peft_lora(tiny_llama_dir: Path) -> None:
    """The fused LoRA layer gives peft's output; layers with dropout keep peft's forward."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from fwyy_ollama.finetune.lora_addmm import fuse_lora, unfuse_lora

    model = _lora_model(tiny_llama_dir)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        assert fuse_lora(model) == 2 * 7
        got = model(input_ids=ids).logits
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
    unfuse_lora(model)
    assert all(type(m).__name__ != "AddmmLoraLinear" for m in model.modules())
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    dropped = get_peft_model(base, LoraConfig(r=4, lora_dropout=0.1, target_modules=["q_proj"]))
    assert fuse_lora(dropped) == 0


def test_other_families_and_devices_keep_the_plain_path(
    tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from fwyy_ollama.finetune.hf_backend import cpu_fast_path
    from fwyy_ollama.finetune.shared_prefix import shared_prefix_usable

    model = _lora_model(tiny_llama_dir)
    assert cpu_fast_path(model, padding_free=True) is None
    assert cpu_fast_path(model, padding_free=False) == "padded batches"
    # With a GPU the model is still on the CPU when the backend decides; Trainer moves it later.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cpu_fast_path(model, padding_free=True) == "the model trains on the GPU"
    monkeypatch.undo()
    config = AutoConfig.for_model(
        "mistral", vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1,
    )  # fmt: skip
    mistral = AutoModelForCausalLM.from_config(config)
    assert "mistral" in (shared_prefix_usable(mistral) or "")


# ----------------------------------------------------------------------------- through fwyy train


def test_train_adapter_fast_path_matches_the_plain_path(
    tiny_llama_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fwyy train on the CPU takes the fast path, and logs the losses the plain path logs."""
    from safetensors.torch import load_file

    from fwyy_ollama.finetune import META_FILE, train_adapter
    from fwyy_ollama.finetune.hf_backend import FAST_PATH_ENV
    from fwyy_ollama.profiles import load_profile

    profile = small(load_profile("fwyy-smollm2"), top_layers=1)
    profile = dataclasses.replace(profile, train=dataclasses.replace(profile.train, logging_steps=1))
    data = write_records(tmp_path / "train.jsonl", 8)
    runs = {}
    for fast in (True, False):
        monkeypatch.setenv(FAST_PATH_ENV, "1" if fast else "0")
        out = tmp_path / f"adapter-{int(fast)}"
        train_adapter(
            profile, data_files=[data], out_dir=out, max_steps=2, backend="hf", base_dir=tiny_llama_dir
        )
        runs[fast] = (json.loads((out / META_FILE).read_text()), load_file(out / "adapter_model.safetensors"))
    (fast_meta, fast_weights), (plain_meta, plain_weights) = runs[True], runs[False]
    assert fast_meta["backend_settings"]["cpu_fast_path"] is True
    assert fast_meta["backend_settings"]["shared_prefix_saved"] > 0.2
    assert plain_meta["backend_settings"]["cpu_fast_path"] == f"{FAST_PATH_ENV}=0"
    assert fast_meta["trained_tokens"] == plain_meta["trained_tokens"]
    fast_losses = [x for _, x in fast_meta["losses"]]
    plain_losses = [x for _, x in plain_meta["losses"]]
    assert len(fast_losses) == 2
    assert fast_losses == pytest.approx(plain_losses, rel=REL)
    assert fast_weights.keys() == plain_weights.keys()
    for name in plain_weights:
        assert _rel(fast_weights[name], plain_weights[name]) < 1e-4, name

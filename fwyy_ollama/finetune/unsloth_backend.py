"""Unsloth backend (NVIDIA GPUs): FastLanguageModel + LoRA + TRL's SFTTrainer.

D1 wrote the availability checks and the contract (finetune/backends.py); D2 wrote train() and
proved it on an H100 (benchmarks/device/). What differs from the HF backend is only how the model
is loaded and wrapped: Unsloth's FastLanguageModel (its fused kernels, 4-bit via bitsandbytes) and
its offloaded gradient checkpointing ("unsloth"). The examples (prompt masked with -100, answer +
end-of-turn trained), the SFTConfig, resume, progress and saving come from finetune.data and
finetune.sft, exactly as for the HF backend, so both train the same tokens with the same settings.

Where the model comes from: with load_in_4bit and a profile `base.unsloth_id` (Unsloth's
pre-quantized copy) that is already in the local Hugging Face cache, that copy is loaded; otherwise
the local base folder (job.base_dir) is loaded, quantized to 4-bit on the fly when the profile asks.
fwyy never downloads weights, so nothing here reaches a hub (Unsloth's usage ping is switched off).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.finetune.backends import BackendResult, TrainJob, library_versions

# Unsloth pings Hugging Face for usage statistics when it loads a model; fwyy stays offline. Set
# before anything here imports unsloth (available() does, for backend="auto").
os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")


# Dense bf16/fp16 tensor-core peak (datasheet TFLOP/s) by CUDA compute capability, for the padding choice.
_PEAK_TFLOPS: dict[tuple[int, int], float] = {
    (7, 5): 65.0,  # T4 (fp16; Colab's free GPU)
    (8, 0): 312.0,  # A100
    (8, 9): 121.0,  # L4
    (9, 0): 989.0,  # H100 / H200
    (10, 0): 2250.0,  # B200
}
_HOST_BOUND_GPU_SECONDS = 1.0
"""Below this much estimated GPU work per padded micro-batch, padded batches train faster.

Measured (benchmarks/device/NOTES.md, run 8): random Qwen2-7B in 4 bits on an H200, micro-batch
8, estimated at 259 ms: padded 6,848 tokens/s, padding-free 4,068. Padding-free ran at about 540 ms
a step whatever the GPU did (its uncompiled varlen path is host-bound), so it can only win once a
padded step's real GPU work (about 0.7x this estimate) passes that, with its 23% of pads dropped:
about 1 s estimated. A T4 reaches that with a 7B model at micro-batch 2."""


def choose_padding_free(
    n_params: int, lengths: list[int], batch_size: int, capability: tuple[int, int] | None
) -> tuple[bool, str]:
    """(padding_free, why) for Unsloth when the caller left it open.

    Both layouts train the same tokens with the same loss (Unsloth keeps padding-free exact with
    per-sequence attention boundaries), so this is only about speed. Padding-free batches carry no
    pad tokens but run Unsloth's uncompiled varlen path; padded batches pay for their pads on the GPU
    but run each decoder block as one compiled region, with far fewer kernel launches from Python.
    When a padded micro-batch is little GPU work the host is the bottleneck and padded wins: measured
    on an H100 (random Qwen2-1.5B, LoRA r16, batch 8, the shipped data; benchmarks/device/) padded
    ran about 2x the tokens/s of padding-free; Unsloth reports the same on A100, L4 and T4 for small
    micro-batches, and a 7B model in 4 bits on an H200 at micro-batch 8 ran 1.7x faster padded.
    When the GPU is the bottleneck (long sequences, small GPUs) the pad tokens cost real time and
    padding-free wins. The estimate: 6 x parameters x padded tokens per micro-batch at half the
    GPU's peak; an unknown GPU keeps padding-free (Unsloth's own default).
    """
    import random

    peak = _PEAK_TFLOPS.get(tuple(capability)) if capability else None  # type: ignore[arg-type]
    if not peak or not lengths or n_params <= 0:
        return True, "padding-free (no speed estimate for this GPU)"
    rng = random.Random(0)
    draws = 256
    padded = (
        sum(batch_size * max(rng.choice(lengths) for _ in range(batch_size)) for _ in range(draws)) / draws
    )
    gpu_s = 6.0 * n_params * padded / (peak * 1e12 * 0.5)
    if gpu_s < _HOST_BOUND_GPU_SECONDS:
        return False, f"padded: host-bound (~{gpu_s * 1e3:.0f} ms of GPU work per padded micro-batch)"
    return True, f"padding-free: GPU-bound (~{gpu_s * 1e3:.0f} ms of GPU work per padded micro-batch)"


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class UnslothBackend:
    name = "unsloth"

    def available(self) -> str | None:
        if importlib.util.find_spec("unsloth") is None:
            return "unsloth is not installed"
        if not _cuda_available():
            return "no CUDA GPU is visible"
        try:
            importlib.import_module("unsloth")
        except Exception as exc:  # unsloth raises many kinds of errors when it cannot patch
            return f"unsloth does not import: {type(exc).__name__}: {exc}"
        return None

    def check(self) -> None:
        if not _cuda_available():
            raise FwyyError(
                "the unsloth backend needs an NVIDIA GPU with CUDA, and none is visible here",
                hint="use `--backend hf` (CPU or any GPU) or run on a CUDA machine (e.g. Colab T4: "
                "train/fwyy_colab.ipynb)",
            )
        reason = self.available()
        if reason is not None:
            raise FwyyError(
                f"the unsloth backend cannot run: {reason}",
                hint="pip install 'fwyy-ollama[train,unsloth]', or use `--backend hf`",
            )

    def versions(self) -> dict[str, str]:
        return library_versions(
            "unsloth", "unsloth_zoo", "torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate"
        )

    def model_source(self, job: TrainJob) -> tuple[Path, bool]:
        """(folder to load, whether it is Unsloth's pre-quantized 4-bit copy).

        The pre-quantized copy only counts when it is on this machine already (HF cache, offline
        lookup); otherwise the base folder is quantized while loading, which gives the same kind of
        model and needs no download.
        """
        base = job.profile.base
        if job.profile.train.load_in_4bit and base.unsloth_id:
            local = Path(base.unsloth_id).expanduser()
            if local.is_dir() and (local / "config.json").is_file():
                return local, True
            try:
                from huggingface_hub import snapshot_download

                return Path(snapshot_download(base.unsloth_id, local_files_only=True)), True
            except Exception:  # noqa: BLE001 - any miss in the offline cache means "not here"
                pass
        return job.base_dir, False

    def load_model(self, job: TrainJob) -> tuple[Any, Any, dict[str, Any]]:
        """Unsloth's model with LoRA attached (offloaded gradient checkpointing), its tokenizer, settings."""
        import torch
        import unsloth  # noqa: F401 - must come before transformers/trl/peft are used: it patches them
        from unsloth import FastLanguageModel

        t, lora = job.profile.train, job.profile.lora
        source, prequantized = self.model_source(job)
        try:
            model, tokenizer = FastLanguageModel.from_pretrained(
                model_name=str(source),
                max_seq_length=t.max_seq_length,
                dtype=None,  # bf16 where the GPU has it, else fp16
                load_in_4bit=bool(t.load_in_4bit),
                random_state=lora.seed,
            )
        except (OSError, ValueError) as exc:
            raise FwyyError(
                f"cannot load the base model from {source}: {str(exc).strip().splitlines()[0]}",
                hint="the folder needs config.json, the weights (*.safetensors) and the tokenizer files",
            ) from None
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
            max_seq_length=t.max_seq_length,
            **_layers(job.profile, model),
        )
        trainable, total = model.get_nb_trainable_parameters()
        settings: dict[str, Any] = {
            "precision": "bf16" if torch.cuda.is_bf16_supported() else "fp16",
            "load_in_4bit": bool(t.load_in_4bit),
            "model_source": str(source),
            "prequantized": prequantized,
            "gradient_checkpointing": "unsloth",
            "attn_implementation": str(getattr(model.config, "_attn_implementation", "") or ""),
            "trainable_parameters": int(trainable),
            "total_parameters": int(total),
            "device": torch.cuda.get_device_name(0),
        }
        return model, tokenizer, settings

    def train(self, job: TrainJob) -> BackendResult:
        job.report(0, job.max_steps, "loading the base model (unsloth)")
        model, tokenizer, settings = self.load_model(job)
        from trl import SFTTrainer

        from fwyy_ollama.finetune.data import build_examples
        from fwyy_ollama.finetune.sft import make_sft_config, run_training

        examples = build_examples(tokenizer, job)
        bf16 = settings["precision"] == "bf16"
        optim = job.profile.train.optimizer  # bitsandbytes comes with unsloth, so 8-bit Adam runs here
        if job.padding_free is None:
            import torch

            padding_free, why = choose_padding_free(
                settings["total_parameters"],
                [len(e.input_ids) for e in examples.examples],
                job.profile.train.batch_size,
                torch.cuda.get_device_capability(0),
            )
        else:
            padding_free, why = bool(job.padding_free), "asked for"
        settings["padding_choice"] = why
        config = make_sft_config(job, optim=optim, padding_free=padding_free, bf16=bf16, fp16=not bf16)
        trainer = SFTTrainer(
            model=model, processing_class=tokenizer, args=config, train_dataset=examples.dataset
        )
        settings.update(optimizer=optim, padding_free=padding_free)
        return run_training(
            trainer, job, model=model, tokenizer=tokenizer, examples=examples, settings=settings
        )


def _layers(profile: Any, model: Any) -> dict[str, Any]:
    """Unsloth's layers_to_transform when the recipe adapts only the top layers (else nothing)."""
    layers = profile.layers_to_transform(int(model.config.num_hidden_layers))
    return {"layers_to_transform": layers} if layers else {}

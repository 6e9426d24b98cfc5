"""HF backend: transformers + peft (LoRA) + TRL's SFTTrainer; CPU, any GPU, and DDP.

It runs unchanged under `accelerate launch` / `torchrun`: Trainer picks up the process group from
the environment, every rank trains on its shard, and only rank 0 saves (finetune.sft).
"""

from __future__ import annotations

import os
from typing import Any

from fwyy_ollama.errors import FwyyError, require
from fwyy_ollama.finetune.backends import BackendResult, TrainJob, library_versions

_MODULES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate")


def _bitsandbytes_usable() -> bool:
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None


def packed_attention_supported(attn_implementation: str) -> bool:
    """Whether padding-free batches (examples laid end to end, told apart by position_ids) stay exact.

    Flash-attention kernels take the sequence boundaries from position_ids; transformers' own mask
    builder (masking_utils, used by sdpa and eager) finds them too and makes a block-diagonal mask.
    Anything else (a custom kernel) would let examples attend to each other, so it stays off there.
    """
    if "flash" in attn_implementation:
        return True
    if attn_implementation not in ("sdpa", "eager"):
        return False
    try:
        from transformers import masking_utils
    except ImportError:  # pragma: no cover
        return False
    return hasattr(masking_utils, "find_packed_sequence_indices")


FAST_PATH_ENV = "FWYY_CPU_FAST_PATH"
"""Set to 0 to train on the CPU with the plain path (benchmarks/finetune_cpu.py compares both)."""


def cpu_fast_path(model: Any, padding_free: bool) -> str | None:
    """None when the CPU fast path applies to this run, else why not (kept in the adapter's metadata).

    The fast path (finetune.shared_prefix + finetune.lora_addmm) computes the same loss and
    gradients with less work: the batch's shared prompt prefix once, attention per example, LoRA's
    add fused into its matmul. It needs padding-free batches of a model family it was checked on,
    on the CPU; GPUs keep the plain path, whose costs are elsewhere.
    """
    from fwyy_ollama.finetune.shared_prefix import shared_prefix_usable

    if os.environ.get(FAST_PATH_ENV, "1").strip() == "0":
        return f"{FAST_PATH_ENV}=0"
    if not padding_free:
        return "padded batches"
    import torch

    if torch.cuda.is_available():  # the model is still on the CPU here; Trainer moves it to the GPU
        return "the model trains on the GPU"
    return shared_prefix_usable(model)


class HFBackend:
    name = "hf"

    def available(self) -> str | None:
        import importlib.util

        missing = [m for m in _MODULES if importlib.util.find_spec(m) is None]
        return f"{', '.join(missing)} not installed" if missing else None

    def check(self) -> None:
        for module in _MODULES:
            require(module, "train", "fine-tuning")

    def versions(self) -> dict[str, str]:
        return library_versions(*_MODULES, "bitsandbytes")

    def _precision(self) -> tuple[Any, bool, bool, str]:
        """(load dtype, bf16, fp16, name): bf16 where the GPU has it, fp16 autocast on older GPUs, fp32 on CPU."""
        import torch

        if torch.cuda.is_available():
            if torch.cuda.is_bf16_supported():
                return torch.bfloat16, True, False, "bf16"
            return torch.float32, False, True, "fp16-autocast"
        return torch.float32, False, False, "fp32"

    @staticmethod
    def _wants_gradient_checkpointing(model: Any, four_bit: bool) -> bool:
        """Recompute activations only where memory is short: never on a CPU (RAM is plenty for the
        models trained there, and recomputing costs ~30% more compute), on a GPU for 4-bit bases and
        for weights that take over a quarter of its memory. TRL would turn it on everywhere."""
        import torch

        if not torch.cuda.is_available():
            return False
        if four_bit:
            return True
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        return weights > torch.cuda.get_device_properties(0).total_memory / 4

    def load_model(self, job: TrainJob) -> tuple[Any, Any, dict[str, Any]]:
        """Base model with LoRA attached, its tokenizer, and the settings chosen."""
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

        t, lora = job.profile.train, job.profile.lora
        dtype, _, _, precision = self._precision()
        kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": "sdpa"}
        four_bit = bool(t.load_in_4bit and _bitsandbytes_usable())
        if four_bit:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16 if precision == "bf16" else torch.float16,
            )
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(job.base_dir))
            model = AutoModelForCausalLM.from_pretrained(str(job.base_dir), **kwargs)
        except (OSError, ValueError) as exc:
            raise FwyyError(
                f"cannot load the base model from {job.base_dir}: {str(exc).splitlines()[0]}",
                hint="the folder needs config.json, the weights (*.safetensors) and the tokenizer files",
            ) from None
        model.config.use_cache = False
        checkpointing = self._wants_gradient_checkpointing(model, four_bit)
        if four_bit:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
        set_seed(lora.seed)
        config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            use_rslora=lora.use_rslora,
            bias="none",
            task_type="CAUSAL_LM",
            layers_to_transform=job.profile.layers_to_transform(int(model.config.num_hidden_layers)),
        )
        model = get_peft_model(model, config)
        attn = str(getattr(model.config, "_attn_implementation", "sdpa") or "sdpa")
        trainable, total = model.get_nb_trainable_parameters()
        settings = {
            "precision": precision,
            "load_in_4bit": four_bit,
            "attn_implementation": attn,
            "trainable_parameters": int(trainable),
            "total_parameters": int(total),
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "gradient_checkpointing": checkpointing,
        }
        return model, tokenizer, settings

    def train(self, job: TrainJob) -> BackendResult:
        from fwyy_ollama.finetune.data import build_examples
        from fwyy_ollama.finetune.sft import make_sft_config, run_training, trainer_class

        job.report(0, job.max_steps, "loading the base model")
        model, tokenizer, settings = self.load_model(job)
        examples = build_examples(tokenizer, job)
        _, bf16, fp16, _ = self._precision()
        want_8bit = "8bit" in job.profile.train.optimizer
        optim = job.profile.train.optimizer if want_8bit and _bitsandbytes_usable() else "adamw_torch"
        padding_free = job.padding_free
        if padding_free is None:
            padding_free = packed_attention_supported(settings["attn_implementation"])
        config = make_sft_config(
            job,
            optim=optim,
            padding_free=padding_free,
            bf16=bf16,
            fp16=fp16,
            gradient_checkpointing=settings["gradient_checkpointing"],
        )
        not_fast = cpu_fast_path(model, padding_free)
        if not_fast is None:
            from fwyy_ollama.finetune.lora_addmm import fuse_lora

            fuse_lora(model)
        trainer = trainer_class(shared_prefix=not_fast is None)(
            model=model, args=config, train_dataset=examples.dataset, processing_class=tokenizer
        )
        settings.update(
            optimizer=optim, padding_free=padding_free, cpu_fast_path=not_fast is None or not_fast
        )
        result = run_training(
            trainer, job, model=model, tokenizer=tokenizer, examples=examples, settings=settings
        )
        batch_tokens, computed = trainer.fwyy_tokens
        if batch_tokens:
            # How much of the batches the shared prompt prefix spared (prompt tokens run once per batch).
            result.settings["shared_prefix_saved"] = round(1 - computed / batch_tokens, 4)
        return result

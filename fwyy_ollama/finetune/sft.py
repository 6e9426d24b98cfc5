"""The TRL SFTTrainer settings and run loop every backend shares.

Why shared: the profile's trainer section must mean the same thing on Unsloth and on HF, and
resume, progress, out-of-memory handling and "only rank 0 writes" must not be written twice.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.finetune.backends import BackendResult, TrainJob

if TYPE_CHECKING:
    from fwyy_ollama.finetune.data import Examples

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def last_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder (highest N with trainer_state.json), if any."""
    if not checkpoint_dir.is_dir():
        return None
    found = []
    for p in checkpoint_dir.iterdir():
        m = _CHECKPOINT.match(p.name)
        if m and p.is_dir() and (p / "trainer_state.json").is_file():
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def save_steps(max_steps: int) -> int:
    """Checkpoint about five times per run (and at least every 50 steps) so --resume loses little."""
    return max(1, min(50, math.ceil(max_steps / 5)))


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def make_sft_config(
    job: TrainJob,
    *,
    optim: str,
    padding_free: bool,
    bf16: bool = False,
    fp16: bool = False,
    **extra: Any,
) -> Any:
    """TRL SFTConfig from the profile's [train] section.

    The dataset is pre-tokenized and pre-truncated (finetune.data), so max_length is None (TRL
    refuses padding-free without packing otherwise) and packing stays off: packing would change how
    many examples a step sees, padding-free batching does not.
    """
    from trl import SFTConfig

    t = job.profile.train
    kwargs: dict[str, Any] = dict(
        output_dir=str(job.checkpoint_dir),
        per_device_train_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        warmup_steps=t.warmup_steps,
        max_steps=job.max_steps,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        lr_scheduler_type=t.lr_scheduler,
        optim=optim,
        logging_steps=t.logging_steps,
        save_strategy="steps",
        save_steps=save_steps(job.max_steps),
        save_total_limit=1,
        seed=job.seed,
        data_seed=job.seed,
        bf16=bf16,
        fp16=fp16,
        max_length=None,
        packing=False,
        padding_free=padding_free,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=_cuda(),
        # On a CPU, Trainer sets up DDP (gloo) under torchrun only when told it is a CPU run.
        use_cpu=not _cuda(),
        include_num_input_tokens_seen="all" if padding_free else "non_padding",
        dataset_num_proc=None,
    )
    kwargs.update(extra)
    return SFTConfig(**kwargs)


def fused_loss_usable(model: Any) -> bool:
    """Whether TRL's fused LM-head loss can run: it is a Triton kernel, so CUDA/XPU with triton only."""
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:  # pragma: no cover
        return False
    if getattr(trl_utils, "_ChunkedLogProbFunction", None) is None:
        return False
    try:
        device = next(model.parameters()).device
    except StopIteration:  # pragma: no cover
        return False
    return device.type in ("cuda", "xpu")


def _accepts_logits_to_keep(model: Any) -> bool:
    import inspect

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    forward = getattr(type(inner), "forward", None)
    return forward is not None and "logits_to_keep" in inspect.signature(forward).parameters


def answer_loss_sum(model: Any, inputs: dict[str, Any]) -> tuple[Any, Any]:
    """(summed NLL of the label tokens, their number), with logits computed only where a label is.

    The prompt is most of every example (the system prompt alone is ~130 tokens) and its labels
    are -100, so its logits, a [tokens x vocabulary] matrix and its softmax, are wasted work. Only
    the positions that predict a label token (any row of the batch) go through the LM head, the way
    TRL's fused GPU loss does; the loss is the same number.
    """
    import torch
    import torch.nn.functional as F

    labels = inputs["labels"]
    # Position i predicts token i + 1.
    targets = F.pad(labels, (0, 1), value=-100)[:, 1:]
    keep = (targets != -100).any(dim=0).nonzero().squeeze(-1)
    model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    model_inputs["use_cache"] = False
    logits = model(**model_inputs, logits_to_keep=keep).logits
    chosen = targets[:, keep]
    total = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), chosen.reshape(-1), ignore_index=-100, reduction="sum"
    )
    return total, (chosen != -100).sum().to(torch.float32)


def trainer_class(shared_prefix: bool = False) -> type:
    """TRL's SFTTrainer, with a plain-PyTorch answer-only loss where TRL's Triton loss cannot run.

    TRL 1.15 always computes the SFT loss with a Triton kernel (GPU only); on a CPU it fails. The
    replacement computes the same quantity (answer_loss_sum) and normalizes it exactly as
    transformers' Trainer would: by the label tokens of the whole accumulated batch when the model
    takes loss kwargs, else per micro-batch (Trainer then divides by the accumulation steps).
    With shared_prefix (the HF backend's CPU fast path, finetune.shared_prefix), padding-free
    batches run their common prompt prefix once and attention per example: the same loss.
    """
    from transformers import Trainer
    from trl import SFTTrainer

    class FwyySFTTrainer(SFTTrainer):  # type: ignore[misc]
        fwyy_shared_prefix = shared_prefix

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.fwyy_tokens = [0, 0]
            """[tokens of the batches, tokens run through the model] on the shared-prefix path."""

        def compute_loss(
            self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            if fused_loss_usable(model):
                return super().compute_loss(
                    model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
                )
            if return_outputs or not _accepts_logits_to_keep(model):
                # No KV cache: with one, transformers skips finding the padding-free sequence boundaries.
                return Trainer.compute_loss(
                    self,
                    model,
                    {**inputs, "use_cache": False},
                    return_outputs=return_outputs,
                    num_items_in_batch=num_items_in_batch,
                )
            total, count = self._answer_loss_sum(model, inputs)
            if self.model_accepts_loss_kwargs and num_items_in_batch is not None:
                loss = total / num_items_in_batch
                if self.args.average_tokens_across_devices:
                    loss = loss * self.accelerator.num_processes
                return loss
            return total / count.clamp(min=1)

        def _answer_loss_sum(self, model: Any, inputs: Any) -> tuple[Any, Any]:
            if self.fwyy_shared_prefix:
                from fwyy_ollama.finetune.shared_prefix import answer_loss_sum_shared, plan_pack

                pack = plan_pack(inputs)
                if pack is not None:
                    self.fwyy_tokens[0] += pack.original_tokens
                    self.fwyy_tokens[1] += int(pack.input_ids.shape[1])
                    return answer_loss_sum_shared(model, pack, self.model.config)
            return answer_loss_sum(model, inputs)

    return FwyySFTTrainer


def progress_callback(job: TrainJob) -> Any:
    """A TrainerCallback that records the logged losses and reports `step n/N loss x` to job.progress."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.losses: list[tuple[int, float]] = []
            self.last_loss: float | None = None
            self.marks: list[tuple[float, int]] = []
            """(time, tokens seen) at the start and after every optimizer step, for steady-state speed."""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen or 0)))
            job.report(state.global_step, state.max_steps, "training")

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                self.last_loss = float(logs["loss"])
                self.losses.append((int(state.global_step), self.last_loss))
                self._report(state)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen or 0)))
            # Trainer logs after on_step_end; on_log reports the step again with its loss.
            self._report(state)

        def steady_tokens_per_second(self) -> float | None:
            """Tokens/s over the last three quarters of the steps: compile and warm-up excluded."""
            steps = len(self.marks) - 1
            if steps < 3:
                return None
            (t0, n0), (t1, n1) = self.marks[max(1, steps // 4)], self.marks[-1]
            return (n1 - n0) / (t1 - t0) if t1 > t0 else None

        def _report(self, state: Any) -> None:
            loss = f"  loss {self.last_loss:.4f}" if self.last_loss is not None else ""
            job.report(
                state.global_step, state.max_steps, f"step {state.global_step}/{state.max_steps}{loss}"
            )

    return _Progress()


def _peak_gpu_memory_gb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


def is_oom(exc: BaseException) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def oom_error(job: TrainJob, exc: BaseException) -> FwyyError:
    t = job.profile.train
    tips = []
    if t.batch_size > 1:
        tips.append(f"train.batch_size = {max(1, t.batch_size // 2)} with grad_accum = {t.grad_accum * 2}")
    if not t.load_in_4bit:
        tips.append("train.load_in_4bit = true (on a CUDA GPU with bitsandbytes)")
    if t.max_seq_length > 512:
        tips.append(f"train.max_seq_length = {t.max_seq_length // 2}")
    hint = "in the profile, try " + "; ".join(tips) if tips else "use a smaller base model or a bigger GPU"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return FwyyError(f"out of memory while training {job.profile.name}: {first}", exit_code=3, hint=hint)


def run_training(
    trainer: Any,
    job: TrainJob,
    *,
    model: Any,
    tokenizer: Any,
    examples: Examples,
    settings: dict[str, Any] | None = None,
) -> BackendResult:
    """Train (resuming from the last checkpoint when job.resume), then save adapter + tokenizer on rank 0.

    Without --resume, old checkpoints are removed first: they belong to an earlier run whose
    settings may differ, and Trainer would otherwise mix their rotation with this run's.
    """
    from transformers.trainer_callback import PrinterCallback

    callback = progress_callback(job)
    trainer.add_callback(callback)
    trainer.remove_callback(PrinterCallback)  # it prints the log dicts; progress goes through job.progress
    resume_from = last_checkpoint(job.checkpoint_dir) if job.resume else None
    if not job.resume and job.is_main_process and job.checkpoint_dir.exists():
        shutil.rmtree(job.checkpoint_dir, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    if resume_from is not None:
        job.report(0, job.max_steps, f"resuming from {resume_from.name}")
    elif job.resume:
        job.report(0, job.max_steps, "no checkpoint to resume from: starting at step 1")
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    state = trainer.state
    tokens = int(state.num_input_tokens_seen or 0)
    if resume_from is not None:
        tokens -= int(getattr(trainer, "_initial_num_input_tokens_seen", 0) or 0)
    trainer.accelerator.wait_for_everyone()
    if job.is_main_process and job.output_dir is not None:
        job.report(state.global_step, job.max_steps, "saving the adapter")
        model.save_pretrained(str(job.output_dir), safe_serialization=True)
        tokenizer.chat_template = job.chat_template
        tokenizer.save_pretrained(str(job.output_dir))
    # The state's history holds the losses of a resumed run's earlier part too.
    losses = [(int(h["step"]), float(h["loss"])) for h in state.log_history if "loss" in h] or callback.losses
    merged = dict(settings or {})
    peak = _peak_gpu_memory_gb()
    if peak is not None:
        merged["peak_gpu_memory_gb"] = peak
    merged.update(
        steady_tokens_per_second=callback.steady_tokens_per_second(),
        train_cpu_seconds=round(cpu_seconds, 2),
        world_size=int(trainer.accelerator.num_processes),
        distributed_type=str(trainer.accelerator.distributed_type.value),
        examples=len(examples.examples),
        truncated=examples.truncated,
        dropped=examples.dropped,
        prompt_tokens=examples.prompt_tokens,
        answer_tokens=examples.answer_tokens,
    )
    return BackendResult(
        steps=int(state.global_step),
        final_loss=losses[-1][1] if losses else None,
        first_loss=losses[0][1] if losses else None,
        losses=losses,
        train_seconds=seconds,
        trained_tokens=max(0, tokens),
        resumed_from=resume_from.name if resume_from else None,
        settings=merged,
    )

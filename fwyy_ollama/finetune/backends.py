"""The contract between `train_adapter` and the trainers that do the work (HF, Unsloth).

Why a small protocol: the two backends differ only in how they load the base model and wrap it
with LoRA (plain transformers + peft, or Unsloth's FastLanguageModel). Everything else, the
prompt/answer tokenization with its loss mask, the SFTConfig built from the profile, the progress
callback, resume, saving on the main rank only, is shared (finetune.data and finetune.sft), so both
backends train the same examples with the same settings and their results can be compared.

A backend module defines one class that satisfies `Backend` and registers it in `_BACKENDS` below:

    class MyBackend:
        name = "mine"
        def available(self) -> str | None: ...   # None when usable, else why not (for `auto`)
        def check(self) -> None: ...             # raise FwyyError when asked for explicitly but unusable
        def versions(self) -> dict[str, str]: ...
        def train(self, job: TrainJob) -> BackendResult: ...

`train` loads `job.base_dir`, builds the examples with `finetune.data.build_examples(tokenizer, job)`,
builds the trainer with `finetune.sft.make_sft_config(job, ...)` and runs it with
`finetune.sft.run_training(trainer, job, model=..., tokenizer=...)`, which trains (resuming when
`job.resume`), reports progress, and saves the adapter + tokenizer into `job.output_dir` on the main
process only. Heavy imports (torch, transformers, peft, trl, unsloth) stay inside methods.

Notes for backend authors:
- Padding-free batches (examples laid end to end, told apart by position_ids) are exact only when
  the model builds block-diagonal attention from position_ids: flash-attention kernels do, and so
  does transformers' sdpa/eager mask builder, but only with no KV cache (config.use_cache = False).
  tests/test_finetune.py::test_padding_free_batches_give_the_same_loss checks it for the HF path.
- Build the trainer with `finetune.sft.trainer_class()` (TRL's SFTTrainer, falling back to the
  model's own loss where TRL's Triton loss kernel cannot run, i.e. on a CPU).
- BackendResult.settings is free-form; run_training fills examples/tokens/world_size,
  steady_tokens_per_second (warm-up and compile excluded) and peak_gpu_memory_gb.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.profiles import Profile

ProgressFn = Callable[[float, "float | None", str], None]
"""progress(completed, total, description), as everywhere in fwyy."""

Message = dict[str, str]

BACKEND_CHOICES = ("auto", "unsloth", "hf")


@dataclass(frozen=True)
class TrainJob:
    """Everything a backend needs, resolved already: no backend reads profiles, data files or env."""

    profile: Profile
    base_dir: Path
    """Local HF folder of the base model (config.json, weights, tokenizer with chat template)."""
    conversations: Sequence[Sequence[Message]]
    """One conversation per record: system (security prompt), user, assistant (the answer to learn)."""
    chat_template: str
    """The family's Jinja chat template; set on the tokenizer before tokenizing and saved with the adapter."""
    turn_end: str
    """The text that ends an assistant turn in this family (e.g. "<|im_end|>"); trained as part of the answer."""
    max_steps: int
    checkpoint_dir: Path
    """Where Trainer checkpoints go (a sibling of the adapter folder, kept for --resume)."""
    output_dir: Path | None
    """Where the finished adapter is saved (a temporary folder renamed afterwards); None on non-main ranks."""
    resume: bool = False
    progress: ProgressFn | None = None
    is_main_process: bool = True
    padding_free: bool | None = None
    """None: the backend decides (on where it is known not to change results); True/False: forced."""
    seed: int = 3407

    def report(self, completed: float, total: float | None, description: str) -> None:
        if self.progress is not None and self.is_main_process:
            self.progress(completed, total, description)


@dataclass(frozen=True)
class BackendResult:
    """What a backend reports back; train_adapter adds the rest of fwyy-adapter.json."""

    steps: int
    final_loss: float | None
    first_loss: float | None
    losses: list[tuple[int, float]]
    """(global step, training loss) as logged every logging_steps."""
    train_seconds: float
    """Wall time of trainer.train() alone (model loading excluded)."""
    trained_tokens: int
    """Non-padding tokens fed through the model during this run (prompt + answer)."""
    resumed_from: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    """What the backend chose: optimizer, dtype, padding_free, 4-bit, attention implementation, ..."""

    @property
    def tokens_per_second(self) -> float | None:
        return self.trained_tokens / self.train_seconds if self.train_seconds > 0 else None


@runtime_checkable
class Backend(Protocol):
    name: str

    def available(self) -> str | None:
        """None when this backend can run here, else the reason it cannot (used by backend="auto")."""
        ...

    def check(self) -> None:
        """Raise FwyyError (with a hint) when the backend was asked for explicitly and cannot run here."""
        ...

    def versions(self) -> dict[str, str]:
        """Versions of the libraries this backend trains with, for fwyy-adapter.json."""
        ...

    def train(self, job: TrainJob) -> BackendResult: ...


_BACKENDS: dict[str, str] = {
    "hf": "fwyy_ollama.finetune.hf_backend:HFBackend",
    "unsloth": "fwyy_ollama.finetune.unsloth_backend:UnslothBackend",
}


def get_backend(name: str) -> Backend:
    """The backend object by name ("hf" or "unsloth"), imported lazily."""
    if name not in _BACKENDS:
        raise FwyyError(
            f"unknown training backend {name!r}", hint=f"choose one of {', '.join(BACKEND_CHOICES)}"
        )
    module_name, attr = _BACKENDS[name].split(":")
    return getattr(importlib.import_module(module_name), attr)()


def select_backend(name: str = "auto") -> Backend:
    """`auto`: Unsloth when it imports and CUDA is present, else HF. A named backend must be usable."""
    if name == "auto":
        unsloth = get_backend("unsloth")
        if unsloth.available() is None:
            return unsloth
        backend = get_backend("hf")
    else:
        backend = get_backend(name)
    backend.check()
    return backend


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (absent ones are left out)."""
    from importlib import metadata

    out: dict[str, str] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out

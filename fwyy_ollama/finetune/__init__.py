"""Fine-tuning stage: LoRA on the profile's base, Unsloth on NVIDIA GPUs, HF + PEFT + TRL elsewhere.

Named `finetune` to keep clear of the top-level `train/` data folder. Importing this package is
cheap; torch, transformers, peft, trl and unsloth load only when training starts.
"""

from fwyy_ollama.finetune.backends import BACKEND_CHOICES, Backend, BackendResult, TrainJob, select_backend
from fwyy_ollama.finetune.core import META_FILE, TrainResult, checkpoint_dir_for, train_adapter

__all__ = [
    "BACKEND_CHOICES",
    "META_FILE",
    "Backend",
    "BackendResult",
    "TrainJob",
    "TrainResult",
    "checkpoint_dir_for",
    "select_backend",
    "train_adapter",
]

"""`train_adapter`: a profile + training records -> a LoRA adapter folder with fwyy-adapter.json.

This is the stage function `fwyy train` and `fwyy build` call. It resolves everything a backend
needs (base folder, conversations in the family's chat format with the security system prompt,
checkpoint folder), runs the chosen backend, and writes the adapter atomically: an interrupted run
leaves the previous adapter (or none), never half of one. Under `torchrun` / `accelerate launch`
every rank trains and only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fwyy_ollama import __version__
from fwyy_ollama.atomic import atomic_dir
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.finetune.backends import BackendResult, ProgressFn, TrainJob, select_backend
from fwyy_ollama.hashing import sha256_file, sha256_json
from fwyy_ollama.profiles import Profile, load_profile
from fwyy_ollama.resources import data_dir

META_FILE = "fwyy-adapter.json"
META_FORMAT = 1


@dataclass(frozen=True)
class TrainResult:
    """What `train_adapter` wrote; `metadata` is the content of fwyy-adapter.json."""

    adapter_dir: Path
    checkpoint_dir: Path
    backend: str
    steps: int
    final_loss: float | None
    first_loss: float | None
    seconds: float
    tokens_per_second: float | None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def meta_path(self) -> Path:
        return self.adapter_dir / META_FILE

    def to_json(self) -> dict[str, Any]:
        return {
            "adapter_dir": str(self.adapter_dir),
            "checkpoint_dir": str(self.checkpoint_dir),
            **{k: v for k, v in self.metadata.items() if k != "losses"},
        }


def checkpoint_dir_for(out_dir: Path) -> Path:
    """Checkpoints live next to the adapter (not inside it, so the adapter folder stays small)."""
    return out_dir.with_name(out_dir.name + ".checkpoints")


def _check_replaceable(out: Path) -> None:
    """The adapter folder is replaced whole; refuse to do that to a folder that is not an adapter."""
    if out.is_file():
        raise FwyyError(f"--out {out} is a file; give a folder for the adapter")
    if out.is_dir() and any(out.iterdir()) and not (out / META_FILE).is_file():
        raise FwyyError(
            f"--out {out} already holds files that are not a fwyy adapter; fwyy would replace the whole folder",
            hint="choose a new or empty folder (the default is out/<profile>/adapter)",
        )


def process_rank() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment (torchrun and accelerate set RANK)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def resolve_data_files(profile: Profile, data_files: list[str | Path] | None) -> list[Path]:
    paths = [Path(p) for p in data_files] if data_files else [Path(p) for p in profile.data]
    resolved = [p if p.is_absolute() or p.exists() else data_dir() / p for p in paths]
    for p in resolved:
        if not p.is_file():
            raise FwyyError(
                f"training data {p}: no such file",
                hint="pass --data FILE (Alpaca JSONL: instruction, input, output) or fix the profile's data",
            )
    return resolved


def load_conversations(
    files: list[Path],
    language: str,
    keep_languages: tuple[str, ...] = ("zh", "en"),
    *,
    balance: bool = False,
    seed: int = 0,
    findings: bool = False,
    risky_share: float = 0.5,
    findings_share: float = 0.75,
) -> tuple[list[list[dict[str, str]]], list[dict[str, Any]]]:
    """Records -> chat messages (system prompt + user + assistant) via the dataset module's own rules.

    Only records whose answer is in `keep_languages` are kept (profile train.languages); with
    `balance` (profile train.balance) they are resampled to equal (language, category, verdict)
    groups first (fwyy_ollama.dataset.balance), tilted by `risky_share`; with `findings`, the
    `findings_share` of them chosen by fwyy_ollama.findings.shown_in_training carry the line.
    """
    from fwyy_ollama.dataset.records import load_records, record_lang, to_messages
    from fwyy_ollama.findings import shown_in_training

    kept: list[dict[str, Any]] = []
    described: list[dict[str, Any]] = []
    for path in files:
        records = load_records(path)  # raises FwyyError naming file:line for a bad record
        records = [r for r in records if record_lang(r) in keep_languages]
        kept.extend(records)
        described.append({"path": str(path.resolve()), "sha256": sha256_file(path), "records": len(records)})
    if balance:
        from fwyy_ollama.dataset.balance import balance_records

        kept = balance_records(kept, seed, risky_share=risky_share)
    conversations = [
        list(
            to_messages(
                r,
                language,
                findings="on" if findings and shown_in_training(r["input"], findings_share) else "off",
            )
        )
        for r in kept
    ]
    if not conversations:
        raise FwyyError(
            f"no training records in {', '.join(str(f) for f in files)}",
            hint="add Alpaca records (instruction, input, output), one JSON object a line",
        )
    return conversations, described


def family_template(profile: Profile) -> tuple[str, str]:
    """(HF chat template, end-of-turn text) of the profile's chat family: what the Modelfile mirrors."""
    from fwyy_ollama.chat_families import get_family

    family = get_family(profile.chat_family)
    return family.hf_chat_template, family.eos_token


@contextlib.contextmanager
def quiet_libraries() -> Any:
    """Keep transformers/datasets/TRL's own bars and notices off the terminal while training.

    fwyy reports progress through its callback; the libraries' tqdm bars and advisory warnings
    (e.g. TRL's note that padding-free is only proven with flash attention, which fwyy checks
    itself) would interleave with it. Restored afterwards.
    """
    try:
        import datasets
        import transformers
    except ImportError:
        yield
        return
    tl = transformers.utils.logging
    bar, verbosity, ds_bar = (
        tl.is_progress_bar_enabled(),
        tl.get_verbosity(),
        datasets.is_progress_bar_enabled(),
    )
    trl_logger = logging.getLogger("trl")
    trl_level = trl_logger.level
    tl.set_verbosity_error()
    tl.disable_progress_bar()
    datasets.disable_progress_bars()
    trl_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tl.set_verbosity(verbosity)
        if bar:
            tl.enable_progress_bar()
        if ds_bar:
            datasets.enable_progress_bars()
        trl_logger.setLevel(trl_level)


def train_adapter(
    profile: Profile | str,
    *,
    data_files: list[str | Path] | None = None,
    out_dir: str | Path,
    max_steps: int | None = None,
    backend: str = "auto",
    resume: bool = False,
    progress: ProgressFn | None = None,
    base_dir: str | Path | None = None,
    padding_free: bool | None = None,
    recipe: str = "auto",
) -> TrainResult:
    """Fine-tune the profile's base with LoRA on the records and write the adapter folder.

    base_dir overrides the profile's base (tests, benchmarks with a local model); padding_free
    forces padding-free batching on or off (default: on where it is exact); recipe "cpu" or "gpu"
    picks the profile's [train] or [train.gpu] whatever the hardware ("auto": gpu with CUDA).
    """
    started = time.perf_counter()
    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    if recipe not in ("auto", "cpu", "gpu"):
        raise FwyyError(f"recipe must be auto, cpu or gpu, not {recipe!r}")
    profile = profile.for_device(gpu=recipe == "gpu" or (recipe == "auto" and cuda_available()))
    steps = int(max_steps or profile.train.max_steps)
    if steps <= 0:
        raise FwyyError(f"--max-steps must be positive, got {steps}")
    out = Path(out_dir).expanduser().resolve()
    _check_replaceable(out)
    chosen = select_backend(backend)
    files = resolve_data_files(profile, data_files)
    conversations, data_described = load_conversations(
        files,
        profile.language,
        profile.train.languages,
        balance=profile.train.balance,
        seed=profile.lora.seed,
        findings=profile.train.findings,
        risky_share=profile.train.risky_share,
        findings_share=profile.train.findings_share,
    )
    chat_template, turn_end = family_template(profile)
    if base_dir is None:
        from fwyy_ollama.base_model import training_base

        # Fetched from the Hub when missing: Unsloth's 4-bit repo for 4-bit Unsloth training, else the base.
        base = training_base(profile, chosen.name, progress=progress)
    else:
        base = Path(base_dir).expanduser()
        if not (base / "config.json").is_file():
            raise FwyyError(f"base model folder {base} has no config.json")
    base = base.resolve()
    rank, world = process_rank()
    checkpoints = checkpoint_dir_for(out)
    job_args: dict[str, Any] = dict(
        profile=profile,
        base_dir=base,
        conversations=conversations,
        chat_template=chat_template,
        turn_end=turn_end,
        max_steps=steps,
        checkpoint_dir=checkpoints,
        resume=resume,
        progress=progress,
        is_main_process=rank == 0,
        padding_free=padding_free,
        seed=profile.lora.seed,
    )
    if rank != 0:
        with quiet_libraries():
            result = _run(chosen, TrainJob(output_dir=None, **job_args))
        return _result(out, checkpoints, chosen.name, result, {}, started)
    with atomic_dir(out) as tmp, quiet_libraries():
        result = _run(chosen, TrainJob(output_dir=tmp, **job_args))
        meta = _metadata(profile, base, chosen, result, data_described, steps, world, started)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return _result(out, checkpoints, chosen.name, result, meta, started)


def cuda_available() -> bool:
    """Whether the GPU recipe ([train.gpu]) applies: an NVIDIA GPU that torch can use."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _run(backend: Any, job: TrainJob) -> BackendResult:
    """backend.train, with running out of (GPU) memory, while loading or training, turned into advice."""
    from fwyy_ollama.finetune.sft import is_oom, oom_error

    try:
        return backend.train(job)
    except Exception as exc:
        if is_oom(exc):
            raise oom_error(job, exc) from None
        raise


def _metadata(
    profile: Profile,
    base: Path,
    backend: Any,
    result: BackendResult,
    data: list[dict[str, Any]],
    max_steps: int,
    world: int,
    started: float,
) -> dict[str, Any]:
    from fwyy_ollama.base_model import base_record

    settings = profile.settings()
    return {
        "format": META_FORMAT,
        "profile": profile.name,
        # Enough to find the base again on another machine (base_model.adapter_base); the folder is a hint.
        "base": base_record(profile, base),
        "base_model_dir": str(base),
        "chat_family": profile.chat_family,
        "language": profile.language,
        "data": data,
        "data_sha256": sha256_json([d["sha256"] for d in data]),
        "steps": result.steps,
        "max_steps": max_steps,
        "final_loss": result.final_loss,
        "first_loss": result.first_loss,
        "losses": result.losses,
        "backend": backend.name,
        "world_size": world,
        "recipe": "gpu" if profile.train_gpu is not None and profile.train == profile.train_gpu else "cpu",
        "versions": {"fwyy": __version__, **backend.versions()},
        "seconds": round(time.perf_counter() - started, 2),
        "train_seconds": round(result.train_seconds, 2),
        "trained_tokens": result.trained_tokens,
        "tokens_per_second": round(result.tokens_per_second, 1) if result.tokens_per_second else None,
        "resumed_from": result.resumed_from,
        "lora": settings["lora"],
        "train": settings["train"],
        "backend_settings": result.settings,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _result(
    out: Path, checkpoints: Path, backend: str, r: BackendResult, meta: dict[str, Any], started: float
) -> TrainResult:
    return TrainResult(
        adapter_dir=out,
        checkpoint_dir=checkpoints,
        backend=backend,
        steps=r.steps,
        final_loss=r.final_loss,
        first_loss=r.first_loss,
        seconds=time.perf_counter() - started,
        tokens_per_second=r.tokens_per_second,
        metadata=meta,
    )

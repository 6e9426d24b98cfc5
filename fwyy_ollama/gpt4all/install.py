"""The export-gpt4all stage: pick the GGUF, make it loadable by GPT4All, copy it into the model
folder, and write the model's settings group for the GPT4All version installed.

Every name that becomes a file or group name (`--name`, or one taken from a GGUF's file name) is
checked before any path is built from it: a name such as ``../x`` would otherwise write outside
GPT4All's model folder.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fwyy_ollama.atomic import atomic_path, write_bytes
from fwyy_ollama.errors import FwyyError, require
from fwyy_ollama.gpt4all.gguf_compat import (
    DEFAULT_PROFILE_QUANT,
    GPU_QUANTS,
    QUANTS,
    compat_changes,
    copy_gguf,
    gguf_metadata,
    gguf_quant,
    requantize,
)
from fwyy_ollama.gpt4all.paths import (
    Version,
    configured_models_dir,
    default_models_dir,
    default_settings_file,
    installed_version,
    parse_app_version,
)
from fwyy_ollama.gpt4all.prompts import (
    LEGACY_KEYS,
    BindingsPrompt,
    _family_template,
    app_settings,
    bindings_prompt,
    default_system_prompt,
    settings_format,
)
from fwyy_ollama.gpt4all.qtini import QtIni

Progress = Callable[[float, "float | None", str], None]

# Profile [parameters] (Ollama names) -> GPT4All model settings keys.
_PARAMETER_KEYS = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "min_p": "minP",
    "repeat_penalty": "repeatPenalty",
    "repeat_last_n": "repeatPenaltyTokens",
    "num_ctx": "contextLength",
    "num_predict": "maxLength",
}

_NAME_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9 ._+()\[\]-]{0,99}\Z")
NAME_RULE = "letters, digits, space and . _ + - ( ) [ ], starting with a letter, digit or '_', at most 100"


def check_model_name(name: str, where: str = "--name") -> str:
    """`name` if it can be a GPT4All model's file name (and settings group), else a FwyyError.

    No path separators and no `..`: the name is joined to the model folder.
    """
    if not _NAME_RE.match(name) or ".." in name:
        raise FwyyError(
            f"{where}: {name!r} cannot name a GPT4All model ({NAME_RULE}, no '..')",
            hint="pass another --name",
        )
    return name


@dataclass(frozen=True)
class GPT4AllExport:
    """What `export_gpt4all` wrote and what a script needs to use it."""

    gguf: Path
    settings_file: Path
    group: str
    name: str
    quant: str
    source: Path
    changes: tuple[str, ...]
    """Sentences saying what was changed for GPT4All (metadata rewrites, requantization)."""
    settings: dict[str, Any]
    """The keys written to the group (chatTemplate, systemMessage, ... or the 3.0-3.4 keys)."""
    system_message: str
    """The plain system message the desktop app puts in `messages`."""
    chat_template: str
    bindings: BindingsPrompt
    gpu_ok: bool
    app_version: str = ""
    """The GPT4All version the settings were written for ("" when unknown)."""
    settings_format: str = "minja"
    """legacy (3.0-3.4), jinja2cpp (3.5-3.7) or minja (3.8+ and unknown)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "gguf": str(self.gguf),
            "models_dir": str(self.gguf.parent),
            "settings_file": str(self.settings_file),
            "settings_group": self.group,
            "name": self.name,
            "quant": self.quant,
            "source": str(self.source),
            "changes": list(self.changes),
            "gpu_ok": self.gpu_ok,
            "gpt4all_version": self.app_version or None,
            "settings_format": self.settings_format,
            "settings": self.settings,
            "system_message": self.system_message,
            "chat_template": self.chat_template,
            "bindings": {
                "model_name": self.gguf.name,
                "model_path": str(self.gguf.parent),
                "system_prompt": self.bindings.system_prompt,
                "prompt_template": self.bindings.prompt_template,
                "note": self.bindings.note,
            },
        }


_QUANT_SUFFIX = re.compile(r"[.-](?:f16|f32|bf16|q\d(?:_[0-9a-z]+)*)$", re.IGNORECASE)


def _base_name(gguf: Path) -> str:
    return _QUANT_SUFFIX.sub("", gguf.name[: -len(".gguf")] if gguf.name.endswith(".gguf") else gguf.stem)


def _profile_gguf(profile: Any, quant: str, out_dir: Path) -> tuple[Path | None, list[str], Path | None]:
    """Where a profile's export starts: (a GGUF, notes, None), or (None, notes, adapter folder)
    when the build has an adapter but no GGUF of `quant` (fwyy's exporter then quantizes the merged
    full-precision weights, better than re-quantizing a 4-bit file)."""
    folder = out_dir / profile.name
    notes: list[str] = []
    for p in (folder / f"{profile.name}.{q}.gguf" for q in (quant, quant.upper())):
        if p.is_file():
            return p, notes, None
    if (folder / "adapter" / "adapter_config.json").is_file():
        return None, notes, folder / "adapter"
    candidates = sorted(folder.glob("*.gguf")) if folder.is_dir() else []
    if candidates:
        # Prefer the least lossy file as the source of a re-quantization.
        rank = {"f32": 0, "f16": 1, "bf16": 1, "q8_0": 2}
        best = min(candidates, key=lambda p: rank.get(gguf_quant(gguf_metadata(p)), 9))
        return best, notes, None
    if profile.base.gguf_package:
        from fwyy_ollama.runtime import demo_gguf

        demo = demo_gguf()
        if demo is not None and profile.base.gguf_file == demo.name:
            notes.append(f"no build output in {folder}: exported the profile's base model {demo.name}")
            return demo, notes, None
    raise FwyyError(
        f"no GGUF built for profile {profile.name!r} in {folder}",
        hint=f"run `fwyy build -p {profile.name}` first, or pass --gguf FILE",
    )


def _source(
    gguf: str | os.PathLike[str] | None,
    prof: Any,
    quant: str | None,
    out_dir: Path,
    progress: Progress | None,
) -> tuple[Path, str | None, list[str]]:
    """The GGUF to export, the quantization asked for, and notes on how it was found or made."""
    if gguf is not None:
        source = Path(gguf)
        if not source.is_file():
            raise FwyyError(f"{source}: no such GGUF file")
        return source, quant, []
    quant = quant or DEFAULT_PROFILE_QUANT
    found, notes, adapter = _profile_gguf(prof, quant, out_dir)
    if adapter is None:
        assert found is not None
        return found, quant, notes
    from fwyy_ollama.chat_families import get_family
    from fwyy_ollama.export import export_gguf

    source = out_dir / prof.name / f"{prof.name}.{quant}.gguf"
    if progress:
        progress(0, None, f"exporting {adapter} as {quant}")
    export_gguf(adapter_dir=adapter, out=source, quant=quant, progress=progress,
                chat_template=get_family(prof.chat_family).hf_chat_template)  # fmt: skip
    return source, quant, [*notes, f"exported {quant} from the adapter merged into its base: {source}"]


def _install_gguf(
    source: Path, meta: Mapping[str, Any], target_quant: str, dest: Path, progress: Progress | None
) -> list[str]:
    """Copy `source` to `dest` as GPT4All needs it (re-quantized, pre-tokenizer renamed); notes."""
    changes: list[str] = []
    src_quant = gguf_quant(meta)
    work = source
    if target_quant != src_quant:
        if progress:
            progress(0, None, f"converting {src_quant} -> {target_quant}")
        work = dest.parent / f".{dest.name}.requant"
        requantize(source, work, target_quant)
        lossy = src_quant not in ("f32", "f16", "bf16", "q8_0")
        changes.append(
            f"quantization {src_quant} -> {target_quant}"
            + (" (re-quantized from an already 4-bit file: expect some extra quality loss)" if lossy else "")
        )
    try:
        fixes = compat_changes(gguf_metadata(work) if work != source else meta)
        for key, (old, new) in fixes.items():
            changes.append(
                f"{key}: {old!r} -> {new!r} (GPT4All 2.8's llama.cpp refuses {old!r}; same tokenization)"
            )
        if fixes or work != source:
            copy_gguf(work, dest, set_values={k: new for k, (_, new) in fixes.items()}, progress=progress)
        else:
            with atomic_path(dest) as tmp:
                _copy_file(source, tmp, progress)
    finally:
        if work != source:
            work.unlink(missing_ok=True)
    return changes


def _app_version(settings_path: Path, gpt4all_version: str | None) -> tuple[Version | None, list[str]]:
    """The GPT4All version to write for: --gpt4all-version, else the one that last ran."""
    if gpt4all_version:
        return parse_app_version(gpt4all_version, "--gpt4all-version"), []
    found = installed_version(settings_path)
    if found is None:
        return None, [
            f"GPT4All's version is unknown ({settings_path} has no lastVersionStarted): wrote the keys "
            "GPT4All 3.5+ reads; for 3.0-3.4 pass --gpt4all-version"
        ]
    return found, []


def export_gpt4all(
    *,
    gguf: str | os.PathLike[str] | None = None,
    profile: Any = None,
    quant: str | None = None,
    models_dir: str | os.PathLike[str] | None = None,
    settings_file: str | os.PathLike[str] | None = None,
    name: str | None = None,
    system: str | None = None,
    lang: str | None = None,
    chat_family: str | None = None,
    gpt4all_version: str | None = None,
    out_dir: str | os.PathLike[str] = "out",
    progress: Progress | None = None,
) -> GPT4AllExport:
    """Put a GGUF into GPT4All's model folder and write its settings group.

    From a profile the default quantization is q4_0 (GPT4All's GPU path runs q4_0, q4_1, f16);
    with `gguf` the file's own quantization is kept unless `quant` asks for another. The settings
    keys are those the GPT4All version reads (`gpt4all_version`, else the version that last ran
    with the settings file; see fwyy_ollama.gpt4all.prompts).
    """
    from fwyy_ollama.profiles import load_profile

    if quant is not None and quant not in QUANTS:
        raise FwyyError(f"--quant {quant!r} is not one of {', '.join(QUANTS)}")
    if name is not None:
        check_model_name(name)
    settings_path = Path(settings_file) if settings_file else default_settings_file()
    version, changes = _app_version(settings_path, gpt4all_version)
    fmt = settings_format(version)  # an unsupported version stops here, before any work
    prof = None
    if profile is not None:
        prof = load_profile(profile) if isinstance(profile, (str, os.PathLike)) else profile
    if gguf is None:
        prof = prof or load_profile(None)
    base = name or (prof.name if prof and gguf is None else _base_name(Path(gguf or "")))
    check_model_name(base, "--name" if name else "the model name taken from the GGUF's file name")
    source, quant, notes = _source(gguf, prof, quant, Path(out_dir), progress)
    changes += notes
    meta = gguf_metadata(source)
    target_quant = quant or gguf_quant(meta)
    filename = check_model_name(f"{base}.{target_quant}.gguf", "the model file name")
    folder = (
        Path(models_dir) if models_dir else (configured_models_dir(settings_path) or default_models_dir())
    )
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / filename
    changes += _install_gguf(source, meta, target_quant, dest, progress)

    family = chat_family or (prof.chat_family if prof else "chatml")
    template, bos, eos = _family_template(family)
    system_message = (
        system if system is not None else default_system_prompt(lang or (prof.language if prof else "en"))
    )
    prompt_values, remove, note = app_settings(version, template, system_message, bos=bos, eos=eos)
    if note:
        changes.append(f"GPT4All {'.'.join(map(str, version or ()))}: {note}")
    values: dict[str, Any] = {"filename": filename, "name": f"{base} (fwyy)", **prompt_values}
    if prof is not None:
        for key, value in prof.parameters.items():
            if key in _PARAMETER_KEYS and isinstance(value, (int, float)):
                values[_PARAMETER_KEYS[key]] = value
    group = f"model-{filename}"
    write_settings(settings_path, group, values, remove=remove)
    return GPT4AllExport(
        gguf=dest,
        settings_file=settings_path,
        group=group,
        name=values["name"],
        quant=target_quant,
        source=source,
        changes=tuple(changes),
        settings=values,
        system_message=system_message,
        chat_template=template,
        bindings=bindings_prompt(template, system_message, bos=bos, eos=eos),
        gpu_ok=target_quant in GPU_QUANTS,
        app_version=".".join(map(str, version)) if version else "",
        settings_format=fmt,
    )


def _copy_file(src: Path, dst: Path, progress: Progress | None) -> None:
    total = src.stat().st_size
    done = 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(8 << 20):
            fout.write(chunk)
            done += len(chunk)
            if progress:
                progress(done >> 20, total >> 20, "copying (MiB)")


def write_settings(
    path: Path, group: str, values: Mapping[str, Any], *, remove: tuple[str, ...] = LEGACY_KEYS
) -> Path:
    """Set `values` in `group` of GPT4All's INI file (other groups byte-identical), atomically."""
    data = path.read_bytes() if path.is_file() else b""
    new = QtIni(data).set_group(group, values, remove=remove)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes(path, new)


# ---------------------------------------------------------------------------------------- checking


def check_loads(gguf: str | os.PathLike[str], *, n_ctx: int = 512) -> bool:
    """True when gpt4all's own llama.cpp loads the file (it only logs on failure, never raises)."""
    require("gpt4all", "gpt4all", "Checking a GPT4All export")
    from fwyy_ollama.quiet import quiet_fds

    with quiet_fds():  # gpt4all prints its dlopen attempts and llama.cpp's load log on fds 1/2
        from gpt4all._pyllmodel import LLModel

        # gpt4all itself asks for "kompute" with no GPU initialised when device="cpu" (macOS: "cpu").
        model = LLModel(str(gguf), n_ctx, 0, "cpu" if sys.platform == "darwin" else "kompute")
        try:
            return bool(model.load_model())
        finally:
            model.close()

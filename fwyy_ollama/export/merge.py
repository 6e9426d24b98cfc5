"""Read HF weights tensor by tensor (row slices, no torch) and merge a LoRA adapter into them.

Why our own safetensors reader: numpy cannot hold bfloat16 and torch is not part of the core
install; the format is a JSON header plus raw little-endian arrays, so row slices are read with
pread into small buffers. Nothing is memory-mapped, so peak memory follows the slice being
worked on, not the model (an mmap would count every touched page of the file as resident).

The merge is W' = W + scale * B @ A, done in float32 on the rows being written, before the one
cast to the output type.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fwyy_ollama.errors import FwyyError

_OPEN_LOCK = threading.Lock()

_DTYPES: dict[str, tuple[str, int]] = {
    "F32": ("<f4", 4),
    "F16": ("<f2", 2),
    "BF16": ("<u2", 2),
    "F64": ("<f8", 8),
}


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor's bytes are in a .safetensors file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: Path
    offset: int
    nbytes: int

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def row_elems(self) -> int:
        return math.prod(self.shape[1:]) if len(self.shape) > 1 else (1 if self.shape else 1)


# Bytes per element of every safetensors dtype (those fwyy cannot convert are still checked).
_ITEMSIZE: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4,
    "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip
MAX_HEADER_BYTES = 100 << 20
"""The safetensors format's own limit on the JSON header (the reference reader refuses more)."""


def read_safetensors_header(path: Path) -> tuple[dict[str, TensorRef], dict[str, str]]:
    """Parse one .safetensors file's header into TensorRefs (and its __metadata__).

    The file is untrusted: the header length is checked against the file's size before it is
    read, and every tensor's dtype, shape and byte range against each other and against the file,
    so a hostile header is a FwyyError rather than a huge allocation or a read past the end.
    """

    def bad(problem: str) -> FwyyError:
        return FwyyError(f"{path}: not a valid safetensors file: {problem}")

    try:
        with open(path, "rb") as fh:
            file_size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            if len(head) < 8:
                raise bad(f"{file_size} bytes, shorter than the 8-byte header length")
            (size,) = struct.unpack("<Q", head)
            if size > MAX_HEADER_BYTES:
                raise bad(f"header length {size} is over the format's limit of {MAX_HEADER_BYTES} bytes")
            if 8 + size > file_size:
                raise bad(f"header length {size} runs past the end of the {file_size}-byte file")
            header = json.loads(fh.read(size))
    except OSError as exc:
        raise FwyyError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise bad(f"the header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    base = 8 + size
    data_size = file_size - base
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict):
        raise bad("__metadata__ is not an object")
    refs = {}
    for name, info in header.items():
        refs[name] = _tensor_ref(path, name, info, base, data_size, bad)
    return refs, {str(k): str(v) for k, v in meta.items()}


def _tensor_ref(path: Path, name: str, info: Any, base: int, data_size: int, bad: Any) -> TensorRef:
    """One header entry as a TensorRef, after checking it describes bytes that are in the file."""
    if not isinstance(info, dict):
        raise bad(f"tensor {name!r}: expected an object with dtype, shape and data_offsets")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in _ITEMSIZE:
        raise bad(f"tensor {name!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise bad(f"tensor {name!r}: shape {shape!r} is not a list of non-negative integers")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(o) is int for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise bad(f"tensor {name!r}: data_offsets {offsets!r} is not [start, end] with 0 <= start <= end")
    start, end = offsets
    if end > data_size:
        raise bad(f"tensor {name!r} ends at byte {end} of a {data_size}-byte data section (truncated?)")
    want = math.prod(shape) * _ITEMSIZE[dtype]
    if end - start != want:
        raise bad(f"tensor {name!r}: {dtype} {shape} needs {want} bytes, its offsets span {end - start}")
    return TensorRef(name, dtype, tuple(shape), path, base + start, end - start)


class WeightSource:
    """All tensors of an HF folder (single file or shards), read as float32 row slices."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        files = sorted(folder.glob("*.safetensors"))
        files = [f for f in files if not f.name.startswith(("adapter_", "."))]
        if not files:
            hint = None
            if list(folder.glob("pytorch_model*.bin")):
                hint = "re-save it with save_pretrained(..., safe_serialization=True)"
            raise FwyyError(f"{folder}: no *.safetensors weights found", hint=hint)
        self.tensors: dict[str, TensorRef] = {}
        for f in files:
            refs, _ = read_safetensors_header(f)
            self.tensors.update(refs)
        self._fds: dict[Path, int] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def ref(self, name: str) -> TensorRef:
        return self.tensors[name]

    def _fd(self, path: Path) -> int:
        # pread on a shared descriptor is safe from several threads; opening is not, so lock it
        with _OPEN_LOCK:
            fd = self._fds.get(path)
            if fd is None:
                fd = self._fds[path] = os.open(path, os.O_RDONLY)
            return fd

    def read_rows(self, name: str, r0: int, r1: int) -> np.ndarray:
        return read_rows(self.tensors[name], r0, r1, self._fd(self.tensors[name].file))

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def read_rows(ref: TensorRef, r0: int, r1: int, fd: int) -> np.ndarray:
    """Rows r0:r1 of a tensor as a float32 array of shape (r1-r0, *shape[1:])."""
    if ref.dtype not in _DTYPES:
        raise FwyyError(
            f"{ref.file.name}: tensor {ref.name} has dtype {ref.dtype}; fwyy reads F32/F16/BF16 weights "
            "(a 4-bit or 8-bit quantized checkpoint cannot be exported; use the 16-bit original)"
        )
    np_dtype, size = _DTYPES[ref.dtype]
    if not 0 <= r0 <= r1 <= ref.rows:
        raise FwyyError(f"{ref.file}: rows {r0}:{r1} are outside tensor {ref.name} ({ref.rows} rows)")
    row_bytes = ref.row_elems * size
    want = (r1 - r0) * row_bytes
    buf = os.pread(fd, want, ref.offset + r0 * row_bytes)
    if len(buf) != want:
        raise FwyyError(f"{ref.file}: file ends inside tensor {ref.name} (truncated download?)")
    raw = np.frombuffer(buf, dtype=np_dtype)
    if ref.dtype == "BF16":  # widened and shifted in one pass: no second float32-sized temporary
        out = np.left_shift(raw, 16, dtype=np.uint32).view(np.float32)
    else:
        out = raw.astype(np.float32)
    shape = (r1 - r0, *ref.shape[1:]) if ref.shape else ()
    return out.reshape(shape)


# --------------------------------------------------------------------------------------- LoRA

_LORA_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+?)\.(?P<kind>lora_A|lora_B|lora_embedding_A|lora_embedding_B)(?:\.[A-Za-z0-9_]+)?(?:\.weight)?$"
)


@dataclass
class LoraPair:
    module: str
    scale: float
    a: np.ndarray | None = None  # (r, in) for Linear; (r, num_embeddings) for Embedding
    b: np.ndarray | None = None  # (out, r) for Linear; (dim, r) for Embedding
    embedding: bool = False
    fan_in_fan_out: bool = False

    def delta_rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows r0:r1 of scale * (B @ A), in the layout of the base weight (out, in)."""
        assert self.a is not None and self.b is not None
        if self.embedding:
            return (self.a[:, r0:r1].T @ self.b.T) * self.scale
        if self.fan_in_fan_out:
            return (self.b @ self.a).T[r0:r1] * self.scale
        return (self.b[r0:r1] @ self.a) * self.scale


@dataclass
class LoraAdapter:
    """A PEFT LoRA adapter held in float32 (small: r * (in + out) per module)."""

    folder: Path
    config: dict[str, Any]
    pairs: dict[str, LoraPair] = field(default_factory=dict)  # base weight name -> pair
    replacements: dict[str, str] = field(default_factory=dict)  # base tensor name -> adapter key
    source: WeightSource | None = None

    def delta_rows(self, weight_name: str, r0: int, r1: int) -> np.ndarray | None:
        pair = self.pairs.get(weight_name)
        return None if pair is None else pair.delta_rows(r0, r1)

    @property
    def n_modules(self) -> int:
        return len(self.pairs)


def _pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    """PEFT's rank_pattern / alpha_pattern lookup: a key matches the module name's tail."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?{key}$", module):
            return value
    return default


def load_adapter(folder: Path, base: WeightSource) -> LoraAdapter:
    """Read adapter_config.json + adapter_model.safetensors and check them against the base."""
    cfg_path = folder / "adapter_config.json"
    weights = folder / "adapter_model.safetensors"
    if not cfg_path.is_file():
        raise FwyyError(f"{folder}: adapter_config.json is missing (is this a PEFT adapter folder?)")
    if not weights.is_file():
        hint = (
            "re-save the adapter with safe_serialization=True"
            if (folder / "adapter_model.bin").is_file()
            else None
        )
        raise FwyyError(f"{folder}: adapter_model.safetensors is missing", hint=hint)
    config = _small_json(cfg_path)
    peft_type = str(config.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise FwyyError(f"{cfg_path}: peft_type {peft_type} is not supported; fwyy merges LoRA adapters")
    if config.get("use_dora"):
        raise FwyyError(
            f"{cfg_path}: use_dora is true; fwyy merges plain LoRA adapters only (train without DoRA)"
        )
    try:
        r = int(config.get("r", 8))
        alpha = float(config.get("lora_alpha", r))
    except (TypeError, ValueError):
        raise FwyyError(f"{cfg_path}: r and lora_alpha must be numbers") from None
    if r <= 0:
        raise FwyyError(f"{cfg_path}: r must be positive, got {r}")
    rslora = bool(config.get("use_rslora", False))
    fan = bool(config.get("fan_in_fan_out", False))

    src = WeightSource.__new__(WeightSource)
    src.folder = folder
    src.tensors, _ = read_safetensors_header(weights)
    src._fds = {}
    adapter = LoraAdapter(folder, config, source=src)
    for key, ref in src.tensors.items():
        m = _LORA_KEY.match(key)
        if m is None:
            # modules_to_save (e.g. a retrained lm_head): a whole replacement tensor
            name = key.removeprefix("base_model.model.")
            name = re.sub(r"\.modules_to_save\.[A-Za-z0-9_]+\.", ".", name)
            name = re.sub(r"\.original_module\.", ".", name)
            if name not in base:
                raise FwyyError(f"{weights}: tensor {key} matches no tensor of the base model ({name})")
            if tuple(base.ref(name).shape) != tuple(ref.shape):
                raise FwyyError(
                    f"{weights}: {key} has shape {ref.shape}, base {name} has {base.ref(name).shape}"
                )
            adapter.replacements[name] = key
            continue
        module, kind = m.group("module"), m.group("kind")
        weight_name = f"{module}.weight"
        if weight_name not in base:
            raise FwyyError(
                f"{weights}: LoRA module {module} matches no weight of the base model "
                "(was the adapter trained on a different base?)"
            )
        rank = int(_pattern_value(config.get("rank_pattern", {}), module, r))
        a_alpha = float(_pattern_value(config.get("alpha_pattern", {}), module, alpha))
        scale = a_alpha / math.sqrt(rank) if rslora else a_alpha / rank
        pair = adapter.pairs.setdefault(weight_name, LoraPair(module, scale, fan_in_fan_out=fan))
        fd = src._fd(weights)
        arr = read_rows(ref, 0, ref.rows, fd)
        if kind in ("lora_A", "lora_embedding_A"):
            pair.a = arr
        else:
            pair.b = arr
        pair.embedding = kind.startswith("lora_embedding")
    for weight_name, pair in adapter.pairs.items():
        if pair.a is None or pair.b is None:
            raise FwyyError(f"{weights}: LoRA module {pair.module} has only one of lora_A / lora_B")
        base_shape = base.ref(weight_name).shape
        out, inp = (pair.b.shape[0], pair.a.shape[1])
        expect = (inp, out) if (pair.embedding or pair.fan_in_fan_out) else (out, inp)
        if tuple(base_shape) != expect:
            raise FwyyError(
                f"{weights}: LoRA for {weight_name} gives shape {expect}, the base has {tuple(base_shape)} "
                "(adapter and base model do not belong together)"
            )
    if not adapter.pairs and not adapter.replacements:
        raise FwyyError(f"{weights}: the adapter holds no LoRA weights")
    return adapter


# ------------------------------------------------------------------------- finding the base

MAX_JSON_BYTES = 16 << 20
"""adapter_config.json and fwyy-adapter.json are kilobytes; a larger one is not read."""


def _small_json(path: Path) -> dict[str, Any]:
    """A small JSON object file, or a FwyyError naming it (too big, not JSON, not an object)."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise FwyyError(f"{path}: {size} bytes, more than the {MAX_JSON_BYTES} a settings file may have")
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FwyyError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:
        raise FwyyError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise FwyyError(f"{path}: expected a JSON object")
    return value



@dataclass(frozen=True)
class BaseChoice:
    """Which base weights an adapter is merged into, and why (shown to the user)."""

    folder: Path
    description: str
    hf_id: str = ""
    trained_on: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _is_quantized(folder: Path) -> bool:
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    q = cfg.get("quantization_config") or {}
    return bool(q) and str(q.get("quant_method", "")).lower() in ("bitsandbytes", "gptq", "awq", "bnb")


def _hf_cache_dirs(hf_id: str) -> Iterable[Path]:
    """Snapshot folders of `hf_id` in the local Hugging Face cache (never downloads)."""
    roots = []
    if os.environ.get("HF_HUB_CACHE"):
        roots.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        roots.append(Path(os.environ["HF_HOME"]) / "hub")
    roots.append(Path.home() / ".cache" / "huggingface" / "hub")
    for root in roots:
        snaps = root / ("models--" + hf_id.replace("/", "--")) / "snapshots"
        if snaps.is_dir():
            yield from sorted(snaps.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)


def _sixteen_bit_candidates(info: dict[str, Any], trained_id: str) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for key in ("base_16bit_dir", "base_model_16bit_dir"):
        if info.get(key):
            out.append((str(info[key]), Path(info[key])))
    ids = []
    base = info.get("base") if isinstance(info.get("base"), dict) else {}
    for k in ("hf_id", "base_hf_id"):
        if base.get(k):
            ids.append(str(base[k]))
        if info.get(k):
            ids.append(str(info[k]))
    if trained_id:
        stripped = re.sub(r"-(bnb-4bit|unsloth-bnb-4bit|4bit|bnb-8bit)$", "", trained_id)
        if stripped != trained_id:
            ids.append(stripped)
    for hf_id in dict.fromkeys(ids):
        for snap in _hf_cache_dirs(hf_id):
            out.append((hf_id, snap))
    return out


def _has_weights(folder: Path) -> bool:
    return folder.is_dir() and (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def resolve_adapter_base(adapter_dir: Path) -> BaseChoice:
    """Find the base an adapter belongs to: fwyy-adapter.json first, then adapter_config.json.

    When training used a 4-bit base, the 16-bit original is preferred when it is on this machine;
    a 4-bit base alone is refused (its weights cannot be written as a faithful GGUF).
    """
    info: dict[str, Any] = {}
    meta = adapter_dir / "fwyy-adapter.json"
    if meta.is_file():
        info = _small_json(meta)
    base_info = info.get("base") if isinstance(info.get("base"), dict) else {}
    candidates: list[str] = []
    for value in (
        info.get("base_model_dir"),
        base_info.get("base_model_dir"),
        base_info.get("local_dir"),
        base_info.get("dir"),
    ):
        if value:
            candidates.append(str(value))
    trained_id = str(base_info.get("hf_id") or info.get("base_hf_id") or "")
    cfg_path = adapter_dir / "adapter_config.json"
    if cfg_path.is_file():
        try:
            name = json.loads(cfg_path.read_text(encoding="utf-8")).get("base_model_name_or_path") or ""
        except json.JSONDecodeError as exc:
            raise FwyyError(f"{cfg_path}: not valid JSON ({exc})") from exc
        if name and Path(name).is_dir():
            candidates.append(name)
        elif name and not trained_id:
            trained_id = name
    folder = next((Path(c) for c in candidates if _has_weights(Path(c))), None)
    if folder is None:
        for hf_id, snap in _sixteen_bit_candidates(info, trained_id):
            if _has_weights(snap) and not _is_quantized(snap):
                return BaseChoice(snap, f"16-bit {hf_id} from the local HF cache ({snap})", hf_id, None, info)
        # Trained elsewhere (the recorded folder is only a hint): find the base again from what the
        # adapter records, fetching it from the Hub when it is not here.
        from fwyy_ollama.base_model import adapter_base

        found, hf_id = adapter_base(adapter_dir)
        return BaseChoice(found, f"{hf_id or found} ({found}), as the adapter records", hf_id, None, info)
    if _is_quantized(folder):
        for hf_id, snap in _sixteen_bit_candidates(info, trained_id):
            if _has_weights(snap) and not _is_quantized(snap):
                return BaseChoice(
                    snap,
                    f"16-bit original {hf_id} ({snap}); training used the quantized base {folder}",
                    hf_id,
                    folder,
                    info,
                )
        # The 16-bit original is not here: fetch it (the adapter records its id and base spec).
        from fwyy_ollama.base_model import adapter_base

        try:
            found, hf_id = adapter_base(adapter_dir)
        except FwyyError as exc:
            raise FwyyError(
                f"the adapter was trained on a quantized base ({folder}); fwyy merges into the original 16-bit "
                f"weights, and {exc.message}",
                hint=exc.hint,
            ) from None
        return BaseChoice(
            found, f"16-bit original {hf_id} ({found}); training used the quantized base {folder}", hf_id, folder, info
        )
    return BaseChoice(folder, f"{folder} (the base recorded by the adapter)", trained_id, None, info)

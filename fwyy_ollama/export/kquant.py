"""K-quants written directly: llama.cpp's per-tensor types and ggml's own quantizer, no f16 file.

llama.cpp makes a K-quant GGUF from an f16/bf16 one: it picks each tensor's type (llama.cpp's
llama_tensor_get_type: output -> Q6_K, attn_v / ffn_down bumped in the layers use_more_bits picks,
fallbacks when a row is not a whole number of 256-blocks, ...), turns the f16 values back into
float32 and calls ggml_quantize_chunk. Writing that f16 file and reading it back cost more than
the quantizing itself, and llama.cpp quantizes one tensor at a time. So fwyy does the same steps
while it streams the source weights: the same type rules (restated below from llama.cpp's
src/llama-quant.cpp for the file types fwyy offers), the values rounded to the f16/bf16 the file
would have held, and the same ggml_quantize_chunk, from the libggml-base that llama-cpp-python
ships, called through ctypes (which lets go of the GIL, so the converter's thread pool keeps every
core busy on row slices). The result has the tensors, types and bytes llama.cpp would write
(tests/test_export_kquant.py compares them tensor by tensor).

Where that cannot be promised (a file type or model shape the rules here do not cover, no
libggml, a ggml whose type table differs from gguf's, FWYY_LLAMA_QUANTIZE naming a binary, or
FWYY_KQUANT_DIRECT=0), `prepare` says why and the export takes the f16 + llama.cpp path.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.export.quantize import QuantType, quantize_array

# the shared library llama-cpp-python installs next to its Python code (llama_cpp/lib/)
LIB_NAMES = ("libggml-base.so", "libggml-base.dylib", "ggml-base.dll")

# the quantized types the direct path may write: each must mean the same thing to ggml and gguf
_TYPES = ("F16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")

# file type -> the type of the bulk of the weights (llama_ftype_get_default_type)
_DEFAULT_TYPE = {
    "q2_k": "Q2_K",
    "q3_k_s": "Q3_K",
    "q3_k_m": "Q3_K",
    "q3_k_l": "Q3_K",
    "q4_k_s": "Q4_K",
    "q4_k_m": "Q4_K",
    "q5_k_s": "Q5_K",
    "q5_k_m": "Q5_K",
    "q6_k": "Q6_K",
}

# a row that is not a whole number of blocks of the chosen type gets this one instead
_FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}

_LAYER = re.compile(r"^blk\.(\d+)\.")


# ------------------------------------------------------------------------------ libggml


class Ggml:
    """ggml_quantize_chunk and friends from one libggml-base, checked against gguf's type table."""

    def __init__(self, path: Path) -> None:
        self.path = path
        lib = ctypes.CDLL(str(path))
        lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        lib.ggml_quantize_chunk.argtypes = [
            ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
        ]  # fmt: skip
        lib.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
        lib.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
        lib.ggml_validate_row_data.restype = ctypes.c_bool
        lib.ggml_validate_row_data.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        lib.ggml_row_size.restype = ctypes.c_size_t
        lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
        lib.ggml_type_name.restype = ctypes.c_char_p
        lib.ggml_type_name.argtypes = [ctypes.c_int]
        self.lib = lib

    def mismatch(self) -> str | None:
        """Why this ggml's type numbers or sizes differ from the gguf package's, or None."""
        import gguf

        for name in _TYPES:
            qtype = gguf.GGMLQuantizationType[name]
            block, size = gguf.GGML_QUANT_SIZES[qtype]
            got = (self.lib.ggml_type_name(int(qtype)) or b"").decode().upper()
            if got != name or self.lib.ggml_row_size(int(qtype), block) != size:
                return f"{self.path}: ggml type {int(qtype)} is {got or '?'}, gguf says {name}"
            if self.lib.ggml_quantize_requires_imatrix(int(qtype)):
                return f"{self.path}: ggml wants an importance matrix for {name}"
        return None

    def quantize_rows(self, x: np.ndarray, qtype: Any) -> np.ndarray:
        """float32 rows (rows, n) -> the bytes ggml_quantize_chunk makes of them, checked as llama.cpp does."""
        rows, n = x.shape
        out = np.empty(rows * self.lib.ggml_row_size(int(qtype), n), dtype=np.uint8)
        size = self.lib.ggml_quantize_chunk(int(qtype), x.ctypes.data, out.ctypes.data, 0, rows, n, None)
        if size != out.nbytes or not self.lib.ggml_validate_row_data(int(qtype), out.ctypes.data, size):
            raise FwyyError(
                f"ggml could not quantize a slice to {qtype.name} (NaN or infinite weights?)",
                hint="check the model's weights; llama.cpp refuses such a tensor too",
            )
        return out


def find_libggml() -> Path | None:
    """libggml-base inside the installed llama_cpp package (found without importing it), or None."""
    try:
        spec = importlib.util.find_spec("llama_cpp")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for name in LIB_NAMES:
            path = Path(folder) / "lib" / name
            if path.is_file():
                return path
    return None


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> Ggml | str:
    try:
        ggml = Ggml(path)
    except (OSError, AttributeError) as exc:
        return f"{path}: {exc}"
    return ggml.mismatch() or ggml


def load_ggml() -> Ggml | str:
    """The checked libggml, or a sentence saying why there is none."""
    path = find_libggml()
    if path is None:
        return "llama-cpp-python's libggml-base was not found"
    return _load(path)


# ------------------------------------------------------------------------------ type rules


def _use_more_bits(i: int, n: int) -> bool:
    """The layers llama.cpp gives more bits: the first and last eighth, and every third between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _category(name: str) -> str:
    """llama.cpp's tensor categories that its type rules look at (the rest are "other")."""
    if name == "output.weight":
        return "output"
    if name == "token_embd.weight":
        return "token_embd"
    for key in ("attn_v.weight", "attn_k.weight", "attn_q.weight", "attn_output.weight"):
        if key in name:
            return key.split(".")[0]
    for key in ("ffn_up", "ffn_gate", "ffn_down"):
        if key in name:
            return key
    return "other"


def quantizable(name: str, shape: tuple[int, ...]) -> bool:
    """Whether llama.cpp quantizes this tensor at all (for the names llama / qwen2 GGUFs have).

    ggml counts dimensions from the row length outwards, so a (1, n) array is 1-D to it.
    """
    dims = len(shape)
    while dims > 1 and shape[len(shape) - dims] == 1:
        dims -= 1
    return dims >= 2 and name.endswith("weight") and "_norm.weight" not in name


@dataclass(frozen=True)
class ModelShape:
    """What llama.cpp's type rules read from the model besides a tensor's name and row length."""

    n_attn_v: int  # attn_v tensors in the file (llama.cpp counts them)
    n_layers: int
    n_gqa: int  # query heads per key/value head
    tied: bool  # no output.weight: the token embedding is the output projection too


def ggml_type_for(name: str, ncols: int, q: QuantType, m: ModelShape) -> str:
    """The GGML type name llama.cpp's quantizer gives tensor `name` at file type `q`.

    llama.cpp counts attn_v and ffn_down tensors in file order, which is layer order for llama
    and qwen2 (one of each per layer), so the counter is the layer number in the name.
    """
    import gguf

    default = _DEFAULT_TYPE[q.name]
    cat = _category(name)
    found = _LAYER.match(name)
    layer = int(found.group(1)) if found else 0
    if cat == "output" or (m.tied and cat == "token_embd"):
        block = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[default]][0]
        kind = "Q8_0" if ncols % block else "Q6_K"
    elif cat == "attn_v":
        kind = _attn_v_type(q.name, layer, m) or default
    elif cat == "ffn_down":
        kind = _ffn_down_type(q.name, layer, m.n_layers) or default
    elif cat == "attn_output":
        kind = {"q2_k": "Q3_K", "q3_k_m": "Q4_K", "q3_k_l": "Q5_K"}.get(q.name, default)
    else:
        kind = default
    return _fit(kind, ncols)


def _attn_v_type(ftype: str, i: int, m: ModelShape) -> str | None:
    """attn_v of the i-th layer: more bits than the bulk (it is small and sensitive)."""
    if ftype == "q2_k":
        return "Q4_K" if m.n_gqa >= 4 else "Q3_K"
    if ftype == "q3_k_m":
        return "Q5_K" if i < 2 else "Q4_K"
    if ftype == "q3_k_l":
        return "Q5_K"
    if ftype in ("q4_k_m", "q5_k_m") and _use_more_bits(i, m.n_attn_v):
        return "Q6_K"
    if ftype == "q4_k_s" and i < 4:
        return "Q5_K"
    return None


def _ffn_down_type(ftype: str, i: int, n: int) -> str | None:
    """ffn_down of layer i of n: more bits in the first layers (or those use_more_bits picks)."""
    if ftype == "q2_k":
        return "Q3_K"
    if ftype == "q3_k_m":
        return "Q5_K" if i < n // 16 else "Q4_K"
    if ftype == "q3_k_l":
        return "Q5_K"
    if ftype in ("q4_k_m", "q5_k_m") and _use_more_bits(i, n):
        return "Q6_K"
    if ftype == "q4_k_s" and i < n // 8:
        return "Q5_K"
    return None


def _fit(kind: str, ncols: int) -> str:
    """llama.cpp's fallback for rows that are not whole blocks: a 32-block type, else F16."""
    import gguf

    def block(k: str) -> int:
        return gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[k]][0]

    if ncols % block(kind) == 0:
        return kind
    if kind not in _FALLBACK:
        raise _NotCovered(f"llama.cpp has no fallback type for {kind} rows of {ncols}")
    kind = _FALLBACK[kind]
    return kind if ncols % block(kind) == 0 else "F16"


class _NotCovered(Exception):
    """A case where the direct path would not match llama.cpp: take the f16 + llama.cpp path."""


# ------------------------------------------------------------------------------ planning


@dataclass(frozen=True)
class Direct:
    """A K-quant export that needs no f16 file: the library and, per GGUF tensor, its type."""

    ggml: Ggml
    types: dict[str, Any]  # GGUF tensor name -> gguf.GGMLQuantizationType


def prepare(q: QuantType, spec: Any, jobs: Iterable[Any]) -> Direct | str:
    """The direct plan for K-quant `q`, or why the export must go through f16 + llama.cpp.

    `spec` is the converter's ModelSpec; `jobs` its TensorJobs (name, shape, planned type).
    """
    import gguf

    jobs = list(jobs)
    if os.environ.get("FWYY_KQUANT_DIRECT", "1").strip().lower() in ("0", "no", "false", "off"):
        return "FWYY_KQUANT_DIRECT=0"
    if os.environ.get("FWYY_LLAMA_QUANTIZE"):
        return "FWYY_LLAMA_QUANTIZE names the llama.cpp to use"
    if q.name not in _DEFAULT_TYPE:
        return f"{q.name} is not one of the file types fwyy quantizes itself"
    if spec.arch not in ("llama", "qwen2"):
        return f"llama.cpp's type rules for {spec.arch} are not restated here"
    if spec.n_layers == 80:
        return "llama.cpp gives 80-layer (70B) models their own attn_v rule"
    names = [j.gguf_name for j in jobs]
    n_attn_v = sum(_category(n) == "attn_v" for n in names)
    for cat in ("attn_v", "ffn_down"):  # llama.cpp counts them; one per layer makes that the layer
        count = sum(_category(n) == cat for n in names)
        if count not in (0, spec.n_layers):
            return f"{count} {cat} tensors for {spec.n_layers} layers"
    shape = ModelShape(
        n_attn_v=n_attn_v,
        n_layers=spec.n_layers,
        n_gqa=spec.n_head // max(1, spec.n_head_kv),
        tied="output.weight" not in names,
    )
    types: dict[str, Any] = {}
    try:
        for job in jobs:
            if quantizable(job.gguf_name, job.shape):
                kind = ggml_type_for(job.gguf_name, job.shape[-1], q, shape)
                types[job.gguf_name] = gguf.GGMLQuantizationType[kind]
            else:
                types[job.gguf_name] = job.qtype
    except _NotCovered as exc:
        return str(exc)
    ggml = load_ggml()
    if isinstance(ggml, str):
        return ggml
    return Direct(ggml, types)


def apply(direct: Direct, jobs: Iterable[Any], via: Any, source: Any) -> None:
    """Give each job its K-quant type and size; mark the slices that must be rounded to `via` first.

    llama.cpp quantizes the values of the f16/bf16 file (`via`), so fwyy rounds to them, except
    where the weights already are exactly those values (bf16 weights, nothing merged, via bf16).
    """
    from fwyy_ollama.export.convert import tensor_nbytes

    for job in jobs:
        job.qtype = direct.types[job.gguf_name]
        job.nbytes = tensor_nbytes(job.shape, job.qtype)
        if not quantizable(job.gguf_name, job.shape):
            continue
        exact = job.src_name is not None and not (job.merged or job.replaced)
        exact = exact and source.ref(job.src_name).dtype == via.name
        job.via = None if exact else via


def quantizer(direct: Direct, via: Any) -> Callable[[np.ndarray, Any], np.ndarray]:
    """The converter's per-slice function: float32 rows -> the bytes llama.cpp would write."""
    import gguf

    T = gguf.GGMLQuantizationType

    def quantize(x: np.ndarray, qtype: Any) -> np.ndarray:
        if qtype in (T.F32, via):
            return quantize_array(x, qtype)  # kept as the f16/bf16 file has it
        return direct.ggml.quantize_rows(x, qtype)

    return quantize

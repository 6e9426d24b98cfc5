"""Output types: numpy quantizers for the simple types, llama.cpp's for the K-quants.

f32, f16, bf16, q8_0, q4_0, q4_1, q5_0 and q5_1 are computed by the gguf package's numpy code
(no compiler, spread over cores by the converter's thread pool). K-quants need llama.cpp's own
quantizer and its per-tensor choices (q4_k_m: Q6_K for output.weight and for attn_v / ffn_down in
the layers llama.cpp's use_more_bits picks). kquant.py makes them while streaming, with those rules
and ggml_quantize_chunk from llama-cpp-python's libggml; where it cannot promise llama.cpp's
bytes, fwyy writes an f16/bf16 GGUF first and hands it to llama.cpp: a `llama-quantize` binary
(FWYY_LLAMA_QUANTIZE or PATH) when present, else the C API of llama-cpp-python (the `llama`
extra; it compiles llama.cpp from source, ~5 minutes on 2 cores).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fwyy_ollama.errors import FwyyError, require


@dataclass(frozen=True)
class QuantType:
    name: str
    kind: str  # "numpy" or "llama"
    ggml: str  # GGMLQuantizationType name of the bulk of the weights (numpy types)
    llama_ftype: str  # llama_ftype name (LLAMA_FTYPE_...) / gguf.LlamaFileType name
    bpw: float  # bits per weight, for size estimates

    def ggml_type(self) -> Any:
        """gguf.GGMLQuantizationType of the bulk of the weights (numpy types only)."""
        import gguf

        return gguf.GGMLQuantizationType[self.ggml]


QUANTS: dict[str, QuantType] = {
    q.name: q
    for q in (
        QuantType("f32", "numpy", "F32", "ALL_F32", 32.0),
        QuantType("f16", "numpy", "F16", "MOSTLY_F16", 16.0),
        QuantType("bf16", "numpy", "BF16", "MOSTLY_BF16", 16.0),
        QuantType("q8_0", "numpy", "Q8_0", "MOSTLY_Q8_0", 8.5),
        QuantType("q5_1", "numpy", "Q5_1", "MOSTLY_Q5_1", 6.0),
        QuantType("q5_0", "numpy", "Q5_0", "MOSTLY_Q5_0", 5.5),
        QuantType("q4_1", "numpy", "Q4_1", "MOSTLY_Q4_1", 5.0),
        QuantType("q4_0", "numpy", "Q4_0", "MOSTLY_Q4_0", 4.5),
        QuantType("q6_k", "llama", "", "MOSTLY_Q6_K", 6.6),
        QuantType("q5_k_m", "llama", "", "MOSTLY_Q5_K_M", 5.7),
        QuantType("q5_k_s", "llama", "", "MOSTLY_Q5_K_S", 5.6),
        QuantType("q4_k_m", "llama", "", "MOSTLY_Q4_K_M", 4.9),
        QuantType("q4_k_s", "llama", "", "MOSTLY_Q4_K_S", 4.6),
        QuantType("q3_k_l", "llama", "", "MOSTLY_Q3_K_L", 4.3),
        QuantType("q3_k_m", "llama", "", "MOSTLY_Q3_K_M", 3.9),
        QuantType("q3_k_s", "llama", "", "MOSTLY_Q3_K_S", 3.5),
        QuantType("q2_k", "llama", "", "MOSTLY_Q2_K", 3.4),
    )
}
DEFAULT_QUANT = "q4_k_m"


def quant_type(name: str) -> QuantType:
    q = QUANTS.get(name.lower().replace("-", "_"))
    if q is None:
        raise FwyyError(f"unknown quantization {name!r}; choose one of {', '.join(QUANTS)}")
    return q


def file_type(q: QuantType) -> int:
    import gguf

    return int(getattr(gguf.LlamaFileType, q.llama_ftype))


def type_chooser(q: QuantType, *, tied: bool) -> Callable[[str, tuple[int, ...]], Any]:
    """Per-tensor GGML type for a numpy-quantized export.

    1-D tensors and norms stay F32 (llama.cpp needs them so). For the 4/5-bit types the output
    projection (or the tied embedding that serves as it) keeps Q8_0, where llama.cpp would use
    Q6_K, which numpy cannot write. Rows that do not fill whole blocks fall back to F16.
    """
    import gguf

    T = gguf.GGMLQuantizationType
    bulk = T[q.ggml]

    def choose(name: str, shape: tuple[int, ...]) -> Any:
        if len(shape) <= 1 or name.endswith("_norm.weight") or not name.endswith(".weight"):
            return T.F32
        kind = bulk
        if bulk in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1) and (
            name == "output.weight" or (tied and name == "token_embd.weight")
        ):
            kind = T.Q8_0
        block = gguf.GGML_QUANT_SIZES[kind][0]
        if shape[-1] % block != 0:
            kind = T.F16
        return kind

    return choose


def quantize_array(x: np.ndarray, qtype: Any) -> np.ndarray:
    """float32 rows -> the bytes (or f32/f16 values) of `qtype`, via the gguf package."""
    import gguf

    T = gguf.GGMLQuantizationType
    if qtype == T.F32:
        return x.astype(np.float32, copy=False)
    if qtype == T.F16:
        return x.astype(np.float16)
    return gguf.quants.quantize(x, qtype)


# ------------------------------------------------------------------------------ llama.cpp


def llama_quantizer() -> tuple[str, str | None]:
    """("binary", path) for a user's llama-quantize, else ("python", None) for llama-cpp-python."""
    named = os.environ.get("FWYY_LLAMA_QUANTIZE")
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            raise FwyyError(f"FWYY_LLAMA_QUANTIZE={named} is not an executable file")
        return "binary", named
    found = shutil.which("llama-quantize")
    if found:
        return "binary", found
    return "python", None


def describe_quantizer() -> str:
    kind, path = llama_quantizer()
    return f"llama-quantize ({path})" if kind == "binary" else "llama-cpp-python (llama_model_quantize)"


def quantize_with_llama(src: str, dst: str, q: QuantType, *, threads: int | None = None) -> str:
    """Quantize GGUF `src` into `dst` with llama.cpp; returns which quantizer ran."""
    kind, binary = llama_quantizer()
    n = threads or (os.cpu_count() or 1)
    if kind == "binary":
        assert binary is not None
        fds = tuple(int(p.rsplit("/", 1)[1]) for p in (src, dst) if p.startswith("/proc/self/fd/"))
        proc = subprocess.run(
            [binary, src, dst, q.name.upper(), str(n)],
            pass_fds=fds,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
            raise FwyyError(f"{binary} failed (exit {proc.returncode}):\n{tail}")
        return f"llama-quantize ({binary})"
    llama_cpp = require("llama_cpp", "llama", f"Quantizing to {q.name} (a K-quant)")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_{q.llama_ftype}")
    params.nthread = n
    logs: list[str] = []
    with _captured_llama_logs(llama_cpp, logs):
        rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        tail = "".join(logs[-10:]).strip()
        raise FwyyError(f"llama.cpp could not quantize to {q.name} (code {rc}):\n{tail}")
    return "llama-cpp-python (llama_model_quantize)"


_KEEP: list[Any] = []


@contextlib.contextmanager
def _captured_llama_logs(llama_cpp: Any, sink: list[str]):  # type: ignore[no-untyped-def]
    """Route llama.cpp's log lines into `sink` (they would otherwise flood the terminal)."""

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: Any) -> None:
        sink.append(text.decode("utf-8", "replace"))

    _KEEP.append(callback)  # the C side keeps the pointer: never let it be collected
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    try:
        yield
    finally:
        # hand logging back to llama-cpp-python's own handler (it honours verbose=)
        from llama_cpp import _logger

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def round_through(x: np.ndarray, via: Any) -> np.ndarray:
    """float32 values as they come back from an f16/bf16 file: what llama.cpp quantizes.

    On the quantizer's hot path (every merged tensor), so the rounding is integer arithmetic on
    the float32 bits (round half to even, as numpy's float16 cast and gguf's bfloat16 quantizer
    do): 1.6x numpy's cast for f16, 3.9x gguf's numpy code for bf16 on this project's 2 cores. The
    few values where plain mantissa rounding is not the answer (outside f16's normal range;
    infinities and NaN) go through the reference conversion, so the bits are equal for every
    float32 (a test checks all exponents and signs).
    """
    import gguf

    T = gguf.GGMLQuantizationType
    if via == T.F16:
        return _rounded(x, 13, _F16_LOW, _F16_SPAN, lambda v: v.astype(np.float16).astype(np.float32))
    if via == T.BF16:
        return _rounded(x, 16, 0, _BF16_SPAN, _bf16_reference)
    return x


# Biased float32 exponents e with low <= e <= low + span round by their mantissa alone: for f16
# its normal range less the top binade (rounding up there may overflow); for bf16 all but inf/NaN.
_F16_LOW, _F16_SPAN = 113 << 23, (141 - 113) << 23
_BF16_SPAN = 254 << 23


def _bf16_reference(x: np.ndarray) -> np.ndarray:
    import gguf

    half = gguf.quants.quantize(x, gguf.GGMLQuantizationType.BF16).view(np.uint16)
    return (half.astype(np.uint32) << 16).view(np.float32).reshape(x.shape)


def _rounded(
    x: np.ndarray, drop: int, low: int, span: int, reference: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """x with the low `drop` mantissa bits rounded off (half to even); `reference` where out of range."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    bits = flat.view(np.uint32)
    out = bits & np.uint32(0x7F800000)
    if low:
        out -= np.uint32(low)
    odd = np.flatnonzero(out > np.uint32(span))
    np.right_shift(bits, drop, out=out)
    out &= np.uint32(1)
    out += np.uint32((1 << (drop - 1)) - 1)
    out += bits
    out &= np.uint32((0xFFFFFFFF >> drop) << drop)
    values = out.view(np.float32)
    if odd.size:
        with np.errstate(over="ignore", invalid="ignore"):
            values[odd] = reference(flat[odd])
    return values.reshape(x.shape)

"""What GPT4All's llama.cpp needs from a GGUF: readable metadata, a pre-tokenizer it knows, a
quantization its GPU path runs; and the copy / re-quantization that gives it that.

gpt4all 2.8.2 (the Python bindings) bundles a llama.cpp from mid-2024 that refuses newer
`tokenizer.ggml.pre` values (SmolLM2's `smollm`). Where a newer value splits text exactly like an
older one, the GGUF is copied with the older name (metadata only; tensors byte-identical).
Metadata is read with fwyy's bounded reader (fwyy_ollama.gguf_meta): a file the user hands us
that declares a 2^40-element array fails at once with a clear error instead of allocating.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fwyy_ollama.atomic import atomic_path
from fwyy_ollama.errors import FwyyError, require

Progress = Callable[[float, "float | None", str], None]

QUANTS = ("q4_0", "q4_1", "f16", "q4_k_m")
"""What export-gpt4all writes."""
GPU_QUANTS = ("q4_0", "q4_1", "f16")
"""GPT4All's GPU (Vulkan/Kompute) path runs these; other quantizations fall back to the CPU."""
DEFAULT_PROFILE_QUANT = "q4_0"

# general.file_type (llama_ftype) -> quantization name, for the types a user is likely to hand us.
FILE_TYPES = {
    0: "f32",
    1: "f16",
    2: "q4_0",
    3: "q4_1",
    7: "q8_0",
    8: "q5_0",
    9: "q5_1",
    10: "q2_k",
    11: "q3_k_s",
    12: "q3_k_m",
    13: "q3_k_l",
    14: "q4_k_s",
    15: "q4_k_m",
    16: "q5_k_s",
    17: "q5_k_m",
    18: "q6_k",
    32: "bf16",
}
_FTYPE_OF = {"q4_0": 2, "q4_1": 3, "f16": 1, "q4_k_m": 15}


# tokenizer.ggml.pre values that the llama.cpp inside gpt4all 2.8.2 accepts (read from the
# `llm_load_vocab` branch of that build: its strings and its refusal of anything else).
GPT4ALL_KNOWN_PRE = frozenset(
    {
        "default",
        "llama3",
        "llama-v3",
        "llama-bpe",
        "deepseek-llm",
        "deepseek-coder",
        "falcon",
        "mpt",
        "starcoder",
        "gpt-2",
        "phi-2",
        "jina-es",
        "jina-de",
        "jina-v2-es",
        "jina-v2-de",
        "jina-v2-code",
        "refact",
        "command-r",
        "qwen2",
        "stablelm2",
        "olmo",
        "dbrx",
        "smaug-bpe",
        "poro-chat",
        "chatglm-bpe",
        "viking",
        "jais",
    }
)
# Newer values whose pre-tokenizer is the same split as an older one. In llama.cpp these all use
# the STARCODER regexes (digits one by one, then the GPT-2 split); the only difference is that
# newer llama.cpp turns off "clean spaces" in llama_detokenize, which GPT4All (it streams
# token_to_piece) never calls.
PRE_EQUIVALENTS = {
    "smollm": "starcoder",
    "codeshell": "starcoder",
    "exaone": "starcoder",
    "minerva-7b": "starcoder",
}


def gguf_metadata(path: Path) -> dict[str, Any]:
    """The GGUF's scalar metadata (arrays such as the vocabulary left out).

    Bounded (fwyy_ollama.gguf_meta): every count in the header is checked against the file's size
    before anything is read, so a hostile or truncated file is a FwyyError, never a huge allocation.
    """
    from fwyy_ollama.gguf_meta import gguf_metadata as bounded

    return bounded(path)


def gguf_quant(meta: Mapping[str, Any]) -> str:
    ftype = meta.get("general.file_type")
    return FILE_TYPES.get(int(ftype), f"ftype{ftype}") if ftype is not None else "unknown"


def compat_changes(meta: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Metadata GPT4All 2.8's llama.cpp would refuse: key -> (old value, the equivalent it knows)."""
    changes: dict[str, tuple[Any, Any]] = {}
    pre = meta.get("tokenizer.ggml.pre")
    if isinstance(pre, str) and pre not in GPT4ALL_KNOWN_PRE:
        if pre not in PRE_EQUIVALENTS:
            raise FwyyError(
                f"tokenizer.ggml.pre = {pre!r} is unknown to GPT4All 2.8's llama.cpp and fwyy knows no "
                "equivalent for it",
                hint="known values: " + ", ".join(sorted(GPT4ALL_KNOWN_PRE)),
            )
        changes["tokenizer.ggml.pre"] = (pre, PRE_EQUIVALENTS[pre])
    return changes


def copy_gguf(
    src: Path, dst: Path, *, set_values: Mapping[str, Any] | None = None, progress: Progress | None = None
) -> None:
    """Copy a GGUF through GGUFReader -> GGUFWriter, replacing string metadata; tensors unchanged.

    Written under a temporary name and renamed, so an interrupted copy leaves no half model.
    """
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    from fwyy_ollama.gguf_meta import read_gguf

    read_gguf(src)  # bounded check of the whole header first: GGUFReader trusts its counts
    set_values = dict(set_values or {})
    reader = GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    with atomic_path(dst) as tmp:
        writer = GGUFWriter(tmp, arch=arch, endianess=reader.endianess)
        for name, f in reader.fields.items():
            if name.startswith("GGUF.") or name == "general.architecture":
                continue
            vtype = f.types[0]
            value = set_values.pop(name) if name in set_values else f.contents()
            if name == "general.alignment":
                writer.data_alignment = int(value)
            sub = f.types[-1] if vtype == GGUFValueType.ARRAY else None
            writer.add_key_value(name, value, vtype, sub_type=sub)
        for name, value in set_values.items():  # keys the source lacked
            writer.add_key_value(name, value, GGUFValueType.STRING)
        for t in reader.tensors:
            writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        total = len(reader.tensors)
        for i, t in enumerate(reader.tensors):
            writer.write_tensor_data(t.data)
            if progress and (i % 16 == 0 or i == total - 1):
                progress(i + 1, total, "copying tensors")
        writer.close()


def requantize(src: Path, dst: Path, quant: str) -> None:
    """Re-quantize a GGUF with llama.cpp (llama-cpp-python), atomically."""
    llama_cpp = require("llama_cpp", "llama", f"Converting a GGUF to {quant}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = _FTYPE_OF[quant]
    params.allow_requantize = True
    params.nthread = int(os.environ.get("FWYY_THREADS") or 0)
    with atomic_path(dst) as tmp:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
        if rc != 0:
            raise FwyyError(f"{src}: llama.cpp could not convert it to {quant} (code {rc})")

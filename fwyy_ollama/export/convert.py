"""HF config + weights -> GGUF for llama (Llama-3, Mistral, SmolLM2) and qwen2, streamed.

The writer lays out the header, the metadata and every tensor's info first (shapes and sizes are
known before any weight is read), then streams each tensor's rows: read a slice, merge the LoRA
in float32, undo HF's rotary permutation for llama q/k, convert once to the output type, write.
Slices are worked on by a thread pool (numpy and ggml release the GIL) and written in order; the
slices handed out and not yet written stay within INFLIGHT_BYTES, so peak memory is bounded whatever
the model size and the number of cores.

Key names, tensor names (gguf.TensorNameMap), the q/k permutation and the rule that 1-D tensors
and norms stay F32 follow llama.cpp's convert_hf_to_gguf.py.
"""

from __future__ import annotations

import collections
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.export.merge import LoraAdapter, WeightSource
from fwyy_ollama.export.quantize import round_through
from fwyy_ollama.export.vocab import Vocab

# HF architecture class -> gguf architecture
ARCHITECTURES: dict[str, str] = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
}

# float32 bytes of the slices handed to the workers and not yet written. A worker holds its slice's
# float32 rows, the 16-bit rows they were read from and, for llama q/k, a permuted copy (2-2.5x these
# bytes) while it works; a finished slice waiting for its turn holds only its output bytes. So the
# export's memory follows this budget, not the number of cores (with 16 MiB slices whatever the
# cores, 16 workers peaked at 930 MiB; with this budget 380 MiB). Two slices per worker keep every
# core busy (one worked on, one ready to start), so with more cores the slices get smaller.
INFLIGHT_BYTES = 256 << 20
# float32 bytes of one slice: at most 16 MiB (2 workers: 64 MiB in flight), at least 1 MiB (tens of
# milliseconds of K-quant work, against well under a millisecond of Python per slice). A slice is
# at least one row (one head's rows for llama q/k): one bigger than the budget is handed out alone.
SLICE_BYTES = 16 << 20
MIN_SLICE_BYTES = 1 << 20
# bytes written between two background flushes to disk, so the closing fsync waits for the tail only
WRITEBACK_BYTES = 64 << 20

Progress = Callable[[float, "float | None", str], None]


@dataclass(frozen=True)
class ModelSpec:
    """What the converter needs from config.json."""

    folder: Path
    hf_arch: str
    arch: str
    hparams: dict[str, Any]
    n_layers: int
    n_head: int
    n_head_kv: int
    n_embd: int
    n_vocab: int
    head_dim: int
    tied: bool
    rope: dict[str, Any]


def read_spec(folder: Path) -> ModelSpec:
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise FwyyError(f"{folder}: config.json is missing (not a Hugging Face model folder)")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FwyyError(f"{cfg_path}: not valid JSON ({exc})") from exc
    if isinstance(cfg.get("text_config"), dict):
        cfg = {**cfg, **cfg["text_config"]}
    archs = cfg.get("architectures") or []
    hf_arch = next((a for a in archs if a in ARCHITECTURES), None)
    if hf_arch is None:
        supported = ", ".join(f"{k} ({v})" for k, v in ARCHITECTURES.items())
        raise FwyyError(
            f"{cfg_path}: architecture {', '.join(archs) or '(none)'} is not supported; fwyy exports {supported}"
        )
    try:
        n_head = int(cfg["num_attention_heads"])
        n_embd = int(cfg["hidden_size"])
        spec = ModelSpec(
            folder=folder,
            hf_arch=hf_arch,
            arch=ARCHITECTURES[hf_arch],
            hparams=cfg,
            n_layers=int(cfg["num_hidden_layers"]),
            n_head=n_head,
            n_head_kv=int(cfg.get("num_key_value_heads") or n_head),
            n_embd=n_embd,
            n_vocab=int(cfg["vocab_size"]),
            head_dim=int(cfg.get("head_dim") or n_embd // n_head),
            tied=bool(cfg.get("tie_word_embeddings", False)),
            rope=dict(cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FwyyError(f"{cfg_path}: missing or bad hyper-parameter {exc}") from exc
    if cfg.get("rope_theta") is not None:
        spec.rope.setdefault("rope_theta", cfg["rope_theta"])
    if "type" in spec.rope:
        spec.rope.setdefault("rope_type", spec.rope["type"])
    return spec


def add_hparams(writer: Any, spec: ModelSpec) -> None:
    """The {arch}.* keys llama.cpp reads for llama / qwen2."""
    h = spec.hparams
    writer.add_block_count(spec.n_layers)
    n_ctx = next((h[k] for k in ("max_position_embeddings", "n_ctx", "n_positions") if h.get(k)), None)
    if n_ctx is not None:
        writer.add_context_length(int(n_ctx))
    writer.add_embedding_length(spec.n_embd)
    writer.add_feed_forward_length(int(h["intermediate_size"]))
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head_kv)
    rope_type = str(spec.rope.get("rope_type") or "default").lower()
    factor = spec.rope.get("factor")
    if rope_type == "linear" and factor:
        import gguf

        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(factor))
    elif rope_type == "yarn" and factor:
        import gguf

        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(factor))
        writer.add_rope_scaling_orig_ctx_len(int(spec.rope["original_max_position_embeddings"]))
    if spec.rope.get("rope_theta") is not None:
        writer.add_rope_freq_base(float(spec.rope["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(h.get("rms_norm_eps", 1e-6)))
    if spec.head_dim != spec.n_embd // spec.n_head:
        writer.add_key_length(spec.head_dim)
        writer.add_value_length(spec.head_dim)
    if spec.arch == "llama":
        writer.add_vocab_size(spec.n_vocab)
        writer.add_rope_dimension_count(spec.head_dim)


def llama3_rope_factors(spec: ModelSpec) -> np.ndarray | None:
    """rope_freqs.weight for rope_type llama3 (Llama-3.1+), computed as llama.cpp's converter does."""
    if str(spec.rope.get("rope_type", "")).lower() != "llama3":
        return None
    base = float(spec.rope.get("rope_theta", 10000.0))
    dim = spec.head_dim
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor = float(spec.rope.get("factor", 8.0))
    low = float(spec.rope.get("low_freq_factor", 1.0))
    high = float(spec.rope.get("high_freq_factor", 4.0))
    old_ctx = float(spec.rope.get("original_max_position_embeddings", 8192))
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


# ------------------------------------------------------------------------------ planning


@dataclass
class TensorJob:
    """One GGUF tensor: where its rows come from and what they become."""

    gguf_name: str
    src_name: str | None
    shape: tuple[int, ...]
    qtype: Any  # gguf.GGMLQuantizationType
    nbytes: int
    permute_heads: int = 0  # llama q/k: number of heads whose rows are interleaved by HF
    const: np.ndarray | None = None  # a computed tensor (rope_freqs)
    merged: bool = False
    replaced: bool = False
    via: Any = None  # round to this type first (the f16/bf16 file llama.cpp would quantize from)

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1


_SKIP_SUFFIXES = (".rotary_emb.inv_freq", ".attention.masked_bias", ".attention.bias")


def tensor_nbytes(shape: tuple[int, ...], qtype: Any) -> int:
    import gguf

    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    n = math.prod(shape) if shape else 1
    return n // block * type_size


def plan_tensors(
    spec: ModelSpec,
    source: WeightSource,
    choose: Callable[[str, tuple[int, ...]], Any],
    adapter: LoraAdapter | None = None,
) -> list[TensorJob]:
    """Map every HF tensor to its GGUF name and type; unknown tensors are an error."""
    import gguf

    arch_enum = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == spec.arch)
    name_map = gguf.get_tensor_name_map(arch_enum, spec.n_layers)
    jobs: list[TensorJob] = []
    rope = llama3_rope_factors(spec)
    if rope is not None:
        qt = gguf.GGMLQuantizationType.F32
        jobs.append(TensorJob("rope_freqs.weight", None, rope.shape, qt, rope.nbytes, const=rope))

    def order(name: str) -> tuple[int, int, str]:
        parts = name.split(".")
        for p in parts:
            if p.isdecimal():
                return (1, int(p), name)
        return (0 if "embed" in name else 2, 0, name)

    for name in sorted(source.tensors, key=order):
        if name.endswith(_SKIP_SUFFIXES):
            continue
        ref = source.ref(name)
        new = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise FwyyError(
                f"{spec.folder}: tensor {name} has no GGUF name for {spec.arch}; is config.json right?"
            )
        shape = tuple(ref.shape)
        qtype = choose(new, shape)
        heads = 0
        if spec.arch == "llama" and name.endswith(("q_proj.weight", "q_proj.bias")):
            heads = spec.n_head
        elif spec.arch == "llama" and name.endswith(("k_proj.weight", "k_proj.bias")):
            heads = spec.n_head_kv
        job = TensorJob(new, name, shape, qtype, tensor_nbytes(shape, qtype), permute_heads=heads)
        if adapter is not None:
            job.merged = name in adapter.pairs
            job.replaced = name in adapter.replacements
        jobs.append(job)
    names = {j.gguf_name for j in jobs}
    if "token_embd.weight" not in names:
        raise FwyyError(f"{spec.folder}: no token embedding (model.embed_tokens.weight) in the weights")
    if adapter is not None:
        missing = [n for n in adapter.pairs if not any(j.src_name == n for j in jobs)]
        if missing:
            raise FwyyError(f"{adapter.folder}: LoRA weights for {missing[0]} have no tensor in the export")
    return jobs


# ------------------------------------------------------------------------------ streaming


def _permute_rows(x: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo HF's rotary layout for whole heads: (heads, 2, d/2, ...) -> (heads, d/2, 2, ...)."""
    rows = x.shape[0]
    head_rows = rows // n_heads
    return x.reshape(n_heads, 2, head_rows // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)


def slice_bytes(n_workers: int) -> int:
    """float32 bytes per slice: 2 slices per worker fit in INFLIGHT_BYTES, within the slice limits."""
    return max(MIN_SLICE_BYTES, min(SLICE_BYTES, INFLIGHT_BYTES // (2 * n_workers)))


def _slices(job: TensorJob, spec_head_rows: int, max_bytes: int) -> Iterator[tuple[int, int]]:
    rows = job.rows
    row_elems = math.prod(job.shape[1:]) if len(job.shape) > 1 else 1
    step = max(1, max_bytes // 4 // max(1, row_elems))
    align = spec_head_rows if job.permute_heads else 1
    step = max(align, step // align * align)
    for r0 in range(0, rows, step):
        yield r0, min(rows, r0 + step)


def in_order(
    pool: Any, work: Callable[..., Any], tasks: Iterable[tuple[int, tuple[Any, ...]]], budget: int
) -> Iterator[Any]:
    """work(*args) for each (cost, args) of `tasks` on `pool`, the results yielded in task order.

    The costs of the tasks submitted and not yet yielded stay within `budget`: a task waits for the
    oldest ones to be taken, except when nothing is pending (a task that alone exceeds the budget
    runs alone). The budget is counted in bytes, not tasks, so small tensors (norms, k/v) do not
    take the places of whole slices.
    """
    pending: collections.deque[tuple[int, Future[Any]]] = collections.deque()
    inflight = 0
    for cost, args in tasks:
        while pending and inflight + cost > budget:
            done_cost, fut = pending.popleft()
            inflight -= done_cost
            yield fut.result()
        pending.append((cost, pool.submit(work, *args)))
        inflight += cost
    while pending:
        yield pending.popleft()[1].result()


def write_gguf(
    path: str,
    spec: ModelSpec,
    vocab: Vocab,
    jobs: list[TensorJob],
    source: WeightSource,
    *,
    file_type: int,
    metadata: dict[str, Any],
    quantize: Callable[[np.ndarray, Any], np.ndarray],
    adapter: LoraAdapter | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    label: str = "writing GGUF",
) -> int:
    """Write the whole GGUF to `path` (an open-able path, e.g. /proc/self/fd/N); return its size."""
    import gguf

    writer = gguf.GGUFWriter(path=None, arch=spec.arch)
    _add_general(writer, metadata, jobs)
    add_hparams(writer, spec)
    writer.add_file_type(file_type)
    vocab.write(writer)
    for key, value in metadata.get("fwyy", {}).items():
        writer.add_string(f"fwyy.{key}", str(value))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for job in jobs:
        writer.add_tensor_info(
            job.gguf_name, job.shape, np.dtype(np.float32), job.nbytes, raw_dtype=job.qtype
        )

    writer.write_header_to_file(path=Path(path))
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    fout = writer.fout[0]
    writer.write_padding(fout, fout.tell())

    total = float(sum(j.nbytes for j in jobs))
    done = 0.0
    n_workers = workers or max(1, os.cpu_count() or 1)
    head_rows = {id(j): (j.rows // j.permute_heads if j.permute_heads else 1) for j in jobs}
    adapter_fd = None
    if adapter is not None and adapter.source is not None and adapter.replacements:
        adapter_fd = os.open(next(iter(adapter.source.tensors.values())).file, os.O_RDONLY)

    def work(job: TensorJob, r0: int, r1: int) -> np.ndarray:
        if job.const is not None:
            x = job.const[r0:r1]
        elif job.replaced and adapter is not None and adapter.source is not None:
            from fwyy_ollama.export.merge import read_rows

            ref = adapter.source.tensors[adapter.replacements[job.src_name or ""]]
            x = read_rows(ref, r0, r1, adapter_fd or 0)
        else:
            x = source.read_rows(job.src_name or "", r0, r1)
            if job.merged and adapter is not None:
                delta = adapter.delta_rows(job.src_name or "", r0, r1)
                if delta is not None:
                    x += delta.reshape(x.shape)
        if job.permute_heads:
            x = _permute_rows(x, (r1 - r0) // head_rows[id(job)])
        x = np.ascontiguousarray(x, dtype=np.float32)
        if job.via is not None:
            x = round_through(x, job.via)
        out = quantize(x, job.qtype)
        return np.ascontiguousarray(out)

    def tasks() -> Iterator[tuple[int, tuple[TensorJob, int, int, bool]]]:
        for job in jobs:
            row_bytes = 4 * (math.prod(job.shape[1:]) if len(job.shape) > 1 else 1)
            slices = list(_slices(job, head_rows[id(job)], per_slice))
            for k, (r0, r1) in enumerate(slices):
                yield (r1 - r0) * row_bytes, (job, r0, r1, k == len(slices) - 1)

    def work_slice(job: TensorJob, r0: int, r1: int, last: bool) -> tuple[TensorJob, bool, np.ndarray]:
        return job, last, work(job, r0, r1)

    per_slice = slice_bytes(n_workers)
    sync = getattr(os, "fdatasync", os.fsync)
    try:
        with (
            ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="fwyy-export") as pool,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="fwyy-writeback") as flusher,
        ):
            flushed_to, flushing = fout.tell(), None
            budget = 2 * n_workers * per_slice
            for job, last, arr in in_order(pool, work_slice, tasks(), budget):
                fout.write(memoryview(arr).cast("B"))
                done += arr.nbytes
                if last:
                    writer.write_padding(fout, job.nbytes)
                    if progress is not None:
                        progress(done, total, f"{label}: {job.gguf_name}")
                # let the disk take what is written while the rest is computed (one flush at a time)
                if fout.tell() - flushed_to >= WRITEBACK_BYTES and (flushing is None or flushing.done()):
                    fout.flush()
                    flushed_to, flushing = fout.tell(), flusher.submit(sync, fout.fileno())
        fout.flush()
        os.fsync(fout.fileno())
        size = fout.tell()
    finally:
        writer.close()
        source.close()
        if adapter_fd is not None:
            os.close(adapter_fd)
    return size


def _add_general(writer: Any, meta: dict[str, Any], jobs: list[TensorJob]) -> None:
    import gguf

    writer.add_type(gguf.GGUFType.MODEL)
    if meta.get("name"):
        writer.add_name(str(meta["name"]))
    if meta.get("basename"):
        writer.add_basename(str(meta["basename"]))
    if meta.get("finetune"):
        writer.add_finetune(str(meta["finetune"]))
    n_params = sum(math.prod(j.shape) for j in jobs)
    writer.add_size_label(gguf.size_label(n_params, n_params, 0, 0))
    if meta.get("license"):
        writer.add_license(str(meta["license"]))
    base = meta.get("base_model")
    if base:
        writer.add_base_model_count(1)
        writer.add_base_model_name(0, str(base))


@dataclass
class Plan:
    """Everything decided before writing: used for the disk check and the result."""

    spec: ModelSpec
    vocab: Vocab
    jobs: list[TensorJob]
    tensor_bytes: int = 0
    metadata_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def file_bytes(self) -> int:
        return self.tensor_bytes + self.metadata_bytes + 32 * (len(self.jobs) + 1)

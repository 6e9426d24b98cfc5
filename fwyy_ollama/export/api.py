"""`export_gguf`: merge an adapter into its base and write a (quantized) GGUF, checked on request."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fwyy_ollama.errors import FwyyError, require
from fwyy_ollama.export import kquant
from fwyy_ollama.export.convert import Plan, Progress, plan_tensors, read_spec, write_gguf
from fwyy_ollama.export.merge import BaseChoice, LoraAdapter, WeightSource, load_adapter, resolve_adapter_base
from fwyy_ollama.export.output import free_bytes, pending_file
from fwyy_ollama.export.quantize import (
    QUANTS,
    QuantType,
    describe_quantizer,
    file_type,
    quant_type,
    quantize_array,
    quantize_with_llama,
    type_chooser,
)
from fwyy_ollama.export.vocab import check_eos, load_vocab

# headroom kept free after the export (the file system must not be filled to the last byte)
DISK_MARGIN = 64 << 20


@dataclass(frozen=True)
class ExportResult:
    """What the export wrote and from what (pipeline.py records it in the build manifest)."""

    gguf: Path
    quant: str
    size_bytes: int
    arch: str
    hf_architecture: str
    n_tensors: int
    n_params: int
    base_dir: Path
    merged_into: str
    adapter_dir: Path | None
    lora_modules: int
    tokenizer_pre: str
    eos_token: str
    eos_note: str | None
    quantizer: str
    intermediate_bytes: int
    seconds: float
    notes: tuple[str, ...] = ()
    verify: Any = None  # fwyy_ollama.export.verify.VerifyReport when verify=True

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["verify"] = self.verify.to_json() if self.verify is not None else None
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}


def _adapter_meta(adapter_dir: Path | None) -> dict[str, Any]:
    if adapter_dir is None or not (adapter_dir / "fwyy-adapter.json").is_file():
        return {}
    try:
        return json.loads((adapter_dir / "fwyy-adapter.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}


def _metadata(
    spec_name: str, base: BaseChoice | None, adapter_dir: Path | None, q: QuantType
) -> dict[str, Any]:
    from fwyy_ollama import __version__

    info = _adapter_meta(adapter_dir)
    profile = info.get("profile")
    profile_name = profile.get("name") if isinstance(profile, dict) else profile
    meta: dict[str, Any] = {
        "name": str(profile_name or spec_name),
        "basename": str(profile_name or spec_name),
        "fwyy": {"version": __version__, "quant": q.name},
    }
    # A GGUF is meant to be shared: it names folders by their last component (or the Hub id),
    # never by a path on this machine (a home folder, a user name, a cache layout).
    if base is not None:
        meta["base_model"] = base.hf_id or base.folder.name
        meta["fwyy"]["merged_into"] = base.hf_id or base.folder.name
    if adapter_dir is not None:
        from fwyy_ollama.hashing import sha256_file

        meta["finetune"] = "fwyy"
        weights = adapter_dir / "adapter_model.safetensors"
        meta["fwyy"]["adapter"] = adapter_dir.name
        meta["fwyy"]["adapter_sha256"] = sha256_file(weights)
        for key in ("chat_family", "language", "data_hash", "steps"):  # fwyy.language: analyze/chat prompt in it
            if info.get(key) is not None:
                meta["fwyy"][key] = info[key]
        if profile_name:
            meta["fwyy"]["profile"] = profile_name
    if profile_name:
        try:
            from fwyy_ollama.profiles import load_profile, shipped_profiles

            # only a shipped profile: the adapter's JSON must not make the export read other files
            lic = load_profile(profile_name).base.license if profile_name in shipped_profiles() else ""
            if lic:
                meta["license"] = lic
        except (FwyyError, OSError):
            pass
    return meta


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 28 else f"{n / (1 << 20):.1f} MiB"


def export_gguf(
    *,
    adapter_dir: str | os.PathLike[str] | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str],
    quant: str = "q4_k_m",
    verify: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
    tokenizer_pre: str | None = None,
    chat_template: str | None = None,
) -> ExportResult:
    """Write `out` as a GGUF of `model_dir`, or of an adapter merged into its base.

    With both `adapter_dir` and `model_dir`, the adapter is merged into `model_dir` (use this when
    the base recorded by the adapter moved). Nothing is written under `out` until the file is
    complete; free disk is checked first. `workers` threads convert slices (default: all cores).
    `tokenizer_pre` names tokenizer.ggml.pre by hand when llama.cpp's hash table does not know the
    tokenizer (use with verify=True). `chat_template` replaces the base's tokenizer.chat_template
    (a build writes its chat family's, the one its Ollama TEMPLATE is proven against: Ollama 0.30.11+
    may run a GGUF's own Jinja instead of TEMPLATE).
    """
    t0 = time.perf_counter()
    q = quant_type(quant)
    quantizer = "numpy (gguf package)"
    if q.kind == "llama":
        # say what is missing before reading or writing anything
        quantizer = describe_quantizer()
        if quantizer.startswith("llama-cpp-python"):
            require("llama_cpp", "llama", f"Quantizing to {q.name} (a K-quant)")
    if adapter_dir is None and model_dir is None:
        raise FwyyError("export needs --adapter DIR (a trained LoRA) or --model DIR (an HF model folder)")
    adapter_path = Path(adapter_dir).expanduser().absolute() if adapter_dir is not None else None
    base: BaseChoice | None = None
    if adapter_path is not None:
        if not adapter_path.is_dir():
            raise FwyyError(f"{adapter_path}: adapter folder not found")
        if model_dir is not None:
            folder = Path(model_dir).expanduser().absolute()
            base = BaseChoice(folder, f"{folder} (given with --model)")
        else:
            base = resolve_adapter_base(adapter_path)
        folder = base.folder
    else:
        folder = Path(model_dir).expanduser().absolute()  # type: ignore[arg-type]
    if not folder.is_dir():
        raise FwyyError(f"{folder}: model folder not found")
    out_path = Path(out).expanduser().absolute()
    if out_path.is_dir():
        raise FwyyError(f"--out {out_path} is a folder; give a file name ending in .gguf")

    spec = read_spec(folder)
    source = WeightSource(folder)
    adapter: LoraAdapter | None = load_adapter(adapter_path, source) if adapter_path is not None else None
    # transformers' view of the tokenizer (seconds to load) arrives while the tensors are written
    vocab = load_vocab(folder, spec.n_vocab, pre_override=tokenizer_pre, wait=False)
    if chat_template is None and isinstance(_adapter_meta(adapter_path).get("chat_family"), str):
        from fwyy_ollama.chat_families import get_family

        chat_template = get_family(_adapter_meta(adapter_path)["chat_family"]).hf_chat_template
    if chat_template is not None:
        vocab.chat_template = chat_template
    eos_note = check_eos(vocab)

    inter = q if q.kind == "numpy" else _intermediate_type(spec)
    jobs = plan_tensors(spec, source, type_chooser(inter, tied=spec.tied), adapter)
    notes: list[str] = []  # vocab.notes go first, once vocab.settle() has had its say
    direct = kquant.prepare(q, spec, jobs) if q.kind == "llama" else None
    if isinstance(direct, kquant.Direct):
        kquant.apply(direct, jobs, inter.ggml_type(), source)
        quantizer = f"ggml's quantizer ({direct.ggml.path.name} of llama-cpp-python), no {inter.name} file"
    elif direct is not None:
        notes.append(f"{q.name} through a {inter.name} GGUF and llama.cpp: {direct}")
    plan = Plan(spec, vocab, jobs, sum(j.nbytes for j in jobs), vocab.metadata_bytes() + 65536)
    n_params = sum(math.prod(j.shape) for j in jobs)

    # -- disk: everything this export writes lives next to `out`
    needed = plan.file_bytes
    what = f"the GGUF ~{_gib(plan.file_bytes)}"
    if q.kind == "llama" and not isinstance(direct, kquant.Direct):
        final_est = int(n_params * q.bpw / 8 * 1.15) + plan.metadata_bytes
        needed = plan.file_bytes + final_est
        what = f"a temporary {inter.name} GGUF {_gib(plan.file_bytes)} + the {q.name} GGUF ~{_gib(final_est)}"
    if out_path.exists():
        needed -= min(needed, out_path.stat().st_size) // 2  # the old file is replaced, not kept
    free = free_bytes(out_path.parent)
    if free < needed + DISK_MARGIN:
        raise FwyyError(
            f"not enough free disk in {out_path.parent}: the export needs {_gib(needed + DISK_MARGIN)} "
            f"({what}), {_gib(free)} is free",
            hint="free some space or write elsewhere with --out",
        )

    meta = _metadata(folder.name, base, adapter_path, q)
    intermediate = 0

    def write(path: str, **how: Any) -> int:
        """write_gguf; a second time in the rare case where transformers' tokenizer, which has been
        loading meanwhile, names another tokenizer.ggml.pre than tokenizer.json did."""
        kw = dict(metadata=meta, adapter=adapter, progress=progress, workers=workers, **how)
        size = write_gguf(path, spec, vocab, jobs, source, **kw)
        if vocab.settle():
            size = write_gguf(path, spec, vocab, jobs, source, **kw)
        return size

    with pending_file(out_path) as final:
        if q.kind == "numpy" or isinstance(direct, kquant.Direct):
            quantize, label = quantize_array, "writing GGUF"
            if isinstance(direct, kquant.Direct):
                quantize, label = kquant.quantizer(direct, inter.ggml_type()), f"quantizing to {q.name}"
            size = write(final.path, file_type=file_type(q), quantize=quantize, label=label)
        else:
            with pending_file(out_path.with_name(out_path.name + ".f16")) as tmp:
                intermediate = write(
                    tmp.path, file_type=file_type(inter), quantize=quantize_array,
                    label=f"writing {inter.name} for llama.cpp",
                )  # fmt: skip
                if progress is not None:
                    progress(0, None, f"llama.cpp: quantizing to {q.name}")
                quantizer = quantize_with_llama(tmp.path, final.path, q, threads=workers)
            size = final.size()
        report = None
        if verify:
            from fwyy_ollama.export.verify import verify_gguf

            if progress is not None:
                progress(0, None, "verifying with llama.cpp and the HF model")
            report = verify_gguf(final.path, model_dir=folder, adapter_dir=adapter_path, quant=q.name)
            if not report.ok:
                raise FwyyError(
                    f"--verify failed, {out_path.name} not written: " + "; ".join(report.failures),
                    hint="the export is wrong; please report it with the model's config.json",
                )
        final.commit()
    notes = [*vocab.notes, *notes]
    if eos_note:
        notes.insert(0, eos_note)
    eos_id = vocab.special_ids.get("eos")
    return ExportResult(
        gguf=out_path,
        quant=q.name,
        size_bytes=size,
        arch=spec.arch,
        hf_architecture=spec.hf_arch,
        n_tensors=len(jobs),
        n_params=n_params,
        base_dir=folder,
        merged_into=base.description if base is not None else f"{folder} (no adapter)",
        adapter_dir=adapter_path,
        lora_modules=adapter.n_modules if adapter is not None else 0,
        tokenizer_pre=vocab.pre,
        eos_token=vocab.tokens[eos_id] if eos_id is not None else "",
        eos_note=eos_note,
        quantizer=quantizer,
        intermediate_bytes=intermediate,
        seconds=round(time.perf_counter() - t0, 3),
        notes=tuple(dict.fromkeys(notes)),
        verify=report,
    )


def _intermediate_type(spec: Any) -> QuantType:
    """llama.cpp quantizes from f16, or bf16 when the weights are bf16 (no range loss)."""
    dtype = str(spec.hparams.get("torch_dtype") or spec.hparams.get("dtype") or "").lower()
    return QUANTS["bf16"] if dtype == "bfloat16" else QUANTS["f16"]


__all__ = ["ExportResult", "export_gguf", "QUANTS"]

"""K-quants written directly (ggml's quantizer while streaming) against llama.cpp's own quantizer.

The claim: fwyy's direct q4_k_m/... GGUF has the same tensors, types and bytes as llama.cpp's
llama_model_quantize makes from fwyy's f16/bf16 GGUF of the same model, for every family fwyy
exports (llama, qwen2, mistral), tied or not, 16- or 32-bit weights, with a LoRA merged, and for
row lengths that need llama.cpp's fallback types. When the direct path cannot promise that, the
export goes through the f16 file and llama.cpp as before.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.test_export import _fields, make_adapter

ALL_KQUANTS = ("q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k")


def _tiny(smollm2_dir: Path, dest: Path, model_type: str, *, hidden: int, inter: int, layers: int,
          tied: bool = False, bf16: bool = False) -> Path:  # fmt: skip
    """A random model whose rows are whole 256-blocks (hidden 256) unless told otherwise."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    cfg = AutoConfig.for_model(
        model_type, vocab_size=len(tok), hidden_size=hidden, intermediate_size=inter,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=1,
        max_position_embeddings=2048, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        tie_word_embeddings=tied,
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16 if bf16 else torch.float32)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


# family -> (HF model_type, shape, tied, bf16): 8 layers make use_more_bits pick layers 0, 3, 6, 7;
# qwen2's 640-wide FFN makes ffn_down fall back; mistral is stored as bf16 (the bf16 intermediate)
FAMILIES = {
    "llama": ("llama", dict(hidden=256, inter=512, layers=8), False, False),
    "qwen2": ("qwen2", dict(hidden=256, inter=640, layers=8), True, False),
    "mistral": ("mistral", dict(hidden=256, inter=512, layers=8), False, True),
}


@pytest.fixture(scope="module")
def family_dirs(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for family, (model_type, shape, tied, bf16) in FAMILIES.items():
        dest = tmp_path_factory.mktemp(f"kq-{family}")
        out[family] = _tiny(smollm2_dir, dest, model_type, tied=tied, bf16=bf16, **shape)
    return out


def _pre(family: str) -> str | None:
    # SmolLM2's vocabulary under Qwen2's pre-tokenizer rules: named by hand (see test_export.py)
    return "qwen2" if family == "qwen2" else None


def _tensors(path: Path) -> dict[str, tuple[str, bytes]]:
    import gguf

    return {t.name: (t.tensor_type.name, t.data.tobytes()) for t in gguf.GGUFReader(path).tensors}


def _llama_cpp_quantize(src: Path, dst: Path, quant: str) -> Path:
    """llama.cpp's own quantizer (llama_model_quantize, through llama-cpp-python)."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}")
    assert llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)) == 0
    return dst


def _assert_same_tensors(ours: Path, theirs: Path) -> dict[str, str]:
    a, b = _tensors(ours), _tensors(theirs)
    assert sorted(a) == sorted(b)
    types = {name: kind for name, (kind, _) in a.items()}
    assert types == {name: kind for name, (kind, _) in b.items()}
    differ = [name for name in a if a[name][1] != b[name][1]]
    assert differ == [], f"tensor bytes differ from llama.cpp's: {differ[:5]}"
    return types


def _runs(path: Path) -> np.ndarray:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, logits_all=True, verbose=False, n_threads=2)
    ids = llm.tokenize(b"SELECT * FROM users WHERE id = 1", add_bos=False)
    llm.eval(ids)
    logits = np.array(llm.scores[len(ids) - 1], dtype=np.float32)
    llm.close()
    assert np.isfinite(logits).all() and logits.std() > 0
    return logits


def _export(folder: Path, out: Path, quant: str, **kw):  # type: ignore[no-untyped-def]
    from fwyy_ollama.export import export_gguf

    return export_gguf(model_dir=folder, out=out, quant=quant, **kw)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_direct_q4_k_m_equals_llama_cpp_and_runs(family: str, family_dirs, tmp_path: Path) -> None:
    folder = family_dirs[family]
    sixteen = "bf16" if FAMILIES[family][3] else "f16"
    f16 = _export(folder, tmp_path / "m.f16.gguf", sixteen, tokenizer_pre=_pre(family))
    direct = _export(folder, tmp_path / "m.q4_k_m.gguf", "q4_k_m", tokenizer_pre=_pre(family))
    assert direct.quantizer.startswith("ggml") and direct.intermediate_bytes == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f16.gguf.name, direct.gguf.name])
    ref = _llama_cpp_quantize(f16.gguf, tmp_path / "ref.gguf", "q4_k_m")
    types = _assert_same_tensors(direct.gguf, ref)
    # llama.cpp's mix, not one type everywhere
    assert types["output.weight" if "output.weight" in types else "token_embd.weight"] == "Q6_K"
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert types["blk.0.attn_v.weight"] == "Q6_K" and types["blk.1.attn_v.weight"] == "Q4_K"
    if family == "qwen2":
        assert types["blk.0.ffn_down.weight"] == "Q8_0"  # 640 columns: not whole 256-blocks
    _runs(direct.gguf)


def test_every_other_kquant_equals_llama_cpp(family_dirs, tmp_path: Path) -> None:
    """On qwen2: tied (no output tensor to quantize) and its 640-wide ffn_down shows each fallback."""
    folder = family_dirs["qwen2"]
    f16 = _export(folder, tmp_path / "m.f16.gguf", "f16", tokenizer_pre="qwen2")
    for quant in ALL_KQUANTS:
        if quant == "q4_k_m":  # the test above
            continue
        direct = _export(folder, tmp_path / f"m.{quant}.gguf", quant, tokenizer_pre="qwen2")
        assert direct.quantizer.startswith("ggml"), quant
        ref = _llama_cpp_quantize(f16.gguf, tmp_path / f"ref.{quant}.gguf", quant)
        types = _assert_same_tensors(direct.gguf, ref)
        assert _fields(direct.gguf)["general.file_type"] == _fields(ref)["general.file_type"]
        if quant == "q4_k_s":
            assert types["blk.3.attn_v.weight"] == "Q5_K" and types["blk.4.attn_v.weight"] == "Q4_K"


def test_rows_shorter_than_a_block_fall_back_as_llama_cpp_does(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """64 columns: Q4_K -> Q5_0, Q6_K -> Q8_0, as llama.cpp's tensor_type_fallback does."""
    f16 = _export(tiny_llama_dir, tmp_path / "t.f16.gguf", "f16")
    for quant in ("q4_k_m", "q5_k_m", "q3_k_l"):
        direct = _export(tiny_llama_dir, tmp_path / f"t.{quant}.gguf", quant)
        assert direct.quantizer.startswith("ggml")
        ref = _llama_cpp_quantize(f16.gguf, tmp_path / f"ref.{quant}.gguf", quant)
        types = _assert_same_tensors(direct.gguf, ref)
        assert "Q4_K" not in types.values() and "Q6_K" not in types.values()


def test_merged_adapter_is_rounded_as_the_16bit_file_holds_it(family_dirs, tmp_path: Path) -> None:
    """A LoRA merged in float32 is rounded to bf16 (the intermediate llama.cpp would read) first."""
    from fwyy_ollama.export import export_gguf

    base = family_dirs["mistral"]
    adapter = make_adapter(base, tmp_path / "adapter")
    f16 = export_gguf(adapter_dir=adapter, out=tmp_path / "merged.bf16.gguf", quant="bf16")
    direct = export_gguf(adapter_dir=adapter, out=tmp_path / "merged.q5_k_m.gguf", quant="q5_k_m")
    assert direct.lora_modules == 7 * 8 and direct.quantizer.startswith("ggml")
    _assert_same_tensors(direct.gguf, _llama_cpp_quantize(f16.gguf, tmp_path / "ref.gguf", "q5_k_m"))


# ------------------------------------------------------------------------------ fallback


def test_without_libggml_the_export_goes_through_llama_cpp(
    family_dirs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fwyy_ollama.export import kquant

    folder = family_dirs["llama"]
    direct = _export(folder, tmp_path / "direct.gguf", "q4_k_m")
    monkeypatch.setattr(kquant, "find_libggml", lambda: None)
    old = _export(folder, tmp_path / "old.gguf", "q4_k_m")
    assert old.quantizer == "llama-cpp-python (llama_model_quantize)"
    assert old.intermediate_bytes > 0
    assert any("libggml-base was not found" in n for n in old.notes)
    _assert_same_tensors(direct.gguf, old.gguf)


def test_disk_check_counts_no_temporary_file(family_dirs, tmp_path: Path, monkeypatch) -> None:
    from fwyy_ollama.errors import FwyyError
    from fwyy_ollama.export import api

    monkeypatch.setattr(api, "free_bytes", lambda _d: 10 << 20)
    with pytest.raises(FwyyError) as err:
        _export(family_dirs["llama"], tmp_path / "x.gguf", "q4_k_m")
    assert "(the GGUF ~" in str(err.value) and "temporary" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_direct_path_can_be_switched_off(tiny_llama_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FWYY_KQUANT_DIRECT", "0")
    result = _export(tiny_llama_dir, tmp_path / "t.gguf", "q4_k_m")
    assert result.quantizer.startswith("llama-cpp-python") and result.intermediate_bytes > 0


def _fake_plan(n_layers: int, arch: str = "llama", cols: int = 256) -> tuple[SimpleNamespace, list]:
    import gguf

    spec = SimpleNamespace(arch=arch, n_layers=n_layers, n_head=8, n_head_kv=1)
    F16 = gguf.GGMLQuantizationType.F16
    names = ["token_embd.weight", "output.weight"]
    names += [f"blk.{i}.{t}.weight" for i in range(n_layers) for t in ("attn_v", "ffn_down")]
    return spec, [SimpleNamespace(gguf_name=n, shape=(cols, cols), qtype=F16) for n in names]


@pytest.mark.parametrize(
    ("quant", "plan", "why"),
    [
        ("q4_k_m", _fake_plan(80), "80-layer"),
        ("q4_k_m", _fake_plan(4, arch="gemma"), "gemma"),
        ("q8_0", _fake_plan(4), "not one of the file types"),
        ("q4_k_m", _fake_plan(4, cols=40), "no fallback type for Q8_0"),  # llama.cpp itself fails
    ],
)
def test_cases_the_rules_do_not_cover_are_left_to_llama_cpp(quant: str, plan, why: str) -> None:
    from fwyy_ollama.export import kquant
    from fwyy_ollama.export.quantize import quant_type

    spec, jobs = plan
    answer = kquant.prepare(quant_type(quant), spec, jobs)
    assert isinstance(answer, str) and why in answer


def test_named_llama_quantize_binary_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fwyy_ollama.export import kquant
    from fwyy_ollama.export.quantize import quant_type

    monkeypatch.setenv("FWYY_LLAMA_QUANTIZE", str(tmp_path / "llama-quantize"))
    spec, jobs = _fake_plan(4)
    assert "FWYY_LLAMA_QUANTIZE" in str(kquant.prepare(quant_type("q4_k_m"), spec, jobs))

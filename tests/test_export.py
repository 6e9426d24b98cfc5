"""GGUF export: real llama.cpp (llama-cpp-python), the real SmolLM2 and tiny random llama / qwen2.

Every export here is checked by loading it in llama.cpp: tokenization against the HF tokenizer,
logits against the HF model (with the adapter merged by PEFT, independently of fwyy's merge).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fwyy_ollama.errors import FwyyError

REPO = Path(__file__).resolve().parent.parent

TOKENIZER_KEYS = (
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.chat_template",
)


def _fields(path: Path) -> dict:
    import gguf

    reader = gguf.GGUFReader(path)
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def _tensor_types(path: Path) -> dict[str, str]:
    import gguf

    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(path).tensors}


def make_adapter(base: Path, dest: Path, seed: int = 1) -> Path:
    """A PEFT LoRA (r=8 on every projection) with random non-zero B, so merging changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        lora_dropout=0.0,
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.05)
    peft_model.save_pretrained(dest)
    (dest / "fwyy-adapter.json").write_text(
        json.dumps(
            {
                "profile": "fwyy-smollm2",
                "base": {"hf_id": "HuggingFaceTB/SmolLM2-135M-Instruct", "base_model_dir": str(base)},
                "base_model_dir": str(base),
                "chat_family": "chatml",
            }
        )
    )
    return dest


def _last_logits(gguf_path: Path, text: str = "The capital of France is") -> np.ndarray:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(gguf_path), n_ctx=128, logits_all=True, verbose=False, n_threads=2)
    ids = llm.tokenize(text.encode(), add_bos=False, special=True)
    llm.eval(ids)
    out = np.array(llm.scores[len(ids) - 1], dtype=np.float32)
    llm.close()
    return out


# ---------------------------------------------------------------------------------- SmolLM2


@pytest.fixture(scope="module")
def smollm2_f16(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from fwyy_ollama.export import export_gguf

    out = tmp_path_factory.mktemp("smol") / "smollm2-f16.gguf"
    return export_gguf(model_dir=smollm2_dir, out=out, quant="f16", verify=True)


def test_smollm2_f16_passes_verify(smollm2_f16) -> None:
    result = smollm2_f16
    v = result.verify
    assert v is not None and v.ok, v.failures
    assert v.tokenization_ok and len(v.tokenization) >= 9
    assert any("你" in c.text for c in v.tokenization) and any("🦙" in c.text for c in v.tokenization)
    assert any("<|im_start|>" in c.text for c in v.tokenization)
    assert v.min_cosine > 0.999 and v.top1_agreement == 1.0
    assert result.arch == "llama" and result.tokenizer_pre == "smollm"
    types = _tensor_types(result.gguf)
    assert types["blk.0.attn_q.weight"] == "F16" and types["blk.0.attn_norm.weight"] == "F32"
    assert "output.weight" not in types  # tied embeddings: llama.cpp reuses token_embd


def test_smollm2_tokenizer_metadata_equals_shipped_gguf(smollm2_f16, smollm2_gguf: Path) -> None:
    ours, shipped = _fields(smollm2_f16.gguf), _fields(smollm2_gguf)
    for key in TOKENIZER_KEYS:
        assert key in shipped, key
        assert ours.get(key) == shipped[key], f"{key} differs from the GGUF llama.cpp's converter wrote"
    assert ours["tokenizer.ggml.add_space_prefix"] == shipped["tokenizer.ggml.add_space_prefix"]
    # same hyper-parameters as the original conversion
    for key in (
        "llama.block_count",
        "llama.embedding_length",
        "llama.attention.head_count_kv",
        "llama.rope.freq_base",
    ):
        assert ours[key] == shipped[key]


def test_smollm2_eos_is_the_chat_templates_turn_end(smollm2_f16) -> None:
    fields = _fields(smollm2_f16.gguf)
    eos = fields["tokenizer.ggml.eos_token_id"]
    assert fields["tokenizer.ggml.tokens"][eos] == "<|im_end|>"
    assert smollm2_f16.eos_token == "<|im_end|>"
    # the HF folder converted from GGUF says <|im_start|>; the export says what it fixed
    assert smollm2_f16.eos_note is None or "<|im_end|>" in smollm2_f16.eos_note


def test_smollm2_q4_k_m_passes_verify(smollm2_dir: Path, tmp_path: Path) -> None:
    from fwyy_ollama.export import export_gguf

    out = tmp_path / "smollm2-q4_k_m.gguf"
    result = export_gguf(model_dir=smollm2_dir, out=out, quant="q4_k_m", verify=True)
    assert result.verify.ok, result.verify.failures
    assert result.verify.top1_agreement >= 0.6
    assert "llama" in result.quantizer
    assert _fields(out)["general.file_type"] == 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    types = set(_tensor_types(out).values())
    assert "Q6_K" in types and "Q4_K" in types  # llama.cpp's own mix (576 columns also need fallbacks)
    assert out.stat().st_size < 0.5 * smollm2_f16_size(smollm2_dir)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # the f16 intermediate is gone


def smollm2_f16_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) // 2


# ------------------------------------------------------------------------ tiny random models


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_tiny_models_export_f16_and_q4_k_m_with_adapter(
    kind: str, tiny_qwen2_dir: Path, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    from fwyy_ollama.export import export_gguf

    base = tiny_qwen2_dir if kind == "qwen2" else tiny_llama_dir
    # transformers tokenizes every qwen2 model with Qwen2Tokenizer's regex, here over SmolLM2's
    # vocab: no hash in llama.cpp's table names that mix, so the test names llama.cpp's "qwen2"
    # pre-tokenizer by hand and --verify proves it tokenizes exactly like HF
    pre = "qwen2" if kind == "qwen2" else None
    adapter = make_adapter(base, tmp_path / "adapter")
    plain = export_gguf(
        model_dir=base, out=tmp_path / "plain.gguf", quant="f16", verify=True, tokenizer_pre=pre
    )
    assert plain.verify.ok, plain.verify.failures
    assert plain.verify.tokenization_ok and plain.verify.min_cosine > 0.999
    merged = export_gguf(
        adapter_dir=adapter, out=tmp_path / "merged.gguf", quant="f16", verify=True, tokenizer_pre=pre
    )
    assert merged.verify.ok, merged.verify.failures  # matches PEFT's own merge_and_unload
    assert merged.arch == kind and merged.lora_modules == 2 * 7
    assert str(base) in merged.merged_into
    # the adapter changed the model: llama.cpp's logits move
    a, b = _last_logits(plain.gguf), _last_logits(merged.gguf)
    assert np.abs(a - b).max() > 1e-2
    q4 = export_gguf(
        adapter_dir=adapter, out=tmp_path / "merged-q4.gguf", quant="q4_k_m", verify=True, tokenizer_pre=pre
    )
    assert q4.verify.ok, q4.verify.failures
    fields = _fields(q4.gguf)
    assert fields["general.architecture"] == kind
    assert fields["fwyy.adapter_sha256"] and fields["fwyy.profile"] == "fwyy-smollm2"
    # a GGUF is shared: it names the adapter and base folders, never this machine's paths
    assert fields["fwyy.adapter"] == "adapter"
    assert fields["fwyy.merged_into"] in ("HuggingFaceTB/SmolLM2-135M-Instruct", base.name)  # Hub id, else folder
    local = (str(tmp_path), str(base), str(Path.home()))
    assert [k for k, v in fields.items() if isinstance(v, str) and any(p in v for p in local)] == []
    if kind == "qwen2":
        assert "blk.0.attn_q.bias" in _tensor_types(merged.gguf)


@pytest.mark.parametrize("quant", ["q8_0", "q4_0", "q5_1", "bf16"])
def test_numpy_quant_types_load_in_llama_cpp(quant: str, tiny_llama_dir: Path, tmp_path: Path) -> None:
    from fwyy_ollama.export import export_gguf

    result = export_gguf(model_dir=tiny_llama_dir, out=tmp_path / f"t-{quant}.gguf", quant=quant, verify=True)
    assert result.quantizer.startswith("numpy")
    assert result.verify.loaded and result.verify.tokenization_ok
    types = _tensor_types(result.gguf)
    assert types["blk.0.ffn_up.weight"] == quant.upper()
    assert types["blk.0.attn_norm.weight"] == "F32"
    if quant in ("q4_0", "q5_1"):
        assert types["output.weight"] == "Q8_0"
    assert result.verify.top1_agreement >= 0.5


# ------------------------------------------------------------------------------ refusals


def test_unknown_pre_tokenizer_hash_is_a_clear_error(tiny_llama_dir: Path, copy_of, tmp_path: Path) -> None:
    from fwyy_ollama.export import export_gguf
    from fwyy_ollama.export.vocab import UnknownPreTokenizerError

    folder = copy_of(tiny_llama_dir)
    tok = json.loads((folder / "tokenizer.json").read_text())
    # a byte-level BPE without the GPT-2 split regex: no llama.cpp pre-tokenizer behaves like it
    tok["pre_tokenizer"] = {
        "type": "ByteLevel",
        "add_prefix_space": False,
        "trim_offsets": False,
        "use_regex": False,
    }
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    out = tmp_path / "x.gguf"
    with pytest.raises(UnknownPreTokenizerError) as err:
        export_gguf(model_dir=folder, out=out, quant="f16")
    assert "check hash" in str(err.value) and "PRE_HASHES" in str(err.value)
    assert not out.exists()


def test_tiny_qwen2_without_named_pre_tokenizer_is_refused(tiny_qwen2_dir: Path, tmp_path: Path) -> None:
    from fwyy_ollama.export import export_gguf
    from fwyy_ollama.export.vocab import UnknownPreTokenizerError

    with pytest.raises(UnknownPreTokenizerError) as err:
        export_gguf(model_dir=tiny_qwen2_dir, out=tmp_path / "x.gguf", quant="f16")
    assert "Qwen2Tokenizer" in str(err.value) and "--tokenizer-pre" in str(err.value.hint)


def test_unsupported_architecture_lists_supported(tiny_llama_dir: Path, copy_of, tmp_path: Path) -> None:
    from fwyy_ollama.export import export_gguf

    folder = copy_of(tiny_llama_dir)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["architectures"] = ["GPT2LMHeadModel"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FwyyError) as err:
        export_gguf(model_dir=folder, out=tmp_path / "x.gguf", quant="f16")
    msg = str(err.value)
    assert "GPT2LMHeadModel" in msg and "LlamaForCausalLM" in msg and "Qwen2ForCausalLM" in msg


def test_template_without_turn_end_token_is_refused(tiny_llama_dir: Path, copy_of, tmp_path: Path) -> None:
    from fwyy_ollama.export import export_gguf

    folder = copy_of(tiny_llama_dir)
    (folder / "chat_template.jinja").write_text(
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    )
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(FwyyError) as err:
        export_gguf(model_dir=folder, out=tmp_path / "x.gguf", quant="f16")
    assert "never stop" in str(err.value)


def test_disk_check_refuses_early_with_figures(tiny_llama_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from fwyy_ollama.export import api, export_gguf

    monkeypatch.setattr(api, "free_bytes", lambda _d: 10 << 20)
    monkeypatch.setenv("FWYY_KQUANT_DIRECT", "0")  # the path with a temporary f16 file
    out = tmp_path / "x.gguf"
    with pytest.raises(FwyyError) as err:
        export_gguf(model_dir=tiny_llama_dir, out=out, quant="q4_k_m")
    msg = str(err.value)
    assert "not enough free disk" in msg and "10.0 MiB is free" in msg and "temporary f16" in msg
    assert list(tmp_path.iterdir()) == []


def test_quantized_base_without_16bit_original_is_refused(
    tiny_llama_dir: Path, copy_of, tmp_path: Path
) -> None:
    from fwyy_ollama.export import export_gguf

    base = copy_of(tiny_llama_dir)
    cfg = json.loads((base / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (base / "config.json").write_text(json.dumps(cfg))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (adapter / "fwyy-adapter.json").write_text(
        json.dumps({"base_model_dir": str(base), "base": {"hf_id": "nobody/none-bnb-4bit"}})
    )
    with pytest.raises(FwyyError) as err:
        export_gguf(adapter_dir=adapter, out=tmp_path / "x.gguf", quant="f16")
    assert "16-bit" in str(err.value) and "nobody/none" in str(err.value.hint)


def test_missing_llama_extra_is_named(tiny_llama_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from fwyy_ollama.errors import MissingExtraError
    from fwyy_ollama.export import export_gguf

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    monkeypatch.delenv("FWYY_LLAMA_QUANTIZE", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingExtraError) as err:
        export_gguf(model_dir=tiny_llama_dir, out=tmp_path / "x.gguf", quant="q4_k_m")
    assert "'llama' extra" in str(err.value) and "q4_k_m" in str(err.value)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ atomic output


_KILL_SCRIPT = """
import sys, time
from pathlib import Path
from fwyy_ollama.export import export_gguf
marker = Path(sys.argv[3])
def progress(done, total, desc):
    if done:
        marker.touch()
    time.sleep(0.05)
export_gguf(model_dir=sys.argv[1], out=sys.argv[2], quant="f32", progress=progress, workers=1)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_export_killed_midway_leaves_no_file(sig: int, smollm2_dir: Path, tmp_path: Path) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    out, marker = outdir / "killed.gguf", tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(smollm2_dir), str(out), str(marker)],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 120
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists() and proc.poll() is None, "export did not start writing"
    time.sleep(0.5)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert list(outdir.iterdir()) == []  # neither killed.gguf nor a temporary


def test_interrupted_export_keeps_the_old_file(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from fwyy_ollama.export import export_gguf

    out = tmp_path / "m.gguf"
    out.write_bytes(b"old")

    def boom(done: float, total: float | None, desc: str) -> None:
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_gguf(model_dir=tiny_llama_dir, out=out, quant="f16", progress=boom)
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["m.gguf"]


# ------------------------------------------------------------------------------------ CLI


def test_cli_export_json(tiny_qwen2_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.gguf"
    proc = subprocess.run(
        [sys.executable, "-m", "fwyy_ollama", "export", "--model", str(tiny_qwen2_dir), "-q", "q8_0",
         "--out", str(out), "--tokenizer-pre", "qwen2", "--json"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["gguf"] == str(out) and data["quant"] == "q8_0" and data["arch"] == "qwen2"
    assert data["size_bytes"] == out.stat().st_size


def test_cli_bad_input_is_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fwyy_ollama", "export", "--model", str(tmp_path), "-q", "f16"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "config.json is missing" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------ EOS check


@pytest.mark.parametrize("family", ["chatml", "llama3", "mistral"])
def test_eos_check_finds_each_familys_turn_end(family: str) -> None:
    """The turn end read from each family's real chat template is the token C's families declare."""
    from fwyy_ollama.chat_families import get_family
    from fwyy_ollama.export.vocab import CONTROL, NORMAL, Vocab, check_eos

    fam = get_family(family)
    specials = ["<s>", "</s>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "[INST]", "[/INST]"]  # fmt: skip
    tokens = [*specials, "a", "b"]
    types = [CONTROL] * len(specials) + [NORMAL, NORMAL]
    wrong = "<|end_of_text|>" if family == "llama3" else "<|endoftext|>"
    vocab = Vocab("gpt2", "x", tokens, types, chat_template=fam.hf_chat_template)
    vocab.special_ids = {"eos": tokens.index(wrong), "bos": tokens.index(fam.bos_token or "<s>")}
    note = check_eos(vocab)
    if family == "mistral":
        # Mistral's template writes eos_token itself after each answer: EOS is the turn end already
        assert note is None and tokens[vocab.special_ids["eos"]] == wrong
        vocab.special_ids["eos"] = tokens.index("</s>")
        assert check_eos(vocab) is None
        return
    assert tokens[vocab.special_ids["eos"]] == fam.eos_token
    assert note is not None and fam.eos_token in note and wrong in note
    assert check_eos(vocab) is None  # already right: nothing to change


# -------------------------------------------------------------------- SentencePiece (Mistral)


def _tiny_mistral_spm(dest: Path) -> Path:
    """A 2-layer random MistralForCausalLM with a small SentencePiece tokenizer.model trained here."""
    import io

    import sentencepiece as spm
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from fwyy_ollama.chat_families import get_family

    text = [
        "Security analysts read logs every day.",
        "SQL injection and cross-site scripting are common attacks.",
        "def f(x):\n    return x * 2",
        "网络安全 日志 分析 攻击",
    ] * 50
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_writer=model, vocab_size=400, model_type="bpe", byte_fallback=True,
        character_coverage=1.0, bos_id=1, eos_id=2, unk_id=0, pad_id=-1, control_symbols=["[INST]", "[/INST]"],
        normalization_rule_name="identity", remove_extra_whitespaces=False, minloglevel=2,
    )  # fmt: skip
    dest.mkdir()
    (dest / "tokenizer.model").write_bytes(model.getvalue())
    (dest / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
                    "unk_token": "<unk>", "add_bos_token": True})
    )  # fmt: skip
    tok = AutoTokenizer.from_pretrained(dest)
    tok.chat_template = get_family("mistral").hf_chat_template
    tok.save_pretrained(dest)
    cfg = AutoConfig.for_model(
        "mistral", vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(dest)
    return dest


def test_mistral_sentencepiece_is_written_as_llama_cpp_writes_it(tmp_path: Path) -> None:
    import llama_cpp
    import sentencepiece as spm
    from transformers import AutoTokenizer

    from fwyy_ollama.export import export_gguf
    from fwyy_ollama.export.verify import verify_gguf

    folder = _tiny_mistral_spm(tmp_path / "mistral")
    result = export_gguf(model_dir=folder, out=tmp_path / "m.gguf", quant="f16")
    assert result.arch == "llama" and result.hf_architecture == "MistralForCausalLM"
    fields = _fields(result.gguf)
    proc = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    assert fields["tokenizer.ggml.model"] == "llama" and fields["tokenizer.ggml.pre"] == "default"
    assert fields["tokenizer.ggml.tokens"] == [proc.IdToPiece(i) for i in range(proc.vocab_size())]
    scores = np.array(fields["tokenizer.ggml.scores"])
    assert np.allclose(scores, [proc.GetScore(i) for i in range(proc.vocab_size())])
    types = fields["tokenizer.ggml.token_type"]
    assert types[proc.PieceToId("[INST]")] == 3 and types[proc.PieceToId("<0x41>")] == 6 and types[0] == 2
    assert fields["tokenizer.ggml.add_bos_token"] is True
    assert fields["tokenizer.ggml.tokens"][fields["tokenizer.ggml.eos_token_id"]] == "</s>"
    # llama.cpp reads it: plain text tokenizes like HF, and the logits match the HF model
    hf = AutoTokenizer.from_pretrained(folder)
    llm = llama_cpp.Llama(model_path=str(result.gguf), vocab_only=True, verbose=False)
    for text in ("Security analysts read logs.", "def f(x):\n    return x * 2", "网络安全 分析 🚀"):
        assert llm.tokenize(text.encode(), add_bos=True, special=True) == hf.encode(text)
    llm.close()
    report = verify_gguf(
        result.gguf, model_dir=folder, quant="f16", strings=("Security analysts read logs.",)
    )
    assert report.min_cosine > 0.999
    # known llama.cpp behaviour, reported honestly by --verify: SentencePiece's dummy-prefix space
    # after special tokens ("[INST] x") differs from transformers' non-legacy Metaspace
    assert report.tokenization[0].ok


# ------------------------------------------------------------------------------ --verify fails


def test_verify_reports_logits_of_another_model(tiny_llama_dir: Path, tiny_qwen2_dir: Path, tmp_path: Path) -> None:
    """The cosine threshold fails a GGUF whose logits are not the reference model's."""
    from fwyy_ollama.export import export_gguf
    from fwyy_ollama.export.verify import verify_gguf

    gguf = export_gguf(model_dir=tiny_llama_dir, out=tmp_path / "llama.gguf", quant="f32").gguf
    same = verify_gguf(gguf, model_dir=tiny_llama_dir, quant="f32", strings=("hello",))
    assert same.ok and same.min_cosine > 0.9999
    other = verify_gguf(gguf, model_dir=tiny_qwen2_dir, quant="f32", strings=("hello",))
    assert not other.ok and other.min_cosine < 0.9
    assert [f for f in other.failures if f.startswith("logits differ from the HF model (min cosine")]


def test_failed_verify_leaves_no_gguf_and_keeps_the_old_one(
    tiny_llama_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fwyy_ollama.export import export_gguf, verify

    monkeypatch.setitem(verify.CLOSE_COSINE, "f32", 1.5)  # no file can pass: --verify must fail
    out = tmp_path / "fresh.gguf"
    with pytest.raises(FwyyError, match="--verify failed, fresh.gguf not written"):
        export_gguf(model_dir=tiny_llama_dir, out=out, quant="f32", verify=True)
    assert list(tmp_path.iterdir()) == []
    old = tmp_path / "old.gguf"
    old.write_bytes(b"the previous export")
    with pytest.raises(FwyyError, match="--verify failed"):
        export_gguf(model_dir=tiny_llama_dir, out=old, quant="f32", verify=True)
    assert old.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["old.gguf"]


@pytest.mark.parametrize("via", ["F16", "BF16"])
def test_round_through_equals_the_reference_rounding_for_every_exponent_and_sign(via: str) -> None:
    """The integer rounding behind K-quant exports gives numpy's float16 cast's / gguf's bfloat16 bits."""
    import gguf

    from fwyy_ollama.export.quantize import round_through

    high = np.arange(1 << 16, dtype=np.uint32) << 16  # every sign, exponent and top mantissa bits
    lows = [0, 1, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x3000, 0x5A5A]
    lows += [0x7FFF, 0x8000, 0x8001, 0xF000, 0xFFFF]
    x = np.concatenate([(high | np.uint32(low)).view(np.float32) for low in lows]).reshape(-1, 8)
    before = x.copy()
    T = gguf.GGMLQuantizationType
    with np.errstate(over="ignore", invalid="ignore"):
        if via == "F16":
            want = x.astype(np.float16).astype(np.float32)
        else:
            half = gguf.quants.quantize(x, T.BF16).view(np.uint16)
            want = (half.astype(np.uint32) << 16).view(np.float32).reshape(x.shape)
    got = round_through(x, T[via])
    assert got.shape == x.shape and got.dtype == np.float32
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), x.reshape(-1)[~same.reshape(-1)][:8]
    assert np.isnan(got).sum() == np.isnan(want).sum() > 0  # NaN stays NaN, never a number
    assert np.array_equal(x.view(np.uint32), before.view(np.uint32))  # the input is left alone

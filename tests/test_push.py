"""`fwyy push hf` against the loopback Hub (tests/fake_hub.py, the real huggingface_hub client) and
`fwyy push ollama` against the loopback daemon (tests/fake_ollama.py, the real `ollama` client):
what arrives, a refused token, a push cut off halfway and the push that finishes it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.push import push_ollama
from tests.fake_hub import FakeHub
from tests.fake_ollama import fake_ollama_fixture  # noqa: F401  (registers fixture "fake_ollama")
from tests.test_model_card import DEMO, make_build

REPO_ID = "me/fwyy-smollm2"


@pytest.fixture
def hub():  # type: ignore[no-untyped-def]
    with FakeHub(token="hf_write") as fake:
        fake.multipart_threshold = 1 << 20  # the 3 MiB GGUF goes up in parts, as large files do
        fake.part_size = 1 << 20
        yield fake


def fwyy(*args: str, cwd: Path, hub: FakeHub, token: str | None = "hf_write", **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, as a user runs it (no token saved by `hf auth login` in HF_HOME)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    environ |= {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(cwd / "hf-home"), "COLUMNS": "200", **env}
    if token is not None:
        environ["HF_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "fwyy_ollama", *args], capture_output=True, text=True, env=environ, cwd=cwd, timeout=180
    )


def _one_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    return stderr


def test_push_hf_sends_gguf_modelfile_card_and_adapter_to_a_private_repo(tmp_path: Path, hub: FakeHub) -> None:
    folder = make_build(tmp_path / "out")
    run = fwyy("push", "hf", REPO_ID, "--private", "--adapter", cwd=tmp_path, hub=hub)
    assert run.returncode == 0, run.stderr
    repo = hub.repos[REPO_ID]
    assert repo.private
    gguf = folder / f"{DEMO}.q4_k_m.gguf"
    assert repo.files[gguf.name] == gguf.read_bytes()
    assert repo.files["Modelfile"] == (folder / "Modelfile").read_bytes()
    assert repo.files["adapter/adapter_model.safetensors"] == (folder / "adapter" / "adapter_model.safetensors").read_bytes()
    # the GGUF went up in 1 MiB parts through the LFS multipart protocol, not inside the commit
    sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert [p for p in hub.uploads() if p.startswith(f"/storage/{sha}/")] == [f"/storage/{sha}/{i}" for i in (1, 2, 3)]
    # the card on the Hub is the one rendered for this repo, its front-matter YAML the Hub accepted
    card = repo.files["README.md"].decode()
    meta = yaml.safe_load(card[4 : card.index("\n---\n", 4)])
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and meta["license"] == "apache-2.0"
    assert f"hf download {REPO_ID}" in card
    # the adapter's metadata goes without this machine's paths
    adapter_meta = json.loads(repo.files["adapter/fwyy-adapter.json"])
    assert "secret-local-path" not in json.dumps(adapter_meta) and adapter_meta["steps"] == 55
    assert len(hub.commits) == 1 and hub.commits[0]["repo"] == REPO_ID
    assert f"pushed 6 files to {hub.endpoint}/{REPO_ID}" in run.stdout


@pytest.mark.parametrize(
    ("token", "expected"),
    [("hf_wrong", "refused the token (HTTP 401"), ("hf_read", "does not let this token write to me/fwyy-smollm2 (HTTP 403")],
)
def test_a_refused_token_is_one_line_naming_hf_token(tmp_path: Path, hub: FakeHub, token: str, expected: str) -> None:
    hub.read_only_tokens.add("hf_read")
    make_build(tmp_path / "out")
    run = fwyy("push", "hf", REPO_ID, cwd=tmp_path, hub=hub, token=token)
    assert run.returncode == 1
    err = _one_error(run.stderr)
    assert expected in err and "HF_TOKEN" in err
    assert REPO_ID not in hub.repos and not hub.uploads()


def test_no_token_offline_and_a_bad_repo_id_are_refused_before_any_request(tmp_path: Path, hub: FakeHub) -> None:
    make_build(tmp_path / "out")
    cases = [
        (fwyy("push", "hf", REPO_ID, cwd=tmp_path, hub=hub, token=None), "needs a token with write access"),
        (fwyy("push", "hf", REPO_ID, "--offline", cwd=tmp_path, hub=hub), "offline mode"),
        (fwyy("push", "hf", REPO_ID, cwd=tmp_path, hub=hub, HF_HUB_OFFLINE="1"), "offline mode"),
        (fwyy("push", "hf", "me/../etc", cwd=tmp_path, hub=hub), "is not a Hugging Face repo id"),
        (fwyy("push", "hf", "no-owner", cwd=tmp_path, hub=hub), "is not a Hugging Face repo id"),
    ]
    for run, expected in cases:
        assert run.returncode == 1
        assert expected in _one_error(run.stderr)
    assert hub.requests == []


def test_a_push_cut_off_halfway_fails_clearly_and_the_next_one_sends_only_the_rest(tmp_path: Path, hub: FakeHub) -> None:
    folder = make_build(tmp_path / "out")
    gguf_sha = hashlib.sha256((folder / f"{DEMO}.q4_k_m.gguf").read_bytes()).hexdigest()
    adapter_sha = hashlib.sha256((folder / "adapter" / "adapter_model.safetensors").read_bytes()).hexdigest()
    hub.fail_upload(adapter_sha, "refuse")  # the storage gets the adapter's body cut short
    first = fwyy("push", "hf", REPO_ID, "--adapter", cwd=tmp_path, hub=hub)
    assert first.returncode == 1
    err = _one_error(first.stderr)
    assert "while uploading adapter/adapter_model.safetensors" in err and "run the same command again" in err
    assert hub.commits == [] and gguf_sha in hub.lfs_objects and adapter_sha not in hub.lfs_objects

    sent_before = len(hub.uploads())
    second = fwyy("push", "hf", REPO_ID, "--adapter", "--json", cwd=tmp_path, hub=hub)
    assert second.returncode == 0, second.stderr
    again = hub.uploads()[sent_before:]
    assert again == [f"/storage/{adapter_sha}/1", f"/storage/{adapter_sha}/2"]  # the GGUF was not sent again
    result = json.loads(second.stdout)
    assert result["already"] == [f"{DEMO}.q4_k_m.gguf"] and result["sent"] == ["adapter/adapter_model.safetensors"]
    assert hub.repos[REPO_ID].files["adapter/adapter_model.safetensors"] == (folder / "adapter" / "adapter_model.safetensors").read_bytes()


def test_a_connection_dropped_mid_upload_is_retried_and_the_push_completes(tmp_path: Path, hub: FakeHub) -> None:
    folder = make_build(tmp_path / "out")
    gguf = folder / f"{DEMO}.q4_k_m.gguf"
    sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
    hub.fail_upload(sha, "drop")  # the first part's connection is cut after half its bytes
    run = fwyy("push", "hf", REPO_ID, cwd=tmp_path, hub=hub)
    assert run.returncode == 0, run.stderr
    assert hub.uploads().count(f"/storage/{sha}/1") == 2
    assert hub.repos[REPO_ID].files[gguf.name] == gguf.read_bytes()


# ------------------------------------------------------------------------------------------ Ollama


def _daemon_model(fake, name: str) -> str:  # type: ignore[no-untyped-def]
    digest = fake.add_blob(b"GGUF" + os.urandom(4000))
    fake.add_model(name, files={"model.gguf": digest})
    return digest


def test_push_ollama_streams_the_daemons_progress_to_success(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    digest = _daemon_model(fake_ollama, "me/fwyy-smollm2")
    seen: list[tuple[float, float | None, str]] = []
    result = push_ollama("me/fwyy-smollm2", progress=lambda d, t, s: seen.append((d, t, s)))
    assert result.statuses[0] == "retrieving manifest" and result.statuses[-2:] == ["pushing manifest", "success"]
    layer = [(d, t) for d, t, s in seen if s == f"pushing {digest[7:19]}"]
    assert layer[0][0] == 0 and layer[-1] == (4004, 4004)
    assert digest in fake_ollama.registry_blobs and result.page == "https://ollama.com/me/fwyy-smollm2"
    assert fake_ollama.requests_to("/api/push")[0].body["model"] == "me/fwyy-smollm2"


def test_push_ollama_as_copies_through_the_daemon_first(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    _daemon_model(fake_ollama, DEMO)
    result = push_ollama(DEMO, as_name="me/fwyy-smollm2:v1")
    assert fake_ollama.requests_to("/api/copy")[0].body == {"source": DEMO, "destination": "me/fwyy-smollm2:v1"}
    assert result.copied_from == DEMO and result.statuses[-1] == "success"
    assert "me/fwyy-smollm2:v1" in fake_ollama.registry_models


def test_a_name_without_namespace_is_refused_before_the_daemon_is_asked(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    _daemon_model(fake_ollama, DEMO)
    with pytest.raises(FwyyError) as info:
        push_ollama(DEMO)
    assert "library/fwyy-smollm2" in info.value.message and "--as YOUR-USER/fwyy-smollm2" in (info.value.hint or "")
    assert fake_ollama.requests_to("/api/push") == []


@pytest.mark.parametrize("refusal", ["namespace", "unknown key", "http 401"])
def test_the_registrys_refusal_says_add_your_key_and_use_your_namespace(fake_ollama, refusal: str, capsys) -> None:  # type: ignore[no-untyped-def]
    from fwyy_ollama.cli import main

    _daemon_model(fake_ollama, "someone/fwyy-smollm2")
    if refusal == "unknown key":
        fake_ollama.registry_owner = None
    elif refusal == "http 401":
        fake_ollama.errors["/api/push"] = (401, "access denied")
    with pytest.raises(SystemExit) as code:
        main(["push", "ollama", "someone/fwyy-smollm2"])
    assert code.value.code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and "refused to let the Ollama daemon push someone/fwyy-smollm2" in err
    assert "https://ollama.com/settings/keys" in err and "--as YOUR-USER/fwyy-smollm2" in err


def test_a_push_stream_that_ends_without_success_fails_and_a_second_push_finishes(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    digest = _daemon_model(fake_ollama, "me/fwyy-smollm2")
    fake_ollama.push_cut_after = 7  # the daemon's stream stops after the first layer, before the manifest
    with pytest.raises(FwyyError) as info:
        push_ollama("me/fwyy-smollm2")
    assert "ended before the daemon reported success" in info.value.message and "run the same command again" in (info.value.hint or "")
    assert "me/fwyy-smollm2" not in fake_ollama.registry_models
    fake_ollama.push_cut_after = None
    seen: list[tuple[float, float | None, str]] = []
    result = push_ollama("me/fwyy-smollm2", progress=lambda d, t, s: seen.append((d, t, s)))
    assert result.statuses[-1] == "success"
    # the layer the registry got the first time is reported complete at once, not sent again
    assert [(d, t) for d, t, s in seen if s == f"pushing {digest[7:19]}"] == [(4004, 4004)]


def test_push_ollama_of_a_model_the_daemon_lacks_says_so(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FwyyError) as info:
        push_ollama("me/nothing")
    assert "has no model me/nothing to push" in info.value.message
    with pytest.raises(FwyyError) as info:
        push_ollama("nothing", as_name="me/nothing")
    assert "no model nothing" in info.value.message

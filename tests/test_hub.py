"""Downloads from the Hugging Face Hub, against the loopback fake Hub (tests/fake_hub.py).

The real huggingface_hub client does the talking (repo info, file listing, HEAD, redirects to a
second origin, Range); what is checked is what a user sees: the files land in the ordinary HF
cache, a second run moves nothing, an interrupted download continues where it stopped, a gated
model names its licence page, a missing one says so, offline mode downloads nothing, and a disk
too small is refused before a byte moves.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fwyy_ollama import hub
from fwyy_ollama.errors import FwyyError
from tests.fake_hub import FakeHub

REPO = "fwyy-test/tiny-weights"
MB = 2**20


def _files(seed: int = 0) -> dict[str, bytes]:
    rnd = hashlib.sha256(str(seed).encode()).digest() * (3 * MB // 32 + 1)
    return {
        "config.json": b'{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}',
        "tokenizer.json": b'{"version": "1.0", "model": {"type": "BPE"}}',
        "model.safetensors": rnd[: 3 * MB + 17],
        "README.md": b"# not needed for training",
        "pytorch_model.bin": b"pickles are not read",
        "onnx/model.onnx": b"nor is onnx",
    }


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub() as h:
        monkeypatch.setenv("HF_ENDPOINT", h.endpoint)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
        yield h


WANTED = ("config.json", "model.safetensors", "tokenizer.json")


def test_fetch_fills_the_hf_cache_and_a_second_fetch_moves_nothing(fake_hub: FakeHub, tmp_path: Path) -> None:
    files = _files()
    fake_hub.add_repo(REPO, files)
    seen: list[tuple[float, float | None]] = []
    folder = hub.fetch_model(REPO, progress=lambda done, total, _: seen.append((done, total)))
    assert folder.parent.parent == tmp_path / "hf" / "hub" / "models--fwyy-test--tiny-weights"
    assert sorted(p.name for p in folder.iterdir()) == sorted(WANTED)
    for name in WANTED:
        assert (folder / name).read_bytes() == files[name]
    # The weights came through the redirect to the second ("CDN") origin, the small files directly.
    assert any(path.startswith("/cdn/") for _, path, _ in fake_hub.file_requests())
    assert fake_hub.body_bytes == sum(len(files[n]) for n in WANTED)
    assert seen[-1] == (sum(len(files[n]) for n in WANTED),) * 2
    # huggingface_hub itself finds the snapshot offline: it is the ordinary cache every HF tool reads.
    from huggingface_hub import snapshot_download

    found = snapshot_download(REPO, local_files_only=True, cache_dir=str(hub.hub_cache()), allow_patterns=list(WANTED))
    assert Path(found) == folder

    before = len(fake_hub.requests)
    assert hub.fetch_model(REPO) == folder
    assert len(fake_hub.requests) == before  # not even a HEAD


def test_a_dropped_connection_resumes_with_range(fake_hub: FakeHub) -> None:
    files = _files(1)
    fake_hub.add_repo(REPO, files)
    fake_hub.interrupt(REPO, "model.safetensors", MB)
    folder = hub.fetch_model(REPO)
    assert (folder / "model.safetensors").read_bytes() == files["model.safetensors"]
    ranges = [r for _, path, r in fake_hub.file_requests() if path.startswith("/cdn/")]
    assert ranges == ["", f"bytes={MB}-"]
    assert fake_hub.body_bytes == sum(len(files[n]) for n in WANTED)  # nothing sent twice


def test_ctrl_c_leaves_a_partial_file_the_next_run_continues(fake_hub: FakeHub) -> None:
    files = _files(2)
    fake_hub.add_repo(REPO, files)

    def interrupt_midway(done: float, total: float | None, what: str) -> None:
        if "model.safetensors" in what and done > 2 * MB:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hub.fetch_model(REPO, progress=interrupt_midway)
    sha = hashlib.sha256(files["model.safetensors"]).hexdigest()
    partial = hub.hub_cache() / "models--fwyy-test--tiny-weights" / "blobs" / f"{sha}.incomplete"
    kept = partial.stat().st_size
    assert MB < kept < len(files["model.safetensors"])
    sent = fake_hub.body_bytes
    folder = hub.fetch_model(REPO)
    assert (folder / "model.safetensors").read_bytes() == files["model.safetensors"]
    assert not partial.exists()
    assert f"bytes={kept}-" in [r for _, _, r in fake_hub.file_requests()]
    # The rest of the shard, and the one file the interrupted run had not reached.
    assert fake_hub.body_bytes - sent == len(files["model.safetensors"]) - kept + len(files["tokenizer.json"])


def test_a_gated_model_names_its_licence_page_and_a_token_opens_it(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add_repo("meta-llama/Tiny-Gated", _files(3), gated=True)
    with pytest.raises(FwyyError) as info:
        hub.fetch_model("meta-llama/Tiny-Gated")
    assert "refused access" in info.value.message and "HTTP 401" in info.value.message
    assert f"{fake_hub.endpoint}/meta-llama/Tiny-Gated" in (info.value.hint or "")
    assert "HF_TOKEN" in (info.value.hint or "")
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(FwyyError) as info:
        hub.fetch_model("meta-llama/Tiny-Gated")
    assert "HF_TOKEN is set" in (info.value.hint or "")
    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    assert (hub.fetch_model("meta-llama/Tiny-Gated") / "config.json").is_file()


def test_a_missing_model_is_named(fake_hub: FakeHub) -> None:
    with pytest.raises(FwyyError) as info:
        hub.fetch_model("nobody/no-such-model")
    assert "nobody/no-such-model does not exist on the Hugging Face Hub" in info.value.message
    assert fake_hub.endpoint in info.value.message


def test_offline_downloads_nothing(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hub.add_repo(REPO, _files())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FwyyError) as info:
        hub.fetch_model(REPO)
    assert "offline mode" in info.value.message
    assert f"hf download {REPO}" in (info.value.hint or "")
    assert fake_hub.requests == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    folder = hub.fetch_model(REPO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.fetch_model(REPO) == folder  # cached models still serve offline


def test_a_disk_too_small_is_refused_before_downloading(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    fake_hub.add_repo(REPO, _files())
    probe = hub.hub_cache()
    while not probe.exists():
        probe = probe.parent
    # Keep-free margin set just above what this disk has: the few MB the repo needs no longer fit.
    monkeypatch.setattr(hub, "SPARE_BYTES", shutil.disk_usage(probe).free)
    with pytest.raises(FwyyError) as info:
        hub.fetch_model(REPO)
    assert "needs 0.00 GiB" in info.value.message and "free there" in info.value.message
    assert "HF_HOME" in (info.value.hint or "")
    assert fake_hub.file_requests() == []


def test_doctor_says_what_build_would_download(fake_hub: FakeHub) -> None:
    files = _files()
    fake_hub.add_repo(REPO, files)
    text = hub.describe(REPO)
    assert "not cached" in text and "3 files" in text and fake_hub.endpoint in text
    assert fake_hub.file_requests() == []
    hub.fetch_model(REPO)
    assert hub.describe(REPO).startswith("cached at ")


def test_repo_without_safetensors_is_refused(fake_hub: FakeHub) -> None:
    fake_hub.add_repo("old/pickles", {"config.json": b"{}", "pytorch_model.bin": b"x" * 100})
    with pytest.raises(FwyyError, match="no .safetensors weights"):
        hub.fetch_model("old/pickles")


def test_hf_endpoint_is_read_at_call_time(fake_hub: FakeHub) -> None:
    assert hub.endpoint() == fake_hub.endpoint == os.environ["HF_ENDPOINT"]

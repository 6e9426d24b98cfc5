"""Record format: validation reports every bad line, loading, derived fields, chat messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fwyy_ollama.dataset.records import (
    KEYS,
    dedupe,
    dumps_record,
    load_records,
    record_category,
    record_label,
    record_lang,
    scan_file,
    to_messages,
    user_message,
    validate_files,
    write_records,
)
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.prompts import system_prompt
from fwyy_ollama.report import Label, Report, render_report

GOOD_OUTPUT = render_report(
    Report("This SQL input adds `OR 1=1`.", Label.HIGH, "Login bypass (CWE-89).", "Bind parameters."), "en"
)
GOOD = {"instruction": "Check this SQL input.", "input": "' OR 1=1 --", "output": GOOD_OUTPUT}


def _line(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


@pytest.fixture
def broken_file(tmp_path: Path) -> Path:
    """A file with one good line and ten different kinds of broken line (line numbers in comments)."""
    lines = [
        _line(GOOD),  # 1 good
        '{"instruction": "x", "input": "y", "output": ',  # 2 not JSON
        _line(["a", "list"]),  # 3 not an object
        _line({"instruction": "x", "output": GOOD_OUTPUT}),  # 4 missing input
        _line({**GOOD, "category": "sqli"}),  # 5 unknown key
        _line({**GOOD, "input": 42}),  # 6 wrong type
        _line({**GOOD, "instruction": "  "}),  # 7 empty instruction
        _line({**GOOD, "output": GOOD_OUTPUT.replace("Risk: Login bypass (CWE-89).\n", "")}),  # 8 no risk
        _line({**GOOD, "output": GOOD_OUTPUT.replace("Label: high", "Label: dangerous")}),  # 9 bad label
        "",  # 10 blank: ignored
        _line({**GOOD, "output": "Label: high\nAnalysis: a\nRisk: b\nSolution: c"}),  # 11 out of order
    ]
    path = tmp_path / "broken.jsonl"
    data = ("\n".join(lines) + "\n").encode() + b'{"instruction": "\xff\xfe"}\n'  # 12 not UTF-8
    path.write_bytes(data)
    return path


def test_every_kind_of_broken_line_is_reported_with_its_line_number(broken_file: Path) -> None:
    records, problems = scan_file(broken_file)
    assert records == [GOOD]
    found = {(p.line, p.field) for p in problems}
    expected = {
        (2, "json"),
        (3, "record"),
        (4, "input"),
        (5, "category"),
        (6, "input"),
        (7, "instruction"),
        (8, "output"),
        (9, "output"),
        (11, "output"),
        (12, "encoding"),
    }
    assert found == expected
    text = "\n".join(map(str, problems))
    assert f"{broken_file}:2: json: not valid JSON" in text
    assert f"{broken_file}:4: input: missing" in text
    assert f"{broken_file}:5: category: unknown key" in text
    assert f"{broken_file}:6: input: expected a string, got int" in text
    assert f"{broken_file}:8: output: missing the risk part" in text
    assert f"{broken_file}:9: output: label 'dangerous' is not on the scale" in text
    assert f"{broken_file}:11: output: parts out of order" in text
    assert f"{broken_file}:12: encoding: not UTF-8" in text


def test_load_records_refuses_a_broken_file_naming_its_lines(broken_file: Path) -> None:
    with pytest.raises(FwyyError) as info:
        load_records(broken_file)
    assert "10 bad line(s)" in str(info.value) and f"{broken_file}:3: record:" in str(info.value)


def test_validate_files_counts_good_records_across_files(tmp_path: Path, broken_file: Path) -> None:
    good = write_records(tmp_path / "good.jsonl", [GOOD, {**GOOD, "input": ""}])
    count, problems = validate_files([good, broken_file, tmp_path / "missing.jsonl"])
    assert count == 3
    assert any(p.field == "file" and "no such file" in p.problem for p in problems)


def test_write_then_load_roundtrips_and_is_canonical(tmp_path: Path) -> None:
    shuffled = {"output": GOOD["output"], "input": GOOD["input"], "instruction": GOOD["instruction"]}
    path = write_records(tmp_path / "a.jsonl", [shuffled])
    assert load_records(path) == [GOOD]
    line = path.read_text(encoding="utf-8").splitlines()[0]
    assert line == dumps_record(GOOD) and list(json.loads(line)) == list(KEYS)
    assert path.stat().st_mode & 0o044  # readable by others, like any data file


def test_json_array_files_are_read_too(tmp_path: Path) -> None:
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps([GOOD, {"instruction": "x"}]), encoding="utf-8")
    records, problems = scan_file(path)
    assert records == [GOOD] and {p.field for p in problems} == {"input", "output"}
    assert all(p.line == 2 for p in problems)


def test_derived_fields() -> None:
    assert record_label(GOOD) is Label.HIGH
    assert record_category(GOOD) == "sqli"
    assert record_lang(GOOD) == "en"
    zh = {
        **GOOD,
        "output": render_report(
            Report("这条 Shell 命令删除根目录。", Label.CRITICAL, "数据销毁。", "不要运行。")
        ),
    }
    assert record_category(zh) == "bash" and record_lang(zh) == "zh" and record_label(zh) is Label.CRITICAL
    # Records written elsewhere (no category word in the analysis): the input decides.
    other = {
        "instruction": "Check",
        "input": "<img src=x onerror=alert(1)>",
        "output": render_report(Report("It runs script.", Label.MEDIUM, "r", "s"), "en"),
    }
    assert record_category(other) == "xss"
    assert record_category({**other, "input": "import pickle\npickle.loads(x)"}) == "python"


def test_to_messages_uses_the_system_prompt_and_joins_instruction_and_input() -> None:
    messages = to_messages(GOOD)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[0]["content"] == system_prompt("en")
    assert messages[1]["content"] == "Check this SQL input.\n\n' OR 1=1 --"
    assert messages[2]["content"] == GOOD_OUTPUT
    assert to_messages(GOOD, "zh")[0]["content"] == system_prompt("zh")
    assert user_message({**GOOD, "input": "  "}) == "Check this SQL input."


def test_dedupe_on_normalized_input_keeps_case_variants() -> None:
    a = {**GOOD, "input": "' OR 1=1 --"}
    b = {**GOOD, "input": "  '  OR 1=1\t--  "}
    c = {**GOOD, "input": "' oR 1=1 --"}
    assert dedupe([a, b, c]) == [a, c]

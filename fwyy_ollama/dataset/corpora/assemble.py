"""`fwyy dataset corpora`: the real-corpus training file and the real-world held-out set.

Two files come out, one per role, and nothing crosses between them:
- `corpora.train.jsonl`: every "train" item as Alpaca records, once in English and once in
  Chinese (the instruction drawn per record, the answer worded by explain.py from what the input
  contains, rated by the source's label or, failing that, its most severe feature);
- `realworld.eval.jsonl`: every "realworld" item as it came, with its verdict, severity where the
  rubric fixes one, source and licence; `fwyy eval --data` scores models on it.

An input is one group after `split.skeleton` (which undoes case, encodings, comments, spacing and
renamed variables): a training item whose skeleton appears in the real-world set, or in the shipped
generated eval set, is dropped from training, so no eval input was ever trained on. Sources are
capped per category and verdict with a seeded draw, so one big payload list cannot drown the
rest, and the same installed packages always give byte-identical files.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fwyy_ollama.atomic import atomic_path
from fwyy_ollama.dataset.corpora import CorpusItem, Source, SourceMissing, sources
from fwyy_ollama.dataset.explain import explain, find_features
from fwyy_ollama.dataset.instructions import pick_instruction
from fwyy_ollama.dataset.records import Record, load_records, write_records
from fwyy_ollama.dataset.split import skeleton
from fwyy_ollama.report import render_report

SEED = 20261202
TRAIN_FILE = "corpora.train.jsonl"
REALWORLD_FILE = "realworld.eval.jsonl"
GENERATED_EVAL = "security.eval.jsonl"
GENERATED_TRAIN = "security.train.jsonl"
TRAIN_CAP = 700
"""Training items per category and verdict at most (before the two languages double them)."""
REALWORLD_CAP = 60
"""Real-world items per category and verdict at most: 480 in all, a CPU can score them in minutes."""
REALWORLD_KEYS = ("input", "category", "risky", "label", "source", "license")
Progress = Callable[[float, float | None, str], None]


@dataclass
class AssembleResult:
    train: Path
    realworld: Path
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Source name -> why it was not read (its package is missing)."""
    dropped_leaks: int = 0
    unexplained: int = 0
    """Risky training items without a severity or a technique explain.py can name (left out)."""


def _load(source: Source) -> list[CorpusItem]:
    items = source.load()
    for item in items:
        if item.category not in ("sqli", "xss", "bash", "python"):
            raise ValueError(f"{source.name}: bad category {item.category!r}")
    return items


def _capped(items: list[CorpusItem], cap: int, rng: random.Random) -> list[CorpusItem]:
    """At most `cap` items per (category, verdict), drawn evenly across sources."""
    cells: dict[tuple[str, bool], dict[str, list[CorpusItem]]] = {}
    for item in items:
        cells.setdefault((item.category, item.risky), {}).setdefault(item.source, []).append(item)
    out: list[CorpusItem] = []
    for key in sorted(cells):
        by_source = cells[key]
        queues = [rng.sample(by_source[s], len(by_source[s])) for s in sorted(by_source)]
        taken: list[CorpusItem] = []
        while len(taken) < cap and any(queues):
            for q in queues:
                if q and len(taken) < cap:
                    taken.append(q.pop())
        out.extend(taken)
    return out


def _dedupe(items: Iterable[CorpusItem], taken: set[str]) -> list[CorpusItem]:
    out = []
    for item in items:
        key = skeleton(item.text)
        if key and key not in taken:
            taken.add(key)
            out.append(item)
    return out


def realworld_row(item: CorpusItem) -> dict[str, object]:
    return {
        "input": item.text,
        "category": item.category,
        "risky": item.risky,
        "label": item.label.value if item.label is not None else None,
        "source": item.source,
        "license": item.license,
    }


def train_records(items: Iterable[CorpusItem], rng: random.Random) -> list[Record]:
    records: list[Record] = []
    for item in items:
        verdict = item.label if item.label is not None else item.risky
        for lang in ("en", "zh"):
            report = explain(item.text, item.category, verdict, lang)
            records.append(
                {
                    "instruction": pick_instruction(item.category, lang, rng),
                    "input": item.text,
                    "output": render_report(report, lang),
                }
            )
    return records


def assemble(out_dir: Path, *, progress: Progress | None = None, seed: int = SEED) -> AssembleResult:
    """Read every installed source and write both files into `out_dir` (train/data/ when shipping)."""
    rng = random.Random(seed)
    by_role: dict[str, list[CorpusItem]] = {"train": [], "realworld": []}
    skipped: dict[str, str] = {}
    all_sources = list(sources())
    for i, source in enumerate(all_sources):
        if progress:
            progress(i, len(all_sources), f"reading {source.name}")
        try:
            by_role[source.role].extend(_load(source))
        except SourceMissing as exc:
            skipped[source.name] = str(exc)
    # The held-out inputs come first: training gives way to them, never the reverse.
    taken: set[str] = set()
    generated_eval = out_dir / GENERATED_EVAL
    if generated_eval.is_file():
        taken.update(skeleton(r["input"]) for r in load_records(generated_eval))
    # A real-world input the generator also trains on (e.g. `admin'--`) is no longer held out.
    generated_train = out_dir / GENERATED_TRAIN
    trained = {skeleton(r["input"]) for r in load_records(generated_train)} if generated_train.is_file() else set()
    realworld = _capped(_dedupe(by_role["realworld"], taken | trained), REALWORLD_CAP, rng)
    taken.update(skeleton(item.text) for item in realworld)
    before = len(by_role["train"])
    # A risky item whose source gives no severity and whose technique explain.py cannot name would
    # be taught as "looks like an attack": a guess, not an analysis. It stays out of training.
    explainable = [it for it in by_role["train"] if not it.risky or it.label or find_features(it.text, it.category)]
    unexplained = len(by_role["train"]) - len(explainable)
    train_items = _dedupe(explainable, taken)
    dropped = before - unexplained - len(train_items)
    train_items = _capped(train_items, TRAIN_CAP, rng)
    rng.shuffle(train_items)
    if progress:
        progress(len(all_sources), len(all_sources), "writing")
    train_path = write_records(out_dir / TRAIN_FILE, train_records(train_items, rng))
    rw_path = out_dir / REALWORLD_FILE
    with atomic_path(rw_path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for item in sorted(realworld, key=lambda it: (it.category, not it.risky, it.source, it.text)):
            fh.write(json.dumps(realworld_row(item), ensure_ascii=False) + "\n")
    counts = {
        "train": Counter(f"{it.category}/{'risky' if it.risky else 'safe'}" for it in train_items),
        "realworld": Counter(f"{it.category}/{'risky' if it.risky else 'safe'}" for it in realworld),
    }
    return AssembleResult(train_path, rw_path, counts, skipped, dropped, unexplained)

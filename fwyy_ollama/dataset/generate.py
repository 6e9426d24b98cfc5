"""The seeded generator behind `fwyy dataset generate` and the shipped train/eval files.

For every category x label cell it draws distinct samples from the catalog (round-robin over the
cell's templates, so no template dominates), gives each up to `variants` augmented variants (a
label-keeping rewrite from augment.py, or the same template with renamed variables), and splits
whole groups: `eval_per_cell` groups of every cell go to eval (one record each, languages
alternating, so eval is balanced over category x label and zh/en), the rest go to train with all
their variants. A group is the input's skeleton (split.skeleton); a draw whose skeleton is already
taken, in any cell, is rejected, and a variant whose skeleton differs from its group's is
dropped, so the two files can never share a sample.

Then `framed` of the train groups gain one more member: the original in its natural frame
(augment.FRAMINGS: a script with a shebang, a payload inside an HTTP request), which is how
inputs reach an analyst outside a dataset. Framing has its own generator seeded from `seed` and
runs after the split, so it touches neither the eval file nor the other train records.

Everything comes from `random.Random(seed)` (and the framing's) consumed in a fixed order, and
records are serialised one way (records.dumps_record), so the same seed gives byte-identical files.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fwyy_ollama.dataset import augment
from fwyy_ollama.dataset.catalog import (
    Category,
    Params,
    Template,
    categories,
    draw_params,
    render_input,
    render_texts,
)
from fwyy_ollama.dataset.instructions import pick_instruction
from fwyy_ollama.dataset.records import (
    Record,
    category_from_text,
    normalize_input,
    write_records,
)
from fwyy_ollama.dataset.split import skeleton
from fwyy_ollama.report import Label, parse_report, render_report

DEFAULT_SEED = 20260125
TRAIN_FILE = "security.train.jsonl"
EVAL_FILE = "security.eval.jsonl"
Progress = Callable[[float, float | None, str], None]


@dataclass
class _Member:
    input: str
    params: Params
    notes: tuple[str, str] = ("", "")
    kind: str = "original"


@dataclass
class _Group:
    category: Category
    template: Template
    key: str
    members: list[_Member] = field(default_factory=list)


@dataclass(frozen=True)
class GeneratedDataset:
    """Records of both splits plus what made them."""

    train: list[Record]
    eval: list[Record]
    seed: int
    cells: dict[str, int]
    """groups drawn per 'category/label' cell."""
    kinds: dict[str, int] = field(default_factory=dict)
    """records per member kind (original, rename, or an augmentation's name)."""


@dataclass(frozen=True)
class GenerateResult:
    """The stage output: the files written and the settings that made them."""

    train_path: Path
    eval_path: Path
    train_records: int
    eval_records: int
    seed: int
    settings: dict[str, float] = field(default_factory=dict)
    """eval_per_cell, train_groups_per_cell, variants, framed: with the seed, all that decides the bytes."""

    def to_json(self) -> dict[str, object]:
        return {
            "train": {"path": str(self.train_path), "records": self.train_records},
            "eval": {"path": str(self.eval_path), "records": self.eval_records},
            "seed": self.seed,
            **self.settings,
        }


def _variable_fields(t: Template) -> list[str]:
    return [f for f in t.fields() if f.startswith("v_")]


def _make_variants(group: _Group, rng: random.Random, n: int, seen_inputs: set[str]) -> None:
    """Add up to n variants to the group (each a different augmentation kind)."""
    base = group.members[0]
    t, cat = group.template, group.category
    kinds: list[str] = [a.name for a in augment.applicable(cat.name, t.label)]
    if _variable_fields(t):
        kinds.append("rename")
    rng.shuffle(kinds)
    for kind in kinds:
        if len(group.members) > n:
            break
        if kind == "rename":
            keep = {k: v for k, v in base.params.items() if not k.startswith("v_")}
            params = draw_params(t, cat.pool, rng, keep=keep)
            if all(params[f] == base.params[f] for f in _variable_fields(t)):
                continue
            member = _Member(render_input(t, params), params, ("", ""), "rename")
        else:
            out = augment.BY_NAME[kind].apply(base.input, rng)
            if out is None:
                continue
            member = _Member(out[0], base.params, out[1], kind)
        norm = normalize_input(member.input)
        if norm in seen_inputs or skeleton(member.input) != group.key:
            continue
        seen_inputs.add(norm)
        group.members.append(member)


def _draw_groups(
    cat: Category, label: Label, want: int, rng: random.Random, taken: set[str], seen_inputs: set[str]
) -> list[_Group]:
    templates = [t for t in cat.templates if t.label is label]
    if not templates:
        raise ValueError(f"catalog has no {cat.name}/{label.value} template")
    groups: list[_Group] = []
    misses = [0] * len(templates)
    i = 0
    while len(groups) < want and min(misses) < 40:
        j = i % len(templates)
        i += 1
        if misses[j] >= 40:
            continue
        t = templates[j]
        params = draw_params(t, cat.pool, rng)
        text = render_input(t, params)
        key = skeleton(text)
        if key in taken:
            misses[j] += 1
            continue
        taken.add(key)
        seen_inputs.add(normalize_input(text))
        groups.append(_Group(cat, t, key, [_Member(text, params)]))
    return groups


def _record(group: _Group, member: _Member, lang: str, rng: random.Random) -> Record:
    cat, t = group.category, group.template
    subject = rng.choice(list(cat.subjects[lang]))
    report = render_texts(t, member.params, lang, subject)
    note = member.notes[0] if lang == "en" else member.notes[1]
    if note:
        sep = " " if lang == "en" else ""
        report = type(report)(report.analysis + sep + note, report.label, report.risk, report.solution)
    output = render_report(report, lang)
    # The generator's promises, checked on every record: the output parses back to itself and
    # its analysis names the category that record_category will derive.
    parsed = parse_report(output, strict=True)
    if render_report(parsed, lang) != output or parsed.label is not t.label:
        raise AssertionError(f"{t.key}: output does not round-trip:\n{output}")
    if category_from_text(parsed.analysis) != cat.name:
        raise AssertionError(f"{t.key}: analysis does not name its category first: {parsed.analysis[:80]!r}")
    return {"instruction": pick_instruction(cat.name, lang, rng), "input": member.input, "output": output}


def _add_framed(
    train: list[Record],
    groups: list[_Group],
    share: float,
    rng: random.Random,
    seen_inputs: set[str],
    kinds: Counter[str],
) -> None:
    """One framed member for `share` of the groups, inserted at random places in `train`."""
    for g in groups:
        framings = [a for a in augment.FRAMINGS if a.applies_to(g.category.name, g.template.label)]
        if not framings or rng.random() >= share:
            continue
        base = g.members[0]
        framing = rng.choice(framings)
        out = framing.apply(base.input, rng)
        if out is None or skeleton(out[0]) != g.key or normalize_input(out[0]) in seen_inputs:
            continue
        seen_inputs.add(normalize_input(out[0]))
        member = _Member(out[0], base.params, out[1], framing.name)
        train.insert(rng.randrange(len(train) + 1), _record(g, member, rng.choice(("en", "zh")), rng))
        kinds[member.kind] += 1


def generate(
    seed: int = DEFAULT_SEED,
    *,
    eval_per_cell: int = 20,
    train_groups_per_cell: int = 40,
    variants: int = 2,
    framed: float = 0.5,
    progress: Progress | None = None,
) -> GeneratedDataset:
    """Both splits, deterministically from `seed` (see the module docstring)."""
    rng = random.Random(seed)
    train_groups: list[_Group] = []
    taken: set[str] = set()
    seen_inputs: set[str] = set()
    train: list[Record] = []
    evals: list[Record] = []
    cells: dict[str, int] = {}
    kinds: Counter[str] = Counter()
    cats = categories()
    total = len(cats) * len(Label)
    done = 0
    for cat in cats:
        for label in Label:
            groups = _draw_groups(cat, label, eval_per_cell + train_groups_per_cell, rng, taken, seen_inputs)
            cells[f"{cat.name}/{label.value}"] = len(groups)
            for g in groups:
                _make_variants(g, rng, variants, seen_inputs)
            rng.shuffle(groups)
            for i, g in enumerate(groups[:eval_per_cell]):
                member = rng.choice(g.members)
                evals.append(_record(g, member, ("en", "zh")[i % 2], rng))
                kinds[member.kind] += 1
            train_groups.extend(groups[eval_per_cell:])
            for g in groups[eval_per_cell:]:
                for member in g.members:
                    train.append(_record(g, member, rng.choice(("en", "zh")), rng))
                    kinds[member.kind] += 1
            done += 1
            if progress:
                progress(done, total, f"{cat.name}/{label.value}")
    rng.shuffle(train)
    rng.shuffle(evals)
    _add_framed(train, train_groups, framed, random.Random(f"{seed}/framing"), seen_inputs, kinds)
    return GeneratedDataset(
        train=train, eval=evals, seed=seed, cells=cells, kinds=dict(sorted(kinds.items()))
    )


def write_dataset(
    out_dir: str | Path | None = None,
    seed: int = DEFAULT_SEED,
    *,
    eval_per_cell: int = 20,
    train_groups_per_cell: int = 40,
    variants: int = 2,
    framed: float = 0.5,
    progress: Progress | None = None,
) -> GenerateResult:
    """Generate and write security.train.jsonl / security.eval.jsonl (default: the shipped train/data/)."""
    from fwyy_ollama.resources import data_dir

    out = Path(out_dir) if out_dir is not None else data_dir()
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "eval_per_cell": eval_per_cell,
        "train_groups_per_cell": train_groups_per_cell,
        "variants": variants,
        "framed": framed,
    }
    data = generate(seed, progress=progress, **settings)
    train_path = write_records(out / TRAIN_FILE, data.train)
    eval_path = write_records(out / EVAL_FILE, data.eval)
    return GenerateResult(train_path, eval_path, len(data.train), len(data.eval), seed, settings)

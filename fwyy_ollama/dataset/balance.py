"""Resample training records so that no (language, category, verdict) group dominates.

Why: a model learns the label prior of its data as readily as the judgment. The shipped corpora
hold about two risky records for every safe one (attack payloads are easy to collect, harmless
look-alikes are not), and a model trained on them calls most harmless inputs risky. Balancing
gives every group the same number of records and keeps the total, so a recipe's steps and epochs
mean what they meant: small groups are repeated (whole copies first, then a random part), large
ones are sampled without repetition. Deterministic for a seed.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from fwyy_ollama.dataset.records import Record, record_category, record_label, record_lang


def group_key(record: Record) -> tuple[str, str, bool]:
    """(language, category or "other", risky) of a record."""
    return record_lang(record), record_category(record) or "other", record_label(record).value != "safe"


def balance_records(records: Sequence[Record], seed: int, *, risky_share: float = 0.5) -> list[Record]:
    """The records resampled to equal groups (same total, rounded), in a seeded random order.

    `risky_share` tilts each (language, category) pair's records toward the risky group (0.5:
    equal); a recipe that wants fewer missed attacks at the cost of more false alarms raises it.
    """
    if not 0.0 < risky_share < 1.0:
        raise ValueError(f"risky_share must lie between 0 and 1, not {risky_share}")
    groups: dict[tuple[str, str, bool], list[Record]] = defaultdict(list)
    for record in records:
        groups[group_key(record)].append(record)
    if len(groups) < 2:
        return list(records)
    rng = random.Random(seed)
    even = len(records) / len(groups)
    out: list[Record] = []
    for key in sorted(groups):
        members = groups[key]
        target = max(1, round(even * 2 * (risky_share if key[2] else 1.0 - risky_share)))
        copies, rest = divmod(target, len(members))
        out.extend(members * copies)
        out.extend(rng.sample(members, rest))
    rng.shuffle(out)
    return out

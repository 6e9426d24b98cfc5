"""Leak-free train / eval splits: an input and all its augmented variants stay on one side.

A *group* is identified by the input's skeleton: the input with every augmentation fwyy applies
undone (URL, HTML-entity and base64 encodings decoded, case folded, comments, quote-splitting and
whitespace (and `<tag/` slashes) removed, assigned variable names replaced by their order of appearance,
a payload framed in an HTTP request taken back out of it; script shebangs are comments). Two inputs
with one skeleton are the same sample for splitting purposes. The skeleton is deliberately
coarse: merging two different samples into one group costs a little balance, while letting a
variant cross the split would inflate the eval.

The same function checks the shipped files (tests/test_dataset_shipped.py): no skeleton occurs
in both train and eval.
"""

from __future__ import annotations

import base64
import binascii
import html
import random
import re
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from fwyy_ollama.dataset.records import Record, normalize_input

T = TypeVar("T")

_B64_TOKEN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def _decode_b64_tokens(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        token = m.group(0)
        padded = token + "=" * (-len(token) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return token
        if not decoded.isprintable() and not all(c.isprintable() or c in "\n\t" for c in decoded):
            return token
        return decoded

    return _B64_TOKEN.sub(repl, text)


_B64_PIPE = re.compile(
    r"echo\s+['\"]?([A-Za-z0-9+/=]+)['\"]?\s*\|\s*base64\s+(?:-d|--decode)\s*\|\s*(?:ba)?sh\b"
)


def decode(text: str) -> str:
    """Undo URL, HTML-entity and base64 encodings (nested up to three deep)."""
    for _ in range(3):  # nested encodings (URL of entities, base64 of URL, ...)
        before = text
        text = _B64_PIPE.sub(lambda m: _decode_b64_tokens(m.group(1)), text)
        if "%" in text:
            text = urllib.parse.unquote_plus(text) if re.search(r"%[0-9A-Fa-f]{2}", text) else text
        if "&" in text:
            text = html.unescape(text)
        text = _decode_b64_tokens(text)
        if text == before:
            break
    return text


_VARIABLE_DEF = re.compile(r"\b([A-Za-z_]\w*)\s*=(?!=)|\bfor\s+([A-Za-z_]\w*)\s+in\b|\bas\s+([A-Za-z_]\w*)")


def _rename_variables(text: str) -> str:
    """Replace names the input assigns (x = ..., for x in, as x) by v0, v1, ... in order."""
    names: dict[str, str] = {}
    for m in _VARIABLE_DEF.finditer(text):
        name = next(g for g in m.groups() if g)
        if name not in names and len(name) > 0:
            names[name] = f"v{len(names)}"
    if not names:
        return text
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")\b"
    )
    return pattern.sub(lambda m: names[m.group(1)], text)


_HTTP_REQUEST = re.compile(
    r"(?:GET|POST|PUT) (?P<target>\S+) HTTP/\d(?:\.\d)?\r?\n(?:[A-Za-z-]+:[^\n]*\n?)*(?:\r?\n(?P<body>.*))?",
    re.S,
)


def unwrap_http(text: str) -> str:
    """The longest parameter value of an HTTP request (query or form body), else the text itself.

    Undoes augment's request framing: a payload sent as `?q=<payload>` is the payload's group.
    """
    m = _HTTP_REQUEST.fullmatch(text.strip())
    if not m:
        return text
    query = m.group("target").partition("?")[2]
    pairs = [*query.split("&"), *(m.group("body") or "").strip().split("&")]
    values = [pair.partition("=")[2] for pair in pairs if "=" in pair]
    return max(values, key=len) if values else text


def skeleton(text: str) -> str:
    """The group identity of an input (see the module docstring)."""
    text = re.sub(r"/\*.*?\*/", " ", decode(unwrap_http(text)), flags=re.S)  # SQL / JS block comments
    text = re.sub(r"(?:^|[ \t])#.*$", " ", text, flags=re.M)  # shell / python comments
    text = re.sub(r"[ \t]--.*$|--[ \t]*-?[ \t]*$", " ", text, flags=re.M)  # trailing SQL comments
    text = re.sub(r"(?:#|--|/\*|;)+[ \t]*$", " ", text, flags=re.M)  # `9=9#`, `'--`, `'/*`: one payload
    text = normalize_input(text)
    text = text.replace("''", "").replace('""', "").replace("\\", "")  # b''ash, ba\sh
    text = re.sub(r"\$\{?ifs\}?", " ", text, flags=re.I)
    text = re.sub(r"(<[a-zA-Z][a-zA-Z0-9]*)/(?=[a-zA-Z])", r"\1 ", text)  # <svg/onload=...
    text = _rename_variables(text)
    text = text.casefold()
    return re.sub(r"[\s\"'`]+", "", text)


def group_records(
    records: Iterable[Record], key: Callable[[Record], str] | None = None
) -> dict[str, list[Record]]:
    """Records by group (skeleton of the input unless `key` says otherwise), in first-seen order."""
    key = key or (lambda r: skeleton(r["input"]))
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[key(record)].append(record)
    return dict(groups)


def split_groups(
    groups: Sequence[T], eval_fraction: float, *, seed: int, stratum: Callable[[T], str] | None = None
) -> tuple[list[T], list[T]]:
    """Whole groups to train or eval, `eval_fraction` of each stratum (category x label) to eval."""
    strata: dict[str, list[T]] = defaultdict(list)
    for g in groups:
        strata[stratum(g) if stratum else ""].append(g)
    train: list[T] = []
    evals: list[T] = []
    rng = random.Random(seed)
    for name in sorted(strata):
        members = list(strata[name])
        rng.shuffle(members)
        n_eval = round(len(members) * eval_fraction)
        if eval_fraction > 0 and len(members) > 1:
            n_eval = max(1, n_eval)
        evals.extend(members[:n_eval])
        train.extend(members[n_eval:])
    return train, evals


def leaks(train: Iterable[Record], evals: Iterable[Record]) -> list[str]:
    """Skeletons found on both sides (empty when the split is leak-free)."""
    train_keys = {skeleton(r["input"]) for r in train}
    return sorted({skeleton(r["input"]) for r in evals} & train_keys)


def split_records(
    records: Iterable[Record], eval_fraction: float, *, seed: int = 0
) -> tuple[list[Record], list[Record]]:
    """Deduplicate (normalized input), group by skeleton, and split whole groups, stratified by
    category x label, so no input nor any variant of it lands on both sides."""
    from fwyy_ollama.dataset.records import dedupe, record_category, record_label

    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError("eval_fraction must be in [0, 1)")
    groups = list(group_records(dedupe(records)).values())

    def stratum(members: list[Record]) -> str:
        first = members[0]
        return f"{record_category(first) or '?'}/{record_label(first).value}"

    train_groups, eval_groups = split_groups(groups, eval_fraction, seed=seed, stratum=stratum)
    return [r for g in train_groups for r in g], [r for g in eval_groups for r in g]

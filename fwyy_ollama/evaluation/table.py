"""The side-by-side table, as rows of text: one source for the rich table, markdown and --json readers.

"—" marks a figure that does not apply (a detector has no 5-way label or format; a category a
detector does not judge; no item with a known severity), so it can never be read as 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fwyy_ollama.evaluation.run import EvalResult, ModelResult

NA = "—"


def pct(x: float | None) -> str:
    return NA if x is None else f"{x:.1%}"


def f3(x: float | None) -> str:
    return NA if x is None else f"{x:.3f}"


def _decoding(m: ModelResult) -> str:
    if m.is_detector:
        return NA
    return {True: "constrained", False: "free", None: "free (no grammar)"}[m.constrain]


def _category_value(m: ModelResult, category: str, key: str, fmt: Callable[[Any], str]) -> str:
    figures = m.metrics.per_category.get(category)
    return NA if figures is None else fmt(figures.get(key))


def categories(result: EvalResult) -> list[str]:
    """Every category of the items asked, sorted."""
    return list(result.categories)


def rows(result: EvalResult, *, per_category: bool = True) -> list[tuple[str, list[str]]]:
    """(metric, one cell per model) for the whole table."""
    ms = result.models
    out: list[tuple[str, list[str]]] = [
        ("items scored", [str(m.metrics.n) for m in ms]),
        ("safe-vs-risky accuracy", [pct(m.metrics.risky_accuracy) for m in ms]),
        ("risky precision", [pct(m.metrics.precision) for m in ms]),
        ("risky recall", [pct(m.metrics.recall) for m in ms]),
        ("risky F1", [f3(m.metrics.f1) for m in ms]),
        (
            "5-way label accuracy",
            [
                NA
                if m.metrics.label_accuracy is None
                else f"{m.metrics.label_accuracy:.1%} of {m.metrics.n_labelled}"
                for m in ms
            ],
        ),
        ("macro-F1 (5-way)", [f3(m.metrics.macro_f1) for m in ms]),
        ("format compliance", [pct(m.metrics.format_compliance) for m in ms]),
    ]
    if per_category:
        for c in categories(result):
            out.append((f"{c} safe-vs-risky", [_category_value(m, c, "risky_accuracy", pct) for m in ms]))
            out.append((f"{c} risky F1", [_category_value(m, c, "f1", f3) for m in ms]))
            out.append((f"{c} 5-way", [_category_value(m, c, "label_accuracy", pct) for m in ms]))
    out += [
        (
            "mean latency",
            [NA if m.metrics.mean_latency_s is None else _seconds(m.metrics.mean_latency_s) for m in ms],
        ),
        ("tokens/s", [NA if m.metrics.tokens_per_s is None else f"{m.metrics.tokens_per_s:.1f}" for m in ms]),
        ("decoding", [_decoding(m) for m in ms]),
        ("backend", [m.backend for m in ms]),
    ]
    return out


def _seconds(s: float) -> str:
    if s < 0.001:
        return f"{s * 1e6:.1f} µs"
    return f"{s * 1000:.1f} ms" if s < 0.1 else f"{s:.2f} s"


def markdown_table(result: EvalResult, *, per_category: bool = True) -> str:
    """The side-by-side table as GitHub markdown (for the README and benchmark notes)."""
    names = [m.name for m in result.models]
    lines = ["| metric | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for label, values in rows(result, per_category=per_category):
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"

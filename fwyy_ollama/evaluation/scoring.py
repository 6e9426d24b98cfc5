"""Scoring: an answer's label, and the figures over many predictions (pure functions).

The question a user asks fwyy is "is this dangerous?", so the first figure is safe-vs-risky
accuracy (any label but safe counts as risky), with precision / recall / F1 of the risky class.
The 5-way figures (label accuracy, macro-F1 and the confusion matrix) count only items whose
severity is known. An answer that gives no label is a wrong verdict and a wrong label, never left
out: a model is not rewarded for failing to answer.

Classical detectors give a verdict only: their label figures, format compliance and tokens/s are
None ("not applicable"), and their predictions cover only the categories they judge.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fwyy_ollama.evaluation.data import LABELS

NONE_LABEL = "none"
"""Confusion-matrix column for answers that name no label."""

_LOOSE_LABEL = re.compile(
    r"^[ \t#>*_\-\d.)]*(?:label|rating|severity|risk level|标签|等级|风险等级|评级)[ \t*_]*[:：][ \t]*(?P<v>.+)$",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class Prediction:
    """One item's gold answer and what a model (or detector) said about it."""

    key: str
    category: str
    risky: bool
    """Gold verdict."""
    gold: str | None
    """Gold 5-way label; None where the data knows only the verdict."""
    predicted: str | None
    """The label read from the answer; None when it names none (always None for a detector)."""
    predicted_risky: bool | None
    """The verdict: label != safe, or the detector's; None when the answer names no label."""
    parsed: bool | None
    """All four parts parse (format compliance); None for a detector."""
    latency_s: float
    tokens: int | None
    """Answer tokens; None for a detector."""
    answer: str
    error: str | None = None
    raised_by: str | None = None
    """The static rule that overruled the model's "safe" (findings.VETO_RULES), as `fwyy analyze` does."""

    @property
    def verdict_correct(self) -> bool:
        return self.predicted_risky is not None and self.predicted_risky == self.risky

    @property
    def label_correct(self) -> bool:
        return self.gold is not None and self.predicted == self.gold


def score_answer(answer: str) -> tuple[str | None, bool, str | None]:
    """(label, parsed, reason): the answer's label, whether all four parts parse, and why not.

    The label comes from the parsed report (text form or Ollama's structured JSON); an answer that
    does not parse but still has a "Label:"/"标签：" line gets its label from that line, so a model
    is not scored wrong on its verdict only for a missing part (format compliance says that).
    """
    from fwyy_ollama.report import Label, ReportFormatError, parse_report

    try:
        return parse_report(answer).label.value, True, None
    except ReportFormatError as exc:
        reason = exc.reason
    for m in _LOOSE_LABEL.finditer(answer):
        try:
            return Label.parse(m.group("v")).value, False, reason
        except ReportFormatError:
            continue
    return None, False, reason


@dataclass
class Metrics:
    """Figures over one model's predictions; None = not applicable (no items, or a detector)."""

    n: int
    risky_accuracy: float | None
    """Safe-vs-risky accuracy."""
    precision: float | None
    recall: float | None
    f1: float | None
    """Of the risky class."""
    n_labelled: int
    """Items whose 5-way label is known."""
    label_accuracy: float | None
    macro_f1: float | None
    format_compliance: float | None
    mean_latency_s: float | None
    tokens_per_s: float | None
    verdicts: dict[str, int] = field(default_factory=dict)
    """tp / fp / tn / fn (risky is positive) and "none" (no label given)."""
    per_category: dict[str, dict[str, Any]] = field(default_factory=dict)
    """category -> the same figures for that category's items."""
    per_label: dict[str, dict[str, float]] = field(default_factory=dict)
    """label -> {"precision", "recall", "f1", "support"} over labelled items."""
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    """gold label -> predicted label (or "none") -> count, over labelled items."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _div(a: float, b: float) -> float:
    return a / b if b else 0.0


def verdict_figures(preds: Sequence[Prediction]) -> dict[str, Any]:
    """Safe-vs-risky accuracy and the risky class's precision / recall / F1 (0 where undefined).

    A risky item without an answer is a miss (fn); a safe item without one is neither tn nor fp,
    so it lowers accuracy but not precision. `verdicts["none"]` counts the answers without a label.
    """
    counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0, "none": 0}
    for p in preds:
        counts["none"] += p.predicted_risky is None
        if p.risky:
            counts["tp" if p.predicted_risky else "fn"] += 1
        elif p.predicted_risky is not None:
            counts["fp" if p.predicted_risky else "tn"] += 1
    n = len(preds)
    if not n:
        return {
            "n": 0,
            "risky_accuracy": None,
            "precision": None,
            "recall": None,
            "f1": None,
            "verdicts": counts,
        }
    tp = counts["tp"]
    precision, recall = _div(tp, tp + counts["fp"]), _div(tp, tp + counts["fn"])
    return {
        "n": n,
        "risky_accuracy": (tp + counts["tn"]) / n,
        "precision": precision,
        "recall": recall,
        "f1": _div(2 * precision * recall, precision + recall),
        "verdicts": counts,
    }


def label_figures(preds: Sequence[Prediction]) -> dict[str, Any]:
    """5-way accuracy, macro-F1 (mean F1 of the labels that occur in gold or predictions) and the
    confusion matrix, over the items whose label is known."""
    labelled = [p for p in preds if p.gold is not None]
    confusion = {g: {c: 0 for c in (*LABELS, NONE_LABEL)} for g in LABELS}
    for p in labelled:
        assert p.gold is not None
        confusion[p.gold][p.predicted or NONE_LABEL] += 1
    per_label: dict[str, dict[str, float]] = {}
    f1s: list[float] = []
    for lab in LABELS:
        tp = confusion[lab][lab]
        support = sum(confusion[lab].values())
        predicted = sum(confusion[g][lab] for g in LABELS)
        precision, recall = _div(tp, predicted), _div(tp, support)
        f1 = _div(2 * precision * recall, precision + recall)
        per_label[lab] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if support or predicted:
            f1s.append(f1)
    n = len(labelled)
    return {
        "n_labelled": n,
        "label_accuracy": _div(sum(p.label_correct for p in labelled), n) if n else None,
        "macro_f1": _div(sum(f1s), len(f1s)) if n else None,
        "per_label": per_label,
        "confusion": confusion,
    }


def _speed(preds: Sequence[Prediction], *, judge_only: bool) -> dict[str, Any]:
    seconds = sum(p.latency_s for p in preds)
    return {
        "format_compliance": None
        if judge_only or not preds
        else _div(sum(bool(p.parsed) for p in preds), len(preds)),
        "mean_latency_s": _div(seconds, len(preds)) if preds else None,
        "tokens_per_s": None if judge_only or not preds else _div(sum(p.tokens or 0 for p in preds), seconds),
    }


def _summary(preds: Sequence[Prediction], *, judge_only: bool) -> dict[str, Any]:
    verdict = verdict_figures(preds)
    labels = label_figures(preds)
    if judge_only:
        labels["label_accuracy"] = labels["macro_f1"] = None
    return {
        **{k: v for k, v in verdict.items() if k != "verdicts"},
        "n_labelled": labels["n_labelled"],
        "label_accuracy": labels["label_accuracy"],
        "macro_f1": labels["macro_f1"],
        **_speed(preds, judge_only=judge_only),
    }


def compute_metrics(preds: Sequence[Prediction], *, judge_only: bool = False) -> Metrics:
    """The eval's figures from predictions: a pure function (tested on hand-made sets).

    judge_only: the predictions come from a detector (verdicts, no labels, no report).
    """
    verdict = verdict_figures(preds)
    labels = label_figures(preds)
    by_cat: dict[str, list[Prediction]] = {}
    for p in preds:
        by_cat.setdefault(p.category, []).append(p)
    summary = _summary(preds, judge_only=judge_only)
    return Metrics(
        **summary,
        verdicts=verdict["verdicts"],
        per_category={c: _summary(ps, judge_only=judge_only) for c, ps in sorted(by_cat.items())},
        per_label={} if judge_only else labels["per_label"],
        confusion={} if judge_only else labels["confusion"],
    )

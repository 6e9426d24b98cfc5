"""`fwyy eval`: models and classical detectors side by side on an eval set, so judgment is a number.

One module per concern: `specs` (what --model names, the prompt language), `data` (the two eval
formats), `detectors` (libinjection, bandit, always-risky), `backends` (opening a model),
`scoring` (labels and figures, pure), `run` (asking, caching), `table` and `plot` (output).
"""

from __future__ import annotations

from fwyy_ollama.evaluation.backends import DEFAULT_MAX_TOKENS, open_model
from fwyy_ollama.evaluation.data import (
    ALPACA,
    CATEGORIES,
    LABELS,
    REALWORLD,
    Item,
    default_data,
    detect_format,
    load_items,
)
from fwyy_ollama.evaluation.detectors import DETECTORS, Verdict, run_detector
from fwyy_ollama.evaluation.plot import plot
from fwyy_ollama.evaluation.run import (
    EVAL_FORMAT_VERSION,
    EvalResult,
    ModelResult,
    cache_dir,
    evaluate,
)
from fwyy_ollama.evaluation.scoring import (
    NONE_LABEL,
    Metrics,
    Prediction,
    compute_metrics,
    score_answer,
)
from fwyy_ollama.evaluation.specs import (
    SPEC_HELP,
    ModelSpec,
    model_identity,
    parse_model,
    prompt_language,
    resolve,
)
from fwyy_ollama.evaluation.table import markdown_table, rows

__all__ = [
    "ALPACA",
    "CATEGORIES",
    "DEFAULT_MAX_TOKENS",
    "DETECTORS",
    "EVAL_FORMAT_VERSION",
    "LABELS",
    "NONE_LABEL",
    "REALWORLD",
    "SPEC_HELP",
    "EvalResult",
    "Item",
    "Metrics",
    "ModelResult",
    "ModelSpec",
    "Prediction",
    "Verdict",
    "cache_dir",
    "compute_metrics",
    "default_data",
    "detect_format",
    "evaluate",
    "load_items",
    "markdown_table",
    "model_identity",
    "open_model",
    "parse_model",
    "plot",
    "prompt_language",
    "resolve",
    "rows",
    "run_detector",
    "score_answer",
]

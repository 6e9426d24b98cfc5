"""Former home of `fwyy eval`'s code, now the package fwyy_ollama.evaluation; kept so
`from fwyy_ollama.evaluate import evaluate, plot, markdown_table` goes on working."""

from __future__ import annotations

from fwyy_ollama.evaluation import *  # noqa: F403
from fwyy_ollama.evaluation import __all__  # noqa: F401

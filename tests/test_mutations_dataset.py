"""Mutation-catching tests for the leak check of train / eval splits (issue 18).

`leaks()` guards the shipped splits; elsewhere it only ever saw leak-free data, so a `leaks()`
that always returned [] passed. Here it is fed data that leaks, variant by variant.
"""

from __future__ import annotations

import pytest

from fwyy_ollama.dataset.split import leaks, skeleton, split_records

OUTPUT = (
    "Analysis: This SQL query is an injection.\nLabel: high\nRisk: data theft.\nSolution: bind parameters."
)


def _rec(text: str, output: str = OUTPUT) -> dict[str, str]:
    return {"instruction": "Analyze this.", "input": text, "output": output}


@pytest.mark.parametrize(
    ("train_input", "eval_input"),
    [
        ("' OR 1=1 --", "' OR 1=1 --"),  # the same input
        ("' OR 1=1 --", "' or 1=1 --"),  # case
        ("' OR 1=1 --", "%27%20OR%201%3D1%20--"),  # URL-encoded
        ("' OR 1=1 --", "'  OR   1=1  --"),  # spacing
    ],
)
def test_leaks_finds_an_input_and_its_variants_on_both_sides(train_input: str, eval_input: str) -> None:
    train = [_rec(train_input), _rec("SELECT name FROM users WHERE id = ?")]
    evals = [_rec(eval_input)]
    assert leaks(train, evals) == [skeleton(train_input)]
    assert leaks(train, [_rec("<script>alert(1)</script>")]) == []


def test_split_records_never_leaks_even_with_many_variants() -> None:
    base = ["' OR 1=1 --", "1; DROP TABLE users", "admin'--", "' UNION SELECT password FROM users --"]
    records = [_rec(v) for b in base for v in (b, b.lower(), b.replace(" ", "  "), b.upper())]
    train, evals = split_records(records, 0.5, seed=3)
    assert train and evals
    assert leaks(train, evals) == []

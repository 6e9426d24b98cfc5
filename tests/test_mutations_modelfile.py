"""Mutation-catching tests for the Modelfile checker's range and type checks (issue 18).

Each check is tried at its edge: the value just inside is clean, the value just outside gets one
problem on its line naming the parameter (an error where Ollama refuses it, else a warning).
"""

from __future__ import annotations

import pytest

from fwyy_ollama.modelfile import check_modelfile, parse_modelfile


def _problems(line: str) -> list[str]:
    """Problems (errors and warnings) on line 2, where the tested line is; FROM is line 1."""
    mf = parse_modelfile(f"FROM ./m.gguf\n{line}\n")
    return [f"{p.severity}: {p.message}" for p in check_modelfile(mf) if p.line == 2]


@pytest.mark.parametrize(
    ("inside", "outside", "says"),
    [
        # values Ollama accepts but that are probably not meant: warnings
        ("PARAMETER temperature 0", "PARAMETER temperature -0.01", "warning: temperature -0.01 is negative"),
        ("PARAMETER top_p 1.0", "PARAMETER top_p 1.01", "warning: top_p 1.01 is outside 0..1"),
        ("PARAMETER top_p 0", "PARAMETER top_p -0.1", "warning: top_p -0.1 is outside 0..1"),
        ("PARAMETER min_p 0.5", "PARAMETER min_p 2", "warning: min_p 2 is outside 0..1"),
        ("PARAMETER typical_p 1", "PARAMETER typical_p nan", "warning: typical_p nan is outside 0..1"),
        ("PARAMETER num_ctx 1", "PARAMETER num_ctx 0", "warning: num_ctx 0 is not positive"),
        # values Ollama refuses: errors
        (
            "PARAMETER num_predict -1",
            "PARAMETER num_predict 1.5",
            "error: parameter num_predict wants a whole number",
        ),
        ("PARAMETER seed +42", "PARAMETER seed 4x", "error: parameter seed wants a whole number"),
        (
            "PARAMETER repeat_penalty 1e-1",
            "PARAMETER repeat_penalty 1,1",
            "error: parameter repeat_penalty wants a number",
        ),
        (
            "PARAMETER use_mmap false",
            "PARAMETER use_mmap yes",
            "error: parameter use_mmap wants true or false",
        ),
        ('PARAMETER stop "<|im_end|>"', 'PARAMETER stop ""', "error: an empty stop string"),
        ("PARAMETER top_k 40", "PARAMETER topk 40", "error: unknown parameter 'topk' (did you mean top_k?)"),
        ("REQUIRES 0.14.0", "REQUIRES fourteen", "error: REQUIRES wants a version"),
    ],
)
def test_parameter_checks_at_their_edges(inside: str, outside: str, says: str) -> None:
    assert _problems(inside) == []
    problems = _problems(outside)
    assert len(problems) == 1 and problems[0].startswith(says), problems


def test_missing_from_and_deprecated_parameters() -> None:
    mf = parse_modelfile("PARAMETER temperature 0.1\n")
    assert [p.message for p in check_modelfile(mf) if p.severity == "error"][0].startswith("no FROM line")
    assert _problems("PARAMETER mirostat 1") == [
        "warning: parameter mirostat is deprecated: Ollama ignores it"
    ]

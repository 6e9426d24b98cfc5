"""Property-based tests (hypothesis): the parsers and readers of untrusted text and files.

- the report: render -> parse gives the same report back for arbitrary part texts, and parsing
  arbitrary text raises nothing but ReportFormatError;
- the Modelfile parser and checker raise nothing but FwyyError on arbitrary text;
- the safetensors and GGUF readers raise nothing but FwyyError on random bytes, on truncated real
  files and on real files with bytes flipped in their headers.

Example counts are modest and deadlines off, so the suite stays fast and load-independent.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.report import _HEADING_RE, _INLINE_RE, PARTS, Label, Report, ReportFormatError, parse_report

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ------------------------------------------------------------------------------------- report

_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=120)


def _plain_part(text: str) -> bool:
    """A part's text that is not itself a heading (those would start another part, by design)."""
    if not text.strip() or "```" in text:
        return False
    if _HEADING_RE.search(text) or _INLINE_RE.search(text):
        return False
    return not text.strip().startswith("{")


part_text = _text.filter(_plain_part)


@FAST
@given(
    analysis=part_text,
    label=st.sampled_from(list(Label)),
    risk=part_text,
    solution=part_text,
    lang=st.sampled_from(["zh", "en"]),
)
def test_render_then_parse_round_trips(
    analysis: str, label: Label, risk: str, solution: str, lang: str
) -> None:
    report = Report(analysis.strip(), label, risk.strip(), solution.strip())
    text = report.render(lang)
    back = parse_report(text, strict=True)
    assert back == report
    assert back.lang == lang
    assert parse_report(json.dumps(report.to_json())) == report


@FAST
@given(st.text(max_size=400))
def test_parsing_arbitrary_text_raises_only_report_format_error(text: str) -> None:
    for strict in (False, True):
        try:
            report = parse_report(text, strict=strict)
        except ReportFormatError:
            continue
        assert report.analysis.strip() and report.risk.strip() and report.solution.strip()


_heading_words = st.sampled_from(
    [
        "Analysis:",
        "Label:",
        "Risk:",
        "Solution:",
        "分析：",
        "标签：",
        "风险：",
        "解决方案：",
        "**Label**",
        "### Risk",
        "\n",
        " ",
    ]
)


@FAST
@given(st.lists(st.one_of(_heading_words, st.sampled_from(list(Label)).map(str), _text), max_size=14))
def test_parsing_heading_soup_raises_only_report_format_error(pieces: list[str]) -> None:
    text = "".join(pieces)
    try:
        parse_report(text)
    except ReportFormatError:
        pass


@FAST
@given(
    st.dictionaries(
        st.sampled_from([*PARTS, "extra"]),
        st.one_of(st.text(max_size=20), st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2)),
    )
)
def test_json_reports_need_every_part_non_empty(value: dict) -> None:
    text = json.dumps(value)
    complete = all(isinstance(value.get(p), str) and value[p].strip() for p in PARTS)
    try:
        report = parse_report(text)
    except ReportFormatError:
        return
    assert complete
    assert all(getattr(report, p).strip() for p in ("analysis", "risk", "solution"))


# ---------------------------------------------------------------------------------- Modelfile

_modelfile_lines = st.one_of(
    st.sampled_from(
        [
            "FROM ./m.gguf",
            "FROM",
            'TEMPLATE """{{ .Prompt }}',
            '"""',
            "PARAMETER temperature 0.2",
            "PARAMETER top_p nan",
            "PARAMETER num_ctx -1",
            "PARAMETER stop",
            'PARAMETER stop "<|im_end|>"',
            "SYSTEM '''x",
            "MESSAGE user hi",
            "MESSAGE robot hi",
            'LICENSE """MIT"""',
            "ADAPTER ../../etc/passwd",
            "REQUIRES 0.1",
            "# comment",
            'TEMPLATE "{{ if .System }}{{ end"',
        ]
    ),
    st.text(max_size=60),
)


@FAST
@given(st.one_of(st.text(max_size=300), st.lists(_modelfile_lines, max_size=10).map("\n".join)))
def test_modelfile_parser_raises_only_fwyy_errors(text: str) -> None:
    from fwyy_ollama.modelfile import check_modelfile, parse_modelfile

    try:
        mf = parse_modelfile(text)
    except FwyyError:
        return
    for problem in check_modelfile(mf):
        assert isinstance(problem.line, int) and problem.message


# ---------------------------------------------------------------------------- binary readers


@pytest.fixture(scope="module")
def real_safetensors(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from safetensors.numpy import save_file

    path = tmp_path_factory.mktemp("st") / "m.safetensors"
    rng = np.random.default_rng(0)
    save_file(
        {"a": rng.standard_normal((4, 6)).astype(np.float32), "b": np.zeros(3, dtype=np.float16)},
        str(path),
        {"format": "pt"},
    )
    return path.read_bytes()


def _read_safetensors(path: Path, data: bytes) -> None:
    from fwyy_ollama.export.merge import read_rows, read_safetensors_header

    path.write_bytes(data)
    try:
        refs, _ = read_safetensors_header(path)
        with open(path, "rb") as fh:
            for ref in refs.values():
                if ref.dtype in ("F32", "F16", "BF16", "F64"):
                    read_rows(ref, 0, ref.rows, fh.fileno())
    except FwyyError:
        pass


@FAST
@given(data=st.binary(max_size=300))
def test_safetensors_reader_on_random_bytes(tmp_path: Path, data: bytes) -> None:
    _read_safetensors(tmp_path / "r.safetensors", data)
    _read_safetensors(tmp_path / "r.safetensors", struct.pack("<Q", len(data)) + data)


@FAST
@given(
    cut=st.integers(0, 10_000),
    flips=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 255)), max_size=4),
)
def test_safetensors_reader_on_damaged_real_files(
    tmp_path: Path, real_safetensors: bytes, cut: int, flips: list
) -> None:
    data = bytearray(
        real_safetensors[: min(cut, len(real_safetensors))]
        if cut < len(real_safetensors)
        else real_safetensors
    )
    for pos, xor in flips:
        if pos < len(data):
            data[pos] ^= xor
    _read_safetensors(tmp_path / "d.safetensors", bytes(data))


def _read_gguf(path: Path, data: bytes) -> None:
    from fwyy_ollama.gguf_meta import read_gguf

    path.write_bytes(data)
    try:
        read_gguf(path, arrays=True)
    except FwyyError:
        pass


@FAST
@given(data=st.binary(max_size=300))
def test_gguf_reader_on_random_bytes(tmp_path: Path, data: bytes) -> None:
    _read_gguf(tmp_path / "r.gguf", data)
    _read_gguf(tmp_path / "r.gguf", b"GGUF" + struct.pack("<I", 3) + data)


@pytest.fixture(scope="module")
def real_gguf_head(smollm2_gguf: Path) -> bytes:
    """The real SmolLM2 GGUF's header (metadata and tensor infos) plus a little data."""
    from fwyy_ollama.gguf_meta import read_gguf

    info = read_gguf(smollm2_gguf)
    with open(smollm2_gguf, "rb") as fh:
        return fh.read(info.data_offset + 4096)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(0, 2_000_000),
    flips=st.lists(st.tuples(st.integers(0, 2_000_000), st.integers(1, 255)), max_size=3),
)
def test_gguf_reader_on_damaged_real_headers(
    tmp_path: Path, real_gguf_head: bytes, cut: int, flips: list
) -> None:
    data = bytearray(real_gguf_head[:cut])
    for pos, xor in flips:
        if pos < len(data):
            data[pos] ^= xor
    _read_gguf(tmp_path / "d.gguf", bytes(data))


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("empty", ["", "   ", "\n\t"])
def test_json_report_with_one_blank_part_is_refused(part: str, empty: str) -> None:
    value = {"analysis": "Reads a file.", "label": "low", "risk": "info leak", "solution": "chmod 600"}
    assert parse_report(json.dumps(value)).label is Label.LOW
    value[part] = empty
    with pytest.raises(ReportFormatError) as info:
        parse_report(json.dumps(value))
    assert info.value.part == part

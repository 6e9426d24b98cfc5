"""Hostile files: every reader checks sizes against the file first and fails with a FwyyError
(issue 18, item 5): safetensors headers, GGUF metadata, JSONL records, CSV imports, the manifest.

Memory is measured with tracemalloc (allocations, not time), so the tests do not depend on the
machine's load.
"""

from __future__ import annotations

import csv
import json
import struct
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.export.merge import read_rows, read_safetensors_header
from fwyy_ollama.gguf_meta import ArrayStub, gguf_metadata, read_gguf

REPO = Path(__file__).resolve().parent.parent
GOOD_RECORD = (REPO / "train/data/security.eval.jsonl").read_text(encoding="utf-8").splitlines()[0]


def peak_bytes(fn: Callable[[], Any]) -> tuple[Any, int]:
    """fn's result (or the exception it raised) and the peak of Python allocations while it ran."""
    tracemalloc.start()
    try:
        try:
            result: Any = fn()
        except Exception as exc:  # noqa: BLE001 - returned for the caller to check
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------------------- safetensors


def _safetensors(path: Path, header: Any, data: bytes = b"", *, length: int | None = None) -> Path:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def test_a_real_safetensors_file_reads_back(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    save_file({"w": arr, "b": np.ones(5, dtype=np.float16)}, str(tmp_path / "m.safetensors"), {"k": "v"})
    refs, meta = read_safetensors_header(tmp_path / "m.safetensors")
    assert meta == {"k": "v"}
    assert (refs["w"].dtype, refs["w"].shape, refs["w"].nbytes) == ("F32", (3, 4), 48)
    with open(tmp_path / "m.safetensors", "rb") as fh:
        assert np.array_equal(read_rows(refs["w"], 1, 3, fh.fileno()), arr[1:3])
        with pytest.raises(FwyyError, match="outside tensor w"):
            read_rows(refs["w"], 2, 4, fh.fileno())


def test_header_claiming_2_62_bytes_fails_fast_without_allocating(tmp_path: Path) -> None:
    path = _safetensors(tmp_path / "big.safetensors", {}, length=1 << 62)
    err, peak = peak_bytes(lambda: read_safetensors_header(path))
    assert isinstance(err, FwyyError), err
    assert "header length" in err.message and str(path) in err.message
    assert peak < 1 << 20


@pytest.mark.parametrize(
    ("header", "data", "problem"),
    [
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8, "ends at byte 16"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}, b"\0" * 16, "needs 16 bytes"),
        ({"w": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 16]}}, b"\0" * 16, "needs"),
        ({"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, b"\0" * 16, "shape"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}}, b"\0" * 16, "data_offsets"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0]}}, b"\0" * 16, "data_offsets"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1 << 70]}}, b"\0" * 16, "ends at byte"),
        ({"w": {"dtype": "X99", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 16, "unknown dtype"),
        ({"w": {"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}}, b"\0" * 16, "shape"),
        ({"w": [1, 2]}, b"", "expected an object"),
        ([1, 2, 3], b"", "not a JSON object"),
        ({"__metadata__": [1]}, b"", "__metadata__"),
        (b"\xff\xfe not json", b"", "not JSON"),
        (b"[" * 100000, b"", "not JSON"),
    ],
)
def test_malformed_safetensors_headers_are_clear_errors(
    tmp_path: Path, header: Any, data: bytes, problem: str
) -> None:
    path = _safetensors(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(FwyyError) as info:
        read_safetensors_header(path)
    assert info.value.message.startswith(f"{path}: ")
    assert problem in info.value.message


def test_header_length_past_the_end_and_short_files(tmp_path: Path) -> None:
    path = _safetensors(tmp_path / "short.safetensors", {}, length=100)
    with pytest.raises(FwyyError, match="runs past the end"):
        read_safetensors_header(path)
    (tmp_path / "tiny.safetensors").write_bytes(b"\1\2\3")
    with pytest.raises(FwyyError, match="shorter than"):
        read_safetensors_header(tmp_path / "tiny.safetensors")


# ---------------------------------------------------------------------------------------- GGUF


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _gguf(
    path: Path, kv: bytes, n_kv: int, *, n_tensors: int = 0, tail: bytes = b"", version: int = 3
) -> Path:
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + kv + tail)
    return path


def test_small_gguf_declaring_a_2_40_element_array_fails_fast(tmp_path: Path) -> None:
    kv = _s("general.architecture") + struct.pack("<I", 8) + _s("llama")
    kv += _s("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 1 << 40) + b"\0" * 64
    path = _gguf(tmp_path / "bomb.gguf", kv, 2)
    assert path.stat().st_size < 200
    started = time.process_time()
    err, peak = peak_bytes(lambda: read_gguf(path, arrays=True))
    assert isinstance(err, FwyyError), err
    assert "tokenizer.ggml.scores" in err.message and str(path) in err.message
    assert peak < 1 << 20  # not the 4 TiB the header asks for
    assert time.process_time() - started < 5  # CPU time of this process: a minute before the fix
    string_bomb = _s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 1 << 40)
    err, peak = peak_bytes(lambda: read_gguf(_gguf(tmp_path / "s.gguf", string_bomb, 1), arrays=True))
    assert isinstance(err, FwyyError) and peak < 1 << 20


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda p: p.write_bytes(b"GGUX" + b"\0" * 40), "GGUF magic"),
        (lambda p: p.write_bytes(b"GG"), "GGUF magic"),
        (lambda p: _gguf(p, b"", 0, version=7), "version 7"),
        (lambda p: _gguf(p, b"", 1 << 60), "metadata entries"),
        (lambda p: _gguf(p, b"", 0, n_tensors=1 << 60), "tensor infos"),
        (lambda p: _gguf(p, struct.pack("<Q", 1 << 62) + b"x" * 20, 1), "declares"),
        (lambda p: _gguf(p, _s("k") + struct.pack("<I", 99) + b"\0" * 16, 1), "unknown value type 99"),
        (lambda p: _gguf(p, _s("k") + struct.pack("<I", 8) + struct.pack("<Q", 500) + b"ab", 1), "needs 500"),
        (lambda p: _gguf(p, (_s("k") + struct.pack("<II", 4, 1)) * 2, 2), "appears twice"),
        (lambda p: _gguf(p, _s("k") + struct.pack("<IIQ", 9, 9, 1) + b"\0" * 16, 1), "array of arrays"),
        (lambda p: _gguf(p, _s("k") + struct.pack("<IIQ", 9, 42, 1) + b"\0" * 16, 1), "unknown type 42"),
        (
            lambda p: _gguf(p, b"", 0, n_tensors=1, tail=_s("t") + struct.pack("<IQIQ", 1, 32, 0, 0)),
            "runs past the end",
        ),
        (
            lambda p: _gguf(
                p, b"", 0, n_tensors=1, tail=_s("t") + struct.pack("<IQQQQQIQ", 5, 1, 1, 1, 1, 1, 0, 0)
            ),
            "5 dimensions",
        ),
        (
            lambda p: _gguf(
                p, b"", 0, n_tensors=1, tail=_s("t") + struct.pack("<IQIQ", 1, 4, 250, 0) + b"\0" * 64
            ),
            "unknown ggml type 250",
        ),
        (
            lambda p: _gguf(
                p, b"", 0, n_tensors=1, tail=_s("t") + struct.pack("<IQIQ", 1, 4, 0, 3) + b"\0" * 64
            ),
            "not a multiple of 32",
        ),
        (
            lambda p: _gguf(p, _s("general.alignment") + struct.pack("<II", 4, 3), 1),
            "power of two",
        ),
    ],
)
def test_malformed_gguf_headers_are_clear_errors(tmp_path: Path, build: Any, problem: str) -> None:
    path = tmp_path / "bad.gguf"
    build(path)
    with pytest.raises(FwyyError) as info:
        read_gguf(path)
    assert str(path) in info.value.message
    assert problem in info.value.message


def test_reader_agrees_with_gguf_package_on_the_real_smollm2(smollm2_gguf: Path) -> None:
    from gguf import GGUFReader, GGUFValueType

    info = read_gguf(smollm2_gguf, arrays={"tokenizer.ggml.tokens"})
    ref = GGUFReader(smollm2_gguf)
    scalars = {
        name: f.contents()
        for name, f in ref.fields.items()
        if not name.startswith("GGUF.") and f.types and f.types[0] != GGUFValueType.ARRAY
    }
    assert info.scalars() == scalars
    assert info.metadata["tokenizer.ggml.tokens"] == ref.fields["tokenizer.ggml.tokens"].contents()
    merges = info.metadata["tokenizer.ggml.merges"]
    assert merges == ArrayStub("string", len(ref.fields["tokenizer.ggml.merges"].contents()))
    assert [(t.name, t.nbytes, info.data_offset + t.offset) for t in info.tensors] == [
        (t.name, int(t.n_bytes), int(t.data_offset)) for t in ref.tensors
    ]
    assert gguf_metadata(smollm2_gguf)["general.architecture"] == "llama"


def test_truncated_real_gguf_is_a_clear_error(smollm2_gguf: Path, tmp_path: Path) -> None:
    data = smollm2_gguf.read_bytes()
    info = read_gguf(smollm2_gguf)
    for cut in (5, 24, 100, 5000, info.data_offset - 1, len(data) - 1):
        path = tmp_path / f"cut{cut}.gguf"
        path.write_bytes(data[:cut])
        with pytest.raises(FwyyError):
            read_gguf(path)


def test_ollama_quantize_check_reads_hostile_ggufs_safely(tmp_path: Path, smollm2_gguf: Path) -> None:
    from fwyy_ollama.ollama_api import gguf_file_type

    kv = _s("general.file_type") + struct.pack("<IIQ", 9, 4, 1 << 40)
    err, peak = peak_bytes(lambda: gguf_file_type(_gguf(tmp_path / "bomb.gguf", kv, 1)))
    assert isinstance(err, FwyyError) and peak < 1 << 20
    assert gguf_file_type(smollm2_gguf) == "Q4_1"


# --------------------------------------------------------------------------------------- JSONL


def test_an_over_long_jsonl_line_is_reported_by_line_without_holding_it(tmp_path: Path) -> None:
    from fwyy_ollama.dataset.records import MAX_LINE_BYTES, scan_file

    path = tmp_path / "big.jsonl"
    huge = 6 * MAX_LINE_BYTES
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(GOOD_RECORD + "\n")
        fh.write('{"instruction": "' + "a" * huge + '"}\n')
        fh.write(GOOD_RECORD.replace("Review", "Check") + "\n")
    (records, problems), peak = peak_bytes(lambda: scan_file(path))
    assert len(records) == 2
    assert [str(p) for p in problems] == [
        f"{path}:2: size: line longer than {MAX_LINE_BYTES} bytes (fwyy's limit for one record)"
    ]
    assert peak < 2 * MAX_LINE_BYTES + (4 << 20)  # the limit, not the 24 MiB line (nor 3x it)


def test_line_exactly_at_the_limit_is_read(tmp_path: Path) -> None:
    from fwyy_ollama.dataset.records import iter_bounded_lines

    path = tmp_path / "edge.txt"
    path.write_bytes(b"a" * 9 + b"\n" + b"b" * 10 + b"\n" + b"c" * 11 + b"\n" + b"d" * 10)
    with open(path, "rb") as fh:
        assert list(iter_bounded_lines(fh, 10)) == [
            (1, b"a" * 9 + b"\n"),
            (2, b"b" * 10 + b"\n"),
            (3, None),
            (4, b"d" * 10),
        ]


def test_json_array_file_over_the_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fwyy_ollama.dataset import records

    monkeypatch.setattr(records, "MAX_JSON_BYTES", 100)
    path = tmp_path / "big.json"
    path.write_text("[" + GOOD_RECORD + "]")
    good, problems = records.scan_file(path)
    assert good == [] and "use .jsonl" in str(problems[0]) and str(problems[0]).startswith(f"{path}:0: size")


def test_deeply_nested_json_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    from fwyy_ollama.dataset.records import scan_file

    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 200000 + "\n" + GOOD_RECORD + "\n")
    records, problems = scan_file(path)
    assert len(records) == 1 and problems and problems[0].line == 1


# ------------------------------------------------------------------------------------ importer


def test_importer_field_size_limit_is_sane(tmp_path: Path) -> None:
    from fwyy_ollama.dataset.importer import MAX_FIELD_BYTES, import_file

    path = tmp_path / "big.csv"
    path.write_text("Query,Label\n" + "x" * (MAX_FIELD_BYTES + 10) + ",1\n")
    with pytest.raises(FwyyError) as info:
        import_file(path, text_col="Query", label_col="Label", category="sqli")
    assert info.value.message.startswith(f"{path}:2: ")
    assert csv.field_size_limit() == MAX_FIELD_BYTES <= 4 << 20


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_importer_over_long_line_names_file_and_line(tmp_path: Path, suffix: str) -> None:
    from fwyy_ollama.dataset.importer import import_file
    from fwyy_ollama.dataset.records import MAX_LINE_BYTES

    path = tmp_path / f"big{suffix}"
    if suffix == ".csv":
        path.write_text('Query,Label\nok,0\n"' + "y" * (MAX_LINE_BYTES * 3) + '",1\n')
    else:
        path.write_text('{"q": "ok", "l": 0}\n{"q": "' + "y" * (MAX_LINE_BYTES * 3) + '", "l": 1}\n')
    cols = (
        {"text_col": "Query", "label_col": "Label"}
        if suffix == ".csv"
        else {"text_col": "q", "label_col": "l"}
    )
    err, peak = peak_bytes(lambda: import_file(path, category="sqli", **cols))
    assert isinstance(err, FwyyError), err
    assert err.message.startswith(f"{path}:") and "longer than" in err.message
    assert peak < 2 * MAX_LINE_BYTES + (4 << 20)


# ------------------------------------------------------------------------------------ manifest


@pytest.mark.parametrize(
    "content", [b"[1, 2]", b'{"stages": [1]}', b"\xff\xfe", b"{" * 100000, b'{"stages": {"x": 3}}']
)
def test_a_damaged_manifest_means_rebuild_not_a_crash(tmp_path: Path, content: bytes) -> None:
    from fwyy_ollama.manifest import Manifest

    (tmp_path / "manifest.json").write_bytes(content)
    m = Manifest(tmp_path / "manifest.json")
    assert not m.is_current("x", "key", tmp_path)
    assert m.stage("x") is None

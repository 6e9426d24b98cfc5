"""A bounded GGUF reader: metadata and tensor layout, every length checked against the file first.

Why not `gguf.GGUFReader` on files a user hands us: it memory-maps the file and builds numpy views
of whatever counts the header declares, so a 165-byte file declaring a 2^40-element array runs
for a minute and allocates gigabytes before a MemoryError, and other malformed headers surface as
IndexError or KeyError tracebacks. Here each count is multiplied by its smallest possible encoded
size and compared with the bytes left in the file before anything is read or allocated; anything
that does not add up is a FwyyError naming the file and what is wrong. Arrays are skipped (only
their type and length kept) unless asked for, so reading a 150k-token vocabulary costs nothing
when only `general.file_type` is wanted.

Layout (GGUF v2/v3, llama.cpp's docs/gguf.md): magic ``GGUF``, u32 version, u64 tensor count,
u64 key/value count; then key/value pairs (string key, u32 type, value), tensor infos (string
name, u32 n_dims, u64 dims, u32 ggml type, u64 offset) and, at the next multiple of
general.alignment, the tensor data.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from fwyy_ollama.errors import FwyyError

MAX_STRING_BYTES = 64 << 20
"""Longest metadata string (chat templates are kilobytes; a whole tokenizer.json a few MB)."""
MAX_DIMS = 4
"""GGML_MAX_DIMS: a tensor has at most four dimensions."""

# value type -> (struct code, size); 8 STRING and 9 ARRAY are variable-sized
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4),
    6: ("f", 4), 7: ("?", 1), 10: ("Q", 8), 11: ("q", 8), 12: ("d", 8),
}  # fmt: skip
_STRING, _ARRAY = 8, 9
_TYPE_NAMES = {
    0: "uint8", 1: "int8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32", 6: "float32",
    7: "bool", 8: "string", 9: "array", 10: "uint64", 11: "int64", 12: "float64",
}  # fmt: skip


@dataclass(frozen=True)
class ArrayStub:
    """An array that was skipped, not read: its item type and length."""

    item_type: str
    count: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    """From the start of the data section."""
    nbytes: int


@dataclass
class GGUFInfo:
    path: Path
    version: int
    byte_order: str
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0

    def scalars(self) -> dict[str, Any]:
        """Metadata without arrays (read or skipped)."""
        return {k: v for k, v in self.metadata.items() if not isinstance(v, (list, ArrayStub))}


class _Bounded:
    """Reads from a file, refusing any read or skip that would pass its end."""

    def __init__(self, fh: BinaryIO, size: int, path: Path, order: str) -> None:
        self.fh, self.size, self.path, self.order = fh, size, path, order
        self.pos = 0

    def fail(self, problem: str) -> FwyyError:
        return FwyyError(f"{self.path}: not a valid GGUF file: {problem} (at byte {self.pos})")

    @property
    def left(self) -> int:
        return self.size - self.pos

    def need(self, n: int, what: str) -> None:
        if n < 0 or n > self.left:
            raise self.fail(f"{what} needs {n} bytes, only {self.left} are left in the {self.size}-byte file")

    def read(self, n: int, what: str) -> bytes:
        self.need(n, what)
        data = self.fh.read(n)
        if len(data) != n:
            raise self.fail(f"the file ended inside {what}")
        self.pos += n
        return data

    def skip(self, n: int, what: str) -> None:
        self.need(n, what)
        self.pos += n
        self.fh.seek(self.pos)

    def unpack(self, code: str, what: str) -> Any:
        size = struct.calcsize(code)
        return struct.unpack(self.order + code, self.read(size, what))[0]

    def string(self, what: str, *, keep: bool = True) -> str:
        n = self.unpack("Q", f"the length of {what}")
        if n > MAX_STRING_BYTES:
            raise self.fail(f"{what} declares {n} bytes (fwyy reads strings up to {MAX_STRING_BYTES})")
        if not keep:
            self.skip(n, what)
            return ""
        return self.read(n, what).decode("utf-8", errors="replace")


def _value(r: _Bounded, vtype: int, key: str, keep_arrays: bool) -> Any:
    if vtype in _SCALARS:
        code, _ = _SCALARS[vtype]
        return r.unpack(code, f"the value of {key}")
    if vtype == _STRING:
        return r.string(f"the value of {key}")
    if vtype != _ARRAY:
        raise r.fail(f"{key} has unknown value type {vtype}")
    item = r.unpack("I", f"the item type of {key}")
    count = r.unpack("Q", f"the length of {key}")
    if item == _ARRAY:
        raise r.fail(f"{key} is an array of arrays (fwyy does not read those)")
    if item in _SCALARS:
        code, size = _SCALARS[item]
        r.need(count * size, f"{key}'s {count} items")  # before any allocation
        if not keep_arrays:
            r.skip(count * size, f"{key}'s {count} items")
            return ArrayStub(_TYPE_NAMES[item], count)
        return list(struct.unpack(f"{r.order}{count}{code}", r.read(count * size, f"{key}'s items")))
    if item != _STRING:
        raise r.fail(f"{key} is an array of unknown type {item}")
    r.need(count * 8, f"{key}'s {count} strings")  # each string has at least its 8-byte length
    strings = [r.string(f"item {i} of {key}", keep=keep_arrays) for i in range(count)]
    return strings if keep_arrays else ArrayStub("string", count)


def _tensor_nbytes(r: _Bounded, name: str, shape: tuple[int, ...], ggml_type: int) -> int:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        raise r.fail(f"tensor {name!r} has unknown ggml type {ggml_type}") from None
    n = 1
    for d in shape:
        n *= d
    if shape and shape[0] % block:
        raise r.fail(
            f"tensor {name!r}: first dimension {shape[0]} is not a multiple of the block size {block}"
        )
    return n // block * type_size


def read_gguf(
    path: str | os.PathLike[str],
    *,
    arrays: bool | Collection[str] = False,
    tensors: bool = True,
) -> GGUFInfo:
    """Metadata (and tensor layout) of a GGUF, or a FwyyError saying what is wrong with the file.

    `arrays`: True reads every array, a collection of keys reads those, False skips them all
    (an ArrayStub stands in). `tensors`: also read and check the tensor infos against the file.
    """
    path = Path(path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise FwyyError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if fh.read(4) != b"GGUF":
            raise FwyyError(f"{path}: not a GGUF file (it does not start with the GGUF magic)")
        r = _Bounded(fh, size, path, "<")
        r.pos = 4
        raw_version = r.read(4, "the version")
        version = struct.unpack("<I", raw_version)[0]
        if version not in (2, 3) and struct.unpack(">I", raw_version)[0] in (2, 3):
            r.order = ">"
            version = struct.unpack(">I", raw_version)[0]
        if version not in (2, 3):
            raise r.fail(f"version {version} (fwyy reads GGUF v2 and v3)")
        n_tensors = r.unpack("Q", "the tensor count")
        n_kv = r.unpack("Q", "the metadata count")
        # the smallest key/value is 13 bytes (8-byte key length, 4-byte type, 1-byte value); the
        # smallest tensor info 24 (name length, n_dims, type, offset)
        r.need(n_kv * 13 + n_tensors * 24, f"{n_kv} metadata entries and {n_tensors} tensor infos")
        info = GGUFInfo(path, version, "little" if r.order == "<" else "big")
        for _ in range(n_kv):
            key = r.string("a metadata key")
            vtype = r.unpack("I", f"the type of {key}")
            keep = arrays is True or (not isinstance(arrays, bool) and key in arrays)
            if key in info.metadata:
                raise r.fail(f"metadata key {key!r} appears twice")
            info.metadata[key] = _value(r, vtype, key, keep)
        if not tensors:
            return info
        alignment = info.metadata.get("general.alignment", 32)
        if type(alignment) is not int or alignment <= 0 or alignment & (alignment - 1):
            raise r.fail(f"general.alignment {alignment!r} is not a power of two")
        for i in range(n_tensors):
            name = r.string(f"the name of tensor {i}")
            n_dims = r.unpack("I", f"the dimensions of {name!r}")
            if n_dims > MAX_DIMS:
                raise r.fail(f"tensor {name!r} has {n_dims} dimensions (at most {MAX_DIMS})")
            shape = tuple(r.unpack("Q", f"a dimension of {name!r}") for _ in range(n_dims))
            ggml_type = r.unpack("I", f"the type of {name!r}")
            offset = r.unpack("Q", f"the offset of {name!r}")
            if offset % alignment:
                raise r.fail(f"tensor {name!r} offset {offset} is not a multiple of {alignment}")
            nbytes = _tensor_nbytes(r, name, shape, ggml_type)
            info.tensors.append(TensorInfo(name, shape, ggml_type, offset, nbytes))
        info.data_offset = -(-r.pos // alignment) * alignment
        data_size = size - info.data_offset
        for t in info.tensors:
            if t.offset + t.nbytes > data_size:
                raise FwyyError(
                    f"{path}: not a valid GGUF file: tensor {t.name!r} (bytes {t.offset}..{t.offset + t.nbytes} "
                    f"of the data section) runs past the end of the file (truncated download?)"
                )
        return info


def gguf_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The GGUF's scalar metadata (arrays such as the vocabulary left out), bounded as above."""
    return read_gguf(path, tensors=False).scalars()

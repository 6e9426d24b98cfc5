"""Names that become folders or files: checked once, before any path is built from them.

A profile's `name` is the Ollama model name and also the folder `fwyy build` writes under
`--out` (`out/<name>/`, its manifest, dataset.jsonl, `<name>.<quant>.gguf`, temporary sweeps). A
profile is a file a user may have been handed, so a name such as ``../../elsewhere`` or
``/etc`` must be refused before it is joined to a path, not discovered afterwards.

One pattern, anchored with ``\\A`` and ``\\Z`` so that a trailing newline does not slip through
(``$`` matches before a final newline): lowercase letters and digits, then also ``.``, ``_`` and
``-``; no separators, no ``..``, at most 64 characters.
"""

from __future__ import annotations

import re
from pathlib import Path

from fwyy_ollama.errors import FwyyError

NAME_PATTERN = r"\A[a-z0-9][a-z0-9._-]{0,63}\Z"
_NAME_RE = re.compile(NAME_PATTERN)
NAME_RULE = (
    "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64, no '..'"
)


def name_problem(name: object) -> str | None:
    """Why `name` cannot name a model folder, or None when it can."""
    if not isinstance(name, str):
        return f"expected a string, got {type(name).__name__}"
    if not _NAME_RE.match(name) or ".." in name:
        return f"{name!r} is not a valid model name ({NAME_RULE})"
    return None


def check_name(name: object, where: str = "name") -> str:
    """`name` itself, or a FwyyError saying `where: problem`."""
    problem = name_problem(name)
    if problem:
        raise FwyyError(f"{where}: {problem}")
    assert isinstance(name, str)
    return name


def child_folder(root: Path, name: str, where: str = "name") -> Path:
    """`root/name` as an absolute path that is certainly inside `root` (and not a symlink out of it)."""
    check_name(name, where)
    base = root.expanduser().resolve()
    folder = base / name
    if folder.is_symlink():
        raise FwyyError(
            f"{folder} is a symbolic link; fwyy writes only into real folders under {base}",
            hint="remove the link or build into another --out",
        )
    if folder.resolve().parent != base:  # belt and braces: the pattern already forbids this
        raise FwyyError(f"{where}: {name!r} would leave {base}")
    return folder

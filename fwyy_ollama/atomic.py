"""Write artifacts under a temporary name and rename when complete.

An interrupted or failed stage must never leave a half GGUF, adapter or Modelfile that a later
run (or Ollama) would take for a finished one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_sibling(path: Path, *, directory: bool) -> Path:
    # mkstemp/mkdtemp make owner-only files; an artifact gets the modes a plain open() would give.
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))
        tmp.chmod(0o777 & ~_umask())
        return tmp
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    os.close(fd)
    Path(name).chmod(0o666 & ~_umask())
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file path next to `path`; on success it replaces `path`."""
    final = Path(path)
    tmp = _tmp_sibling(final, directory=False)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; on success it replaces `path` whole."""
    final = Path(path)
    tmp = _tmp_sibling(final, directory=True)
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> Path:
    """Write `text` (UTF-8) so that `path` holds either the old content or all of the new.

    `mode` (e.g. 0o600 for a saved chat) is set on the temporary file before it gets its name,
    so the content is never readable by others under the final name, not even for a moment.
    """
    with atomic_path(path) as tmp:
        if mode is not None:
            tmp.chmod(mode)
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> Path:
    """write_text's twin for bytes."""
    with atomic_path(path) as tmp:
        if mode is not None:
            tmp.chmod(mode)
        tmp.write_bytes(data)
    return Path(path)

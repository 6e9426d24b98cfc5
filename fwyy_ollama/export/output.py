"""Output files that do not exist under any name until they are complete.

On Linux the GGUF is written into an anonymous file (O_TMPFILE) and linked into place at the end,
so even `kill -9` midway leaves nothing behind: the kernel frees the data when the process dies.
Elsewhere a hidden temporary sibling is used and removed on any exception (fwyy.atomic's contract).
Readers and llama.cpp reach the anonymous file through /proc/self/fd/N while it is being written.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fwyy_ollama.errors import FwyyError

_AT_FDCWD = -100
_AT_SYMLINK_FOLLOW = 0x400


class PendingFile:
    """A file being written; `path` opens it (also from llama.cpp), `commit()` gives it its name."""

    def __init__(self, final: Path, fd: int | None, path: str) -> None:
        self.final = final
        self.fd = fd
        self.path = path
        self.committed = False

    def size(self) -> int:
        return os.stat(self.path).st_size

    def commit(self) -> Path:
        """Make the file visible under `final`, replacing any older file there."""
        if self.fd is None:
            os.replace(self.path, self.final)
        else:
            os.fsync(self.fd)
            tmp_name = self.final.with_name(f".{self.final.name}.{os.getpid()}.link")
            with contextlib.suppress(FileNotFoundError):
                tmp_name.unlink()
            _linkat(self.path, tmp_name)
            os.replace(tmp_name, self.final)
        self.committed = True
        return self.final


def _linkat(proc_path: str, dest: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.linkat(_AT_FDCWD, proc_path.encode(), _AT_FDCWD, os.fsencode(dest), _AT_SYMLINK_FOLLOW)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot link the finished file to {dest}: {os.strerror(err)}")


def _anonymous_fd(directory: Path) -> int | None:
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not Path("/proc/self/fd").is_dir():
        return None
    try:
        return os.open(directory, flag | os.O_RDWR, 0o666)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None
        raise


@contextlib.contextmanager
def pending_file(final: str | os.PathLike[str]) -> Iterator[PendingFile]:
    """Yield a PendingFile next to `final`; unless committed, it disappears when the block ends."""
    final = Path(final).absolute()
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FwyyError(f"cannot create the output folder {final.parent}: {exc.strerror}") from exc
    fd = _anonymous_fd(final.parent)
    if fd is not None:
        pending = PendingFile(final, fd, f"/proc/self/fd/{fd}")
    else:
        handle, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(handle)
        pending = PendingFile(final, None, name)
    try:
        yield pending
    finally:
        if pending.fd is not None:
            os.close(pending.fd)
        elif not pending.committed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pending.path)


def free_bytes(directory: Path) -> int:
    """Free space in the file system holding `directory` (its nearest existing parent)."""
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free

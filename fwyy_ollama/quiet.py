"""Keep third-party chatter off the user's terminal where fwyy calls those libraries.

transformers draws tqdm bars ("Converting and de-quantizing GGUF tensors...", "Loading weights",
"Writing model shards") straight to sys.stderr with `tqdm.auto`, which its own
`disable_progress_bar()` does not reach; fwyy shows its own stage progress instead. gpt4all's
C++ backend prints its library search (dlopen attempts) and llama.cpp's load log on file
descriptors 1 and 2, below Python, so only swapping the descriptors silences it. Exceptions still
propagate: a failure is reported by fwyy, in one line, as always.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_python_stderr() -> Iterator[None]:
    """sys.stderr swallowed (tqdm bars, library warnings printed with print/tqdm) for the block."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


@contextlib.contextmanager
def quiet_fds() -> Iterator[None]:
    """File descriptors 1 and 2 pointed at the null device for the block (C/C++ libraries' output)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)

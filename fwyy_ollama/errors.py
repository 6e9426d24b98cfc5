"""One exception type for mistakes a user can fix.

The CLI prints a FwyyError as a plain message (no traceback) and exits with its code; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class FwyyError(Exception):
    """A problem with the user's input, settings or machine, worded so they can act on it."""

    def __init__(self, message: str, *, exit_code: int = 1, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class MissingExtraError(FwyyError):
    """An optional dependency group is not installed."""

    def __init__(self, extra: str, module: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{extra}' extra ({module} is not installed)",
            hint=f"pip install 'fwyy-ollama[{extra}]'",
        )


def require(module: str, extra: str, purpose: str):  # type: ignore[no-untyped-def]
    """Import an optional module, or raise a MissingExtraError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(extra, module, purpose) from exc

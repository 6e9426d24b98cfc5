"""fwyy (风灵月影): turn an open model into a local security analyst.

Heavy libraries (torch, transformers, llama_cpp, gpt4all) are imported inside the stage that needs
them, so importing this package stays fast with the core install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from fwyy_ollama.analysis import analyze as analyze


def __getattr__(name: str) -> Any:
    # `from fwyy_ollama import analyze` without paying for the runtime at package import.
    if name == "analyze":
        from fwyy_ollama.analysis import analyze

        return analyze
    raise AttributeError(name)

"""Where fwyy's shipped folders are: the checkout when run from one, else the wheel's share/.

templates/, modelfiles/ and train/ sit at the top of the repository so people can read and edit
them; a wheel installs them under <prefix>/share/fwyy (setup.cfg's data_files).
"""

from __future__ import annotations

import sys
import sysconfig
from functools import cache
from pathlib import Path
from typing import Any

_MARKER = Path("train") / "profiles"


@cache
def share_root() -> Path:
    checkout = Path(__file__).resolve().parent.parent
    candidates = [
        checkout,
        Path(sysconfig.get_path("data")) / "share" / "fwyy",
        Path(sys.prefix) / "share" / "fwyy",
    ]
    for root in candidates:
        if (root / _MARKER).is_dir() and (root / "templates").is_dir():
            return root
    raise RuntimeError(
        "fwyy's data folders (templates/, train/) are missing: reinstall fwyy-ollama; looked in "
        + ", ".join(str(c) for c in candidates)
    )


def templates_dir() -> Path:
    return share_root() / "templates"


def template_env() -> Any:
    """The Jinja environment every fwyy template renders in: strict (a missing value is an error,
    not an empty string), whitespace-trimmed blocks, no HTML escaping (Modelfiles and Markdown are
    not HTML; the templates quote what they insert themselves)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def modelfiles_dir() -> Path:
    return share_root() / "modelfiles"


def profiles_dir() -> Path:
    return share_root() / "train" / "profiles"


def data_dir() -> Path:
    return share_root() / "train" / "data"


def train_dir() -> Path:
    return share_root() / "train"

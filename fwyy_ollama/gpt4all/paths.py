"""Where GPT4All keeps its settings and models, and which version of the app last ran there.

Facts from gpt4all-chat/src/main.cpp: the app sets organization name `nomic.ai`, organization
domain `gpt4all.io`, application `GPT4All`, and QSettings::IniFormat as the default format. Qt
names an IniFormat file in the user scope after the organization *domain* on macOS and after the
organization *name* elsewhere (QSettings' default constructor), under $XDG_CONFIG_HOME or
~/.config on Unix and macOS alike, %APPDATA% on Windows. So the Mac app reads
~/.config/gpt4all.io/GPT4All.ini, not .../nomic.ai/...: a file written there is never seen.

Models go to QStandardPaths::AppLocalDataLocation (organization *name* on every platform) unless
the user chose another folder ([General] modelPath). Every GPT4All 3.x writes the version it runs
as [General] lastVersionStarted on start, which tells fwyy which settings keys it reads.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.gpt4all.qtini import QtIni

Version = tuple[int, int, int]


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def default_settings_file(platform: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """GPT4All.ini where the app's QSettings keeps it on `platform` (default: this machine)."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    if platform.startswith("win"):
        base = Path(env.get("APPDATA") or _home() / "AppData" / "Roaming")
    else:
        xdg = env.get("XDG_CONFIG_HOME", "")
        base = Path(xdg) if xdg.startswith("/") else _home() / ".config"
    organization = "gpt4all.io" if platform == "darwin" else "nomic.ai"
    return base / organization / "GPT4All.ini"


def default_models_dir(platform: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """GPT4All v3's default download folder (QStandardPaths::AppLocalDataLocation)."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    if platform.startswith("win"):
        base = Path(env.get("LOCALAPPDATA") or _home() / "AppData" / "Local")
    elif platform == "darwin":
        base = _home() / "Library" / "Application Support"
    else:
        xdg = env.get("XDG_DATA_HOME", "")
        base = Path(xdg) if xdg.startswith("/") else _home() / ".local" / "share"
    return base / "nomic.ai" / "GPT4All"


def configured_models_dir(settings_file: Path) -> Path | None:
    """The download path the user chose in the app ([General] modelPath), if any."""
    if not settings_file.is_file():
        return None
    value = QtIni(settings_file.read_bytes()).get("", "modelPath")
    return Path(value) if isinstance(value, str) and value.strip() else None


def parse_app_version(text: str, where: str = "GPT4All version") -> Version:
    """(major, minor, patch) of a GPT4All version such as "3.4.2" or "3.10.1-dev0"."""
    m = re.match(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not m:
        raise FwyyError(f"{where}: {text!r} is not a version such as 3.4.2")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def installed_version(settings_file: Path) -> Version | None:
    """The GPT4All version that last started with this settings file ([General]
    lastVersionStarted), or None when the file or the key is missing or unreadable."""
    if not settings_file.is_file():
        return None
    value = QtIni(settings_file.read_bytes()).get("", "lastVersionStarted")
    if not isinstance(value, str):
        return None
    try:
        return parse_app_version(value)
    except FwyyError:
        return None

"""The build manifest: what each stage read, with which settings, and what it wrote.

`fwyy build` compares a stage's key (a hash of its inputs and settings) and its recorded outputs
with what is on disk; when both still hold, the stage is skipped. Outputs are fingerprinted by
size and mtime for the fast check, with the sha256 kept for provenance.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fwyy_ollama import __version__
from fwyy_ollama.atomic import write_text
from fwyy_ollama.hashing import sha256_tree

MAX_MANIFEST_BYTES = 16 << 20
"""A manifest is a few kilobytes; a larger file is not ours and is ignored, not read."""


def _stat_fingerprint(path: Path) -> list[Any]:
    if path.is_file():
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]
    return sorted(
        [p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns]
        for p in path.rglob("*")
        if p.is_file()
    )


def describe_output(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_tree(path), "stat": _stat_fingerprint(path)}


def output_unchanged(path: Path, recorded: dict[str, Any]) -> bool:
    return path.exists() and json.loads(json.dumps(_stat_fingerprint(path))) == recorded.get("stat")


@dataclass
class StageRecord:
    key: str
    inputs: dict[str, str]
    settings: dict[str, Any]
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    finished: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Manifest:
    """OUT/<name>/manifest.json, rewritten atomically after every finished stage."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"fwyy": __version__, "stages": {}}
        # A damaged or foreign manifest only costs a rebuild: every stage then reruns.
        try:
            if path.is_file() and path.stat().st_size <= MAX_MANIFEST_BYTES:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict) and isinstance(loaded.get("stages", {}), dict):
                    loaded.setdefault("stages", {})
                    self.data = loaded
        except (OSError, ValueError, RecursionError):
            pass

    def stage(self, name: str) -> dict[str, Any] | None:
        rec = self.data["stages"].get(name)
        return rec if isinstance(rec, dict) else None

    def is_current(self, name: str, key: str, root: Path) -> bool:
        """The stage ran with this key and every output it recorded is still there, unchanged."""
        rec = self.stage(name)
        if not rec or rec.get("key") != key:
            return False
        outputs = rec.get("outputs")
        if not isinstance(outputs, dict):
            return False
        return all(
            isinstance(meta, dict) and output_unchanged(root / rel, meta) for rel, meta in outputs.items()
        )

    def record(self, name: str, rec: StageRecord) -> None:
        rec.finished = rec.finished or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.data["stages"][name] = rec.__dict__.copy()
        self.data["fwyy"] = __version__
        self.save()

    def forget(self, name: str) -> None:
        if self.data["stages"].pop(name, None) is not None:
            self.save()

    def save(self) -> None:
        write_text(self.path, json.dumps(self.data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")

"""Artifacts appear whole or not at all, with ordinary file modes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fwyy_ollama.atomic import atomic_dir, atomic_path, write_text


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_failed_dir_keeps_the_previous_one(tmp_path: Path) -> None:
    target = tmp_path / "adapter"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("killed")
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


def test_modes_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        f = write_text(tmp_path / "Modelfile", "FROM x")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(old)
    assert f.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_write_text_that_fails_midway_keeps_the_old_content(tmp_path: Path) -> None:
    """A write that dies halfway (here: text UTF-8 cannot encode) must not truncate the old file."""
    target = write_text(tmp_path / "Modelfile", "FROM old\n")
    with pytest.raises(UnicodeEncodeError):
        write_text(target, "FROM new\n" * 1000 + "\ud800")
    assert target.read_text() == "FROM old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["Modelfile"]


def test_write_text_replaces_by_rename_never_in_place(tmp_path: Path) -> None:
    """Readers holding the old file keep reading the old content: the name gets a new inode."""
    target = write_text(tmp_path / "manifest.json", "old")
    with open(target) as held:
        before = os.fstat(held.fileno()).st_ino
        write_text(target, "new")
        assert held.read() == "old"
    assert target.stat().st_ino != before and target.read_text() == "new"


def test_atomic_dir_replaces_a_folder_whole(tmp_path: Path) -> None:
    target = tmp_path / "adapter"
    with atomic_dir(target) as tmp:
        (tmp / "old.txt").write_text("1")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]

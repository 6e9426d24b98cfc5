"""Hostile names: a profile cannot make `fwyy build` write or delete outside --out (issue 18, item 2).

The profile is a file a user may have been handed; its `name` becomes out/<name>/, the manifest,
dataset.jsonl and the GGUF's file name. Each test plants something outside --out and checks it is
untouched after the build is refused.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.names import check_name, child_folder, name_problem
from fwyy_ollama.pipeline import BuildOptions, StageHooks, _sweep_temporaries, build
from fwyy_ollama.profiles import load_profile, load_profile_file, shipped_profiles

DEMO = "fwyy-smollm2"

HOSTILE_NAMES = [
    "../../somewhere",
    "../escape",
    "..",
    ".",
    "/etc",
    "/tmp/x",
    "a/b",
    "a\\b",
    "fwyy-demo\n",
    "fwyy-demo\r",
    "fwyy..demo",
    ".hidden",
    "-dash-first",
    "",
    "Fwyy",
    "with space",
    "x" * 65,
    "nul\0byte",
    "名字",
]


def _profile_text(name_line: str) -> str:
    src = shipped_profiles()[DEMO].read_text()
    return src.replace('name = "fwyy-smollm2"', name_line, 1)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_profile_names_are_refused_when_the_file_is_loaded(tmp_path: Path, name: str) -> None:
    path = tmp_path / "evil.toml"
    import json

    path.write_text(_profile_text(f"name = {json.dumps(name)}"))  # JSON strings are TOML strings
    with pytest.raises(FwyyError) as info:
        load_profile_file(path)
    assert f"{path}: name: " in info.value.message
    assert name_problem(name) is not None


@pytest.mark.parametrize("name", ["fwyy-smollm2", "a", "my.model_2", "x" * 64, "0day"])
def test_ordinary_names_pass(name: str) -> None:
    assert check_name(name) == name


def test_trailing_newline_is_refused_by_the_anchored_pattern() -> None:
    # `$` would match before a final newline; \Z does not
    assert name_problem("fwyy-qwen2\n") is not None
    with pytest.raises(FwyyError, match=r"^where: 'fwyy-qwen2\\n' is not a valid model name"):
        check_name("fwyy-qwen2\n", "where")


def test_every_mistake_in_a_profile_is_reported_at_once(tmp_path: Path) -> None:
    src = shipped_profiles()[DEMO].read_text()
    for old, new in [  # first occurrence of each setting (the [train] table comes before [train.gpu])
        (r'(?m)^name = ".*"$', 'name = "../x"'),
        (r"(?m)^r = \d+$", "r = 0"),
        (r"(?m)^dropout = .*$", "dropout = 1.0"),
        (r"(?m)^max_steps = \d+$", 'max_steps = "many"'),
        (r"(?m)^warmup_steps = \d+$", "warmup_steps = -1"),
        (r'(?m)^quant = ".*"$', 'quant = "../../q"'),
        (r"(?m)^seed = \d+$", "seed = 3407\nbogus = 1"),
    ]:
        src, n = re.subn(old, new, src, count=1)
        assert n == 1, old
    path = tmp_path / "many.toml"
    path.write_text(src)
    with pytest.raises(FwyyError) as info:
        load_profile_file(path)
    lines = info.value.message.splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    keys = [line[len(f"{path}: ") :].split(":")[0] for line in lines]
    assert sorted(keys) == sorted(
        [
            "name",
            "lora.r",
            "lora.dropout",
            "train.max_steps",
            "train.warmup_steps",
            "export.quant",
            "lora.bogus",
        ]
    )


def _planted(tmp_path: Path) -> tuple[Path, Path]:
    """out/ for the build, and a folder beside it holding files a build must not touch."""
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "somewhere"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    (victim / ".old-build.tmp").mkdir()  # what the temporary sweep used to delete
    (victim / ".old-build.tmp" / "x").write_text("precious too")
    return out, victim


class _NoStage(StageHooks):
    """Fails the test the moment a stage would start: refusals must come before any work."""

    def start(self, stage: str, note: str):  # type: ignore[no-untyped-def]
        raise AssertionError(f"stage {stage} started")


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.mark.parametrize("name", ["../somewhere", "../../somewhere", "/abs/somewhere", "somewhere\n"])
def test_build_refuses_a_traversing_name_before_writing_or_deleting(tmp_path: Path, name: str) -> None:
    out, victim = _planted(tmp_path)
    before = _tree(tmp_path)
    profile = dataclasses.replace(load_profile(DEMO), name=name)  # as if the loader were bypassed
    with pytest.raises(FwyyError, match="name"):
        build(profile, BuildOptions(out=out, ollama=False), _NoStage())
    assert _tree(tmp_path) == before
    assert (victim / ".old-build.tmp" / "x").read_text() == "precious too"


def test_build_refuses_a_symlinked_model_folder(tmp_path: Path) -> None:
    out, victim = _planted(tmp_path)
    (out / DEMO).symlink_to(victim, target_is_directory=True)
    with pytest.raises(FwyyError, match="symbolic link"):
        build(load_profile(DEMO), BuildOptions(out=out, ollama=False), _NoStage())
    assert (victim / ".old-build.tmp" / "x").is_file()
    assert not (victim / "manifest.json").exists()


@pytest.mark.parametrize("quant", ["../../evil", "q4_k_m/../../x", "nope"])
def test_build_refuses_a_quant_that_would_become_a_path(tmp_path: Path, quant: str) -> None:
    out, _ = _planted(tmp_path)
    with pytest.raises(FwyyError, match="quant"):
        build(load_profile(DEMO), BuildOptions(out=out, ollama=False, quant=quant), _NoStage())
    assert list(out.iterdir()) == []


def test_child_folder_stays_inside_its_root(tmp_path: Path) -> None:
    assert child_folder(tmp_path, "ok") == tmp_path.resolve() / "ok"
    for bad in ("..", "../x", "/x", "a/b"):
        with pytest.raises(FwyyError):
            child_folder(tmp_path, bad)


def test_sweep_unlinks_planted_links_without_following_them(tmp_path: Path) -> None:
    folder = tmp_path / "build"
    folder.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    (folder / ".link.tmp").symlink_to(victim, target_is_directory=True)
    (folder / ".stale.tmp").mkdir()
    (folder / ".stale-file.tmp").write_text("half")
    (folder / "kept.gguf").write_text("done")
    _sweep_temporaries(folder)
    assert sorted(os.listdir(folder)) == ["kept.gguf"]
    assert (victim / "keep.txt").read_text() == "precious"

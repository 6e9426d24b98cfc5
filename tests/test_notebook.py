"""train/fwyy_colab.ipynb: valid nbformat, every fwyy command in it parses with today's CLI, it
installs fwyy without a PyPI release, claims no time it has not measured, and its cells that need
neither a GPU nor Colab run (nbclient, a real kernel) against the wheel `python -m build` makes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import click
import nbformat
import pytest

from fwyy_ollama.cli import COMMANDS, cli
from tests.test_packaging import dist  # noqa: F401 - the built sdist and wheel

NOTEBOOK = Path(__file__).resolve().parent.parent / "train" / "fwyy_colab.ipynb"


def fwyy_commands(nb: nbformat.NotebookNode) -> list[str]:
    """`!fwyy ...` lines of code cells and `fwyy ...` lines of fenced blocks in markdown cells."""
    found: list[str] = []
    for cell in nb.cells:
        lines = cell.source.splitlines()
        if cell.cell_type == "code":
            found += [ln.strip()[1:] for ln in lines if ln.strip().startswith("!fwyy ")]
        elif cell.cell_type == "markdown":
            fenced = False
            for ln in lines:
                if ln.strip().startswith("```"):
                    fenced = not fenced
                elif fenced and ln.strip().startswith("fwyy "):
                    found.append(ln.strip())
    return found


def test_notebook_is_valid_nbformat() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)  # raises on any schema violation
    assert nb.metadata["accelerator"] == "GPU" and nb.metadata["colab"]["gpuType"] == "T4"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "fwyy-ollama[train,unsloth,llama] @ " in code and '%pip install -q "{FWYY_REQUIREMENT}"' in code
    assert "!fwyy build --profile fwyy-qwen2" in code
    assert ".gguf" in code  # it shows how to fetch the GGUF


def _parse(command: str) -> click.Context:
    argv = shlex.split(command)
    assert argv[0] == "fwyy"
    name, args = argv[1], argv[2:]
    assert name in COMMANDS, f"{command!r}: no such fwyy command"
    with click.Context(cli, info_name="fwyy") as parent:
        sub = cli.get_command(parent, name)
        assert sub is not None
        # Strict parsing (not resilient): unknown options, bad choices and missing values all fail here.
        return sub.make_context(name, args, parent=parent)


@pytest.mark.parametrize("command", fwyy_commands(nbformat.read(NOTEBOOK, as_version=4)))
def test_every_fwyy_command_in_the_notebook_parses(command: str) -> None:
    ctx = _parse(command)
    assert ctx.command.name is not None


def test_the_notebook_has_the_commands_we_expect() -> None:
    commands = fwyy_commands(nbformat.read(NOTEBOOK, as_version=4))
    assert "fwyy build --profile fwyy-qwen2 --no-ollama" in commands
    # doctor runs from Python (its JSON, one line per check): the same command, parsed the same way
    doctor = _cells(nbformat.read(NOTEBOOK, as_version=4))["doctor"].source
    assert '["fwyy", "doctor", "--profile", "fwyy-qwen2", "--json"]' in doctor
    assert _parse("fwyy doctor --profile fwyy-qwen2 --json").params["as_json"] is True
    assert len(commands) >= 4


def test_a_wrong_command_would_be_caught() -> None:
    """The parser used above really rejects what the CLI would reject."""
    with pytest.raises(click.UsageError):
        _parse("fwyy build --profile fwyy-qwen2 --no-such-option")
    with pytest.raises(click.BadParameter):
        _parse("fwyy train --backend tpu")


def _cells(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {c.id: c for c in nb.cells}


def test_fwyy_comes_from_one_place_set_once() -> None:
    """One marked cell sets the source (a git URL placeholder, or an uploaded wheel), the next
    installs it with extras that setup.cfg has; nothing installs fwyy-ollama from PyPI."""
    from tests.test_packaging import extras

    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = _cells(nb)
    source = cells["fwyy-source"].source
    assert source.count("FWYY_GIT = ") == 1 and "===== Set once" in source
    assert 'FWYY_GIT = "git+https://github.com/<owner>/fwyy@main"' in source
    assert 'glob("fwyy_ollama-*.whl")' in source
    setters = [c.id for c in nb.cells if c.cell_type == "code" and "FWYY_GIT =" in c.source]
    assert setters == ["fwyy-source"]
    installs = [c.id for c in nb.cells if c.cell_type == "code" and "pip install" in c.source]
    assert installs == ["install"]
    assert set("train,unsloth,llama".split(",")) <= set(extras())


def test_the_source_cell_says_what_to_do_when_nothing_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = _cells(nbformat.read(NOTEBOOK, as_version=4))["fwyy-source"].source
    with pytest.raises(ValueError, match="Set FWYY_GIT above"):
        exec(compile(source, "fwyy-source", "exec"), {})
    scope: dict[str, object] = {}
    exec(compile(source.replace("github.com/<owner>/", "github.com/someone/"), "fwyy-source", "exec"), scope)
    assert (
        scope["FWYY_REQUIREMENT"]
        == "fwyy-ollama[train,unsloth,llama] @ git+https://github.com/someone/fwyy@main"
    )


def test_no_unmeasured_time_claims() -> None:
    """Every duration in the notebook comes from a measurement; there is none yet, so none is stated."""
    import re

    nb = nbformat.read(NOTEBOOK, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    claims = re.findall(r"\d+\s*(?:[–-]\s*\d+\s*)?(?:minutes?|mins?|hours?|h\b|seconds?)", text, flags=re.I)
    assert claims == [], claims
    assert "has not been measured" in text and "manifest.json" in text


SKIP_TAGS = {"gpu", "colab"}


def test_the_cpu_cells_run_against_the_built_wheel(dist: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    """Every cell not tagged gpu or colab runs in a real kernel, in a throwaway venv, with the
    wheel uploaded the way a Colab user uploads it (into the working folder): the install cell
    installs it (pip told by its environment not to fetch dependencies, which the venv borrows from
    the test's), then doctor, profiles and the data checks run from that install and say what they
    claim. Nothing is installed into the test's own environment."""
    import shutil
    import sysconfig

    from nbclient import NotebookClient

    work = tmp_path / "content"
    work.mkdir()
    shutil.copy(dist["wheel"], work)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "zz_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")  # pip, ipykernel, torch...

    kernels = tmp_path / "jupyter" / "kernels" / "fwyy-colab-test"
    kernels.mkdir(parents=True)
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "PIP_NO_DEPS": "1",
        "PIP_NO_INDEX": "1",
        "PIP_IGNORE_INSTALLED": "1",  # the test's editable fwyy-ollama is visible; never touch it
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "FWYY_CACHE": str(tmp_path / "fwyy-cache"),
        "OLLAMA_HOST": "127.0.0.1:9",  # nothing answers there
        "COLUMNS": "120",
        "PYTHONPATH": "",
    }
    argv = [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (kernels / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "fwyy test", "language": "python", "env": env})
    )

    nb = nbformat.read(NOTEBOOK, as_version=4)
    skipped = [c.id for c in nb.cells if SKIP_TAGS & set(c.metadata.get("tags", []))]
    assert {"gpu-check", "build", "build-folder", "stage-times", "drive", "download"} <= set(skipped)
    nb.cells = [c for c in nb.cells if c.id not in skipped]
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(tmp_path / "jupyter")
    try:
        NotebookClient(
            nb, kernel_name="fwyy-colab-test", timeout=300, resources={"metadata": {"path": str(work)}}
        ).execute()
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old

    def text(cell_id: str) -> str:
        (cell,) = [c for c in nb.cells if c.id == cell_id]
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.outputs
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    assert f"fwyy comes from {(work / dist['wheel'].name).as_uri()}" in text("fwyy-source")
    text("install")
    installed = list(Path(site).glob("fwyy_ollama-*.dist-info"))
    assert len(installed) == 1 and (Path(site) / "fwyy_ollama" / "cli").is_dir()
    assert (venv / "bin" / "fwyy").is_file() and (venv / "share" / "fwyy" / "templates").is_dir()

    doctor = text("doctor").splitlines()
    assert any(line.startswith("ok   training (HF + PEFT + TRL):") for line in doctor), doctor
    base = [line for line in doctor if " base model:" in line]
    assert base and base[0].startswith("STOP") and "HF_HUB_OFFLINE" in base[0], doctor
    assert doctor[-1] == "Fix the STOP lines before building."
    assert "fwyy-qwen2" in text("profiles") and "fwyy-qwen2.5-1.5b" in text("profiles")
    data = text("data")
    assert "0 problem(s)" in data and "languages:" in data, data

"""fwyy as people install it without a PyPI release (the Colab notebook, a fork): `python -m build`
makes an sdist and a wheel that `twine check` passes; the wheel carries the package, the `fwyy`
command, the extras the notebook installs and templates/, modelfiles/ and train/ (profiles, data,
the notebook); installed, fwyy finds them away from the checkout."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

SHIPPED = {  # folder in the checkout -> where the wheel puts its files (setup.cfg [options.data_files])
    "templates": "share/fwyy/templates",
    "modelfiles": "share/fwyy/modelfiles",
    "train/profiles": "share/fwyy/train/profiles",
    "train/data": "share/fwyy/train/data",
}


def _run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`python -m build` of the checkout: the sdist, then the wheel built from that sdist.

    No build isolation (it would fetch setuptools from the index): the environment's setuptools
    builds it, as pyproject.toml's build-system names it.
    """
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO)
    (sdist,) = out.glob("fwyy_ollama-*.tar.gz")
    (wheel,) = out.glob("fwyy_ollama-*-py3-none-any.whl")
    return {"sdist": sdist, "wheel": wheel}


def extras() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")
    return dict(cfg["options.extras_require"])


def test_twine_check_passes(dist: dict[str, Path]) -> None:
    out = _run(sys.executable, "-m", "twine", "check", "--strict", dist["sdist"], dist["wheel"])
    assert out.count("PASSED") == 2, out


def test_the_wheel_carries_what_the_notebook_and_the_cli_need(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as whl:
        names = set(whl.namelist())
        (info,) = {n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA")}
        metadata = whl.read(f"{info}/METADATA").decode()
        entry_points = whl.read(f"{info}/entry_points.txt").decode()
    data = info.replace(".dist-info", ".data") + "/data/"
    for folder, target in SHIPPED.items():
        files = sorted(p.name for p in (REPO / folder).iterdir() if p.is_file())
        assert files, folder
        for name in files:
            assert f"{data}{target}/{name}" in names, f"{folder}/{name} is not in the wheel"
    assert f"{data}share/fwyy/train/fwyy_colab.ipynb" in names
    for module in (
        "fwyy_ollama/cli/__init__.py",
        "fwyy_ollama/export/api.py",
        "fwyy_ollama/gpt4all/__init__.py",
    ):
        assert module in names, module
    assert "fwyy = fwyy_ollama.cli:main" in entry_points
    for extra in ("train", "unsloth", "llama", "gpt4all", "dev"):
        assert f"Provides-Extra: {extra}" in metadata, extra
    assert set(extras()) >= {"train", "unsloth", "llama"}


def test_wheel_install_finds_shipped_folders(dist: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    py = venv / "bin" / "python"
    _run(
        sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", dist["wheel"]
    )
    # The core dependencies come from the test's environment, after the wheel's own install.
    site = Path(_run(py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip())
    (site / "zz_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = _run(
        py, "-c", "from fwyy_ollama.resources import share_root; print(share_root())", cwd=tmp_path, env=env
    )
    assert Path(where.strip()) == venv / "share" / "fwyy"

    listed = json.loads(_run(py, "-m", "fwyy_ollama", "profiles", "--json", cwd=tmp_path, env=env))
    assert {p["name"] for p in listed} >= {
        "fwyy-qwen2",
        "fwyy-llama3",
        "fwyy-llama3-cn",
        "fwyy-mistral",
        "fwyy-smollm2",
    }
    assert all(str(venv) in p["file"] for p in listed)
    shipped = venv / "share" / "fwyy"
    for rel in SHIPPED:
        ours = sorted(p.name for p in (REPO / rel).iterdir() if p.is_file())
        theirs = sorted(p.name for p in (shipped / rel).iterdir() if p.is_file())
        assert theirs == ours, rel

"""A wheel carries templates/, modelfiles/ and train/, and fwyy finds them away from the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import REPO


def _run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_wheel_install_finds_shipped_folders(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, REPO)
    (wheel,) = wheels.glob("fwyy_ollama-*.whl")

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    py = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", wheel)
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
    for rel in ("templates", "modelfiles", "train/profiles", "train/data"):
        ours = sorted(p.name for p in (REPO / rel).iterdir() if p.is_file())
        theirs = sorted(p.name for p in (shipped / rel).iterdir() if p.is_file())
        assert theirs == ours, rel

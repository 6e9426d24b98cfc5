"""Third-party noise stays off the terminal: transformers' tqdm bars while fwyy converts a GGUF
base, gpt4all's dlopen messages while fwyy checks an export. Run in a child process so what reaches
its real stdout/stderr (file descriptors included) is what a user would see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE",)} | {"HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True,
                          env=env, check=False, timeout=600)  # fmt: skip


def test_gguf_base_conversion_draws_no_bars(smollm2_gguf: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from fwyy_ollama.base_model import _convert_gguf\n"
        "_convert_gguf(Path(sys.argv[1]), 'LlamaForCausalLM', Path(sys.argv[2]), None); print('done')"
    )
    proc = _run(code, str(smollm2_gguf), str(tmp_path / "hf"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "done\n"
    for noise in ("de-quantizing", "Loading weights", "Writing model shards", "it/s]"):
        assert noise not in proc.stderr, proc.stderr[-2000:]
    assert (tmp_path / "hf" / "config.json").is_file()


def test_gpt4all_check_prints_nothing(smollm2_gguf: Path, tmp_path: Path) -> None:
    pytest.importorskip("gpt4all")
    code = (
        "import sys; from pathlib import Path; from fwyy_ollama import gpt4all as g\n"
        "t = Path(sys.argv[2]); r = g.export_gpt4all(gguf=sys.argv[1], name='q', models_dir=t, "
        "settings_file=t / 'G.ini', system='s')\nprint(g.check_loads(r.gguf))"
    )
    proc = _run(code, str(smollm2_gguf), str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "True\n" and proc.stderr == "", proc.stderr[-2000:]

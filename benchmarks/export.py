"""Wall time, CPU time and peak memory of `fwyy export` against llama.cpp's own converter + quantizer.

    python benchmarks/export.py [--models demo,1b] [--quants f16,q4_k_m] [--workdir DIR] [--json]

fwyy runs as `export_gguf` in a child process. For K-quants it runs twice: as it does by default
(ggml's quantizer while streaming, no f16 file) and with FWYY_KQUANT_DIRECT=0 (its older path: an
f16/bf16 GGUF, then llama.cpp's llama_model_quantize). When FWYY_BENCH_LLAMA_CPP names a llama.cpp
checkout (with convert_hf_to_gguf.py, and build/bin/llama-quantize if built), the same models go
through `convert_hf_to_gguf.py --outtype f16` and, for K-quants, llama-quantize; without the
binary the quantize step calls the same llama_model_quantize through llama-cpp-python (the
llama.cpp that llama-cpp-python vendors is in its sdist: `pip download --no-binary :all:
--no-deps llama-cpp-python`, then vendor/llama.cpp). Each step is a child process: wall time is
measured around it, CPU time (user + system) and peak RSS come from wait4(), helpers included,
so the figures are the processes' own. On a shared machine CPU time moves less than wall time;
the load average is read before each run. Models: the demo SmolLM2-135M-Instruct (HF folder from
the shipped GGUF) and a random ~1.1B llama (TinyLlama's shape, bf16, SmolLM2's tokenizer), built
once in --workdir. Prints a table; never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

FWYY_CHILD = """
import resource, sys
from fwyy_ollama.export import export_gguf
export_gguf(model_dir=sys.argv[1], out=sys.argv[2], quant=sys.argv[3])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""

QUANTIZE_CHILD = """
import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + sys.argv[3].upper())
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))
"""


def run(
    cmd: list[str], env: dict[str, str] | None = None, stdout: list[str] | None = None
) -> tuple[float, float, int]:
    """(wall s, CPU s, peak RSS bytes) of one child process and its helpers; raises if it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)  # wait4: this child's own peak RSS
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{err.read().decode()[-2000:]}"
            )
        if stdout is not None:
            stdout.append(out.read().decode())
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def demo_model() -> Path:
    from fwyy_ollama.base_model import resolve_base_model
    from fwyy_ollama.profiles import load_profile

    return resolve_base_model(load_profile("fwyy-smollm2"))


def random_1b(workdir: Path, tokenizer_from: Path | None = None) -> Path:
    """A random bf16 llama with TinyLlama-1.1B's shape, made once, with `tokenizer_from`'s tokenizer
    (default: the demo model's, looked up only when the model is made: a machine without the demo
    base can bring just its tokenizer files)."""
    dest = workdir / "random-1.1b"
    if (dest / "config.json").is_file():
        return dest
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_from or demo_model())
    cfg = AutoConfig.for_model(
        "llama",
        vocab_size=len(tok),
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=32,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    tmp = Path(tempfile.mkdtemp(dir=workdir))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(dest)
    return dest


def bench_fwyy(model: Path, quant: str, out: Path, *, direct: bool = True) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "FWYY_LLAMA_QUANTIZE"}  # pip-only path
    env["FWYY_CACHE"] = tempfile.mkdtemp(prefix="fwyy-bench-cache-")  # first-run figures: nothing cached
    env["FWYY_KQUANT_DIRECT"] = "1" if direct else "0"
    printed: list[str] = []
    load = os.getloadavg()[0]
    wall, cpu, rss = run([sys.executable, "-c", FWYY_CHILD, str(model), str(out), quant], env, printed)
    own = int(printed[0].split()[-1])  # the export process alone (without its tokenizer-check helper)
    size = out.stat().st_size
    out.unlink()
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss": rss,
        "export_process_rss": own,
        "size": size,
        "load": load,
    }


def bench_llama_cpp(checkout: Path, model: Path, quant: str, out: Path) -> dict[str, float | str]:
    f16 = out.with_suffix(".f16.gguf")
    env = dict(os.environ)  # the script uses the gguf-py of its own checkout
    load = os.getloadavg()[0]
    wall, cpu, rss = run([sys.executable, str(checkout / "convert_hf_to_gguf.py"), str(model), "--outfile",
                          str(f16), "--outtype", "f16"], env)  # fmt: skip
    how = "convert_hf_to_gguf.py"
    if quant == "f16":
        f16.rename(out)
    else:
        binary = checkout / "build" / "bin" / "llama-quantize"
        if binary.is_file():
            w2, c2, r2 = run([str(binary), str(f16), str(out), quant.upper(), str(os.cpu_count() or 1)])
            how += " + llama-quantize"
        else:
            w2, c2, r2 = run([sys.executable, "-c", QUANTIZE_CHILD, str(f16), str(out), quant])
            how += " + llama_model_quantize (llama-cpp-python)"
        wall, cpu, rss = wall + w2, cpu + c2, max(rss, r2)
        f16.unlink()
    size = out.stat().st_size
    out.unlink()
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss": rss, "size": size, "how": how, "load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="demo,1b")
    parser.add_argument("--quants", default="f16,q4_k_m")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "fwyy-bench-export")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per tool, in rotating order; the median is shown"
    )
    parser.add_argument(
        "--tokenizer", type=Path, help="tokenizer files for the random 1.1B model (default: the demo model's)"
    )
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.prepare:
        wanted = args.models.split(",")
        made = {}
        if "demo" in wanted:
            made["demo"] = str(demo_model())
        if "1b" in wanted:
            made["1b"] = str(random_1b(args.workdir, args.tokenizer))
        print(json.dumps(made))
        return
    checkout = Path(os.environ["FWYY_BENCH_LLAMA_CPP"]) if os.environ.get("FWYY_BENCH_LLAMA_CPP") else None

    # the models are made in a child: a forked child counts its parent's pages in its peak RSS
    # until exec, so this process must stay small while it measures
    prep = subprocess.run(
        [sys.executable, __file__, "--prepare", "--models", args.models, "--workdir", str(args.workdir)]
        + (["--tokenizer", str(args.tokenizer)] if args.tokenizer else []),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    models = {k: Path(v) for k, v in json.loads(prep.stdout.strip().splitlines()[-1]).items()}
    rows = []
    for label, folder in models.items():
        params = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
        for quant in args.quants.split(","):
            out = args.workdir / f"{label}-{quant}.gguf"
            row = {"model": label, "weights_bytes": params, "quant": quant}
            row.update(bench_row(folder, quant, out, checkout, args.repeat))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=2))
        return
    print_table(rows, checkout)


TOOLS = ("fwyy", "fwyy f16+llama", "llama.cpp")


def bench_row(folder: Path, quant: str, out: Path, checkout: Path | None, repeat: int) -> dict[str, dict]:
    """Each tool `repeat` times, the order rotating, so a busy minute of a shared machine does not
    fall on one tool only; per tool the run with the median wall time, and every run's wall time."""
    arms: list[tuple[str, Callable[[], dict]]] = [("fwyy", lambda: bench_fwyy(folder, quant, out))]
    if "_k" in quant:  # a K-quant: fwyy's older path too
        arms.append(("fwyy f16+llama", lambda: bench_fwyy(folder, quant, out, direct=False)))
    if checkout is not None:
        arms.append(("llama.cpp", lambda: bench_llama_cpp(checkout, folder, quant, out)))
    runs: dict[str, list[dict]] = {name: [] for name, _ in arms}
    for k in range(repeat):
        for name, arm in arms[k % len(arms) :] + arms[: k % len(arms)]:
            runs[name].append(arm())
    picked = {}
    for name, done in runs.items():
        mid = statistics.median_low(r["wall_s"] for r in done)
        picked[name] = {**next(r for r in done if r["wall_s"] == mid), "walls": [r["wall_s"] for r in done]}
    return picked


def print_table(rows: list[dict], checkout: Path | None) -> None:
    """One line per tool; `vs` is the wall-time ratio against llama.cpp's (else fwyy's f16 path)."""
    mib = 1 << 20
    print(f"machine: {os.cpu_count()} CPUs; llama.cpp: {checkout or 'not given (set FWYY_BENCH_LLAMA_CPP)'}")
    print(f"{'model':<6} {'quant':<7} {'tool':<15} {'wall s':>7} {'CPU s':>7} {'peak RSS MiB':>13} "
          f"{'GGUF MiB':>9} {'vs':>6} {'load':>5}  note")  # fmt: skip
    for row in rows:
        base = row.get("llama.cpp") or row.get("fwyy f16+llama") or row["fwyy"]
        for tool in TOOLS:
            if tool not in row:
                continue
            r = row[tool]
            note = r.get("how", "")
            if "export_process_rss" in r:
                note = f"export process alone: {r['export_process_rss'] / mib:.0f} MiB"
            if len(r.get("walls", ())) > 1:
                note = f"walls {'/'.join(f'{w:.0f}' for w in r['walls'])}; {note}"
            ratio = r["wall_s"] / base["wall_s"]
            print(f"{row['model']:<6} {row['quant']:<7} {tool:<15} {r['wall_s']:>7.1f} {r['cpu_s']:>7.1f} "
                  f"{r['peak_rss'] / mib:>13.0f} {r['size'] / mib:>9.0f} {ratio:>5.2f}x {r['load']:>5.1f}  "
                  f"{note}")  # fmt: skip


if __name__ == "__main__":
    main()

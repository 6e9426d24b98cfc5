"""Judgment on real samples: fwyy models beside the classical detectors, for the README.

    python benchmarks/eval_realworld.py                       # base demo + detectors on the real-world set
    python benchmarks/eval_realworld.py -m after=fwyy-smollm2 --both --limit 40

It is the same as `fwyy eval --data train/data/realworld.eval.jsonl -m base=demo -m libinjection
-m bandit -m always-risky [...] --markdown`, and also writes benchmarks/eval_realworld.{md,png}
(the table with the command, the data's hash and the machine). Answers are cached, so a rerun with
the same models only prints.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

DETECTORS = ["libinjection", "bandit", "always-risky"]


def main() -> int:
    from fwyy_ollama.evaluation import evaluate, markdown_table, plot

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(HERE.parent / "train" / "data" / "realworld.eval.jsonl"))
    ap.add_argument("-m", "--model", action="append", default=None, help="besides base=demo (repeat)")
    ap.add_argument("--no-base", action="store_true", help="leave out the untuned demo base")
    ap.add_argument("--no-detectors", action="store_true")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--no-constrain", action="store_true")
    ap.add_argument("--both", action="store_true")
    ap.add_argument("--out", default=str(HERE / "eval_realworld"))
    args = ap.parse_args()

    models = ([] if args.no_base else ["base=demo"]) + (args.model or [])
    models += [] if args.no_detectors else DETECTORS

    def progress(done: float, total: float | None, description: str) -> None:
        print(f"\r[{int(done)}/{int(total or 0)}] {description:60.60}", end="", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    result = evaluate(
        models,
        data=args.data,
        limit=args.limit,
        max_tokens=args.max_tokens,
        constrain=not args.no_constrain,
        both=args.both,
        progress=progress,
    )
    print(file=sys.stderr)
    png = plot(result, args.out + ".png")
    command = ["fwyy", "eval", "--data", os.path.relpath(args.data, HERE.parent)]
    for m in models:
        command += ["-m", m]
    command += [flag for flag, on in (("--no-constrain", args.no_constrain), ("--both", args.both)) if on]
    command += ["--limit", str(args.limit)] if args.limit else []
    command += ["--max-tokens", str(args.max_tokens)] if args.max_tokens else []
    command += ["--plot", Path(png).name]
    text = (
        f"{markdown_table(result)}\n"
        f"{result.n} items of `{result.data.name}` (sha256 {result.data_sha256[:12]}), greedy; "
        f"{platform.machine()} CPU, {os.cpu_count()} cores, {time.perf_counter() - t0:.0f} s wall "
        "(cached answers not re-timed).\n\n"
        f"Command: `{shlex.join(command)}`\n"
    )
    Path(args.out + ".md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

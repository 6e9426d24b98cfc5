"""Before/after figures for the README: base SmolLM2-135M-Instruct against the fine-tuned demo.

Run after `fwyy build -p fwyy-smollm2` (so out/fwyy-smollm2/fwyy-smollm2.q4_k_m.gguf exists):

    python benchmarks/eval_demo.py --limit 80

It is the same as `fwyy eval -m before=demo -m after=fwyy-smollm2 --limit 80 --plot
benchmarks/eval_demo.png`, and also writes benchmarks/eval_demo.md (the markdown table, with the
command and the machine) for the README. Answers are cached, so a rerun only prints.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> int:
    from fwyy_ollama.evaluation import evaluate, markdown_table, plot

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=80)
    ap.add_argument("--max-tokens", type=int, default=None, help="default: none under the grammar, 384 free")
    ap.add_argument("--both", action="store_true", help="each model constrained and free")
    ap.add_argument("--before", default="before=demo")
    ap.add_argument("--after", default="after=fwyy-smollm2")
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default=str(HERE / "eval_demo"))
    args = ap.parse_args()

    def progress(done: float, total: float | None, description: str) -> None:
        print(f"\r[{int(done)}/{int(total or 0)}] {description:60.60}", end="", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    result = evaluate(
        [args.before, args.after],
        data=args.data,
        limit=args.limit,
        max_tokens=args.max_tokens,
        both=args.both,
        progress=progress,
    )
    print(file=sys.stderr)
    png = plot(result, args.out + ".png")
    command = (
        f"fwyy eval -m {args.before} -m {args.after} --limit {args.limit}"
        + (f" --max-tokens {args.max_tokens}" if args.max_tokens else "")
        + (" --both" if args.both else "")
        + f" --plot {Path(png).name}"
    )
    text = (
        f"{markdown_table(result)}\n"
        f"{result.n} records of `{result.data.name}` (sha256 {result.data_sha256[:12]}), greedy, "
        f"{'at most ' + str(args.max_tokens) if args.max_tokens else 'default'} answer tokens; {platform.machine()} CPU, {os.cpu_count()} cores, "
        f"{time.perf_counter() - t0:.0f} s wall (cached answers not re-timed).\n\n"
        f"Command: `{command}`\n"
    )
    Path(args.out + ".md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

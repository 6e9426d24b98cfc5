"""How fwyy's static rules scale on hostile text: seconds at n and 4n characters, and the ratio.

    python benchmarks/findings_hostile.py [--chars 12000]

Text fwyy analyzes is hostile by design, and a regular expression with nested or unbounded
repeats can take time quadratic in its length (a linear rule takes about 4x as long on 4x the
text; a quadratic one about 16x). Each input repeats one pattern meant to make a rule backtrack
(dotted names, host-and-port runs, dashes, quotes, tags, ...). Prints, per input, the whole
`static_findings` call at both sizes and the slowest single rule. Never asserts on time.
"""

from __future__ import annotations

import argparse
import time

UNITS = {
    "dotted names": "a.",
    "host and port runs": "192.0.2.1 80 ",
    "host, port, option": "h.example.com 8080 -x ",
    "dashes": "a-",
    "digits and dots": "1.",
    "colons": "a:1 ",
    "a port, then options": " -",
    "quotes": "'\"",
    "open tags": "<a ",
    "parentheses": "(",
    "semicolons": "a;",
    "percent-encoding": "%27",
    "SQL keywords": "select from ",
    "shell pipes": "| sh ",
}


def seconds(fn, *args) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, default=12000, help="n: the smaller input's length")
    args = parser.parse_args()

    from fwyy_ollama.dataset.explain import FEATURES
    from fwyy_ollama.findings import static_findings

    print(f"{'input':22} {'n s':>8} {'4n s':>8} {'ratio':>6}  slowest rule at 4n")
    for name, unit in UNITS.items():
        small = unit * (args.chars // len(unit))
        large = unit * (4 * args.chars // len(unit))
        t_small, t_large = seconds(static_findings, small), seconds(static_findings, large)
        rule, worst = max(
            ((f"{cat}:{f.name}", seconds(f.pattern.search, large)) for cat, fs in FEATURES.items() for f in fs),
            key=lambda rt: rt[1],
        )
        print(f"{name:22} {t_small:8.3f} {t_large:8.3f} {t_large / t_small:5.1f}x  {rule} {worst:.3f} s")


if __name__ == "__main__":
    main()

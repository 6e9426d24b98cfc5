"""`fwyy eval --plot`: per-category safe-vs-risky accuracy bars, one bar per row of the table.

A figure that does not apply (a detector outside its categories, its 5-way label or format) gets
no bar and a "—" label, so a missing bar is never mistaken for 0%.
"""

from __future__ import annotations

import os
from pathlib import Path

from fwyy_ollama.atomic import atomic_path
from fwyy_ollama.errors import require
from fwyy_ollama.evaluation.run import EvalResult
from fwyy_ollama.evaluation.table import NA, categories


def plot(result: EvalResult, out: str | os.PathLike[str]) -> Path:
    """Write the PNG to `out` (atomically) and return its path."""
    require("matplotlib", "plot", "--plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = categories(result)
    groups = [*cats, "all", "5-way", "format"]
    n_models = max(1, len(result.models))
    width = 0.8 / n_models
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(groups) + 2), 4.2), dpi=120)
    for i, m in enumerate(result.models):
        values = [m.metrics.per_category.get(c, {}).get("risky_accuracy") for c in cats]
        values += [m.metrics.risky_accuracy, m.metrics.label_accuracy, m.metrics.format_compliance]
        xs = [g + (i - (n_models - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, [v or 0.0 for v in values], width, label=m.name)
        ax.bar_label(bars, labels=[NA if v is None else f"{v:.0%}" for v in values], fontsize=7, padding=1)
    ax.set_xticks(range(len(groups)), [*cats, "overall\nsafe/risky", "5-way\nlabel", "format\ncompliance"])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"fwyy eval: safe-vs-risky accuracy per category (n={result.n}, {Path(result.data).name})")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out

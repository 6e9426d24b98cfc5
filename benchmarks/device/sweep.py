"""Train several recipe variants of one profile on a GPU and score each, side by side.

Why: a CPU recipe trained on a GPU gives the same model, only in seconds, so what a CPU recipe
change buys (balanced data, more steps if training gets faster) can be measured many times in
one device call instead of once per 15 CPU minutes. Each variant is `name:recipe[:key=value,...]`
where recipe is cpu or gpu (the profile's [train] or [train.gpu]) and the keys override that
recipe's settings:

    python benchmarks/device/sweep.py --base BASE_DIR --out OUT \
        cpu:cpu cpu-bal:cpu:balance=true cpu2x-bal:cpu:balance=true,max_steps=110

Each variant also answers the demo's samples/ files, as `make demo` asks them.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from hf_eval import load_model, score  # noqa: E402

EVAL_FILES = (Path("train/data/realworld.eval.jsonl"), Path("train/data/security.eval.jsonl"))
SAMPLES = {"sqli-login.txt": ("sqli", True), "reverse-shell.sh": ("bash", True), "safe-query.py": ("python", False)}


def samples_file() -> Path:
    """samples/ as an eval file (input, category, risky), the verdicts `make demo` should print."""
    path = Path(tempfile.mkdtemp()) / "samples.jsonl"
    rows = [
        {"input": (Path("samples") / name).read_text(encoding="utf-8"), "category": cat, "risky": risky, "label": None}
        for name, (cat, risky) in SAMPLES.items()
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def parse_value(text: str) -> object:
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def variant_profile(profile, recipe: str, overrides: dict[str, object]):  # type: ignore[no-untyped-def]
    """The profile with the chosen recipe as its only [train] and the overrides applied.

    A key `lora.NAME` sets the profile's [lora] NAME (`lora.seed=1`: the same recipe on another
    seed, which says how much of a difference between variants is noise)."""
    chosen = profile.for_device(gpu=recipe == "gpu")
    lora = {k.removeprefix("lora."): v for k, v in overrides.items() if k.startswith("lora.")}
    train = {k: v for k, v in overrides.items() if not k.startswith("lora.")}
    return dataclasses.replace(
        chosen,
        train=dataclasses.replace(chosen.train, **train),
        lora=dataclasses.replace(chosen.lora, **lora),
        train_gpu=None,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--profile", default="fwyy-smollm2")
    ap.add_argument("--out", required=True)
    ap.add_argument("--base-row", action="store_true", help="score the untuned base too")
    ap.add_argument("variants", nargs="+")
    args = ap.parse_args()

    import torch

    from fwyy_ollama.finetune.core import train_adapter
    from fwyy_ollama.profiles import load_profile

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    profile = load_profile(args.profile)
    table: dict[str, dict] = {}
    runs = [("base", None, {})] if args.base_row else []
    for spec in args.variants:
        name, recipe, *rest = spec.split(":")
        overrides = {
            k: parse_value(v) for k, v in (kv.split("=", 1) for kv in ",".join(rest).split(",") if kv)
        }
        runs.append((name, recipe, overrides))
    for name, recipe, overrides in runs:
        row: dict = {"recipe": recipe, **overrides}
        adapter = None
        if recipe is not None:
            started = time.perf_counter()
            result = train_adapter(
                variant_profile(profile, recipe, overrides),
                out_dir=out / name,
                backend="hf",
                base_dir=args.base,
                recipe="cpu",
            )
            row.update(
                train_s=round(time.perf_counter() - started, 1),
                steps=result.steps,
                first_loss=result.first_loss,
                final_loss=result.final_loss,
            )
            adapter = str(result.adapter_dir)
        print(f"== {name} {row}", flush=True)
        model, tok = load_model(args.base, adapter)
        for data in EVAL_FILES:
            res = score(model, tok, data, "en", 256, 256, str(out / f"{name}.json"))
            row[data.stem] = {
                k: res["all"][k]
                for k in ("binary_acc", "risky_f1", "precision", "recall", "five_way_acc", "format")
            }
            row[data.stem]["veto"] = {k: res["all_veto"][k] for k in ("binary_acc", "risky_f1", "five_way_acc")}
        samples = score(model, tok, samples_file(), "en", 8, 256, str(out / f"{name}.json"))
        row["samples_right"] = round(samples["all_veto"]["binary_acc"] * len(SAMPLES))  # as make demo reports
        table[name] = row
        del model
        gc.collect()
        torch.cuda.empty_cache()
        (out / "sweep.json").write_text(json.dumps(table, indent=1))
    print("\nvariant          real-world acc/F1/P/R/fmt            shipped acc/5-way/fmt   samples   with veto: real-world acc/F1, shipped acc/5-way")
    for name, row in table.items():
        rw, sh = row["realworld.eval"], row["security.eval"]
        print(
            f"{name:16s} {rw['binary_acc']:.3f} {rw['risky_f1']:.3f} {rw['precision']:.3f} {rw['recall']:.3f} {rw['format']:.3f}"
            f"     {sh['binary_acc']:.3f} {sh['five_way_acc'] or 0:.3f} {sh['format']:.3f}"
            f"   {row['samples_right']}/{len(SAMPLES)}   train {row.get('train_s', '-')} s"
            f"   veto {rw['veto']['binary_acc']:.3f} {rw['veto']['risky_f1']:.3f}, {sh['veto']['binary_acc']:.3f} {sh['veto']['five_way_acc'] or 0:.3f}"
        )


if __name__ == "__main__":
    main()

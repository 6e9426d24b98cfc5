"""Quick judgment figures for recipe tuning on a GPU: batched greedy answers in transformers.

`fwyy eval` is the measurement users run (the GGUF through llama.cpp, constrained decoding); it
asks one item at a time, which is right for a CPU and slow for comparing recipes. This script asks
the same prompts (fwyy_ollama.analysis.build_messages, the adapter's chat template) in batches on
the GPU, unconstrained, and prints safe-vs-risky accuracy, risky-class F1, 5-way accuracy where a
severity is known, and format compliance, per data file and category:

    python benchmarks/device/hf_eval.py --base BASE_DIR --adapter ADAPTER_DIR \
        --data train/data/realworld.eval.jsonl --data train/data/security.eval.jsonl --lang en
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path


def load_items(path: Path, lang: str) -> list[dict]:
    """(input, category, risky, label) from either eval format; Alpaca records of another language are skipped."""
    from fwyy_ollama.dataset.records import load_records, record_category, record_label, record_lang

    first = json.loads(path.open(encoding="utf-8").readline())
    if "output" not in first:
        items = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
        return [{"input": i["input"], "category": i["category"], "risky": i["risky"], "label": i["label"]} for i in items]
    out = []
    for r in load_records(path):
        if record_lang(r) != lang:
            continue
        label = record_label(r).value
        out.append({"input": r["input"], "category": record_category(r), "risky": label != "safe", "label": label})
    return out


def metrics(rows: list[dict], key: str = "pred") -> dict:
    """Figures of the labels under `key`: "pred" (the model's) or "pred_veto" (after fwyy's veto)."""
    n = len(rows)
    parsed = [r for r in rows if r[key] is not None]
    correct = sum(1 for r in rows if r[key] is not None and (r[key] != "safe") == r["risky"])
    tp = sum(1 for r in rows if r[key] not in (None, "safe") and r["risky"])
    fp = sum(1 for r in rows if r[key] not in (None, "safe") and not r["risky"])
    fn = sum(1 for r in rows if r[key] in (None, "safe") and r["risky"])
    p = tp / (tp + fp) if tp + fp else 0.0
    rc = tp / (tp + fn) if tp + fn else 0.0
    known = [r for r in rows if r["label"]]
    return {
        "n": n,
        "binary_acc": correct / n if n else 0.0,
        "risky_f1": 2 * p * rc / (p + rc) if p + rc else 0.0,
        "precision": p,
        "recall": rc,
        "five_way_acc": sum(1 for r in known if r[key] == r["label"]) / len(known) if known else None,
        "format": len(parsed) / n if n else 0.0,
    }


def score(model, tok, data: Path, lang: str, batch: int, max_new_tokens: int, out: str | None = None) -> dict:
    """Greedy answers to every item of one eval file, batched, and their figures (printed too)."""
    import torch

    from fwyy_ollama.analysis import build_messages
    from fwyy_ollama.findings import veto_finding, vetoed
    from fwyy_ollama.report import Label, ReportFormatError, parse_report

    items = load_items(data, lang)
    prompts = [
        tok.apply_chat_template(build_messages(i["input"], lang), tokenize=False, add_generation_prompt=True)
        for i in items
    ]
    started = time.perf_counter()
    for start in range(0, len(items), batch):
        enc = tok(prompts[start : start + batch], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.cuda() for k, v in enc.items()}
        with torch.no_grad():
            answers = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        for j, seq in enumerate(answers):
            text = tok.decode(seq[enc["input_ids"].shape[1] :], skip_special_tokens=True)
            item = items[start + j]
            item["answer"] = text
            try:
                item["pred"] = parse_report(text).label.value
            except ReportFormatError:
                item["pred"] = None
            # as `fwyy analyze` reports it: a sure-fire rule's finding overrules "safe"
            veto = veto_finding(item["input"], lang)
            item["pred_veto"] = item["pred"] and vetoed(Label(item["pred"]), veto)[0].value
    seconds = time.perf_counter() - started
    by_cat = defaultdict(list)
    for i in items:
        by_cat[i["category"]].append(i)
    res = {
        "all": metrics(items),
        "all_veto": metrics(items, "pred_veto"),
        **{c: metrics(v) for c, v in sorted(by_cat.items())},
        "seconds": seconds,
    }
    print(data.name, f"{seconds:.1f}s")
    for k, v in res.items():
        if isinstance(v, dict):
            print(f"  {k:8s} " + " ".join(f"{m}={x:.3f}" if isinstance(x, float) else f"{m}={x}" for m, x in v.items()))
    if out:
        Path(out).with_suffix(f".{data.stem}.answers.jsonl").write_text(
            "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items)
        )
    return res


def load_model(base: str, adapter: str | None):  # type: ignore[no-untyped-def]
    """(model in bf16 on the GPU with the adapter merged, left-padding tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(adapter or base)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16).cuda().eval()
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model, tok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--adapter")
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--lang", default="en")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--out")
    args = ap.parse_args()
    model, tok = load_model(args.base, args.adapter)
    results = {
        Path(d).name: score(model, tok, Path(d), args.lang, args.batch, args.max_new_tokens, args.out) for d in args.data
    }
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

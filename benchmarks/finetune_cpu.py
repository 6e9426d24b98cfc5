"""CPU training speed of the HF backend's choices, on the demo model and the shipped data.

    OMP_NUM_THREADS=2 python benchmarks/finetune_cpu.py                  # forward+backward, 4 variants
    OMP_NUM_THREADS=2 python benchmarks/finetune_cpu.py --train --steps 4  # whole train_adapter runs

The first form times one LoRA forward+backward over the same batches four ways: padded or
padding-free batches, and logits over every position or only where an answer token is predicted
(what fwyy's CPU loss does). The second runs train_adapter with padding-free off and on. Both
report wall and CPU time: on a shared machine wall time depends on the neighbours, CPU time much
less; with T torch threads and the machine to itself, wall time is about CPU time / T. Variants
alternate so that noise hits all alike. It measures; it never asserts on time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _batches(profile, records, batch, max_len):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from fwyy_ollama.base_model import resolve_base_model
    from fwyy_ollama.dataset.records import to_messages
    from fwyy_ollama.finetune.core import family_template
    from fwyy_ollama.finetune.data import tokenize_all

    base = resolve_base_model(profile)
    tokenizer = AutoTokenizer.from_pretrained(base)
    template, turn_end = family_template(profile)
    ex = tokenize_all(
        tokenizer,
        [to_messages(r, profile.language) for r in records],
        chat_template=template,
        turn_end=turn_end,
        max_seq_length=max_len,
    )
    feats = [{"input_ids": e.input_ids, "labels": e.labels} for e in ex.examples]
    return base, [feats[i : i + batch] for i in range(0, len(feats) - batch + 1, batch)], ex


def micro(args, profile, records) -> None:  # type: ignore[no-untyped-def]
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from fwyy_ollama.finetune.sft import answer_loss_sum

    base, batches, ex = _batches(profile, records, args.batch, args.max_seq_length)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation="sdpa")
    model.config.use_cache = False
    lora = profile.lora
    model = get_peft_model(
        model,
        LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, target_modules=list(lora.target_modules), task_type="CAUSAL_LM"
        ),
    )
    model.train()
    variants = [(pf, only) for pf in (False, True) for only in (False, True)]
    wall = {v: 0.0 for v in variants}
    cpu = {v: 0.0 for v in variants}
    tokens = {v: 0 for v in variants}
    padded_tokens = 0
    for rep in range(args.repeats):
        for feats in batches:
            for v in variants:
                pf, only = v
                batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=pf)(feats)
                t0, c0 = time.perf_counter(), time.process_time()
                if only:
                    total, count = answer_loss_sum(model, batch)
                    loss = total / count
                else:
                    loss = model(**batch).loss
                loss.backward()
                model.zero_grad(set_to_none=True)
                if rep > 0 or len(batches) == 1:  # the first pass warms up allocators and kernels
                    wall[v] += time.perf_counter() - t0
                    cpu[v] += time.process_time() - c0
                    tokens[v] += sum(len(f["input_ids"]) for f in feats)
                    if v == (False, False):
                        padded_tokens += batch["input_ids"].numel()
    n_answer = ex.answer_tokens / (ex.prompt_tokens + ex.answer_tokens)
    print(
        f"\n{profile.base.hf_id} LoRA r{lora.r}, {len(batches)} batches of {args.batch} "
        f"({len(records)} records, answer tokens {n_answer:.0%} of all), {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; padding adds {padded_tokens / max(1, tokens[(False, False)]) - 1:.0%} "
        "tokens to padded batches"
    )
    print(f"{'batches':>13} {'logits':>12} {'tokens/s':>10} {'tokens/CPU-s':>13} {'x padded+full (CPU)':>20}")
    ref = tokens[(False, False)] / cpu[(False, False)]
    for v in variants:
        pf, only = v
        tps, tpc = tokens[v] / wall[v], tokens[v] / cpu[v]
        name = "padding-free" if pf else "padded"
        print(
            f"{name:>13} {'answer only' if only else 'all':>12} {tps:>10.1f} {tpc:>13.1f} {tpc / ref:>19.2f}x"
        )


def train(args, profile, records) -> None:  # type: ignore[no-untyped-def]
    from fwyy_ollama.dataset.records import write_records
    from fwyy_ollama.finetune import train_adapter

    runs: dict[bool, list[dict]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_records(Path(tmp) / "data.jsonl", records)
        for i in range(args.repeats):
            for pf in (False, True):
                out = Path(tmp) / f"adapter-{int(pf)}-{i}"
                m = train_adapter(
                    profile,
                    data_files=[data],
                    out_dir=out,
                    max_steps=args.steps,
                    backend="hf",
                    padding_free=pf,
                ).metadata
                runs[pf].append(m)
                cpu_s = m["backend_settings"]["train_cpu_seconds"]
                print(
                    json.dumps(
                        {
                            "padding_free": pf,
                            "tokens_per_second": m["tokens_per_second"],
                            "tokens_per_cpu_second": round(m["trained_tokens"] / cpu_s, 1),
                            "train_seconds": m["train_seconds"],
                            "train_cpu_seconds": cpu_s,
                            "trained_tokens": m["trained_tokens"],
                            "losses": [round(x, 4) for _, x in m["losses"]],
                        }
                    ),
                    flush=True,
                )
    med = {
        pf: statistics.median(
            m["trained_tokens"] / m["backend_settings"]["train_cpu_seconds"] for m in runs[pf]
        )
        for pf in runs
    }
    print(
        f"tokens per CPU-second: padded {med[False]:.1f}, padding-free {med[True]:.1f} "
        f"({med[True] / med[False]:.2f}x)"
    )
    a = [x for _, x in runs[False][0]["losses"]]
    b = [x for _, x in runs[True][0]["losses"]]
    print(
        "largest loss difference, padded vs padding-free:", max(abs(x - y) for x, y in zip(a, b, strict=True))
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="fwyy-smollm2")
    ap.add_argument("--data", default=None, help="Alpaca JSONL (default: the profile's data)")
    ap.add_argument("--records", type=int, default=16, help="first N records of the data")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-seq-length", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2, help="passes over the batches (the first warms up)")
    ap.add_argument("--train", action="store_true", help="time whole train_adapter runs instead")
    ap.add_argument("--steps", type=int, default=4, help="with --train: steps per run")
    args = ap.parse_args()

    import transformers

    from fwyy_ollama.dataset.records import load_many
    from fwyy_ollama.finetune.core import resolve_data_files
    from fwyy_ollama.profiles import load_profile

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    profile = load_profile(args.profile)
    profile = dataclasses.replace(
        profile,
        train=dataclasses.replace(
            profile.train, batch_size=args.batch, grad_accum=1, max_seq_length=args.max_seq_length
        ),
    )
    records = load_many(resolve_data_files(profile, [args.data] if args.data else None))[: args.records]
    (train if args.train else micro)(args, profile, records)


if __name__ == "__main__":
    main()

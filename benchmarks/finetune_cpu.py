"""CPU training speed of the HF backend's choices, on the demo model and the shipped data.

    OMP_NUM_THREADS=2 python benchmarks/finetune_cpu.py                  # forward+backward, 5 variants
    OMP_NUM_THREADS=2 python benchmarks/finetune_cpu.py --train --steps 4  # whole train_adapter runs
    OMP_NUM_THREADS=2 python benchmarks/finetune_cpu.py --fast --steps 20  # plain vs fast path, demo recipe

The first form times one LoRA forward+backward over the same batches five ways: padded or
padding-free batches, logits over every position or only where an answer token is predicted
(what fwyy's CPU loss does), and the CPU fast path (finetune.shared_prefix: the batch's shared
prompt prefix once, attention per example, LoRA's add inside its matmul). The second runs
train_adapter with padding-free off and on. The third runs the demo recipe itself (the profile's
data, balance, findings, batch 4) through train_adapter with the plain path and the fast path, with
LoRA on every layer and on the profile's top layers, each run in its own process so that its
peak RSS is its own. All report wall and CPU time: on a shared machine wall time depends on the
neighbours, CPU time much less; with T torch threads and the machine to itself, wall time is
about CPU time / T. Variants alternate so that noise hits all alike. It measures; it never
asserts on time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
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

    from fwyy_ollama.finetune.lora_addmm import fuse_lora, unfuse_lora
    from fwyy_ollama.finetune.sft import answer_loss_sum
    from fwyy_ollama.finetune.shared_prefix import answer_loss_sum_shared, plan_pack

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
    # (padding-free, logits): "all" positions, "answer" only, or the "fast" path (answer only too).
    variants = [(pf, only) for pf in (False, True) for only in ("all", "answer")] + [(True, "fast")]
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
                if only == "fast":
                    fuse_lora(model)
                    total, count = answer_loss_sum_shared(model, plan_pack(batch))
                    loss = total / count
                elif only == "answer":
                    total, count = answer_loss_sum(model, batch)
                    loss = total / count
                else:
                    loss = model(**batch).loss
                loss.backward()
                unfuse_lora(model)
                model.zero_grad(set_to_none=True)
                if rep > 0 or len(batches) == 1:  # the first pass warms up allocators and kernels
                    wall[v] += time.perf_counter() - t0
                    cpu[v] += time.process_time() - c0
                    tokens[v] += sum(len(f["input_ids"]) for f in feats)
                    if v == (False, "all"):
                        padded_tokens += batch["input_ids"].numel()
    n_answer = ex.answer_tokens / (ex.prompt_tokens + ex.answer_tokens)
    print(
        f"\n{profile.base.hf_id} LoRA r{lora.r}, {len(batches)} batches of {args.batch} "
        f"({len(records)} records, answer tokens {n_answer:.0%} of all), {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; padding adds {padded_tokens / max(1, tokens[(False, 'all')]) - 1:.0%} "
        "tokens to padded batches"
    )
    print(f"{'batches':>13} {'logits':>12} {'tokens/s':>10} {'tokens/CPU-s':>13} {'x padded+full (CPU)':>20}")
    ref = tokens[(False, "all")] / cpu[(False, "all")]
    names = {"all": "all", "answer": "answer only", "fast": "fast path"}
    for v in variants:
        pf, only = v
        tps, tpc = tokens[v] / wall[v], tokens[v] / cpu[v]
        name = "padding-free" if pf else "padded"
        print(f"{name:>13} {names[only]:>12} {tps:>10.1f} {tpc:>13.1f} {tpc / ref:>19.2f}x")


def train(args, profile, records) -> None:  # type: ignore[no-untyped-def]
    from fwyy_ollama.dataset.records import write_records
    from fwyy_ollama.finetune import train_adapter
    from fwyy_ollama.finetune.hf_backend import FAST_PATH_ENV

    os.environ[FAST_PATH_ENV] = "0"  # padded vs padding-free, both on the plain path (--fast compares that)
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


def _fast_child(spec: dict) -> None:
    """One train_adapter run of the recipe in this process; its figures as one JSON line on stdout."""
    from fwyy_ollama.finetune import train_adapter
    from fwyy_ollama.finetune.hf_backend import FAST_PATH_ENV
    from fwyy_ollama.profiles import load_profile

    os.environ[FAST_PATH_ENV] = "1" if spec["fast"] else "0"
    profile = load_profile(spec["profile"])
    profile = dataclasses.replace(profile, train=dataclasses.replace(profile.train, top_layers=spec["top"]))
    with tempfile.TemporaryDirectory() as tmp:
        m = train_adapter(
            profile, out_dir=Path(tmp) / "adapter", max_steps=spec["steps"], backend="hf", recipe="cpu"
        ).metadata
    settings = m["backend_settings"]
    print(
        json.dumps(
            {
                **spec,
                "cpu_fast_path": settings["cpu_fast_path"],
                "shared_prefix_saved": settings.get("shared_prefix_saved"),
                "trained_tokens": m["trained_tokens"],
                "train_seconds": m["train_seconds"],
                "train_cpu_seconds": settings["train_cpu_seconds"],
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "losses": [x for _, x in m["losses"]],
            }
        ),
        flush=True,
    )


def fast(args, profile) -> None:  # type: ignore[no-untyped-def]
    """The plain path vs the fast path on the recipe as shipped, LoRA on every layer and on the top ones."""
    tops = [0] + ([profile.train.top_layers] if profile.train.top_layers else [])
    runs: dict[tuple[int, bool], list[dict]] = {(t, f): [] for t in tops for f in (False, True)}
    load = os.getloadavg()
    for _ in range(args.runs):
        for top in tops:
            for is_fast in (False, True):
                spec = {"profile": args.profile, "top": top, "fast": is_fast, "steps": args.steps}
                done = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps(spec)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    raise SystemExit(f"run {spec} failed:\n{done.stderr[-3000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                runs[(top, is_fast)].append(result)
                print(json.dumps({k: v for k, v in result.items() if k != "losses"}), flush=True)
    print(
        f"\n{profile.base.hf_id}, recipe {args.profile} [train] (batch {profile.train.batch_size}, "
        f"{args.steps} steps, {args.runs} run(s) each, medians), torch threads "
        f"{os.environ.get('OMP_NUM_THREADS', 'default')}; load average {load[0]:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    head = f"{'LoRA layers':>11} {'path':>5} {'tokens/CPU-s':>13} {'tokens/s':>9} {'peak RSS':>9} {'x plain CPU':>12} {'x plain wall':>13}"
    print(head)

    def med(rs: list[dict], key: str) -> float:
        return statistics.median(r["trained_tokens"] / r[key] for r in rs)

    for top in tops:
        base_cpu, base_wall = (
            med(runs[(top, False)], "train_cpu_seconds"),
            med(runs[(top, False)], "train_seconds"),
        )
        for is_fast in (False, True):
            rs = runs[(top, is_fast)]
            cpu, wall = med(rs, "train_cpu_seconds"), med(rs, "train_seconds")
            rss = statistics.median(r["peak_rss_mb"] for r in rs) / 1024
            print(
                f"{'top ' + str(top) if top else 'all':>11} {'fast' if is_fast else 'plain':>5} {cpu:>13.1f} "
                f"{wall:>9.1f} {rss:>7.2f}GB {cpu / base_cpu:>11.2f}x {wall / base_wall:>12.2f}x"
            )
        plain, quick = runs[(top, False)][0]["losses"], runs[(top, True)][0]["losses"]
        worst = max(abs(a - b) / abs(a) for a, b in zip(plain, quick, strict=True))
        saved = runs[(top, True)][0]["shared_prefix_saved"]
        print(
            f"{'':>11} logged losses plain vs fast over {len(plain)} steps: largest relative difference "
            f"{worst:.1e}; the shared prefix spared {saved:.0%} of the tokens"
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
    ap.add_argument("--steps", type=int, default=4, help="with --train or --fast: steps per run")
    ap.add_argument("--fast", action="store_true", help="plain vs fast path on the recipe as shipped")
    ap.add_argument("--runs", type=int, default=1, help="with --fast: runs of each variant")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _fast_child(json.loads(args.child))
        return

    import transformers

    from fwyy_ollama.dataset.records import load_many
    from fwyy_ollama.finetune.core import resolve_data_files
    from fwyy_ollama.profiles import load_profile

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    profile = load_profile(args.profile)
    if args.fast:
        fast(args, profile)
        return
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

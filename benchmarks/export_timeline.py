"""Where one `fwyy export` spends its wall time: serial parts, worker-thread use, the closing fsync.

    python benchmarks/export_timeline.py MODEL_DIR [--quant q4_k_m] [--workers N] [--cache DIR]
        [--adapter DIR [--make-adapter]]

Runs export_gguf in this process with light instrumentation (the converter's thread pool, the
tokenizer check, fsync are wrapped; nothing in fwyy is changed) and prints seconds since process
start for each step, then: the work span (first slice started to last slice done), the average
number of busy worker threads in it, the seconds per slice by output type and the process's CPU
time and peak RSS. Serial time is what lies outside the work span or leaves workers idle in it.
The tokenizer check is fwyy's transformers child process (a fresh --cache makes it run, as on a
first export). With --adapter the export merges that LoRA into MODEL_DIR, as `fwyy export
--adapter` does after training (--make-adapter first writes a random r16 LoRA on every projection
there, with numpy). Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import threading
import time

T0 = time.perf_counter()


def since_start() -> float:
    """Seconds since this process started (so imports count)."""
    with open("/proc/self/stat") as fh:
        start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    return boot - start_ticks / os.sysconf("SC_CLK_TCK")


AGE = since_start() if os.path.exists("/proc/self/stat") else 0.0


PROJECTIONS = {"self_attn": ("q_proj", "k_proj", "v_proj", "o_proj"), "mlp": ("gate_proj", "up_proj", "down_proj")}


def make_random_lora(model_dir: str, dest: str, r: int = 16) -> None:
    """A PEFT LoRA folder for a llama/qwen2-shaped model: every projection, random A and B."""
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import save_file

    shapes: dict[str, tuple[int, ...]] = {}
    for shard in sorted(os.listdir(model_dir)):
        if shard.endswith(".safetensors"):
            with safe_open(os.path.join(model_dir, shard), "np") as f:
                shapes.update({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
    rng = np.random.default_rng(0)
    tensors = {}
    for name, shape in shapes.items():
        parts = name.split(".")
        if len(parts) == 6 and parts[-3] in PROJECTIONS and parts[-2] in PROJECTIONS[parts[-3]]:
            stem = "base_model.model." + name.removesuffix(".weight")
            tensors[f"{stem}.lora_A.weight"] = rng.normal(0, 0.02, (r, shape[1])).astype(np.float32)
            tensors[f"{stem}.lora_B.weight"] = rng.normal(0, 0.02, (shape[0], r)).astype(np.float32)
    os.makedirs(dest, exist_ok=True)
    save_file(tensors, os.path.join(dest, "adapter_model.safetensors"))
    config = {
        "peft_type": "LORA", "r": r, "lora_alpha": r, "lora_dropout": 0.0, "use_rslora": False,
        "base_model_name_or_path": os.path.abspath(model_dir),
        "target_modules": [m for mods in PROJECTIONS.values() for m in mods],
    }  # fmt: skip
    with open(os.path.join(dest, "adapter_config.json"), "w") as fh:
        json.dump(config, fh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="HF model folder")
    parser.add_argument("--quant", default="q4_k_m")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--cache", help="FWYY_CACHE (default: a fresh one, so the tokenizer check runs)")
    parser.add_argument("--adapter", help="a PEFT LoRA folder to merge into MODEL_DIR while exporting")
    parser.add_argument("--make-adapter", action="store_true", help="write a random LoRA into --adapter first")
    args = parser.parse_args()
    if args.make_adapter:
        make_random_lora(args.model, args.adapter)
    os.environ["FWYY_CACHE"] = args.cache or tempfile.mkdtemp(prefix="fwyy-timeline-cache-")

    marks: list[tuple[float, str]] = []

    def mark(what: str) -> None:
        marks.append((AGE + time.perf_counter() - T0, what))

    mark("python started, timing script running")
    from fwyy_ollama.export import api, convert, vocab

    mark("fwyy_ollama.export imported")
    spans: list[tuple[float, float, str]] = []  # (start, end, output type) per slice
    lock = threading.Lock()

    real_ids = vocab._transformers_ids

    def timed_ids(folder):  # type: ignore[no-untyped-def]
        mark("tokenizer check started")
        try:
            return real_ids(folder)
        finally:
            mark("tokenizer check done")

    vocab._transformers_ids = timed_ids

    class Pool(convert.ThreadPoolExecutor):
        def submit(self, fn, *a):  # type: ignore[no-untyped-def]
            job = a[0] if a and hasattr(a[0], "qtype") else None
            if job is None:
                return super().submit(fn, *a)

            def run():  # type: ignore[no-untyped-def]
                t = time.perf_counter()
                out = fn(*a)
                with lock:
                    spans.append((t, time.perf_counter(), job.qtype.name))
                return out

            return super().submit(run)

    convert.ThreadPoolExecutor = Pool
    real_fsync = os.fsync

    def timed_fsync(fd: int) -> None:
        mark("fsync started")
        real_fsync(fd)
        mark("fsync done")

    os.fsync = timed_fsync
    mark("export_gguf called")
    out = tempfile.mkdtemp(prefix="fwyy-timeline-") + "/out.gguf"
    api.export_gguf(
        model_dir=args.model, adapter_dir=args.adapter, out=out, quant=args.quant, workers=args.workers
    )
    mark("export_gguf returned")
    os.unlink(out)

    if spans:
        first = min(s for s, _, _ in spans)
        last = max(e for _, e, _ in spans)
        marks += [(AGE + first - T0, "first slice started"), (AGE + last - T0, "last slice done")]
    for t, what in sorted(marks):
        print(f"{t:8.2f} s  {what}")
    if spans:
        busy = sum(e - s for s, e, _ in spans)
        print(f"work span {last - first:.2f} s: {len(spans)} slices, {busy:.1f} thread-s, "
              f"{busy / (last - first):.2f} busy worker threads on average")  # fmt: skip
        by_type: dict[str, list[float]] = {}
        for s, e, kind in spans:
            by_type.setdefault(kind, []).append(e - s)
        for kind, times in sorted(by_type.items()):
            print(
                f"  {kind:6} {len(times):5} slices, {sum(times):7.1f} thread-s, {1000 * sum(times) / len(times):6.1f} ms each"
            )
    ru = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"CPU: export process {ru.ru_utime + ru.ru_stime:.1f} s, tokenizer-check child {kids.ru_utime + kids.ru_stime:.1f} s; "
          f"peak RSS {ru.ru_maxrss / 1024:.0f} MiB; {os.cpu_count()} CPUs")  # fmt: skip


if __name__ == "__main__":
    main()

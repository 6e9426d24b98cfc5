#!/usr/bin/env bash
# Issue 16, several GPUs: `fwyy train --backend hf` on one GPU and under `accelerate launch` (DDP)
# on NGPUS GPUs of one host: the same random Qwen2-1.5B, data and global batch (one GPU accumulates
# NGPUS micro-batches of 8; under DDP each GPU takes one), STEPS steps (60 by default, so steady
# state is most of the run). Then, side by side: both loss curves, steady-state tokens/s (fwyy's
# own counter, the first quarter of the steps left out) and their ratio, and the DDP adapter loaded
# with PEFT onto the base (one forward pass) and exported to a q8_0 GGUF by `fwyy export`.
# The one-GPU arm runs before and after the DDP one (see one_gpu below); the later run is compared.
#
#   carry .whl and .carry4 (Qwen2's tokenizer):  NGPUS=2 bash benchmarks/device/ddp.sh
#
# NGPUS defaults to every GPU the machine has; with 1 the script runs its whole path on one GPU
# (accelerate with one process), a check that it works before a machine of several GPUs is lent.
set -uo pipefail
OUT=${OUT:-benchmarks/device/out}; mkdir -p "$OUT"
NGPUS=${NGPUS:-$(nvidia-smi -L | wc -l)}
STEPS=${STEPS:-60}
WORK=/tmp/fwyy-bench; MODEL=$WORK/qwen2-1.5b-random; P=benchmarks/device/qwen2-1.5b-random-ddp.toml
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export FWYY_BENCH_TOKENIZER=${FWYY_BENCH_TOKENIZER:-$PWD/.carry4/qwen2-tokenizer} FWYY_CACHE=$WORK/cache
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl > "$OUT/pip.log" 2>&1 || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p $WORK; nvidia-smi -L | tee "$OUT/ddp-env.log"
[ -f $MODEL/config.json ] || python3 benchmarks/train_throughput.py --make-model $MODEL --device cuda 2>&1 | tail -1
# the one-GPU arm accumulates NGPUS micro-batches: the same optimizer step as NGPUS GPUs take
sed "s/^grad_accum = 1$/grad_accum = $NGPUS/" $P > $WORK/one.toml
grep -q "^grad_accum = $NGPUS$" $WORK/one.toml || { echo "could not set grad_accum in $WORK/one.toml"; exit 1; }
rm -rf $WORK/one $WORK/first $WORK/multi
# The first training on a fresh machine ran at 4,421 tokens/s, the same run once the machine was
# warm at 5,449-6,143 (run 10, a one-GPU check of this script: caches filling, Triton's among
# them), so the one-GPU arm runs twice, first and last, and the compare uses the last; both print.
one_gpu() {
  CUDA_VISIBLE_DEVICES=0 python3 -m fwyy_ollama train -p $WORK/one.toml --backend hf --max-steps $STEPS \
    --out $WORK/$1 --json > "$OUT/ddp-$1.json" 2> "$OUT/ddp-$1.err"; echo "one GPU ($1): exit $?" | tee -a "$OUT/ddp-env.log"
}
one_gpu first
MULTI=(--num_processes "$NGPUS"); [ "$NGPUS" -gt 1 ] && MULTI+=(--multi_gpu)
accelerate launch "${MULTI[@]}" --num_machines 1 --mixed_precision no --dynamo_backend no \
  -m fwyy_ollama train -p $P --backend hf --max-steps $STEPS \
  --out $WORK/multi --json > "$OUT/ddp-multi.json" 2> "$OUT/ddp-multi.err"
echo "$NGPUS GPUs (DDP): exit $?" | tee -a "$OUT/ddp-env.log"
one_gpu one
python3 -m fwyy_ollama export --adapter $WORK/multi --quant q8_0 -o $WORK/multi.q8_0.gguf --json \
  > "$OUT/ddp-export.json" 2> "$OUT/ddp-export.err"; echo "export of the DDP adapter: exit $?" | tee -a "$OUT/ddp-env.log"
python3 - "$WORK/first" "$WORK/one" "$WORK/multi" "$MODEL" "$WORK/multi.q8_0.gguf" <<'PY' 2>&1 | grep -v -i warning | tee "$OUT/ddp-compare.log"
import json, sys
first_dir, one_dir, multi_dir, base, gguf_path = sys.argv[1:]
dirs = {"first": first_dir, "one": one_dir, "multi": multi_dir}
runs = {name: json.load(open(f"{d}/fwyy-adapter.json")) for name, d in dirs.items()}
for name, m in runs.items():
    print(name, {k: m.get(k) for k in ("world_size", "steps", "first_loss", "final_loss", "train_seconds", "trained_tokens")},
          "steady tokens/s", round(m["backend_settings"].get("steady_tokens_per_second") or 0))
curves = {name: dict(m["losses"]) for name, m in runs.items()}
steps = sorted(set(curves["one"]) & set(curves["multi"]))
diffs = [abs(curves["one"][s] - curves["multi"][s]) for s in steps]
print("step  loss one GPU  loss DDP")
for s in steps[:: max(1, len(steps) // 12)] + steps[-1:]:
    print(f"{s:4d}  {curves['one'][s]:12.4f}  {curves['multi'][s]:8.4f}")
print(f"loss curves: {len(steps)} steps, largest difference {max(diffs):.4f}, mean over the last half "
      f"{sum(diffs[len(diffs) // 2:]) / max(1, len(diffs) - len(diffs) // 2):.4f}")
one = runs["one"]["backend_settings"]["steady_tokens_per_second"]
multi = runs["multi"]["backend_settings"]["steady_tokens_per_second"]
first = runs["first"]["backend_settings"]["steady_tokens_per_second"]
print(f"steady tokens/s: one GPU {one:,.0f} (its first run {first:,.0f}), {runs['multi']['world_size']} GPUs {multi:,.0f} = {multi / one:.2f}x")
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16).cuda(), multi_dir)
ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]], device="cuda")
with torch.no_grad():
    loss = model(input_ids=ids, labels=ids).loss.item()
print(f"DDP adapter loads with PEFT onto the base: forward loss {loss:.3f} (finite: {loss == loss and abs(loss) != float('inf')})")
import gguf
reader = gguf.GGUFReader(gguf_path)
print(f"its q8_0 GGUF: {len(reader.tensors)} tensors, {sum(int(t.n_bytes) for t in reader.tensors) / 2**30:.2f} GiB")
PY

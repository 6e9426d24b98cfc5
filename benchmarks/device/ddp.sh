#!/usr/bin/env bash
# Issue 10 on a 2-GPU device machine: `fwyy train --backend hf` on one GPU, then under
# accelerate launch (DDP) on two, same model and data; adapters compared, throughput from each
# run's fwyy-adapter.json. Needs .whl/ and .carry/ as run.sh does.
set -uo pipefail
OUT=${OUT:-benchmarks/device/out}; mkdir -p "$OUT"
STEPS=${STEPS:-12}
WORK=/tmp/fwyy-bench; MODEL=$WORK/qwen2-1.5b-random; P=benchmarks/device/qwen2-1.5b-random-ddp.toml
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl > "$OUT/pip.log" 2>&1 || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p $WORK; nvidia-smi -L | tee "$OUT/ddp-env.log"
[ -f $MODEL/config.json ] || python3 benchmarks/train_throughput.py --make-model $MODEL --device cuda 2>&1 | tail -2
CUDA_VISIBLE_DEVICES=0 python3 -m fwyy_ollama train -p $P --backend hf --max-steps $STEPS --out $WORK/one --json \
  > "$OUT/ddp-one.json" 2> "$OUT/ddp-one.err"; echo "one-gpu exit $?" | tee -a "$OUT/ddp-env.log"
accelerate launch --multi_gpu --num_processes 2 -m fwyy_ollama train -p $P --backend hf --max-steps $STEPS \
  --out $WORK/two --json > "$OUT/ddp-two.json" 2> "$OUT/ddp-two.err"; echo "two-gpu exit $?" | tee -a "$OUT/ddp-env.log"
python3 - "$WORK/one" "$WORK/two" <<'PY' 2>&1 | tee "$OUT/ddp-compare.log"
import json, sys
from safetensors import safe_open
shapes = []
for d in sys.argv[1:]:
    with safe_open(f"{d}/adapter_model.safetensors", "pt") as f:
        shapes.append({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
    m = json.load(open(f"{d}/fwyy-adapter.json"))
    keys = ("steps", "first_loss", "final_loss", "world_size", "train_seconds", "trained_tokens", "tokens_per_second")
    print(d, {k: m.get(k) for k in keys})
print("same tensors and shapes:", shapes[0] == shapes[1], len(shapes[0]))
from peft import PeftModel  # the two-GPU adapter loads like the one-GPU one
PY

#!/usr/bin/env bash
# 7B QLoRA on one GPU, side by side: plain HF + PEFT + bitsandbytes, a bare Unsloth script, and
# fwyy train's unsloth and hf backends (issue 16). Run from the repository root on the device
# machine; arms go in several calls made back to back while the machine is warm (each call may
# run 10 minutes at most), and --keep gathers them into one table:
#   call 1 (carry .whl and .carry4): ARMS=unsloth-bare,unsloth-4bit bash benchmarks/device/qlora7b.sh
#   call 2:                          ARMS=baseline-qlora,hf-4bit  bash benchmarks/device/qlora7b.sh
# BATCH and ACCUM set the micro-batch and the micro-batches per step (default 8 x 1, the profile's;
# BATCH=2 ACCUM=4 is the recipe before run 8).
# The model: Qwen2-7B's shapes (untied 152,064-row embedding), random bf16 weights, quantized to
# NF4 while loading; the tokenizer is Qwen2's (from the Qwen2.5-Coder GGUF the tests use). The
# recipe: fwyy-qwen2's (batch 8, no accumulation, lr 2e-4, 8-bit AdamW, LoRA r16 on 7 projections).
set -uo pipefail
OUT=${OUT:-benchmarks/device/out}; mkdir -p "$OUT"
ARMS=${ARMS:-unsloth-bare,unsloth-4bit,baseline-qlora,hf-4bit}
STEPS=${STEPS:-20}
BATCH=${BATCH:-8}
ACCUM=${ACCUM:-1}
WARMUP=${WARMUP:-4}
WORK=/tmp/fwyy-bench
MODEL=$WORK/qwen2-7b-random
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export UNSLOTH_DISABLE_STATISTICS=1 FWYY_BENCH_TOKENIZER=${FWYY_BENCH_TOKENIZER:-$PWD/.carry4/qwen2-tokenizer}
if [ ! -d /tmp/site/unsloth ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    > "$OUT/pip.log" 2>&1 || { tail -20 "$OUT/pip.log"; exit 1; }
fi
export PYTHONPATH=/tmp/site:$PWD
mkdir -p $WORK
if [ ! -f $MODEL/config.json ]; then
  [ -f "$FWYY_BENCH_TOKENIZER/tokenizer.json" ] || { echo "carry .carry4 (qwen2-tokenizer/) on the first call"; exit 1; }
  cp -r "$FWYY_BENCH_TOKENIZER" $WORK/qwen2-tokenizer
  /usr/bin/time -f 'random 7B built and saved: %e s' python3 benchmarks/train_throughput.py \
    --make-model $MODEL --shape qwen2-7b --vocab shape --device cuda 2>&1 | tail -3
  cat $WORK/qwen2-7b-random.json; echo
fi
export FWYY_BENCH_TOKENIZER=$WORK/qwen2-tokenizer
echo "micro-batch $BATCH x $ACCUM accumulation, $STEPS steps ($WARMUP warm-up)" | tee -a "$OUT/env.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/env.log"
COLUMNS=200 python3 benchmarks/train_throughput.py --model-dir $MODEL --data train/data/security.train.jsonl \
  --arms "$ARMS" --steps $STEPS --warmup-steps $WARMUP --batch-size $BATCH --grad-accum $ACCUM --optimizer adamw_8bit \
  --profile-steps 2 --baseline baseline-qlora --keep --work $WORK/bench --out $WORK/qlora7b-${BATCH}x${ACCUM}.json \
  2> "$OUT/bench-stderr.log" | tee "$OUT/qlora7b-${BATCH}x${ACCUM}.log"
grep -E '^    [a-z0-9+-]+: \{' "$OUT/bench-stderr.log"
cp $WORK/qlora7b-${BATCH}x${ACCUM}.json "$OUT/"

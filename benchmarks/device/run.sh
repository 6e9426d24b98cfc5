#!/usr/bin/env bash
# The GPU proof, run on the lent device machine from the repository root (no network there):
#   bash benchmarks/device/run.sh            # PHASES="env model train bench" by default
# Needs the carried wheels in .whl/ (benchmarks/device/slim_wheels.py keeps them under 64 MiB) and
# SmolLM2's tokenizer in .carry/smollm2-tokenizer. Logs and JSON go to $OUT (or benchmarks/device/out).
set -uo pipefail
OUT=${OUT:-benchmarks/device/out}
mkdir -p "$OUT"
PHASES=${PHASES:-env model train bench}
ARMS=${ARMS:-unsloth,hf,baseline}
STEPS=${STEPS:-40}
BATCH=${BATCH:-8}
TRAIN_STEPS=${TRAIN_STEPS:-30}
WORK=/tmp/fwyy-bench
MODEL=$WORK/qwen2-1.5b-random
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export UNSLOTH_DISABLE_STATISTICS=1

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  > "$OUT/pip.log" 2>&1 || { cat "$OUT/pip.log"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
mkdir -p $WORK

DATA=train/data/security.train.jsonl
if [ ! -s $DATA ]; then
  DATA=$WORK/stand-in.train.jsonl
  python3 benchmarks/train_throughput.py --write-stand-in $DATA --stand-in-records 512
fi
echo "data: $DATA ($(wc -l < $DATA) records)"

for phase in $PHASES; do
  case $phase in
  env)
    {
      nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
      python3 -c 'import torch,sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))'
      python3 -m pip list 2>/dev/null | grep -iE '^(unsloth|unsloth.zoo|bitsandbytes|trl|datasets|peft|accelerate|transformers|torch|triton|xformers|torchao|fsspec|pyarrow|huggingface.hub|cut.cross.entropy) '
    } 2>&1 | tee "$OUT/env.log"
    ;;
  model)
    [ -f $MODEL/config.json ] || python3 benchmarks/train_throughput.py --make-model $MODEL --device cuda 2>&1 | tail -3
    cat $WORK/qwen2-1.5b-random.json; echo
    ;;
  train)
    # The shipped recipe (4-bit QLoRA, 8-bit AdamW) on the random Qwen2-1.5B, through the real CLI.
    COLUMNS=120 /usr/bin/time -f 'fwyy train wall: %e s' python3 -m fwyy_ollama train \
      --profile benchmarks/device/qwen2-1.5b-random.toml --backend unsloth --data $DATA \
      --max-steps $TRAIN_STEPS --out $WORK/adapter-unsloth 2>&1 | tee "$OUT/fwyy-train-unsloth.log"
    echo "exit: ${PIPESTATUS[0]}" | tee -a "$OUT/fwyy-train-unsloth.log"
    cp $WORK/adapter-unsloth/fwyy-adapter.json "$OUT/fwyy-adapter.json" 2>/dev/null
    ls -la $WORK/adapter-unsloth 2>&1 | tee -a "$OUT/fwyy-train-unsloth.log"
    ;;
  bench)
    COLUMNS=200 python3 benchmarks/train_throughput.py --model-dir $MODEL --data $DATA --arms "$ARMS" \
      --steps $STEPS --batch-size $BATCH --work $WORK/bench --out "$OUT/train_throughput.json" \
      2> "$OUT/bench-stderr.log" | tee "$OUT/train_throughput.log"
    grep -E '^    [a-z-]+: \{' "$OUT/bench-stderr.log"
    ;;
  esac
done

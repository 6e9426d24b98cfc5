#!/usr/bin/env bash
# benchmarks/export.py on the device machine's CPUs, to see how fwyy's parallel K-quant export and
# llama.cpp's converter + quantizer scale past this project's 2 cores (issue 16). One call:
#   carry .whl (gguf and friends) and .carry3, which holds site/ (the llama_cpp package with its
#   libggml, and diskcache, from this machine's venv), smollm2-tokenizer/ (the demo base's tokenizer
#   files, for the random 1.1B model) and llama.cpp/ (convert_hf_to_gguf.py, conversion/ and gguf-py/
#   from the llama.cpp that llama-cpp-python 0.3.36's sdist vendors):
#   REPEAT=3 bash benchmarks/device/export.sh
set -uo pipefail
OUT=${OUT:-benchmarks/device/out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  > "$OUT/pip.log" 2>&1 || { tail -20 "$OUT/pip.log"; exit 1; }
cp -r .carry3/site/. /tmp/site/
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
lscpu | grep -E '^Model name|^CPU\(s\)' | tee "$OUT/export-env.log"
FWYY_BENCH_LLAMA_CPP=$PWD/.carry3/llama.cpp python3 benchmarks/export.py --models 1b --quants q4_k_m \
  --tokenizer .carry3/smollm2-tokenizer --repeat "${REPEAT:-3}" 2> "$OUT/export-stderr.log" | tee "$OUT/export.log"

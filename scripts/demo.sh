#!/usr/bin/env bash
# README command 1: set up, build, and run the main job on the embedded default model
# (models/demo_mixtral): describe it, quantize it with GPTQ INT4, and compare the original and the
# quantized model on held-out in-domain perplexity, size and speed. Needs nothing outside the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
export OMP_WAIT_POLICY=PASSIVE
model=models/demo_mixtral
out=out/demo_mixtral-gptq-int4
build/moeq info "$model"
build/moeq quantize "$model" --recipe recipes/gptq-int4.toml --calib data/calib/demo_calib.txt \
  --calib-samples 64 --calib-seqlen 512 --out "$out"
for m in "$model" "$out"; do
  echo "== $m ($(du -sh --apparent-size "$m"/*.safetensors | awk '{print $1}' | paste -sd+))"
  build/moeq eval "$m" --ppl "$model/indomain_valid.txt"
done
build/moeq generate "$out" --prompt "The ship sailed" -n 32

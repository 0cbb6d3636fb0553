#!/usr/bin/env bash
# GPU benchmark for an NVIDIA H200 (Hopper, sm_90) host: the Bamba announcement's experiment
# (1K tokens in, 2K–16K out, batch 1–32), bamba-9b-shape vs a Llama-3.1-8B-shaped transformer.
# Never run in CI. Needs Node.js 20, the CUDA toolkit (nvcc) and cmake on the host.
#
#   bench/gpu/run.sh --dry-run      # CPU, tiny shapes: proves the script before GPU time is spent
#   bench/gpu/run.sh                # the real run (writes bench/results/gpu-<date>.json/.md)
#   BATCHES=1,8,32 OUTPUTS=2048 bench/gpu/run.sh   # a subset, for a short lease
set -euo pipefail
cd "$(dirname "$0")/../.."
node scripts/ensure-deps.mjs
npx tsc --build
dry=""
if [ "${1:-}" = "--dry-run" ]; then dry="--dry-run"; fi
if [ -z "$dry" ]; then
  # The prebuilt CUDA binary of node-llama-cpp 3.21.1 has no sm_90 machine code (only PTX):
  # build the bundled llama.cpp source for Hopper. Offline; several minutes on 16 cores.
  NODE_LLAMA_CPP_CMAKE_OPTION_CMAKE_CUDA_ARCHITECTURES=90 npx --no node-llama-cpp source build --gpu cuda --noUsageExample
fi
mkdir -p bench/results
out="bench/results/gpu-$(date +%F)${dry:+-dry-run}.json"
node bench/dist/gpu-throughput.js $dry ${BATCHES:+--batches "$BATCHES"} ${OUTPUTS:+--outputs "$OUTPUTS"} --out "$out"
echo "wrote $out and ${out%.json}.md"

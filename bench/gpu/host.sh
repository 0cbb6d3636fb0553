#!/usr/bin/env bash
# The whole GPU run (#14) as one command on the GPU host, from the repository root, with .gpu/
# (made here by `node bench/gpu/pack.mjs`) carried along. The host has no Node.js, no redis-server
# and no network: everything comes out of .gpu/. Steps, most valuable first, each logged with its
# duration; a step that fails is logged and the next one runs; steps that would pass DEADLINE_S
# (default 570 s after the start) are skipped and logged as such. Results go to $OUT (the device
# tool brings that folder back) or bench/results/gpu-<date>/.
#
#   bench/gpu/host.sh             # on the H200: CUDA build for arch 90, bamba-9b-shape vs llama-3.1-8b-shape
#   bench/gpu/host.sh --dry-run   # on a CPU machine: the same steps with a CPU build and tiny shapes
set -uo pipefail
cd "$(dirname "$0")/../.."
dry=""
[ "${1:-}" = "--dry-run" ] && dry="--dry-run"
results="${OUT:-bench/results/gpu-$(date +%F)${dry:+-dry-run}}"
work="${BAMBA_GPU_WORK:-/tmp/bamba-gpu}"
deadline="${DEADLINE_S:-570}"
mkdir -p "$results" "$work"
results="$(cd "$results" && pwd)"
log() { echo "[$(date +%T) +${SECONDS}s] $*" | tee -a "$results/host.log"; }
# step NAME SECONDS_NEEDED COMMAND...: runs unless fewer than SECONDS_NEEDED remain; the step's
# output is appended to host.log (the device tool brings back at most 8 files).
step() {
  local name="$1" needs="$2"; shift 2
  local left=$((deadline - SECONDS))
  if [ "$left" -lt "$needs" ]; then log "SKIPPED $name: ${left}s left, it needs about ${needs}s"; return 1; fi
  log "step $name (up to ${left}s)"
  local started=$SECONDS
  # Its own process group: whatever the step leaves running (the gpu-nodes of a stack cut short
  # hold GPU memory the next step would count as taken) is killed with it. Redis runs detached.
  setsid timeout --signal=TERM --kill-after=10 "$left" "$@" >"$work/$name.log" 2>&1 &
  local pid=$!
  wait "$pid"
  local code=$?
  kill -KILL -- "-$pid" 2>/dev/null
  pkill -KILL -f "$work/redis/redis-server.bin" 2>/dev/null
  grep -v '^llama_kv_cache: the V embeddings\|padding V cache' "$work/$name.log" | tail -n 60 >>"$results/host.log"
  if [ "$code" -eq 0 ]; then log "ok $name in $((SECONDS - started))s"; else log "FAILED $name (exit $code) after $((SECONDS - started))s"; fi
  return "$code"
}

log "unpacking .gpu/ into $work"
for archive in node redis; do tar -xJf ".gpu/$archive.tar.xz" -C "$work" || { log "cannot unpack .gpu/$archive.tar.xz"; exit 1; }; done
export PATH="$work/node/bin:$work/redis:$PATH"
# nvcc and nvidia-smi where CUDA images keep them, when they are not on PATH already.
for dir in /usr/local/cuda/bin /usr/local/nvidia/bin; do [ -d "$dir" ] && export PATH="$PATH:$dir"; done
tar -xJf .gpu/app.tar.xz || { log "cannot unpack .gpu/app.tar.xz"; exit 1; }
llama_src=node_modules/node-llama-cpp/llama/llama.cpp
rm -rf "$llama_src" && mkdir -p "$llama_src/.git" && tar -xJf .gpu/llama-src.tar.xz -C "$llama_src"
# State files of 500 MB and more: /dev/shm when it has room, else the disk.
if [ "$(df --output=avail -k /dev/shm 2>/dev/null | tail -1 || echo 0)" -lt $((8 * 1024 * 1024)) ]; then export BAMBA_STATE_DIR="$work/state"; mkdir -p "$BAMBA_STATE_DIR"; fi
{
  echo "node $(node -v), npm $(npm -v), $(redis-server --version | cut -d' ' -f1-3), $(cmake --version | head -1)"
  if [ -z "$dry" ]; then nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv,noheader; nvcc --version | tail -2; fi
  python3 -c 'import sys; print("python", sys.version.split()[0])'
  nproc; free -g | head -2; df -h "$work" /dev/shm | tail -2
} >>"$results/host.log" 2>&1

models="$work/models"
mkdir -p "$models"
# A path (or the generator version) models.js wrote to $work/models/paths.json.
model_path() { node -p "require('$work/models/paths.json').$1"; }
# A rerun on a warm machine finds its build from the first run (ignored paths stay): no rebuild.
built_already() {
  node bench/dist/gpu/binding.js "$1" >/dev/null 2>&1 && log "build: our $1 binding from an earlier run is here; not rebuilt"
}
# node-llama-cpp names a local build after its custom cmake options, read from these variables
# both when it builds and when a process loads the binary: they stay exported for every step.
if [ -n "$dry" ]; then
  # The CPU build: the same offline path, no CUDA; an option that changes nothing (ccache is off by
  # default) so that loading goes through the same named-build lookup as on the GPU.
  export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_CCACHE=OFF
  built_already cpu || step build 60 node node_modules/node-llama-cpp/dist/cli/cli.js source build --gpu false --noUsageExample || exit 1
  step models 20 node bench/dist/gpu/models.js "$work" --dry-run || exit 1
  hybrid="$(model_path tiny)"; transformer="$(model_path llamaTiny)"
  # The stack serves a 128K vocabulary as on the GPU (bench/src/gpu/models.ts says why).
  served="$(model_path wideVocab)"
else
  # node-llama-cpp 3.21.1's prebuilt CUDA binary has no sm_90 code: build its llama.cpp for Hopper.
  # Flash attention kernels off: they double the build, and every measurement here runs without them.
  export NODE_LLAMA_CPP_CMAKE_OPTION_CMAKE_CUDA_ARCHITECTURES=90 NODE_LLAMA_CPP_CMAKE_OPTION_GGML_CUDA_FA=OFF
  built_already cuda || step build 200 node node_modules/node-llama-cpp/dist/cli/cli.js source build --gpu cuda --noUsageExample || exit 1
  step models 20 node bench/dist/gpu/models.js "$work" || exit 1
  # Named with the generator's version: weights an older generator wrote are not reused.
  gen="$(model_path generator)"
  step weights 60 bash -c "for m in bamba-9b-shape llama-3.1-8b-shape; do [ -f '$models'/\$m-g$gen.gguf ] || python3 bench/gpu/fill-weights.py .gpu/models/\$m.preamble .gpu/models/\$m.json '$models'/\$m-g$gen.gguf || exit 1; done" || exit 1
  hybrid="$models/bamba-9b-shape-g$gen.gguf"; transformer="$models/llama-3.1-8b-shape-g$gen.gguf"
  served="$hybrid"
fi
tiny="$(model_path tiny)"
# Proof that what serves below is the binding built above (no prebuilt binary travels).
step binding 10 node bench/dist/gpu/binding.js "$([ -n "$dry" ] && echo cpu || echo cuda)" || exit 1

step reference 60 bash bench/gpu/reference/run.sh "$tiny" "$results" $dry
step stack 150 node bench/dist/gpu/stack.js $dry --hybrid "$served" --out "$results/stack.json"
step capacity 150 node bench/dist/gpu/capacity.js $dry --validate --hybrid "$hybrid" --transformer "$transformer" --out "$results/capacity.json"
throughput_args=(--batches 32 --outputs 4096)
[ -n "$dry" ] && throughput_args=(--dry-run)
step throughput 200 node bench/dist/gpu/throughput.js "${throughput_args[@]}" --hybrid "$hybrid" --transformer "$transformer" --out "$work/throughput.json" \
  && cp "$work/throughput.md" "$results/throughput.md"
log "done in ${SECONDS}s; results in $results"

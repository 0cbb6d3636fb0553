#!/usr/bin/env bash
# The reference check (#14 item 3) on the GPU host: llama.cpp dumps through node-llama-cpp on CUDA
# (bench/dist/reference-dump.js) for the tiny model, a copy of it with random norm weights and D,
# and the small model (F16); then check.py against transformers' BambaForCausalLM and the numpy
# reference for each. See README.md beside this file.
#
#   bench/gpu/reference/run.sh [TINY_GGUF] [RESULTS_DIR] [--dry-run]
#
# bench/gpu/host.sh runs it as its `reference` step (Node.js from .gpu/, node-llama-cpp already
# built for CUDA, dist/ already there). Standalone on a machine with Node.js: `npm run build` first.
# --dry-run: CPU dumps and the numpy reference only (no torch needed); proves the script here.
# Writes two files into RESULTS_DIR (default bench/results/reference-<date>[-dry-run]):
# reference.json and reference.md, rewritten after each model so a run cut short keeps what it
# finished. Exit 0 only if every model passes.
# Env: REFERENCE_MODELS (default "tiny tiny-perturbed small", most valuable first),
# REFERENCE_TORCH_DEVICE (default cpu: the reference in float32 on the CPU).
set -uo pipefail
cd "$(dirname "$0")/../../.."
dry=""
positional=()
for argument in "$@"; do
  if [ "$argument" = "--dry-run" ]; then dry="--dry-run"; else positional+=("$argument"); fi
done
tiny="${positional[0]:-}"
results="${positional[1]:-bench/results/reference-$(date +%F)${dry:+-dry-run}}"
device=cuda
check_mode=--torch
if [ -n "$dry" ]; then device=cpu; check_mode=--dry-run; fi
work=.cache/reference
mkdir -p "$work" "$results"

# dump NAME MODEL_ARGS...: F32 K/V (the model's math) and F16 K/V (what the gpu-node serves with).
dump() {
  local name=$1; shift
  node bench/dist/reference-dump.js "$@" --device "$device" --kv-cache f32 --out "$work/$name-$device-f32.json" &&
    node bench/dist/reference-dump.js "$@" --device "$device" --kv-cache f16 --out "$work/$name-$device-f16.json"
}
model_path() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["path"])' "$1"; }

# Combine the per-model results into the two files that come back.
collect() {
  python3 - "$results" "$@" <<'EOF'
import json, os, sys
results, names = sys.argv[1], sys.argv[2:]
checks, parts = [], []
for name in names:
    base = os.path.join(".cache/reference", f"check-{name}")
    if os.path.exists(base + ".json"):
        checks.append({"model": name, **json.load(open(base + ".json"))})
        parts.append(open(base + ".md").read())
    else:
        checks.append({"model": name, "pass": False, "verdict": "no result (dump or check failed; see the log)"})
        parts.append(f"# Reference check: {name}\n\nno result (dump or check failed; see the log)\n")
json.dump({"format": "bamba-reference-run/1", "pass": all(check["pass"] for check in checks), "checks": checks}, open(os.path.join(results, "reference.json"), "w"), indent=1)
open(os.path.join(results, "reference.md"), "w").write("\n".join(parts))
EOF
}

status=0
done_models=()
for name in ${REFERENCE_MODELS:-tiny tiny-perturbed small}; do
  rm -f "$work/check-$name.json" "$work/check-$name.md"
  case "$name" in
    tiny) if [ -n "$tiny" ]; then dump tiny --model "$tiny"; else dump tiny --preset tiny; fi ;;
    tiny-perturbed)
      source_gguf="$(model_path "$work/tiny-$device-f32.json")" &&
        python3 -B bench/gpu/reference/perturb_gguf.py "$source_gguf" "$work/tiny-perturbed.gguf" &&
        dump tiny-perturbed --model "$work/tiny-perturbed.gguf" ;;
    *) dump "$name" --preset "$name" ;;
  esac
  if [ $? -eq 0 ]; then
    gguf="$(model_path "$work/$name-$device-f32.json")"
    python3 -B bench/gpu/reference/check.py $check_mode --torch-device "${REFERENCE_TORCH_DEVICE:-cpu}" --gguf "$gguf" \
      --dump "$work/$name-$device-f32.json" --dump "$work/$name-$device-f16.json" --out "$work/check-$name.json"
    code=$?
  else
    code=1
  fi
  [ "$code" -eq 0 ] && echo "reference check $name: PASS" || { echo "reference check $name: FAIL (exit $code)"; status=1; }
  done_models+=("$name")
  collect "${done_models[@]}"
done
echo "reference check: results in $results/reference.md"
exit $status

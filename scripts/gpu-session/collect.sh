#!/usr/bin/env bash
# Run HERE after the device call, on the folder its files came back to (the reply's files_at):
#   scripts/gpu-session/collect.sh FILES_AT [--perf docs/performance.md] [--state runs/zoo]
# Appends the benchmark rows (bench.jsonl) to --perf as a dated section naming the GPU, and unpacks the
# returned zoo checkpoints into the zoo's state folder, with a runs.json record each (steps, seconds,
# hardware), so that `npm run zoo` (same --images budget as prepare.sh was given) resumes from them.
# A returned checkpoint only replaces one that has fewer steps.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
IN="${1:?usage: collect.sh FILES_AT [--perf FILE] [--state DIR]}"; shift
PERF="$ROOT/docs/performance.md"
STATE="$ROOT/runs/zoo"
while [ $# -gt 0 ]; do
  case "$1" in
    --perf) PERF="${2:?}"; shift 2 ;;
    --state) STATE="${2:?}"; shift 2 ;;
    *) echo "collect: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -f "$IN/summary.json" ] || { echo "collect: no summary.json in $IN (did run.sh finish? see run.log)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if ls "$IN"/zoo.tar.gz.part-* >/dev/null 2>&1; then cat "$IN"/zoo.tar.gz.part-* > "$TMP/zoo.tar.gz"
elif [ -f "$IN/zoo.tar.gz" ]; then cp "$IN/zoo.tar.gz" "$TMP/"; fi
[ -f "$TMP/zoo.tar.gz" ] && tar xzf "$TMP/zoo.tar.gz" -C "$TMP"
node --input-type=module - "$IN" "$PERF" "$STATE" "$TMP/zoo" "$ROOT" <<'JS'
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
const [IN, PERF, STATE, ZOO, ROOT] = process.argv.slice(2);
const { checkpointConfig } = await import(pathToFileURL(join(ROOT, 'scripts/zoo-lib.mjs')).href);
const summary = JSON.parse(readFileSync(join(IN, 'summary.json'), 'utf8'));
const say = (m) => process.stderr.write(`collect: ${m}\n`);

// Benchmark rows: the table format of scripts/record-bench.mjs, under a heading naming the GPU.
const rows = existsSync(join(IN, 'bench.jsonl')) ? readFileSync(join(IN, 'bench.jsonl'), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)) : [];
if (rows.length) {
  const adapter = rows.find((r) => r.adapter)?.adapter ?? '?';
  const fmt = (v) => (typeof v === 'number' ? String(v) : v === undefined ? '' : JSON.stringify(v));
  const out = ['', `## ${summary.date.replace('T', ' ').replace('Z', '')} UTC, commit ${summary.commit}, ${summary.hardware.replace(' (CUDA)', '')}: Dawn/Vulkan adapter ${adapter} (${summary.vulkan_icd}), GPU session`, '',
    `Recorded by scripts/gpu-session (run.sh there, collect.sh here), Node ${summary.node}; the PyTorch twin's images/s on the same GPU are in the zoo's runs.json.`, '',
    '| case | figures |', '| --- | --- |'];
  for (const r of rows) {
    const figures = Object.entries(r).filter(([k]) => !['adapter', 'driver', 'case'].includes(k)).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
    out.push(`| ${r.case ?? '?'} | ${figures.replace(/\|/g, '/')} |`);
  }
  appendFileSync(PERF, out.join('\n') + '\n');
  say(`appended ${rows.length} benchmark rows to ${PERF}`);
} else say('no benchmark rows came back (see run.log)');

// Zoo checkpoints.
if (!existsSync(ZOO)) { say('no zoo.tar.gz came back'); process.exit(0); }
for (const id of readdirSync(ZOO)) {
  const d = join(ZOO, id);
  const ck = join(d, 'last.safetensors');
  if (!existsSync(ck)) { say(`${id}: no checkpoint (exit ${readFileSync(join(d, 'exit'), 'utf8').trim()}); log tail:\n${readFileSync(join(d, 'log'), 'utf8').split(/[\r\n]/).filter(Boolean).slice(-3).join('\n')}`); continue; }
  const step = checkpointConfig(readFileSync(ck), ck).step;
  const dir = join(STATE, id);
  mkdirSync(dir, { recursive: true });
  const last = join(dir, 'last.safetensors');
  const before = existsSync(last) ? checkpointConfig(readFileSync(last), last).step : 0;
  if (step <= before) { say(`${id}: returned step ${step} is not past the ${before} here; kept this one`); continue; }
  const runsFile = join(dir, 'runs.json');
  const runs = existsSync(runsFile) ? JSON.parse(readFileSync(runsFile, 'utf8')) : [];
  const n = runs.length + 1;
  let twin = {};
  try { twin = JSON.parse(readFileSync(join(d, 'summary.json'), 'utf8').trim().split('\n').filter((l) => l.startsWith('{')).pop()); } catch { /* killed before its summary */ }
  runs.push({ run: n, command: readFileSync(join(d, 'command'), 'utf8').trim(), fromStep: before, toStep: step, seconds: twin.seconds ?? null,
    hardware: `${readFileSync(join(d, 'hardware'), 'utf8').trim()} x1`, started: readFileSync(join(d, 'started'), 'utf8').trim(), imagesPerS: twin.images_per_s ?? null, gpuSession: true });
  copyFileSync(ck, last);
  if (existsSync(join(d, 'log'))) copyFileSync(join(d, 'log'), join(dir, `run-${n}.log`));
  if (existsSync(join(d, 'log.jsonl'))) copyFileSync(join(d, 'log.jsonl'), join(dir, `run-${n}.log.jsonl`));
  writeFileSync(`${runsFile}`, `${JSON.stringify(runs, null, 2)}\n`);
  say(`${id}: step ${before} -> ${step} (${twin.images_per_s ?? '?'} images/s on ${runs[n - 1].hardware}) into ${dir}`);
}
JS

#!/usr/bin/env node
// Appends benchmark JSON lines (from `npm run bench`, `npm run bench:browser`, or a file) to
// docs/performance.md as a dated section naming the adapter and the commit, so earlier rows stay
// and progress is visible:   npm run bench -- --quick | node scripts/record-bench.mjs "note"
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

const note = process.argv.slice(2).join(' ');
const lines = readFileSync(0, 'utf8').split('\n').filter((l) => l.trim().startsWith('{'));
if (lines.length === 0) {
  console.error('record-bench: no JSON lines on standard input');
  process.exit(2);
}
const records = lines.map((l) => JSON.parse(l));
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
const adapter = records.find((r) => r.adapter)?.adapter ?? '?';
const driver = records.find((r) => r.driver)?.driver ?? '';

const fmt = (v) => (typeof v === 'number' ? String(v) : v === undefined ? '' : JSON.stringify(v));
const known = ['case', 'ms', 'gflops', 'gflops_dense', 'gflops_useful', 'matmul_equal_work_gflops', 'ratio_to_matmul', 'ms_per_dispatch', 'images_per_s', 'ms_per_step', 'ms_to_first_step', 'peak_gpu_bytes', 'seconds', 'ratio'];
const out = [];
if (!existsSync('docs/performance.md')) {
  writeFileSync('docs/performance.md', '# Performance\n\nBenchmark figures, newest last. Each section is one run of `npm run bench` (or `bench:browser`) recorded by `scripts/record-bench.mjs`, with its date, adapter and commit. CPU fallback adapters (lavapipe, SwiftShader) are about a thousand times slower than a GPU; their rows show relative costs, not what a user with a GPU sees.\n');
}
out.push('', `## ${date} UTC, commit ${commit}, ${adapter}${driver ? ` (${driver})` : ''}`, '');
if (note) out.push(note, '');
out.push('| case | figures |', '| --- | --- |');
for (const r of records) {
  const figures = Object.entries(r)
    .filter(([k]) => !['adapter', 'driver', 'case', 'runtime'].includes(k))
    .sort(([a], [b]) => (known.indexOf(a) + 1 || 99) - (known.indexOf(b) + 1 || 99))
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(', ');
  out.push(`| ${r.case ?? r.error ?? '?'} | ${figures.replace(/\|/g, '/')} |`);
}
appendFileSync('docs/performance.md', out.join('\n') + '\n');
console.error(`record-bench: appended ${records.length} rows to docs/performance.md`);

#!/usr/bin/env node
// `npm run bench:frameworks`: builds bench-frameworks.html (vite.frameworks.config.ts, into
// dist-frameworks/) and runs it in headless Chromium with WebGPU, as scripts/bench-browser.mjs runs
// bench.html: the E.1 gated PixelVAE in our engine, TensorFlow.js and jax-js, with the parameter-count
// and loss checks first. Prints the page's JSON lines, and the host's load averages before and after
// (other work on the machine moves every figure; compare ratios from one run).
// Arguments become the page's query: --frameworks ours,tfjs,jax (run in that order), --steps N,
// --warmup N, --forward N, --batch N, --no-check, --quick (small widths: a smoke run, not the E.1 model); --timeout-min M stops the whole run (default 90).
// Chromium: /usr/bin/chromium unless CHROMIUM is set. Port 4182 (BENCH_PORT); a port in use is refused.
import { cpus, loadavg } from 'node:os';
import { runBenchPage } from './bench-page.mjs';

const query = new URLSearchParams();
let timeoutMin = 90;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--no-check') query.set('check', '0');
  else if (a === '--quick') query.set('quick', '1');
  else if (['--frameworks', '--steps', '--warmup', '--forward', '--batch'].includes(a)) query.set(a.slice(2), argv[++i] ?? '');
  else if (a === '--timeout-min') timeoutMin = Number(argv[++i]);
  else {
    console.error(`bench:frameworks: unknown argument ${a} (--frameworks LIST, --steps N, --warmup N, --forward N, --batch N, --no-check, --quick, --timeout-min M)`);
    process.exit(2);
  }
}
if (!(timeoutMin > 0)) {
  console.error('bench:frameworks: --timeout-min needs a positive number');
  process.exit(2);
}

const port = Number(process.env.BENCH_PORT ?? 4182);
const load = () => loadavg().map((x) => +x.toFixed(2));
const loadStart = load();

const failed = await runBenchPage({
  label: 'bench:frameworks',
  port,
  page: 'bench-frameworks.html',
  query,
  viteConfig: 'vite.frameworks.config.ts',
  timeoutMs: timeoutMin * 60_000,
});
console.log(JSON.stringify({ case: 'host', cpus: cpus().length, loadavg_start: loadStart, loadavg_end: load(), failed }));
process.exit(failed ? 1 : 0);

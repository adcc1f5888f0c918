#!/usr/bin/env node
// `npm run bench:frameworks`: builds bench-frameworks.html (vite.frameworks.config.ts, into
// dist-frameworks/) and runs it in headless Chromium with WebGPU, as scripts/bench-browser.mjs runs
// bench.html: the E.1 gated PixelVAE in our engine, TensorFlow.js and jax-js, with the parameter-count
// and loss checks first. Prints the page's JSON lines, and the host's load averages before and after
// (other work on the machine moves every figure; compare ratios from one run).
// Arguments become the page's query: --frameworks ours,tfjs,jax (run in that order), --steps N,
// --warmup N, --forward N, --batch N, --no-check, --quick (small widths: a smoke run, not the E.1 model); --timeout-min M stops the whole run (default 90).
// Chromium: /usr/bin/chromium unless CHROMIUM is set. Port 4182 (BENCH_PORT); a port in use is refused.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { chromium } from '@playwright/test';

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

// The port must be free: an old server there would be measured in place of this build.
await new Promise((resolve) => {
  const probe = createServer();
  probe.once('error', (error) => {
    console.error(`bench:frameworks: port ${port} is already in use (${error.code}); stop what serves there (e.g. \`fuser -k ${port}/tcp\`) or set BENCH_PORT=...`);
    process.exit(2);
  });
  probe.listen(port, '127.0.0.1', () => probe.close(resolve));
});

// vite itself (not npx, which would leave its child running when killed), in its own process group.
const vite = fileURLToPath(new URL('../node_modules/vite/bin/vite.js', import.meta.url));
const server = spawn(process.execPath, [vite, 'preview', '--config', 'vite.frameworks.config.ts', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
  stdio: ['ignore', 'ignore', 'inherit'],
  detached: true,
});
let serverExit = null;
const exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve((serverExit = code ?? signal))));

/** Stops the preview server's whole process group and waits until it is gone (SIGKILL after 5 s). */
async function stopServer() {
  if (serverExit !== null) return;
  const signal = (name) => {
    try {
      process.kill(-server.pid, name);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(name, () => {
    void stopServer().then(() => process.exit(130));
  });
}

let failed = false;
try {
  for (let tries = 0; ; tries++) {
    if (serverExit !== null) throw new Error(`vite preview exited with ${serverExit}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/bench-frameworks.html`);
      if (response.ok) break;
    } catch {
      // not up yet
    }
    if (tries > 120) throw new Error('vite preview did not answer within 60 s');
    await new Promise((r) => setTimeout(r, 500));
  }
  failed = await runPage();
} catch (error) {
  console.error(`bench:frameworks: ${error.message}`);
  failed = true;
} finally {
  await stopServer();
}
console.log(JSON.stringify({ case: 'host', cpus: cpus().length, loadavg_start: loadStart, loadavg_end: load(), failed }));
process.exit(failed ? 1 : 0);

async function runPage() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  let failed = false;
  try {
    const page = await browser.newPage();
    page.on('console', (message) => {
      const text = message.text();
      if (text.startsWith('{')) {
        console.log(text);
        if (text.includes('"error"')) failed = true;
      } else if (message.type() === 'error' || message.type() === 'warning') {
        console.error(`[page ${message.type()}] ${text}`);
      }
    });
    page.on('pageerror', (error) => {
      console.error(`[page error] ${error.message}`);
      failed = true;
    });
    await page.goto(`http://127.0.0.1:${port}/bench-frameworks.html?${query}`);
    try {
      await page.waitForFunction(() => document.body.dataset.done === '1', undefined, { timeout: timeoutMin * 60_000, polling: 1000 });
    } catch (error) {
      console.error(`bench:frameworks: the page did not finish within ${timeoutMin} min (${error.message.split('\n')[0]})`);
      failed = true;
    }
  } finally {
    await browser.close();
  }
  return failed;
}

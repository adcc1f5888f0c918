#!/usr/bin/env node
// `npm run bench:browser`: runs bench.html from the production build in headless Chromium with WebGPU
// and prints its JSON lines. Arguments become the page's query: --quick, --filter REGEX, --train P, --reps N.
// Chromium: /usr/bin/chromium (Debian) unless CHROMIUM is set. On a machine without a GPU, WebGPU runs
// on SwiftShader. The preview server runs on port 4181 (BENCH_PORT to change it); a port already in use is
// refused, so a leftover server can never be measured in place of the current build.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium } from '@playwright/test';

const query = new URLSearchParams();
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--quick') query.set('quick', '1');
  else if (a === '--filter' || a === '--train' || a === '--reps') query.set(a.slice(2), argv[++i] ?? '');
  else {
    console.error(`bench:browser: unknown argument ${a} (--quick, --filter REGEX, --train P, --reps N)`);
    process.exit(2);
  }
}

const port = Number(process.env.BENCH_PORT ?? 4181);

// The port must be free: with a server already on it (say a `vite preview` left by an earlier run),
// the new one would fail on --strictPort while the old one answered, and the benchmark would measure
// whatever build that old server serves.
await new Promise((resolve) => {
  const probe = createServer();
  probe.once('error', (error) => {
    console.error(
      `bench:browser: port ${port} is already in use (${error.code}); something else (an old vite preview?) is serving there, ` +
        `so this run would not measure the current build. Stop it (e.g. \`fuser -k ${port}/tcp\`) or choose another port with BENCH_PORT=...`,
    );
    process.exit(2);
  });
  probe.listen(port, '127.0.0.1', () => probe.close(resolve));
});

// vite itself (not npx, which would leave its child running when killed), in its own process group
// so that stopping the group stops everything it started.
const vite = fileURLToPath(new URL('../node_modules/vite/bin/vite.js', import.meta.url));
const server = spawn(process.execPath, [vite, 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
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
  // Wait until the preview server answers (its banner is not a reliable signal when stdout is a pipe).
  for (let tries = 0; ; tries++) {
    if (serverExit !== null) throw new Error(`vite preview exited with ${serverExit}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/bench.html`);
      if (response.ok) break;
    } catch {
      // not up yet
    }
    if (tries > 120) throw new Error('vite preview did not answer within 60 s');
    await new Promise((r) => setTimeout(r, 500));
  }
  if (serverExit !== null) throw new Error(`vite preview exited with ${serverExit}`);
  failed = await runBench();
} catch (error) {
  console.error(`bench:browser: ${error.message}`);
  failed = true;
} finally {
  await stopServer();
}
process.exit(failed ? 1 : 0);

async function runBench() {
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
      }
    });
    await page.goto(`http://127.0.0.1:${port}/bench.html?${query}`);
    await page.waitForFunction(() => document.body.dataset.done === '1', undefined, { timeout: 0, polling: 1000 });
  } finally {
    await browser.close();
  }
  return failed;
}

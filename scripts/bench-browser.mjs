#!/usr/bin/env node
// `npm run bench:browser`: runs bench.html from the production build in headless Chromium with WebGPU
// and prints its JSON lines. Arguments become the page's query: --quick, --filter REGEX, --train P, --reps N.
// Chromium: /usr/bin/chromium (Debian) unless CHROMIUM is set. On a machine without a GPU, WebGPU runs
// on SwiftShader.
import { spawn } from 'node:child_process';
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

const port = 4181;
const server = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], { stdio: ['ignore', 'ignore', 'inherit'] });
let serverExit = null;
server.on('exit', (code) => (serverExit = code));
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
  server.kill();
}
process.exit(failed ? 1 : 0);

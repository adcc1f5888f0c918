// One benchmark page of a production build, run in headless Chromium with WebGPU: shared by
// scripts/bench-browser.mjs (bench.html) and scripts/bench-frameworks.mjs (bench-frameworks.html).
// Serves the build with `vite preview` on a port that must be free (an old server there would be
// measured in place of this build), prints the page's JSON lines, and stops the server's whole process
// group however the run ends. Chromium: /usr/bin/chromium unless CHROMIUM is set.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium } from '@playwright/test';

/**
 * Runs `page` (e.g. 'bench.html') with `query` and resolves to true when it failed: a JSON line with
 * "error", an uncaught page error, or no `document.body.dataset.done === '1'` within timeoutMs (0: none).
 * `label` prefixes messages; `viteConfig` picks the build (default: the app's vite.config.ts).
 */
export async function runBenchPage({ label, port, page, query, viteConfig = null, timeoutMs = 0 }) {
  await new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (error) => {
      console.error(
        `${label}: port ${port} is already in use (${error.code}); something else (an old vite preview?) is serving there, ` +
          `so this run would not measure the current build. Stop it (e.g. \`fuser -k ${port}/tcp\`) or choose another port with BENCH_PORT=...`,
      );
      process.exit(2);
    });
    probe.listen(port, '127.0.0.1', () => probe.close(resolve));
  });

  // vite itself (not npx, which would leave its child running when killed), in its own process group
  // so that stopping the group stops everything it started.
  const vite = fileURLToPath(new URL('../node_modules/vite/bin/vite.js', import.meta.url));
  const config = viteConfig ? ['--config', viteConfig] : [];
  const server = spawn(process.execPath, [vite, 'preview', ...config, '--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  let serverExit = null;
  const exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve((serverExit = code ?? signal))));

  /** Stops the preview server's whole process group and waits until it is gone (SIGKILL after 5 s). */
  const stopServer = async () => {
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
  };
  for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(name, () => {
      void stopServer().then(() => process.exit(130));
    });
  }

  const url = `http://127.0.0.1:${port}/${page}`;
  try {
    // Wait until the server answers (its banner is not a reliable signal when stdout is a pipe).
    for (let tries = 0; ; tries++) {
      if (serverExit !== null) throw new Error(`vite preview exited with ${serverExit}`);
      try {
        const response = await fetch(url);
        if (response.ok) break;
      } catch {
        // not up yet
      }
      if (tries > 120) throw new Error('vite preview did not answer within 60 s');
      await new Promise((r) => setTimeout(r, 500));
    }
    return await runInChromium(`${url}?${query}`, label, timeoutMs);
  } catch (error) {
    console.error(`${label}: ${error.message}`);
    return true;
  } finally {
    await stopServer();
  }
}

async function runInChromium(url, label, timeoutMs) {
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
        // The browser asks for a favicon the pages do not have: not worth a line.
      } else if ((message.type() === 'error' || message.type() === 'warning') && !message.location().url.endsWith('/favicon.ico')) {
        console.error(`[page console ${message.type()}] ${text}`);
      }
    });
    page.on('pageerror', (error) => {
      console.error(`[page error] ${error.message}`);
      failed = true;
    });
    await page.goto(url);
    try {
      await page.waitForFunction(() => document.body.dataset.done === '1', undefined, { timeout: timeoutMs, polling: 1000 });
    } catch (error) {
      console.error(`${label}: the page did not finish within ${timeoutMs / 60_000} min (${error.message.split('\n')[0]})`);
      failed = true;
    }
  } finally {
    await browser.close();
  }
  return failed;
}

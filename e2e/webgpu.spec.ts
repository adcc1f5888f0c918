import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { expect, test, type Page } from '@playwright/test';

// Chromium with WebGPU on SwiftShader (a CPU adapter at ~0.1-0.3 GFLOP/s): everything runs on a
// tiny gated PixelVAE on 8x8 digits with a 2-D latent, a few dozen steps. The URL holds the setup.
const TINY = 'preset=gated-pixelvae&size=8&latent=2&layers=1&width=4&filter=3&ifilter=3&owidth=6&ewidth=4&warmup=0&batch=16&seed=1&init=1&sseed=7';
const FIXTURES = 'e2e/fixtures';

interface LongTask {
  start: number;
  duration: number;
  /** Script, style and layout time of the overlapping long animation frames: the page's own work. */
  ownWork: number;
}

/**
 * Collects main-thread long tasks (PerformanceObserver 'longtask') from page load on, with the long
 * animation frames (LoAF) that say how much of each was the page's own script, style and layout.
 */
async function observeLongTasks(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const w = window as unknown as { __longTasks: { start: number; duration: number }[]; __frames: { start: number; end: number; work: number }[] };
    w.__longTasks = [];
    w.__frames = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
    try {
      new PerformanceObserver((list) => {
        for (const e of list.getEntries() as unknown as { startTime: number; duration: number; styleAndLayoutStart: number; scripts: { duration: number }[] }[]) {
          const scripts = e.scripts.reduce((sum, s) => sum + s.duration, 0);
          const layout = e.styleAndLayoutStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0;
          w.__frames.push({ start: e.startTime, end: e.startTime + e.duration, work: scripts + layout });
        }
      }).observe({ type: 'long-animation-frame', buffered: true });
    } catch {
      // No LoAF in this browser: every long task counts as the page's own.
    }
  });
}

async function longTasks(page: Page, from: number, to: number): Promise<LongTask[]> {
  return page.evaluate(([a, b]) => {
    const w = window as unknown as { __longTasks: { start: number; duration: number }[]; __frames: { start: number; end: number; work: number }[] };
    return w.__longTasks
      .filter((t) => t.start >= a && t.start <= b)
      .map((t) => {
        const frames = w.__frames.filter((f) => f.start < t.start + t.duration && f.end > t.start);
        // A task with no long animation frame over it ran no page script or layout (GC, IPC, descheduling).
        return { ...t, ownWork: frames.length > 0 ? Math.max(...frames.map((f) => f.work)) : 0 };
      });
  }, [from, to]);
}

async function openTiny(page: Page, extra = ''): Promise<void> {
  await page.goto(`/?${TINY}${extra}`);
  await expect(page.getByTestId('status')).toHaveAttribute('data-phase', 'ready', { timeout: 60_000 });
  await expect(page.getByTestId('model-line')).toContainText('params', { timeout: 120_000 });
  await expect(page.getByTestId('start')).toBeEnabled();
}

async function trainTo(page: Page, steps: number): Promise<void> {
  await page.getByTestId('target-steps').fill(String(steps));
  await page.getByTestId('start').click();
  await expect(page.getByTestId('train-state')).toHaveText('running');
  await expect(page.getByTestId('train-state')).toHaveText('done', { timeout: 240_000 });
  await expect(page.getByTestId('step')).toHaveText(String(steps));
}

/** Pixel statistics of a grid canvas: fraction of white pixels inside tiles, distinct tile contents. */
async function gridStats(page: Page, testId: string): Promise<{ white: number; black: number; distinctTiles: number; hash: string }> {
  const canvas = page.getByTestId(testId).first();
  const hash = (await canvas.getAttribute('data-hash')) ?? '';
  const stats = await canvas.evaluate((el) => {
    const c = el as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let white = 0;
    let black = 0;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      // Tile pixels are pure gray levels; the padding is (110, 110, 120).
      if (d[i] === 110 && d[i + 2] === 120) continue;
      n++;
      if (d[i] > 200) white++;
      else if (d[i] < 55) black++;
    }
    const size = 8;
    const pad = 1;
    const cols = Math.floor((c.width - pad) / (size + pad));
    const rows = Math.floor((c.height - pad) / (size + pad));
    const tiles = new Set<string>();
    for (let r = 0; r < rows; r++) {
      for (let q = 0; q < cols; q++) {
        let key = '';
        for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) key += d[((pad + r * (size + pad) + y) * c.width + pad + q * (size + pad) + x) * 4] > 127 ? '1' : '0';
        tiles.add(key);
      }
    }
    return { white: white / Math.max(n, 1), black: black / Math.max(n, 1), distinctTiles: tiles.size };
  });
  return { ...stats, hash };
}

async function download(page: Page, testId: string): Promise<{ name: string; bytes: Buffer }> {
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testId).click()]);
  const path = await file.path();
  return { name: file.suggestedFilename(), bytes: readFileSync(path!) };
}

/** Rewrites the preset named in a checkpoint's safetensors metadata (a valid file for another model). */
function withPreset(bytes: Buffer, preset: string): Buffer {
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
  const config = JSON.parse(header.__metadata__.pixelvae_config);
  config.preset = preset;
  header.__metadata__.pixelvae_config = JSON.stringify(config);
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([out, json, bytes.subarray(8 + length)]);
}

test.describe.configure({ mode: 'serial' });

test.describe('the lab on SwiftShader', () => {
  let page: Page;
  const errors: string[] = [];
  let sampleHash = '';
  let checkpoint: { name: string; bytes: Buffer };

  // The page's and its worker's console, kept for the report of a failed test (a hang says nothing else).
  const consoleLines: string[] = [];
  const keepLine = (where: string, text: string): void => {
    consoleLines.push(`${new Date().toISOString().slice(11, 23)} ${where}: ${text}`);
    if (consoleLines.length > 200) consoleLines.shift();
  };

  test.beforeAll(async ({ browser }) => {
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (error) => {
      errors.push(error.message);
      keepLine('pageerror', error.message);
    });
    page.on('console', (m) => keepLine(`page ${m.type()}`, m.text()));
    page.on('worker', (w) => {
      keepLine('page', `worker started: ${w.url()}`);
      w.on('console', (m) => keepLine(`worker ${m.type()}`, m.text()));
      w.on('close', () => keepLine('page', `worker closed: ${w.url()}`));
    });
    page.on('crash', () => keepLine('page', 'the renderer crashed'));
    await observeLongTasks(page);
  });

  test.afterEach(async ({}, testInfo) => {
    if (testInfo.status === testInfo.expectedStatus) return;
    // What the page showed when the test failed; a frozen page answers nothing, so wait 5 s at most.
    const shown = await Promise.race([
      page.evaluate(() =>
        [...['train-state', 'train-status', 'sample-busy', 'sample-note'].map((id) => `[data-testid="${id}"]`), '.notice']
          .map((selector) => `${selector}: ${[...document.querySelectorAll(selector)].map((e) => e.textContent?.slice(0, 300)).join(' | ') || '(absent)'}`)
          .join('\n'),
      ),
      new Promise<string>((resolve) => setTimeout(() => resolve('(the page did not answer within 5 s)'), 5000)),
    ]).catch((error: unknown) => `(the page could not be read: ${String(error)})`);
    const report = `${shown}\n--- console (last ${consoleLines.length} lines) ---\n${consoleLines.join('\n')}`;
    console.log(`diagnostics for "${testInfo.title}":\n${report}`);
    await testInfo.attach('diagnostics', { body: report, contentType: 'text/plain' });
  });

  test.afterAll(async () => {
    await page.close();
  });

  test('shows the adapter, the model cost and the engine check', async () => {
    await openTiny(page);
    await expect(page.getByTestId('adapter-pill')).toContainText('swiftshader');
    await expect(page.getByTestId('adapter-pill')).toContainText('CPU fallback');
    const params = Number((await page.getByTestId('param-count').innerText()).replace(/,/g, ''));
    expect(params).toBeGreaterThan(1000);
    await expect(page.getByTestId('flops')).not.toHaveText('—');
    await page.getByTestId('tab-engine').click();
    await expect(page.getByTestId('adapter-architecture')).toHaveText('swiftshader');
    await expect(page.getByTestId('adapter-fallback')).toHaveText('yes');
    await expect(page.getByTestId('op-verdict')).toHaveText('Matches float64 reference');
    // The conv kernels in use: on a CPU adapter the CPU-shaped ones, untimed, and the card says why.
    await expect(page.getByTestId('kernel-choice-forward')).toContainText('CPU-shaped');
    await expect(page.getByTestId('kernel-choice-backwardInput')).toContainText('CPU-shaped');
    await expect(page.getByTestId('kernel-choice-backwardWeight')).toContainText('CPU-shaped');
    await expect(page.getByTestId('kernel-untimed')).toContainText('runs on the CPU');
    await page.screenshot({ path: 'e2e-artifacts/engine.png', fullPage: true });
    await page.getByTestId('tab-training').click();
    // A size change updates the cost before anything is built.
    await page.getByTestId('size-pixelWidth').fill('8');
    await expect(page.getByTestId('param-count')).not.toHaveText(params.toLocaleString('en-US'));
    expect(page.url()).toContain('width=8');
    await page.getByTestId('size-pixelWidth').fill('4');
    await expect(page.getByTestId('param-count')).toHaveText(params.toLocaleString('en-US'));
    await expect(page.getByTestId('build')).toBeDisabled();
  });

  test('training a few steps makes the loss fall, and the main thread never blocks', async () => {
    await page.getByTestId('target-steps').fill('40');
    const from = await page.evaluate(() => performance.now());
    await page.getByTestId('start').click();
    await expect(page.getByTestId('compile-progress').or(page.getByTestId('train-state').filter({ hasText: 'done' }))).toBeVisible();
    // Poll once a second: Playwright's own DOM queries run on the page's main thread too.
    await page.waitForFunction(() => document.querySelector('[data-testid="train-state"]')?.textContent === 'done', undefined, { timeout: 240_000, polling: 1000 });
    const to = await page.evaluate(() => performance.now());
    await expect(page.getByTestId('step')).toHaveText('40');
    const chart = page.getByTestId('chart-loss');
    expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThan(3);
    const first = Number(await chart.getAttribute('data-first'));
    const last = Number(await chart.getAttribute('data-last'));
    expect(last).toBeLessThan(first);
    await expect(page.getByTestId('train-status')).toContainText('saved in this browser');
    const tasks = await longTasks(page, from, to);
    console.log('long animation frames observed:', await page.evaluate(() => (window as unknown as { __frames: unknown[] }).__frames.length));
    const longest = Math.max(0, ...tasks.map((t) => t.duration));
    const longestOwn = Math.max(0, ...tasks.map((t) => t.ownWork));
    // The assertion is strict (no long task over 50 ms) on a machine that is not oversubscribed, as in CI.
    // When other jobs crowd the cores (load above 1.25 per core, with SwiftShader itself running the GPU
    // work on the CPU), wall-clock durations measure the scheduler, not the page: then the numbers are
    // recorded as an annotation and only a freeze of a second fails the test.
    const load = loadavg()[0] / availableParallelism();
    const oversubscribed = load > 1.25;
    const summary =
      `training ${((to - from) / 1000).toFixed(1)} s, loss ${first.toFixed(2)} -> ${last.toFixed(2)}; main thread: ${tasks.length} long tasks, ` +
      `longest ${longest.toFixed(0)} ms (script+layout in its frame ${longestOwn.toFixed(0)} ms); load ${load.toFixed(2)} per core`;
    console.log(summary);
    test.info().annotations.push({ type: 'main-thread', description: summary });
    if (!oversubscribed) expect(tasks.filter((t) => t.duration > 50)).toEqual([]);
    else expect(tasks.filter((t) => t.duration > 1000)).toEqual([]);
    await page.screenshot({ path: 'e2e-artifacts/training.png', fullPage: true });
  });

  test('the sample grid renders real pixels, and holding a noise level shares it', async () => {
    await page.getByTestId('tab-samples').click();
    await page.getByTestId('draw-samples').click();
    await expect(page.getByTestId('sample-grid')).toBeVisible({ timeout: 120_000 });
    const stats = await gridStats(page, 'sample-grid');
    expect(stats.white).toBeGreaterThan(0.02);
    expect(stats.black).toBeGreaterThan(0.02);
    expect(stats.distinctTiles).toBeGreaterThan(4);
    sampleHash = stats.hash;
    // Same seed, same samples.
    await page.getByTestId('draw-samples').click();
    await expect(page.getByTestId('draw-samples')).toBeEnabled({ timeout: 60_000 });
    expect(await page.getByTestId('sample-grid').getAttribute('data-hash')).toBe(sampleHash);
    // Hold both levels: every image is the same.
    await page.getByTestId('hold-latent').check();
    await page.getByTestId('hold-pixel').check();
    await page.getByTestId('draw-samples').click();
    await expect(page.getByTestId('sample-grid')).not.toHaveAttribute('data-hash', sampleHash, { timeout: 60_000 });
    expect((await gridStats(page, 'sample-grid')).distinctTiles).toBe(1);
    // Hold the latent only: the pixel noise varies.
    await page.getByTestId('hold-pixel').uncheck();
    await page.getByTestId('draw-samples').click();
    await expect.poll(async () => (await gridStats(page, 'sample-grid')).distinctTiles, { timeout: 60_000 }).toBeGreaterThan(1);
    await page.screenshot({ path: 'e2e-artifacts/samples.png', fullPage: true });
    await page.getByTestId('hold-latent').uncheck();
  });

  test('test images and an uploaded PNG get reconstructions; bad uploads say why', async () => {
    await page.getByTestId('tab-reconstructions').click();
    await page.getByTestId('reconstruct-test').click();
    await expect(page.getByTestId('reconstruction-row')).toHaveCount(8, { timeout: 120_000 });
    await page.getByTestId('upload-input').setInputFiles([
      { name: 'digit-7.png', mimeType: 'image/png', buffer: readFileSync(`${FIXTURES}/digit-7.png`) },
      { name: 'not-an-image.png', mimeType: 'image/png', buffer: readFileSync(`${FIXTURES}/not-an-image.png`) },
      { name: 'empty.png', mimeType: 'image/png', buffer: Buffer.alloc(0) },
    ]);
    await expect(page.getByTestId('reconstruction-row')).toHaveCount(1, { timeout: 120_000 });
    const row = page.getByTestId('reconstruction-row');
    await expect(row).toContainText('digit-7.png');
    await expect(row).toContainText('60x80 → 8x8');
    await expect(row).toContainText('inverted');
    const input = await gridStats(page, 'recon-input');
    expect(input.white).toBeGreaterThan(0.05);
    expect(input.black).toBeGreaterThan(0.3);
    await expect(row.getByTestId('recon-samples')).toHaveAttribute('data-count', '4');
    const errorsBox = page.getByTestId('upload-errors');
    await expect(errorsBox).toContainText('2 files could not be used');
    await expect(errorsBox).toContainText('not-an-image.png');
    await expect(errorsBox).toContainText('not an image');
    await expect(errorsBox).toContainText('empty.png');
    await expect(errorsBox).toContainText('0 bytes');
    await page.screenshot({ path: 'e2e-artifacts/reconstructions.png', fullPage: true });
  });

  test('the latent plane shows the test set and decodes a clicked point', async () => {
    await page.getByTestId('tab-latent').click();
    await page.getByTestId('embed').click();
    await expect(page.getByTestId('knn-error')).toContainText('%', { timeout: 120_000 });
    const plot = page.getByTestId('latent-plot');
    await plot.click({ position: { x: 210, y: 210 } });
    await expect(page.getByTestId('decoded-grid')).toBeVisible({ timeout: 120_000 });
    await page.screenshot({ path: 'e2e-artifacts/latent.png', fullPage: true });
  });

  test('importance-sampled NLL with progress', async () => {
    await page.getByTestId('tab-evaluate').click();
    await page.getByTestId('eval-k').fill('4');
    await page.getByTestId('eval-limit').fill('200');
    await page.getByTestId('evaluate').click();
    await expect(page.getByTestId('eval-nll')).toContainText('nats', { timeout: 120_000 });
    const nll = parseFloat(await page.getByTestId('eval-nll').innerText());
    expect(nll).toBeGreaterThan(5);
    expect(nll).toBeLessThan(64 * Math.log(2) + 5);
    await page.screenshot({ path: 'e2e-artifacts/evaluate.png', fullPage: true });
  });

  test('a truncated checkpoint and one for another preset are refused; the app keeps working', async () => {
    checkpoint = await download(page, 'download-checkpoint');
    expect(checkpoint.name).toMatch(/\.safetensors$/);
    const input = page.getByTestId('checkpoint-input');
    await input.setInputFiles({ name: 'truncated.safetensors', mimeType: 'application/octet-stream', buffer: checkpoint.bytes.subarray(0, Math.floor(checkpoint.bytes.length / 2)) });
    const error = page.getByTestId('notice-error');
    await expect(error).toContainText('truncated.safetensors could not be opened');
    await expect(error).toContainText(/truncated|past the end|bytes/);
    await page.screenshot({ path: 'e2e-artifacts/bad-checkpoint.png', fullPage: true });
    await error.getByRole('button', { name: 'Dismiss' }).click();
    await input.setInputFiles({ name: 'other.safetensors', mimeType: 'application/octet-stream', buffer: withPreset(checkpoint.bytes, 'mnist-pixelcnn') });
    await expect(page.getByTestId('notice-error')).toContainText('other.safetensors could not be opened');
    await expect(page.getByTestId('notice-error')).toContainText('pixelcnn');
    await expect(page.getByTestId('notice-error')).toContainText('Nothing was changed');
    await page.getByTestId('notice-error').getByRole('button', { name: 'Dismiss' }).click();
    // Still the trained model: same samples as before.
    await expect(page.getByTestId('step')).toHaveText('40');
    await page.getByTestId('tab-samples').click();
    await page.getByTestId('draw-samples').click();
    await expect(page.getByTestId('sample-grid')).toHaveAttribute('data-hash', sampleHash, { timeout: 60_000 });
  });

  test('save, reload, load: the same seed gives the same samples', async () => {
    await page.reload();
    // The autosave resumes the run.
    await expect(page.getByTestId('step')).toHaveText('40', { timeout: 120_000 });
    await expect(page.getByTestId('notice-info')).toContainText('Resumed your saved run at step 40');
    await expect(page.getByTestId('chart-loss')).not.toHaveAttribute('data-points', '0');
    await page.getByTestId('tab-samples').click();
    await page.getByTestId('draw-samples').click();
    await expect(page.getByTestId('sample-grid')).toHaveAttribute('data-hash', sampleHash, { timeout: 120_000 });
    await page.getByTestId('reset').click();
    await expect(page.getByTestId('step')).toHaveText('0', { timeout: 60_000 });
    await page.getByTestId('checkpoint-input').setInputFiles({ name: checkpoint.name, mimeType: 'application/octet-stream', buffer: checkpoint.bytes });
    await expect(page.getByTestId('notice-info').filter({ hasText: `Opened ${checkpoint.name} at step 40` })).toBeVisible({ timeout: 60_000 });
    await expect(page.getByTestId('step')).toHaveText('40');
    await page.getByTestId('draw-samples').click();
    await expect(page.getByTestId('sample-grid')).toHaveAttribute('data-hash', sampleHash, { timeout: 120_000 });
    expect(errors).toEqual([]);
  });
});

test('a NaN in training stops it and restores the last good state', async ({ page }) => {
  await openTiny(page, '&debug=1&steps=10');
  await trainTo(page, 10);
  await page.evaluate(() => (window as unknown as { __pixelvae: { fault: (k: string) => Promise<void> } }).__pixelvae.fault('nan'));
  await page.getByTestId('target-steps').fill('30');
  await page.getByTestId('start').click();
  const error = page.getByTestId('notice-error');
  await expect(error).toContainText('Training diverged', { timeout: 120_000 });
  await expect(error).toContainText('restored to its last good state, step 10');
  await expect(page.getByTestId('step')).toHaveText('10');
  await page.getByTestId('tab-samples').click();
  await page.getByTestId('draw-samples').click();
  await expect(page.getByTestId('sample-grid')).toBeVisible({ timeout: 120_000 });
  const stats = await gridStats(page, 'sample-grid');
  expect(stats.white + stats.black).toBeGreaterThan(0.99); // no NaN (magenta) pixels
  await page.screenshot({ path: 'e2e-artifacts/nan.png', fullPage: true });
});

test('a lost GPU device shows a message and the last saved state stays downloadable', async ({ page }) => {
  await openTiny(page, '&debug=1&steps=5');
  await trainTo(page, 5);
  await page.evaluate(() => (window as unknown as { __pixelvae: { fault: (k: string) => Promise<void> } }).__pixelvae.fault('device-lost'));
  await page.getByTestId('target-steps').fill('20');
  await page.getByTestId('start').click();
  const error = page.getByTestId('notice-error');
  await expect(error).toContainText('The GPU device was lost', { timeout: 120_000 });
  await expect(error).toContainText('step 5');
  await expect(page.getByTestId('train-state')).toHaveText('stopped');
  const file = await download(page, 'download-checkpoint');
  expect(file.name).toContain('step5');
  expect(file.bytes.length).toBeGreaterThan(1000);
  await page.screenshot({ path: 'e2e-artifacts/device-lost.png', fullPage: true });
});

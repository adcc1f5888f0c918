import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';

// A checkpoint written by the PyTorch twin (python/pixelvae_torch), built here at test time, opens in
// the app (WebGPU on SwiftShader) and draws samples. Python: $PIXELVAE_PYTHON or /usr/bin/python3.
const PYTHON = process.env.PIXELVAE_PYTHON ?? '/usr/bin/python3';
const TINY = 'preset=gated-pixelvae&size=8&latent=2&layers=1&width=4&filter=3&ifilter=3&owidth=6&ewidth=4&warmup=0&batch=16&seed=1&init=1&sseed=7';

let checkpoint: { name: string; bytes: Buffer };

test.beforeAll(() => {
  const out = mkdtempSync(join(tmpdir(), 'pixelvae-twin-e2e-'));
  const args = ['-m', 'pixelvae_torch', 'train', '--preset', 'gated-pixelvae-cond', '--image-size', '8', '--latent', '2', '--layers', '1', '--width', '4',
    '--filter', '3', '--input-filter', '3', '--output-width', '4', '--encoder-dims', '4,4,6,6', '--decoder-dims', '6,6,4', '--warmup', '0',
    '--batch', '16', '--train-limit', '512', '--steps', '12', '--valid-every', '0', '--valid-limit', '32', '--out', out];
  const r = spawnSync(PYTHON, args, { env: { ...process.env, PYTHONPATH: 'python', PYTHONDONTWRITEBYTECODE: '1' }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the PyTorch twin could not write a checkpoint (${PYTHON}; see scripts/ensure-system-deps.sh):\n${r.stderr ?? r.error}`);
  checkpoint = { name: 'torch-trained.safetensors', bytes: readFileSync(join(out, 'last.safetensors')) };
});

test('a checkpoint written by PyTorch opens in the app and draws samples', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`/?${TINY}`);
  await expect(page.getByTestId('status')).toHaveAttribute('data-phase', 'ready', { timeout: 60_000 });
  await expect(page.getByTestId('model-line')).toContainText('params', { timeout: 120_000 });
  await page.getByTestId('checkpoint-input').setInputFiles({ name: checkpoint.name, mimeType: 'application/octet-stream', buffer: checkpoint.bytes });
  await expect(page.getByTestId('notice-info').filter({ hasText: `Opened ${checkpoint.name} at step 12` })).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('step')).toHaveText('12');
  await expect(page.getByTestId('model-line')).toContainText('gated-pixelvae-cond');
  await page.getByTestId('tab-samples').click();
  await page.getByTestId('draw-samples').click();
  const grid = page.getByTestId('sample-grid');
  await expect(grid).toBeVisible({ timeout: 120_000 });
  await expect(grid).toHaveAttribute('data-hash', /.+/, { timeout: 120_000 });
  // Binary samples: every tile pixel black or white (NaN would show magenta), and not all tiles alike.
  const stats = await grid.first().evaluate((el) => {
    const c = el as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    let binary = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] === 110 && d[i + 2] === 120) continue; // the padding between tiles
      n++;
      if (d[i] > 200 || d[i] < 55) binary++;
    }
    const size = 8;
    const pad = 1;
    const tiles = new Set<string>();
    for (let r = 0; r < Math.floor((c.height - pad) / (size + pad)); r++) {
      for (let q = 0; q < Math.floor((c.width - pad) / (size + pad)); q++) {
        let key = '';
        for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) key += d[((pad + r * (size + pad) + y) * c.width + pad + q * (size + pad) + x) * 4] > 127 ? '1' : '0';
        tiles.add(key);
      }
    }
    return { n, binary: binary / Math.max(n, 1), distinct: tiles.size };
  });
  expect(stats.n).toBeGreaterThan(0);
  expect(stats.binary).toBeGreaterThan(0.99);
  expect(stats.distinct).toBeGreaterThan(1);
  await page.screenshot({ path: 'e2e-artifacts/twin-samples.png', fullPage: true });
  expect(errors).toEqual([]);
});

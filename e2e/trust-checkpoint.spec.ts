import { readFileSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';

// Issue 14: a checkpoint holding NaN or Inf is refused with a message naming the tensor, and the model
// in memory survives it (same step, same samples, it still trains); the app's own config JSON opened
// as a checkpoint is called what it is. Tiny gated PixelVAE on 8x8 digits (SwiftShader is a CPU adapter).
const TINY = 'preset=gated-pixelvae&size=8&latent=2&layers=1&width=4&filter=3&ifilter=3&owidth=6&ewidth=4&warmup=0&batch=16&seed=1&init=1&sseed=7';

async function download(page: Page, testId: string): Promise<{ name: string; bytes: Buffer }> {
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testId).click()]);
  return { name: file.suggestedFilename(), bytes: readFileSync((await file.path())!) };
}

/** The tensor keys of a safetensors file in data order, and a copy with `value` at flat index `index` of `key`. */
function tensorKeys(bytes: Buffer): string[] {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
  return Object.keys(header)
    .filter((k) => k !== '__metadata__')
    .sort((a, b) => header[a].data_offsets[0] - header[b].data_offsets[0]);
}

function poison(bytes: Buffer, key: string, index: number, value: number): Buffer {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
  const out = Buffer.from(bytes);
  out.writeFloatLE(value, 8 + n + header[key].data_offsets[0] + 4 * index);
  return out;
}

async function drawSamples(page: Page, previous: string | null): Promise<string> {
  await page.getByTestId('tab-samples').click();
  await page.getByTestId('draw-samples').click();
  const grid = page.getByTestId('sample-grid');
  await expect(grid).toBeVisible({ timeout: 120_000 });
  if (previous) await expect(grid).toHaveAttribute('data-hash', previous, { timeout: 120_000 });
  await expect(page.getByTestId('draw-samples')).toBeEnabled({ timeout: 120_000 });
  return (await grid.getAttribute('data-hash')) ?? '';
}

test('a NaN or Inf checkpoint is refused by tensor name, the config JSON is recognised, and the model in memory survives', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`/?${TINY}`);
  await expect(page.getByTestId('status')).toHaveAttribute('data-phase', 'ready', { timeout: 60_000 });
  await expect(page.getByTestId('start')).toBeEnabled({ timeout: 120_000 });
  await page.getByTestId('target-steps').fill('6');
  await page.getByTestId('start').click();
  await expect(page.getByTestId('train-state')).toHaveText('done', { timeout: 240_000 });
  await expect(page.getByTestId('step')).toHaveText('6');
  const hash = await drawSamples(page, null);

  const checkpoint = await download(page, 'download-checkpoint');
  const keys = tensorKeys(checkpoint.bytes);
  const first = keys[0];
  const moment = keys.find((k) => k.startsWith('optim/v/'))!;
  expect(moment).toBeTruthy();
  const input = page.getByTestId('checkpoint-input');
  const error = page.getByTestId('notice-error');

  // NaN in a weight: refused, the tensor named with the count and the first index.
  await input.setInputFiles({ name: 'diverged.safetensors', mimeType: 'application/octet-stream', buffer: poison(poison(checkpoint.bytes, first, 3, NaN), first, 5, NaN) });
  await expect(error).toContainText('diverged.safetensors');
  await expect(error).toContainText('non-finite values (NaN or Inf)');
  await expect(error).toContainText(`'${first}'`);
  await expect(error).toContainText('2 of');
  await expect(error).toContainText('first at index 3 (NaN)');
  await expect(error).toContainText('nothing was loaded');
  await page.screenshot({ path: 'e2e-artifacts/nan-checkpoint.png', fullPage: true });
  await error.getByRole('button', { name: 'Dismiss' }).click();

  // +Inf in an Adam moment: refused the same way.
  await input.setInputFiles({ name: 'inf-moment.safetensors', mimeType: 'application/octet-stream', buffer: poison(checkpoint.bytes, moment, 0, Infinity) });
  await expect(error).toContainText(`'${moment}'`);
  await expect(error).toContainText('first at index 0 (+Inf)');
  await error.getByRole('button', { name: 'Dismiss' }).click();

  // The app's own config JSON opened as a checkpoint.
  const config = await download(page, 'download-config');
  expect(config.name).toMatch(/\.json$/);
  await input.setInputFiles({ name: config.name, mimeType: 'application/json', buffer: config.bytes });
  await expect(error).toContainText(`${config.name} is the config JSON saved beside a checkpoint`);
  await expect(error).toContainText('open the .safetensors file downloaded with it');
  await expect(error).not.toContainText('header length');
  await error.getByRole('button', { name: 'Dismiss' }).click();

  // The model in memory is the one trained: same step, same samples, and it still trains (no
  // "diverged, restored" loop: the last good state was never replaced).
  await expect(page.getByTestId('step')).toHaveText('6');
  await drawSamples(page, hash);
  await page.getByTestId('tab-training').click();
  await page.getByTestId('target-steps').fill('9');
  await page.getByTestId('start').click();
  await expect(page.getByTestId('train-state')).toHaveText('done', { timeout: 240_000 });
  await expect(page.getByTestId('step')).toHaveText('9');
  await expect(error).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('a model whose weights became NaN is not downloaded, and training on restores the last good state', async ({ page }) => {
  await page.goto(`/?${TINY}&debug=1`);
  await expect(page.getByTestId('start')).toBeEnabled({ timeout: 120_000 });
  await page.getByTestId('target-steps').fill('4');
  await page.getByTestId('start').click();
  await expect(page.getByTestId('train-state')).toHaveText('done', { timeout: 240_000 });
  await page.evaluate(() => (window as unknown as { __pixelvae: { fault: (k: string) => Promise<void> } }).__pixelvae.fault('nan'));
  await page.getByTestId('download-checkpoint').click();
  const error = page.getByTestId('notice-error');
  await expect(error).toContainText('holds NaN or Inf values');
  await expect(error).toContainText('it was not downloaded');
  await expect(error).toContainText('last good state is step 4');
  await error.getByRole('button', { name: 'Dismiss' }).click();
  await page.getByTestId('target-steps').fill('8');
  await page.getByTestId('start').click();
  await expect(error).toContainText('restored to its last good state, step 4', { timeout: 120_000 });
  await expect(page.getByTestId('step')).toHaveText('4');
  // The restored state downloads.
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-checkpoint').click()]);
  expect(file.suggestedFilename()).toContain('step4');
});

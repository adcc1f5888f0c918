import { expect, test } from '@playwright/test';

// Chromium with WebGPU on SwiftShader: the page shows the adapter and the engine's first result.
test('shows the SwiftShader adapter and a correct engine result', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));

  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'PixelVAE Lab' })).toBeVisible();

  const status = page.getByTestId('status');
  await expect(status).toHaveAttribute('data-phase', /ready|error|unavailable/);
  const phase = await status.getAttribute('data-phase');
  if (phase !== 'ready') {
    const text = await status.innerText();
    throw new Error(`expected the engine to be ready, got "${phase}": ${text}`);
  }

  await expect(page.getByTestId('adapter-architecture')).toHaveText('swiftshader');
  await expect(page.getByTestId('adapter-fallback')).toHaveText('yes');
  await expect(page.getByTestId('fallback-note')).toBeVisible();

  // y = a * exp(b) + b for a = 1..6, b = [0, 0.5, -1, 1, -0.5, 2], computed here independently.
  const a = [1, 2, 3, 4, 5, 6];
  const b = [0, 0.5, -1, 1, -0.5, 2];
  const y = a.map((ai, i) => ai * Math.exp(b[i]) + b[i]);
  for (let i = 0; i < y.length; i++) {
    const shown = Number(await page.getByTestId(`op-value-${i}`).innerText());
    expect(shown).toBeCloseTo(y[i], 4);
  }
  const total = Number(await page.getByTestId('op-total').innerText());
  expect(total).toBeCloseTo(y.reduce((s, v) => s + v, 0), 3);
  await expect(page.getByTestId('op-verdict')).toHaveText('Matches float64 reference');

  await page.screenshot({ path: 'e2e-artifacts/webgpu-swiftshader.png', fullPage: true });
  expect(errors).toEqual([]);
});

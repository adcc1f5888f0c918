import { expect, test } from '@playwright/test';

// Chromium without --enable-unsafe-webgpu on a machine with no GPU: the page explains what is
// missing and how to get WebGPU, instead of failing silently.
test('explains how to get WebGPU when it is missing', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));

  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'PixelVAE Lab' })).toBeVisible();
  await expect(page.getByTestId('status')).toHaveAttribute('data-phase', 'unavailable');

  const card = page.getByTestId('no-webgpu');
  await expect(card.getByRole('heading', { name: 'WebGPU is not available here' })).toBeVisible();
  await expect(card).toContainText('Firefox 141+');
  await expect(card).toContainText('Safari 26');
  await expect(card).toContainText('chrome://flags/#enable-unsafe-webgpu');
  await expect(card).toContainText('http://localhost');
  await expect(page.getByTestId('adapter')).toHaveCount(0);

  await page.screenshot({ path: 'e2e-artifacts/no-webgpu.png', fullPage: true });
  expect(errors).toEqual([]);
});

// `npm run bench -- --train e1` (src/bench/cases.ts): the E.1 model of bench:frameworks trains, its
// step is set against the best matmul, and the per-kernel profile holds the step's dispatches. The
// trainer replays steps after its first few, which bypasses dispatch(); the profiled step must not.
// The evaluation forward is timed and profiled too.
import { beforeAll, expect, it } from 'vitest';
import type { GpuContext } from '../src/gpu/context';
import { runBench } from '../src/bench/cases';
import { useGpu } from './support/gpu';

let gpu: GpuContext;
beforeAll(async () => {
  gpu = await useGpu();
});

it('profiles the kernels of one E.1 training step after replayed steps, and of one evaluation forward', async () => {
  const records: Record<string, unknown>[] = [];
  await runBench(gpu, { quick: true, train: ['e1'], filter: /^none$/, reps: 1 }, (r) => void records.push(r));
  expect(records.map((r) => r.case)).toEqual([
    'train e1 b8 (small widths)', 'train e1 b8 vs best matmul', 'train e1 kernel profile', 'forward e1 b8 (small widths)', 'forward e1 kernel profile',
  ]);
  expect(records[0].params).toBe(48114);
  const profile = records[2];
  const kernels = profile.kernels as { kernel: string; dispatches: number; ms: number }[];
  expect(profile.dispatches_per_step as number).toBeGreaterThan(100);
  expect(kernels.length).toBeGreaterThan(0);
  expect(kernels.some((k) => k.kernel.startsWith('conv_forward'))).toBe(true);
  expect(kernels.every((k) => k.ms > 0 && k.dispatches > 0)).toBe(true);
  // The forward pass makes fewer dispatches than a step, none of them a weight gradient.
  expect(records[3].images_per_s as number).toBeGreaterThan(0);
  const forward = records[4];
  const forwardKernels = forward.kernels as { kernel: string; dispatches: number; ms: number }[];
  expect(forward.dispatches_per_forward as number).toBeGreaterThan(10);
  expect(forward.dispatches_per_forward as number).toBeLessThan(profile.dispatches_per_step as number);
  expect(forwardKernels.some((k) => k.kernel.startsWith('conv_forward'))).toBe(true);
  expect(forwardKernels.some((k) => k.kernel.includes('backward_weight'))).toBe(false);
}, 300000);

it('names the presets it knows when given one it does not', async () => {
  await expect(runBench(gpu, { quick: true, train: ['e2'], filter: /^none$/, reps: 1 }, () => {})).rejects.toThrow(/unknown preset e2 .*e1 or all/);
});

// The training-step benchmark (`npm run bench -- --steps ...`, src/bench/steps.ts) on its MNIST and
// hierarchical setups: one record per setup, whose per-kernel count of a step adds up to the
// dispatches it measured per step.
import { beforeAll, expect, it } from 'vitest';
import type { GpuContext } from '../src/gpu/context';
import { runStepBench } from '../src/bench/steps';
import { useGpu } from './support/gpu';

let gpu: GpuContext;
beforeAll(async () => {
  gpu = await useGpu();
});

it('times the MNIST tiny and the hierarchical tiny setups and counts their dispatches by kernel', async () => {
  const records: Record<string, unknown>[] = [];
  await runStepBench(gpu, { setups: ['tiny', 'hier-tiny'], batch: 2, steps: 2 }, (r) => void records.push(r));
  expect(records.map((r) => r.case)).toEqual(['train step tiny b2', 'train step hier-tiny b2']);
  for (const r of records) {
    const perStep = r.dispatches_per_step as number;
    const byKernel = Object.values(r.dispatches_by_kernel as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(perStep, String(r.case)).toBeGreaterThan(0);
    expect(byKernel, `${String(r.case)}: the kernels of one step`).toBe(perStep);
    expect(r.steps_per_s as number).toBeGreaterThan(0);
    expect(r.host_floor_ms_median as number, `${String(r.case)}: the host floor`).toBeGreaterThan(0);
  }
  expect(records[0].forward_train_ms as number).toBeGreaterThan(0);
  expect(records[1].preset).toBe('hier-tiny');
}, 300000);

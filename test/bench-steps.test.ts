// The training-step benchmark (`npm run bench -- --steps ...`, src/bench/steps.ts) on its MNIST and
// hierarchical setups: one record per setup, whose per-kernel count of a step adds up to the
// dispatches it measured per step, and steps after the first few are replayed (their host time apart).
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
  await runStepBench(gpu, { setups: ['tiny', 'hier-tiny'], batch: 2, steps: 6 }, (r) => void records.push(r));
  expect(records.map((r) => r.case)).toEqual(['train step tiny b2', 'train step hier-tiny b2']);
  for (const r of records) {
    const perStep = r.dispatches_per_step as number;
    const byKernel = Object.values(r.dispatches_by_kernel as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(perStep, String(r.case)).toBeGreaterThan(0);
    expect(byKernel, `${String(r.case)}: the kernels of one step`).toBe(perStep);
    expect(r.steps_per_s as number).toBeGreaterThan(0);
    expect(r.host_floor_ms_median as number, `${String(r.case)}: the host floor`).toBeGreaterThan(0);
    // Steps 1-3 are recorded and make the plan; 4-6 are replayed.
    expect(r.steps_replayed, `${String(r.case)}: ${String(r.replay_refusal)}`).toBe(3);
    expect(r.steps_recorded).toBe(3);
    expect(r.host_ms_median_replayed as number).toBeGreaterThan(0);
  }
  expect(records[0].forward_train_ms as number).toBeGreaterThan(0);
  expect(records[1].preset).toBe('hier-tiny');
}, 300000);

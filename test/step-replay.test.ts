// Replayed training steps (src/models/step-replay.ts): a trainer that replays its recorded step must
// train exactly as one that records every step through the engine (bit for bit, through the KL
// warm-up, checks, metric reads, a resume and a checkpoint's moments), and the plan-making rules
// refuse what they cannot patch. The pool's reservations keep a replayed step's scratch to itself.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { GpuImageSet } from '../src/data/gpu-dataset';
import type { ImageSet } from '../src/data/mnist';
import { GpuColourSet } from '../src/data/colour-gpu';
import type { ColourImageSet } from '../src/data/colour';
import { stepSetupConfig } from '../src/bench/steps';
import { MnistModel } from '../src/models/mnist-model';
import { MnistTrainer } from '../src/models/trainer';
import { hierConfig } from '../src/models/hierarchical/config';
import { HierarchicalPixelVae } from '../src/models/hierarchical/model';
import { HierTrainer } from '../src/models/hierarchical/trainer';
import { findPatches, structureDifference, type StepState } from '../src/models/step-replay';
import type { RecordedCommand } from '../src/gpu/context';
import type { StepTrainer } from '../src/models/step-trainer';
import { rng } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

async function paramWords(tensors: readonly E.Tensor[]): Promise<Uint32Array[]> {
  const out: Uint32Array[] = [];
  for (const t of tensors) out.push(new Uint32Array((await t.data()).buffer));
  return out;
}

function digits(count: number, size: number, seed: number): ImageSet {
  const r = rng(seed);
  const images = Uint8Array.from({ length: count * size * size }, () => Math.floor(r() * 256));
  return { name: 'synthetic', count, height: size, width: size, images, labels: new Uint8Array(count) };
}

function colours(count: number, size: number, seed: number): ColourImageSet {
  const r = rng(seed);
  const images = Uint8Array.from({ length: count * 3 * size * size }, () => Math.floor(r() * 256));
  return { name: 'synthetic', count, size, images, labels: new Uint8Array(count) };
}

/**
 * Runs `steps` steps on two trainers built alike, one replaying and one not (one after the other, as
 * a page trains one model at a time), doing `between(i, t)` after step i, and checks that their
 * metrics and parameters agree bit for bit.
 */
async function sameTraining(
  make: () => { trainer: StepTrainer & { readMetrics(): Promise<object> }; params: () => readonly E.Tensor[]; dispose: () => void },
  steps: number,
  between: (i: number, t: StepTrainer) => void = () => undefined,
): Promise<NonNullable<StepTrainer['replayStats']>> {
  const gpu = E.engine().gpu;
  const run = async (replay: boolean) => {
    const x = make();
    x.trainer.replaySteps = replay;
    x.trainer.replayCheckEvery = 4;
    try {
      const metrics: object[] = [];
      for (let i = 0; i < steps; i++) {
        x.trainer.trainStep();
        between(i, x.trainer);
        await gpu.throttle();
        if (i % 5 === 4) metrics.push(await x.trainer.readMetrics());
      }
      return { metrics, params: await paramWords(x.params()), stats: x.trainer.replayStats };
    } finally {
      x.dispose();
    }
  };
  const recorded = await run(false);
  const replayed = await run(true);
  expect(replayed.metrics).toEqual(recorded.metrics);
  expect(replayed.params.length).toBe(recorded.params.length);
  for (let i = 0; i < recorded.params.length; i++) expect(replayed.params[i]).toEqual(recorded.params[i]);
  return replayed.stats!;
}

function mnist(klWarmupSteps: number) {
  return () => {
    const config = { ...stepSetupConfig('tiny'), klWarmupSteps };
    const model = new MnistModel(config);
    const data = GpuImageSet.upload(digits(40, config.imageSize, 5), 'intensity');
    return setup(new MnistTrainer(model, data, { batchSize: 6, seed: 9 }), model, data);
  };
}

type Trained = Parameters<typeof sameTraining>[0] extends () => infer R ? R : never;
/** A trainer with its model's parameters, disposing of all three together. */
function setup(trainer: Trained['trainer'], model: { params: { tensors(): readonly E.Tensor[] }; dispose(): void }, data: { dispose(): void }): Trained {
  return {
    trainer,
    params: () => model.params.tensors(),
    dispose: () => {
      trainer.dispose();
      data.dispose();
      model.dispose();
    },
  };
}

describe('replayed training steps', () => {
  it('MNIST: the same parameters and metrics as recording every step, through the KL warm-up and checks', async () => {
    const stats = await sameTraining(mnist(7), 16);
    expect(stats.plans).toBeGreaterThanOrEqual(1);
    expect(stats.replayed).toBeGreaterThanOrEqual(6);
    expect(stats.failedChecks).toBe(0);
  }, 600_000);

  it('MNIST: a resume and a checkpoint\'s moments make it record again, and it still matches', async () => {
    const stats = await sameTraining(mnist(0), 16, (i, t) => {
      if (i === 7) t.resumeAt(t.step);
      if (i === 11) void t.optimizer.moments; // what a checkpoint save reads
    });
    expect(stats.plans).toBeGreaterThanOrEqual(2);
    expect(stats.replayed).toBeGreaterThanOrEqual(4);
  }, 600_000);

  it('hierarchical: the same parameters and metrics through the KL and sigma-floor warm-ups', async () => {
    const stats = await sameTraining(() => {
      const config = hierConfig('tiny', { alpha1Iters: 6, alpha2Iters: 9, betaIters: 5 });
      const model = new HierarchicalPixelVae(config);
      const data = GpuColourSet.upload(colours(12, config.imageSize, 4));
      return setup(new HierTrainer(model, data, { batchSize: 3, lr: 3e-3, seed: 3 }), model, data);
    }, 14);
    expect(stats.plans).toBeGreaterThanOrEqual(1);
    expect(stats.replayed).toBeGreaterThanOrEqual(3);
    expect(stats.failedChecks).toBe(0);
  }, 600_000);
});

describe('making a replay plan', () => {
  const gpu = () => E.engine().gpu;
  const dispatch = (params: number[]): RecordedCommand => ({
    kind: 'dispatch',
    pipeline: {} as GPUComputePipeline,
    bindGroup: {} as GPUBindGroup,
    params: Uint32Array.from(params),
    workgroups: [1, 1, 1],
    buffers: [],
  });
  const state = (step: number, values: [string, number][]): StepState => ({ step, t: step, phase: '', values: new Map(values), fed: {} as GPUBuffer });

  it('patches the words that equal a per-step value in every recording, and refuses a word that changes otherwise', () => {
    const shared = dispatch([0]);
    const recs = [5, 6, 7].map((s) => ({
      state: state(s, [['step', s], ['weight', E.f32Word(s / 10)], ['one', E.f32Word(1)]]),
      commands: [{ ...shared, params: Uint32Array.of(3, s, E.f32Word(s / 10), E.f32Word(1), 4) } as RecordedCommand],
    }));
    expect(findPatches(recs)).toEqual([
      { command: 0, word: 1, value: 'step' },
      { command: 0, word: 2, value: 'weight' },
      { command: 0, word: 3, value: 'one' },
    ]);
    const odd = recs.map((r, k) => ({ ...r, commands: [{ ...shared, params: Uint32Array.of(3, r.state.step, 0, 0, 4 + k) } as RecordedCommand] }));
    expect(findPatches(odd)).toMatch(/command 0 word 4 changes/);
  });

  it('tells recordings with other kernels, buffers or write bytes apart (the fed buffer may differ in bytes)', async () => {
    await useGpu();
    const fed = gpu().pool.acquire(16);
    const other = gpu().pool.acquire(16);
    const write = (buffer: GPUBuffer, byte: number): RecordedCommand => ({ kind: 'write', buffer, offset: 0, data: Uint8Array.of(byte, 0, 0, 0) });
    const a = dispatch([1]);
    expect(structureDifference([write(fed, 1), a], [write(fed, 2), { ...a, params: Uint32Array.of(2) } as RecordedCommand], fed)).toBeNull();
    expect(structureDifference([write(other, 1)], [write(other, 2)], fed)).toMatch(/other bytes/);
    expect(structureDifference([a], [dispatch([1])], fed)).toMatch(/another kernel/);
    expect(structureDifference([a], [{ ...a, buffers: [fed] } as RecordedCommand], fed)).toMatch(/binding 1 is another buffer/);
    expect(structureDifference([a], [a, a], fed)).toMatch(/1 vs 2 commands/);
    gpu().pool.release(fed);
    gpu().pool.release(other);
  });

  it('a reserved buffer is given to no request until unreserved; a live one cannot be reserved', async () => {
    await useGpu();
    const pool = gpu().pool;
    const bytes = 5 * 1024 + 36; // a size class of its own
    const a = pool.acquire(bytes);
    expect(pool.reserve([a])).toBe(false);
    const owner = pool.ownership(a);
    expect(owner).toBeGreaterThan(0);
    pool.release(a);
    expect(pool.ownership(a)).toBe(0);
    expect(pool.reserve([a])).toBe(true);
    gpu().flush();
    pool.afterSubmit();
    const b = pool.acquire(bytes);
    expect(b).not.toBe(a);
    pool.unreserve([a]);
    pool.afterSubmit();
    pool.mark();
    const c = pool.acquire(bytes);
    expect(c).toBe(a);
    pool.release(b);
    pool.release(c);
  });
});

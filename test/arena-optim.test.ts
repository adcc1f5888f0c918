// The multi-tensor optimizer (src/engine/optim.ts, shaders/adam_multi.wgsl; moments in the arenas of
// src/engine/arena.ts): one dispatch per group of tensors instead of one per tensor. Checked against the
// float64 Adam of src/engine/reference/optim.ts for 50 steps of a small multi-tensor net, with each kind
// of clipping, its parameters separate or packed in one arena (ParamSet.pack: one update dispatch);
// the per-tensor moments a checkpoint reads and writes; and the dispatch count of a step.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { ArenaLayout } from '../src/engine/arena';
import { AdamReference } from '../src/engine/reference/optim';
import { GpuImageSet } from '../src/data/gpu-dataset';
import { tinyConfig } from '../src/models/config';
import { MnistModel } from '../src/models/mnist-model';
import { MnistTrainer } from '../src/models/trainer';
import { expectClose, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

interface Net {
  params: E.Tensor[];
  /** Gradients of the net's loss at the current parameters. */
  grads: () => (E.Tensor | null)[];
  dispose: () => void;
}

/**
 * A two-layer tanh net with odd sizes (loss = sum of squared errors, scaled so that raw gradients
 * exceed 1 and the global norm exceeds the clip at first), plus `unused` parameters the loss does not
 * reach (null gradients), placed between used ones so the arena has several runs.
 */
function makeNet(seed: number, unused: boolean, packed = false): Net {
  const x = E.keep(E.fromArray(toF32(randomArray([11, 7], seed)).data, [11, 7]));
  const y = E.keep(E.fromArray(toF32(randomArray([11, 3], seed + 1)).data, [11, 3]));
  const p = (shape: number[], s: number, scale = 1): E.Tensor =>
    E.keep(E.param(E.fromArray(Float32Array.from(toF32(randomArray(shape, s)).data, (v) => v * scale), shape)));
  const w1 = p([13, 7], seed + 2);
  const b1 = p([13], seed + 3, 0.1);
  const w2 = p([3, 13], seed + 4);
  const b2 = p([3], seed + 5, 0.1);
  const extra = unused ? [p([5], seed + 6), p([2, 3], seed + 7)] : [];
  const params = unused ? [w1, extra[0], b1, w2, extra[1], b2] : [w1, b1, w2, b2];
  // Packed as ParamSet.pack does: every parameter a slice of one arena, gradients gathered in a twin.
  let arenas: { values: E.TensorArena; grads: E.TensorArena } | null = null;
  if (packed) {
    const values = new E.TensorArena(new E.ArenaLayout(params.map((t) => t.shape), E.sliceAlignment()));
    params.forEach((t, i) => {
      E.engine().gpu.copy(t.buffer, 0, values.whole.buffer, values.layout.offsets[i] * 4, t.size * 4);
      t.rebase(values.slots[i]);
    });
    arenas = { values, grads: new E.TensorArena(values.layout) };
  }
  return {
    params,
    grads: () => {
      const h = E.tanh(E.linear(x, w1, b1));
      const loss = E.affine(E.sum(E.square(E.sub(E.linear(h, w2, b2), y))), 3, 0);
      return E.grad(loss, params, undefined, arenas ? { into: arenas.grads.slots } : {});
    },
    dispose: () => {
      for (const t of [x, y, w1, b1, w2, b2, ...extra]) t.dispose();
      arenas?.values.dispose();
      arenas?.grads.dispose();
    },
  };
}

/** 50 GPU Adam steps, each against a float64 step from the GPU's own parameters and the same gradients. */
async function fiftySteps(opts: E.AdamOptions, withUnused: boolean, packed = false): Promise<{ clippedSteps: number; updateDispatches: number }> {
  const net = makeNet(21, withUnused, packed);
  const gpu = E.engine().gpu;
  let updateDispatches = 0;
  const adam = new E.Adam(opts);
  const cpu = new AdamReference(
    { lr: opts.lr ?? 1e-3, beta1: opts.beta1 ?? 0.9, beta2: opts.beta2 ?? 0.999, eps: opts.eps ?? 1e-8, clipValue: opts.clipValue ?? 0, clipGlobalNorm: opts.clipGlobalNorm ?? 0 },
    net.params.map((t) => t.size),
  );
  const initial = await Promise.all(net.params.map(async (t) => Float32Array.from(await t.data())));
  let clippedSteps = 0;
  for (let s = 0; s < 50; s++) {
    await E.tidyAsync(async () => {
      const before = await Promise.all(net.params.map(async (t) => Float64Array.from(await t.data())));
      const grads = net.grads();
      const gData = await Promise.all(grads.map(async (g) => (g ? await g.data() : null)));
      updateDispatches = 0;
      gpu.onDispatch = (spec) => void (spec.entry === 'update_multi' && updateDispatches++);
      try {
        adam.step(net.params, grads);
      } finally {
        gpu.onDispatch = null;
      }
      const norm = cpu.step(before, gData);
      const c = opts.clipValue ?? 0;
      if (c > 0 && gData.some((g) => g && g.some((v) => Math.abs(v) > c))) clippedSteps++;
      else if ((opts.clipGlobalNorm ?? 0) > 0 && norm > opts.clipGlobalNorm!) clippedSteps++;
      if (adam.clipStatistics) {
        const [, gpuNorm] = await adam.clipStatistics.data();
        expect(Math.abs(gpuNorm - norm) / norm, `step ${s + 1}: global norm`).toBeLessThan(1e-5);
      }
      for (let k = 0; k < net.params.length; k++) expectClose(await net.params[k].data(), before[k], 1e-4, `step ${s + 1}, parameter ${k}`);
    });
  }
  // The moments a checkpoint reads: the float64 moments after 50 steps.
  const { m, v } = adam.moments;
  for (let k = 0; k < net.params.length; k++) {
    expectClose(await m[k].data(), cpu.m[k], 1e-4, `m of parameter ${k}`);
    expectClose(await v[k].data(), cpu.v[k], 1e-4, `v of parameter ${k}`);
  }
  // Parameters without gradients never moved.
  for (let k = 0; k < net.params.length; k++) {
    if (withUnused && (k === 1 || k === 4)) expect(Array.from(await net.params[k].data())).toEqual(Array.from(initial[k]));
  }
  adam.dispose();
  net.dispose();
  return { clippedSteps, updateDispatches };
}

describe('arena Adam against the float64 reference, 50 steps', () => {
  it('element-wise clipping at 1 (MNIST), active', async () => {
    const { clippedSteps } = await fiftySteps({ lr: 0.02, clipValue: 1 }, false);
    expect(clippedSteps, 'steps where some gradient exceeded 1').toBeGreaterThan(5);
  });
  it('global-norm clipping (hierarchical), active, with parameters that get no gradient', async () => {
    const { clippedSteps } = await fiftySteps({ lr: 0.02, clipGlobalNorm: 5 }, true);
    expect(clippedSteps, 'steps where the global norm exceeded 5').toBeGreaterThan(5);
  });
  it('no clipping, non-default betas', () => fiftySteps({ lr: 0.01, beta1: 0.8, beta2: 0.95, eps: 1e-6 }, false));
  it('packed parameters (one arena): element-wise clipping, the whole update in one dispatch', async () => {
    const { clippedSteps, updateDispatches } = await fiftySteps({ lr: 0.02, clipValue: 1 }, false, true);
    expect(clippedSteps).toBeGreaterThan(5);
    expect(updateDispatches).toBe(1);
  });
  it('packed parameters: global-norm clipping, in one dispatch', async () => {
    const { clippedSteps, updateDispatches } = await fiftySteps({ lr: 0.02, clipGlobalNorm: 5 }, false, true);
    expect(clippedSteps).toBeGreaterThan(5);
    expect(updateDispatches).toBe(1);
  });
  // With missing: 'skip' a null gradient leaves its parameter alone, which the one-dispatch update
  // cannot: it takes the grouped update (fiftySteps checks those parameters never moved).
  it('packed parameters, some without gradients: those stay where they were', () => fiftySteps({ lr: 0.02, clipGlobalNorm: 5 }, true, true));
});

describe('arena layout', () => {
  it('offsets end to end (an empty tensor takes no room)', () => {
    const layout = new ArenaLayout([[2, 3], [4], [0], [5, 1], [7]]);
    expect(layout.offsets).toEqual([0, 6, 10, 10, 15]);
    expect(layout.total).toBe(22);
  });
});

describe('arena Adam state', () => {
  it('missing gradients as zeros equal explicit zero gradients', async () => {
    const a = makeNet(31, true);
    const b = makeNet(31, true);
    const adamA = new E.Adam({ lr: 0.05, clipValue: 1 });
    const adamB = new E.Adam({ lr: 0.05, clipValue: 1 });
    for (let s = 0; s < 3; s++) {
      E.tidy(() => {
        adamA.step(a.params, a.grads(), 'zero');
        const gb = b.grads();
        adamB.step(b.params, gb.map((g, i) => g ?? E.zeros(b.params[i].shape)));
      });
    }
    for (let k = 0; k < a.params.length; k++) expect(Array.from(await a.params[k].data())).toEqual(Array.from(await b.params[k].data()));
    adamA.dispose();
    adamB.dispose();
    a.dispose();
    b.dispose();
  });

  it('moments written through `moments` (a checkpoint restore) are what the next step uses; restore() too', async () => {
    const nets = [makeNet(41, false), makeNet(41, false), makeNet(41, false)];
    const adams = nets.map(() => new E.Adam({ lr: 0.05, clipGlobalNorm: 2 }));
    const stepAll = (which: number[]): void => E.tidy(() => which.forEach((i) => adams[i].step(nets[i].params, nets[i].grads())));
    stepAll([0, 1, 2]);
    stepAll([0, 1, 2]);
    const { m, v } = adams[0].moments;
    const mHost = await Promise.all(m.map(async (t) => Float32Array.from(await t.data())));
    const vHost = await Promise.all(v.map(async (t) => Float32Array.from(await t.data())));
    // Net 1: its moments replaced through the mirrors by net 0's scaled by 2 (written as restoreTensors does).
    const mirrors = adams[1].moments;
    mirrors.m.forEach((t, i) => E.engine().gpu.write(t.buffer, mHost[i].map((x) => 2 * x)));
    mirrors.v.forEach((t, i) => E.engine().gpu.write(t.buffer, vHost[i].map((x) => 2 * x)));
    // Net 2: the same through restore().
    adams[2].restore(nets[2].params, mHost.map((a) => a.map((x) => 2 * x)), vHost.map((a) => a.map((x) => 2 * x)), adams[2].t);
    stepAll([1, 2]);
    for (let k = 0; k < nets[1].params.length; k++) {
      expect(Array.from(await nets[1].params[k].data()), `parameter ${k}`).toEqual(Array.from(await nets[2].params[k].data()));
    }
    // And the moments differ from net 0's path (the write took effect).
    stepAll([0]);
    expect(Array.from(await nets[0].params[0].data())).not.toEqual(Array.from(await nets[1].params[0].data()));
    adams.forEach((a) => a.dispose());
    nets.forEach((n) => n.dispose());
  });

  it('a bad restore changes nothing', async () => {
    const net = makeNet(51, false);
    const adam = new E.Adam({ lr: 0.05 });
    E.tidy(() => adam.step(net.params, net.grads()));
    const before = await Promise.all(adam.moments.m.map(async (t) => Array.from(await t.data())));
    const sizes = net.params.map((p) => p.size);
    const bad = sizes.map((n, i) => new Float32Array(i === 2 ? n + 1 : n).fill(7));
    expect(() => adam.restore(net.params, bad, bad, 3)).toThrow(/Adam.restore: parameter 2/);
    const after = await Promise.all(adam.moments.m.map(async (t) => Array.from(await t.data())));
    expect(after).toEqual(before);
    expect(adam.t).toBe(1);
    adam.dispose();
    net.dispose();
  });
});

describe('dispatches per step', () => {
  let data: GpuImageSet | null = null;
  afterAll(() => data?.dispose());

  it('Adam records one update dispatch per group of tensors (and per group of gradients for the global norm)', () => {
    // Group sizes follow the device's storage-buffer limit: (limit - 2) / 2 tensors per update, (limit - 3) / 2
    // with the clip buffer bound, limit - 1 gradients per sum of squares (16 on lavapipe: 7, 6 and 15).
    const limit = E.engine().gpu.device.limits.maxStorageBuffersPerShaderStage;
    const n = 40;
    const cases: [E.AdamOptions, number][] = [
      [{ clipValue: 1 }, Math.ceil(n / Math.floor((limit - 2) / 2))],
      [{ clipGlobalNorm: 5 }, Math.ceil(n / Math.min(16, limit - 1)) + 1 + Math.ceil(n / Math.floor((limit - 3) / 2))],
    ];
    for (const [opts, want] of cases) {
      const params = Array.from({ length: n }, (_, i) => E.keep(E.param(E.fill([1 + (i % 7), 3], 0.5))));
      const adam = new E.Adam(opts);
      E.tidy(() => {
        const grads = params.map((p) => E.fill(p.shape, 0.25));
        adam.step(params, grads); // the first step creates the arenas
        const d0 = E.engine().gpu.stats().dispatches;
        adam.step(params, grads);
        const got = E.engine().gpu.stats().dispatches - d0;
        expect(got).toBe(want);
        expect(got, 'well under one dispatch per tensor').toBeLessThanOrEqual(n / 2);
      });
      adam.dispose();
      params.forEach((p) => p.dispose());
    }
  });

  it('a training step of a small model stays under its bound', () => {
    const model = new MnistModel(tinyConfig('gated-pixelvae-cond', { seed: 2 }));
    const size = model.config.imageSize;
    const images = Uint8Array.from({ length: 64 * size * size }, (_, i) => (i * 37) % 256);
    data = GpuImageSet.upload({ name: 'synthetic', count: 64, height: size, width: size, images, labels: new Uint8Array(64) }, 'intensity');
    const trainer = new MnistTrainer(model, data, { batchSize: 8, seed: 1 });
    trainer.trainStep();
    const d0 = E.engine().gpu.stats().dispatches;
    trainer.trainStep();
    const perStep = E.engine().gpu.stats().dispatches - d0;
    const tensors = model.params.names().length;
    // Forward and backward of this model take about 3.4 dispatches per parameter tensor; one Adam
    // dispatch per tensor would add `tensors` (114) more.
    expect(perStep, `${perStep} dispatches for ${tensors} parameter tensors`).toBeLessThanOrEqual(BOUND_TINY_STEP);
    trainer.dispose();
    trainer.optimizer.dispose();
    model.dispose();
  });
});

/** Measured 400 on lavapipe (383 forward, backward and data, 17 Adam); one Adam dispatch per tensor made it 497. */
const BOUND_TINY_STEP = 420;

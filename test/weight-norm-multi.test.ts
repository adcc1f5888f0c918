// Weight norm of many layers per dispatch (E.weightNormMany, issue 13): forward against the float64
// reference, backward against its finite differences, across groups larger than one dispatch's K,
// with empty and single-row pairs and an output nobody uses; the dispatch counts; the tape's
// multi-output nodes; the per-step bank of a model's weights; and a training step that is the same
// with and without the bank.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { weightNormRef } from '../src/engine/reference/norm';
import type { NDArray } from '../src/engine/reference/ndarray';
import { GpuImageSet } from '../src/data/gpu-dataset';
import { GpuColourSet } from '../src/data/colour-gpu';
import { hierConfig } from '../src/models/hierarchical/config';
import { HierarchicalPixelVae } from '../src/models/hierarchical/model';
import { HierTrainer } from '../src/models/hierarchical/trainer';
import { tinyConfig } from '../src/models/config';
import { MnistModel } from '../src/models/mnist-model';
import { MnistTrainer } from '../src/models/trainer';
import { Linear } from '../src/nn/layers';
import { ParamSet } from '../src/nn/params';
import { expectClose, randomArray, rng, toF32 } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

/** Odd sizes: linear and conv weights, one row, one element, no rows, rows of no elements. */
const SHAPES: number[][] = [
  [5, 7],
  [3, 2, 5, 5],
  [1, 9],
  [0, 4],
  [7, 3],
  [3, 0],
  [2, 3, 3, 1],
  [11, 5],
  [4, 1, 3, 3],
  [1, 1],
  [6, 13],
  [9, 2, 3],
  [13, 4, 1, 1],
];
/** The pair whose output the loss does not use. */
const UNUSED = 7;

interface Case {
  v: NDArray[];
  g: NDArray[];
  /** Cotangent of each output (the loss is sum_i sum(W_i * c_i) over the used outputs). */
  c: NDArray[];
}

function makeCase(seed: number): Case {
  return {
    v: SHAPES.map((s, i) => toF32(randomArray(s, seed * 100 + i))),
    g: SHAPES.map((s, i) => toF32(randomArray([s[0]], seed * 100 + 50 + i))),
    c: SHAPES.map((s, i) => toF32(randomArray(s, seed * 100 + 80 + i))),
  };
}

function referenceLoss(k: Case): number {
  let loss = 0;
  for (let i = 0; i < SHAPES.length; i++) {
    if (i === UNUSED) continue;
    const w = weightNormRef(k.v[i], k.g[i]);
    for (let e = 0; e < w.data.length; e++) loss += w.data[e] * k.c[i].data[e];
  }
  return loss;
}

/** Central differences of the float64 loss at up to 40 elements of x. */
function finiteDifferences(k: Case, x: NDArray, seed: number): { at: number[]; fd: number[] } {
  const h = 1e-5;
  const n = x.data.length;
  const r = rng(seed);
  const at = n <= 40 ? [...Array(n).keys()] : Array.from({ length: 40 }, () => Math.floor(r() * n));
  const fd = at.map((e) => {
    const orig = x.data[e];
    x.data[e] = orig + h;
    const up = referenceLoss(k);
    x.data[e] = orig - h;
    const down = referenceLoss(k);
    x.data[e] = orig;
    return (up - down) / (2 * h);
  });
  return { at, fd };
}

describe('weightNormMany', () => {
  it('forward vs float64 and backward vs finite differences, over several groups, with an unused output', async () => {
    const k = makeCase(3);
    const sizes = E.weightNormGroupSizes();
    expect(SHAPES.length, 'more pairs than two dispatches hold').toBeGreaterThan(2 * Math.max(sizes.forward, sizes.backward));
    const got = await E.tidyAsync(async () => {
      const vs = k.v.map((a) => E.param(E.fromArray(a.data, a.shape)));
      const gs = k.g.map((a) => E.param(E.fromArray(a.data, a.shape)));
      const ws = E.weightNormMany(vs.map((v, i) => ({ v, g: gs[i] })));
      const used = SHAPES.map((_, i) => i).filter((i) => i !== UNUSED);
      // The used outputs, flat and end to end, seeded with their cotangents.
      const flat = E.concat(used.map((i) => ws[i].view([ws[i].size])), 0);
      const seed = E.concat(used.map((i) => E.fromArray(k.c[i].data, [k.c[i].data.length])), 0);
      const grads = E.grad(flat, [...vs, ...gs], seed);
      const read = (t: E.Tensor | null): Promise<Float32Array | null> => (t ? (t.data() as Promise<Float32Array>) : Promise.resolve(null));
      return {
        w: await Promise.all(ws.map((w) => w.data())),
        dv: await Promise.all(grads.slice(0, vs.length).map(read)),
        dg: await Promise.all(grads.slice(vs.length).map(read)),
      };
    });
    for (let i = 0; i < SHAPES.length; i++) {
      const what = `pair ${i} ${JSON.stringify(SHAPES[i])}`;
      expectClose(got.w[i], weightNormRef(k.v[i], k.g[i]).data, 1e-5, `${what} forward`);
      if (i === UNUSED) {
        expect(got.dv[i], `${what}: no gradient for v`).toBeNull();
        expect(got.dg[i], `${what}: no gradient for g`).toBeNull();
        continue;
      }
      for (const [name, x, g] of [['v', k.v[i], got.dv[i]], ['g', k.g[i], got.dg[i]]] as const) {
        expect(g, `${what}: gradient of ${name}`).not.toBeNull();
        expect(g!.length).toBe(x.data.length);
        const { at, fd } = finiteDifferences(k, x, i + 17);
        expectClose(at.map((e) => g![e]), fd, 1e-3, `${what}: gradient of ${name}`);
      }
    }
  });

  it('the same values as one weightNorm per layer, and one gradient tensor shared by two outputs', async () => {
    const k = makeCase(5);
    const live = [0, 1, 2, 4, 6, 8];
    const run = (grouped: boolean): Promise<Float32Array[]> =>
      E.tidyAsync(async () => {
        const vs = live.map((i) => E.param(E.fromArray(k.v[i].data, k.v[i].shape)));
        const gs = live.map((i) => E.param(E.fromArray(k.g[i].data, k.g[i].shape)));
        const ws = grouped ? E.weightNormMany(vs.map((v, j) => ({ v, g: gs[j] }))) : vs.map((v, j) => E.weightNorm(v, gs[j]));
        // Pairs 0 and 3 of `live` ([5,7] and [7,3]) have 35 and 21 elements; 21 of each are added, so
        // add's backward hands the same tensor to both outputs.
        const a = ws[0].view([35]);
        const b = ws[3].view([21]);
        const sumAB = E.add(E.slice(a, [0], [21]), b);
        const rest = E.concat([sumAB, ...[1, 2, 4, 5].map((j) => ws[j].view([ws[j].size]))], 0);
        const seed = E.fromArray(randomArray([rest.size], 9).data.map(Math.fround), [rest.size]);
        const grads = E.grad(rest, [...vs, ...gs], seed);
        const out = [...ws.map((w) => w.data()), ...grads.map((g) => g!.data())];
        return (await Promise.all(out)) as Float32Array[];
      });
    const single = await run(false);
    const grouped = await run(true);
    // The same arithmetic in the same order: equal up to float32 rounding of a fused multiply-add.
    grouped.forEach((x, i) => expectClose(x, single[i], 1e-6, `tensor ${i}`));
  });

  it('N pairs cost ceil(N / K) dispatches forward and ceil(used / K\') backward', () => {
    const sizes = E.weightNormGroupSizes();
    const limit = E.engine().gpu.device.limits.maxStorageBuffersPerShaderStage;
    expect(sizes.forward).toBe(Math.max(1, Math.min(16, Math.floor(limit / 3))));
    expect(sizes.backward).toBe(Math.max(1, Math.min(16, Math.floor(limit / 5))));
    const gpu = E.engine().gpu;
    for (const n of [1, sizes.forward, 2 * sizes.forward + 1, 37]) {
      E.tidy(() => {
        const vs = Array.from({ length: n }, (_, i) => E.param(E.fill([1 + (i % 4), 3, 1 + (i % 3)], 0.5 + i)));
        const gs = vs.map((v) => E.param(E.fill([v.shape[0]], 2)));
        const count = { forward: 0, backward: 0 };
        gpu.onDispatch = (spec) => {
          if (spec.entry === 'weight_norm_forward_multi') count.forward++;
          else if (spec.entry === 'weight_norm_backward_multi') count.backward++;
        };
        try {
          const ws = E.weightNormMany(vs.map((v, i) => ({ v, g: gs[i] })));
          expect(count.forward, `${n} pairs forward`).toBe(Math.ceil(n / sizes.forward));
          // Every output but the first used.
          const used = ws.slice(1);
          if (used.length > 0) {
            E.grad(E.sum(E.concat(used.map((w) => w.view([w.size])), 0)), [...vs, ...gs]);
            expect(count.backward, `${n} pairs backward`).toBe(Math.ceil(used.length / sizes.backward));
          }
        } finally {
          gpu.onDispatch = null;
        }
      });
    }
  });

  it('rejects a gain of the wrong length, naming the pair', () =>
    E.tidy(() => {
      expect(() => E.weightNormMany([{ v: E.ones([2, 3]), g: E.ones([2]) }, { v: E.ones([4, 3]), g: E.ones([3]) }])).toThrow(/weightNormMany: pair 1.*\[4,3\].*\[3\]/);
    }));
});

describe('the tape with multi-output ops', () => {
  it('runs a group backward once, after all its outputs, and passes gradients through non-leaf inputs', async () => {
    // y1, y2 = (a + b, a * b) from a = 2x, b = x + 1 (non-leaf inputs, visited after the group); loss = 3 y1 + y2 y2.
    const calls: number[] = [];
    const got = await E.tidyAsync(async () => {
      const x = E.param(E.fromArray([0.5, -1.5], [2]));
      const a = E.scale(x, 2);
      const b = E.affine(x, 1, 1);
      const outs = E.recordMany('pairOp', [E.add(a, b), E.mul(a, b)].map((t) => E.noGrad(() => E.scale(t, 1))), [a, b], (gys) => {
        calls.push(gys.filter((g) => g !== null).length);
        const [g1, g2] = gys;
        return [E.add(g1!, E.mul(g2!, b)), E.add(g1!, E.mul(g2!, a))];
      });
      const loss = E.sum(E.add(E.scale(outs[0], 3), E.mul(outs[1], outs[1])));
      const [dx] = E.grad(loss, [x]);
      return dx!.toArray();
    });
    expect(calls).toEqual([2]);
    // d/dx [3(3x + 1) + (2x(x + 1))^2] = 9 + 2 * 2x(x + 1) * (4x + 2)
    const want = [0.5, -1.5].map((x) => 9 + 2 * (2 * x * (x + 1)) * (4 * x + 2));
    expectClose(got, want, 1e-5, 'dx');
  });

  it('a group whose outputs are unused gets no backward call', () =>
    E.tidy(() => {
      const x = E.param(E.fromArray([1, 2], [2]));
      let called = false;
      const outs = E.recordMany('unused', [E.noGrad(() => E.scale(x, 1))], [x], () => {
        called = true;
        return [null];
      });
      const [dx] = E.grad(E.sum(E.scale(x, 2)), [x, outs[0]]);
      expect(called).toBe(false);
      expect(dx).not.toBeNull();
    }));
});

describe('WeightNormBank', () => {
  it('hands out the step\'s weights only inside withWeights, and guards against stale use', () => {
    const params = new ParamSet(4);
    const layer = new Linear(params, 'l', { in: 3, out: 2, weightNorm: true });
    const plain = new Linear(params, 'p', { in: 3, out: 2 });
    expect(params.weightNorm.size).toBe(1);
    E.tidy(() => {
      const outside = layer.weight();
      expect(params.weightNorm.weightOf(layer.v)).toBeNull();
      let inside: E.Tensor | null = null;
      params.weightNorm.withWeights(() => {
        inside = layer.weight();
        expect(inside).toBe(layer.weight()); // one W per step, however often the layer asks
        expect(inside).not.toBe(outside);
        expect(plain.weight()).toBe(plain.v);
        expect(() => params.weightNorm.withWeights(() => 0)).toThrow(/already/);
        expect(() => params.assign(new Map())).toThrow(/stale/);
      });
      // After the step (the optimizer runs here) a layer computes its weight afresh.
      expect(params.weightNorm.active).toBe(false);
      expect(layer.weight()).not.toBe(inside);
    });
    params.dispose();
    expect(params.weightNorm.size).toBe(0);
  });
});

describe('a training step with the bank', () => {
  let data: GpuImageSet | null = null;
  afterAll(() => data?.dispose());

  function tinySetup(seed: number, klWarmupSteps: number): { model: MnistModel; trainer: MnistTrainer } {
    const model = new MnistModel(tinyConfig('gated-pixelvae-cond', { seed, klWarmupSteps }));
    const size = model.config.imageSize;
    if (!data) {
      const images = Uint8Array.from({ length: 64 * size * size }, (_, i) => (i * 37 + (i >> 3) * 11) % 256);
      data = GpuImageSet.upload({ name: 'synthetic', count: 64, height: size, width: size, images, labels: new Uint8Array(64) }, 'intensity');
    }
    return { model, trainer: new MnistTrainer(model, data, { batchSize: 8, seed: 1 }) };
  }

  function release(s: { model: MnistModel; trainer: MnistTrainer }): void {
    s.trainer.dispose();
    s.trainer.optimizer.dispose();
    s.model.dispose();
  }

  it('trains to the same losses and parameters as one weight norm per layer, in fewer dispatches', async () => {
    const run = async (grouped: boolean): Promise<{ losses: number[]; params: Float32Array[]; dispatches: number }> => {
      const s = tinySetup(7, 3);
      s.trainer.groupWeightNorm = grouped;
      s.trainer.replaySteps = false; // counted through dispatch(), which a replayed step skips
      const losses: number[] = [];
      let dispatches = 0;
      const gpu = E.engine().gpu;
      for (let i = 0; i < 5; i++) {
        // Weight norm's own dispatches (the z conditioning also fuses only with the bank's weights).
        dispatches = 0;
        gpu.onDispatch = (spec) => void (spec.entry.startsWith('weight_norm') && dispatches++);
        s.trainer.trainStep();
        gpu.onDispatch = null;
        losses.push((await s.trainer.readMetrics()).loss);
      }
      const params = await Promise.all(s.model.params.tensors().map(async (t) => Float32Array.from(await t.data())));
      release(s);
      return { losses, params, dispatches };
    };
    const alone = await run(false);
    const grouped = await run(true);
    expectClose(grouped.losses, alone.losses, 1e-5, 'losses');
    grouped.params.forEach((p, i) => expectClose(p, alone.params[i], 1e-4, `parameter ${i} after 5 steps`));
    const layers = (() => {
      const s = tinySetup(7, 3);
      const n = s.model.params.weightNorm.size;
      release(s);
      return n;
    })();
    // The trainer packs its parameters (ParamSet.pack), so the bank is one dispatch each way.
    expect(alone.dispatches, `${layers} weight-normed layers alone`).toBe(2 * layers);
    expect(grouped.dispatches, 'the bank').toBe(2);
  });

  it('hierarchical: the same losses and parameters with and without the bank (batch norm, global-norm clipping)', async () => {
    const config = hierConfig('tiny');
    const size = config.imageSize;
    const r = rng(21);
    const set = GpuColourSet.upload({ name: 'noise', count: 8, size, images: Uint8Array.from({ length: 8 * 3 * size * size }, () => Math.floor(r() * 256)), labels: new Uint8Array(8) });
    const run = async (grouped: boolean): Promise<{ losses: number[]; params: Float32Array[] }> => {
      const model = new HierarchicalPixelVae(config);
      const trainer = new HierTrainer(model, set, { batchSize: 4, seed: 3 });
      trainer.groupWeightNorm = grouped;
      try {
        expect(model.params.weightNorm.size, 'weight-normed layers').toBeGreaterThan(2 * E.weightNormGroupSizes().forward);
        const losses: number[] = [];
        for (let i = 0; i < 3; i++) {
          trainer.trainStep();
          losses.push((await trainer.readMetrics()).loss);
        }
        return { losses, params: await Promise.all(model.params.tensors().map(async (t) => Float32Array.from(await t.data()))) };
      } finally {
        trainer.dispose();
        trainer.optimizer.dispose();
        model.dispose();
      }
    };
    try {
      const alone = await run(false);
      const grouped = await run(true);
      expectClose(grouped.losses, alone.losses, 1e-5, 'losses');
      grouped.params.forEach((p, i) => expectClose(p, alone.params[i], 1e-4, `parameter ${i} after 3 steps`));
    } finally {
      set.dispose();
    }
  }, 300_000);

  it('prewarm compiles every kernel of the first steps, the KL warm-up\'s too (no pipeline made inside a step)', async () => {
    const s = tinySetup(8, 10);
    const gpu = E.engine().gpu;
    await s.trainer.prewarm();
    const pipelines: number[] = [gpu.stats().pipelines];
    for (let i = 0; i < 3; i++) {
      s.trainer.trainStep();
      await gpu.sync();
      pipelines.push(gpu.stats().pipelines);
    }
    expect(pipelines, 'pipelines after prewarm and after each of steps 0, 1, 2').toEqual(Array(4).fill(pipelines[0]));
    release(s);
  });
});

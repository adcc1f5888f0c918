import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { AdamReference, movingAverage } from '../src/engine/reference/optim';
import { expectClose, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

/**
 * A small regression, loss = sum((x w^T + b - y)^2): several GPU Adam steps, each checked against a
 * float64 Adam step fed the same gradients from the same starting point.
 */
async function runCase(opts: E.AdamOptions, steps: number, expectClipping: 'value' | 'norm' | 'none', withNullGrad = false): Promise<void> {
  const x = toF32(randomArray([9, 13], 1));
  const target = toF32(randomArray([9, 5], 2));
  const w0 = toF32(randomArray([5, 13], 3));
  const b0 = toF32(randomArray([5], 4));
  const unused0 = toF32(randomArray([3], 5));
  const cpu = new AdamReference(
    { lr: opts.lr ?? 1e-3, beta1: opts.beta1 ?? 0.9, beta2: opts.beta2 ?? 0.999, eps: opts.eps ?? 1e-8, clipValue: opts.clipValue ?? 0, clipGlobalNorm: opts.clipGlobalNorm ?? 0 },
    [w0.data.length, b0.data.length, 3],
  );
  const adam = new E.Adam(opts);
  const w = E.keep(E.param(E.fromArray(w0.data, w0.shape)));
  const b = E.keep(E.param(E.fromArray(b0.data, b0.shape)));
  const unused = E.keep(E.param(E.fromArray(unused0.data, unused0.shape)));
  const params = withNullGrad ? [w, b, unused] : [w, b];
  const xt = E.keep(E.fromArray(x.data, x.shape));
  const yt = E.keep(E.fromArray(target.data, target.shape));
  let sawClipping = false;
  for (let s = 0; s < steps; s++) {
    await E.tidyAsync(async () => {
      const before = await Promise.all(params.map(async (p) => Float64Array.from(await p.data())));
      const loss = E.sum(E.square(E.sub(E.linear(xt, w, b), yt)));
      const grads = E.grad(loss, params);
      const gData = await Promise.all(grads.map(async (g) => (g ? await g.data() : null)));
      const stats0 = E.engine().gpu.stats();
      adam.step(params, grads);
      E.engine().gpu.flush();
      const stats1 = E.engine().gpu.stats();
      if (s > 0) {
        expect(stats1.createdBuffers, 'no buffer created by a later step').toBe(stats0.createdBuffers);
        expect(stats1.liveBuffers, 'no buffer kept by a step').toBe(stats0.liveBuffers);
      }
      const norm = cpu.step(before, gData);
      if (expectClipping === 'value' && gData.some((g) => g && Array.from(g).some((v) => Math.abs(v) > (opts.clipValue ?? Infinity)))) sawClipping = true;
      if (expectClipping === 'norm' && norm > (opts.clipGlobalNorm ?? Infinity)) sawClipping = true;
      const stats = adam.clipStatistics;
      if (stats) {
        const [scale, gpuNorm] = Array.from((await stats.data()).slice(0, 2));
        expect(Math.abs(gpuNorm - norm) / norm).toBeLessThan(1e-5);
        expect(Math.abs(scale - Math.min(1, (opts.clipGlobalNorm ?? 0) / norm))).toBeLessThan(1e-6);
      }
      for (let k = 0; k < params.length; k++) {
        expectClose(await params[k].data(), before[k], 1e-4, `step ${s + 1}, parameter ${k}`);
      }
    });
  }
  if (withNullGrad) expect(Array.from(await unused.data())).toEqual(Array.from(Float32Array.from(unused0.data)));
  if (expectClipping !== 'none') expect(sawClipping, 'clipping was active').toBe(true);
  adam.dispose();
  for (const t of [w, b, unused, xt, yt]) t.dispose();
}

describe('Adam', () => {
  it('matches a float64 Adam step by step', () => runCase({ lr: 0.05 }, 6, 'none'));
  it('with element-wise clipping to [-1, 1] (active)', () => runCase({ lr: 0.05, clipValue: 1 }, 5, 'value'));
  it('with global-norm clipping at 5 (active), norm computed on the GPU', () => runCase({ lr: 0.05, clipGlobalNorm: 5 }, 5, 'norm'));
  it('with both clips, non-default betas, and a parameter without a gradient', () =>
    runCase({ lr: 0.02, beta1: 0.5, beta2: 0.9, eps: 1e-6, clipValue: 2, clipGlobalNorm: 3 }, 4, 'norm', true));
  it('global-norm clipping leaves small gradients alone', () => runCase({ lr: 0.01, clipGlobalNorm: 1e4 }, 3, 'none'));
  it('rejects mismatched gradients', () =>
    E.tidy(() => {
      const adam = new E.Adam();
      const p = E.param(E.zeros([3]));
      expect(() => adam.step([p], [E.zeros([4])])).toThrow(E.ShapeError);
      expect(() => adam.step([p], [])).toThrow(/Adam.step/);
      adam.dispose();
    }));
});

describe('moving average in place', () => {
  it('state += momentum * (x - state)', async () => {
    const s = E.keep(E.fromArray([1, 2, 3, 4, 5], [5]));
    E.tidy(() => E.movingAverageInPlace(s, E.fromArray([11, 2, -3, 4, 0], [5]), 0.25));
    // By hand: 1 + (11 - 1) / 4 = 3.5, 2, 3 + (-3 - 3) / 4 = 1.5, 4, 5 - 5 / 4 = 3.75.
    expectClose(await s.data(), [3.5, 2, 1.5, 4, 3.75], 1e-6, 'ema');
    s.dispose();
  });
  it('matches the float64 reference on random odd-sized state, momentum 0.1', async () => {
    const state = toF32(randomArray([1037], 11));
    const x = toF32(randomArray([1037], 12));
    const s = E.keep(E.fromArray(state.data, [1037]));
    E.tidy(() => E.movingAverageInPlace(s, E.fromArray(x.data, [1037]), 0.1));
    expectClose(await s.data(), movingAverage(state.data, x.data, 0.1), 1e-5, 'ema');
    s.dispose();
  });
});

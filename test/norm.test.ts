import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { batchNormRef, batchNormWithStatsRef, batchStatsRef, weightNormRef } from '../src/engine/reference/norm';
import { checkOp, expectClose, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

describe('weightNorm', () => {
  it('linear weights [out, in]', () =>
    checkOp({ name: 'weightNorm 2-D', inputs: [{ shape: [5, 7] }, { shape: [5] }], gpu: E.weightNorm, ref: weightNormRef }));
  it('conv weights [out, in, kh, kw]', () =>
    checkOp({ name: 'weightNorm 4-D', inputs: [{ shape: [3, 2, 5, 5] }, { shape: [3] }], gpu: E.weightNorm, ref: weightNormRef, seed: 3 }));
  it('rejects a gain of the wrong length', () =>
    E.tidy(() => {
      expect(() => E.weightNorm(E.ones([4, 3]), E.ones([3]))).toThrow(/weightNorm.*\[4,3\].*\[3\]/);
    }));
});

describe('batchNorm', () => {
  const eps = 1e-2;
  it('training, [N,C,H,W]: forward and backward through the batch statistics', () =>
    checkOp({
      name: 'batchNorm train 4-D',
      inputs: [{ shape: [3, 4, 5, 3] }, { shape: [4] }, { shape: [4] }],
      gpu: (x, g, b) => E.batchNorm(x, g, b, { training: true, eps }),
      ref: (x, g, b) => batchNormRef(x, g, b, eps),
    }));
  it('training, [N,C]', () =>
    checkOp({
      name: 'batchNorm train 2-D',
      inputs: [{ shape: [7, 5] }, { shape: [5] }, { shape: [5] }],
      gpu: (x, g, b) => E.batchNorm(x, g, b, { training: true, eps: 1e-5 }),
      ref: (x, g, b) => batchNormRef(x, g, b, 1e-5),
      seed: 2,
    }));

  it('training with more values per channel than a workgroup has threads, in one dispatch each way', async () => {
    await checkOp({
      name: 'batchNorm train 495 per channel',
      inputs: [{ shape: [5, 3, 9, 11] }, { shape: [3] }, { shape: [3] }],
      gpu: (x, g, b) => E.batchNorm(x, g, b, { training: true, eps }),
      ref: (x, g, b) => batchNormRef(x, g, b, eps),
      seed: 6,
      fdSamples: 12,
    });
    const gpu = E.engine().gpu;
    const entries: string[] = [];
    E.tidy(() => {
      const x = E.param(E.fill([2, 3, 4, 4], 0.5));
      const g = E.param(E.ones([3]));
      const b = E.param(E.zeros([3]));
      const running = { mean: E.zeros([3]), var: E.ones([3]) };
      const y = E.batchNorm(x, g, b, { training: true, eps, running });
      const seed = E.fromArray(Array.from({ length: y.size }, (_, i) => Math.sin(i)), y.shape);
      gpu.onDispatch = (spec) => void entries.push(spec.entry);
      try {
        E.grad(y, [x, g, b], seed);
      } finally {
        gpu.onDispatch = null;
      }
    });
    expect(entries).toEqual(['batch_norm_backward']);
  });

  it('training with a residual added (a residual block\'s sum): its gradient is the output\'s', () =>
    checkOp({
      name: 'batchNorm train + residual',
      inputs: [{ shape: [3, 4, 5, 3] }, { shape: [4] }, { shape: [4] }, { shape: [3, 4, 5, 3] }],
      gpu: (x, g, b, r) => E.batchNorm(x, g, b, { training: true, eps, residual: r }),
      ref: (x, g, b, r) => {
        const y = batchNormRef(x, g, b, eps);
        return { shape: y.shape, data: y.data.map((v, i) => v + r.data[i]) };
      },
      seed: 8,
    }));

  const runMean = toF32(randomArray([4], 50));
  const runVar = toF32(randomArray([4], 51, 'positive'));
  it('inference uses the running statistics', () =>
    checkOp({
      name: 'batchNorm inference',
      inputs: [{ shape: [2, 4, 3, 5] }, { shape: [4] }, { shape: [4] }],
      gpu: (x, g, b) =>
        E.batchNorm(x, g, b, { training: false, eps, running: { mean: E.fromArray(runMean.data, [4]), var: E.fromArray(runVar.data, [4]) } }),
      ref: (x, g, b) => batchNormWithStatsRef(x, g, b, runMean.data, runVar.data, eps),
    }));

  it('training updates the running statistics in place', async () => {
    const x = toF32(randomArray([3, 4, 5, 3], 9));
    const stats = batchStatsRef(x);
    const momentum = 0.3;
    const mean = E.keep(E.fromArray(runMean.data, [4]));
    const variance = E.keep(E.fromArray(runVar.data, [4]));
    const out = await E.tidyAsync(async () => {
      const y = E.batchNorm(E.fromArray(x.data, x.shape), null, null, { training: true, eps, running: { mean, var: variance }, momentum });
      return y.data();
    });
    const ones = { shape: [4], data: new Float64Array(4).fill(1) };
    const zeros = { shape: [4], data: new Float64Array(4) };
    expectClose(out, batchNormRef(x, ones, zeros, eps).data, 1e-4, 'output without gamma/beta');
    expectClose(await mean.data(), runMean.data.map((m, k) => (1 - momentum) * m + momentum * stats.mean[k]), 1e-5, 'running mean');
    expectClose(await variance.data(), runVar.data.map((v, k) => (1 - momentum) * v + momentum * stats.var[k]), 1e-5, 'running var');
    // momentum 1 overwrites with the batch statistics (the reference's ordinary training steps)
    await E.tidyAsync(async () => E.batchNorm(E.fromArray(x.data, x.shape), null, null, { training: true, running: { mean, var: variance }, momentum: 1 }).data());
    expectClose(await mean.data(), stats.mean, 1e-5, 'overwritten mean');
    expectClose(await variance.data(), stats.var, 1e-5, 'overwritten var');
    mean.dispose();
    variance.dispose();
  });

  it('rejects bad shapes and inference without statistics', () =>
    E.tidy(() => {
      const x = E.zeros([2, 3, 4, 4]);
      expect(() => E.batchNorm(x, E.ones([4]), null, { training: true })).toThrow(/batchNorm.*\[2,3,4,4\].*\[4\]/);
      expect(() => E.batchNorm(E.zeros([2, 3, 4]), null, null, { training: true })).toThrow(E.ShapeError);
      expect(() => E.batchNorm(x, null, null, { training: false })).toThrow(/running/);
    }));
});

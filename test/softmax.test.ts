import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import * as R from '../src/engine/reference/softmax';
import { checkOp } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

const labels = (k: number) => (r: () => number) => Math.floor(r() * k);

describe('softmax and logSoftmax', () => {
  it('softmax, last axis', () =>
    checkOp({ name: 'softmax', inputs: [{ shape: [5, 7, 9] }], gpu: (x) => E.softmax(x, -1), ref: (x) => R.softmax(x, -1) }));
  it('softmax, middle axis', () =>
    checkOp({ name: 'softmax', inputs: [{ shape: [3, 11, 5] }], gpu: (x) => E.softmax(x, 1), ref: (x) => R.softmax(x, 1) }));
  it('logSoftmax, last axis', () =>
    checkOp({ name: 'logSoftmax', inputs: [{ shape: [5, 13] }], gpu: (x) => E.logSoftmax(x), ref: (x) => R.logSoftmax(x, -1) }));
  it('logSoftmax, axis 1 of rank 5', () =>
    checkOp({ name: 'logSoftmax', inputs: [{ shape: [2, 7, 3, 3, 5] }], gpu: (x) => E.logSoftmax(x, 1), ref: (x) => R.logSoftmax(x, 1) }));
  it('logSoftmax and softmax stay finite for logits ~1e3', () =>
    checkOp({
      name: 'logSoftmax 1e3',
      inputs: [{ shape: [4, 9], fill: (r) => (r() - 0.5) * 2000 }],
      gpu: (x) => E.add(E.logSoftmax(x, 1), E.softmax(x, 1)),
      ref: (x) => {
        const a = R.logSoftmax(x, 1);
        const b = R.softmax(x, 1);
        return { shape: a.shape, data: a.data.map((v, i) => v + b.data[i]) };
      },
      h: 1e-3,
    }));
});

describe('softmax cross-entropy', () => {
  it('K = 256 on axis 1 of [B, 256, C, H, W]', () =>
    checkOp({
      name: 'xent K=256',
      inputs: [{ shape: [2, 256, 3, 3, 5] }, { shape: [2, 3, 3, 5], dtype: 'u32', fill: labels(256) }],
      gpu: (x, t) => E.softmaxCrossEntropy(x, t, 1),
      ref: (x, t) => R.softmaxCrossEntropy(x, t, 1),
      fdSamples: 64,
    }));
  it('K = 5 on axis 1 of a rank-5 tensor', () =>
    checkOp({
      name: 'xent K=5',
      inputs: [{ shape: [3, 5, 1, 7, 3] }, { shape: [3, 1, 7, 3], dtype: 'u32', fill: labels(5) }],
      gpu: (x, t) => E.softmaxCrossEntropy(x, t, 1),
      ref: (x, t) => R.softmaxCrossEntropy(x, t, 1),
    }));
  it('K = 256 on the last axis', () =>
    checkOp({
      name: 'xent last axis',
      inputs: [{ shape: [3, 7, 256] }, { shape: [3, 7], dtype: 'u32', fill: labels(256) }],
      gpu: (x, t) => E.softmaxCrossEntropy(x, t, -1),
      ref: (x, t) => R.softmaxCrossEntropy(x, t, 2),
    }));
  it('logits of magnitude 1e3 stay finite, gradients included', async () => {
    await checkOp({
      name: 'xent 1e3',
      inputs: [{ shape: [5, 17], fill: (r) => (r() - 0.5) * 2000 }, { shape: [5], dtype: 'u32', fill: labels(17) }],
      gpu: (x, t) => E.softmaxCrossEntropy(x, t, 1),
      ref: (x, t) => R.softmaxCrossEntropy(x, t, 1),
      h: 1e-3,
    });
    // The target is the max (loss log(1 + e^-1)) or 1e3 below it (loss 1e3 + log 2): exact and finite.
    const x = E.param(E.fromArray([1000, -1000, 999, 0, 1000, 1000], [2, 3]));
    const t = E.fromArray([0, 0], [2], 'u32');
    const loss = E.softmaxCrossEntropy(x, t);
    const got = Array.from(await loss.data());
    expect(got[0]).toBeCloseTo(Math.log1p(Math.exp(-1)), 5);
    expect(got[1]).toBeCloseTo(1000 + Math.log(2), 2);
    const [g] = E.grad(E.sum(loss), [x]);
    const gd = Array.from(await g!.data());
    expect(gd.every(Number.isFinite)).toBe(true);
    expect(gd[0]).toBeCloseTo(1 / (1 + Math.exp(-1)) - 1, 5);
    expect(gd[3]).toBeCloseTo(-1, 5);
    expect(gd[4]).toBeCloseTo(0.5, 5);
  });
  it('matches -logSoftmax picked at the target (hand-computed case)', async () => {
    // logits [1, 2, 3]: lse = 3 + log(1 + e^-1 + e^-2) = 3.40760596
    const loss = E.softmaxCrossEntropy(E.fromArray([1, 2, 3], [1, 3]), E.fromArray([0], [1], 'u32'));
    expect(await loss.item()).toBeCloseTo(2.40760596, 5);
  });
});

describe('softmax errors name the op', () => {
  it('throws ShapeError', () => {
    const x = E.zeros([2, 5, 3]);
    expect(() => E.softmax(x, 3)).toThrow(/softmax.*\[2,5,3\]/);
    expect(() => E.logSoftmax(x, -4)).toThrow(/logSoftmax/);
    expect(() => E.softmaxCrossEntropy(x, E.fromArray([0, 0], [2], 'u32'), 1)).toThrow(/softmaxCrossEntropy.*\[2,3\].*\[2,5,3\]/);
    expect(() => E.softmaxCrossEntropy(x, E.zeros([2, 3]), 1)).toThrow(/softmaxCrossEntropy.*f32/);
    expect(() => E.softmaxCrossEntropy(E.fromArray([0, 1], [2], 'u32'), E.fromArray([0], [1], 'u32'))).toThrow(/softmaxCrossEntropy/);
  });
});

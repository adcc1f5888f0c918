import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import * as R from '../src/engine/reference/elementwise';
import { checkOp } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

describe('binary ops with broadcasting', () => {
  const cases: [string, (a: E.Tensor, b: E.Tensor) => E.Tensor, (a: number, b: number) => number][] = [
    ['add', E.add, R.BINARY.add],
    ['sub', E.sub, R.BINARY.sub],
    ['mul', E.mul, R.BINARY.mul],
    ['maximum', E.maximum, R.BINARY.maximum],
  ];
  for (const [name, gpu, f] of cases) {
    it(`${name}: same shape, odd size`, () => checkOp({ name, inputs: [{ shape: [3, 7, 5] }, { shape: [3, 7, 5] }], gpu, ref: R.binary(f) }));
    it(`${name}: broadcast both ways`, () =>
      checkOp({ name, inputs: [{ shape: [3, 1, 5] }, { shape: [4, 1] }], gpu, ref: R.binary(f), seed: 2 }));
  }
  it('div (positive denominators)', () =>
    checkOp({ name: 'div', inputs: [{ shape: [5, 3] }, { shape: [3], fill: 'positive' }], gpu: E.div, ref: R.binary(R.BINARY.div) }));
});

describe('unary ops', () => {
  const cases: [string, (x: E.Tensor) => E.Tensor, (x: number) => number, ('normal' | 'positive')?][] = [
    ['neg', E.neg, R.UNARY.neg],
    ['exp', E.exp, R.UNARY.exp],
    ['log', E.log, R.UNARY.log, 'positive'],
    ['sigmoid', E.sigmoid, R.UNARY.sigmoid],
    ['tanh', E.tanh, R.UNARY.tanh],
    ['relu', E.relu, R.UNARY.relu],
    ['elu', E.elu, R.UNARY.elu],
    ['softplus', E.softplus, R.UNARY.softplus],
    ['softsign', E.softsign, R.UNARY.softsign],
    ['sqrt', E.sqrt, R.UNARY.sqrt, 'positive'],
    ['square', E.square, R.UNARY.square],
    ['abs', E.abs, R.UNARY.abs],
    ['rsqrt', (x) => E.rsqrt(x, 0.01), R.rsqrt(0.01), 'positive'],
    ['affine', (x) => E.affine(x, -1.5, 0.25), R.affine(-1.5, 0.25)],
    ['clamp', (x) => E.clamp(x, -0.5, 0.7), R.clamp(-0.5, 0.7)],
    ['powScalar', (x) => E.powScalar(x, 1.7), R.powScalar(1.7), 'positive'],
  ];
  for (const [name, gpu, f, fill] of cases) {
    it(name, () => checkOp({ name, inputs: [{ shape: [2, 3, 11], fill: fill ?? 'normal' }], gpu, ref: R.unary(f) }));
  }
  it('sigmoid, tanh and softplus stay finite for large inputs', () =>
    checkOp({
      name: 'saturating',
      inputs: [{ shape: [9], fill: (_r, i) => [-120, -60, -20, -1, 0, 1, 20, 60, 120][i], grad: false }],
      gpu: (x) => E.add(E.add(E.sigmoid(x), E.tanh(x)), E.softplus(x)),
      ref: R.unary((v) => R.UNARY.sigmoid(v) + R.UNARY.tanh(v) + R.UNARY.softplus(v)),
    }));
});

describe('reductions', () => {
  it('sum over all axes', () => checkOp({ name: 'sum', inputs: [{ shape: [3, 5, 7] }], gpu: (x) => E.sum(x), ref: (x) => R.sum(x, [0, 1, 2]) }));
  it('sum over middle axis', () => checkOp({ name: 'sum', inputs: [{ shape: [3, 5, 7] }], gpu: (x) => E.sum(x, 1), ref: (x) => R.sum(x, [1]) }));
  it('sum over first and last, keepDims', () =>
    checkOp({ name: 'sum', inputs: [{ shape: [3, 5, 7] }], gpu: (x) => E.sum(x, [0, 2], true), ref: (x) => R.sum(x, [0, 2], true) }));
  it('sum of a long axis (many elements per workgroup)', () =>
    checkOp({ name: 'sum', inputs: [{ shape: [2, 3001] }], gpu: (x) => E.sum(x, 1), ref: (x) => R.sum(x, [1]) }));
  it('mean', () =>
    checkOp({
      name: 'mean',
      inputs: [{ shape: [4, 3, 5] }],
      gpu: (x) => E.mean(x, [0, 2]),
      ref: (x) => R.mean(x, [0, 2]),
    }));
});

describe('Bernoulli cross-entropy from logits', () => {
  it('matches softplus(l) - x l, gradients included', () =>
    checkOp({
      name: 'bce',
      inputs: [{ shape: [3, 1, 5, 7] }, { shape: [3, 1, 5, 7], fill: 'binary', grad: false }],
      gpu: E.bceWithLogits,
      ref: R.binary(R.BINARY.bceWithLogits),
    }));
});

describe('sigmoidTanh (a gate from two tensors)', () => {
  const sigmoidTanhRef = R.binary((a, b) => (1 / (1 + Math.exp(-a))) * Math.tanh(b));
  it('forward against float64, backward against finite differences, odd sizes', () =>
    checkOp({ name: 'sigmoidTanh', inputs: [{ shape: [3, 5, 7] }, { shape: [3, 5, 7] }], gpu: E.sigmoidTanh, ref: sigmoidTanhRef }));
  it('large inputs saturate without NaN; a NaN input stays NaN', async () => {
    const y = await E.tidyAsync(async () => E.sigmoidTanh(E.fromArray([60, -60, 0.5, Number.NaN], [4]), E.fromArray([80, 80, -90, 1], [4])).data());
    expect(y[0]).toBe(1);
    expect(y[1]).toBeGreaterThanOrEqual(0);
    expect(y[1]).toBeLessThan(1e-20);
    expect(Math.abs(y[2] + 1 / (1 + Math.exp(-0.5)))).toBeLessThan(1e-6);
    expect(Number.isNaN(y[3])).toBe(true);
  });
  it('rejects tensors of different shapes, naming the op', () =>
    E.tidy(() => {
      expect(() => E.sigmoidTanh(E.zeros([2, 3]), E.zeros([3, 2]))).toThrow(/sigmoidTanh.*\[2,3\].*\[3,2\]/);
    }));
});

import { beforeAll, describe, it } from 'vitest';
import * as E from '../src/engine';
import { broadcastMap, map, sumAxes, sigmoid, softplus, type NDArray } from '../src/engine/reference/ndarray';
import { checkOp } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

const bin = (f: (a: number, b: number) => number) => (a: NDArray, b: NDArray) => broadcastMap([a, b], f);

describe('binary ops with broadcasting', () => {
  const cases: [string, (a: E.Tensor, b: E.Tensor) => E.Tensor, (a: number, b: number) => number][] = [
    ['add', E.add, (a, b) => a + b],
    ['sub', E.sub, (a, b) => a - b],
    ['mul', E.mul, (a, b) => a * b],
    ['maximum', E.maximum, (a, b) => Math.max(a, b)],
  ];
  for (const [name, gpu, f] of cases) {
    it(`${name}: same shape, odd size`, () => checkOp({ name, inputs: [{ shape: [3, 7, 5] }, { shape: [3, 7, 5] }], gpu, ref: bin(f) }));
    it(`${name}: broadcast both ways`, () =>
      checkOp({ name, inputs: [{ shape: [3, 1, 5] }, { shape: [4, 1] }], gpu, ref: bin(f), seed: 2 }));
  }
  it('div (positive denominators)', () =>
    checkOp({ name: 'div', inputs: [{ shape: [5, 3] }, { shape: [3], fill: 'positive' }], gpu: E.div, ref: bin((a, b) => a / b) }));
});

describe('unary ops', () => {
  const cases: [string, (x: E.Tensor) => E.Tensor, (x: number) => number, ('normal' | 'positive')?][] = [
    ['neg', E.neg, (x) => -x],
    ['exp', E.exp, Math.exp],
    ['log', E.log, Math.log, 'positive'],
    ['sigmoid', E.sigmoid, sigmoid],
    ['tanh', E.tanh, Math.tanh],
    ['relu', E.relu, (x) => Math.max(x, 0)],
    ['elu', E.elu, (x) => (x > 0 ? x : Math.exp(x) - 1)],
    ['softplus', E.softplus, softplus],
    ['softsign', E.softsign, (x) => x / (1 + Math.abs(x))],
    ['sqrt', E.sqrt, Math.sqrt, 'positive'],
    ['square', E.square, (x) => x * x],
    ['abs', E.abs, Math.abs],
    ['rsqrt', (x) => E.rsqrt(x, 0.01), (x) => 1 / Math.sqrt(x + 0.01), 'positive'],
    ['affine', (x) => E.affine(x, -1.5, 0.25), (x) => -1.5 * x + 0.25],
    ['clamp', (x) => E.clamp(x, -0.5, 0.7), (x) => Math.min(Math.max(x, -0.5), 0.7)],
    ['powScalar', (x) => E.powScalar(x, 1.7), (x) => x ** 1.7, 'positive'],
  ];
  for (const [name, gpu, f, fill] of cases) {
    it(name, () => checkOp({ name, inputs: [{ shape: [2, 3, 11], fill: fill ?? 'normal' }], gpu, ref: (x) => map(x, f) }));
  }
  it('sigmoid, tanh and softplus stay finite for large inputs', () =>
    checkOp({
      name: 'saturating',
      inputs: [{ shape: [9], fill: (_r, i) => [-120, -60, -20, -1, 0, 1, 20, 60, 120][i], grad: false }],
      gpu: (x) => E.add(E.add(E.sigmoid(x), E.tanh(x)), E.softplus(x)),
      ref: (x) => map(x, (v) => sigmoid(v) + Math.tanh(v) + softplus(v)),
    }));
});

describe('reductions', () => {
  it('sum over all axes', () => checkOp({ name: 'sum', inputs: [{ shape: [3, 5, 7] }], gpu: (x) => E.sum(x), ref: (x) => sumAxes(x, [0, 1, 2]) }));
  it('sum over middle axis', () => checkOp({ name: 'sum', inputs: [{ shape: [3, 5, 7] }], gpu: (x) => E.sum(x, 1), ref: (x) => sumAxes(x, [1]) }));
  it('sum over first and last, keepDims', () =>
    checkOp({ name: 'sum', inputs: [{ shape: [3, 5, 7] }], gpu: (x) => E.sum(x, [0, 2], true), ref: (x) => sumAxes(x, [0, 2], true) }));
  it('sum of a long axis (many elements per workgroup)', () =>
    checkOp({ name: 'sum', inputs: [{ shape: [2, 3001] }], gpu: (x) => E.sum(x, 1), ref: (x) => sumAxes(x, [1]) }));
  it('mean', () =>
    checkOp({
      name: 'mean',
      inputs: [{ shape: [4, 3, 5] }],
      gpu: (x) => E.mean(x, [0, 2]),
      ref: (x) => map(sumAxes(x, [0, 2]), (v) => v / 20),
    }));
});

describe('Bernoulli cross-entropy from logits', () => {
  it('matches softplus(l) - x l, gradients included', () =>
    checkOp({
      name: 'bce',
      inputs: [{ shape: [3, 1, 5, 7] }, { shape: [3, 1, 5, 7], fill: 'binary', grad: false }],
      gpu: E.bceWithLogits,
      ref: bin((l, x) => softplus(l) - x * l),
    }));
});

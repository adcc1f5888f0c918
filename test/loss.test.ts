import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { nd, softplus, type NDArray } from '../src/engine/reference/ndarray';
import { checkOp } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

function refNll(l: NDArray, x: NDArray): NDArray {
  const b = l.shape[0];
  const per = l.data.length / b;
  const out = nd([b]);
  for (let i = 0; i < l.data.length; i++) out.data[Math.floor(i / per)] += softplus(l.data[i]) - x.data[i] * l.data[i];
  return out;
}

describe('bernoulliNll', () => {
  it('matches the per-image sum of softplus(l) - x l, with its gradient', () =>
    checkOp({ name: 'bernoulliNll', inputs: [{ shape: [5, 1, 7, 9] }, { shape: [5, 1, 7, 9], fill: 'binary', grad: false }], gpu: E.bernoulliNll, ref: refNll }));
  it('stays finite for large logits', () =>
    checkOp({
      name: 'bernoulliNll saturating',
      inputs: [{ shape: [2, 6], fill: (_r, i) => [-90, -30, 0, 30, 90, 3][i % 6] * (i < 6 ? 1 : -1) }, { shape: [2, 6], fill: 'binary', grad: false }],
      gpu: E.bernoulliNll,
      ref: refNll,
    }));
  it('refuses mismatched shapes, naming them', () => {
    expect(() => E.bernoulliNll(E.zeros([2, 3]), E.zeros([2, 4]))).toThrow(/bernoulliNll.*\[2,3\].*\[2,4\]/);
  });
});

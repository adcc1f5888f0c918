import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { bernoulliNll as refNll } from '../src/engine/reference/loss';
import { checkOp } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

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

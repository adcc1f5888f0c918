// The paired linear op (a gated PixelCNN's z conditioning): forward against the float64 reference,
// backward against finite differences of it, on odd sizes; with and without biases; and the same
// values as the two linear layers and concat it replaces.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { pairedLinearRef } from '../src/engine/reference/matmul';
import { checkOp, expectClose, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

describe('pairedLinear', () => {
  for (const [n, k, p] of [[5, 7, 3], [1, 2, 1], [13, 16, 9], [33, 3, 17]]) {
    it(`x [${n},${k}], maps [${p},${k}] with biases`, () =>
      checkOp({
        name: `pairedLinear ${n}x${k}x${p}`,
        inputs: [{ shape: [n, k] }, { shape: [p, k] }, { shape: [p, k] }, { shape: [p] }, { shape: [p] }],
        gpu: (x, a, b, ba, bb) => E.pairedLinear(x, a, b, ba, bb),
        ref: (x, a, b, ba, bb) => pairedLinearRef(x, a, b, ba, bb),
        seed: n + k + p,
      }));
  }
  it('without biases', () =>
    checkOp({
      name: 'pairedLinear no bias',
      inputs: [{ shape: [6, 5] }, { shape: [4, 5] }, { shape: [4, 5] }],
      gpu: (x, a, b) => E.pairedLinear(x, a, b),
      ref: (x, a, b) => pairedLinearRef(x, a, b),
    }));
  it('only some inputs want gradients: the rest are null and the wanted ones still match', async () => {
    const x = toF32(randomArray([7, 5], 3));
    const a = toF32(randomArray([3, 5], 4));
    const b = toF32(randomArray([3, 5], 5));
    const ba = toF32(randomArray([3], 6));
    const bb = toF32(randomArray([3], 7));
    await E.tidyAsync(async () => {
      const xt = E.param(E.fromArray(x.data, x.shape));
      const at = E.fromArray(a.data, a.shape);
      const bt = E.fromArray(b.data, b.shape);
      const bat = E.param(E.fromArray(ba.data, ba.shape));
      const bbt = E.fromArray(bb.data, bb.shape);
      const y = E.pairedLinear(xt, at, bt, bat, bbt);
      const [gx, ga, gba] = E.grad(E.sum(y), [xt, at, bat]);
      expect(ga).toBeNull();
      // d sum(y) / d x[n, k] = sum over c of a[c, k] + b[c, k]; d / d aBias[c] = N.
      const wantX = new Float64Array(7 * 5);
      for (let i = 0; i < 7; i++) for (let kk = 0; kk < 5; kk++) for (let c = 0; c < 3; c++) wantX[i * 5 + kk] += a.data[c * 5 + kk] + b.data[c * 5 + kk];
      expectClose(await gx!.data(), wantX, 1e-5, 'dx');
      expectClose(await gba!.data(), [7, 7, 7], 1e-6, 'd aBias');
    });
  });
  it('equals two linear layers interleaved by concat (what it replaces)', async () => {
    const x = toF32(randomArray([9, 16], 11));
    const a = toF32(randomArray([12, 16], 12));
    const b = toF32(randomArray([12, 16], 13));
    const ba = toF32(randomArray([12], 14));
    const bb = toF32(randomArray([12], 15));
    await E.tidyAsync(async () => {
      const [xt, at, bt, bat, bbt] = [x, a, b, ba, bb].map((t) => E.fromArray(t.data, t.shape));
      const fused = await E.pairedLinear(xt, at, bt, bat, bbt).data();
      const ya = E.linear(xt, at, bat).view([9, 12, 1]);
      const yb = E.linear(xt, bt, bbt).view([9, 12, 1]);
      const old = await E.concat([ya, yb], 2).view([9, 24]).data();
      expectClose(fused, old, 1e-5, 'fused vs linear + concat');
    });
  });
  it('rejects mismatched shapes with a message naming them', () => {
    E.tidy(() => {
      const x = E.fill([4, 5], 1);
      expect(() => E.pairedLinear(x, E.fill([3, 5], 1), E.fill([2, 5], 1))).toThrow(/pairedLinear.*want \[P, K\]/);
      expect(() => E.pairedLinear(x, E.fill([3, 5], 1), E.fill([3, 5], 1), E.fill([3], 0))).toThrow(/biases/);
    });
  });
});

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

describe('gradient accumulation in the op (the tape passes the prior)', () => {
  it('z used by several paired maps and another op: the same gradient as plain sums, and no separate adds', async () => {
    const z = toF32(randomArray([6, 5], 21));
    const maps = [0, 1, 2].map((i) => [randomArray([4, 5], 30 + i), randomArray([4, 5], 40 + i)].map(toF32));
    const seeds = [0, 1, 2].map((i) => toF32(randomArray([6, 8], 50 + i)));
    await E.tidyAsync(async () => {
      const zt = E.param(E.fromArray(z.data, z.shape));
      // sum_i <seed_i, pairedLinear_i(z)> + sum(z * z): d/dz = sum_i dy_i-weighted maps + 2 z.
      const terms = maps.map(([a, b], i) => E.sum(E.mul(E.pairedLinear(zt, E.fromArray(a.data, a.shape), E.fromArray(b.data, b.shape)), E.fromArray(seeds[i].data, seeds[i].shape))));
      const total = E.add(E.add(E.add(terms[0], terms[1]), terms[2]), E.sum(E.mul(zt, zt)));
      const gpu = E.engine().gpu;
      let adds = 0;
      gpu.onDispatch = (spec, _buffers, params) => {
        if (spec.name === 'elementwise.wgsl' && spec.constants?.OP === 0 && params[0] === z.data.length) adds += 1;
      };
      const [gz] = E.grad(total, [zt]);
      const got = await gz!.data();
      gpu.onDispatch = null;
      const want = new Float64Array(30);
      for (let n = 0; n < 6; n++) {
        for (let k = 0; k < 5; k++) {
          let s = 2 * z.data[n * 5 + k];
          maps.forEach(([a, b], i) => {
            for (let c = 0; c < 4; c++) s += seeds[i].data[n * 8 + 2 * c] * a.data[c * 5 + k] + seeds[i].data[n * 8 + 2 * c + 1] * b.data[c * 5 + k];
          });
          want[n * 5 + k] = s;
        }
      }
      expectClose(got, want, 1e-5, 'dz');
      // mul(z, z) hands z two gradients, added to what z has (at most 2 adds of z's size).
      expect(adds).toBeLessThanOrEqual(2);
      // The paired maps alone: each adds z's gradient so far in its own kernel, so no add at all.
      adds = 0;
      gpu.onDispatch = (spec, _buffers, params) => {
        if (spec.name === 'elementwise.wgsl' && spec.constants?.OP === 0 && params[0] === z.data.length) adds += 1;
      };
      const [gzMaps] = E.grad(E.add(E.add(terms[0], terms[1]), terms[2]), [zt]);
      const gotMaps = await gzMaps!.data();
      gpu.onDispatch = null;
      expect(adds).toBe(0);
      expectClose(gotMaps, want.map((w, i) => w - 2 * z.data[i]), 1e-5, 'dz, maps only');
    });
  });
});

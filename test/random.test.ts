import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import * as R from '../src/engine/reference/random';
import { expectClose } from './support/check';
import { useGpu } from './support/gpu';

// The reference (src/engine/reference/random.ts) is a float-free Philox4x32-10 in JS (BigInt products),
// checked here against the published known-answer vectors of Random123, then used to check the GPU's
// integers bit for bit and its uniforms, normals and coins against the float64 maps of those integers.
const philox = R.philox4x32;

beforeAll(useGpu);

async function read(t: E.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

describe('Philox4x32-10', () => {
  it('the JS reference matches the Random123 known-answer vectors', () => {
    expect(philox([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    expect(philox([-1, -1, -1, -1], [-1, -1])).toEqual([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    expect(philox([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])).toEqual([
      0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1,
    ]);
  });

  it('GPU bits equal the reference, for 64-bit seeds and offsets', async () => {
    const seed = 2 ** 40 + 12345; // words [12345, 256]
    const offset = 2 ** 33 + 7; // words [7, 2]
    const bits = await E.tidyAsync(async () => E.randomBits([3, 11], seed, offset).data());
    expect(bits).toBeInstanceOf(Uint32Array);
    const want: number[] = [];
    for (let t = 0; t < 9; t++) want.push(...philox([t, 0, 7, 2], [12345, 256]));
    expect(Array.from(bits)).toEqual(want.slice(0, 33));
    const pair = await E.tidyAsync(async () => E.randomBits([5], [12345, 256], [7, 2]).data());
    expect(Array.from(pair)).toEqual(want.slice(0, 5));
  });
});

describe('uniforms, normals and coins against the float64 reference', () => {
  const shape = [7, 13]; // 91 elements: a part-filled last block
  it('uniforms are the reference values exactly (24-bit multiples of 2^-24)', async () => {
    const u = await E.tidyAsync(() => read(E.randomUniform(shape, 2 ** 35 + 3, 17)));
    expect(Array.from(u)).toEqual(Array.from(R.randomUniform(91, 2 ** 35 + 3, 17)));
  });
  it('normals equal the float64 Box-Muller of the same integers to float32 rounding', async () => {
    const n = 100_003;
    const z = await E.tidyAsync(() => read(E.randomNormal([n], [5, 9], [1, 2])));
    const want = R.randomNormal(n, [5, 9], [1, 2]);
    // WGSL's log, cos and sin are not correctly rounded: the largest difference measured on lavapipe
    // over 100003 draws was 8.9e-6 (in the far tail, where log(u) of a tiny u amplifies rounding).
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(z[i] - want[i]));
    expect(worst).toBeLessThan(3e-5);
    expectClose(z.subarray(0, 91), want.subarray(0, 91), 2e-5, 'the first 91 normals');
    expect(Math.max(...Array.from(want, Math.abs))).toBeGreaterThan(4); // the tail is exercised
  });
  it('coins are the reference coins exactly, for p at 0, 1, and spread between', async () => {
    const p = Float32Array.from({ length: 91 }, (_, i) => (i % 13 === 0 ? 0 : i % 13 === 1 ? 1 : (i % 13) / 13));
    const coins = await E.tidyAsync(() => read(E.bernoulli(E.fromArray(p, shape), 31, 4)));
    expect(Array.from(coins)).toEqual(Array.from(R.bernoulli(p, 31, 4)));
  });
});

describe('distributions', () => {
  const n = 100_003; // not a multiple of 4
  it('normals: mean 0, variance 1, light tails', async () => {
    const z = await E.tidyAsync(() => read(E.randomNormal([n], 42)));
    let s = 0;
    let s2 = 0;
    let s4 = 0;
    for (const v of z) {
      expect(Number.isFinite(v)).toBe(true);
      s += v;
      s2 += v * v;
      s4 += v ** 4;
    }
    const mean = s / n;
    const variance = s2 / n - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(variance - 1)).toBeLessThan(0.03);
    expect(Math.abs(s4 / n - 3)).toBeLessThan(0.15); // kurtosis of a Gaussian
    expect(z[n - 1]).not.toBe(0); // the tail block is written
  });

  it('uniforms: in [0, 1), mean 1/2, variance 1/12', async () => {
    const u = await E.tidyAsync(() => read(E.randomUniform([7, 14287], 9, 3)));
    let s = 0;
    let s2 = 0;
    let lo = 1;
    let hi = 0;
    for (const v of u) {
      s += v;
      s2 += v * v;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const count = u.length;
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    expect(Math.abs(s / count - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(s2 / count - (s / count) ** 2 - 1 / 12)).toBeLessThan(0.003);
  });

  it('Bernoulli frequencies follow a varied p map, element by element', async () => {
    const pixels = 50;
    const draws = 2000;
    // Exact 0 and 1, extremes near them, then a ramp over (0, 1).
    const pMap = Float32Array.from({ length: pixels }, (_, i) => (i < 5 ? [0, 1, 0.5, 0.03, 0.97][i] : (i - 4) / 47));
    const counts = new Float64Array(pixels);
    await E.tidyAsync(async () => {
      // One tensor of draws x pixels: p broadcast by tiling.
      const tiled = new Float32Array(draws * pixels);
      for (let d = 0; d < draws; d++) tiled.set(pMap, d * pixels);
      const x = await read(E.bernoulli(E.fromArray(tiled, [draws, pixels]), 77, 5));
      for (let i = 0; i < x.length; i++) {
        expect(x[i] === 0 || x[i] === 1).toBe(true);
        counts[i % pixels] += x[i];
      }
    });
    for (let i = 0; i < pixels; i++) {
      const p = pMap[i];
      const freq = counts[i] / draws;
      const sd = Math.sqrt((p * (1 - p)) / draws);
      if (p === 0 || p === 1) expect(freq).toBe(p);
      else expect(Math.abs(freq - p), `pixel ${i}, p=${p}, got ${freq}`).toBeLessThan(5 * sd + 1e-9);
    }
  });
});

describe('reproducibility', () => {
  it('same seed and offset reproduce exactly; other seeds and offsets differ', async () => {
    const [a, b, c, d, e] = await E.tidyAsync(async () => {
      const shape = [9, 13];
      return Promise.all([
        read(E.randomNormal(shape, 123, 4)),
        read(E.randomNormal(shape, 123, 4)),
        read(E.randomNormal(shape, 124, 4)),
        read(E.randomNormal(shape, 123, 5)),
        read(E.randomNormal(shape, [123, 1], 4)),
      ]);
    });
    expect(Array.from(b)).toEqual(Array.from(a));
    for (const other of [c, d, e]) {
      const same = other.filter((v, i) => v === a[i]).length;
      expect(same).toBeLessThan(3);
    }
  });

  it('a prefix of a larger draw equals the smaller draw (counters are per element)', async () => {
    const [small, large] = await E.tidyAsync(async () => Promise.all([read(E.randomUniform([10], 5)), read(E.randomUniform([2, 50], 5))]));
    expect(Array.from(large.slice(0, 10))).toEqual(Array.from(small));
  });

  it('draws record no gradient and reject bad seeds and shapes', () =>
    E.tidy(() => {
      const p = E.param(E.fill([4], 0.5));
      expect(E.bernoulli(p, 1).requiresGrad).toBe(false);
      expect(() => E.randomNormal([2], -1)).toThrow(RangeError);
      expect(() => E.randomNormal([2], 1.5)).toThrow(RangeError);
      expect(() => E.randomUniform([2, -1], 1)).toThrow(E.ShapeError);
      expect(() => E.bernoulli(E.randomBits([3], 1), 1)).toThrow(E.ShapeError);
    }));
});

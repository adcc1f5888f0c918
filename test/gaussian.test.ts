import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import * as R from '../src/engine/reference/gaussian';
import type { NDArray } from '../src/engine/reference/ndarray';
import { checkOp, expectClose } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

// log sigma in about [-1.5, 1]: sigma from 0.22 to 2.7.
const logSigma = (r: () => number): number => -1.5 + 2.5 * r();

describe('Gaussian KLs and log density', () => {
  it('klDiagGaussians, same shapes', () =>
    checkOp({
      name: 'klDiagGaussians',
      inputs: [{ shape: [3, 5, 7] }, { shape: [3, 5, 7], fill: logSigma }, { shape: [3, 5, 7] }, { shape: [3, 5, 7], fill: logSigma }],
      gpu: E.klDiagGaussians,
      ref: R.klDiagGaussians,
    }));
  it('klDiagGaussians, broadcast', () =>
    checkOp({
      name: 'klDiagGaussians',
      inputs: [{ shape: [3, 1, 5] }, { shape: [3, 4, 5], fill: logSigma }, { shape: [5] }, { shape: [4, 1], fill: logSigma }],
      gpu: E.klDiagGaussians,
      ref: R.klDiagGaussians,
      seed: 3,
    }));
  it('klStandardNormal', () =>
    checkOp({ name: 'klStandardNormal', inputs: [{ shape: [7, 13] }, { shape: [7, 13], fill: logSigma }], gpu: E.klStandardNormal, ref: R.klStandardNormal }));
  it('gaussianLogDensity with broadcast parameters', () =>
    checkOp({
      name: 'gaussianLogDensity',
      inputs: [{ shape: [4, 3, 5] }, { shape: [3, 5] }, { shape: [3, 1], fill: logSigma }],
      gpu: E.gaussianLogDensity,
      ref: R.gaussianLogDensity,
    }));

  it('match values computed by hand', async () => {
    const t = (v: number[]) => E.fromArray(v, [v.length]);
    // q = N(1, 0.5^2), p = N(0, 1): log 2 + (0.25 + 1)/2 - 1/2 = 0.8181472
    // q = N(-0.5, 1), p = N(0.5, 2^2): log 2 + (1 + 1)/8 - 1/2 = 0.4431472
    const kl = E.klDiagGaussians(t([1, -0.5]), t([Math.log(0.5), 0]), t([0, 0.5]), t([0, Math.log(2)]));
    const got = Array.from(await kl.data());
    expect(got[0]).toBeCloseTo(0.8181472, 5);
    expect(got[1]).toBeCloseTo(0.4431472, 5);
    // -1/2 (1 + 2 log 0.5 - 1 - 0.25) = 0.8181472, the same as the first KL above; N(0, 1) -> 0
    const ks = Array.from(await E.klStandardNormal(t([1, 0]), t([Math.log(0.5), 0])).data());
    expect(ks[0]).toBeCloseTo(0.8181472, 5);
    expect(ks[1]).toBeCloseTo(0, 6);
    // log N(1; 0, 1) = -0.9189385 - 0.5; log N(2; 1, 2^2) = -0.9189385 - log 2 - 1/8
    const ld = Array.from(await E.gaussianLogDensity(t([1, 2]), t([0, 1]), t([0, Math.log(2)])).data());
    expect(ld[0]).toBeCloseTo(-1.4189385, 5);
    expect(ld[1]).toBeCloseTo(-1.7370857, 5);
    // The float64 references give the same hand values.
    expect(R.klDiagScalar(1, Math.log(0.5), 0, 0)).toBeCloseTo(0.8181472, 7);
    expect(R.klDiagScalar(-0.5, 0, 0.5, Math.log(2))).toBeCloseTo(0.4431472, 7);
    expect(R.klStandardScalar(1, Math.log(0.5))).toBeCloseTo(0.8181472, 7);
    expect(R.logDensityScalar(2, 1, Math.log(2))).toBeCloseTo(-1.7370857, 7);
    // KL(q || q) = 0
    expect(Math.abs(await E.klDiagGaussians(t([0.3]), t([-0.7]), t([0.3]), t([-0.7])).item())).toBeLessThan(1e-6);
  });

  it('bad shapes throw errors naming the op', () => {
    const a = E.zeros([2, 3]);
    const b = E.zeros([4]);
    expect(() => E.klDiagGaussians(a, a, b, a)).toThrow(/klDiagGaussians.*\[2,3\].*\[4\]/);
    expect(() => E.klStandardNormal(a, b)).toThrow(/klStandardNormal/);
    expect(() => E.gaussianLogDensity(a, a, E.fromArray([0, 1], [2], 'u32'))).toThrow(/gaussianLogDensity.*u32/);
  });
});

describe('gaussianLatent (z and the KL in one op)', () => {
  const catRef = (stats: NDArray, noise: NDArray): NDArray => {
    const { z, kl } = R.gaussianLatent(stats, noise);
    return { shape: [z.data.length + kl.data.length], data: Float64Array.from([...z.data, ...kl.data]) };
  };
  it('both outputs, against float64 and finite differences', () =>
    checkOp({
      name: 'gaussianLatent',
      inputs: [{ shape: [5, 7, 2] }, { shape: [5, 7], grad: false }],
      gpu: (s, e) => {
        const { z, kl } = E.gaussianLatent(s, e);
        return E.concat([z.view([z.size]), kl.view([kl.size])], 0);
      },
      ref: catRef,
    }));
  it('z alone and the KL alone (the other output\'s gradient absent)', async () => {
    await checkOp({
      name: 'gaussianLatent z',
      inputs: [{ shape: [3, 4, 2] }, { shape: [3, 4], grad: false }],
      gpu: (s, e) => E.gaussianLatent(s, e).z,
      ref: (s, e) => R.gaussianLatent(s, e).z,
      seed: 4,
    });
    await checkOp({
      name: 'gaussianLatent kl',
      inputs: [{ shape: [3, 4, 2] }, { shape: [3, 4], grad: false }],
      gpu: (s, e) => E.gaussianLatent(s, e).kl,
      ref: (s, e) => R.gaussianLatent(s, e).kl,
      seed: 5,
    });
  });
  it('the values of the ops it replaces, in 2 dispatches where they take over 20', async () => {
    const stats = Array.from({ length: 6 * 3 * 2 }, (_, i) => Math.sin(i * 1.7) * 1.2);
    const noise = Array.from({ length: 6 * 3 }, (_, i) => Math.cos(i * 0.9));
    const gpu = E.engine().gpu;
    const run = (fused: boolean): Promise<{ values: number[][]; dispatches: number }> =>
      E.tidyAsync(async () => {
        const s = E.param(E.fromArray(stats, [6, 3, 2]));
        const e = E.fromArray(noise, [6, 3]);
        const before = gpu.stats().dispatches;
        let z: E.Tensor;
        let kl: E.Tensor;
        if (fused) ({ z, kl } = E.gaussianLatent(s, e));
        else {
          const mu = E.slice(s, [0, 0, 0], [6, 3, 1]).view([6, 3]);
          const logSigma = E.slice(s, [0, 0, 1], [6, 3, 1]).view([6, 3]);
          z = E.add(mu, E.mul(e, E.exp(logSigma)));
          kl = E.klStandardNormal(mu, logSigma);
        }
        const loss = E.add(E.sum(E.mul(z, z)), E.sum(kl));
        const [g] = E.grad(loss, [s]);
        const dispatches = gpu.stats().dispatches - before;
        return { values: await Promise.all([z, kl, g!].map(async (t) => Array.from(await t.data()))), dispatches };
      });
    const fused = await run(true);
    const composed = await run(false);
    fused.values.forEach((v, i) => expectClose(v, composed.values[i], 1e-6, ['z', 'kl', 'gradient'][i]));
    expect(composed.dispatches - fused.dispatches).toBeGreaterThanOrEqual(15);
  });
  it('rejects statistics that are not [N, Z, 2] pairs for the noise, naming the op', () =>
    E.tidy(() => {
      expect(() => E.gaussianLatent(E.zeros([2, 3, 3]), E.zeros([2, 3]))).toThrow(/gaussianLatent.*\[2,3,3\]/);
      expect(() => E.gaussianLatent(E.zeros([2, 3, 2]), E.zeros([3, 2]))).toThrow(/gaussianLatent/);
    }));
});

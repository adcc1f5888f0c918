import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import * as R from '../src/engine/reference/gaussian';
import { checkOp } from './support/check';
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

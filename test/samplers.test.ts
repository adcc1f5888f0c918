// The in-kernel samplers against their float64 references (src/engine/reference/sample.ts), given the
// same noise: the Bernoulli pixel draw (shaders/sample.wgsl, every position at once and one position
// per pass), the 256-way inverse-CDF draw and the Gaussian prior step (shaders/sample_categorical.wgsl).
// Inputs are random and odd-sized, with edge cases placed by hand; a draw may differ only where the
// uniform lies within float32 rounding of a boundary, and those are counted, not skipped blindly.
import { beforeAll, describe, expect, it } from 'vitest';
import sampleWgsl from '../shaders/sample.wgsl?raw';
import * as E from '../src/engine';
import { Params, launch, threadsGrid } from '../src/engine/kernels';
import type { KernelSpec } from '../src/gpu/context';
import { nd } from '../src/engine/reference/ndarray';
import * as R from '../src/engine/reference/sample';
import { sampleCategoricalAt, sampleGaussianAt } from '../src/models/hierarchical/model';
import { expectClose, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

// The spec mnist-model.ts launches (it keeps its own private).
const BERNOULLI_AT: KernelSpec = { name: 'sample.wgsl', code: sampleWgsl, entry: 'bernoulli_at', bindings: ['read', 'read', 'rw', 'rw'] };

describe('Bernoulli pixel draw (sample.wgsl) against the float64 reference', () => {
  const [b, s] = [7, 5];
  const plane = s * s;
  // Logits from -40 to 40 with exact 0s and large magnitudes; uniforms on [0, 1) with exact 0.
  const logits = toF32(randomArray([b, 1, s, s], 3, (r, i) => (i % 11 === 0 ? 0 : i % 13 === 0 ? 40 * (r() - 0.5) * 2 : 4 * (r() - 0.5) * 2)));
  const uniforms = toF32(randomArray([b, 1, s, s], 4, (r, i) => (i % 17 === 0 ? 0 : r())));
  const want = R.bernoulliDraw(logits, uniforms);

  async function run(all: boolean, positions: number[]): Promise<[Float32Array, Float32Array]> {
    return E.tidyAsync(async () => {
      const l = E.fromArray(logits.data, logits.shape);
      const u = E.fromArray(uniforms.data, uniforms.shape);
      const canvas = E.fill([b, 1, s, s], 0.5); // 0.5: a value no draw writes, so untouched pixels show
      const probs = E.fill([b, 1, s, s], -1);
      for (const position of positions) {
        launch(BERNOULLI_AT, [l.buffer, u.buffer, canvas.buffer, probs.buffer], new Params().u(b, plane, position, all ? 1 : 0).build(), threadsGrid(all ? b * plane : b, 64));
      }
      return [(await canvas.data()) as Float32Array, (await probs.data()) as Float32Array];
    });
  }

  function compare(images: Float32Array, probs: Float32Array, drawn: (i: number) => boolean): void {
    let ties = 0;
    for (let i = 0; i < images.length; i++) {
      if (!drawn(i)) {
        expect(images[i], `pixel ${i} is not drawn by these passes`).toBe(0.5);
        expect(probs[i]).toBe(-1);
        continue;
      }
      expect(Math.abs(probs[i] - want.probs.data[i]), `p at ${i}`).toBeLessThan(1e-6);
      if (Math.abs(uniforms.data[i] - want.probs.data[i]) < 1e-6) ties++;
      else expect(images[i], `draw at ${i}: u ${uniforms.data[i]}, p ${want.probs.data[i]}`).toBe(want.images.data[i]);
    }
    expect(ties).toBeLessThanOrEqual(1);
  }

  it('every position at once (models without an autoregressive decoder)', async () => {
    const [images, probs] = await run(true, [0]);
    compare(images, probs, () => true);
    const ones = images.reduce((n, v) => n + v, 0);
    expect(ones).toBeGreaterThan(20);
    expect(ones).toBeLessThan(b * plane - 20);
  });

  it('one position per pass writes only that position of every image', async () => {
    const positions = [0, 7, 24];
    const [images, probs] = await run(false, positions);
    compare(images, probs, (i) => positions.includes(i % plane));
  });
});

describe('categorical inverse-CDF draw (sample_categorical.wgsl) against the float64 reference', () => {
  const [b, k, c, h, w] = [7, 256, 3, 3, 5];
  const plane = h * w;

  async function draw(logits: Float64Array, uniforms: Float64Array, visits: [number, number][]): Promise<Uint32Array> {
    return E.tidyAsync(async () => {
      const l = E.fromArray(logits, [b, k, c, h, w]);
      const u = E.fromArray(uniforms, [b, c, h, w]);
      const canvas = E.fromArray(new Uint32Array(b * c * plane).fill(999), [b, c, h, w], 'u32');
      for (const [position, channel] of visits) sampleCategoricalAt(l, u, canvas, position, channel);
      return (await canvas.data()) as Uint32Array;
    });
  }

  it('random logits (scale 3) and uniforms: the reference class at every visited sub-pixel, nothing else written', async () => {
    const logits = toF32(randomArray([b, k, c, h, w], 5, (r) => 6 * (r() - 0.5)));
    const uniforms = toF32(randomArray([b, c, h, w], 6, 'uniform01'));
    const visits: [number, number][] = [[0, 0], [0, 2], [8, 1], [14, 0], [14, 2]];
    const got = await draw(logits.data, uniforms.data, visits);
    const want = R.categoricalDraw(nd([b, k, c, h, w], logits.data), nd([b, c, h, w], uniforms.data));
    let checked = 0;
    let ambiguous = 0;
    const seen = new Set<number>();
    for (let i = 0; i < got.length; i++) {
      const channel = Math.floor(i / plane) % c;
      const position = i % plane;
      if (!visits.some(([p, ch]) => p === position && ch === channel)) {
        expect(got[i], `sub-pixel ${i} was not visited`).toBe(999);
        continue;
      }
      // float32 partial sums of 256 terms are good to ~1e-6 of the total; 1e-5 leaves room.
      if (want.margin.data[i] < 1e-5) {
        ambiguous++;
        expect(Math.abs(got[i] - want.classes.data[i])).toBeLessThanOrEqual(1);
        continue;
      }
      expect(got[i], `sub-pixel ${i}: u ${uniforms.data[Math.floor(i / (c * plane)) * c * plane + (i % (c * plane))]}`).toBe(want.classes.data[i]);
      seen.add(got[i]);
      checked++;
    }
    expect(checked).toBe(b * visits.length - ambiguous);
    expect(ambiguous).toBeLessThanOrEqual(1);
    expect(seen.size).toBeGreaterThan(15); // the draws spread over the classes
  });

  it('edge cases by hand: u = 0, u just below 1, a zero-probability first class, a peaked row, a NaN row', async () => {
    // Only sub-pixel (position 0, channel 0) of each image matters here.
    const logits = new Float64Array(b * k * c * plane);
    const uniforms = new Float64Array(b * c * plane).fill(0.5);
    const set = (n: number, cls: number, v: number): void => void (logits[((n * k + cls) * c + 0) * plane + 0] = v);
    const u = (n: number, v: number): void => void (uniforms[n * c * plane] = v);
    // 0: uniform row, u = 0 -> class 0.  1: uniform row, u = 1 - 2^-24 -> class 255.
    u(0, 0);
    u(1, 1 - 2 ** -24);
    // 2: classes 0..9 impossible (exp(-1e4) is 0 in float64 too), u = 0 -> class 10, never one of them.
    for (let j = 0; j < 10; j++) set(2, j, -1e4);
    u(2, 0);
    // 3: one class 30 nats above the rest -> it, for u in the middle.
    set(3, 77, 30);
    u(3, 0.5);
    // 4: classes 0 and 1 equally likely, the rest impossible: u 0.49 -> 0, u 0.51 -> 1 (in image 5).
    for (const n of [4, 5]) for (let j = 2; j < k; j++) set(n, j, -1e4);
    u(4, 0.49);
    u(5, 0.51);
    // 6: a NaN logit -> the last class (the canvas stays a valid value).
    set(6, 3, NaN);
    const got = await draw(Float64Array.from(Float32Array.from(logits)), uniforms, [[0, 0]]);
    const at = (n: number): number => got[n * c * plane];
    expect([0, 1, 2, 3, 4, 5, 6].map(at)).toEqual([0, 255, 10, 77, 0, 1, 255]);
    const want = R.categoricalDraw(nd([b, k, c, h, w], logits), nd([b, c, h, w], uniforms));
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => want.classes.data[n * c * plane])).toEqual([0, 255, 10, 77, 0, 1, 255]);
  });
});

describe('Gaussian prior step (sample_categorical.wgsl) against the float64 reference', () => {
  const [b, l, h, w] = [5, 3, 3, 7];
  const raw = toF32(randomArray([b, 2 * l, h, w], 8, (r) => 8 * (r() - 0.5)));
  const eps = toF32(randomArray([b, l, h, w], 9));

  for (const floor of [0, 0.3]) {
    it(`every channel of the visited positions, sigma floor ${floor}`, async () => {
      const positions = [0, 10, 20];
      const z = await E.tidyAsync(async () => {
        const rt = E.fromArray(raw.data, raw.shape);
        const et = E.fromArray(eps.data, eps.shape);
        const zt = E.fill([b, l, h, w], 123);
        for (const p of positions) sampleGaussianAt(rt, et, zt, p, floor);
        return (await zt.data()) as Float32Array;
      });
      const want = R.gaussianDraw(raw, eps, floor);
      const visited = Array.from(z.keys()).filter((i) => positions.includes(i % (h * w)));
      for (let i = 0; i < z.length; i++) if (!visited.includes(i)) expect(z[i]).toBe(123);
      expectClose(visited.map((i) => z[i]), visited.map((i) => want.data[i]), 1e-5, 'z');
      // The floor binds for some elements when it is set (sigma = 0.3 there), so both branches run.
      if (floor > 0) {
        const sigmas = visited.map((i) => (want.data[i] - R.gaussianDraw(raw, nd(eps.shape), floor).data[i]) / eps.data[i]);
        expect(sigmas.filter((s) => Math.abs(s - floor) < 1e-12).length).toBeGreaterThan(0);
      }
    });
  }
});

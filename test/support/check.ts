// The op-test harness: random odd-sized inputs, forward against the float64 reference, and
// backward against central finite differences of that reference.
import { expect } from 'vitest';
import { fromArray, grad, param, tidyAsync, type Tensor } from '../../src/engine';
import { nd, type NDArray } from '../../src/engine/reference/ndarray';

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Fill = 'normal' | 'positive' | 'uniform01' | 'binary' | ((r: () => number, i: number) => number);

export function randomArray(shape: readonly number[], seed: number, fill: Fill = 'normal'): NDArray {
  const r = rng(seed);
  const x = nd(shape);
  for (let i = 0; i < x.data.length; i++) {
    if (typeof fill === 'function') x.data[i] = fill(r, i);
    else if (fill === 'normal') x.data[i] = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    else if (fill === 'positive') x.data[i] = 0.2 + 2 * r();
    else if (fill === 'uniform01') x.data[i] = r();
    else x.data[i] = r() < 0.5 ? 0 : 1;
  }
  return x;
}

/** Round a float64 array to f32, the values the GPU really sees. */
export function toF32(x: NDArray): NDArray {
  return { shape: x.shape, data: Float64Array.from(Float32Array.from(x.data)) };
}

/**
 * Worst element error, relative to |expected| plus a floor of 1e-2 times the rms of the expected
 * values (so outputs that cancel to ~0 are judged against the scale of the whole tensor).
 */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let sq = 0;
  for (let i = 0; i < expected.length; i++) sq += expected[i] * expected[i];
  const floor = 1e-2 * Math.sqrt(sq / Math.max(expected.length, 1)) + 1e-12;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i] - expected[i]) / (Math.abs(expected[i]) + floor);
    if (!(e <= worst)) worst = e; // NaN propagates as worst
  }
  return worst;
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-4, what = 'values'): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const err = relError(actual, expected);
  if (!(err < tol)) {
    let worstIndex = 0;
    let worst = -1;
    for (let i = 0; i < expected.length; i++) {
      const e = Math.abs(actual[i] - expected[i]);
      if (!(e <= worst)) { worst = e; worstIndex = i; }
    }
    throw new Error(`${what}: relative error ${err.toExponential(3)} >= ${tol} (worst at ${worstIndex}: got ${actual[worstIndex]}, want ${expected[worstIndex]})`);
  }
}

export interface InputSpec {
  shape: number[];
  fill?: Fill;
  /** Values are indices or labels: uploaded as u32, never differentiated. */
  dtype?: 'f32' | 'u32';
  /** Check this input's gradient (default: true for f32 inputs). */
  grad?: boolean;
}

export interface OpCase {
  name: string;
  inputs: InputSpec[];
  gpu: (...inputs: Tensor[]) => Tensor;
  ref: (...inputs: NDArray[]) => NDArray;
  seed?: number;
  /** Forward tolerance (relative, see relError). */
  tol?: number;
  /** Gradient tolerance against finite differences. */
  gradTol?: number;
  /** Finite-difference step (float64). */
  h?: number;
  /** At most this many elements per input are perturbed for finite differences. */
  fdSamples?: number;
}

/** Forward vs reference and backward vs finite differences, for one op case. */
export async function checkOp(c: OpCase): Promise<void> {
  const seed = c.seed ?? 1;
  const arrays = c.inputs.map((spec, i) => {
    const a = randomArray(spec.shape, seed * 101 + i, spec.fill ?? 'normal');
    return spec.dtype === 'u32' ? a : toF32(a);
  });
  const expected = c.ref(...arrays);
  const cotangent = toF32(randomArray(expected.shape, seed * 977 + 7));
  const wantGrad = c.inputs.map((s) => (s.grad ?? s.dtype !== 'u32'));

  const { out, grads } = await tidyAsync(async () => {
    const tensors = arrays.map((a, i) => {
      const t = fromArray(a.data, a.shape, c.inputs[i].dtype ?? 'f32');
      return wantGrad[i] ? param(t) : t;
    });
    const y = c.gpu(...tensors);
    expect(y.shape, `${c.name}: output shape`).toEqual(expected.shape);
    const out = await y.data();
    let grads: (Float32Array | null)[] = [];
    if (wantGrad.some(Boolean)) {
      const seedT = fromArray(cotangent.data, cotangent.shape);
      const gs = grad(y, tensors.filter((_, i) => wantGrad[i]), seedT);
      let k = 0;
      grads = await Promise.all(
        wantGrad.map(async (w) => {
          if (!w) return null;
          const g = gs[k++];
          return g ? ((await g.data()) as Float32Array) : null;
        }),
      );
    }
    return { out, grads };
  });
  expectClose(out, expected.data, c.tol ?? 1e-4, `${c.name} forward`);

  // Finite differences of L = sum(ref(x) * cotangent).
  const loss = (xs: NDArray[]): number => {
    const y = c.ref(...xs);
    let s = 0;
    for (let i = 0; i < y.data.length; i++) s += y.data[i] * cotangent.data[i];
    return s;
  };
  const h = c.h ?? 1e-5;
  const r = rng(seed + 12345);
  for (let k = 0; k < arrays.length; k++) {
    if (!wantGrad[k]) continue;
    const g = grads[k];
    const x = arrays[k];
    const n = x.data.length;
    const samples = Math.min(n, c.fdSamples ?? 48);
    const indices = samples === n ? [...Array(n).keys()] : Array.from({ length: samples }, () => Math.floor(r() * n));
    const fd: number[] = [];
    const got: number[] = [];
    for (const i of indices) {
      const orig = x.data[i];
      x.data[i] = orig + h;
      const up = loss(arrays);
      x.data[i] = orig - h;
      const down = loss(arrays);
      x.data[i] = orig;
      fd.push((up - down) / (2 * h));
      got.push(g ? g[i] : 0);
    }
    expectClose(got, fd, c.gradTol ?? 1e-3, `${c.name} gradient of input ${k}`);
  }
}

// Parameter initialisers, on the CPU with a seeded generator so a seed gives the same model
// everywhere. They follow the PixelVAE reference code (pixelvae-reference.md, 1.8).

/** A small seeded PRNG (mulberry32) with Gaussian draws; deterministic across platforms. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = 1 - this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
}

/** Uniform on +-sigma*sqrt(3) (variance sigma^2). */
export function uniformInit(n: number, sigma: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  const bound = sigma * Math.sqrt(3);
  for (let i = 0; i < n; i++) out[i] = (rng.uniform() * 2 - 1) * bound;
  return out;
}

/**
 * Conv weights [out, in, kh, kw]: sigma = sqrt(4 / (fanIn + fanOut)) with `he`, sqrt(2 / ...) without.
 * Fans are in*kh*kw and out*kh*kw; halved for masked convs (half the taps see nothing).
 */
export function convInit(out: number, inp: number, kh: number, kw: number, opts: { he: boolean; masked: boolean }, rng: Rng): Float32Array {
  let fanIn = inp * kh * kw;
  let fanOut = out * kh * kw;
  if (opts.masked) {
    fanIn /= 2;
    fanOut /= 2;
  }
  const sigma = Math.sqrt((opts.he ? 4 : 2) / (fanIn + fanOut));
  return uniformInit(out * inp * kh * kw, sigma, rng);
}

/** Linear weights [out, in]: orthogonal when square, else LeCun uniform (sigma = sqrt(1/in)). */
export function linearInit(out: number, inp: number, rng: Rng): Float32Array {
  if (out !== inp) return uniformInit(out * inp, Math.sqrt(1 / inp), rng);
  // Gram-Schmidt on a Gaussian matrix: an orthogonal matrix, as the reference's SVD gives.
  const n = out;
  const m = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) m[i] = rng.normal();
  for (let r = 0; r < n; r++) {
    for (let p = 0; p < r; p++) {
      let dot = 0;
      for (let c = 0; c < n; c++) dot += m[r * n + c] * m[p * n + c];
      for (let c = 0; c < n; c++) m[r * n + c] -= dot * m[p * n + c];
    }
    let norm = 0;
    for (let c = 0; c < n; c++) norm += m[r * n + c] ** 2;
    norm = Math.sqrt(norm);
    for (let c = 0; c < n; c++) m[r * n + c] /= norm;
  }
  return Float32Array.from(m);
}

/** Per-output-unit L2 norms of a [out, ...] weight: the weight-norm gains that make W = V at step 0. */
export function rowNorms(w: Float32Array, out: number): Float32Array {
  const per = w.length / out;
  const g = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < per; i++) s += w[o * per + i] ** 2;
    g[o] = Math.sqrt(s);
  }
  return g;
}

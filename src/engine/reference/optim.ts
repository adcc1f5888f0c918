// Float64 references of the optimizer kernels (shaders/adam.wgsl, shaders/adam_multi.wgsl): Adam in the TF / Lasagne form
// with element-wise and global-norm clipping, and the in-place moving average.

export interface AdamReferenceOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Clip every element to [-c, c] first (0: off). */
  clipValue: number;
  /** Then scale all gradients by min(1, c / global norm) (0: off). */
  clipGlobalNorm: number;
}

/** Adam over flat float64 arrays; a null gradient leaves its parameter (and moments) untouched. */
export class AdamReference {
  t = 0;
  readonly m: Float64Array[];
  readonly v: Float64Array[];

  constructor(
    readonly o: AdamReferenceOptions,
    sizes: readonly number[],
  ) {
    this.m = sizes.map((n) => new Float64Array(n));
    this.v = sizes.map((n) => new Float64Array(n));
  }

  /** Updates params in place; returns the global norm of the element-clipped gradients. */
  step(params: Float64Array[], grads: readonly (ArrayLike<number> | null)[]): number {
    this.t += 1;
    const c = this.o.clipValue;
    const clipped = grads.map((g) => (g ? Array.from(g, (x) => (c > 0 ? Math.min(Math.max(x, -c), c) : x)) : null));
    let sq = 0;
    for (const g of clipped) if (g) for (const x of g) sq += x * x;
    const norm = Math.sqrt(sq);
    const scale = this.o.clipGlobalNorm > 0 ? Math.min(1, this.o.clipGlobalNorm / norm) : 1;
    const lrT = (this.o.lr * Math.sqrt(1 - this.o.beta2 ** this.t)) / (1 - this.o.beta1 ** this.t);
    params.forEach((w, k) => {
      const g = clipped[k];
      if (!g) return;
      for (let i = 0; i < w.length; i++) {
        const gi = g[i] * scale;
        this.m[k][i] = this.o.beta1 * this.m[k][i] + (1 - this.o.beta1) * gi;
        this.v[k][i] = this.o.beta2 * this.v[k][i] + (1 - this.o.beta2) * gi * gi;
        w[i] -= (lrT * this.m[k][i]) / (Math.sqrt(this.v[k][i]) + this.o.eps);
      }
    });
    return norm;
  }
}

/** state + momentum (x - state), element-wise (running statistics). */
export function movingAverage(state: ArrayLike<number>, x: ArrayLike<number>, momentum: number): Float64Array {
  return Float64Array.from(state, (s, i) => s + momentum * (x[i] - s));
}

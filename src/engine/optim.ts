// Adam with optional gradient clipping (shaders/adam.wgsl). A step only records dispatches: no
// readback, and no allocation after the first step, which creates the moments (and, with global-norm
// clipping, the buffer of partial sums) once and keeps them.
import adamWgsl from '../../shaders/adam.wgsl?raw';
import { Params, launch, threadsGrid } from './kernels';
import { engine, keep, Tensor, ShapeError, shapeString } from './tensor';
import { fill } from './ops/elementwise';
import type { KernelSpec } from '../gpu/context';

export interface AdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Clip every gradient element to [-c, c] (the PixelVAE MNIST code uses 1). */
  clipValue?: number;
  /** Scale all gradients by min(1, maxNorm / global norm) (the hierarchical code uses 5). */
  clipGlobalNorm?: number;
}

const SUMSQ: KernelSpec = { name: 'adam.wgsl', code: adamWgsl, entry: 'sumsq', bindings: ['read', 'rw'] };
const NORM_SCALE: KernelSpec = { name: 'adam.wgsl', code: adamWgsl, entry: 'norm_scale', bindings: ['rw'] };
const EMA: KernelSpec = { name: 'adam.wgsl', code: adamWgsl, entry: 'ema', bindings: ['rw', 'read'] };
const updateSpec = (global: boolean): KernelSpec => ({
  name: 'adam.wgsl',
  code: adamWgsl,
  entry: 'update',
  constants: { GLOBAL_CLIP: global ? 1 : 0 },
  bindings: ['rw', 'read', 'rw', 'rw', 'read'],
});

/** Partial sums per gradient in the global norm: one per workgroup of 64 threads, at most this many. */
const MAX_PARTIALS = 64;
const partialsFor = (n: number): number => Math.max(1, Math.min(MAX_PARTIALS, Math.ceil(n / (64 * 16))));

/** In place, on the GPU: state += momentum * (x - state) (running statistics). No gradient. */
export function movingAverageInPlace(state: Tensor, x: Tensor, momentum: number): void {
  if (state.size !== x.size || state.dtype !== 'f32' || x.dtype !== 'f32') {
    throw new ShapeError('movingAverage', `state ${shapeString(state.shape)} vs value ${shapeString(x.shape)}`);
  }
  launch(EMA, [state.buffer, x.buffer], new Params().u(x.size, 0, 0, 0).f(0, momentum).build(), threadsGrid(x.size));
}

/**
 * Adam (Kingma & Ba) in the TF / Lasagne form: step size lr * sqrt(1 - beta2^t) / (1 - beta1^t) and
 * eps added to sqrt(v). Gradients are clipped element-wise first (clipValue), then scaled by the
 * global-norm factor (clipGlobalNorm, computed on the GPU from the element-clipped gradients).
 */
export class Adam {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly clipValue: number;
  readonly clipGlobalNorm: number;
  /** Steps taken (t in the bias corrections). */
  t = 0;
  private m: Tensor[] = [];
  private v: Tensor[] = [];
  private shapes: (readonly number[])[] = [];
  private slots: number[] = [];
  /** [scale, global norm, -, -, partial sums...] when clipGlobalNorm is set. */
  private clipState: Tensor | null = null;

  constructor(opts: AdamOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.clipValue = opts.clipValue ?? 0;
    this.clipGlobalNorm = opts.clipGlobalNorm ?? 0;
    if (this.clipValue < 0 || this.clipGlobalNorm < 0) throw new RangeError('Adam: clip bounds must be positive');
  }

  private init(params: readonly Tensor[]): void {
    this.shapes = params.map((p) => [...p.shape]);
    this.m = params.map((p) => keep(fill(p.shape, 0)));
    this.v = params.map((p) => keep(fill(p.shape, 0)));
    let slot = 0;
    this.slots = params.map((p) => {
      const s = slot;
      slot += partialsFor(p.size);
      return s;
    });
    if (this.clipGlobalNorm > 0) this.clipState = keep(fill([4 + slot], 0));
  }

  /** Updates every parameter in place from its gradient (null: left as is, its moments too). */
  step(params: readonly Tensor[], grads: readonly (Tensor | null)[]): void {
    if (params.length !== grads.length) throw new ShapeError('Adam.step', `${params.length} parameters but ${grads.length} gradients`);
    if (this.m.length === 0) this.init(params);
    if (params.length !== this.shapes.length) {
      throw new ShapeError('Adam.step', `${params.length} parameters, but the optimizer was built for ${this.shapes.length}`);
    }
    params.forEach((p, i) => {
      const g = grads[i];
      const want = this.shapes[i];
      const bad = (t: Tensor): boolean => t.dtype !== 'f32' || t.shape.length !== want.length || t.shape.some((d, j) => d !== want[j]);
      if (bad(p) || (g && bad(g))) {
        throw new ShapeError('Adam.step', `parameter ${i} ${shapeString(p.shape)}, gradient ${g ? shapeString(g.shape) : 'null'}, state ${shapeString(want)}`);
      }
    });

    this.t += 1;
    const clipState = this.clipState;
    if (clipState) {
      let slots = 0;
      params.forEach((p, i) => {
        const g = grads[i];
        const count = partialsFor(p.size);
        slots = this.slots[i] + count;
        // A missing gradient still writes its slots (zeros: sum over an empty range).
        const src = g ?? p;
        const words = new Params().u(g ? p.size : 0, this.slots[i], 0, 0).f(this.clipValue).build();
        launch(SUMSQ, [src.buffer, clipState.buffer], words, [count, 1]);
      });
      launch(NORM_SCALE, [clipState.buffer], new Params().u(0, slots, 0, 0).f(0, this.clipGlobalNorm).build(), [1, 1]);
    }
    const lrT = (this.lr * Math.sqrt(1 - this.beta2 ** this.t)) / (1 - this.beta1 ** this.t);
    const spec = updateSpec(clipState !== null);
    params.forEach((p, i) => {
      const g = grads[i];
      if (!g) return;
      const words = new Params().u(p.size, 0, 0, 0).f(this.clipValue, lrT, this.beta1, this.beta2, this.eps).build();
      launch(spec, [p.buffer, g.buffer, this.m[i].buffer, this.v[i].buffer, (clipState ?? g).buffer], words, threadsGrid(p.size));
    });
  }

  /**
   * Restores moments and the step count from a checkpoint (all sizes checked before anything is
   * written, so a bad checkpoint changes nothing).
   */
  restore(params: readonly Tensor[], m: readonly Float32Array[], v: readonly Float32Array[], t: number): void {
    if (m.length !== params.length || v.length !== params.length) {
      throw new ShapeError('Adam.restore', `${params.length} parameters but ${m.length} first and ${v.length} second moments`);
    }
    params.forEach((p, i) => {
      if (m[i].length !== p.size || v[i].length !== p.size) {
        throw new ShapeError('Adam.restore', `parameter ${i} ${shapeString(p.shape)} has moments of ${m[i].length} and ${v[i].length} values`);
      }
    });
    if (this.m.length === 0) this.init(params);
    const gpu = engine().gpu;
    params.forEach((_, i) => {
      gpu.write(this.m[i].buffer, m[i]);
      gpu.write(this.v[i].buffer, v[i]);
    });
    this.t = t;
  }

  /** A new optimizer with these hyperparameters and no state. */
  withSameSettings(): Adam {
    return new Adam({ lr: this.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, clipValue: this.clipValue, clipGlobalNorm: this.clipGlobalNorm });
  }

  /** The first and second moments (for checkpoints), in parameter order. */
  get moments(): { m: readonly Tensor[]; v: readonly Tensor[] } {
    return { m: this.m, v: this.v };
  }

  /** [clipping scale, global gradient norm] of the last step live in the first two words of this (global-norm clipping only). */
  get clipStatistics(): Tensor | null {
    return this.clipState;
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
    this.clipState?.dispose();
    this.m = [];
    this.v = [];
    this.clipState = null;
    this.t = 0;
  }
}

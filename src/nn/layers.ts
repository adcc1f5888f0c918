// Layers built from engine ops: convolutions (plain, strided, masked, transposed) and linear maps,
// with the reference's weight normalisation and initialisation.
import * as E from '../engine';
import type { ConvMask } from '../engine/ops/conv';
import { convInit, linearInit, rowNorms } from './init';
import type { ParamSet, WeightNormBank } from './params';

export type Padding = number | [number, number, number, number];

export interface Conv2dOptions {
  in: number;
  out: number;
  kernel: number | [number, number];
  stride?: 1 | 2;
  /** Default: k//2 on each side of each axis ("half" padding, as Theano's border_mode='half'); negative crops. */
  padding?: Padding;
  mask?: ConvMask;
  weightNorm?: boolean;
  bias?: boolean;
  /** He-style init (the reference's default); false for output layers. */
  he?: boolean;
}

export class Conv2d {
  readonly v: E.Tensor;
  readonly g: E.Tensor | null;
  readonly b: E.Tensor | null;
  readonly kh: number;
  readonly kw: number;
  readonly padding: [number, number, number, number];
  private readonly bank: WeightNormBank;

  constructor(params: ParamSet, readonly name: string, readonly opts: Conv2dOptions) {
    this.bank = params.weightNorm;
    [this.kh, this.kw] = typeof opts.kernel === 'number' ? [opts.kernel, opts.kernel] : opts.kernel;
    const p = opts.padding ?? [Math.floor(this.kh / 2), Math.floor(this.kh / 2), Math.floor(this.kw / 2), Math.floor(this.kw / 2)];
    this.padding = typeof p === 'number' ? [p, p, p, p] : p;
    const init = convInit(opts.out, opts.in, this.kh, this.kw, { he: opts.he ?? true, masked: Boolean(opts.mask) }, params.rng);
    this.v = params.create(`${name}.weight`, [opts.out, opts.in, this.kh, this.kw], init);
    this.g = opts.weightNorm ? params.create(`${name}.gain`, [opts.out], rowNorms(init, opts.out)) : null;
    if (this.g) this.bank.register(this.v, this.g);
    this.b = opts.bias === false ? null : params.create(`${name}.bias`, [opts.out], new Float32Array(opts.out));
  }

  /**
   * The effective weight: g * v / ||v|| per output channel with weight norm (mask applied after, in
   * the conv); the bank's during a training step (ParamSet.weightNorm).
   */
  weight(): E.Tensor {
    // Inside a training step the bank holds every layer's W, computed together.
    return this.g ? (this.bank.weightOf(this.v) ?? E.weightNorm(this.v, this.g)) : this.v;
  }

  /** The conv with the fused epilogue's extras (see E.Conv2dOptions). */
  forward(x: E.Tensor, extra: { residual?: E.Tensor; preResidual?: E.Tensor; cond?: E.Tensor; gate?: boolean } = {}): E.Tensor {
    return E.conv2d(x, this.weight(), {
      stride: this.opts.stride ?? 1,
      padding: this.padding,
      bias: this.b ?? undefined,
      mask: this.opts.mask,
      residual: extra.residual,
      preResidual: extra.preResidual,
      cond: extra.cond,
      gate: extra.gate,
    });
  }

  /** Multiply-adds per image for an input of h x w (masked taps counted as skipped). */
  macs(h: number, w: number): number {
    const s = this.opts.stride ?? 1;
    const [t, b, l, r] = this.padding;
    const ho = Math.floor((h + t + b - this.kh) / s) + 1;
    const wo = Math.floor((w + l + r - this.kw) / s) + 1;
    return ho * wo * this.opts.out * this.opts.in * tapsVisited(this.kh, this.kw, this.opts.mask);
  }
}

/** Taps a kh x kw kernel visits under a mask (the rest are skipped by the kernel). */
export function tapsVisited(kh: number, kw: number, mask?: ConvMask): number {
  if (!mask) return kh * kw;
  const cy = Math.floor(kh / 2);
  const cx = Math.floor(kw / 2);
  if (mask.type === 'vstack') return (cy + 1) * kw;
  return cy * kw + cx + (mask.type === 'B' ? 1 : 0);
}

export interface ConvTranspose2dOptions {
  in: number;
  out: number;
  kernel: number;
  stride: 1 | 2;
  padding: number;
  outputPadding?: number;
  bias?: boolean;
}

/**
 * Transposed convolution (the reference's Deconv2D: no weight norm). Weight [in, out, k, k].
 * Initialisation departs from the MNIST reference on purpose: Theano's fans ignore the stride, and a
 * stride-2 transposed conv feeds each output from about k²/4 taps, so each of the upsampling
 * decoder's three deconvs started 4x quieter in variance; the encoder-decoder then ignored its latent
 * for hundreds of steps (measured: KL 0.01 nats at step 100; with the weights scaled by the stride,
 * as TF's fan-out of out*k²/stride² does, 2.9 nats and a lower bound).
 */
export class ConvTranspose2d {
  readonly w: E.Tensor;
  readonly b: E.Tensor | null;

  constructor(params: ParamSet, readonly name: string, readonly opts: ConvTranspose2dOptions) {
    const k = opts.kernel;
    this.w = params.create(`${name}.weight`, [opts.in, opts.out, k, k], convInit(opts.in, opts.out, k, k, { he: true, masked: false }, params.rng).map((v) => v * opts.stride));
    this.b = opts.bias === false ? null : params.create(`${name}.bias`, [opts.out], new Float32Array(opts.out));
  }

  forward(x: E.Tensor): E.Tensor {
    return E.convTranspose2d(x, this.w, {
      stride: this.opts.stride,
      padding: this.opts.padding,
      outputPadding: this.opts.outputPadding ?? 0,
      bias: this.b ?? undefined,
    });
  }

  macs(h: number, w: number): number {
    return h * w * this.opts.in * this.opts.out * this.opts.kernel * this.opts.kernel;
  }
}

export interface LinearOptions {
  in: number;
  out: number;
  weightNorm?: boolean;
  bias?: boolean;
}

export class Linear {
  readonly v: E.Tensor;
  readonly g: E.Tensor | null;
  readonly b: E.Tensor | null;
  private readonly bank: WeightNormBank;

  constructor(params: ParamSet, readonly name: string, readonly opts: LinearOptions) {
    this.bank = params.weightNorm;
    const init = linearInit(opts.out, opts.in, params.rng);
    this.v = params.create(`${name}.weight`, [opts.out, opts.in], init);
    this.g = opts.weightNorm ? params.create(`${name}.gain`, [opts.out], rowNorms(init, opts.out)) : null;
    if (this.g) this.bank.register(this.v, this.g);
    this.b = opts.bias === false ? null : params.create(`${name}.bias`, [opts.out], new Float32Array(opts.out));
  }

  /** The effective weight [out, in]: g * v / ||v|| per output row with weight norm (the bank's during a training step). */
  weight(): E.Tensor {
    // Inside a training step the bank holds every layer's W, computed together.
    return this.g ? (this.bank.weightOf(this.v) ?? E.weightNorm(this.v, this.g)) : this.v;
  }

  forward(x: E.Tensor): E.Tensor {
    return E.linear(x, this.weight(), this.b ?? undefined);
  }

  macs(): number {
    return this.opts.in * this.opts.out;
  }
}

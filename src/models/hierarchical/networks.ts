// The hierarchical PixelVAE's networks (pixelvae-reference.md, 2.3 and 2.4), built from engine ops:
// ELU pre-activation residual blocks with batch norm (plain, strided down, subpixel up), gated masked
// residual blocks (weight norm, no batch norm), and the four networks Enc1, Enc2, Dec2 (the trunk of
// the prior p(z1|z2) and its latent PixelCNN) and Dec1 (the trunk of p(x|z1) and its pixel PixelCNN).
import * as E from '../../engine';
import type { ConvMask } from '../../engine/ops/conv';
import { Conv2d, Linear } from '../../nn/layers';
import type { ParamSet } from '../../nn/params';
import { latentGrids, type HierConfig } from './config';

/** How batch norm runs: batch statistics (training; running stats <- (1 - m) running + m batch) or running statistics. */
export interface BnMode {
  training: boolean;
  /** 1 overwrites the running statistics (the reference's ordinary steps); 1/(s+1) averages over s+1 batches. */
  momentum: number;
}

/** Non-trainable state (batch-norm running statistics), kept outside every scope and saved in checkpoints. */
export class BufferSet {
  private readonly entries = new Map<string, E.Tensor>();

  create(name: string, shape: number[], value: number): E.Tensor {
    if (this.entries.has(name)) throw new Error(`buffer ${name} defined twice`);
    const t = E.keep(E.fill(shape, value));
    this.entries.set(name, t);
    return t;
  }

  entriesList(): [string, E.Tensor][] {
    return [...this.entries.entries()];
  }

  dispose(): void {
    for (const t of this.entries.values()) t.dispose();
    this.entries.clear();
  }
}

/** Per-layer context: where parameters and buffers go, the batch-norm mode, epsilon. */
export interface Builder {
  params: ParamSet;
  buffers: BufferSet;
  bn: BnMode;
  eps: number;
}

export class BatchNorm {
  readonly gamma: E.Tensor;
  readonly beta: E.Tensor;
  readonly running: E.RunningStats;

  constructor(private readonly b: Builder, name: string, channels: number) {
    this.gamma = b.params.create(`${name}.gamma`, [channels], new Float32Array(channels).fill(1));
    this.beta = b.params.create(`${name}.beta`, [channels], new Float32Array(channels));
    this.running = { mean: b.buffers.create(`${name}.running_mean`, [channels], 0), var: b.buffers.create(`${name}.running_var`, [channels], 1) };
  }

  /** BN(x), plus `residual` when given (in the same kernel in training). */
  forward(x: E.Tensor, residual?: E.Tensor): E.Tensor {
    const { training, momentum } = this.b.bn;
    return E.batchNorm(x, this.gamma, this.beta, { training, eps: this.b.eps, running: this.running, momentum, residual });
  }
}

/** A conv to 4*out channels, then depth-to-space: the reference's SubpixelConv2D (2x up-sampling). */
class SubpixelConv {
  private readonly conv: Conv2d;
  constructor(b: Builder, name: string, inp: number, out: number, k: number, opts: { weightNorm: boolean; bias: boolean; he: boolean }) {
    this.conv = new Conv2d(b.params, name, { in: inp, out: 4 * out, kernel: k, ...opts });
  }
  forward(x: E.Tensor): E.Tensor {
    return E.depthToSpace(this.conv.forward(x), 2);
  }
}

interface Layer {
  forward(x: E.Tensor): E.Tensor;
}

/**
 * ELU pre-activation residual block: shortcut(x) + BN(conv2(ELU(conv1(ELU(x))))). conv1 and conv2
 * have no weight norm, conv2 no bias; the shortcut is the identity, or a 1x1 conv (weight norm)
 * when the width or resolution changes. 'down': conv2 has stride 2 (TF 'SAME' padding: the extra
 * row and column at the bottom and right); 'up': conv1 and the shortcut are subpixel convs.
 */
export class ResBlock implements Layer {
  private readonly conv1: Layer;
  private readonly conv2: Conv2d;
  private readonly bn: BatchNorm;
  private readonly shortcut: Layer | null;

  constructor(b: Builder, name: string, inp: number, out: number, k: number, resample: 'down' | 'up' | null = null) {
    const plain = { weightNorm: false, he: true };
    const half = Math.floor(k / 2);
    if (resample === 'down') {
      this.conv1 = new Conv2d(b.params, `${name}.conv1`, { in: inp, out: inp, kernel: k, ...plain });
      this.conv2 = new Conv2d(b.params, `${name}.conv2`, { in: inp, out, kernel: k, stride: 2, padding: [Math.max(0, half - 1), half, Math.max(0, half - 1), half], bias: false, ...plain });
      this.shortcut = new Conv2d(b.params, `${name}.shortcut`, { in: inp, out, kernel: 1, stride: 2, padding: 0, weightNorm: true, he: false });
    } else if (resample === 'up') {
      this.conv1 = new SubpixelConv(b, `${name}.conv1`, inp, out, k, { weightNorm: false, bias: true, he: true });
      this.conv2 = new Conv2d(b.params, `${name}.conv2`, { in: out, out, kernel: k, bias: false, ...plain });
      this.shortcut = new SubpixelConv(b, `${name}.shortcut`, inp, out, 1, { weightNorm: true, bias: true, he: false });
    } else {
      this.conv1 = new Conv2d(b.params, `${name}.conv1`, { in: inp, out, kernel: k, ...plain });
      this.conv2 = new Conv2d(b.params, `${name}.conv2`, { in: out, out, kernel: k, bias: false, ...plain });
      this.shortcut = inp === out ? null : new Conv2d(b.params, `${name}.shortcut`, { in: inp, out, kernel: 1, weightNorm: true, he: false });
    }
    this.bn = new BatchNorm(b, `${name}.bn`, out);
  }

  forward(x: E.Tensor): E.Tensor {
    const skip = this.shortcut ? this.shortcut.forward(x) : x;
    const h = this.conv2.forward(E.elu(this.conv1.forward(E.elu(x))));
    return this.bn.forward(h, skip);
  }
}

/**
 * Gated masked residual block (weight norm, no batch norm):
 * shortcut(x) + conv2(sigmoid(conv1A(ELU x)) * tanh(conv1B(ELU x))), conv1A and conv1B two separate
 * masked convs (so colour groups stay channel mod groups on both), conv2 masked like them, the
 * shortcut a masked 1x1 conv when the width changes.
 */
export class MaskedResBlock implements Layer {
  // Public for the incremental sampler (incremental.ts), which reads their effective weights.
  readonly convA: Conv2d;
  readonly convB: Conv2d;
  readonly conv2: Conv2d;
  readonly shortcut: Conv2d | null;

  constructor(b: Builder, name: string, inp: number, out: number, k: number, mask: ConvMask) {
    const opts = { kernel: k, mask, weightNorm: true, he: true };
    this.convA = new Conv2d(b.params, `${name}.conv1a`, { in: inp, out, ...opts });
    this.convB = new Conv2d(b.params, `${name}.conv1b`, { in: inp, out, ...opts });
    this.conv2 = new Conv2d(b.params, `${name}.conv2`, { in: out, out, ...opts });
    this.shortcut = inp === out ? null : new Conv2d(b.params, `${name}.shortcut`, { in: inp, out, kernel: 1, mask, weightNorm: true, he: false });
  }

  forward(x: E.Tensor): E.Tensor {
    const skip = this.shortcut ? this.shortcut.forward(x) : x;
    const a = E.elu(x);
    const gated = E.sigmoidTanh(this.convA.forward(a), this.convB.forward(a));
    return this.conv2.forward(gated, { residual: skip });
  }
}

/** A masked input conv, gated masked residual blocks and a 1x1 masked output: both PixelCNNs' layers, as incremental.ts walks them. */
export interface MaskedStack {
  readonly input: Conv2d;
  readonly blocks: readonly MaskedResBlock[];
  readonly out: Conv2d;
}

function runAll(layers: readonly Layer[], x: E.Tensor): E.Tensor {
  let h = x;
  for (const l of layers) h = l.forward(h);
  return h;
}

/** Enc1: the embedded image -> q(z1|x)'s raw parameters [B, 2 L1, h1, w1] and the feature map h1. */
export class Encoder1 {
  private readonly input: Conv2d;
  private readonly blocks: Layer[] = [];
  private readonly out: Conv2d;

  constructor(b: Builder, c: HierConfig) {
    const k = c.filter;
    // He init here and in dec1.input; the reference's Enc1.Input and Dec1.Input have he_init=False (docs/departures.md).
    this.input = new Conv2d(b.params, 'enc1.input', { in: c.embedDim * c.channels, out: c.dims[0], kernel: 1, weightNorm: true });
    for (let level = 0; level < c.z1Level; level++) {
      for (let i = 0; i < c.encoderBlocks[level]; i++) this.blocks.push(new ResBlock(b, `enc1.l${level}.res${i}`, c.dims[level], c.dims[level], k));
      this.blocks.push(new ResBlock(b, `enc1.l${level}.down`, c.dims[level], c.dims[level + 1], k, 'down'));
    }
    const d = c.dims[c.z1Level];
    for (let i = 0; i < c.latentBlocks; i++) this.blocks.push(new ResBlock(b, `enc1.l${c.z1Level}.res${i}`, d, d, k));
    this.out = new Conv2d(b.params, 'enc1.out', { in: d, out: 2 * c.latent1, kernel: 1, weightNorm: true, he: false });
  }

  forward(embedded: E.Tensor): { raw: E.Tensor; h1: E.Tensor } {
    const h1 = runAll(this.blocks, this.input.forward(embedded));
    return { raw: this.out.forward(h1), h1 };
  }
}

/** Enc2: h1 -> q(z2|x)'s raw parameters [B, 2 L2]. */
export class Encoder2 {
  private readonly blocks: Layer[] = [];
  private readonly out: Linear;
  private readonly flat: number;

  constructor(b: Builder, c: HierConfig) {
    const k = c.filter;
    const top = c.dims.length - 1;
    for (let level = c.z1Level; level < top; level++) {
      for (let i = 0; i < c.latentBlocks; i++) this.blocks.push(new ResBlock(b, `enc2.l${level}.res${i}`, c.dims[level], c.dims[level], k));
      this.blocks.push(new ResBlock(b, `enc2.l${level}.down`, c.dims[level], c.dims[level + 1], k, 'down'));
    }
    for (let i = 0; i < c.latentBlocks; i++) this.blocks.push(new ResBlock(b, `enc2.l${top}.res${i}`, c.dims[top], c.dims[top], k));
    const g = latentGrids(c).z2;
    this.flat = c.dims[top] * g * g;
    this.out = new Linear(b.params, 'enc2.out', { in: this.flat, out: 2 * c.latent2, weightNorm: true });
  }

  forward(h1: E.Tensor): E.Tensor {
    const h = runAll(this.blocks, h1);
    return this.out.forward(h.view([h.shape[0], this.flat]));
  }
}

/** Dec2's trunk: z2 -> the prior's features at z1's resolution (halved, as the reference). */
export class PriorTrunk {
  private readonly input: Linear;
  private readonly blocks: Layer[] = [];

  constructor(b: Builder, private readonly c: HierConfig) {
    const k = c.filter;
    const top = c.dims.length - 1;
    const g = latentGrids(c).z2;
    this.input = new Linear(b.params, 'dec2.input', { in: c.latent2, out: c.dims[top] * g * g, weightNorm: true });
    for (let i = 0; i < c.latentBlocks; i++) this.blocks.push(new ResBlock(b, `dec2.l${top}.res${i}`, c.dims[top], c.dims[top], k));
    for (let level = top; level > c.z1Level; level--) {
      this.blocks.push(new ResBlock(b, `dec2.l${level}.up`, c.dims[level], c.dims[level - 1], k, 'up'));
      for (let i = 0; i < c.latentBlocks; i++) this.blocks.push(new ResBlock(b, `dec2.l${level - 1}.res${i}`, c.dims[level - 1], c.dims[level - 1], k));
    }
  }

  forward(z2: E.Tensor): E.Tensor {
    const top = this.c.dims.length - 1;
    const g = latentGrids(this.c).z2;
    const x = this.input.forward(E.clamp(z2, -50, 50)).view([z2.shape[0], this.c.dims[top], g, g]);
    return E.scale(runAll(this.blocks, x), 0.5);
  }
}

/**
 * The latent PixelCNN of p(z1|z2): a 'A'-masked input conv on z1 (one group: a position's channels
 * are predicted jointly from earlier positions), concatenated before the features, masked residual
 * blocks (k, k, 1x1) and a 1x1 output to [B, 2 L1, h1, w1] (mu half, then sigma half; raw).
 */
export class LatentPixelCnn implements MaskedStack {
  readonly input: Conv2d;
  readonly blocks: MaskedResBlock[];
  readonly out: Conv2d;

  constructor(b: Builder, c: HierConfig) {
    const d = c.dims[c.z1Level];
    const w = c.latentPixelWidth;
    const mask: ConvMask = { type: 'B', groups: 1 };
    this.input = new Conv2d(b.params, 'dec2.pix.input', { in: c.latent1, out: d, kernel: c.inputFilter, mask: { type: 'A', groups: 1 }, weightNorm: true, he: false });
    this.blocks = [
      new MaskedResBlock(b, 'dec2.pix.res0', 2 * d, w, c.filter, mask),
      new MaskedResBlock(b, 'dec2.pix.res1', w, w, c.filter, mask),
      new MaskedResBlock(b, 'dec2.pix.res2', w, w, 1, mask),
    ];
    this.out = new Conv2d(b.params, 'dec2.pix.out', { in: w, out: 2 * c.latent1, kernel: 1, mask, weightNorm: true, he: false });
  }

  forward(z1: E.Tensor, features: E.Tensor): E.Tensor {
    const h = E.concat([this.input.forward(z1), features], 1); // masked branch first
    return this.out.forward(runAll(this.blocks, h));
  }
}

/** Dec1's trunk: z1 -> features at the image's resolution (halved). */
export class PixelTrunk {
  private readonly input: Conv2d;
  private readonly blocks: Layer[] = [];

  constructor(b: Builder, c: HierConfig) {
    const k = c.filter;
    const d = c.dims[c.z1Level];
    this.input = new Conv2d(b.params, 'dec1.input', { in: c.latent1, out: d, kernel: 1, weightNorm: true }); // He init: see enc1.input
    for (let i = 0; i < c.latentBlocks; i++) this.blocks.push(new ResBlock(b, `dec1.l${c.z1Level}.res${i}`, d, d, k));
    for (let level = c.z1Level; level > 0; level--) {
      this.blocks.push(new ResBlock(b, `dec1.l${level}.up`, c.dims[level], c.dims[level - 1], k, 'up'));
      for (let i = 0; i < c.encoderBlocks[level - 1]; i++) this.blocks.push(new ResBlock(b, `dec1.l${level - 1}.res${i}`, c.dims[level - 1], c.dims[level - 1], k));
    }
  }

  forward(z1: E.Tensor): E.Tensor {
    return E.scale(runAll(this.blocks, this.input.forward(E.clamp(z1, -50, 50))), 0.5);
  }
}

/**
 * The pixel PixelCNN of p(x|z1): an 'A'-masked input conv with colour groups on the embedded image
 * (channel k has colour k mod C), concatenated before the features (so the groups of its channels
 * stay index mod C), masked residual blocks, and a 1x1 'B' output of 256*C channels: channel v*C + c
 * is the logit of value v for colour c, viewed as [B, 256, C, H, W].
 */
export class PixelPixelCnn implements MaskedStack {
  readonly input: Conv2d;
  readonly blocks: MaskedResBlock[] = [];
  readonly out: Conv2d;

  constructor(b: Builder, private readonly c: HierConfig) {
    const groups = c.channels;
    const mask: ConvMask = { type: 'B', groups };
    const d = c.dims[0];
    this.input = new Conv2d(b.params, 'dec1.pix.input', { in: c.embedDim * c.channels, out: d, kernel: c.inputFilter, mask: { type: 'A', groups }, weightNorm: true, he: false });
    this.blocks.push(new MaskedResBlock(b, 'dec1.pix.res0', 2 * d, c.pixelWidth, c.filter, mask));
    for (let i = 1; i < c.pixelBlocks; i++) this.blocks.push(new MaskedResBlock(b, `dec1.pix.res${i}`, c.pixelWidth, c.pixelWidth, c.filter, mask));
    this.out = new Conv2d(b.params, 'dec1.pix.out', { in: c.pixelWidth, out: 256 * c.channels, kernel: 1, mask, weightNorm: true, he: false });
  }

  /** Logits [B, 256, C, H, W] from the embedded image [B, E*C, H, W] and the features. */
  forward(embedded: E.Tensor, features: E.Tensor): E.Tensor {
    const h = E.concat([this.input.forward(embedded), features], 1);
    const logits = this.out.forward(runAll(this.blocks, h));
    const [n, , hh, ww] = logits.shape;
    return logits.view([n, 256, this.c.channels, hh, ww]);
  }
}

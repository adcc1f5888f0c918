// Incremental autoregressive sampling for the hierarchical PixelVAE's two PixelCNNs (the latent
// PixelCNN of p(z1|z2) and the pixel PixelCNN of p(x|z1)), after Ramachandran et al. 2017, "Fast
// Generation for Convolutional Autoregressive Models": at each position every masked conv is
// computed only there, from caches of the rows it reads (shaders/masked_incremental.wgsl), instead
// of one whole network pass per draw.
//
// A level is an op list: the masked input conv, per residual block a gated conv (on ELU(x):
// sigmoid(A) * tanh(B)) and conv2 with its residual (identity or the masked 1x1 shortcut), then the
// 1x1 output. Effective weights (weight norm applied, regrouped into the kernel's blocks of 4
// channels) and, at the pixel level, the embedding table are packed once per call into one u32
// buffer; the caches are ring maps of the last rows in one state buffer, next to the features.
// One dispatch per position (all its colours), no readback: the caller throttles.
import incrementalWgsl from '../../../shaders/masked_incremental.wgsl?raw';
import * as E from '../../engine';
import { Params, launch } from '../../engine/kernels';
import type { KernelSpec } from '../../gpu/context';
import type { Conv2d } from '../../nn/layers';
import type { MaskedStack } from './networks';
import { NO_OFFSET, PackedConstants } from '../packed-constants';

/** Words per op in the table (the shader's OP_WORDS). */
const OP_WORDS = 24;
const FLAG_GATED = 2;
const FLAG_VECTOR = 4;
const MASK_CODE = { A: 1, B: 2 } as const;
const RESIDUAL = { none: 0, identity: 1, conv: 2 } as const;
/** Most threads per workgroup. */
const WORKGROUP = 64;
const CLASSES = 256;

export interface IncrementalLevel {
  /** The PixelCNN's layers. */
  stack: MaskedStack;
  /** Its conditioning features [N, F, H, W], concatenated after the input conv's output. */
  features: E.Tensor;
  /** Pre-drawn noise: eps [N, L, H, W] (latent level) or uniforms [N, C, H, W] (pixel level). */
  noise: E.Tensor;
  /** Written in place as positions are drawn: z f32 [N, L, H, W] or images u32 [N, C, H, W]. */
  canvas: E.Tensor;
  /**
   * Pixel level: the embedding table [256, E] (input channel e*C + c of a pixel is table[x_c, e],
   * model.ts's embed()). Absent: the latent level, whose input is the canvas itself.
   */
  embedding?: E.Tensor;
  /** Latent level: the prior's sigma floor (gaussian_at's). */
  floor?: number;
}

/** A conv's source: a ring map (channels < split) then the features (the rest, at `features` in the state). */
interface Source {
  base: number;
  split: number;
  channels: number;
  features: number;
}

function nextPow2(v: number): number {
  let p = 1;
  while (p < v) p *= 2;
  return p;
}


/**
 * Output channels in the kernel's work-item order: for each colour group g (channels g, g + groups,
 * ...), blocks of 4 consecutive channels of the group, the last block padded with its last channel.
 */
function blockOrder(cout: number, groups: number): Uint32Array {
  const order: number[] = [];
  for (let g = 0; g < Math.min(groups, cout); g++) {
    const count = Math.ceil((cout - g) / groups);
    for (let q = 0; q < Math.ceil(count / 4) * 4; q++) order.push(g + groups * Math.min(q, count - 1));
  }
  return Uint32Array.from(order);
}

/** A weight [cout, ...] (or bias [cout]) regrouped as [blocks, rest, 4]: a block's 4 channels are one vec4 per tap. */
function repack(t: E.Tensor, groups: number): E.Tensor {
  const cout = t.shape[0];
  const rest = t.size / cout;
  const order = blockOrder(cout, groups);
  const rows = E.embedding(E.fromArray(order, [order.length], 'u32'), t.view([cout, rest]));
  return E.transpose(rows.view([order.length / 4, 4, rest]), [0, 2, 1]);
}

function check(ok: boolean, detail: string): void {
  if (!ok) throw new E.ShapeError('incremental sampler', detail);
}

/** Samples one PixelCNN level position by position; build once per call, encode every position, then dispose. */
export class IncrementalSampler {
  /** Raster positions (H*W) and draws per position (C at the pixel level, 1 at the latent level). */
  readonly positions: number;
  readonly colours: number;

  private constructor(
    private readonly spec: KernelSpec,
    private readonly packed: E.Tensor,
    private readonly state: E.Tensor,
    private readonly inputs: IncrementalLevel,
    private readonly head: { ring: number; ops: number; inputBase: number; inputChannels: number; logits: number; exps: number; featureBase: number; embedDim: number; embedTable: number },
    private readonly workgroups: number,
    height: number,
    width: number,
  ) {
    this.positions = height * width;
    this.colours = inputs.embedding ? inputs.canvas.shape[1] : 1;
  }

  /** Packs the level's weights and allocates its caches (call inside noGrad). */
  static create(inputs: IncrementalLevel): IncrementalSampler {
    const { stack, features, noise, canvas, embedding } = inputs;
    const pixel = embedding !== undefined;
    check(canvas.rank === 4 && features.rank === 4 && noise.rank === 4, `canvas ${E.shapeString(canvas.shape)}, features ${E.shapeString(features.shape)} and noise ${E.shapeString(noise.shape)} must be NCHW`);
    const [batch, canvasChannels, height, width] = canvas.shape;
    check(canvas.dtype === (pixel ? 'u32' : 'f32'), `the ${pixel ? 'pixel' : 'latent'} canvas must be ${pixel ? 'u32' : 'f32'}, got ${canvas.dtype}`);
    check(noise.shape.every((d, i) => d === canvas.shape[i]), `noise ${E.shapeString(noise.shape)} must match the canvas ${E.shapeString(canvas.shape)}`);
    check(features.shape[0] === batch && features.shape[2] === height && features.shape[3] === width, `features ${E.shapeString(features.shape)} must be [${batch}, F, ${height}, ${width}]`);
    const featureChannels = features.shape[1];
    const embedDim = embedding ? embedding.shape[1] : 0;
    const inputChannels = pixel ? embedDim * canvasChannels : canvasChannels;
    if (embedding) check(embedding.rank === 2 && embedding.shape[0] === CLASSES, `embedding ${E.shapeString(embedding.shape)} must be [256, E]`);
    check(stack.input.opts.in === inputChannels, `the input conv takes ${stack.input.opts.in} channels, the canvas gives ${inputChannels}`);
    const groups = stack.input.opts.mask?.groups ?? 1;
    if (pixel) check(groups === canvasChannels, `the pixel level's masks need ${canvasChannels} colour groups, got ${groups}`);
    const convs: Conv2d[] = [stack.input, stack.out];
    for (const block of stack.blocks) convs.push(block.convA, block.convB, block.conv2, ...(block.shortcut ? [block.shortcut] : []));
    for (const conv of convs) {
      const mask = conv.opts.mask;
      const k = conv.kh;
      check(mask !== undefined && (mask.type === 'A' || mask.type === 'B'), `${conv.name} must be an 'A' or 'B' masked conv`);
      check(conv.kw === k && k % 2 === 1 && (conv.opts.stride ?? 1) === 1 && conv.padding.every((v) => v === (k - 1) / 2), `${conv.name} must be square, odd, stride 1, half-padded`);
      check((mask?.groups ?? 1) === groups, `${conv.name} has ${mask?.groups ?? 1} colour groups, the level ${groups}`);
      check(conv.b !== null, `${conv.name} has no bias`);
      if (conv !== stack.input) check(mask?.type === 'B', `${conv.name} must be 'B'-masked`);
    }
    check(stack.input.opts.mask?.type === 'A', `${stack.input.name} must be 'A'-masked`);
    check(stack.out.kh === 1, `${stack.out.name} must be 1x1`);
    if (pixel) check(stack.out.opts.out === CLASSES * canvasChannels, `${stack.out.name} gives ${stack.out.opts.out} channels, not 256 x ${canvasChannels}`);
    else check(stack.out.opts.out === 2 * canvasChannels, `${stack.out.name} gives ${stack.out.opts.out} channels, not 2 x ${canvasChannels}`);

    return E.tidy(() => {
      // Every map keeps the rows the widest conv reading it reaches: k//2 above, plus the current one.
      const ring = Math.max(...convs.map((conv) => Math.floor(conv.kh / 2) + 1));
      let words = 0;
      const region = (size: number): number => {
        const at = words;
        words += size;
        return at;
      };
      const ringMap = (channels: number): number => region(ring * batch * channels * width);
      const opCount = 2 + 2 * stack.blocks.length;
      const packer = new PackedConstants(opCount * OP_WORDS);
      const table = packer.table;
      let opIndex = 0;
      const addOp = (
        conv: Conv2d,
        source: Source,
        flags: number,
        dst: { base: number; channels: number; elu?: number },
        extra: { convB?: Conv2d; residual?: { kind: 'identity' | 'conv'; source: Source; conv?: Conv2d } } = {},
      ): void => {
        check(conv.opts.in === source.channels, `${conv.name} takes ${conv.opts.in} channels, its input has ${source.channels}`);
        const t = opIndex++ * OP_WORDS;
        table[t] = flags;
        table[t + 1] = conv.opts.in;
        table[t + 2] = conv.opts.out;
        table[t + 3] = conv.kh;
        table[t + 4] = groups;
        table[t + 5] = MASK_CODE[conv.opts.mask!.type as 'A' | 'B'];
        table[t + 6] = source.base;
        table[t + 7] = source.split;
        const add = (tensor: E.Tensor): number => packer.add(repack(tensor, groups));
        table[t + 8] = add(conv.weight());
        table[t + 9] = add(conv.b!);
        if (extra.convB) {
          table[t + 10] = add(extra.convB.weight());
          table[t + 11] = add(extra.convB.b!);
        }
        const residual = extra.residual;
        table[t + 12] = residual ? RESIDUAL[residual.kind] : RESIDUAL.none;
        if (residual) {
          if (residual.conv) {
            table[t + 13] = add(residual.conv.weight());
            table[t + 14] = add(residual.conv.b!);
          } else {
            check(residual.source.channels === conv.opts.out, `${conv.name}'s identity residual has ${residual.source.channels} channels, not ${conv.opts.out}`);
          }
          table[t + 15] = residual.source.base;
          table[t + 16] = residual.source.split;
          table[t + 17] = residual.source.channels;
        }
        table[t + 18] = dst.base;
        table[t + 19] = dst.channels;
        table[t + 20] = source.features;
        table[t + 21] = dst.elu ?? NO_OFFSET;
      };

      // The gated convs read ELU(x) (their pre-activation): the op writing x also writes ELU(x) to a
      // second map, and the features get an ELU'd copy, so no exp runs inside the conv loops.
      const features0 = region(features.size);
      const featuresElu = region(features.size);
      const inputBase = ringMap(inputChannels);
      const d = stack.input.opts.out;
      let raw: Source = { base: ringMap(d), split: d, channels: d + featureChannels, features: features0 };
      let activated: Source = { ...raw, base: ringMap(d), features: featuresElu };
      addOp(stack.input, { base: inputBase, split: inputChannels, channels: inputChannels, features: features0 }, 0, { base: raw.base, channels: d, elu: activated.base });
      stack.blocks.forEach((block, i) => {
        const width = block.convA.opts.out;
        const out = block.conv2.opts.out;
        check(block.convB.opts.out === width && block.conv2.opts.in === width, `${block.convA.name}: conv widths do not chain`);
        const gated: Source = { base: ringMap(width), split: width, channels: width, features: features0 };
        addOp(block.convA, activated, FLAG_GATED, { base: gated.base, channels: width }, { convB: block.convB });
        const next: Source = { base: ringMap(out), split: out, channels: out, features: features0 };
        const last = i + 1 === stack.blocks.length;
        const nextElu = last ? NO_OFFSET : ringMap(out);
        const residual = block.shortcut ? { kind: 'conv' as const, source: raw, conv: block.shortcut } : { kind: 'identity' as const, source: raw };
        addOp(block.conv2, gated, 0, { base: next.base, channels: out, elu: nextElu }, { residual });
        raw = next;
        activated = { ...next, base: nextElu, features: featuresElu };
      });
      const logits = region(batch * stack.out.opts.out);
      addOp(stack.out, raw, FLAG_VECTOR, { base: logits, channels: stack.out.opts.out });
      const exps = pixel ? region(batch * CLASSES) : 0;
      const embedTable = embedding ? packer.add(embedding) : 0;
      const gpu = E.engine().gpu;
      const limit = gpu.device.limits.maxStorageBufferBindingSize;
      check(words * 4 <= limit, `the caches and features of a batch of ${batch} take ${words * 4} bytes, more than this adapter binds (${limit}); sample fewer images at once`);
      const packed = E.keep(packer.build());
      const state = E.keep(E.zeros([words]));
      // The features join the state buffer (one binding for every map the convs read), raw and ELU'd
      // by the full network's own op.
      gpu.copy(features.buffer, 0, state.buffer, features0 * 4, features.size * 4);
      gpu.copy(E.elu(features).buffer, 0, state.buffer, featuresElu * 4, features.size * 4);
      const featureBase = features0;

      // Work items are 4 channels of one colour group for IB images; a workgroup holds TI blocks of
      // IB images. IB = 4 makes each weight load serve 4 images; TI fills a workgroup's threads;
      // both shrink for small batches so that at least two workgroups share the adapter.
      const perThread = Math.min(4, Math.max(1, Math.floor(batch / 2)));
      const blocks = Math.max(1, Math.min(4, Math.floor(batch / (2 * perThread))));
      let widest = 1;
      for (let o = 0; o < opCount; o++) widest = Math.max(widest, Math.ceil(table[o * OP_WORDS + 2] / groups));
      const threads = Math.min(WORKGROUP, nextPow2(Math.ceil(widest / 4) * blocks));
      const spec: KernelSpec = {
        name: 'masked_incremental.wgsl',
        code: incrementalWgsl,
        entry: 'sample_step',
        constants: { T: threads, IB: perThread, TI: blocks, PIXEL: pixel ? 1 : 0 },
        bindings: ['read', 'read', 'rw', 'rw', 'read'],
      };
      return new IncrementalSampler(
        spec,
        packed,
        state,
        inputs,
        { ring, ops: opCount, inputBase, inputChannels, logits, exps, featureBase, embedDim, embedTable },
        Math.ceil(batch / (perThread * blocks)),
        height,
        width,
      );
    });
  }

  /** Encodes the draws of positions [position, position + count) (raster order, every colour): one dispatch. */
  encode(position: number, count = 1): void {
    if (!(Number.isInteger(position) && Number.isInteger(count) && position >= 0 && count >= 1 && position + count <= this.positions)) {
      throw new Error(`incremental sampler: positions ${position}..${position + count - 1} outside 0..${this.positions - 1}`);
    }
    const [batch, , height, width] = this.inputs.canvas.shape;
    const h = this.head;
    const params = new Params()
      .u(batch, height, width, h.ring)
      .u(position, count, h.ops, this.colours)
      .u(this.inputs.features.shape[1], h.featureBase, h.inputBase, h.inputChannels)
      .u(h.logits, h.exps, h.embedDim, h.embedTable)
      .f(this.inputs.floor ?? 0)
      .build();
    const { noise, canvas } = this.inputs;
    launch(this.spec, [this.packed.buffer, noise.buffer, canvas.buffer, this.state.buffer, this.packed.buffer], params, [this.workgroups]);
  }

  dispose(): void {
    this.packed.dispose();
    this.state.dispose();
  }
}

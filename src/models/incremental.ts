// Incremental autoregressive sampling for the MNIST PixelCNN decoders (gated two-stack, with or
// without z in the gates or decoder features at the input; blind-spot masked), after Ramachandran et
// al. 2017, "Fast Generation for Convolutional Autoregressive Models": each layer is computed only
// where the new pixel changes it, from per-layer caches on the GPU (shaders/pixelcnn_incremental.wgsl).
//
// Per image row (gated stacks): every layer's vertical-stack row and its v2h row from the ring
// buffers of the last c+1 rows of the layer below, two dispatches per layer. Per pixel: one dispatch
// computes every layer's horizontal stack (gated) or masked conv (blind-spot) at the new pixel, the
// head and the Bernoulli draw from the pre-drawn uniforms. The whole loop is encoded with no readback.
//
// Effective weights (weight norm applied; the masks are the kernels' loop bounds, as in conv_forward.wgsl) and
// the z terms (computed by the same ops the full decoder uses) are packed once per call into one u32
// buffer behind a table of offsets. The draws equal the full-recompute sampler's: same uniforms, same
// rule (pixel = uniform < sigmoid(logit)), sums in the same order (test/incremental.test.ts).
import incrementalWgsl from '../../shaders/pixelcnn_incremental.wgsl?raw';
import * as E from '../engine';
import { Params, launch, threadsGrid } from '../engine/kernels';
import type { KernelSpec } from '../gpu/context';
import type { Conv2d } from '../nn/layers';
import { GatedPixelCnn, type GateConditioning, type MaskedPixelCnn } from './networks';
import { NO_OFFSET, PackedConstants } from './packed-constants';

const TABLE_STRIDE = 16;
// The packed constants bind twice: as u32 words (the table, scalar weights) and as vec4 (weights
// reordered so one load feeds four output channels: lavapipe bounds-checks every load, so loads dominate).
const BINDINGS = ['read', 'read', 'read', 'rw', 'rw', 'rw', 'read'] as const;
/** Threads per workgroup the pixel entries aim for (G images x T threads). */
const PIXEL_WORKGROUP = 64;

function spec(entry: string, constants: Record<string, number>): KernelSpec {
  return { name: 'pixelcnn_incremental.wgsl', code: incrementalWgsl, entry, constants, bindings: BINDINGS };
}

export interface IncrementalSampleInputs {
  /** The decoder's PixelCNN. */
  net: GatedPixelCnn | MaskedPixelCnn;
  /** z [B, Z] for decoders with z in every gate (gated-pixelvae-cond); otherwise ignored. */
  z: E.Tensor | null;
  /** Upsampling-decoder features [B, D, S, S], concatenated after the image at the input layer. */
  features: E.Tensor | null;
  /** Uniforms [B, 1, S, S] in [0, 1): pixel i of image b is uniforms[b, i] < p_i. */
  uniforms: E.Tensor;
}

/** Kernel variants and launch shapes of one sampler configuration. */
interface Plan {
  p: number;
  ow: number;
  threadsPerImage: number;
  imagesPerGroup: number;
  cond: boolean;
}

function planFor(p: number, ow: number, cond: boolean): Plan {
  const threadsPerImage = Math.max(p, ow);
  return { p, ow, threadsPerImage, imagesPerGroup: Math.max(1, Math.floor(PIXEL_WORKGROUP / threadsPerImage)), cond };
}

function constantsOf(plan: Plan): Record<string, number> {
  return {
    P: plan.p,
    OW: plan.ow,
    T: plan.threadsPerImage,
    G: plan.imagesPerGroup,
    WGMEM: plan.imagesPerGroup * plan.threadsPerImage,
    COND: plan.cond ? 1 : 0,
  };
}


/** Offsets (in f32 words) of the regions of the state buffer. */
class StateLayout {
  words = 0;
  region(size: number): number {
    const offset = this.words;
    this.words += size;
    return offset;
  }
}

function convBias(packer: PackedConstants, conv: Conv2d): number {
  if (!conv.b) throw new Error(`incremental sampling: ${conv.name} has no bias`);
  return packer.add(conv.b);
}

function convWeights(packer: PackedConstants, conv: Conv2d): [number, number] {
  const bias = convBias(packer, conv);
  return [packer.add(conv.weight()), bias];
}

/**
 * A conv's weight [CO, CI, KH, KW] as [ceil(CO/4), CI, KH, KW, 4] (output channels padded with zeros
 * to a multiple of 4): one vec4 load gives a tap's weights for 4 output channels.
 */
function outputQuads(packer: PackedConstants, conv: Conv2d): number {
  const w = conv.weight();
  const [co, ci, kh, kw] = w.shape;
  const co4 = Math.ceil(co / 4) * 4;
  const padded = co4 === co ? w : E.pad(w, [[0, co4 - co], [0, 0], [0, 0], [0, 0]]);
  return packer.add(E.transpose(E.reshape(padded, [co4 / 4, 4, ci, kh, kw]), [0, 2, 3, 4, 1]));
}

/** z's interleaved gate terms [B, 2W], the tensor the full decoder's gates add (GateConditioning.term). */
function zTerm(packer: PackedConstants, cond: GateConditioning | null, z: E.Tensor | null, batch: number, width2: number): number {
  if (!cond) return NO_OFFSET;
  if (!z) throw new Error('incremental sampling: this decoder needs z');
  const term = cond.term(z);
  if (term.shape[0] !== batch || term.shape[1] !== width2) throw new E.ShapeError('sampleIncremental', `z terms ${E.shapeString(term.shape)} must be [${batch}, ${width2}]`);
  return packer.add(term);
}

/**
 * Samples images with the decoder's PixelCNN, one pixel at a time, computing each layer only where
 * the new pixel changes it. Returns { images, probs } [B, 1, S, S] as MnistModel.sample does: probs
 * holds p(x_i = 1 | x_<i) at the time pixel i was drawn. Call inside noGrad.
 */
export function sampleIncremental(inputs: IncrementalSampleInputs): { images: E.Tensor; probs: E.Tensor } {
  const { net, uniforms } = inputs;
  if (uniforms.rank !== 4 || uniforms.shape[1] !== 1 || uniforms.shape[2] !== uniforms.shape[3]) {
    throw new E.ShapeError('sampleIncremental', `uniforms ${E.shapeString(uniforms.shape)} must be [B, 1, S, S]`);
  }
  const [batch, , height, width] = uniforms.shape;
  const features = inputs.features;
  const featureChannels = features ? features.shape[1] : 0;
  if (features && (features.rank !== 4 || features.shape[0] !== batch || features.shape[2] !== height || features.shape[3] !== width)) {
    throw new E.ShapeError('sampleIncremental', `features ${E.shapeString(features.shape)} must be [${batch}, D, ${height}, ${width}]`);
  }
  return E.tidy(() => {
    const images = E.zeros([batch, 1, height, width]);
    const probs = E.empty([batch, 1, height, width]);
    const gated = net instanceof GatedPixelCnn;
    const layers = gated ? net.layers.length : net.layers.length + 1;
    const packer = new PackedConstants((layers + 1) * TABLE_STRIDE);
    const table = packer.table;
    const state = new StateLayout();
    const plane = batch * width;
    let plan: Plan;
    let ring = 1;
    const head = layers * TABLE_STRIDE;

    if (net instanceof GatedPixelCnn) {
      const p = net.layers[0].width;
      const cond = net.layers[0].hcond !== null; // the last layer has no vertical output, so no vcond
      for (let l = 1; l < layers; l++) ring = Math.max(ring, Math.floor(net.layers[l].vconv.kh / 2) + 1);
      net.layers.forEach((layer, l) => {
        const t = l * TABLE_STRIDE;
        // The row kernels read the vertical and v2h weights only as output quads (slots 15 and 2).
        table[t + 1] = convBias(packer, layer.vconv);
        table[t + 3] = convBias(packer, layer.v2h);
        [table[t + 4], table[t + 5]] = convWeights(packer, layer.hconv);
        [table[t + 6], table[t + 7]] = convWeights(packer, layer.h2h);
        table[t + 8] = zTerm(packer, layer.vcond, inputs.z, batch, 2 * p);
        table[t + 9] = zTerm(packer, layer.hcond, inputs.z, batch, 2 * p);
        table[t + 10] = layer.vconv.opts.in;
        table[t + 11] = layer.vconv.kh;
        table[t + 12] = l + 1 < layers ? state.region(ring * plane * p) : 0;
        table[t + 13] = state.region(plane * p);
        table[t + 14] = state.region(plane * 2 * p);
        table[t + 15] = outputQuads(packer, layer.vconv);
        table[t + 2] = outputQuads(packer, layer.v2h);
      });
      const h = net.head;
      const ow = h.out1.opts.out / 2;
      [table[head], table[head + 1]] = convWeights(packer, h.out1);
      [table[head + 2], table[head + 3]] = convWeights(packer, h.out2);
      [table[head + 4], table[head + 5]] = convWeights(packer, h.out3);
      table[head + 6] = zTerm(packer, h.cond1, inputs.z, batch, 2 * ow);
      table[head + 7] = zTerm(packer, h.cond2, inputs.z, batch, 2 * ow);
      plan = planFor(p, ow, cond);
    } else {
      const convs = [net.input, ...net.layers];
      const p = net.input.opts.out;
      for (let l = 1; l < layers; l++) ring = Math.max(ring, Math.floor(convs[l].kh / 2) + 1);
      convs.forEach((conv, l) => {
        const t = l * TABLE_STRIDE;
        [table[t], table[t + 1]] = convWeights(packer, conv);
        table[t + 10] = conv.opts.in;
        table[t + 11] = conv.kh;
        table[t + 12] = l + 1 < layers ? state.region(ring * plane * p) : 0;
      });
      [table[head], table[head + 1]] = convWeights(packer, net.out1);
      [table[head + 2], table[head + 3]] = convWeights(packer, net.out2);
      [table[head + 4], table[head + 5]] = convWeights(packer, net.out3);
      plan = planFor(p, net.out1.opts.out, false);
    }
    const firstIn = gated ? (net as GatedPixelCnn).layers[0].vconv.opts.in : (net as MaskedPixelCnn).input.opts.in;
    if (firstIn !== 1 + featureChannels) {
      throw new E.ShapeError('sampleIncremental', `the input layer takes ${firstIn} channels but image + features give ${1 + featureChannels}`);
    }
    const vpre = gated ? state.region(plane * 2 * plan.p) : 0;
    const packed = packer.build();
    const stateBuffer = E.empty([Math.max(1, state.words)]);
    const featureBuffer = features ?? E.zeros([1]);
    const buffers = [packed.buffer, uniforms.buffer, featureBuffer.buffer, images.buffer, probs.buffer, stateBuffer.buffer, packed.buffer];
    const constants = constantsOf(plan);
    // The row kernel's loops over the kernel unroll: one variant for the input layer's size, one for the rest.
    const rowSpecs = gated ? (net as GatedPixelCnn).layers.map((layer) => spec('gated_row', { ...constants, KR: layer.vconv.kh })) : [];
    const v2hSpec = spec('gated_v2h', constants);
    const pixelSpec = spec(gated ? 'gated_pixel' : 'masked_pixel', constants);
    const cblocks = Math.ceil((2 * plan.p) / 4);
    const xblocks = Math.ceil(width / 4);
    // Threads per channel block; the channel blocks are the grid's z (uniform weight addresses).
    const rowThreads = batch * xblocks;
    const rowGrid = [...threadsGrid(rowThreads, 64), cblocks];
    const pixelGroups = [Math.ceil(batch / plan.imagesPerGroup)];
    const params = (row: number, col: number, layer: number): Uint32Array =>
      new Params()
        .u(batch, height, width, layers)
        .u(row, col, layer, ring)
        .u(featureChannels, head, vpre, rowThreads)
        .u(cblocks, xblocks, 0, 0)
        .build();

    for (let row = 0; row < height; row++) {
      if (gated) {
        for (let l = 0; l < layers; l++) {
          const lp = params(row, 0, l);
          launch(rowSpecs[l], buffers, lp, rowGrid);
          launch(v2hSpec, buffers, lp, rowGrid);
        }
      }
      for (let col = 0; col < width; col++) launch(pixelSpec, buffers, params(row, col, 0), pixelGroups);
    }
    return { images, probs };
  });
}

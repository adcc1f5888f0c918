// The paper's Appendix E.1 gated PixelVAE as a framework-free description, shared by the TensorFlow.js
// and jax-js twins of our model (tfjs-model.ts, jax-model.ts): parameter names and shapes in OUR
// layout (conv [out, in, kh, kw], linear [out, in], transposed conv [in, out, k, k]), the causal masks,
// and small pure helpers (layout permutation, counts). Pure: no GPU, no framework imports, so vitest
// can check it and each twin converts our exported weights with the same code.
import { mnistConfig, type MnistModelConfig } from '../../models/config';

/** The benchmarked model: preset gated-pixelvae with latent 64, 2 residual layers, width 32 (issue 13). */
export function e1Config(): MnistModelConfig {
  return mnistConfig('gated-pixelvae', { latentDim: 64, pixelLayers: 2, pixelWidth: 32 });
}

/** The same preset at small widths, for a quick smoke run of the page (?quick=1); never for figures. */
export function quickConfig(): MnistModelConfig {
  return mnistConfig('gated-pixelvae', { latentDim: 8, pixelLayers: 2, pixelWidth: 8, encoderDims: [8, 8, 16, 16], decoderDims: [16, 16, 8], outputWidth: 8 });
}

export interface ParamShape {
  name: string;
  shape: number[];
}

export type MaskType = 'A' | 'B' | 'vstack';

/** One gated stack layer of the PixelCNN (networks.ts GatedStackLayer), as the twins need it. */
export interface GatedLayerSpec {
  name: string;
  inChannels: number;
  k: number;
  /** 'A' for the input layer (the current pixel hidden), 'B' after. */
  hmask: 'A' | 'B';
  residual: boolean;
  /** False for the last layer: its vertical output feeds nothing. */
  verticalOutput: boolean;
}

/** Spatial sizes through the encoder (as networks.ts encoderSizes): 28 -> 14 -> 7 (padded to 8) -> 4. */
export function sizes(c: MnistModelConfig): { half: number; quarter: number; quarterPadded: number; eighth: number } {
  const half = c.imageSize / 2;
  const quarter = c.imageSize / 4;
  const quarterPadded = quarter + (quarter % 2);
  return { half, quarter, quarterPadded, eighth: quarterPadded / 2 };
}

/** Encoder convs: [name, in, out, stride] in order (8 ReLU 3x3 convs, 3 of them strided). */
export function encoderConvs(c: MnistModelConfig): [string, number, number, 1 | 2][] {
  const [d1, d2, d3, d4] = c.encoderDims;
  return [['enc.1', 1, d1, 1], ['enc.2', d1, d2, 2], ['enc.3', d2, d2, 1], ['enc.4', d2, d3, 2], ['enc.5', d3, d3, 1], ['enc.6', d3, d4, 2], ['enc.7', d4, d4, 1], ['enc.8', d4, d4, 1]];
}

/** The gated stack layers: the 7x7 input layer ('A' mask), then pixelLayers residual 5x5 layers. */
export function gatedLayers(c: MnistModelConfig): GatedLayerSpec[] {
  const features = c.decoderDims[2];
  const layers: GatedLayerSpec[] = [{ name: 'pix.input', inChannels: 1 + features, k: c.inputFilterSize, hmask: 'A', residual: false, verticalOutput: c.pixelLayers > 0 }];
  for (let i = 1; i <= c.pixelLayers; i++) layers.push({ name: `pix.${i}`, inChannels: c.pixelWidth, k: c.filterSize, hmask: 'B', residual: true, verticalOutput: i < c.pixelLayers });
  return layers;
}

/**
 * Every parameter of the E.1 model with our names and shapes (the same list as MnistModel's ParamSet
 * for this preset; the page checks that against ours, name by name). Weight-normed layers have a
 * `.gain` [out]; the transposed convs (the reference's Deconv2D) have none.
 */
export function paramShapes(c: MnistModelConfig): ParamShape[] {
  if (c.preset !== 'gated-pixelvae') throw new Error(`paramShapes: only gated-pixelvae is described here (got ${c.preset})`);
  const out: ParamShape[] = [];
  const wn = c.weightNorm;
  const conv = (name: string, cin: number, cout: number, kh: number, kw: number): void => {
    out.push({ name: `${name}.weight`, shape: [cout, cin, kh, kw] });
    if (wn) out.push({ name: `${name}.gain`, shape: [cout] });
    out.push({ name: `${name}.bias`, shape: [cout] });
  };
  const linear = (name: string, cin: number, cout: number): void => {
    out.push({ name: `${name}.weight`, shape: [cout, cin] });
    if (wn) out.push({ name: `${name}.gain`, shape: [cout] });
    out.push({ name: `${name}.bias`, shape: [cout] });
  };
  const s = sizes(c);
  for (const [name, cin, cout] of encoderConvs(c)) conv(name, cin, cout, 3, 3);
  linear('enc.out', c.encoderDims[3] * s.eighth ** 2, 2 * c.latentDim);
  const [d0, d1, d2] = c.decoderDims;
  linear('dec.fc', c.latentDim, d0 * s.eighth ** 2);
  for (const [name, ch] of [['dec.conv1', d0], ['dec.conv2', d0], ['dec.conv3', d1], ['dec.conv4', d2], ['dec.conv5', d2]] as const) conv(name, ch, ch, 3, 3);
  for (const [name, cin, cout] of [['dec.deconv1', d0, d1], ['dec.deconv2', d1, d2], ['dec.deconv3', d2, d2]] as const) {
    out.push({ name: `${name}.weight`, shape: [cin, cout, 3, 3] });
    out.push({ name: `${name}.bias`, shape: [cout] });
  }
  const p = c.pixelWidth;
  for (const l of gatedLayers(c)) {
    conv(`${l.name}.vstack`, l.inChannels, 2 * p, l.k, l.k);
    conv(`${l.name}.v2h`, 2 * p, 2 * p, 1, 1);
    conv(`${l.name}.hstack`, l.inChannels, 2 * p, 1, l.k);
    conv(`${l.name}.h2h`, p, p, 1, 1);
  }
  const w = c.outputWidth;
  conv('pix.out1', p, 2 * w, 1, 1);
  conv('pix.out2', w, 2 * w, 1, 1);
  conv('pix.out3', w, 1, 1, 1);
  return out;
}

export function countParams(shapes: readonly { shape: readonly number[] }[]): number {
  return shapes.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * The taps of a kh x kw kernel a mask keeps, row-major, 1 kept / 0 dropped (as the engine's ConvMask,
 * one colour group): 'vstack' keeps rows <= centre; 'A' rows above and the centre row left of the
 * centre; 'B' also the centre. The twins multiply their weights by it (they compute the zero taps).
 */
export function maskTaps(kh: number, kw: number, type: MaskType): Float32Array {
  const cy = Math.floor(kh / 2);
  const cx = Math.floor(kw / 2);
  const m = new Float32Array(kh * kw);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      const keep = type === 'vstack' ? y <= cy : y < cy || (y === cy && (x < cx || (type === 'B' && x === cx)));
      m[y * kw + x] = keep ? 1 : 0;
    }
  }
  return m;
}

/** Permutes a dense row-major array of `shape` by `perm` (out axis i = in axis perm[i]), as numpy's transpose. */
export function permute(data: Float32Array, shape: readonly number[], perm: readonly number[]): { data: Float32Array; shape: number[] } {
  const rank = shape.length;
  if (perm.length !== rank || data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`permute: shape [${shape}] and perm [${perm}] do not fit ${data.length} values`);
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  const strides = perm.map((p) => inStrides[p]);
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let i = 0; i < rank; i++) src += index[i] * strides[i];
    out[o] = data[src];
    for (let i = rank - 1; i >= 0; i--) {
      if (++index[i] < outShape[i]) break;
      index[i] = 0;
    }
  }
  return { data: out, shape: outShape };
}

/** True for the parameters of a layer whose output feeds a gate (vstack, hstack, v2h, out1, out2). */
function preGate(name: string): boolean {
  return /^pix\.[^.]+\.(vstack|hstack|v2h)\.|^pix\.out[12]\./.test(name);
}

/**
 * Our gates read interleaved channels (tanh from 2c, sigmoid from 2c + 1). The twins gate the first and
 * second halves instead (a plain split, as a user of those frameworks would write it), so the output
 * channels of every pre-gate layer, and the input channels of v2h (whose input is a pre-gate map),
 * are reordered even-then-odd when our weights are loaded: the same function, relabelled channels.
 */
export function deinterleaveForGates(name: string, data: Float32Array, shape: readonly number[]): Float32Array {
  if (!preGate(name)) return data;
  const reorderAxis = (src: Float32Array, dims: readonly number[], axis: number): Float32Array => {
    const n = dims[axis];
    const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
    const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
    const out = new Float32Array(src.length);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < n; j++) {
        const from = j < n / 2 ? 2 * j : 2 * (j - n / 2) + 1;
        out.set(src.subarray((o * n + from) * inner, (o * n + from + 1) * inner), (o * n + j) * inner);
      }
    }
    return out;
  };
  let out = reorderAxis(data, shape, 0);
  if (/\.v2h\.weight$/.test(name)) out = reorderAxis(out, shape, 1);
  return out;
}

/** Flips the two last (spatial) axes of a rank-4 array: a transposed conv as a plain conv needs it. */
export function flipSpatial(data: Float32Array, shape: readonly number[]): Float32Array {
  const [a, b, kh, kw] = shape;
  const out = new Float32Array(data.length);
  for (let i = 0; i < a * b; i++) {
    for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) out[(i * kh + y) * kw + x] = data[(i * kh + (kh - 1 - y)) * kw + (kw - 1 - x)];
  }
  return out;
}

/** A synthetic binary batch [B, 1, S, S] (0/1) and N(0, 1) noise [B, Z], from a fixed seed: the same on every framework. */
export function syntheticBatch(batch: number, size: number, latentDim: number, seed: number): { x: Float32Array; noise: Float32Array } {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const x = new Float32Array(batch * size * size);
  for (let i = 0; i < x.length; i++) x[i] = next() < 0.3 ? 1 : 0;
  const noise = new Float32Array(batch * latentDim);
  for (let i = 0; i < noise.length; i++) noise[i] = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  return { x, noise };
}

/** Adam as ours (TF / Lasagne form): element-wise clip at 1, then step lr * sqrt(1 - b2^t) / (1 - b1^t). */
export const ADAM = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, clip: 1 } as const;

export function adamStepSize(t: number): number {
  return (ADAM.lr * Math.sqrt(1 - ADAM.beta2 ** t)) / (1 - ADAM.beta1 ** t);
}

// From a user's image (RGBA pixels of any size, from a canvas, an upload or a PNG file) to the
// model's input: grayscale intensities in [0, 1], 28x28, white digit on black like MNIST.
// Platform-free: the browser and the command line both call it.
//
// Steps, in order:
//  1. Grayscale: alpha is composited over white (how a browser shows a transparent PNG, and how a
//     drawing with dark strokes on a transparent canvas looks), then luma = 0.299 R + 0.587 G + 0.114 B.
//  2. Inversion: MNIST digits are light on a dark background. With invert 'auto' (the default) the
//     image is inverted when the mean of its border pixels is above 0.5 (a light background).
//  3. Fit to a square, keeping the aspect ratio: 'pad' (default) centres the whole image on a square
//     of side max(w, h) filled with the (post-inversion) background, black; 'crop' takes the centred
//     square of side min(w, h). Centring is exact (half-pixel offsets are allowed).
//  4. Area-average resize to size x size: each output pixel is the mean of the source area it covers,
//     with fractional overlaps weighted (box filter; upsampling repeats pixels).
// This does not reproduce MNIST's own normalisation (digit scaled into a 20x20 box and centred by
// centre of mass); use `margin` to leave a border like MNIST's 4 pixels.
import { uniformAt, type ImageSet } from './mnist';

export interface RgbaImage {
  width: number;
  height: number;
  /** RGBA, 4 bytes per pixel, row-major. */
  data: Uint8Array | Uint8ClampedArray;
}

export interface PreprocessOptions {
  /** Output side (default 28). */
  size?: number;
  /** Keep the aspect ratio by padding (default) or by centre-cropping. */
  fit?: 'pad' | 'crop';
  /** 'auto' (default): invert when the border is light. true/false force it. */
  invert?: 'auto' | boolean;
  /** Black border, in output pixels, around the resized image (default 0; MNIST-like is 4). */
  margin?: number;
}

export interface Preprocessed {
  /** size*size intensities in [0, 1], row-major. */
  pixels: Float32Array;
  size: number;
  /** Whether the image was inverted. */
  inverted: boolean;
  /** Mean border intensity before inversion (what 'auto' decided on). */
  borderMean: number;
}

export class ImageInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageInputError';
  }
}

function checkImage(image: RgbaImage): void {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
    throw new ImageInputError(`image size ${width}x${height} is not a pair of non-negative integers`);
  }
  if (width === 0 || height === 0) throw new ImageInputError(`image is empty (${width}x${height} pixels); nothing to preprocess`);
  if (data.length !== width * height * 4) {
    throw new ImageInputError(`image data has ${data.length} bytes; a ${width}x${height} RGBA image has ${width * height * 4}`);
  }
}

/** Grayscale in [0, 1], alpha composited over white. */
export function toGrayscale(image: RgbaImage): Float32Array {
  checkImage(image);
  const n = image.width * image.height;
  const out = new Float32Array(n);
  const d = image.data;
  for (let i = 0; i < n; i++) {
    const a = d[4 * i + 3] / 255;
    const luma = (0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2]) / 255;
    out[i] = luma * a + (1 - a);
  }
  return out;
}

/** Mean of the outermost ring of pixels. */
export function borderMean(gray: Float32Array, width: number, height: number): number {
  let sum = 0;
  let n = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (y === 0 || y === height - 1 || x === 0 || x === width - 1) {
        sum += gray[y * width + x];
        n += 1;
      }
    }
  }
  return sum / n;
}

/**
 * Box-filter weights of a 1-D resample: output pixel o covers source interval
 * [start + o * span / out, start + (o + 1) * span / out); source pixels outside [0, src) are
 * padding (weight dropped, so they count as 0). Weights of each output sum to 1 over the full interval.
 */
function areaWeights(src: number, out: number, start: number, span: number): { index: number; weight: number }[][] {
  const scale = span / out;
  const rows: { index: number; weight: number }[][] = [];
  for (let o = 0; o < out; o++) {
    const lo = start + o * scale;
    const hi = lo + scale;
    const row: { index: number; weight: number }[] = [];
    for (let s = Math.max(0, Math.floor(lo)); s < Math.min(src, Math.ceil(hi)); s++) {
      const overlap = Math.min(hi, s + 1) - Math.max(lo, s);
      if (overlap > 0) row.push({ index: s, weight: overlap / scale });
    }
    rows.push(row);
  }
  return rows;
}

/**
 * Area-average resize of a grayscale image to outW x outH, reading the source window
 * (x0, y0, spanX, spanY) in source pixel units; the window may extend past the image (zeros there).
 */
export function resizeArea(
  gray: Float32Array,
  width: number,
  height: number,
  outW: number,
  outH: number,
  window: { x0: number; y0: number; spanX: number; spanY: number } = { x0: 0, y0: 0, spanX: width, spanY: height },
): Float32Array {
  if (width === 0 || height === 0) throw new ImageInputError(`resizeArea: empty source (${width}x${height})`);
  if (outW < 1 || outH < 1) throw new ImageInputError(`resizeArea: output size ${outW}x${outH} must be at least 1x1`);
  const wx = areaWeights(width, outW, window.x0, window.spanX);
  const wy = areaWeights(height, outH, window.y0, window.spanY);
  // Horizontal pass over every source row, then vertical.
  const tmp = new Float32Array(height * outW);
  for (let y = 0; y < height; y++) {
    for (let o = 0; o < outW; o++) {
      let acc = 0;
      for (const { index, weight } of wx[o]) acc += weight * gray[y * width + index];
      tmp[y * outW + o] = acc;
    }
  }
  const out = new Float32Array(outH * outW);
  for (let o = 0; o < outH; o++) {
    for (let x = 0; x < outW; x++) {
      let acc = 0;
      for (const { index, weight } of wy[o]) acc += weight * tmp[index * outW + x];
      out[o * outW + x] = acc;
    }
  }
  return out;
}

/** An RGBA image to the model's input (see the steps at the top of this file). */
export function preprocessImage(image: RgbaImage, options: PreprocessOptions = {}): Preprocessed {
  const size = options.size ?? 28;
  const fit = options.fit ?? 'pad';
  const margin = options.margin ?? 0;
  if (!Number.isInteger(size) || size < 1) throw new ImageInputError(`output size ${size} must be a positive integer`);
  if (!Number.isInteger(margin) || margin < 0 || 2 * margin >= size) {
    throw new ImageInputError(`margin ${margin} must be an integer in [0, ${Math.ceil(size / 2) - 1}] for size ${size}`);
  }
  const gray = toGrayscale(image);
  const { width, height } = image;
  const border = borderMean(gray, width, height);
  const inverted = options.invert === 'auto' || options.invert === undefined ? border > 0.5 : options.invert;
  if (inverted) for (let i = 0; i < gray.length; i++) gray[i] = 1 - gray[i];
  const side = fit === 'pad' ? Math.max(width, height) : Math.min(width, height);
  const window = { x0: (width - side) / 2, y0: (height - side) / 2, spanX: side, spanY: side };
  const inner = size - 2 * margin;
  const resized = resizeArea(gray, width, height, inner, inner, window);
  let pixels = resized;
  if (margin > 0) {
    pixels = new Float32Array(size * size);
    for (let y = 0; y < inner; y++) pixels.set(resized.subarray(y * inner, (y + 1) * inner), (y + margin) * size + margin);
  }
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.min(1, Math.max(0, pixels[i]));
  return { pixels, size, inverted, borderMean: border };
}

/**
 * Binarizes intensities in [0, 1]: with `threshold`, 1 where p > threshold; with `seed`, a Bernoulli
 * draw per pixel (1 where uniformAt(seed, k, stream) < p; the same PRNG as fixedBinarization).
 */
export function binarize(pixels: Float32Array, how: { threshold: number } | { seed: number; stream?: number }): Float32Array {
  const out = new Float32Array(pixels.length);
  if ('threshold' in how) {
    for (let k = 0; k < pixels.length; k++) out[k] = pixels[k] > how.threshold ? 1 : 0;
  } else {
    for (let k = 0; k < pixels.length; k++) out[k] = uniformAt(how.seed, k, how.stream ?? 0) < pixels[k] ? 1 : 0;
  }
  return out;
}

/**
 * The set resized to size x size by area averaging (for quick runs and tests on slow adapters: a
 * model on 12x12 or 8x8 digits costs a fraction of one on 28x28).
 */
export function resizeSet(set: ImageSet, size: number): ImageSet {
  if (size === set.height && size === set.width) return set;
  const plane = set.height * set.width;
  const out = new Uint8Array(set.count * size * size);
  const gray = new Float32Array(plane);
  for (let i = 0; i < set.count; i++) {
    for (let k = 0; k < plane; k++) gray[k] = set.images[i * plane + k];
    const small = resizeArea(gray, set.width, set.height, size, size);
    for (let k = 0; k < size * size; k++) out[i * size * size + k] = Math.round(Math.min(255, Math.max(0, small[k])));
  }
  return { ...set, name: `${set.name} (${size}x${size})`, height: size, width: size, images: out };
}

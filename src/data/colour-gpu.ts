// Colour image sets resident on the GPU: planar bytes packed four per u32 word, gathered by index into
// u32 sub-pixel values [B, C, H, W] (shaders/colour_dataset.wgsl), the inputs and targets of the
// 256-way models. Batches come from gpu-dataset.ts's samplers (index tensors reused across steps).
import colourWgsl from '../../shaders/colour_dataset.wgsl?raw';
import type { KernelSpec } from '../gpu/context';
import { empty, engine, keep, ShapeError, shapeString, type Tensor } from '../engine';
import { Params, launch, threadsGrid } from '../engine/kernels';
import type { ColourImageSet } from './colour';

const GATHER: KernelSpec = { name: 'colour_dataset.wgsl', code: colourWgsl, entry: 'gather_bytes', bindings: ['read', 'read', 'rw'] };

export class GpuColourSet {
  readonly channels = 3;
  readonly wordsPerImage: number;
  private readonly packed: Tensor;

  private constructor(
    readonly name: string,
    readonly count: number,
    readonly size: number,
    images: Uint8Array,
  ) {
    const bytes = 3 * size * size;
    if (bytes % 4 !== 0) throw new RangeError(`GpuColourSet ${name}: 3*${size}*${size} bytes per image is not a whole number of words (use an even size)`);
    this.wordsPerImage = bytes / 4;
    this.packed = keep(empty([Math.max(1, count * this.wordsPerImage)], 'u32'));
    if (images.length > 0) engine().gpu.write(this.packed.buffer, images);
  }

  static upload(set: ColourImageSet): GpuColourSet {
    if (set.images.length !== set.count * 3 * set.size * set.size) {
      throw new RangeError(`GpuColourSet ${set.name}: ${set.images.length} bytes for ${set.count} images of 3x${set.size}x${set.size}`);
    }
    return new GpuColourSet(set.name, set.count, set.size, set.images);
  }

  /** Images at `indices` (u32 [B]) as u32 [B, 3, S, S] values 0..255 (0xFFFFFFFF for an index past the end). */
  batch(indices: Tensor): Tensor {
    if (indices.dtype !== 'u32' || indices.rank !== 1) throw new ShapeError(`${this.name}.batch`, `needs u32 indices [B], got ${shapeString(indices.shape)} ${indices.dtype}`);
    const b = indices.size;
    const out = empty([b, 3, this.size, this.size], 'u32');
    const n = b * this.wordsPerImage;
    launch(GATHER, [this.packed.buffer, indices.buffer, out.buffer], new Params().u(n, this.wordsPerImage, this.count, 0).build(), threadsGrid(n));
    return out;
  }

  dispose(): void {
    this.packed.dispose();
  }
}

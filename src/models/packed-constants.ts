// The constants buffer of the incremental samplers (incremental.ts, hierarchical/incremental.ts): a
// u32 table of offsets, then the effective weights appended by GPU copies, every piece at a multiple
// of 4 words so the kernels can also read the buffer as vec4s.
import * as E from '../engine';

/** A table entry for "absent" (no z terms, no ELU copy, ...). */
export const NO_OFFSET = 0xffffffff;

export class PackedConstants {
  readonly table: Uint32Array;
  private readonly pieces: { tensor: E.Tensor; offset: number }[] = [];
  private words: number;

  constructor(tableWords: number) {
    this.table = new Uint32Array(tableWords).fill(NO_OFFSET);
    this.words = Math.ceil(tableWords / 4) * 4;
  }

  /** Appends a tensor's values; returns their offset in words (a multiple of 4). */
  add(tensor: E.Tensor): number {
    const offset = this.words;
    this.pieces.push({ tensor, offset });
    this.words += Math.ceil(tensor.size / 4) * 4;
    return offset;
  }

  /** One u32 buffer: the table, then every piece (copied on the GPU, no readback). */
  build(): E.Tensor {
    const gpu = E.engine().gpu;
    const packed = E.empty([this.words], 'u32');
    gpu.write(packed.buffer, this.table);
    for (const { tensor, offset } of this.pieces) gpu.copy(tensor.gpuBuffer, tensor.byteOffset, packed.buffer, offset * 4, tensor.size * 4);
    return packed;
  }
}

// An arena: one flat GPU buffer holding many tensors end to end, each at a fixed element offset. Adam
// keeps its moments in two (src/engine/optim.ts), so a kernel serving several tensors binds two
// buffers for all their moments; the per-tensor copies checkpoints read and write are made on demand.
import { engine, keep, Tensor, ShapeError, shapeString, type Shape } from './tensor';
import { fill } from './ops/elementwise';

/** Where each tensor of a fixed list lives in a flat arena of `total` floats. */
export class ArenaLayout {
  readonly shapes: Shape[];
  readonly sizes: number[];
  /** Element offset of each tensor. */
  readonly offsets: number[];
  readonly total: number;

  constructor(shapes: readonly Shape[]) {
    this.shapes = shapes.map((s) => [...s]);
    this.sizes = this.shapes.map((s) => s.reduce((a, b) => a * b, 1));
    let at = 0;
    this.offsets = this.sizes.map((n) => {
      const o = at;
      at += n;
      return o;
    });
    this.total = at;
  }

  get count(): number {
    return this.shapes.length;
  }

  /** Whether `t` has tensor i's shape (f32). */
  fits(i: number, t: Tensor): boolean {
    const want = this.shapes[i];
    if (t.dtype !== 'f32' || t.shape.length !== want.length) return false;
    for (let j = 0; j < want.length; j++) if (t.shape[j] !== want[j]) return false;
    return true;
  }
}

/** One arena buffer of a layout (a kept tensor of shape [total], zero-filled). */
export function arenaBuffer(layout: ArenaLayout): Tensor {
  return keep(fill([Math.max(layout.total, 1)], 0));
}

/** Records copies of every tensor into its slot of the arena (tensor i skipped where `skip[i]`). */
export function gatherInto(layout: ArenaLayout, arena: Tensor, tensors: readonly (Tensor | null)[]): void {
  const gpu = engine().gpu;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    const n = layout.sizes[i];
    if (t && n > 0) gpu.copy(t.buffer, 0, arena.buffer, layout.offsets[i] * 4, n * 4);
  }
}

/** Records copies of each slot of the arena back into its tensor (null: skipped). */
export function scatterFrom(layout: ArenaLayout, arena: Tensor, tensors: readonly (Tensor | null)[]): void {
  const gpu = engine().gpu;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    const n = layout.sizes[i];
    if (t && n > 0) gpu.copy(arena.buffer, layout.offsets[i] * 4, t.buffer, 0, n * 4);
  }
}

/** Writes host arrays into the arena's slots (sizes checked first, so a mismatch writes nothing). */
export function writeSlots(layout: ArenaLayout, arena: Tensor, values: readonly Float32Array[], what: string): void {
  if (values.length !== layout.count) throw new ShapeError(what, `${values.length} arrays for ${layout.count} tensors`);
  values.forEach((v, i) => {
    if (v.length !== layout.sizes[i]) throw new ShapeError(what, `tensor ${i} ${shapeString(layout.shapes[i])} given ${v.length} values`);
  });
  const gpu = engine().gpu;
  values.forEach((v, i) => {
    if (v.length > 0) gpu.write(arena.buffer, v, layout.offsets[i] * 4);
  });
}

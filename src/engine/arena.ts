// An arena: one flat GPU buffer holding many tensors end to end, each at a fixed element offset. Adam
// keeps its moments in two (src/engine/optim.ts), so a kernel serving several tensors binds two
// buffers for all their moments; the per-tensor copies checkpoints read and write are made on demand.
// A model's parameters and their gradients live in two more (TensorArena, ParamSet.pack): each
// parameter is a slice of one buffer, bound by its byte range, so Adam updates them all in one
// dispatch. Slots start at the adapter's storage-offset alignment for that.
import { engine, keep, Tensor, ShapeError, shapeString, type Shape } from './tensor';
import { fill } from './ops/elementwise';

/** Where each tensor of a fixed list lives in a flat arena of `total` floats. */
export class ArenaLayout {
  readonly shapes: Shape[];
  readonly sizes: number[];
  /** Element offset of each tensor. */
  readonly offsets: number[];
  readonly total: number;

  /** `align`: every offset a multiple of it, in elements (slices bound by range need the adapter's). */
  constructor(shapes: readonly Shape[], readonly align = 1) {
    if (!Number.isInteger(align) || align < 1) throw new RangeError(`ArenaLayout: alignment ${align}`);
    this.shapes = shapes.map((s) => [...s]);
    this.sizes = this.shapes.map((s) => s.reduce((a, b) => a * b, 1));
    let at = 0;
    this.offsets = this.sizes.map((n) => {
      const o = Math.ceil(at / align) * align;
      at = o + n;
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
    if (t && n > 0) gpu.copy(t.gpuBuffer, t.byteOffset, arena.buffer, layout.offsets[i] * 4, n * 4);
  }
}

/** Records copies of each slot of the arena back into its tensor (null: skipped). */
export function scatterFrom(layout: ArenaLayout, arena: Tensor, tensors: readonly (Tensor | null)[]): void {
  const gpu = engine().gpu;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    const n = layout.sizes[i];
    if (t && n > 0) gpu.copy(arena.buffer, layout.offsets[i] * 4, t.gpuBuffer, t.byteOffset, n * 4);
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

/** The adapter's storage-buffer offset alignment, in f32 elements: where a bindable slice may start. */
export function sliceAlignment(): number {
  return Math.max(1, engine().gpu.device.limits.minStorageBufferOffsetAlignment / 4);
}

/** Every TensorArena alive, by its buffer: how a list of slices is recognised as one arena's. */
const arenas = new WeakMap<GPUBuffer, TensorArena>();

/**
 * A fixed list of tensors in one buffer (`whole`, zero-filled), slot i a slice at layout.offsets[i].
 * Padding between slots stays zero, so a kernel may run over the whole buffer.
 */
export class TensorArena {
  readonly whole: Tensor;
  /** Slot i as a tensor of its shape (kept; disposed with the arena). */
  readonly slots: readonly Tensor[];

  constructor(readonly layout: ArenaLayout) {
    this.whole = arenaBuffer(layout);
    this.slots = layout.shapes.map((shape, i) => keep(this.whole.slice(layout.offsets[i], shape)));
    arenas.set(this.whole.buffer, this);
  }

  /** Whether `t` is slot i of this arena (any view of it). */
  holds(i: number, t: Tensor): boolean {
    return t.isSlice && t.gpuBuffer === this.whole.buffer && t.byteOffset === this.layout.offsets[i] * 4 && t.size === this.layout.sizes[i];
  }

  /** The arena whose slots, in order, are exactly `tensors`; null if there is none. */
  static of(tensors: readonly Tensor[]): TensorArena | null {
    if (tensors.length === 0 || !tensors[0].isSlice) return null;
    const arena = arenas.get(tensors[0].gpuBuffer);
    if (!arena || arena.layout.count !== tensors.length) return null;
    for (let i = 0; i < tensors.length; i++) if (!arena.holds(i, tensors[i])) return null;
    return arena;
  }

  /** The slot `t` is (any view of it), or -1. */
  indexOf(t: Tensor): number {
    if (!t.isSlice || t.gpuBuffer !== this.whole.buffer) return -1;
    this.byOffset ??= new Map(this.layout.offsets.map((o, i) => [o * 4, i]));
    const i = this.byOffset.get(t.byteOffset);
    return i !== undefined && this.layout.sizes[i] === t.size ? i : -1;
  }

  private byOffset: Map<number, number> | null = null;

  /** The arena `t` is a slice of, if any. */
  static ofSlot(t: Tensor): TensorArena | null {
    return t.isSlice ? (arenas.get(t.gpuBuffer) ?? null) : null;
  }

  dispose(): void {
    arenas.delete(this.whole.buffer);
    for (const t of this.slots) t.dispose();
    this.whole.dispose();
  }
}

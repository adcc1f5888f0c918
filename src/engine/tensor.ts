// Tensors live on the GPU. A Tensor is a shape and dtype over a reference-counted Storage, so
// reshape is free. Lifetimes are managed by scopes (tidy): every tensor made inside a scope is
// disposed when it ends, except the ones it returns or keeps.
import type { GpuContext } from '../gpu/context';

export type DType = 'f32' | 'u32';
export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeString(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

/** An error at an op's entry that names the op and the shapes it was given. */
export class ShapeError extends Error {
  constructor(op: string, detail: string) {
    super(`${op}: ${detail}`);
    this.name = 'ShapeError';
  }
}

/**
 * Where a tensor's values live: a whole pooled buffer, or a slice of one (an arena's slot: `offset`
 * bytes in, `parent` the whole buffer's storage, which each slice keeps alive).
 */
class Storage {
  refs = 1;
  constructor(
    readonly buffer: GPUBuffer,
    readonly bytes: number,
    readonly offset = 0,
    readonly parent: Storage | null = null,
  ) {}
}

/** What a kernel binds for a tensor: its whole buffer, or the byte range of a slice. */
export type Bindable = GPUBuffer | GPUBufferBinding;

function release(storage: Storage): void {
  storage.refs -= 1;
  if (storage.refs > 0) return;
  if (storage.parent) release(storage.parent);
  else engine().gpu.pool.release(storage.buffer);
}

/** The autograd record of how a tensor was made (see autograd.ts). */
export interface TapeNode {
  op: string;
  inputs: readonly Tensor[];
  /**
   * Gradients of the inputs given the gradient of the output (null where none is needed). For the
   * input slots listed in `accumulates`, `prior[k]` is the gradient input k has gathered so far (or
   * null), and the gradient returned for k must already include it: the op adds it in its own
   * kernel, which saves the tape a separate add. A prior is never changed in place.
   */
  backward: (gradOutput: Tensor, prior?: readonly (Tensor | null)[]) => readonly (Tensor | null)[];
  accumulates?: readonly number[];
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  /** Set for tensors that want gradients: parameters, and op outputs that depend on them. */
  requiresGrad = false;
  node: TapeNode | null = null;
  private storage: Storage | null;

  constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    storage: Storage,
  ) {
    this.size = sizeOf(shape);
    this.storage = storage;
    engine().track(this);
  }

  private get live(): Storage {
    if (!this.storage) throw new Error(`tensor #${this.id} ${shapeString(this.shape)} was used after dispose()`);
    return this.storage;
  }

  /**
   * The whole buffer of a tensor that owns one. A slice of an arena has no buffer of its own: bind
   * it with `binding` and address it with `byteOffset`, so no code reads its neighbours by mistake.
   */
  get buffer(): GPUBuffer {
    const storage = this.live;
    if (storage.parent) throw new Error(`tensor #${this.id} ${shapeString(this.shape)} is a slice of an arena (byte ${storage.offset}): bind it with .binding, address it with .byteOffset`);
    return storage.buffer;
  }

  /** What a kernel binds for this tensor (a slice binds just its own bytes). */
  get binding(): Bindable {
    const storage = this.live;
    if (!storage.parent) return storage.buffer;
    return { buffer: storage.buffer, offset: storage.offset, size: Math.max(this.size, 1) * 4 };
  }

  /** The buffer this tensor's values are in (an arena's, for a slice) and where they start in it. */
  get gpuBuffer(): GPUBuffer {
    return this.live.buffer;
  }

  get byteOffset(): number {
    return this.live.offset;
  }

  /** True for a slice of an arena. */
  get isSlice(): boolean {
    return this.live.parent !== null;
  }

  /**
   * A tensor of `shape` over this one's values from element `offset` on (this must own its buffer):
   * an arena's slot. It keeps the whole buffer alive until it is disposed.
   */
  slice(offset: number, shape: Shape): Tensor {
    const whole = this.live;
    if (whole.parent) throw new Error(`tensor #${this.id} is itself a slice: slice the arena`);
    const n = sizeOf(shape);
    if (!Number.isInteger(offset) || offset < 0 || offset + n > this.size) {
      throw new ShapeError('slice', `elements ${offset}..${offset + n} of a tensor of ${this.size}`);
    }
    whole.refs += 1;
    return new Tensor(shape, this.dtype, new Storage(whole.buffer, n * 4, offset * 4, whole));
  }

  /**
   * Moves this tensor onto `target`'s storage (same shape and dtype; the values are not copied): a
   * parameter packed into an arena keeps its identity, so layers holding it need not know.
   */
  rebase(target: Tensor): void {
    if (target.size !== this.size || target.dtype !== this.dtype) throw new ShapeError('rebase', `${shapeString(this.shape)} onto ${shapeString(target.shape)}`);
    const next = target.live;
    next.refs += 1;
    const before = this.live;
    this.storage = next;
    release(before);
  }

  get isDisposed(): boolean {
    return this.storage === null;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** A tensor of another shape over the same storage (same element count); differentiable. */
  view(shape: Shape): Tensor {
    if (sizeOf(shape) !== this.size) {
      throw new ShapeError('reshape', `cannot view ${shapeString(this.shape)} as ${shapeString(shape)}`);
    }
    const storage = this.storage;
    if (!storage) throw new Error(`tensor #${this.id} was used after dispose()`);
    storage.refs += 1;
    const y = new Tensor(shape, this.dtype, storage);
    // A view is differentiable: its gradient is the output gradient viewed back.
    if (this.requiresGrad && engine().gradEnabled) {
      const sourceShape = this.shape;
      y.requiresGrad = true;
      y.node = { op: 'view', inputs: [this], backward: (g) => [g.view(sourceShape)] };
    }
    return y;
  }

  dispose(): void {
    const storage = this.storage;
    if (!storage) return;
    this.storage = null;
    this.node = null;
    release(storage);
  }

  /** Reads the values back (waits for the GPU). */
  async data(): Promise<Float32Array | Uint32Array> {
    const storage = this.live;
    const bytes = await engine().gpu.read(storage.buffer, this.size * 4, storage.offset);
    return this.dtype === 'u32' ? new Uint32Array(bytes) : new Float32Array(bytes);
  }

  async toArray(): Promise<number[]> {
    return Array.from(await this.data());
  }

  /** Reads a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError('item', `tensor has ${this.size} elements, expected 1`);
    return (await this.data())[0];
  }

  toString(): string {
    return `Tensor#${this.id}(${shapeString(this.shape)}, ${this.dtype})`;
  }
}

// ---- the engine: the GPU context and the scope stack ------------------------------------------

class Engine {
  private scopes: Set<Tensor>[] = [];
  /** False inside noGrad() and while running backward closures. */
  gradEnabled = true;

  constructor(readonly gpu: GpuContext) {}

  track(tensor: Tensor): void {
    this.scopes[this.scopes.length - 1]?.add(tensor);
  }

  /** Removes a tensor from the current scope so it outlives it. */
  keep(tensor: Tensor): void {
    for (const scope of this.scopes) scope.delete(tensor);
  }

  beginScope(): void {
    this.scopes.push(new Set());
  }

  endScope(keep: Iterable<Tensor>): void {
    const scope = this.scopes.pop();
    if (!scope) throw new Error('endScope without beginScope');
    const kept = new Set(keep);
    const parent = this.scopes[this.scopes.length - 1];
    for (const tensor of scope) {
      if (kept.has(tensor)) parent?.add(tensor);
      else tensor.dispose();
    }
  }

  allocate(shape: Shape, dtype: DType = 'f32'): Tensor {
    const bytes = Math.max(sizeOf(shape), 1) * 4;
    return new Tensor(shape, dtype, new Storage(this.gpu.pool.acquire(bytes), bytes));
  }
}

let current: Engine | null = null;

export function engine(): Engine {
  if (!current) throw new Error('The engine has no GPU yet: call initEngine(context) first.');
  return current;
}

export function initEngine(gpu: GpuContext): void {
  current = new Engine(gpu);
}

export function hasEngine(): boolean {
  return current !== null;
}

/** An uninitialised tensor of the given shape (kernels fill it). */
export function empty(shape: Shape, dtype: DType = 'f32'): Tensor {
  return engine().allocate(shape, dtype);
}

export function fromArray(values: ArrayLike<number>, shape: Shape, dtype: DType = 'f32'): Tensor {
  const n = sizeOf(shape);
  if (values.length !== n) {
    throw new ShapeError('fromArray', `${values.length} values for shape ${shapeString(shape)} (${n} elements)`);
  }
  const t = engine().allocate(shape, dtype);
  const data = dtype === 'u32' ? Uint32Array.from(values) : values instanceof Float32Array ? values : Float32Array.from(values);
  if (n > 0) engine().gpu.write(t.buffer, data);
  return t;
}

/** Overwrites a tensor's values (a whole tensor or a slice) from the host. */
export function writeValues(t: Tensor, data: Float32Array | Uint32Array): void {
  if (data.length !== t.size) throw new ShapeError('write', `${data.length} values for ${shapeString(t.shape)}`);
  if (t.size > 0) engine().gpu.write(t.gpuBuffer, data, t.byteOffset);
}

type Kept = Tensor | readonly Tensor[] | Record<string, Tensor> | void | undefined | number;

function collect(value: unknown, out: Tensor[]): void {
  if (value instanceof Tensor) out.push(value);
  else if (Array.isArray(value)) for (const v of value) collect(v, out);
  else if (value && typeof value === 'object' && !(ArrayBuffer.isView(value))) for (const v of Object.values(value)) collect(v, out);
}

/** Closes the current scope, keeping the tensors found in `result` (they move to the parent scope). */
function closeScope<T>(result: T): T {
  const kept: Tensor[] = [];
  collect(result, kept);
  engine().endScope(kept);
  return result;
}

/** Runs fn in a scope: tensors it makes are disposed at the end, except those in its result. */
export function tidy<T extends Kept | unknown>(fn: () => T): T {
  engine().beginScope();
  let result: T;
  try {
    result = fn();
  } catch (error) {
    engine().endScope([]);
    throw error;
  }
  return closeScope(result);
}

/** Async variant of tidy (the scope stays open across awaits: do not interleave two of them). */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  engine().beginScope();
  let result: T;
  try {
    result = await fn();
  } catch (error) {
    engine().endScope([]);
    throw error;
  }
  return closeScope(result);
}

/** Keeps a tensor alive past the scopes it was made in (parameters, optimizer state). */
export function keep<T extends Tensor>(tensor: T): T {
  engine().keep(tensor);
  return tensor;
}

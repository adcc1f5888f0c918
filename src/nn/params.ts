// Named parameters of a model: created once (seeded), kept outside every scope, listed in a fixed
// order for the optimizer and checkpoints.
import { ArenaLayout, engine, fromArray, keep, param, sliceAlignment, TensorArena, weightNormArena, WeightNormArenaPlan, weightNormMany, type Tensor, type WeightNormPair } from '../engine';
import { Rng } from './init';

/**
 * The (v, g) pairs of a model's weight-normed layers, and, only inside `withWeights`, all their
 * effective weights W = g v / ||v|| computed together (weightNormMany: a few dispatches for every
 * layer, each way, instead of one per layer). A layer's weight() takes its W from here while the
 * weights are out, and otherwise computes it alone (evaluation, sampling, tests).
 */
export class WeightNormBank {
  private readonly pairs: WeightNormPair[] = [];
  private readonly slots = new Map<Tensor, number>();
  private weights: Tensor[] | null = null;
  /** Set once the parameters are packed: all W in one dispatch each way (weightNormArena). */
  private plan: WeightNormArenaPlan | null = null;

  /** Adds a layer's pair (layers call this when they are built). */
  register(v: Tensor, g: Tensor): void {
    if (this.slots.has(v)) throw new Error(`weight norm of tensor #${v.id} registered twice`);
    this.slots.set(v, this.pairs.length);
    this.pairs.push({ v, g });
  }

  get size(): number {
    return this.pairs.length;
  }

  /** True inside withWeights. */
  get active(): boolean {
    return this.weights !== null;
  }

  /** The W of this v computed by withWeights, while inside it; null otherwise (compute it alone). */
  weightOf(v: Tensor): Tensor | null {
    const slot = this.weights ? this.slots.get(v) : undefined;
    if (slot === undefined) return null;
    const w = this.weights![slot];
    if (w.isDisposed) throw new Error('WeightNormBank: a weight was disposed inside withWeights (run it inside the step\'s tidy)');
    return w;
  }

  /**
   * Runs fn (a step's forward and backward, inside that step's tidy, which frees the weights) with
   * every W computed up front. They are dropped when fn returns, so nothing after it (the parameter
   * update, a checkpoint restore, the next step) can read a W of the old v and g.
   */
  withWeights<T>(fn: () => T): T {
    if (this.weights) throw new Error('WeightNormBank.withWeights: already inside withWeights');
    this.weights = this.plan ? weightNormArena(this.plan) : weightNormMany(this.pairs);
    try {
      return fn();
    } finally {
      this.weights = null;
    }
  }

  /** The parameters were packed into `values` (ParamSet.pack). */
  packedInto(values: TensorArena): void {
    this.plan?.dispose();
    this.plan = this.pairs.length > 0 ? new WeightNormArenaPlan(this.pairs, values) : null;
  }

  clear(): void {
    this.plan?.dispose();
    this.plan = null;
    this.pairs.length = 0;
    this.slots.clear();
    this.weights = null;
  }
}

/** A model's parameters packed in one arena, and the arena their gradients are gathered in. */
export interface ParamArenas {
  values: TensorArena;
  grads: TensorArena;
}

export class ParamSet {
  private readonly entries = new Map<string, Tensor>();
  private arenas: ParamArenas | null = null;
  readonly rng: Rng;
  /** The weight-normed layers' pairs (see WeightNormBank). */
  readonly weightNorm = new WeightNormBank();

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  create(name: string, shape: number[], data: Float32Array): Tensor {
    if (this.entries.has(name)) throw new Error(`parameter ${name} defined twice`);
    if (this.arenas) throw new Error(`parameter ${name} created after the parameters were packed`);
    const t = keep(param(fromArray(data, shape)));
    this.entries.set(name, t);
    return t;
  }

  get(name: string): Tensor {
    const t = this.entries.get(name);
    if (!t) throw new Error(`no parameter named ${name}`);
    return t;
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  tensors(): Tensor[] {
    return [...this.entries.values()];
  }

  entriesList(): [string, Tensor][] {
    return [...this.entries.entries()];
  }

  /**
   * Moves every parameter into one arena (values copied on the GPU; each tensor keeps its identity,
   * so layers holding it are unaffected) and makes the arena its gradients are gathered in, in the
   * same layout: Adam then updates all of them in one dispatch (trainers call this once, before
   * the first step or restore). Idempotent; no parameter can be created after it.
   *
   * Null, packing nothing, when the arena would not fit one buffer binding on this device (a model
   * of the reference's 32px size on a GPU that binds 128 MB; `maxBytes` overrides the device's
   * limit): the model then trains as before packing existed, each tensor in its own buffer.
   */
  pack(maxBytes?: number): ParamArenas | null {
    if (this.arenas) return this.arenas;
    const list = this.tensors();
    const layout = new ArenaLayout(list.map((t) => t.shape), sliceAlignment());
    const limits = engine().gpu.device.limits;
    if (layout.total * 4 > (maxBytes ?? Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize))) return null;
    const values = new TensorArena(layout);
    const grads = new TensorArena(layout);
    const gpu = engine().gpu;
    list.forEach((t, i) => {
      if (t.size > 0) gpu.copy(t.gpuBuffer, t.byteOffset, values.whole.buffer, layout.offsets[i] * 4, t.size * 4);
      t.rebase(values.slots[i]);
    });
    this.arenas = { values, grads };
    this.weightNorm.packedInto(values);
    return this.arenas;
  }

  /** The arenas of pack(), or null before it. */
  get packed(): ParamArenas | null {
    return this.arenas;
  }

  /** Total number of scalars. */
  count(): number {
    let n = 0;
    for (const t of this.entries.values()) n += t.size;
    return n;
  }

  /** Overwrites every parameter's values in place (layers keep their references). */
  assign(values: Map<string, Float32Array>): void {
    if (this.weightNorm.active) throw new Error('ParamSet.assign inside WeightNormBank.withWeights: the weights computed there would go stale');
    // Validate everything before writing anything, so a bad input changes nothing.
    for (const [name, t] of this.entries) {
      const v = values.get(name);
      if (!v) throw new Error(`missing values for parameter ${name}`);
      if (v.length !== t.size) throw new Error(`parameter ${name}: ${v.length} values for ${t.size} elements`);
    }
    for (const [name, t] of this.entries) engine().gpu.write(t.gpuBuffer, values.get(name)!, t.byteOffset);
  }

  dispose(): void {
    for (const t of this.entries.values()) t.dispose();
    this.entries.clear();
    this.arenas?.values.dispose();
    this.arenas?.grads.dispose();
    this.arenas = null;
    this.weightNorm.clear();
  }
}

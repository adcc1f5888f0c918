// Named parameters of a model: created once (seeded), kept outside every scope, listed in a fixed
// order for the optimizer and checkpoints.
import { engine, fromArray, keep, param, weightNormMany, type Tensor, type WeightNormPair } from '../engine';
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
    this.weights = weightNormMany(this.pairs);
    try {
      return fn();
    } finally {
      this.weights = null;
    }
  }

  clear(): void {
    this.pairs.length = 0;
    this.slots.clear();
    this.weights = null;
  }
}

export class ParamSet {
  private readonly entries = new Map<string, Tensor>();
  readonly rng: Rng;
  /** The weight-normed layers' pairs (see WeightNormBank). */
  readonly weightNorm = new WeightNormBank();

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  create(name: string, shape: number[], data: Float32Array): Tensor {
    if (this.entries.has(name)) throw new Error(`parameter ${name} defined twice`);
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
    for (const [name, t] of this.entries) engine().gpu.write(t.buffer, values.get(name)!);
  }

  dispose(): void {
    for (const t of this.entries.values()) t.dispose();
    this.entries.clear();
    this.weightNorm.clear();
  }
}

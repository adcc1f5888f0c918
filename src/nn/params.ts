// Named parameters of a model: created once (seeded), kept outside every scope, listed in a fixed
// order for the optimizer and checkpoints.
import { engine, fromArray, keep, param, type Tensor } from '../engine';
import { Rng } from './init';

export class ParamSet {
  private readonly entries = new Map<string, Tensor>();
  readonly rng: Rng;

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
  }
}

// Shared helpers for launching kernels from ops: the WGSL sources, parameter packing, grids.
import elementwiseWgsl from '../../shaders/elementwise.wgsl?raw';
import { grid1d, type KernelSpec } from '../gpu/context';
import { engine, type Bindable } from './tensor';

export const SHADERS = {
  elementwise: elementwiseWgsl,
};

/** Builds the u32 words of a params uniform; floats are stored as their bit patterns. */
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The u32 word a params uniform holds for the float `x` (its f32 bits). */
export function f32Word(x: number): number {
  F32[0] = x;
  return U32[0];
}

export class Params {
  private readonly words: number[] = [];

  u(...values: number[]): this {
    for (const v of values) this.words.push(v >>> 0);
    return this;
  }

  f(...values: number[]): this {
    for (const v of values) this.words.push(f32Word(v));
    return this;
  }

  /** Appends `values` padded with `fill` to `length` words (a fixed-size array<vec4<u32>, length/4>). */
  array(values: readonly number[], length: number, fill = 0): this {
    if (values.length > length) throw new Error(`params array of ${values.length} > ${length}`);
    for (let i = 0; i < length; i++) this.words.push((i < values.length ? values[i] : fill) >>> 0);
    return this;
  }

  /** Pads to a multiple of 4 words (uniform structs are 16-byte aligned). */
  align(): this {
    while (this.words.length % 4 !== 0) this.words.push(0);
    return this;
  }

  build(): Uint32Array {
    this.align();
    return Uint32Array.from(this.words);
  }
}

export function launch(spec: KernelSpec, buffers: readonly Bindable[], params: Uint32Array, workgroups: readonly number[]): void {
  engine().gpu.dispatch(spec, buffers, params, workgroups);
}

/** Workgroups for `threads` threads at `size` per workgroup, folded into 2-D past 65535. */
export function threadsGrid(threads: number, size = 256): [number, number] {
  return grid1d(Math.ceil(threads / size));
}

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export const MAX_RANK = 8;

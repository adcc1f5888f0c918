// Random tensors from a counter-based generator (Philox4x32-10, shaders/random.wgsl). A draw is a pure
// function of (seed, offset, element index): the same pair gives the same numbers on any adapter, and
// no generator state lives on the GPU. Use a new offset (e.g. the training step) for fresh numbers.
// None of these record a gradient.
import randomWgsl from '../../../shaders/random.wgsl?raw';
import { Params, launch, threadsGrid } from '../kernels';
import { empty, Tensor, ShapeError, shapeString, type Shape, type Bindable } from '../tensor';
import type { KernelSpec } from '../../gpu/context';

/** A 64-bit seed: a JS number (integer, 0 <= n < 2^53) or [lo, hi] u32 words. */
export type Seed = number | readonly [number, number];

const TWO_32 = 4294967296;

/** Splits a seed or offset into [lo, hi] u32 words. */
export function seedWords(seed: Seed, what = 'seed'): [number, number] {
  if (typeof seed !== 'number') return [seed[0] >>> 0, seed[1] >>> 0];
  if (!Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`random: ${what} must be an integer in [0, 2^53), got ${seed}`);
  }
  return [seed % TWO_32 >>> 0, Math.floor(seed / TWO_32) >>> 0];
}

const spec = (entry: string, bindings: KernelSpec['bindings']): KernelSpec => ({ name: 'random.wgsl', code: randomWgsl, entry, bindings });
const BITS = spec('bits', ['rw']);
const UNIFORM = spec('uniform01', ['rw']);
const NORMAL = spec('normal', ['rw']);
const BERNOULLI = spec('bernoulli', ['read', 'rw']);

function checkShape(op: string, shape: Shape): void {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new ShapeError(op, `invalid shape ${shapeString(shape)}`);
}

function draw(kernel: KernelSpec, y: Tensor, inputs: readonly Bindable[], seed: Seed, offset: Seed): Tensor {
  const [k0, k1] = seedWords(seed);
  const [o0, o1] = seedWords(offset, 'offset');
  const params = new Params().u(y.size, k0, k1, o0, o1).build();
  // One thread per block of 4 elements, 64 threads per workgroup.
  launch(kernel, [...inputs, y.binding], params, threadsGrid(Math.ceil(y.size / 4), 64));
  return y;
}

/** Raw Philox output: u32 words (element i is lane i%4 of block i/4). */
export function randomBits(shape: Shape, seed: Seed, offset: Seed = 0): Tensor {
  checkShape('randomBits', shape);
  return draw(BITS, empty(shape, 'u32'), [], seed, offset);
}

/** Uniform in [0, 1), multiples of 2^-24. */
export function randomUniform(shape: Shape, seed: Seed, offset: Seed = 0): Tensor {
  checkShape('randomUniform', shape);
  return draw(UNIFORM, empty(shape), [], seed, offset);
}

/** Standard normal (Box-Muller on pairs of uniforms). */
export function randomNormal(shape: Shape, seed: Seed, offset: Seed = 0): Tensor {
  checkShape('randomNormal', shape);
  return draw(NORMAL, empty(shape), [], seed, offset);
}

/** 0/1 (f32) with P(1) = p element-wise: binarises images with their intensities as p. */
export function bernoulli(p: Tensor, seed: Seed, offset: Seed = 0): Tensor {
  if (p.dtype !== 'f32') throw new ShapeError('bernoulli', `p must be f32, got ${p.dtype} ${shapeString(p.shape)}`);
  return draw(BERNOULLI, empty(p.shape), [p.binding], seed, offset);
}

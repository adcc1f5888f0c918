// Float64 references of the element-wise ops (shaders/elementwise.wgsl) and the sum reduction
// (shaders/reduce.wgsl), one scalar formula per op, applied with ndarray.ts's broadcasting helpers.
import { broadcastMap, map, sigmoid, softplus, sumAxes, type NDArray } from './ndarray';

export const BINARY = {
  add: (a: number, b: number): number => a + b,
  sub: (a: number, b: number): number => a - b,
  mul: (a: number, b: number): number => a * b,
  div: (a: number, b: number): number => a / b,
  maximum: (a: number, b: number): number => Math.max(a, b),
  /** softplus(l) - x l: the Bernoulli cross-entropy of target x from logit l. */
  bceWithLogits: (l: number, x: number): number => softplus(l) - x * l,
} as const;

export const UNARY = {
  neg: (x: number): number => -x,
  exp: Math.exp,
  log: Math.log,
  sigmoid,
  tanh: Math.tanh,
  relu: (x: number): number => Math.max(x, 0),
  elu: (x: number): number => (x > 0 ? x : Math.exp(x) - 1),
  softplus,
  softsign: (x: number): number => x / (1 + Math.abs(x)),
  sqrt: Math.sqrt,
  square: (x: number): number => x * x,
  abs: Math.abs,
} as const;

/** The parameterised unary ops: each returns the scalar map for its parameters. */
export const rsqrt = (eps: number) => (x: number): number => 1 / Math.sqrt(x + eps);
export const affine = (s: number, t: number) => (x: number): number => s * x + t;
export const clamp = (lo: number, hi: number) => (x: number): number => Math.min(Math.max(x, lo), hi);
export const powScalar = (p: number) => (x: number): number => x ** p;

export const binary = (f: (a: number, b: number) => number) => (a: NDArray, b: NDArray): NDArray => broadcastMap([a, b], f);
export const unary = (f: (x: number) => number) => (x: NDArray): NDArray => map(x, f);

export const sum = (x: NDArray, axes: readonly number[], keepDims = false): NDArray => sumAxes(x, axes, keepDims);

/** Mean over axes: the sum divided by the number of elements summed. */
export function mean(x: NDArray, axes: readonly number[], keepDims = false): NDArray {
  const count = axes.reduce((n, a) => n * x.shape[a < 0 ? a + x.shape.length : a], 1);
  return map(sumAxes(x, axes, keepDims), (v) => v / count);
}

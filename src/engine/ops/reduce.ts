// Sums and means over axes (shaders/reduce.wgsl), and sumTo, which undoes broadcasting in backward.
import reduceWgsl from '../../../shaders/reduce.wgsl?raw';
import { record } from '../autograd';
import { Params, launch, stridesOf, MAX_RANK } from '../kernels';
import { grid1d, type KernelSpec } from '../../gpu/context';
import { empty, Tensor, ShapeError, shapeString, type Shape } from '../tensor';
import { expand, scale } from './elementwise';

const SUM_SPEC: KernelSpec = { name: 'reduce.wgsl', code: reduceWgsl, entry: 'sum', bindings: ['read', 'rw'] };

function normalizeAxes(op: string, shape: Shape, axes: number | readonly number[] | undefined): number[] {
  const list = axes === undefined ? shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => (a < 0 ? a + shape.length : a));
  for (const a of out) {
    if (a < 0 || a >= shape.length) throw new ShapeError(op, `axis ${a} out of range for ${shapeString(shape)}`);
  }
  return [...new Set(out)].sort((x, y) => x - y);
}

/** Launches the reduction of x over `axes` (sorted, unique), scaled; output keeps reduced axes as 1. */
function reduceKernel(x: Tensor, axes: readonly number[], scaleBy: number): Tensor {
  const strides = stridesOf(x.shape);
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  if (kept.length > MAX_RANK || axes.length > MAX_RANK) throw new ShapeError('sum', `rank ${x.rank} > ${MAX_RANK}`);
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const y = empty(keptShape);
  const reduced = axes.reduce((n, a) => n * x.shape[a], 1);
  const params = new Params()
    .u(y.size, reduced, kept.length, axes.length)
    .f(scaleBy)
    .align()
    .array(kept.map((i) => x.shape[i]), 8, 1)
    .array(kept.map((i) => strides[i]), 8)
    .array(axes.map((i) => x.shape[i]), 8, 1)
    .array(axes.map((i) => strides[i]), 8)
    .build();
  launch(SUM_SPEC, [x.binding, y.binding], params, grid1d(y.size));
  return y;
}

function dropAxes(shape: Shape, axes: readonly number[]): number[] {
  return shape.filter((_, i) => !axes.includes(i));
}

/** Sum over `axes` (all by default). keepDims keeps them as size 1. */
export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const list = normalizeAxes('sum', x.shape, axes);
  const kept = reduceKernel(x, list, 1);
  const y = keepDims ? kept : kept.view(dropAxes(x.shape, list));
  if (!keepDims) kept.dispose();
  return record('sum', y, [x], (g) => [expand(g.view(x.shape.map((d, i) => (list.includes(i) ? 1 : d))), x.shape)]);
}

export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const list = normalizeAxes('mean', x.shape, axes);
  const count = list.reduce((n, a) => n * x.shape[a], 1);
  const kept = reduceKernel(x, list, 1 / count);
  const y = keepDims ? kept : kept.view(dropAxes(x.shape, list));
  if (!keepDims) kept.dispose();
  return record('mean', y, [x], (g) => {
    const gx = expand(g.view(x.shape.map((d, i) => (list.includes(i) ? 1 : d))), x.shape);
    return [scale(gx, 1 / count)];
  });
}

/** Sums a broadcast gradient back to `shape` (the inverse of NumPy broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const offset = g.rank - shape.length;
  if (offset < 0) throw new ShapeError('sumTo', `cannot sum ${shapeString(g.shape)} to ${shapeString(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    const d = i - offset;
    if (d < 0 || (shape[d] === 1 && g.shape[i] !== 1)) axes.push(i);
    else if (shape[d] !== g.shape[i]) throw new ShapeError('sumTo', `cannot sum ${shapeString(g.shape)} to ${shapeString(shape)}`);
  }
  return sum(g, axes, true).view(shape);
}

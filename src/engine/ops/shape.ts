// Shape ops. All of them are one general strided copy (shaders/copy.wgsl): a region of `shape`
// read from a source at an offset with strides and written to a destination at an offset with
// strides. Each op below only works out that region; each backward is another copy (or a free view).
import copyWgsl from '../../../shaders/copy.wgsl?raw';
import { record } from '../autograd';
import { Params, launch, stridesOf, threadsGrid, MAX_RANK } from '../kernels';
import type { KernelSpec } from '../../gpu/context';
import { empty, sizeOf, Tensor, ShapeError, shapeString, type Shape } from '../tensor';

const COPY_SPEC: KernelSpec = { name: 'copy.wgsl', code: copyWgsl, entry: 'copy', bindings: ['read', 'rw'] };
const COPY_ROWS_SPEC: KernelSpec = { name: 'copy.wgsl', code: copyWgsl, entry: 'copy_rows', bindings: ['read', 'rw'] };
/** Elements a copy_rows thread moves (ROW_RUN in copy.wgsl). */
const ROW_RUN = 64;
const ZERO_SPEC: KernelSpec = { name: 'copy.wgsl', code: copyWgsl, entry: 'zero', bindings: ['rw'] };

/** A region copy: `shape` elements from src (offset, strides) to dst (offset, strides), in elements. */
interface Region {
  shape: readonly number[];
  srcOffset: number;
  srcStrides: readonly number[];
  dstOffset: number;
  dstStrides: readonly number[];
}

/**
 * Drops size-1 axes and merges neighbouring axes that are contiguous in both source and
 * destination, so the kernel unravels as few axes as possible (a slice of rows becomes rank 2).
 */
function simplify(r: Region): Region {
  const shape: number[] = [];
  const src: number[] = [];
  const dst: number[] = [];
  for (let i = 0; i < r.shape.length; i++) {
    const n = r.shape[i];
    if (n === 1) continue;
    const last = shape.length - 1;
    if (last >= 0 && src[last] === r.srcStrides[i] * n && dst[last] === r.dstStrides[i] * n) {
      shape[last] *= n;
      src[last] = r.srcStrides[i];
      dst[last] = r.dstStrides[i];
    } else {
      shape.push(n);
      src.push(r.srcStrides[i]);
      dst.push(r.dstStrides[i]);
    }
  }
  return { shape, srcOffset: r.srcOffset, srcStrides: src, dstOffset: r.dstOffset, dstStrides: dst };
}

function copyRegion(op: string, from: Tensor, to: Tensor, region: Region): void {
  const r = simplify(region);
  if (r.shape.length > MAX_RANK) throw new ShapeError(op, `copy of rank ${r.shape.length} > ${MAX_RANK}`);
  const n = sizeOf(r.shape);
  if (n === 0) return;
  const rank = r.shape.length;
  // Rows of at least 16 contiguous elements go by runs (copy_rows), the rest element by element.
  const rows = rank > 0 && r.srcStrides[rank - 1] === 1 && r.dstStrides[rank - 1] === 1 && r.shape[rank - 1] >= 16;
  const threads = rows ? (n / r.shape[rank - 1]) * Math.ceil(r.shape[rank - 1] / ROW_RUN) : n;
  const params = new Params()
    .u(threads, rank, r.srcOffset, r.dstOffset)
    .array(r.shape, 8, 1)
    .array(r.srcStrides, 8)
    .array(r.dstStrides, 8)
    .build();
  launch(rows ? COPY_ROWS_SPEC : COPY_SPEC, [from.binding, to.binding], params, rows ? threadsGrid(threads, 64) : threadsGrid(n));
}

function zeroFill(t: Tensor): void {
  launch(ZERO_SPEC, [t.binding], new Params().u(t.size, 0, 0, 0).build(), threadsGrid(t.size));
}

function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new ShapeError(op, `axis ${axis} out of range for rank ${rank}`);
  return a;
}

function checkDims(op: string, values: readonly number[], what: string): void {
  for (const v of values) {
    if (!Number.isInteger(v) || v < 0) throw new ShapeError(op, `${what} must be non-negative integers, got [${values.join(',')}]`);
  }
}

// ---- reshape -----------------------------------------------------------------------------------

/** A free view with another shape (one entry may be -1: inferred). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const known = shape.filter((d) => d !== -1);
  const inferred = shape.length - known.length;
  checkDims('reshape', known, 'dimensions');
  if (inferred > 1) throw new ShapeError('reshape', `more than one -1 in ${shapeString(shape)}`);
  const rest = sizeOf(known);
  let target = [...shape];
  if (inferred === 1) {
    if (rest === 0 || x.size % rest !== 0) throw new ShapeError('reshape', `cannot view ${shapeString(x.shape)} as ${shapeString(shape)}`);
    target = shape.map((d) => (d === -1 ? x.size / rest : d));
  }
  if (sizeOf(target) !== x.size) throw new ShapeError('reshape', `cannot view ${shapeString(x.shape)} as ${shapeString(shape)}`);
  return record('reshape', x.view(target), [x], (g) => [g.view(x.shape)]);
}

// ---- transpose ---------------------------------------------------------------------------------

/** Permutes axes: output axis i is input axis perm[i] (default: all axes reversed). */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const p = perm ?? x.shape.map((_, i) => x.rank - 1 - i);
  const sorted = [...p].sort((a, b) => a - b);
  if (p.length !== x.rank || sorted.some((a, i) => a !== i)) {
    throw new ShapeError('transpose', `perm [${p.join(',')}] is not a permutation of the axes of ${shapeString(x.shape)}`);
  }
  const shape = p.map((a) => x.shape[a]);
  const xs = stridesOf(x.shape);
  const y = empty(shape, x.dtype);
  copyRegion('transpose', x, y, { shape, srcOffset: 0, srcStrides: p.map((a) => xs[a]), dstOffset: 0, dstStrides: stridesOf(shape) });
  const inverse = new Array<number>(p.length);
  p.forEach((a, i) => (inverse[a] = i));
  return record('transpose', y, [x], (g) => [transpose(g, inverse)]);
}

// ---- slice, pad, crop --------------------------------------------------------------------------

/** x[starts[i] : starts[i] + sizes[i]] along every axis (a size of -1 runs to the end). */
export function slice(x: Tensor, starts: readonly number[], sizes: readonly number[]): Tensor {
  if (starts.length !== x.rank || sizes.length !== x.rank) {
    throw new ShapeError('slice', `starts [${starts.join(',')}] and sizes [${sizes.join(',')}] need one entry per axis of ${shapeString(x.shape)}`);
  }
  const shape = sizes.map((s, i) => (s === -1 ? x.shape[i] - starts[i] : s));
  checkDims('slice', starts, 'starts');
  checkDims('slice', shape, 'sizes');
  if (shape.some((s, i) => starts[i] + s > x.shape[i])) {
    throw new ShapeError('slice', `starts [${starts.join(',')}] sizes [${shape.join(',')}] exceed ${shapeString(x.shape)}`);
  }
  const xs = stridesOf(x.shape);
  const y = empty(shape, x.dtype);
  copyRegion('slice', x, y, {
    shape,
    srcOffset: starts.reduce((o, s, i) => o + s * xs[i], 0),
    srcStrides: xs,
    dstOffset: 0,
    dstStrides: stridesOf(shape),
  });
  return record('slice', y, [x], (g) => [pad(g, shape.map((s, i) => [starts[i], x.shape[i] - starts[i] - s] as const))]);
}

export type Pads = readonly (readonly [number, number])[];

/** Zero padding: pads[i] = [before, after] for every axis i. */
export function pad(x: Tensor, pads: Pads): Tensor {
  if (pads.length !== x.rank) throw new ShapeError('pad', `${pads.length} [before, after] pairs for ${shapeString(x.shape)}`);
  checkDims('pad', pads.flat(), 'pads');
  const shape = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  const ys = stridesOf(shape);
  const y = empty(shape, x.dtype);
  zeroFill(y);
  copyRegion('pad', x, y, {
    shape: x.shape,
    srcOffset: 0,
    srcStrides: stridesOf(x.shape),
    dstOffset: pads.reduce((o, [before], i) => o + before * ys[i], 0),
    dstStrides: ys,
  });
  return record('pad', y, [x], (g) => [slice(g, pads.map(([before]) => before), x.shape)]);
}

/** The inverse of pad: removes crops[i] = [before, after] elements along every axis i. */
export function crop(x: Tensor, crops: Pads): Tensor {
  if (crops.length !== x.rank) throw new ShapeError('crop', `${crops.length} [before, after] pairs for ${shapeString(x.shape)}`);
  checkDims('crop', crops.flat(), 'crops');
  const sizes = x.shape.map((d, i) => d - crops[i][0] - crops[i][1]);
  if (sizes.some((s) => s < 0)) throw new ShapeError('crop', `crops [${crops.map((c) => `[${c.join(',')}]`).join(',')}] exceed ${shapeString(x.shape)}`);
  return slice(x, crops.map(([before]) => before), sizes);
}

// ---- concat ------------------------------------------------------------------------------------

/** Joins tensors along `axis`; all other dimensions must match. */
export function concat(tensors: readonly Tensor[], axis: number): Tensor {
  if (tensors.length === 0) throw new ShapeError('concat', 'no tensors');
  const first = tensors[0];
  const a = normAxis('concat', axis, first.rank);
  for (const t of tensors) {
    if (t.rank !== first.rank || t.dtype !== first.dtype || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShapeError('concat', `shapes ${tensors.map((u) => `${shapeString(u.shape)} ${u.dtype}`).join(', ')} do not match off axis ${a}`);
    }
  }
  const shape = [...first.shape];
  shape[a] = tensors.reduce((n, t) => n + t.shape[a], 0);
  const ys = stridesOf(shape);
  const y = empty(shape, first.dtype);
  const starts: number[] = [];
  let at = 0;
  for (const t of tensors) {
    starts.push(at);
    copyRegion('concat', t, y, { shape: t.shape, srcOffset: 0, srcStrides: stridesOf(t.shape), dstOffset: at * ys[a], dstStrides: ys });
    at += t.shape[a];
  }
  return record('concat', y, tensors, (g) =>
    tensors.map((t, k) => {
      if (!t.requiresGrad) return null;
      const begin = shape.map((_, i) => (i === a ? starts[k] : 0));
      return slice(g, begin, t.shape);
    }),
  );
}

// ---- depth <-> space ---------------------------------------------------------------------------

/**
 * The index map of depth-to-space on NCHW tensors, as a 6-d region over the space side viewed as
 * [N, C, H, r, W, r] (axes n, c, h, dy, w, dx): strides into the depth side [N, r*r*C, H, W],
 * where channel (dy*r + dx)*C + c holds (c, dy, dx).
 */
function depthStrides(n: number, c: number, h: number, w: number, r: number): { shape: number[]; depth: number[]; space: number[] } {
  const hw = h * w;
  return {
    shape: [n, c, h, r, w, r],
    depth: [r * r * c * hw, hw, w, r * c * hw, 1, c * hw],
    space: stridesOf([n, c, h, r, w, r]),
  };
}

/**
 * Subpixel upsampling, NCHW in and out: x [N, r*r*C, H, W] -> [N, C, H*r, W*r] with
 * y[n, c, h*r + dy, w*r + dx] = x[n, (dy*r + dx)*C + c, h, w]. This is TensorFlow's NHWC
 * depth_to_space (output (h*r+dy, w*r+dx, c) <- input channel (dy*r+dx)*C + c) moved to NCHW, the
 * ordering PixelVAE's SubpixelConv2D relies on.
 */
export function depthToSpace(x: Tensor, r: number): Tensor {
  if (x.rank !== 4 || !Number.isInteger(r) || r < 1 || x.shape[1] % (r * r) !== 0) {
    throw new ShapeError('depthToSpace', `needs [N, C*r*r, H, W] with integer r >= 1, got ${shapeString(x.shape)} and r = ${r}`);
  }
  const [n, cr, h, w] = x.shape;
  const c = cr / (r * r);
  const m = depthStrides(n, c, h, w, r);
  const y = empty([n, c, h * r, w * r], x.dtype);
  copyRegion('depthToSpace', x, y, { shape: m.shape, srcOffset: 0, srcStrides: m.depth, dstOffset: 0, dstStrides: m.space });
  return record('depthToSpace', y, [x], (g) => [spaceToDepth(g, r)]);
}

/** The inverse of depthToSpace: x [N, C, H*r, W*r] -> [N, r*r*C, H, W]. */
export function spaceToDepth(x: Tensor, r: number): Tensor {
  if (x.rank !== 4 || !Number.isInteger(r) || r < 1 || x.shape[2] % r !== 0 || x.shape[3] % r !== 0) {
    throw new ShapeError('spaceToDepth', `needs [N, C, H*r, W*r] with integer r >= 1, got ${shapeString(x.shape)} and r = ${r}`);
  }
  const [n, c, hr, wr] = x.shape;
  const m = depthStrides(n, c, hr / r, wr / r, r);
  const y = empty([n, c * r * r, hr / r, wr / r], x.dtype);
  copyRegion('spaceToDepth', x, y, { shape: m.shape, srcOffset: 0, srcStrides: m.space, dstOffset: 0, dstStrides: m.depth });
  return record('spaceToDepth', y, [x], (g) => [depthToSpace(g, r)]);
}

// Float64 references of the shape ops and the embedding gather, written element by element with
// explicit coordinates (no strides tricks), to check src/engine/ops/{shape,gather}.ts against.
import { nd, type NDArray } from './ndarray';

/** Coordinates of flat index i in `shape`. */
function coords(i: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return c;
}

function flat(c: readonly number[], shape: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d] + c[d];
  return i;
}

export function transpose(x: NDArray, perm: readonly number[]): NDArray {
  const y = nd(perm.map((a) => x.shape[a]));
  for (let i = 0; i < y.data.length; i++) {
    const yc = coords(i, y.shape);
    const xc = new Array<number>(x.shape.length);
    perm.forEach((a, k) => (xc[a] = yc[k]));
    y.data[i] = x.data[flat(xc, x.shape)];
  }
  return y;
}

export function slice(x: NDArray, starts: readonly number[], sizes: readonly number[]): NDArray {
  const y = nd(sizes);
  for (let i = 0; i < y.data.length; i++) {
    const c = coords(i, sizes).map((v, d) => v + starts[d]);
    y.data[i] = x.data[flat(c, x.shape)];
  }
  return y;
}

export function pad(x: NDArray, pads: readonly (readonly [number, number])[]): NDArray {
  const y = nd(x.shape.map((d, i) => d + pads[i][0] + pads[i][1]));
  for (let i = 0; i < x.data.length; i++) {
    const c = coords(i, x.shape).map((v, d) => v + pads[d][0]);
    y.data[flat(c, y.shape)] = x.data[i];
  }
  return y;
}

export function crop(x: NDArray, crops: readonly (readonly [number, number])[]): NDArray {
  return slice(x, crops.map(([b]) => b), x.shape.map((d, i) => d - crops[i][0] - crops[i][1]));
}

export function concat(xs: readonly NDArray[], axis: number): NDArray {
  const a = axis < 0 ? axis + xs[0].shape.length : axis;
  const shape = [...xs[0].shape];
  shape[a] = xs.reduce((n, x) => n + x.shape[a], 0);
  const y = nd(shape);
  let at = 0;
  for (const x of xs) {
    for (let i = 0; i < x.data.length; i++) {
      const c = coords(i, x.shape);
      c[a] += at;
      y.data[flat(c, shape)] = x.data[i];
    }
    at += x.shape[a];
  }
  return y;
}

/** NCHW depth-to-space: y[n, c, h*r+dy, w*r+dx] = x[n, (dy*r+dx)*C + c, h, w]. */
export function depthToSpace(x: NDArray, r: number): NDArray {
  const [n, cr, h, w] = x.shape;
  const c = cr / (r * r);
  const y = nd([n, c, h * r, w * r]);
  for (let b = 0; b < n; b++)
    for (let k = 0; k < c; k++)
      for (let i = 0; i < h * r; i++)
        for (let j = 0; j < w * r; j++) {
          const channel = ((i % r) * r + (j % r)) * c + k;
          y.data[flat([b, k, i, j], y.shape)] = x.data[flat([b, channel, Math.floor(i / r), Math.floor(j / r)], x.shape)];
        }
  return y;
}

export function spaceToDepth(x: NDArray, r: number): NDArray {
  const [n, c, hr, wr] = x.shape;
  const y = nd([n, c * r * r, hr / r, wr / r]);
  for (let b = 0; b < n; b++)
    for (let k = 0; k < c; k++)
      for (let i = 0; i < hr; i++)
        for (let j = 0; j < wr; j++) {
          const channel = ((i % r) * r + (j % r)) * c + k;
          y.data[flat([b, channel, Math.floor(i / r), Math.floor(j / r)], y.shape)] = x.data[flat([b, k, i, j], x.shape)];
        }
  return y;
}

/** Row gather: out[..., d] = table[indices[...], d]. */
export function embedding(indices: NDArray, table: NDArray): NDArray {
  const d = table.shape[1];
  const y = nd([...indices.shape, d]);
  for (let i = 0; i < indices.data.length; i++) {
    for (let k = 0; k < d; k++) y.data[i * d + k] = table.data[indices.data[i] * d + k];
  }
  return y;
}

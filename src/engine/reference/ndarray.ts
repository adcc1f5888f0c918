// Float64 CPU reference arrays. Every kernel has a reference written with these, plainly, for tests
// to compare against (the llm.c / tinygrad habit): no tiling, no cleverness.

export interface NDArray {
  shape: number[];
  data: Float64Array;
}

export function nd(shape: readonly number[], data?: ArrayLike<number>): NDArray {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  if (data) {
    if (data.length !== n) throw new Error(`nd: ${data.length} values for shape [${shape.join(',')}]`);
    out.set(data);
  }
  return { shape: [...shape], data: out };
}

export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/** Element-wise map with NumPy broadcasting over any number of inputs. */
export function broadcastMap(inputs: readonly NDArray[], f: (...v: number[]) => number): NDArray {
  const rank = Math.max(...inputs.map((x) => x.shape.length));
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const x of inputs) {
      const di = x.shape[x.shape.length - rank + i] ?? 1;
      if (di !== 1) {
        if (d !== 1 && d !== di) throw new Error('broadcastMap: shapes do not broadcast');
        d = di;
      }
    }
    shape.push(d);
  }
  const out = nd(shape);
  const outStrides = stridesOf(shape);
  const inStrides = inputs.map((x) => {
    const own = stridesOf(x.shape);
    return shape.map((_, i) => {
      const d = i - (rank - x.shape.length);
      return d < 0 || x.shape[d] === 1 ? 0 : own[d];
    });
  });
  const args = new Array<number>(inputs.length);
  for (let i = 0; i < out.data.length; i++) {
    for (let k = 0; k < inputs.length; k++) {
      let offset = 0;
      for (let d = 0; d < rank; d++) offset += Math.floor(i / outStrides[d]) % shape[d] * inStrides[k][d];
      args[k] = inputs[k].data[offset];
    }
    out.data[i] = f(...args);
  }
  return out;
}

export function map(x: NDArray, f: (v: number) => number): NDArray {
  return { shape: [...x.shape], data: x.data.map(f) };
}

/** Sum over axes, keeping them as size 1 when keepDims. */
export function sumAxes(x: NDArray, axes: readonly number[], keepDims = false): NDArray {
  const norm = axes.map((a) => (a < 0 ? a + x.shape.length : a));
  const keptShape = x.shape.map((d, i) => (norm.includes(i) ? 1 : d));
  const out = nd(keptShape);
  const xStrides = stridesOf(x.shape);
  const oStrides = stridesOf(keptShape);
  for (let i = 0; i < x.data.length; i++) {
    let o = 0;
    for (let d = 0; d < x.shape.length; d++) {
      const c = Math.floor(i / xStrides[d]) % x.shape[d];
      if (!norm.includes(d)) o += c * oStrides[d];
    }
    out.data[o] += x.data[i];
  }
  if (!keepDims) out.shape = x.shape.filter((_, i) => !norm.includes(i));
  return out;
}

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
export const softplus = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

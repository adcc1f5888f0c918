// Float64 references of softmax, log-softmax and softmax cross-entropy along one axis.
import { nd, type NDArray } from './ndarray';

/** Calls f(base, stride) for every row of K elements along `axis` ([outer, K, inner] view). */
function forRows(shape: readonly number[], axis: number, f: (base: number, stride: number, row: number) => void): void {
  const a = axis < 0 ? axis + shape.length : axis;
  const k = shape[a];
  const inner = shape.slice(a + 1).reduce((n, d) => n * d, 1);
  const outer = shape.slice(0, a).reduce((n, d) => n * d, 1);
  for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) f(o * k * inner + i, inner, o * inner + i);
}

function logSumExp(x: Float64Array, base: number, stride: number, k: number): number {
  let m = -Infinity;
  for (let j = 0; j < k; j++) m = Math.max(m, x[base + j * stride]);
  let s = 0;
  for (let j = 0; j < k; j++) s += Math.exp(x[base + j * stride] - m);
  return m + Math.log(s);
}

const axisSize = (shape: readonly number[], axis: number): number => shape[axis < 0 ? axis + shape.length : axis];

export function logSoftmax(x: NDArray, axis: number): NDArray {
  const y = nd(x.shape);
  const k = axisSize(x.shape, axis);
  forRows(x.shape, axis, (base, stride) => {
    const lse = logSumExp(x.data, base, stride, k);
    for (let j = 0; j < k; j++) y.data[base + j * stride] = x.data[base + j * stride] - lse;
  });
  return y;
}

export function softmax(x: NDArray, axis: number): NDArray {
  const y = logSoftmax(x, axis);
  return { shape: y.shape, data: y.data.map(Math.exp) };
}

/** loss[row] = logsumexp(x[row]) - x[row, target[row]], shaped like x without `axis`. */
export function softmaxCrossEntropy(x: NDArray, targets: NDArray, axis: number): NDArray {
  const a = axis < 0 ? axis + x.shape.length : axis;
  const k = x.shape[a];
  const loss = nd(x.shape.filter((_, i) => i !== a));
  forRows(x.shape, a, (base, stride, row) => {
    loss.data[row] = logSumExp(x.data, base, stride, k) - x.data[base + targets.data[row] * stride];
  });
  return loss;
}

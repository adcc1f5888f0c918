// Float64 references for weight norm and batch norm.
import { nd, type NDArray } from './ndarray';

/** g * v / ||v|| with the norm per row of axis 0. */
export function weightNormRef(v: NDArray, g: NDArray): NDArray {
  const out = nd(v.shape);
  const rows = v.shape[0];
  const per = v.data.length / rows;
  for (let o = 0; o < rows; o++) {
    let sq = 0;
    for (let i = 0; i < per; i++) sq += v.data[o * per + i] ** 2;
    const s = g.data[o] / Math.sqrt(sq);
    for (let i = 0; i < per; i++) out.data[o * per + i] = v.data[o * per + i] * s;
  }
  return out;
}

/** Channel index of every element of x [N, C, ...]. */
function channelOf(x: NDArray): (i: number) => number {
  const c = x.shape[1];
  const inner = x.shape.slice(2).reduce((a, b) => a * b, 1);
  return (i) => Math.floor(i / inner) % c;
}

/** Per-channel mean and biased variance over all axes but 1. */
export function batchStatsRef(x: NDArray): { mean: Float64Array; var: Float64Array } {
  const c = x.shape[1];
  const ch = channelOf(x);
  const count = x.data.length / c;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let i = 0; i < x.data.length; i++) mean[ch(i)] += x.data[i] / count;
  for (let i = 0; i < x.data.length; i++) variance[ch(i)] += (x.data[i] - mean[ch(i)]) ** 2 / count;
  return { mean, var: variance };
}

/** (x - mean) / sqrt(var + eps) * gamma + beta with the given per-channel statistics. */
export function batchNormWithStatsRef(x: NDArray, gamma: NDArray, beta: NDArray, mean: ArrayLike<number>, variance: ArrayLike<number>, eps: number): NDArray {
  const ch = channelOf(x);
  const out = nd(x.shape);
  for (let i = 0; i < x.data.length; i++) {
    const k = ch(i);
    out.data[i] = ((x.data[i] - mean[k]) / Math.sqrt(variance[k] + eps)) * gamma.data[k] + beta.data[k];
  }
  return out;
}

/** Training-mode batch norm: the batch's own statistics. */
export function batchNormRef(x: NDArray, gamma: NDArray, beta: NDArray, eps: number): NDArray {
  const s = batchStatsRef(x);
  return batchNormWithStatsRef(x, gamma, beta, s.mean, s.var, eps);
}

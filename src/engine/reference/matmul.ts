// Float64 references for matmul and linear: plain triple loops.
import { nd, type NDArray } from './ndarray';

/** Transposes the last two axes. */
export function transpose2(x: NDArray): NDArray {
  const [r, c] = x.shape.slice(-2);
  const batch = x.data.length / (r * c);
  const out = nd([...x.shape.slice(0, -2), c, r]);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out.data[b * r * c + j * r + i] = x.data[b * r * c + i * c + j];
  }
  return out;
}

/** op(A) op(B), 2-D or batched 3-D (a 2-D operand is shared across the batch). */
export function matmulRef(a: NDArray, b: NDArray, transA = false, transB = false): NDArray {
  const A = transA ? transpose2(a) : a;
  const B = transB ? transpose2(b) : b;
  const [m, k] = A.shape.slice(-2);
  const n = B.shape[B.shape.length - 1];
  const batch = A.shape.length === 3 ? A.shape[0] : B.shape.length === 3 ? B.shape[0] : 1;
  const batched = A.shape.length === 3 || B.shape.length === 3;
  const out = nd(batched ? [batch, m, n] : [m, n]);
  const aStride = A.shape.length === 3 ? m * k : 0;
  const bStride = B.shape.length === 3 ? k * n : 0;
  for (let t = 0; t < batch; t++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let l = 0; l < k; l++) s += A.data[t * aStride + i * k + l] * B.data[t * bStride + l * n + j];
        out.data[t * m * n + i * n + j] = s;
      }
    }
  }
  return out;
}

/** x [B,in] w^T [in,out] + bias [out]. */
export function linearRef(x: NDArray, w: NDArray, bias?: NDArray): NDArray {
  const y = matmulRef(x, w, false, true);
  if (bias) {
    const out = y.shape[1];
    for (let i = 0; i < y.data.length; i++) y.data[i] += bias.data[i % out];
  }
  return y;
}

/** Two linear maps of x interleaved by column: out[:, 2c] = (x a^T + aBias)[:, c], out[:, 2c+1] from b. */
export function pairedLinearRef(x: NDArray, a: NDArray, b: NDArray, aBias?: NDArray, bBias?: NDArray): NDArray {
  const ya = linearRef(x, a, aBias);
  const yb = linearRef(x, b, bBias);
  const [n, p] = ya.shape;
  const out = nd([n, 2 * p]);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < p; c++) {
      out.data[i * 2 * p + 2 * c] = ya.data[i * p + c];
      out.data[i * 2 * p + 2 * c + 1] = yb.data[i * p + c];
    }
  }
  return out;
}

// Softmax, log-softmax and fused softmax cross-entropy along any axis (shaders/softmax.wgsl).
// The tensor is viewed as [outer, K, inner] around the axis; one GPU thread owns a row of K: on a
// CPU adapter that beat a workgroup per row with a tree reduction and barriers (the timings are in
// docs/performance.md, "Measurements behind kernel choices"). The backward recomputes the row's
// log-sum-exp, then writes every element.
import softmaxWgsl from '../../../shaders/softmax.wgsl?raw';
import { record } from '../autograd';
import { Params, launch, threadsGrid } from '../kernels';
import type { KernelSpec } from '../../gpu/context';
import { empty, sizeOf, Tensor, ShapeError, shapeString } from '../tensor';

const spec = (entry: string, bindings: KernelSpec['bindings'], mode?: number): KernelSpec => ({
  name: 'softmax.wgsl',
  code: softmaxWgsl,
  entry,
  constants: mode === undefined ? undefined : { MODE: mode },
  bindings,
});
const SOFTMAX = spec('forward', ['read', 'rw'], 0);
const LOG_SOFTMAX = spec('forward', ['read', 'rw'], 1);
const SOFTMAX_BACKWARD = spec('backward', ['read', 'read', 'rw'], 0);
const LOG_SOFTMAX_BACKWARD = spec('backward', ['read', 'read', 'rw'], 1);
const XENT = spec('xent', ['read', 'read', 'rw']);
const XENT_BACKWARD = spec('xent_backward', ['read', 'read', 'read', 'rw']);

const NAN_BITS = 0x7fc00000;
const THREADS = 64;

interface Rows {
  axis: number;
  rows: number;
  k: number;
  params: Uint32Array;
}

function rowsOf(op: string, x: Tensor, axis: number): Rows {
  if (x.dtype !== 'f32') throw new ShapeError(op, `expects f32 logits, got ${shapeString(x.shape)} ${x.dtype}`);
  const a = axis < 0 ? axis + x.rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= x.rank) throw new ShapeError(op, `axis ${axis} out of range for ${shapeString(x.shape)}`);
  const k = x.shape[a];
  if (k === 0) throw new ShapeError(op, `empty axis ${a} in ${shapeString(x.shape)}`);
  const inner = sizeOf(x.shape.slice(a + 1));
  const rows = x.size / k;
  return { axis: a, rows, k, params: new Params().u(rows, k, inner, NAN_BITS).build() };
}

function rowKernel(forward: KernelSpec, x: Tensor, r: Rows): Tensor {
  const y = empty(x.shape);
  launch(forward, [x.binding, y.binding], r.params, threadsGrid(r.rows, THREADS));
  return y;
}

function rowBackward(backward: KernelSpec, g: Tensor, y: Tensor, r: Rows): Tensor {
  const dx = empty(y.shape);
  launch(backward, [g.binding, y.binding, dx.binding], r.params, threadsGrid(r.rows, THREADS));
  return dx;
}

/** exp(x - max) / sum exp(x - max) along `axis`. */
export function softmax(x: Tensor, axis = -1): Tensor {
  const r = rowsOf('softmax', x, axis);
  const y = rowKernel(SOFTMAX, x, r);
  return record('softmax', y, [x], (g) => [rowBackward(SOFTMAX_BACKWARD, g, y, r)]);
}

/** x - logsumexp(x) along `axis`, computed stably (online max-subtracted sum). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const r = rowsOf('logSoftmax', x, axis);
  const y = rowKernel(LOG_SOFTMAX, x, r);
  return record('logSoftmax', y, [x], (g) => [rowBackward(LOG_SOFTMAX_BACKWARD, g, y, r)]);
}

/**
 * Per-row -log softmax(logits)[target] along `axis` (e.g. logits [B, 256, C, H, W] with axis 1 and
 * targets [B, C, H, W]; or logits [N, K] with axis -1 and targets [N]). Targets are u32 class indices
 * shaped like logits without the axis; a target >= K gives NaN. The backward, (softmax - onehot) * g,
 * is one kernel (which recomputes each row's log-sum-exp).
 */
export function softmaxCrossEntropy(logits: Tensor, targets: Tensor, axis = -1): Tensor {
  const r = rowsOf('softmaxCrossEntropy', logits, axis);
  const rowShape = logits.shape.filter((_, i) => i !== r.axis);
  if (targets.dtype !== 'u32' || targets.rank !== rowShape.length || targets.shape.some((d, i) => d !== rowShape[i])) {
    throw new ShapeError(
      'softmaxCrossEntropy',
      `targets must be u32 ${shapeString(rowShape)} for logits ${shapeString(logits.shape)} on axis ${r.axis}, got ${shapeString(targets.shape)} ${targets.dtype}`,
    );
  }
  const loss = empty(rowShape);
  launch(XENT, [logits.binding, targets.binding, loss.binding], r.params, threadsGrid(r.rows, THREADS));
  return record('softmaxCrossEntropy', loss, [logits, targets], (g) => {
    const dx = empty(logits.shape);
    launch(XENT_BACKWARD, [logits.binding, targets.binding, g.binding, dx.binding], r.params, threadsGrid(r.rows, THREADS));
    return [dx, null];
  });
}

// Weight normalisation (one fused kernel each way) and batch normalisation: in training one fused
// kernel each way (shaders/batch_norm.wgsl, which also moves the running statistics in place on the
// GPU); with running statistics (inference) a few element-wise ops.
import normWgsl from '../../../shaders/norm.wgsl?raw';
import batchNormWgsl from '../../../shaders/batch_norm.wgsl?raw';
import type { KernelSpec } from '../../gpu/context';
import { gradTarget, record } from '../autograd';
import { Params, launch } from '../kernels';
import { empty, Tensor, ShapeError, shapeString } from '../tensor';
import { add, mul, rsqrt, sub } from './elementwise';
import { reshape } from './shape';

/**
 * W = g * V / ||V||, the norm taken per output unit (axis 0) over all other axes: v is [out, ...]
 * (a linear's [out, in] or a conv's [out, in, kh, kw]) and g is [out]. No epsilon, as in the
 * reference. One fused kernel each way (shaders/norm.wgsl): every weight-normed layer runs this at
 * every step, so a chain of element-wise ops here cost a large share of small models' steps.
 */
const WN_FORWARD: KernelSpec = { name: 'norm.wgsl', code: normWgsl, entry: 'weight_norm_forward', bindings: ['read', 'read', 'rw'] };
const WN_BACKWARD: KernelSpec = { name: 'norm.wgsl', code: normWgsl, entry: 'weight_norm_backward', bindings: ['read', 'read', 'read', 'rw', 'rw'] };

export function weightNorm(v: Tensor, g: Tensor): Tensor {
  if (v.rank < 2 || g.rank !== 1 || g.shape[0] !== v.shape[0] || v.dtype !== 'f32' || g.dtype !== 'f32') {
    throw new ShapeError('weightNorm', `v ${shapeString(v.shape)} (want [out, ...], f32) and g ${shapeString(g.shape)} (want [out])`);
  }
  const rows = v.shape[0];
  const params = new Params().u(rows, v.size / rows).build();
  const w = empty(v.shape);
  launch(WN_FORWARD, [v.binding, g.binding, w.binding], params, [Math.ceil(rows / 64)]);
  return record('weightNorm', w, [v, g], (dw) => {
    const dv = empty(v.shape);
    const dg = empty(g.shape);
    launch(WN_BACKWARD, [v.binding, g.binding, dw.binding, dv.binding, dg.binding], params, [Math.ceil(rows / 64)]);
    return [dv, dg];
  });
}

export interface RunningStats {
  /** [C], updated in place in training. */
  mean: Tensor;
  /** [C], the biased batch variance is averaged in. */
  var: Tensor;
}

export interface BatchNormOptions {
  /** Batch statistics (and running-stat updates) when true; running statistics when false. */
  training: boolean;
  /** Added to the variance (the hierarchical reference uses 1e-2). Default 1e-5. */
  eps?: number;
  running?: RunningStats;
  /**
   * running <- (1 - momentum) running + momentum * batch. Default 0.1. The reference's cumulative
   * average over s batches is momentum = 1 / (s + 1); momentum 1 overwrites (its ordinary steps).
   */
  momentum?: number;
  /** Added to the output (a residual block's sum; its gradient is the output's). */
  residual?: Tensor;
}

/**
 * Batch norm over all axes but 1, for x [N, C, H, W] or [N, C]; gamma and beta are [C] (either may be
 * null: scale 1 / shift 0). Training normalises by the batch mean and biased variance, gradients
 * flowing through both, and updates `running` in place without readback.
 */
export function batchNorm(x: Tensor, gamma: Tensor | null, beta: Tensor | null, opts: BatchNormOptions): Tensor {
  const c = x.shape[1];
  const bad = (t: Tensor | null | undefined): boolean => !!t && (t.rank !== 1 || t.shape[0] !== c || t.dtype !== 'f32');
  if ((x.rank !== 2 && x.rank !== 4) || x.dtype !== 'f32' || bad(gamma) || bad(beta) || bad(opts.running?.mean) || bad(opts.running?.var)) {
    const show = (t: Tensor | null | undefined): string => (t ? shapeString(t.shape) : '-');
    throw new ShapeError(
      'batchNorm',
      `x ${shapeString(x.shape)} (want [N,C,H,W] or [N,C]), gamma ${show(gamma)}, beta ${show(beta)}, ` +
        `running mean ${show(opts.running?.mean)}, var ${show(opts.running?.var)} (want [C])`,
    );
  }
  if (!opts.training && !opts.running) throw new ShapeError('batchNorm', `inference on x ${shapeString(x.shape)} needs running statistics`);
  const eps = opts.eps ?? 1e-5;
  const channelShape = x.rank === 4 ? [1, c, 1, 1] : [1, c];

  const residual = opts.residual ?? null;
  if (residual && (residual.dtype !== 'f32' || residual.shape.length !== x.shape.length || residual.shape.some((d, i) => d !== x.shape[i]))) {
    throw new ShapeError('batchNorm', `residual ${shapeString(residual.shape)} must have x's shape ${shapeString(x.shape)}`);
  }
  if (opts.training) return batchNormTraining(x, gamma, beta, eps, opts.running ?? null, opts.momentum ?? 0.1, residual);
  const running = opts.running!;
  const mu = reshape(running.mean, channelShape);
  const inv = rsqrt(reshape(running.var, channelShape), eps);
  const normalized = mul(sub(x, mu), inv);
  let y = gamma ? mul(normalized, reshape(gamma, channelShape)) : normalized;
  if (beta) y = add(y, reshape(beta, channelShape));
  return residual ? add(y, residual) : y;
}

const BN_SECTIONS = (() => {
  const f = batchNormWgsl.indexOf('// ---- forward');
  const b = batchNormWgsl.indexOf('// ---- backward');
  if (f < 0 || b < 0) throw new Error('batch_norm.wgsl: a section is missing');
  return { forward: batchNormWgsl.slice(0, b), backward: batchNormWgsl.slice(0, f) + batchNormWgsl.slice(b) };
})();
const BN_FORWARD: KernelSpec = { name: 'batch_norm.wgsl', code: BN_SECTIONS.forward, entry: 'batch_norm_forward', bindings: ['read', 'read', 'read', 'read', 'rw', 'rw', 'rw', 'rw'] };
const BN_BACKWARD: KernelSpec = { name: 'batch_norm.wgsl', code: BN_SECTIONS.backward, entry: 'batch_norm_backward', bindings: ['read', 'read', 'read', 'read', 'rw', 'rw', 'rw'] };

/**
 * Training-mode batch norm in one dispatch each way (shaders/batch_norm.wgsl: one workgroup per
 * channel): the batch mean and biased variance, the normalised and scaled output, the running
 * statistics moved in the same dispatch; the backward gives x's, gamma's and beta's gradients.
 */
function batchNormTraining(x: Tensor, gamma: Tensor | null, beta: Tensor | null, eps: number, running: RunningStats | null, momentum: number, residual: Tensor | null): Tensor {
  const [n, c] = x.shape;
  const plane = x.rank === 4 ? x.shape[2] * x.shape[3] : 1;
  const y = empty(x.shape);
  const saved = empty([2 * c]);
  const scratch: Tensor[] = [];
  const or = (t: Tensor | null): Tensor => t ?? scratch[scratch.push(empty([1])) - 1];
  const flags = (gamma ? 1 : 0) | (beta ? 2 : 0) | (running ? 4 : 0) | (residual ? 32 : 0);
  const words = (f: number): Uint32Array => new Params().u(n, c, plane, f).f(eps, momentum, 0, 0).build();
  if (n * plane > 0) {
    launch(BN_FORWARD, [x.binding, (gamma ?? x).binding, (beta ?? x).binding, (residual ?? x).binding, y.binding, saved.binding, or(running?.mean ?? null).binding, or(running?.var ?? null).binding], words(flags), [c]);
  }
  for (const t of scratch.splice(0)) t.dispose();
  const inputs = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : []), ...(residual ? [residual] : [])];
  return record('batchNorm', y, inputs, (dy) => {
    const dx = x.requiresGrad ? gradTarget(x) : empty(x.shape);
    const dgamma = gamma?.requiresGrad ? gradTarget(gamma) : null;
    const dbeta = beta?.requiresGrad ? gradTarget(beta) : null;
    const f = (gamma ? 1 : 0) | (dgamma ? 8 : 0) | (dbeta ? 16 : 0);
    if (n * plane > 0) launch(BN_BACKWARD, [x.binding, dy.binding, (gamma ?? x).binding, saved.binding, dx.binding, or(dgamma).binding, or(dbeta).binding], words(f), [c]);
    for (const t of scratch.splice(0)) t.dispose();
    const grads: (Tensor | null)[] = [x.requiresGrad ? dx : null];
    if (gamma) grads.push(dgamma);
    if (beta) grads.push(dbeta);
    // The residual's gradient is y's, unchanged.
    if (residual) grads.push(residual.requiresGrad ? dy : null);
    return grads;
  });
}

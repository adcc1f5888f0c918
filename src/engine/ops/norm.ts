// Weight normalisation (one fused kernel each way) and batch normalisation, composed from
// element-wise and reduction ops (so its gradients, through the batch statistics, come from those
// ops' backward passes).
// Running statistics are updated in place on the GPU (optim.ts's moving-average kernel).
import normWgsl from '../../../shaders/norm.wgsl?raw';
import type { KernelSpec } from '../../gpu/context';
import { noGrad, record } from '../autograd';
import { Params, launch } from '../kernels';
import { empty, Tensor, ShapeError, shapeString } from '../tensor';
import { movingAverageInPlace } from '../optim';
import { add, mul, rsqrt, square, sub } from './elementwise';
import { mean } from './reduce';
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
  const axes = x.rank === 4 ? [0, 2, 3] : [0];
  const channelShape = x.rank === 4 ? [1, c, 1, 1] : [1, c];

  let normalized: Tensor;
  if (opts.training) {
    const mu = mean(x, axes, true);
    const centered = sub(x, mu);
    const variance = mean(square(centered), axes, true);
    normalized = mul(centered, rsqrt(variance, eps));
    const running = opts.running;
    if (running) {
      const momentum = opts.momentum ?? 0.1;
      noGrad(() => {
        movingAverageInPlace(running.mean, mu, momentum);
        movingAverageInPlace(running.var, variance, momentum);
      });
    }
  } else {
    const running = opts.running!;
    const mu = reshape(running.mean, channelShape);
    const inv = rsqrt(reshape(running.var, channelShape), eps);
    normalized = mul(sub(x, mu), inv);
  }
  let y = gamma ? mul(normalized, reshape(gamma, channelShape)) : normalized;
  if (beta) y = add(y, reshape(beta, channelShape));
  return y;
}

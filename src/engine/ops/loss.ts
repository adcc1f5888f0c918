// Fused per-image losses (shaders/loss.wgsl): forward and backward each one dispatch.
import lossWgsl from '../../../shaders/loss.wgsl?raw';
import type { KernelSpec } from '../../gpu/context';
import { record } from '../autograd';
import { Params, launch, threadsGrid } from '../kernels';
import { empty, ShapeError, shapeString, type Tensor } from '../tensor';

const NLL: KernelSpec = { name: 'loss.wgsl', code: lossWgsl, entry: 'bernoulli_nll', bindings: ['read', 'read', 'rw'] };
const NLL_BACKWARD: KernelSpec = { name: 'loss.wgsl', code: lossWgsl, entry: 'bernoulli_nll_backward', bindings: ['read', 'read', 'read', 'rw'] };

/**
 * -log p(x | logits) of binary (or [0, 1]) targets under independent Bernoullis, summed over all
 * axes but the first: logits and targets [B, ...] -> [B] nats. The same value as
 * sum(bceWithLogits(logits, x)) over each image; targets get no gradient (they are data).
 */
export function bernoulliNll(logits: Tensor, targets: Tensor): Tensor {
  if (logits.rank < 1 || logits.shape.length !== targets.shape.length || logits.shape.some((d, i) => d !== targets.shape[i]) || logits.dtype !== 'f32' || targets.dtype !== 'f32') {
    throw new ShapeError('bernoulliNll', `logits ${shapeString(logits.shape)} and targets ${shapeString(targets.shape)} must be f32 of one shape [B, ...]`);
  }
  const images = logits.shape[0];
  const perImage = images === 0 ? 0 : logits.size / images;
  const params = new Params().u(images, perImage).build();
  const nll = empty([images]);
  launch(NLL, [logits.binding, targets.binding, nll.binding], params, [Math.ceil(images / 64)]);
  return record('bernoulliNll', nll, [logits, targets], (g) => {
    const gl = empty(logits.shape);
    launch(NLL_BACKWARD, [logits.binding, targets.binding, g.binding, gl.binding], params, threadsGrid(logits.size));
    return [gl, null];
  });
}

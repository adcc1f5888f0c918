// Float64 reference of the fused Bernoulli negative log-likelihood (shaders/loss.wgsl).
import { nd, softplus, type NDArray } from './ndarray';

/** nll[b] = sum over image b of softplus(l) - x l: -log p(x | logits), logits and x [B, ...] -> [B]. */
export function bernoulliNll(logits: NDArray, x: NDArray): NDArray {
  if (logits.data.length !== x.data.length) throw new Error('bernoulliNll: logits and targets differ in size');
  const b = logits.shape[0];
  const per = b === 0 ? 0 : logits.data.length / b;
  const out = nd([b]);
  for (let i = 0; i < logits.data.length; i++) out.data[Math.floor(i / per)] += softplus(logits.data[i]) - x.data[i] * logits.data[i];
  return out;
}

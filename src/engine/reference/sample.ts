// Float64 references of the in-kernel samplers: the Bernoulli pixel draw (shaders/sample.wgsl and the
// MNIST incremental sampler), the 256-way inverse-CDF draw and the diagonal-Gaussian prior step
// (shaders/sample_categorical.wgsl and the hierarchical incremental sampler). Each takes the noise the
// kernels take (uniforms or standard normals drawn up front), so a draw is a function of its inputs.
import { nd, sigmoid, type NDArray } from './ndarray';

/** pixel = 1 where uniform < sigmoid(logit): logits and uniforms of one shape. */
export function bernoulliDraw(logits: NDArray, uniforms: NDArray): { images: NDArray; probs: NDArray } {
  if (logits.data.length !== uniforms.data.length) throw new Error('bernoulliDraw: logits and uniforms differ in size');
  const probs = nd(logits.shape, Array.from(logits.data, sigmoid));
  const images = nd(logits.shape, Array.from(probs.data, (p, i) => (uniforms.data[i] < p ? 1 : 0)));
  return { images, probs };
}

/**
 * Inverse-CDF draws from softmax(logits) along axis 1: logits [B, K, ...rest], uniforms [B, ...rest].
 * classes: the smallest k with sum_{j<=k} p_j > u (the last class when none is, e.g. a NaN row).
 * margin: how far u lies from the nearest cumulative sum (probability units): a draw whose margin is
 * below float32 rounding may legitimately differ on the GPU.
 */
export function categoricalDraw(logits: NDArray, uniforms: NDArray): { classes: NDArray; margin: NDArray } {
  const [b, k] = logits.shape;
  const inner = logits.shape.slice(2).reduce((n, d) => n * d, 1);
  if (uniforms.data.length !== b * inner) throw new Error('categoricalDraw: uniforms must be [B, ...rest] of the logits [B, K, ...rest]');
  const classes = nd([b, ...logits.shape.slice(2)]);
  const margin = nd(classes.shape);
  const p = new Float64Array(k);
  for (let n = 0; n < b; n++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number): number => logits.data[(n * k + j) * inner + i];
      let m = -Infinity;
      for (let j = 0; j < k; j++) m = Math.max(m, at(j));
      let total = 0;
      for (let j = 0; j < k; j++) total += (p[j] = Math.exp(at(j) - m));
      const u = uniforms.data[n * inner + i];
      let chosen = k - 1;
      let acc = 0;
      let closest = Infinity;
      let found = false;
      for (let j = 0; j < k; j++) {
        acc += p[j] / total;
        closest = Math.min(closest, Math.abs(acc - u));
        if (!found && acc > u) {
          chosen = j;
          found = true;
        }
      }
      classes.data[n * inner + i] = chosen;
      margin.data[n * inner + i] = Number.isNaN(closest) ? 0 : closest;
    }
  }
  return { classes, margin };
}

const softsign = (x: number): number => x / (1 + Math.abs(x));

/**
 * The latent PixelCNN's Gaussian step at every position: raw [B, 2L, ...rest] (the mu half, then the
 * sigma half), eps [B, L, ...rest] ~ N(0, 1): mu = 2 softsign(raw_mu / 2),
 * sigma = max((softsign(raw_sigma) + 1) / 2, floor), z = mu + sigma eps.
 */
export function gaussianDraw(raw: NDArray, eps: NDArray, floor: number): NDArray {
  const [b, twoL] = raw.shape;
  const l = twoL / 2;
  const inner = raw.shape.slice(2).reduce((n, d) => n * d, 1);
  if (!Number.isInteger(l) || eps.data.length !== b * l * inner) throw new Error('gaussianDraw: raw must be [B, 2L, ...] and eps [B, L, ...]');
  const z = nd(eps.shape);
  for (let n = 0; n < b; n++) {
    for (let c = 0; c < l; c++) {
      for (let i = 0; i < inner; i++) {
        const mu = 2 * softsign(raw.data[(n * twoL + c) * inner + i] / 2);
        const sigma = Math.max(0.5 * (softsign(raw.data[(n * twoL + l + c) * inner + i]) + 1), floor);
        const at = (n * l + c) * inner + i;
        z.data[at] = mu + sigma * eps.data[at];
      }
    }
  }
  return z;
}

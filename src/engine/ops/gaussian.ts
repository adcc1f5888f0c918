// Densities of diagonal Gaussians for the latent variables, element-wise with NumPy broadcasting.
// Composed from element-wise ops (each with its own backward), parameterised by log sigma:
// sigma^2 = exp(2 logSigma) and 1/sigma^2 = exp(-2 logSigma), so no division by a small sigma.
import gaussianLatentWgsl from '../../../shaders/gaussian_latent.wgsl?raw';
import type { KernelSpec } from '../../gpu/context';
import { recordMany } from '../autograd';
import { Params, launch, threadsGrid } from '../kernels';
import { add, affine, broadcastShapes, exp, mul, scale, square, sub } from './elementwise';
import { empty, ShapeError, shapeString, type Tensor } from '../tensor';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

function check(op: string, inputs: readonly Tensor[]): void {
  for (const t of inputs) {
    if (t.dtype !== 'f32') throw new ShapeError(op, `expects f32 tensors, got ${inputs.map((u) => `${shapeString(u.shape)} ${u.dtype}`).join(', ')}`);
  }
  try {
    inputs.reduce<readonly number[]>((shape, t) => broadcastShapes(op, shape, t.shape), []);
  } catch {
    throw new ShapeError(op, `shapes ${inputs.map((u) => shapeString(u.shape)).join(', ')} do not broadcast`);
  }
}

/**
 * KL(q || p) for q = N(muQ, sigmaQ^2), p = N(muP, sigmaP^2), element-wise:
 * log sigmaP - log sigmaQ + (sigmaQ^2 + (muQ - muP)^2) / (2 sigmaP^2) - 1/2.
 */
export function klDiagGaussians(muQ: Tensor, logSigmaQ: Tensor, muP: Tensor, logSigmaP: Tensor): Tensor {
  check('klDiagGaussians', [muQ, logSigmaQ, muP, logSigmaP]);
  const numerator = add(exp(scale(logSigmaQ, 2)), square(sub(muQ, muP)));
  const ratio = mul(numerator, exp(scale(logSigmaP, -2)));
  return add(sub(logSigmaP, logSigmaQ), affine(ratio, 0.5, -0.5));
}

/** KL(N(mu, sigma^2) || N(0, 1)) = -1/2 (1 + 2 log sigma - mu^2 - sigma^2), element-wise. */
export function klStandardNormal(mu: Tensor, logSigma: Tensor): Tensor {
  check('klStandardNormal', [mu, logSigma]);
  return sub(affine(add(square(mu), exp(scale(logSigma, 2))), 0.5, -0.5), logSigma);
}

/** log N(x; mu, sigma^2) = -1/2 log(2 pi) - log sigma - (x - mu)^2 / (2 sigma^2), element-wise. */
export function gaussianLogDensity(x: Tensor, mu: Tensor, logSigma: Tensor): Tensor {
  check('gaussianLogDensity', [x, mu, logSigma]);
  const z2 = mul(square(sub(x, mu)), exp(scale(logSigma, -2)));
  return sub(affine(z2, -0.5, -HALF_LOG_2PI), logSigma);
}

const [LATENT_COMMON, LATENT_FORWARD, LATENT_BACKWARD] = (() => {
  const f = gaussianLatentWgsl.indexOf('// ---- forward');
  const b = gaussianLatentWgsl.indexOf('// ---- backward');
  if (f < 0 || b < 0) throw new Error('gaussian_latent.wgsl: a section is missing');
  return [gaussianLatentWgsl.slice(0, f), gaussianLatentWgsl.slice(f, b), gaussianLatentWgsl.slice(b)];
})();
const LATENT_FORWARD_SPEC: KernelSpec = { name: 'gaussian_latent.wgsl', code: LATENT_COMMON + LATENT_FORWARD, entry: 'gaussian_latent_forward', bindings: ['read', 'read', 'rw', 'rw'] };
const LATENT_BACKWARD_SPEC: KernelSpec = { name: 'gaussian_latent.wgsl', code: LATENT_COMMON + LATENT_BACKWARD, entry: 'gaussian_latent_backward', bindings: ['read', 'read', 'read', 'read', 'rw'] };

/**
 * A VAE's latent in a training step, from the encoder's interleaved statistics [N, Z, 2] (mu, log
 * sigma) and noise [N, Z]: z = mu + noise * sigma and KL(N(mu, sigma^2) || N(0, 1)) element-wise,
 * each [N, Z], in one dispatch (and one for the gradient of the statistics; noise gets none).
 * The same values as slicing the statistics, then add(mu, mul(noise, exp(logSigma))) and
 * klStandardNormal(mu, logSigma).
 */
export function gaussianLatent(stats: Tensor, noise: Tensor): { z: Tensor; kl: Tensor } {
  if (stats.rank !== 3 || stats.shape[2] !== 2 || noise.rank !== 2 || noise.shape[0] !== stats.shape[0] || noise.shape[1] !== stats.shape[1] || stats.dtype !== 'f32' || noise.dtype !== 'f32') {
    throw new ShapeError('gaussianLatent', `statistics ${shapeString(stats.shape)} (want [N, Z, 2], f32) and noise ${shapeString(noise.shape)} (want [N, Z], f32)`);
  }
  const [n, zd] = noise.shape;
  const count = n * zd;
  const z = empty([n, zd]);
  const kl = empty([n, zd]);
  launch(LATENT_FORWARD_SPEC, [stats.binding, noise.binding, z.binding, kl.binding], new Params().u(count, 0, 0, 0).build(), threadsGrid(count, 64));
  const [zOut, klOut] = recordMany('gaussianLatent', [z, kl], [stats], ([dz, dkl]) => {
    const dstats = empty(stats.shape);
    launch(
      LATENT_BACKWARD_SPEC,
      [stats.binding, noise.binding, (dz ?? noise).binding, (dkl ?? noise).binding, dstats.binding],
      new Params().u(count, dz ? 1 : 0, dkl ? 1 : 0, 0).build(),
      threadsGrid(count, 64),
    );
    return [dstats];
  });
  return { z: zOut, kl: klOut };
}

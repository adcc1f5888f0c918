// Densities of diagonal Gaussians for the latent variables, element-wise with NumPy broadcasting.
// Composed from element-wise ops (each with its own backward), parameterised by log sigma:
// sigma^2 = exp(2 logSigma) and 1/sigma^2 = exp(-2 logSigma), so no division by a small sigma.
import { add, affine, broadcastShapes, exp, mul, scale, square, sub } from './elementwise';
import { ShapeError, shapeString, type Tensor } from '../tensor';

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

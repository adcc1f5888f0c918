// Float64 references of the diagonal-Gaussian densities (src/engine/ops/gaussian.ts), straight from
// the formulas, element-wise with NumPy broadcasting. Sigmas are given as log sigma, as in the ops.
import { broadcastMap, type NDArray } from './ndarray';

/** KL(N(mq, e^{2 lq}) || N(mp, e^{2 lp})) for one element. */
export const klDiagScalar = (mq: number, lq: number, mp: number, lp: number): number =>
  lp - lq + (Math.exp(2 * lq) + (mq - mp) ** 2) / (2 * Math.exp(2 * lp)) - 0.5;
/** KL(N(m, e^{2 l}) || N(0, 1)) for one element. */
export const klStandardScalar = (m: number, l: number): number => -0.5 * (1 + 2 * l - m * m - Math.exp(2 * l));
/** log N(x; m, e^{2 l}) for one element. */
export const logDensityScalar = (x: number, m: number, l: number): number =>
  -0.5 * Math.log(2 * Math.PI) - l - (x - m) ** 2 / (2 * Math.exp(2 * l));

export const klDiagGaussians = (muQ: NDArray, logSigmaQ: NDArray, muP: NDArray, logSigmaP: NDArray): NDArray =>
  broadcastMap([muQ, logSigmaQ, muP, logSigmaP], klDiagScalar);
export const klStandardNormal = (mu: NDArray, logSigma: NDArray): NDArray => broadcastMap([mu, logSigma], klStandardScalar);
export const gaussianLogDensity = (x: NDArray, mu: NDArray, logSigma: NDArray): NDArray => broadcastMap([x, mu, logSigma], logDensityScalar);

/** z = mu + e exp(l) and KL(N(mu, e^{2l}) || N(0, 1)) from interleaved statistics [N, Z, 2] and noise [N, Z]. */
export function gaussianLatent(stats: NDArray, noise: NDArray): { z: NDArray; kl: NDArray } {
  const count = noise.data.length;
  const z = new Float64Array(count);
  const kl = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const m = stats.data[2 * i];
    const l = stats.data[2 * i + 1];
    z[i] = m + noise.data[i] * Math.exp(l);
    kl[i] = klStandardScalar(m, l);
  }
  return { z: { shape: [...noise.shape], data: z }, kl: { shape: [...noise.shape], data: kl } };
}

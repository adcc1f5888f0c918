// Float64 references of the evaluation estimators: the importance-sampled NLL (MnistModel.importanceNll)
// and the k-nearest-neighbour error on latent codes (src/models/latent.ts's knnError). Plain loops;
// nothing here is shared with the code they check.
import { nd, type NDArray } from './ndarray';

const LOG_2PI = Math.log(2 * Math.PI);

/** z = mu + exp(logSigma) eps: mu, logSigma [B, D], eps [k, B, D] -> [k, B, D]. */
export function posteriorSamples(mu: NDArray, logSigma: NDArray, eps: NDArray): NDArray {
  const [b, d] = mu.shape;
  const k = eps.shape[0];
  const z = nd([k, b, d]);
  for (let j = 0; j < k; j++) {
    for (let i = 0; i < b * d; i++) z.data[j * b * d + i] = mu.data[i] + Math.exp(logSigma.data[i]) * eps.data[j * b * d + i];
  }
  return z;
}

/**
 * For k samples z_j [k, B, D] from q(z|x) = N(mu, e^{2 logSigma}) [B, D], with log p(x | z_j) given as
 * logLikelihood [k, B], and the prior N(0, I):
 *   log w_j = log p(z_j) + log p(x | z_j) - log q(z_j | x)
 *   nll = -(log sum_j exp(log w_j) - log k)   (the importance-sampled estimate of -log p(x))
 *   negElboSameSamples = -(1/k) sum_j log w_j   (the Monte Carlo bound from the same samples; >= nll)
 * Both [B], in nats.
 */
export function importanceNll(z: NDArray, mu: NDArray, logSigma: NDArray, logLikelihood: NDArray): { nll: NDArray; negElboSameSamples: NDArray } {
  const [k, b, d] = z.shape;
  if (mu.data.length !== b * d || logSigma.data.length !== b * d || logLikelihood.data.length !== k * b) {
    throw new Error('importanceNll: z [k, B, D], mu and logSigma [B, D], logLikelihood [k, B]');
  }
  const nll = nd([b]);
  const bound = nd([b]);
  const logW = new Float64Array(k);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < k; j++) {
      let logPrior = 0;
      let logPosterior = 0;
      for (let c = 0; c < d; c++) {
        const v = z.data[(j * b + i) * d + c];
        const m = mu.data[i * d + c];
        const l = logSigma.data[i * d + c];
        logPrior += -0.5 * LOG_2PI - 0.5 * v * v;
        logPosterior += -0.5 * LOG_2PI - l - ((v - m) * (v - m)) / (2 * Math.exp(2 * l));
      }
      logW[j] = logPrior + logLikelihood.data[j * b + i] - logPosterior;
    }
    let m = -Infinity;
    for (const w of logW) m = Math.max(m, w);
    let s = 0;
    for (const w of logW) s += Math.exp(w - m);
    nll.data[i] = -(m + Math.log(s) - Math.log(k));
    bound.data[i] = -logW.reduce((a, w) => a + w, 0) / k;
  }
  return { nll, negElboSameSamples: bound };
}

/**
 * Test error of the k-NN classifier: for each test row of testX [M, D], the k training rows of
 * trainX [N, D] nearest in Euclidean distance (equal distances: the lower training index first) vote;
 * the most votes wins, a tie going to the label met first in that order (the nearer neighbour).
 */
export function knnError(trainX: NDArray, trainLabels: ArrayLike<number>, testX: NDArray, testLabels: ArrayLike<number>, k: number): number {
  const [n, d] = trainX.shape;
  const m = testX.shape[0];
  if (testX.shape[1] !== d || trainLabels.length !== n || testLabels.length !== m || k < 1 || k > n) throw new Error('knnError: bad shapes or k');
  let wrong = 0;
  for (let t = 0; t < m; t++) {
    const order = Array.from({ length: n }, (_, i) => {
      let dist = 0;
      for (let c = 0; c < d; c++) dist += (testX.data[t * d + c] - trainX.data[i * d + c]) ** 2;
      return { i, dist };
    });
    order.sort((a, b) => a.dist - b.dist || a.i - b.i);
    const nearest = order.slice(0, k).map((o) => trainLabels[o.i]);
    let best = nearest[0];
    let bestVotes = 0;
    for (const label of nearest) {
      const votes = nearest.filter((l) => l === label).length;
      if (votes > bestVotes) {
        best = label;
        bestVotes = votes;
      }
    }
    if (best !== testLabels[t]) wrong++;
  }
  return m === 0 ? 0 : wrong / m;
}

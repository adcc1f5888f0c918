// The importance-sampled NLL of an MNIST-family model by the float64 reference
// (src/engine/reference/estimators.ts): the networks run on the GPU (encoder means and log sigmas,
// decoder logits at the reference's z), every step of the estimator itself in float64.
import * as E from '../../src/engine';
import { nd } from '../../src/engine/reference/ndarray';
import { importanceNll, posteriorSamples } from '../../src/engine/reference/estimators';
import { klStandardNormal } from '../../src/engine/reference/gaussian';
import { bernoulliNll } from '../../src/engine/reference/loss';
import type { MnistModel } from '../../src/models/mnist-model';

export interface ReferenceNll {
  nll: Float64Array;
  negElbo: Float64Array;
  negElboSameSamples: Float64Array;
  kl: Float64Array;
}

/** x: binary images [B, 1, S, S]; eps: N(0, I) draws [k, B, Z] (ignored without a latent). */
export async function referenceNll(model: MnistModel, x: Float32Array, batch: number, k: number, eps: ArrayLike<number>): Promise<ReferenceNll> {
  const s = model.config.imageSize;
  const xs = nd([batch, 1, s, s], x);
  if (!model.hasLatent) {
    const logits = await E.tidyAsync(async () => E.noGrad(() => model.decode(E.fromArray(x, [batch, 1, s, s]), null)).data());
    const nll = bernoulliNll(nd([batch, 1, s, s], logits), xs).data;
    return { nll, negElbo: nll, negElboSameSamples: nll, kl: new Float64Array(batch) };
  }
  const d = model.config.latentDim;
  const [muData, logSigmaData] = await E.tidyAsync(async () => {
    const q = E.noGrad(() => model.encode(E.fromArray(x, [batch, 1, s, s])));
    return Promise.all([q.mu.data(), q.logSigma.data()]);
  });
  const mu = nd([batch, d], muData);
  const logSigma = nd([batch, d], logSigmaData);
  const z = posteriorSamples(mu, logSigma, nd([k, batch, d], eps));
  const tiled = new Float32Array(k * batch * s * s);
  for (let j = 0; j < k; j++) tiled.set(x, j * batch * s * s);
  const logits = await E.tidyAsync(async () =>
    E.noGrad(() => model.decode(E.fromArray(tiled, [k * batch, 1, s, s]), E.fromArray(Float32Array.from(z.data), [k * batch, d]))).data(),
  );
  const nllPerSample = bernoulliNll(nd([k * batch, 1, s, s], logits), nd([k * batch, 1, s, s], tiled));
  const logLikelihood = nd([k, batch], nllPerSample.data.map((v) => -v));
  const r = importanceNll(z, mu, logSigma, logLikelihood);
  const klElements = klStandardNormal(mu, logSigma);
  const kl = new Float64Array(batch);
  const negElbo = new Float64Array(batch);
  for (let i = 0; i < batch; i++) {
    for (let c = 0; c < d; c++) kl[i] += klElements.data[i * d + c];
    for (let j = 0; j < k; j++) negElbo[i] += nllPerSample.data[j * batch + i] / k;
    negElbo[i] += kl[i];
  }
  return { nll: r.nll.data, negElbo, negElboSameSamples: r.negElboSameSamples.data, kl };
}

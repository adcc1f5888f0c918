// The latent space: encoder means for a data set, and a k-nearest-neighbour classifier on them (the
// paper's measure of how much class information the latent code keeps: 7.2% error for a PixelVAE
// versus 22.9% for a VAE with 2-D latents).
import * as E from '../engine';
import { SequentialBatches, type GpuImageSet } from '../data/gpu-dataset';
import type { MnistModel } from './mnist-model';

export interface Embedding {
  count: number;
  dim: number;
  /** Encoder means, [count, dim] row-major. */
  means: Float32Array;
  labels: Uint32Array;
}

/** Encoder means of the first `limit` images of a set (one readback at the end). */
export async function embed(model: MnistModel, set: GpuImageSet, opts: { batchSize: number; limit?: number; seed?: number }): Promise<Embedding> {
  const count = Math.min(opts.limit ?? set.count, set.count);
  const dim = model.config.latentDim;
  const batches = new SequentialBatches(count, opts.batchSize);
  const parts: E.Tensor[] = [];
  try {
    for (let b = 0; b < batches.batches; b++) {
      parts.push(E.keep(E.noGrad(() => E.tidy(() => model.encode(set.binarizedBatch(batches.at(b), opts.seed ?? 1, [b, 9])).mu))));
    }
    const all = E.tidy(() => (parts.length === 1 ? E.affine(parts[0], 1, 0) : E.concat(parts, 0)));
    const means = (await all.data()) as Float32Array;
    all.dispose();
    const labels = ((await set.labels.data()) as Uint32Array).slice(0, count);
    return { count, dim, means, labels };
  } finally {
    for (const p of parts) p.dispose();
    batches.dispose();
  }
}

/** Test error of a k-NN classifier (Euclidean, majority vote, ties to the nearest) trained on `train`. */
export function knnError(train: Embedding, test: Embedding, k: number): number {
  if (train.dim !== test.dim) throw new Error(`knn: train dim ${train.dim} vs test dim ${test.dim}`);
  if (k < 1 || k > train.count) throw new Error(`knn: k = ${k} must be in 1..${train.count}`);
  const d = train.dim;
  let wrong = 0;
  const bestDist = new Float64Array(k);
  const bestLabel = new Int32Array(k);
  for (let t = 0; t < test.count; t++) {
    bestDist.fill(Infinity);
    bestLabel.fill(-1);
    for (let i = 0; i < train.count; i++) {
      let dist = 0;
      for (let j = 0; j < d; j++) {
        const diff = test.means[t * d + j] - train.means[i * d + j];
        dist += diff * diff;
      }
      if (dist >= bestDist[k - 1]) continue;
      let pos = k - 1;
      while (pos > 0 && bestDist[pos - 1] > dist) {
        bestDist[pos] = bestDist[pos - 1];
        bestLabel[pos] = bestLabel[pos - 1];
        pos--;
      }
      bestDist[pos] = dist;
      bestLabel[pos] = train.labels[i];
    }
    const votes = new Map<number, number>();
    for (const label of bestLabel) votes.set(label, (votes.get(label) ?? 0) + 1);
    let predicted = bestLabel[0];
    let most = 0;
    // Iterate in distance order so a tie goes to the label of the nearer neighbour.
    for (const label of bestLabel) {
      const v = votes.get(label)!;
      if (v > most) {
        most = v;
        predicted = label;
      }
    }
    if (predicted !== test.labels[t]) wrong++;
  }
  return wrong / Math.max(test.count, 1);
}

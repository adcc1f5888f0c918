// Training, batch-norm re-estimation and evaluation for the hierarchical PixelVAE. A step records its
// GPU work and returns (gather, noise, loss, backward, Adam with global-norm clipping at 5); the loss
// terms are summed into a GPU accumulator read back only when asked.
import * as E from '../../engine';
import { EpochSampler, SequentialBatches } from '../../data/gpu-dataset';
import type { GpuColourSet } from '../../data/colour-gpu';
import { EVAL_SCHEDULE, schedule } from './config';
import { bitsPerDim, type HierarchicalPixelVae } from './model';
import { StepTrainer } from '../step-trainer';

export interface HierTrainerOptions {
  batchSize: number;
  /** Adam learning rate (1e-3 in the reference). */
  lr?: number;
  /** Global-norm gradient clipping (5 in the reference); 0 disables it. */
  clipGlobalNorm?: number;
  /** Seeds batch order and the posterior noise. */
  seed: number;
}

/** Averages over the steps since the last read; everything in nats per dimension except bitsPerDim. */
export interface HierTrainMetrics {
  steps: number;
  /** What was minimised (with the warm-up weights). */
  loss: number;
  reconstruction: number;
  kl1: number;
  kl2: number;
  /** (reconstruction + kl1 + kl2) / ln 2 on the training batches (with that step's prior sigma floor). */
  bitsPerDim: number;
}

const NOISE_STREAM = 3;
const BN_STREAM = 5;

export class HierTrainer extends StepTrainer {
  constructor(
    readonly model: HierarchicalPixelVae,
    readonly data: GpuColourSet,
    readonly options: HierTrainerOptions,
  ) {
    if (data.size !== model.config.imageSize) throw new Error(`training images are ${data.size}x${data.size} but the model expects ${model.config.imageSize}x${model.config.imageSize}`);
    if (data.count < options.batchSize) throw new Error(`${data.count} training images are fewer than one batch of ${options.batchSize}`);
    // The metric sums are [loss, reconstruction, kl1, kl2]. A constant learning rate: the reference's
    // 32px/64px settings multiply it by 0.1 at step 180k (docs/departures.md).
    super(4, { lr: options.lr ?? 1e-3, clipGlobalNorm: options.clipGlobalNorm ?? 5 }, data.count, options);
    model.params.pack();
  }

  protected override replayPhase(step: number): string {
    return `${super.replayPhase(step)} sigma floor ${schedule(this.model.config, step).sigmaFloor > 0}`;
  }

  protected override stepValues(step: number): Map<string, number> {
    const s = schedule(this.model.config, step);
    return super.stepValues(step).set('alpha1', E.f32Word(s.alpha1)).set('alpha2', E.f32Word(s.alpha2)).set('sigma floor', E.f32Word(s.sigmaFloor));
  }

  protected recordStep(optimizer: E.Adam, accumulate: boolean): void {
    const params = this.model.params.tensors();
    const { batchSize, seed } = this.options;
    const step = this.step;
    const bn = this.model.bn;
    bn.training = true;
    bn.momentum = 1; // the reference's ordinary steps overwrite the running statistics
    E.tidy(() => {
      const x = this.data.batch(this.sampler.next());
      const noise = this.model.posteriorNoise(batchSize, seed, [step, NOISE_STREAM]);
      const { terms, grads } = this.withWeights(this.model.params, () => {
        const terms = this.model.terms(x, noise, schedule(this.model.config, step));
        return { terms, grads: this.gradients(this.model.params, terms.loss) };
      });
      // A parameter the loss does not reach takes a zero gradient: its moments decay and it still moves.
      optimizer.step(params, grads, 'zero');
      if (!accumulate) return;
      this.metrics.add(E.concat([terms.loss.view([1]), terms.reconstruction, terms.kl1, terms.kl2], 0));
    });
  }

  /** Reads and resets the accumulated training metrics (the only readback of the loop). */
  async readMetrics(): Promise<HierTrainMetrics> {
    const { steps, means } = await this.metrics.readMeans();
    const [loss, reconstruction, kl1, kl2] = means;
    return { steps, loss, reconstruction, kl1, kl2, bitsPerDim: bitsPerDim(reconstruction + kl1 + kl2) };
  }

  /**
   * Rebuilds the batch-norm running statistics as the exact average over `batches` training batches
   * (forward passes in training mode with momentum 1/(s+1), no parameter update), as the reference
   * does before every evaluation and sampling. The batches come from their own seeded stream, so
   * training's batch order is untouched.
   */
  async reestimateBatchNorm(batches: number, onProgress?: (done: number, total: number) => void): Promise<void> {
    await reestimateBatchNorm(this.model, this.data, { batches, batchSize: this.options.batchSize, seed: this.options.seed + BN_STREAM * 7919 + this.step, onProgress });
  }
}

/** Batch-norm statistics re-estimation (see HierTrainer.reestimateBatchNorm), usable without a trainer. */
export async function reestimateBatchNorm(
  model: HierarchicalPixelVae,
  data: GpuColourSet,
  opts: { batches: number; batchSize: number; seed: number; onProgress?: (done: number, total: number) => void },
): Promise<void> {
  const batchSize = Math.min(opts.batchSize, data.count);
  const sampler = new EpochSampler(data.count, batchSize, opts.seed);
  const gpu = E.engine().gpu;
  const bn = model.bn;
  try {
    for (let s = 0; s < opts.batches; s++) {
      bn.training = true;
      bn.momentum = 1 / (s + 1);
      E.noGrad(() =>
        E.tidy(() => {
          const x = data.batch(sampler.next());
          model.terms(x, model.posteriorNoise(batchSize, opts.seed, [s, BN_STREAM]), EVAL_SCHEDULE);
        }),
      );
      await gpu.throttle();
      opts.onProgress?.(s + 1, opts.batches);
    }
  } finally {
    bn.momentum = 1;
    bn.training = false;
    sampler.dispose();
  }
}

export interface HierEvalResult {
  images: number;
  /** The negative ELBO in bits per dimension (an upper bound on the NLL; no importance sampling). */
  bitsPerDim: number;
  /** The same in nats per dimension, and its split: reconstruction + kl1 + kl2. */
  natsPerDim: number;
  reconstruction: number;
  kl1: number;
  kl2: number;
}

/**
 * The ELBO bound on held-out images in nats and bits per dimension, with the per-level KL split,
 * using the running batch-norm statistics (run reestimateBatchNorm first), KL weights 1 and no prior
 * sigma floor. One sample of z per image.
 */
export async function evaluateHier(
  model: HierarchicalPixelVae,
  data: GpuColourSet,
  opts: { batchSize: number; seed: number; limit?: number; onProgress?: (done: number, total: number) => void },
): Promise<HierEvalResult> {
  const count = Math.min(opts.limit ?? data.count, data.count);
  if (count < 1) throw new Error(`${data.name}: no images to evaluate`);
  const batches = new SequentialBatches(count, opts.batchSize);
  const wasTraining = model.bn.training;
  model.bn.training = false;
  let acc = E.keep(E.zeros([3]));
  try {
    for (let b = 0; b < batches.batches; b++) {
      const next = E.noGrad(() =>
        E.tidy(() => {
          const indices = batches.at(b);
          const x = data.batch(indices);
          const n = x.shape[0];
          const t = model.terms(x, model.posteriorNoise(n, opts.seed, [b, 9]), EVAL_SCHEDULE);
          // Batch means weighted by the batch's size, so a short last batch counts right.
          return E.keep(E.add(acc, E.scale(E.concat([t.reconstruction, t.kl1, t.kl2], 0), n)));
        }),
      );
      acc.dispose();
      acc = next;
      await E.engine().gpu.throttle();
      opts.onProgress?.(Math.min((b + 1) * opts.batchSize, count), count);
    }
    const [rec, kl1, kl2] = await acc.data();
    const natsPerDim = (rec + kl1 + kl2) / count;
    return { images: count, bitsPerDim: bitsPerDim(natsPerDim), natsPerDim, reconstruction: rec / count, kl1: kl1 / count, kl2: kl2 / count };
  } finally {
    model.bn.training = wasTraining;
    acc.dispose();
    batches.dispose();
  }
}

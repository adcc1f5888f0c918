// Training and evaluation loops for the MNIST family. A step records its GPU work and returns:
// batch gather and binarization, noise, loss, backward and the Adam update all run on the GPU, and
// the loss terms are summed into a GPU accumulator that is read back only when asked.
import * as E from '../engine';
import { SequentialBatches, type GpuImageSet } from '../data/gpu-dataset';
import type { MnistModel } from './mnist-model';
import { StepTrainer } from './step-trainer';

export interface TrainerOptions {
  batchSize: number;
  /** Adam learning rate (1e-3 in the paper). */
  lr?: number;
  /** Element-wise gradient clipping bound (1 in the reference); 0 disables it. */
  clipValue?: number;
  /** Seeds batch order, dynamic binarization and the reparameterisation noise. */
  seed: number;
}

export interface TrainMetrics {
  /** Steps averaged over. */
  steps: number;
  /** Mean minimised loss (reconstruction + alpha * KL), nats per image. */
  loss: number;
  reconstruction: number;
  kl: number;
  /** Mean negative ELBO (alpha = 1), nats per image. */
  negElbo: number;
}

/** Offsets that keep the generator streams of one step apart (Philox counters never collide). */
const STREAM = { binarize: 1, noise: 2 } as const;

export class MnistTrainer extends StepTrainer {
  constructor(
    readonly model: MnistModel,
    readonly data: GpuImageSet,
    readonly options: TrainerOptions,
  ) {
    if (data.height !== model.config.imageSize || data.width !== model.config.imageSize) {
      throw new Error(`training data is ${data.height}x${data.width} but the model expects ${model.config.imageSize}x${model.config.imageSize}`);
    }
    // The metric sums are [loss, reconstruction, kl].
    super(3, { lr: options.lr ?? 1e-3, clipValue: options.clipValue ?? 1 }, data.count, options);
    model.params.pack();
  }

  protected override replayPhase(step: number): string {
    return `${super.replayPhase(step)} kl ${this.model.hasLatent && this.model.klWeight(step) !== 0}`;
  }

  protected override stepValues(step: number): Map<string, number> {
    return super.stepValues(step).set('kl weight', E.f32Word(this.model.klWeight(step)));
  }

  protected recordStep(optimizer: E.Adam, accumulate: boolean): void {
    const params = this.model.params.tensors();
    const { batchSize, seed } = this.options;
    const step = this.step;
    E.tidy(() => {
      const indices = this.sampler.next();
      const x = this.data.binarizedBatch(indices, seed, [step, STREAM.binarize]);
      const noise = this.model.hasLatent ? E.randomNormal([batchSize, this.model.config.latentDim], seed, [step, STREAM.noise]) : null;
      const { terms, grads } = this.withWeights(this.model.params, () => {
        const terms = this.model.loss(x, noise, this.model.klWeight(step));
        return { terms, grads: this.gradients(this.model.params, terms.loss) };
      });
      // A parameter the loss does not reach takes a zero gradient: its moments decay and it still moves.
      optimizer.step(params, grads, 'zero');
      if (!accumulate) return;
      this.metrics.add(E.concat([terms.loss.view([1]), E.mean(terms.reconstruction).view([1]), E.mean(terms.kl).view([1])], 0));
    });
  }

  /** Reads and resets the accumulated training metrics (the only readback of the loop). */
  async readMetrics(): Promise<TrainMetrics> {
    const { steps, means } = await this.metrics.readMeans();
    const [loss, reconstruction, kl] = means;
    return { steps, loss, reconstruction, kl, negElbo: reconstruction + kl };
  }
}

export interface EvalResult {
  images: number;
  /** Mean negative ELBO, nats per image (an upper bound on the NLL). */
  negElbo: number;
  /** Mean importance-sampled NLL estimate with k samples (equal to negElbo without a latent). */
  nll: number;
  k: number;
  reconstruction: number;
  kl: number;
}

/**
 * Evaluates on a binarized set: the negative ELBO (reconstruction + KL, alpha = 1) and the
 * importance-sampled NLL with k samples per image, both in nats per image.
 */
export async function evaluate(
  model: MnistModel,
  data: GpuImageSet,
  opts: { k: number; batchSize: number; seed: number; limit?: number; onProgress?: (done: number, total: number) => void },
): Promise<EvalResult> {
  const count = Math.min(opts.limit ?? data.count, data.count);
  const batches = new SequentialBatches(count, opts.batchSize);
  const sums = E.keep(E.zeros([4]));
  let acc = sums;
  try {
    for (let b = 0; b < batches.batches; b++) {
      const next = E.noGrad(() =>
        E.tidy(() => {
          const indices = batches.at(b);
          const x = data.binarizedBatch(indices, opts.seed, 0);
          const batch = x.shape[0];
          const zd = model.config.latentDim;
          const noise = E.randomNormal([opts.k * batch, zd], opts.seed, [b, 7]);
          const { nll, negElbo, kl } = model.importanceNll(x, opts.k, noise);
          const row = E.concat([E.sum(negElbo).view([1]), E.sum(nll).view([1]), E.sum(E.sub(negElbo, kl)).view([1]), E.sum(kl).view([1])], 0);
          return E.keep(E.add(acc, row));
        }),
      );
      acc.dispose();
      acc = next;
      if (opts.onProgress) {
        await E.engine().gpu.sync();
        opts.onProgress(Math.min((b + 1) * opts.batchSize, count), count);
      }
    }
    const [negElbo, nll, reconstruction, kl] = await acc.data();
    return { images: count, negElbo: negElbo / count, nll: nll / count, k: opts.k, reconstruction: reconstruction / count, kl: kl / count };
  } finally {
    acc.dispose();
    batches.dispose();
  }
}

// The step loop both trainers (trainer.ts, hierarchical/trainer.ts) share: an Adam optimizer, the
// epoch-shuffled batch order, the step count, the GPU sums of each step's loss terms, resuming and
// prewarming. A family records its own step (batch, noise, loss, backward, update) in recordStep.
import * as E from '../engine';
import { EpochSampler } from '../data/gpu-dataset';
import type { ParamSet } from '../nn/params';
import { GpuMetricSums, prewarmStep } from './step-metrics';

export abstract class StepTrainer {
  /** Sums of the loss terms each step adds, since the last read, on the GPU. */
  protected readonly metrics: GpuMetricSums;
  readonly optimizer: E.Adam;
  readonly sampler: EpochSampler;
  step = 0;
  /**
   * Every weight-normed layer's W computed together at the start of a step (ParamSet.weightNorm: a
   * few dispatches each way instead of one per layer). False: each layer's alone, as evaluation does
   * (tests compare the two).
   */
  groupWeightNorm = true;

  constructor(metricWidth: number, adam: E.AdamOptions, images: number, batch: { batchSize: number; seed: number }) {
    this.metrics = new GpuMetricSums(metricWidth);
    this.optimizer = new E.Adam(adam);
    this.sampler = new EpochSampler(images, batch.batchSize, batch.seed);
  }

  /** Records one step against `optimizer`; adds its loss terms to `metrics` when `accumulate`. */
  protected abstract recordStep(optimizer: E.Adam, accumulate: boolean): void;

  /**
   * A step's forward and backward (`fn`, inside the step's tidy) with the model's weight-normed
   * weights computed together; call the optimizer after it returns, when those weights are dropped.
   */
  protected withWeights<T>(params: ParamSet, fn: () => T): T {
    return this.groupWeightNorm ? params.weightNorm.withWeights(fn) : fn();
  }

  /**
   * The loss's gradient for every parameter, gathered in the parameter arena's twin (ParamSet.pack,
   * done by the trainers when they are built), where Adam updates all of them in one dispatch; each
   * in its own tensor when the model was too large to pack.
   */
  protected gradients(params: ParamSet, loss: E.Tensor): (E.Tensor | null)[] {
    const arenas = params.pack();
    return E.grad(loss, params.tensors(), undefined, arenas ? { into: arenas.grads.slots } : {});
  }

  /** Continues a run from `step`: the step count and the batch order as if it had never stopped. */
  resumeAt(step: number): void {
    this.step = step;
    this.sampler.seek(step);
  }

  /** Records one training step on the GPU (no readback). */
  trainStep(): void {
    this.recordStep(this.optimizer, true);
    this.step += 1;
  }

  /**
   * Compiles every kernel a step uses, asynchronously, before the first step. It captures this step
   * and the next: a later step can take branches the first does not (the MNIST loss skips the KL
   * term while its warm-up weight is 0, at step 0).
   */
  prewarm(onProgress?: (done: number, total: number) => void): Promise<number> {
    const step = this.step;
    return prewarmStep(
      this.optimizer,
      this.sampler,
      (scratch) => {
        try {
          this.recordStep(scratch, false);
          this.step = step + 1;
          this.recordStep(scratch, false);
        } finally {
          this.step = step;
        }
      },
      onProgress,
    );
  }

  dispose(): void {
    this.metrics.dispose();
    this.sampler.dispose();
  }
}

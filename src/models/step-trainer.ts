// The step loop both trainers (trainer.ts, hierarchical/trainer.ts) share: an Adam optimizer, the
// epoch-shuffled batch order, the step count, the GPU sums of each step's loss terms, resuming and
// prewarming. A family records its own step (batch, noise, loss, backward, update) in recordStep.
import * as E from '../engine';
import { EpochSampler } from '../data/gpu-dataset';
import { GpuMetricSums, prewarmStep } from './step-metrics';

export abstract class StepTrainer {
  /** Sums of the loss terms each step adds, since the last read, on the GPU. */
  protected readonly metrics: GpuMetricSums;
  readonly optimizer: E.Adam;
  readonly sampler: EpochSampler;
  step = 0;

  constructor(metricWidth: number, adam: E.AdamOptions, images: number, batch: { batchSize: number; seed: number }) {
    this.metrics = new GpuMetricSums(metricWidth);
    this.optimizer = new E.Adam(adam);
    this.sampler = new EpochSampler(images, batch.batchSize, batch.seed);
  }

  /** Records one step against `optimizer`; adds its loss terms to `metrics` when `accumulate`. */
  protected abstract recordStep(optimizer: E.Adam, accumulate: boolean): void;

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

  /** Compiles every kernel a step uses, asynchronously, before the first step. */
  prewarm(onProgress?: (done: number, total: number) => void): Promise<number> {
    return prewarmStep(this.optimizer, this.sampler, (scratch) => this.recordStep(scratch, false), onProgress);
  }

  dispose(): void {
    this.metrics.dispose();
    this.sampler.dispose();
  }
}

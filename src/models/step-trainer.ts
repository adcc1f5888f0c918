// The step loop both trainers (trainer.ts, hierarchical/trainer.ts) share: an Adam optimizer, the
// epoch-shuffled batch order, the step count, the GPU sums of each step's loss terms, resuming and
// prewarming. A family records its own step (batch, noise, loss, backward, update) in recordStep.
import * as E from '../engine';
import { EpochSampler } from '../data/gpu-dataset';
import type { ParamSet } from '../nn/params';
import { GpuMetricSums, prewarmStep } from './step-metrics';
import { StepReplay, type StepState } from './step-replay';

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
  /**
   * Steps issued from a recording of earlier ones when they agree (step-replay.ts): the same
   * computation for a fraction of the host time. False: every step is recorded through the engine.
   */
  replaySteps = true;
  /** Steps replayed between two recorded checks of the plan. */
  replayCheckEvery = 50;
  private replayer: StepReplay | null = null;

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
    this.replayer?.invalidate();
  }

  /**
   * What decides which commands a step records, besides its per-step values: a family adds the
   * branches its step takes (e.g. whether the KL term is recorded at all).
   */
  protected replayPhase(_step: number): string {
    return `wn ${this.groupWeightNorm}`;
  }

  /** The values a step's kernels receive that change from step to step, as params words (E.f32Word for floats). */
  protected stepValues(step: number): Map<string, number> {
    return new Map([
      ['step', step >>> 0],
      ['adam step size', E.f32Word(this.optimizer.stepSize(this.optimizer.t + 1))],
    ]);
  }

  /** Replay's counts (steps replayed and recorded, plans made, failed checks), or null before any step. */
  get replayStats(): StepReplay['stats'] | null {
    return this.replayer?.stats ?? null;
  }

  /** Records one training step on the GPU (no readback), or replays it from earlier ones (replaySteps). */
  trainStep(): void {
    const gpu = E.engine().gpu;
    // A step's buffer requests count from its start (so work between steps, a metrics read say, does
    // not shift which buffers it is handed; a recording is replayable only if that repeats).
    gpu.pool.mark();
    if (!this.replaySteps || gpu.capturing || !this.optimizer.repeatsLastStep) {
      // The first step builds the optimizer's state; a checkpoint's moments must be read back.
      this.replayer?.invalidate();
      this.recordStep(this.optimizer, true);
    } else {
      this.replayer ??= new StepReplay(gpu, this.replayCheckEvery);
      const state: StepState = { step: this.step, t: this.optimizer.t, phase: this.replayPhase(this.step), values: this.stepValues(this.step), fed: this.sampler.indices.buffer };
      if (this.replayer.canReplay(state)) {
        this.replayer.replay(state, () => this.sampler.next());
        this.optimizer.countReplayedStep();
        this.metrics.countStep();
      } else this.replayer.record(state, () => this.recordStep(this.optimizer, true));
    }
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
    this.replayer?.invalidate();
    this.metrics.dispose();
    this.sampler.dispose();
  }
}

// What both trainers (MNIST and hierarchical) share: per-step loss terms summed on the GPU and read
// back only when asked, and compiling a step's kernels before the first step runs.
import * as E from '../engine';
import type { EpochSampler } from '../data/gpu-dataset';

/**
 * Rows of per-step metrics summed on the GPU; reading them (and resetting) is the loop's one readback.
 * The sums stay in one buffer, added to in place, so every step records the same commands (a step
 * replayed from its recording, models/step-replay.ts, adds to the same sums).
 */
export class GpuMetricSums {
  private readonly sums: E.Tensor;
  private steps = 0;

  constructor(private readonly width: number) {
    this.sums = E.keep(E.zeros([width]));
  }

  /** Adds one step's row of `width` values (call inside the step's tidy). */
  add(row: E.Tensor): void {
    E.addInPlace(this.sums, row);
    this.countStep();
  }

  /** Counts a step whose add was replayed, not recorded by add(). */
  countStep(): void {
    this.steps += 1;
  }

  /** The means over the steps since the last read (0 steps: zeros), and that count; then resets. */
  async readMeans(): Promise<{ steps: number; means: number[] }> {
    const steps = this.steps;
    this.steps = 0;
    // The copy to the host is recorded when data() is called, so the clear after it (and any step
    // recorded while this waits) cannot change what is read.
    const pending = this.sums.data();
    E.engine().gpu.clear(this.sums.gpuBuffer, this.sums.byteOffset, this.width * 4);
    const values = await pending;
    return { steps, means: Array.from(values, (v) => v / Math.max(steps, 1)) };
  }

  dispose(): void {
    this.sums.dispose();
  }
}

/**
 * Compiles, asynchronously, every kernel a training step uses. The GPU context's capture mode only
 * collects dispatches, so the step records against a throwaway optimizer with the same settings
 * (real moments would be left garbage) and the sampler is rewound afterwards.
 */
export async function prewarmStep(
  optimizer: E.Adam,
  sampler: EpochSampler,
  record: (scratch: E.Adam) => void,
  onProgress?: (done: number, total: number) => void,
): Promise<number> {
  const scratch = optimizer.withSameSettings();
  const samplerStep = sampler.step;
  try {
    return await E.engine().gpu.prewarm(() => record(scratch), onProgress);
  } finally {
    sampler.seek(samplerStep);
    scratch.dispose();
  }
}

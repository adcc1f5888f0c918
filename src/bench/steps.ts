// Training-step overhead of the app's setups (`npm run bench -- --steps tiny,small,table1,hier-small`): steps/s,
// and per step the host time (JavaScript recording and submitting the step, the trainStep() call
// itself) apart from the time spent waiting for the GPU, with the dispatches and buffer copies a step
// records and the bind groups it creates (a reused one costs the host almost nothing). Small models
// are bound by this per-dispatch and per-step overhead, not by arithmetic.
import type { GpuContext } from '../gpu/context';
import * as E from '../engine';
import { GpuImageSet, SequentialBatches } from '../data/gpu-dataset';
import { mnistConfig, type MnistModelConfig } from '../models/config';
import { MnistModel } from '../models/mnist-model';
import { MnistTrainer } from '../models/trainer';
import type { StepTrainer } from '../models/step-trainer';
import { GpuColourSet } from '../data/colour-gpu';
import { hierConfig } from '../models/hierarchical/config';
import { HierarchicalPixelVae } from '../models/hierarchical/model';
import { HierTrainer } from '../models/hierarchical/trainer';
import { FAMILIES } from '../worker/families';
import { syntheticDigits } from './synthetic';

/** MNIST setups of the app (gated-pixelvae-cond), and the hierarchical model's tiny and small presets. */
export const STEP_SETUPS = ['tiny', 'cpu', 'small', 'table1', 'hier-tiny', 'hier-small'] as const;
export type StepSetup = (typeof STEP_SETUPS)[number];
type MnistStepSetup = Exclude<StepSetup, 'hier-tiny' | 'hier-small'>;

/** The app's MNIST setup of that name (its default preset, gated-pixelvae-cond, with the quick sizes); table1: paper sizes. */
export function stepSetupConfig(setup: MnistStepSetup): MnistModelConfig {
  if (setup === 'table1') return mnistConfig('gated-pixelvae-cond');
  const family = FAMILIES.find((f) => f.id === 'mnist');
  const sizes = family?.quickSizes?.find((q) => q.id === setup)?.sizes;
  if (!sizes) throw new Error(`bench: the app has no MNIST quick size "${setup}"`);
  const w = sizes.encoderWidth;
  return mnistConfig('gated-pixelvae-cond', {
    imageSize: sizes.imageSize,
    latentDim: sizes.latentDim,
    pixelLayers: sizes.pixelLayers,
    pixelWidth: sizes.pixelWidth,
    filterSize: sizes.filterSize,
    inputFilterSize: sizes.inputFilterSize,
    outputWidth: sizes.outputWidth,
    encoderDims: [w, w, 2 * w, 2 * w],
    decoderDims: [2 * w, 2 * w, w],
    klWarmupSteps: sizes.klWarmupSteps,
  });
}

export interface StepBenchOptions {
  setups: StepSetup[];
  batch: number;
  /** Timed steps per setup (0: chosen from the first step, at least 8, about 10 s). */
  steps: number;
  /** Replay steps from a recording once three agree (StepTrainer.replaySteps; default true). */
  replay?: boolean;
}

/**
 * For each setup: a warm-up step, then `steps` steps each recorded and then waited for (a full sync per
 * step, so host and GPU time of one step are apart: host = the trainStep() call and the submit of
 * what it recorded, until queue.submit returns; wait = the rest until the GPU is done).
 */
/** A setup ready to time: its trainer, what the record names, its forward timings, and cleanup. */
interface BenchSetup {
  trainer: StepTrainer;
  preset: string;
  imageSize: number;
  params: number;
  paramTensors: number;
  /** The forward pass as training and evaluation run it (MNIST setups; none for the hierarchical). */
  forwards: () => Promise<Record<string, number>>;
  dispose: () => void;
}

function buildSetup(gpu: GpuContext, setup: StepSetup, batch: number): BenchSetup {
  if (setup === 'hier-tiny' || setup === 'hier-small') {
    const config = hierConfig(setup === 'hier-tiny' ? 'tiny' : 'small');
    const size = config.imageSize;
    const count = Math.max(64, batch);
    const digits = syntheticDigits(count * 3, size, 54321);
    const data = GpuColourSet.upload({ name: 'synthetic', count, size, images: digits.images, labels: new Uint8Array(count) });
    const model = new HierarchicalPixelVae(config);
    const trainer = new HierTrainer(model, data, { batchSize: batch, seed: 1 });
    return {
      trainer, preset: `hier-${config.preset}`, imageSize: size, params: model.params.count(), paramTensors: model.params.names().length,
      forwards: async () => ({}),
      dispose: () => {
        trainer.dispose();
        trainer.optimizer.dispose();
        data.dispose();
        model.dispose();
      },
    };
  }
  const config = stepSetupConfig(setup);
  const model = new MnistModel(config);
  const data = GpuImageSet.upload(syntheticDigits(256, config.imageSize, 54321), 'intensity');
  const trainer = new MnistTrainer(model, data, { batchSize: batch, seed: 1 });
  return {
    trainer, preset: config.preset, imageSize: config.imageSize, params: model.params.count(), paramTensors: model.params.names().length,
    forwards: () => timeForwards(gpu, model, data, batch),
    dispose: () => {
      trainer.dispose();
      trainer.optimizer.dispose();
      data.dispose();
      model.dispose();
    },
  };
}

export async function runStepBench(gpu: GpuContext, opts: StepBenchOptions, emit: (record: Record<string, unknown>) => void, driver = 'system'): Promise<void> {
  const adapter = `${gpu.adapter.vendor || '?'} ${gpu.adapter.architecture || gpu.adapter.description || '?'}${gpu.adapter.isFallbackAdapter ? ' (fallback)' : ''}`;
  for (const setup of opts.setups) {
    const built = buildSetup(gpu, setup, opts.batch);
    const trainer = built.trainer;
    const replay = opts.replay ?? true;
    trainer.replaySteps = replay;
    try {
      await trainer.prewarm();
      const s0 = gpu.stats();
      let t = performance.now();
      trainer.trainStep();
      gpu.flush();
      const firstHost = performance.now() - t;
      await gpu.sync();
      const first = performance.now() - t;
      const s1 = gpu.stats();
      // At least 8: the first three of them are recorded through the engine before steps are replayed.
      const steps = opts.steps > 0 ? opts.steps : Math.max(8, Math.min(200, Math.floor(10000 / Math.max(first, 1))));
      const host: number[] = [];
      const total: number[] = [];
      const hostReplayed: number[] = [];
      const hostRecorded: number[] = [];
      const c0 = gpu.stats();
      for (let i = 0; i < steps; i++) {
        const replayedBefore = trainer.replayStats?.replayed ?? 0;
        t = performance.now();
        trainer.trainStep();
        gpu.flush();
        const h = performance.now() - t;
        await gpu.sync();
        host.push(h);
        ((trainer.replayStats?.replayed ?? 0) > replayedBefore ? hostReplayed : hostRecorded).push(h);
        total.push(performance.now() - t);
      }
      const c1 = gpu.stats();
      const replayStats = trainer.replayStats;
      // One more step, counted by kernel: where the dispatches come from.
      const byKernel = new Map<string, number>();
      gpu.onDispatch = (spec) => {
        const key = `${spec.name}:${spec.entry}`;
        byKernel.set(key, (byKernel.get(key) ?? 0) + 1);
      };
      // Recorded through the engine: a replayed step does not pass through dispatch().
      trainer.replaySteps = false;
      try {
        trainer.trainStep();
      } finally {
        gpu.onDispatch = null;
        trainer.replaySteps = replay;
      }
      await gpu.sync();
      const dispatchesByKernel = Object.fromEntries([...byKernel].sort((a, b) => b[1] - a[1]));
      // Pipelined, as the app trains: keep one step queued while the next is recorded.
      const pipelined = Math.max(3, Math.min(steps, 50));
      t = performance.now();
      for (let i = 0; i < pipelined; i++) {
        trainer.trainStep();
        await gpu.throttle();
      }
      await gpu.sync();
      const pipelinedMs = (performance.now() - t) / pipelined;
      // The buffer pool's bytes (held and idle) after the steps: what training keeps on the GPU.
      const poolAfter = gpu.stats();
      const fwd = await built.forwards();
      const floor = await hostFloor(gpu, trainer, Math.min(steps, 20));
      const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
      emit({
        adapter, driver, case: `train step ${setup} b${opts.batch}`, replay, preset: built.preset, image_size: built.imageSize, params: built.params,
        param_tensors: built.paramTensors,
        dispatches_per_step: (c1.dispatches - c0.dispatches) / steps, copies_per_step: (c1.copies - c0.copies) / steps,
        submits_per_step: +((c1.submits - c0.submits) / steps).toFixed(2),
        bind_groups_created_per_step: +((c1.bindGroupsCreated - c0.bindGroupsCreated) / steps).toFixed(2),
        first_step_bind_groups_created: s1.bindGroupsCreated - s0.bindGroupsCreated,
        first_step_dispatches: s1.dispatches - s0.dispatches, first_step_host_ms: +firstHost.toFixed(2),
        steps, host_ms_per_step: +mean(host).toFixed(3), host_ms_median: +median(host).toFixed(3),
        host_ms_median_replayed: hostReplayed.length ? +median(hostReplayed).toFixed(3) : null,
        host_ms_median_recorded: hostRecorded.length ? +median(hostRecorded).toFixed(3) : null,
        steps_replayed: hostReplayed.length, steps_recorded: hostRecorded.length, replay_refusal: replayStats?.lastRefusal ?? null,
        gpu_wait_ms_per_step: +(mean(total) - mean(host)).toFixed(3), ms_per_step_synced: +mean(total).toFixed(3),
        ms_per_step_pipelined: +pipelinedMs.toFixed(3), steps_per_s: +(1000 / pipelinedMs).toFixed(2),
        host_floor_ms_median: +floor.toFixed(3),
        gpu_memory_mb: +((poolAfter.liveBytes + poolAfter.pooledBytes) / 2 ** 20).toFixed(1),
        conv_kernels: E.convVariantReport().choice,
        dispatches_by_kernel: dispatchesByKernel,
        ...fwd,
      });
    } finally {
      built.dispose();
    }
  }
}

/**
 * The host floor of a step: its dispatches captured once, then re-recorded and submitted with
 * pipelines and bind groups already resolved (GpuContext.replayDispatches), median ms of `reps`.
 * What is left is WebGPU's own cost (Dawn's encoding, validation and submit); the gap to the step's
 * host time is the engine's JavaScript. The replays rerun the step's kernels on its buffers (its
 * Adam update among them): the setup is not used for anything after this.
 */
async function hostFloor(gpu: GpuContext, trainer: StepTrainer, reps: number): Promise<number> {
  const list = gpu.captureDispatches(() => trainer.trainStep());
  await gpu.sync();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    gpu.replayDispatches(list);
    gpu.flush();
    times.push(performance.now() - t);
    await gpu.sync();
  }
  return [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

/** Median of `reps` synced runs of `work` inside tidy (after one untimed run that compiles). */
async function medianMs(gpu: GpuContext, work: () => void, reps: number): Promise<number> {
  E.tidy(work);
  await gpu.sync();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    E.tidy(work);
    await gpu.sync();
    times.push(performance.now() - t);
  }
  return [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

/**
 * The forward pass as training runs it (tape recorded, the gate pre-activations kept for backward)
 * and as evaluation runs it (no tape: the negative ELBO, and IS-NLL with k = 10 on batch / 10
 * images, the same number of decoder rows), in ms and GFLOP/s from the model's multiply-adds.
 */
async function timeForwards(gpu: GpuContext, model: MnistModel, data: GpuImageSet, batch: number): Promise<Record<string, number>> {
  const batches = new SequentialBatches(Math.min(batch, data.count), batch);
  const zd = model.config.latentDim;
  const k = 10;
  const kBatch = Math.max(1, Math.floor(batch / k));
  const kIndices = new SequentialBatches(kBatch, kBatch);
  try {
    const reps = model.config.imageSize >= 28 ? 3 : 10;
    const loss = (): void => {
      const x = data.binarizedBatch(batches.at(0), 1, 0);
      const noise = model.hasLatent ? E.randomNormal([x.shape[0], zd], 1, 3) : null;
      model.loss(x, noise, 1);
    };
    const trainMs = await medianMs(gpu, loss, reps);
    const evalMs = await medianMs(gpu, () => E.noGrad(loss), reps);
    const isNllMs = await medianMs(
      gpu,
      () =>
        E.noGrad(() => {
          const x = data.binarizedBatch(kIndices.at(0), 1, 0);
          model.importanceNll(x, k, E.randomNormal([k * x.shape[0], zd], 1, 4));
        }),
      reps,
    );
    const gflops = (images: number, ms: number): number => +((2 * model.macsPerImage() * images) / (ms * 1e6)).toFixed(3);
    return {
      forward_train_ms: +trainMs.toFixed(2), forward_train_gflops: gflops(batch, trainMs),
      forward_eval_ms: +evalMs.toFixed(2), forward_eval_gflops: gflops(batch, evalMs),
      is_nll_k10_ms: +isNllMs.toFixed(2), is_nll_k10_images: kBatch, is_nll_k10_gflops: gflops(k * kBatch, isNllMs),
    };
  } finally {
    batches.dispose();
    kIndices.dispose();
  }
}

// Sampling benchmark (`npm run bench -- --sample`): seconds per batch for incremental sampling
// (src/models/incremental.ts) and the full-recompute sampler (one decoder pass per pixel), their
// ratio, and incremental sampling over one forward pass of the same batch. One JSON record per case.
// runHierSamplingBench does the same for the hierarchical colour model's two-level sampler.
//
// The full-recompute sampler costs ~S*S forward passes, far too long at 28x28 on a CPU adapter, so
// it is timed at a smaller image size with the same widths and depth (`fullSize`), next to the
// incremental sampler at that size; the record also gives S*S x the measured decoder pass as the
// full sampler's estimate at the main size. Every figure says which it is.
import type { GpuContext, KernelSpec } from '../gpu/context';
import * as E from '../engine';
import { mnistConfig, type MnistModelConfig, type MnistPreset } from '../models/config';
import { MnistModel } from '../models/mnist-model';
import { hierConfig, type HierPreset } from '../models/hierarchical/config';
import { HierarchicalPixelVae } from '../models/hierarchical/model';

export interface SamplingBenchOptions {
  preset: MnistPreset;
  batch: number;
  /** Image side of the main measurement (28: the Table-1 model). */
  size: number;
  /** Image side at which the full-recompute sampler is timed (it costs size^2 decoder passes). */
  fullSize: number;
  /** Small widths and sizes (a smoke run). */
  quick: boolean;
}

const now = (): number => performance.now();

function configFor(options: SamplingBenchOptions, size: number): MnistModelConfig {
  const small: Partial<MnistModelConfig> = options.quick ? { pixelLayers: 2, pixelWidth: 8, latentDim: 8, encoderDims: [8, 8, 16, 16], decoderDims: [16, 16, 8], outputWidth: 8 } : {};
  return mnistConfig(options.preset, { ...small, imageSize: size });
}

function drawInputs(model: MnistModel, batch: number, seed: number): { z: E.Tensor | null; u: E.Tensor } {
  const size = model.config.imageSize;
  const z = model.hasLatent ? E.keep(E.randomNormal([batch, model.config.latentDim], seed, 1)) : null;
  const u = E.keep(E.randomUniform([batch, 1, size, size], seed, 2));
  return { z, u };
}

/** Milliseconds of one run of `work` (after one untimed run that compiles its kernels). */
async function timeOnce(gpu: GpuContext, work: () => void, warm = true): Promise<number> {
  if (warm) {
    E.tidy(work);
    await gpu.sync();
  }
  const t0 = now();
  E.tidy(work);
  await gpu.sync();
  return now() - t0;
}

/** Mean milliseconds over `reps` runs after a warm-up. */
async function timeMean(gpu: GpuContext, work: () => void, reps: number): Promise<number> {
  E.tidy(work);
  await gpu.sync();
  const t0 = now();
  for (let i = 0; i < reps; i++) E.tidy(work);
  await gpu.sync();
  return (now() - t0) / reps;
}

/**
 * Where an incremental sample's time goes: its dispatches are recorded, then replayed kernel by kernel
 * (all dispatches of one kernel, in order, between two queue drains). The replay's values are garbage
 * but no kernel's work depends on them. Run it last: it writes into buffers already back in the pool.
 */
async function profile(gpu: GpuContext, work: () => void): Promise<{ kernel: string; dispatches: number; ms: number }[]> {
  const recorded: [KernelSpec, readonly (GPUBuffer | GPUBufferBinding)[], Uint32Array, readonly number[]][] = [];
  gpu.onDispatch = (spec, buffers, params, workgroups) => recorded.push([spec, buffers, params, workgroups]);
  try {
    E.tidy(work);
  } finally {
    gpu.onDispatch = null;
  }
  await gpu.sync();
  const groups = new Map<string, typeof recorded>();
  for (const d of recorded) {
    const key = `${d[0].name}:${d[0].entry}`;
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  const out: { kernel: string; dispatches: number; ms: number }[] = [];
  for (const [kernel, list] of groups) {
    const t0 = now();
    for (const [spec, buffers, params, workgroups] of list) gpu.dispatch(spec, buffers, params, workgroups);
    await gpu.sync();
    out.push({ kernel, dispatches: list.length, ms: +(now() - t0).toFixed(1) });
  }
  return out.sort((x, y) => y.ms - x.ms);
}

export async function runSamplingBench(gpu: GpuContext, options: SamplingBenchOptions, emit: (record: Record<string, unknown>) => void, driver = 'system'): Promise<void> {
  const adapter = `${gpu.adapter.vendor || '?'} ${gpu.adapter.architecture || gpu.adapter.description || '?'}${gpu.adapter.isFallbackAdapter ? ' (fallback)' : ''}`;
  const base = { adapter, driver };
  const { batch } = options;

  // Main size: incremental sampling against one forward pass of the same batch.
  {
    const model = new MnistModel(configFor(options, options.size));
    const { z, u } = drawInputs(model, batch, 1);
    const size = model.config.imageSize;
    const x = E.keep(E.randomUniform([batch, 1, size, size], 9, 3));
    const binary = E.keep(E.noGrad(() => E.bernoulli(x, 9, 4)));
    const sample = (): void => void model.sample(z, u);
    const t0 = now();
    E.tidy(sample); // compiles the kernels
    await gpu.sync();
    const firstMs = now() - t0;
    const incrementalMs = await timeOnce(gpu, sample, false);
    const decodeMs = await timeMean(gpu, () => void E.noGrad(() => model.decode(binary, z)), 2);
    const noise = model.hasLatent ? E.keep(E.randomNormal([batch, model.config.latentDim], 9, 5)) : null;
    const forwardMs = await timeMean(gpu, () => void E.noGrad(() => model.loss(binary, noise, 1)), 2);
    const kernels = await profile(gpu, sample);
    emit({
      ...base,
      case: `sample incremental ${options.preset} ${size}x${size} b${batch}${options.quick ? ' (small widths)' : ''}`,
      s_per_batch: +(incrementalMs / 1000).toFixed(3),
      s_first_call_with_compile: +(firstMs / 1000).toFixed(3),
      s_decoder_forward: +(decodeMs / 1000).toFixed(3),
      s_model_forward: +(forwardMs / 1000).toFixed(3),
      ratio_to_decoder_forward: +(incrementalMs / decodeMs).toFixed(3),
      ratio_to_model_forward: +(incrementalMs / forwardMs).toFixed(3),
      full_recompute_estimate_s: +(((size * size) * decodeMs) / 1000).toFixed(1),
      full_recompute_estimate_note: `${size * size} x the measured decoder pass (the full sampler runs one per pixel), not timed`,
      kernels,
    });
    for (const t of [z, u, x, binary, noise]) t?.dispose();
    model.dispose();
  }

  // Small size: the full-recompute sampler timed in full, next to the incremental one.
  {
    const model = new MnistModel(configFor(options, options.fullSize));
    const { z, u } = drawInputs(model, batch, 2);
    const size = model.config.imageSize;
    const incrementalMs = await timeOnce(gpu, () => void model.sample(z, u));
    const fullMs = await timeOnce(gpu, () => void model.sample(z, u, undefined, { method: 'full' }));
    emit({
      ...base,
      case: `sample full vs incremental ${options.preset} ${size}x${size} b${batch}${options.quick ? ' (small widths)' : ''}`,
      s_full_recompute: +(fullMs / 1000).toFixed(3),
      s_incremental: +(incrementalMs / 1000).toFixed(3),
      ratio_full_to_incremental: +(fullMs / incrementalMs).toFixed(2),
    });
    z?.dispose();
    u.dispose();
    model.dispose();
  }
}

export interface HierSamplingBenchOptions {
  presets: HierPreset[];
  batch: number;
  /** Presets whose full-recompute sampler is timed in full; the others get an estimate from one pass of each network. */
  fullTimed: HierPreset[];
}

/**
 * The hierarchical model (src/models/hierarchical): seconds per batch of top-down sampling (z1 from
 * z2, then the pixels) with the incremental sampler and the full-recompute one, and the dispatches
 * each encodes. Weights are the preset's initialisation (sampling cost does not depend on them).
 */
export async function runHierSamplingBench(gpu: GpuContext, options: HierSamplingBenchOptions, emit: (record: Record<string, unknown>) => void, driver = 'system'): Promise<void> {
  const adapter = `${gpu.adapter.vendor || '?'} ${gpu.adapter.architecture || gpu.adapter.description || '?'}${gpu.adapter.isFallbackAdapter ? ' (fallback)' : ''}`;
  const { batch } = options;
  for (const preset of options.presets) {
    const model = new HierarchicalPixelVae(hierConfig(preset));
    const noise = model.levelNoise(batch, 1, 1, null);
    const [c, h, w] = model.shapes.image;
    const [, h1, w1] = model.shapes.z1;
    /** Seconds and dispatches of one generate() call from z2 (or from z1 with `fromZ1`). */
    const run = async (method: 'incremental' | 'full', fromZ1: E.Tensor | null = null): Promise<{ s: number; dispatches: number }> => {
      await gpu.sync();
      const d0 = gpu.stats().dispatches;
      const t0 = now();
      const out = await model.generate(fromZ1 ? { z1: fromZ1 } : { z2: noise.z2 }, noise, { method });
      await gpu.sync();
      const s = (now() - t0) / 1000;
      for (const t of [out.images, out.z1, out.z2]) t?.dispose();
      return { s, dispatches: gpu.stats().dispatches - d0 };
    };
    const first = await run('incremental'); // compiles the kernels
    const incremental = await run('incremental');
    const z1 = E.keep(E.noGrad(() => E.add(noise.eps1, E.zeros([1]))));
    const pixelsOnly = await run('incremental', z1);
    const record: Record<string, unknown> = {
      adapter,
      driver,
      case: `sample hierarchical ${preset} ${h}x${w} b${batch}: incremental vs full recompute`,
      s_incremental: +incremental.s.toFixed(3),
      s_incremental_first_call_with_compile: +first.s.toFixed(3),
      s_incremental_pixel_level: +pixelsOnly.s.toFixed(3),
      dispatches_incremental: incremental.dispatches,
    };
    if (options.fullTimed.includes(preset)) {
      await run('full', z1); // compiles the full path's kernels
      const full = await run('full');
      Object.assign(record, {
        s_full_recompute: +full.s.toFixed(3),
        dispatches_full_recompute: full.dispatches,
        ratio_full_to_incremental: +(full.s / incremental.s).toFixed(2),
      });
    } else {
      // One pass of each PixelCNN (with its sampling kernel's cost left out): the full sampler runs
      // h1*w1 latent passes and C*H*W pixel passes.
      const features2 = E.keep(E.noGrad(() => model.priorFeatures(noise.z2)));
      const features1 = E.keep(E.noGrad(() => model.pixelFeatures(z1)));
      const images = E.keep(E.noGrad(() => E.fromArray(new Uint32Array(batch * c * h * w), [batch, c, h, w], 'u32')));
      const latentMs = await timeMean(gpu, () => void E.noGrad(() => model.priorRaw(z1, features2)), 2);
      const pixelMs = await timeMean(gpu, () => void E.noGrad(() => model.pixelLogits(images, features1)), 2);
      const estimate = (h1 * w1 * latentMs + c * h * w * pixelMs) / 1000;
      Object.assign(record, {
        s_latent_pixelcnn_pass: +(latentMs / 1000).toFixed(4),
        s_pixel_pixelcnn_pass: +(pixelMs / 1000).toFixed(4),
        full_recompute_estimate_s: +estimate.toFixed(1),
        full_recompute_estimate_note: `${h1 * w1} latent + ${c * h * w} pixel PixelCNN passes at the measured times, not timed`,
        ratio_full_estimate_to_incremental: +(estimate / incremental.s).toFixed(1),
      });
      for (const t of [features2, features1, images]) t.dispose();
    }
    emit(record);
    for (const t of [z1, noise.z2, noise.eps1, noise.uniforms]) t.dispose();
    model.dispose();
  }
}

// The benchmark cases, platform-free: `npm run bench` runs them in Node (src/cli/bench.ts) and
// bench.html runs them in the browser (src/bench/browser.ts). One JSON record per case, with the
// adapter named. Kernel GFLOP/s on the MNIST models' real shapes (batch 32), each beside a matmul of
// the same GEMM dimensions (equal work), a square matmul, the cost of one dispatch, and optionally
// training steps per preset: their GFLOP/s against the best matmul of equal work on the same adapter
// in the same run, and a per-kernel profile. Times are wall clock around GPU work only: inputs are
// made first, then the case runs `reps` times between two queue drains.
import type { GpuContext, KernelSpec } from '../gpu/context';
import * as E from '../engine';
import { channelSums, type ConvMask } from '../engine/ops/conv';
import { GpuImageSet } from '../data/gpu-dataset';
import { MNIST_PRESETS, mnistConfig, type MnistModelConfig, type MnistPreset } from '../models/config';
import { e1Config, quickConfig } from './frameworks/spec';
import { MnistModel } from '../models/mnist-model';
import { MnistTrainer } from '../models/trainer';
import { tapsVisited } from '../nn/layers';
import { syntheticDigits } from './synthetic';

export interface BenchOptions {
  /** Fewer and smaller cases, for CPU fallback adapters. */
  quick: boolean;
  /** MNIST presets whose training steps are timed ('all' for every one; 'e1' for the E.1 model of bench:frameworks). */
  train: string[];
  /** Only cases whose name matches. */
  filter: RegExp | null;
  /** Timed repetitions per case (0: chosen from a first timing). */
  reps: number;
  /** With `train`: only the evaluation forward's rows, not the training step's. */
  forwardOnly?: boolean;
}

const now = (): number => performance.now();

function randomTensor(shape: number[], seed: number): E.Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32 - 0.5;
  }
  return E.keep(E.fromArray(data, shape));
}

/** Runs `work` (which records GPU work) until timing is stable enough; returns ms per run. */
async function time(gpu: GpuContext, work: () => void, reps: number): Promise<number> {
  E.tidy(work); // warm-up: compiles pipelines, fills the pool
  await gpu.sync();
  let runs = reps;
  if (runs <= 0) {
    const t0 = now();
    E.tidy(work);
    await gpu.sync();
    const first = now() - t0;
    runs = Math.max(1, Math.min(20, Math.floor(2000 / Math.max(first, 1))));
  }
  const t0 = now();
  for (let i = 0; i < runs; i++) E.tidy(work);
  await gpu.sync();
  return (now() - t0) / runs;
}

interface ConvCase {
  name: string;
  cin: number;
  cout: number;
  size: number;
  k: number;
  /** Kernel height when it differs from k (the horizontal stacks are 1 x k). */
  kh?: number;
  stride: 1 | 2;
  mask?: ConvMask;
  /** One more zero row on top, so Ho = H + 1: the gated stacks' vertical conv (networks.ts's vpre). */
  extraTopRow?: boolean;
}

function convCases(quick: boolean): ConvCase[] {
  const cases: ConvCase[] = [
    // the Table-1 decoder: 7x7 mask-A input layer, 5x5 vertical/horizontal stacks, 1x1 mixing, 2P = 32
    { name: 'pix-input 7x7 A 1->32 28x28', cin: 1, cout: 32, size: 28, k: 7, stride: 1, mask: { type: 'A' } },
    { name: 'vstack 5x5 16->32 28x28', cin: 16, cout: 32, size: 28, k: 5, stride: 1, mask: { type: 'vstack' } },
    { name: 'plain 5x5 16->32 28x28', cin: 16, cout: 32, size: 28, k: 5, stride: 1 },
    { name: 'masked-B 5x5 16->32 28x28', cin: 16, cout: 32, size: 28, k: 5, stride: 1, mask: { type: 'B' } },
    { name: '1x1 32->32 28x28', cin: 32, cout: 32, size: 28, k: 1, stride: 1 },
    { name: '1x1 64->64 28x28', cin: 64, cout: 64, size: 28, k: 1, stride: 1 },
    // the E.1 model's stacks (bench:frameworks): 7x7 and 1x7 on the image and features, 5x5 and 1x5 mask B, gated 2P = 64
    { name: 'vstack 7x7 33->64 29x28', cin: 33, cout: 64, size: 28, k: 7, stride: 1, mask: { type: 'vstack' }, extraTopRow: true },
    { name: 'vstack 5x5 32->64 29x28', cin: 32, cout: 64, size: 28, k: 5, stride: 1, mask: { type: 'vstack' }, extraTopRow: true },
    { name: 'hstack 1x7 A 33->64 28x28', cin: 33, cout: 64, size: 28, k: 7, kh: 1, stride: 1, mask: { type: 'A' } },
    { name: 'hstack 1x5 B 32->64 28x28', cin: 32, cout: 64, size: 28, k: 5, kh: 1, stride: 1, mask: { type: 'B' } },
    // the encoder
    { name: 'enc 3x3 1->32 28x28', cin: 1, cout: 32, size: 28, k: 3, stride: 1 },
    { name: 'enc 3x3 32->32 s2 28->14', cin: 32, cout: 32, size: 28, k: 3, stride: 2 },
    { name: 'enc 3x3 32->64 14x14', cin: 32, cout: 64, size: 14, k: 3, stride: 1 },
    { name: 'enc 3x3 64->64 14x14', cin: 64, cout: 64, size: 14, k: 3, stride: 1 },
  ];
  return quick ? cases.filter((c) => /pix-input|vstack|enc 3x3 32->32/.test(c.name)) : cases;
}

export async function runBench(gpu: GpuContext, args: BenchOptions, emit: (record: Record<string, unknown>) => void, driver = 'system'): Promise<void> {
  const adapter = `${gpu.adapter.vendor || '?'} ${gpu.adapter.architecture || gpu.adapter.description || '?'}${gpu.adapter.isFallbackAdapter ? ' (fallback)' : ''}`;
  const base = { adapter, driver };
  const wanted = (name: string): boolean => !args.filter || args.filter.test(name);
  const batch = args.quick ? 8 : 32;

  // Dispatch overhead: many tiny dispatches, batched as the engine batches them.
  if (wanted('dispatch')) {
    const x = randomTensor([1], 1);
    const count = 500;
    const ms = await time(gpu, () => {
      for (let i = 0; i < count; i++) E.neg(x);
    }, 3);
    emit({ ...base, case: 'dispatch overhead', dispatches: count, ms_per_dispatch: +(ms / count).toFixed(4) });
  }

  // Square matmuls: the reference figure.
  for (const n of args.quick ? [256] : [256, 512]) {
    const name = `matmul ${n}x${n}x${n}`;
    if (!wanted(name)) continue;
    const a = randomTensor([n, n], 2);
    const b = randomTensor([n, n], 3);
    const ms = await time(gpu, () => void E.matmul(a, b), args.reps);
    emit({ ...base, case: name, ms: +ms.toFixed(3), gflops: +((2 * n * n * n) / ms / 1e6).toFixed(3) });
  }

  for (const c of convCases(args.quick)) {
    const kh = c.kh ?? c.k;
    const padX = Math.floor(c.k / 2);
    const padY = Math.floor(kh / 2);
    const padTop = padY + (c.extraTopRow ? 1 : 0);
    const pad = [padTop, padY, padX, padX] as const;
    const out = Math.floor((c.size + 2 * padX - c.k) / c.stride) + 1;
    const outY = Math.floor((c.size + padTop + padY - kh) / c.stride) + 1;
    const x = randomTensor([batch, c.cin, c.size, c.size], 4);
    const w = randomTensor([c.cout, c.cin, kh, c.k], 5);
    const gy = randomTensor([batch, c.cout, outY, out], 6);
    // Dense FLOPs of the GEMM view (M = B*Ho*Wo, N = Cout, K = Cin*kh*kw), and the taps actually visited.
    const m = batch * outY * out;
    const kDense = c.cin * kh * c.k;
    const flops = 2 * m * c.cout * kDense;
    const usefulFlops = 2 * m * c.cout * c.cin * tapsVisited(kh, c.k, c.mask);
    const ops: [string, () => void][] = [
      ['forward', () => void E.conv2d(x, w, { stride: c.stride, padding: pad, mask: c.mask })],
      ['grad-input', () => {
        const xi = E.param(x);
        const y = E.conv2d(xi, w, { stride: c.stride, padding: pad, mask: c.mask });
        E.grad(y, [xi], gy);
        xi.requiresGrad = false;
      }],
      ['grad-weight', () => {
        const wi = E.param(w);
        const y = E.conv2d(x, wi, { stride: c.stride, padding: pad, mask: c.mask });
        E.grad(y, [wi], gy);
        wi.requiresGrad = false;
      }],
    ];
    // The same work as a matmul: [M, K] x [K, N], K the taps really visited.
    const name0 = `conv ${c.name} b${batch}`;
    let matmulGflops = 0;
    if (ops.some(([dir]) => wanted(`${name0} ${dir}`))) {
      const kUseful = c.cin * tapsVisited(kh, c.k, c.mask);
      const a = randomTensor([m, kUseful], 7);
      const b = randomTensor([kUseful, c.cout], 8);
      const ms = await time(gpu, () => void E.matmul(a, b), args.reps);
      matmulGflops = usefulFlops / ms / 1e6;
      a.dispose();
      b.dispose();
    }
    let forwardMs: number | null = null;
    for (const [dir, work] of ops) {
      const name = `${name0} ${dir}`;
      if (!wanted(name)) continue;
      // grad-input/grad-weight include the forward; subtract it to report the backward kernels alone.
      const ms = await time(gpu, work, args.reps);
      if (dir === 'forward') forwardMs = ms;
      forwardMs ??= await time(gpu, ops[0][1], args.reps);
      const kernelMs = dir === 'forward' ? ms : Math.max(ms - forwardMs, 1e-3);
      const gflops = flops / kernelMs / 1e6;
      emit({
        ...base,
        case: name,
        gemm: { m, n: c.cout, k: kDense },
        ms: +kernelMs.toFixed(3),
        gflops_dense: +gflops.toFixed(3),
        gflops_useful: +(usefulFlops / kernelMs / 1e6).toFixed(3),
        matmul_equal_work_gflops: +matmulGflops.toFixed(3),
        ratio_to_matmul: +(usefulFlops / kernelMs / 1e6 / matmulGflops).toFixed(3),
      });
    }
    x.dispose();
    w.dispose();
    // The bias gradient (per-channel sums of gy, [C]) and with the cond gradient ([N, C]) too, alone.
    for (const [dir, want] of [['grad-bias', { perImage: false, total: true }], ['grad-bias+cond', { perImage: true, total: true }]] as const) {
      const name = `${name0} ${dir}`;
      if (!wanted(name)) continue;
      const ms = await time(gpu, () => void channelSums(gy, want), args.reps);
      emit({ ...base, case: name, ms: +ms.toFixed(3), dispatches: 1, gbytes_per_s: +((gy.size * 4) / ms / 1e6).toFixed(3) });
    }
    gy.dispose();
  }
  for (const name of args.train.includes('all') ? MNIST_PRESETS : args.train) {
    // 'e1': the Appendix E.1 model that `npm run bench:frameworks` races against TensorFlow.js and jax-js.
    if (name === 'e1') await trainCase(gpu, base, 'e1', args.quick ? quickConfig() : e1Config(), batch, emit, args.forwardOnly);
    else if (isPreset(name)) await trainCase(gpu, base, name, args.quick ? quickSizes(name) : mnistConfig(name), batch, emit, args.forwardOnly);
    else throw new Error(`--train: unknown preset ${name} (one of ${MNIST_PRESETS.join(', ')}, e1 or all)`);
  }
}

/**
 * The best matmul GFLOP/s for a step of `flops`: every launch variant on a 512 cube, then the best
 * variant on the square matmul of equal work (n^3 * 2 = flops, n rounded to 64); the best figure of
 * all of them, so the ratio is against our fastest matmul, not a slow one.
 */
async function matmulReference(gpu: GpuContext, flops: number): Promise<{ best: number; equalWork: Record<string, unknown> }> {
  const run = async (n: number, variant: E.MatmulVariant, reps: number): Promise<number> => {
    const a = randomTensor([n, n], 2);
    const b = randomTensor([n, n], 3);
    const ms = await time(gpu, () => void E.matmulWithVariant(a, b, variant), reps);
    a.dispose();
    b.dispose();
    return (2 * n ** 3) / ms / 1e6;
  };
  let best = 0;
  let bestVariant = E.MATMUL_VARIANTS[0];
  for (const variant of E.MATMUL_VARIANTS) {
    const g = await run(512, variant, 1);
    if (g > best) [best, bestVariant] = [g, variant];
  }
  const n = Math.max(64, Math.round(Math.cbrt(flops / 2) / 64) * 64);
  const equal = await run(n, bestVariant, 1);
  return { best: Math.max(best, equal), equalWork: { n, gflops: +equal.toFixed(3), variant: `${bestVariant.wgX}x${bestVariant.wgY}`, cube512_best_gflops: +best.toFixed(3) } };
}

/** Training throughput of one preset, then the time of each kernel of one step, replayed alone. */
const isPreset = (name: string): name is MnistPreset => (MNIST_PRESETS as readonly string[]).includes(name);

const quickSizes = (preset: MnistPreset): MnistModelConfig =>
  mnistConfig(preset, { pixelLayers: 2, pixelWidth: 8, latentDim: 8, encoderDims: [8, 8, 16, 16], decoderDims: [16, 16, 8], outputWidth: 8 });

async function trainCase(
  gpu: GpuContext,
  base: Record<string, string>,
  label: string,
  config: MnistModelConfig,
  batch: number,
  emit: (record: Record<string, unknown>) => void,
  forwardOnly = false,
): Promise<void> {
  const model = new MnistModel(config);
  const stepGflops = forwardOnly ? null : await trainingRows(gpu, base, label, model, batch, emit);
  await forwardRows(gpu, base, label, model, config, batch, emit, stepGflops);
  model.dispose();
}

/** The training step timed, set against the best matmul, and profiled; returns the step's GFLOP/s. */
async function trainingRows(
  gpu: GpuContext,
  base: Record<string, string>,
  label: string,
  model: MnistModel,
  batch: number,
  emit: (record: Record<string, unknown>) => void,
): Promise<number> {
  const quick = batch < 32;
  const data = GpuImageSet.upload(syntheticDigits(1024, model.config.imageSize), 'intensity');
  const trainer = new MnistTrainer(model, data, { batchSize: batch, seed: 1 });
  let t0 = now();
  const variants = await trainer.prewarm();
  const compileMs = now() - t0;
  t0 = now();
  trainer.trainStep();
  await gpu.sync();
  const firstStepMs = now() - t0 + compileMs;
  // The matmul reference is taken before and after the timed steps (the better of the two counts),
  // so a change in machine load during the steps does not flatter the ratio.
  const flopsPerStep = 3 * 2 * model.macsPerImage() * batch;
  const referenceBefore = await matmulReference(gpu, flopsPerStep);
  const steps = quick ? 3 : 2;
  t0 = now();
  for (let i = 0; i < steps; i++) {
    trainer.trainStep();
    await gpu.throttle();
  }
  await gpu.sync();
  const stepMs = (now() - t0) / steps;
  // Training FLOPs ~ 3x the forward pass (forward, input gradients, weight gradients), from macs().
  const stepGflops = flopsPerStep / stepMs / 1e6;
  emit({
    ...base, case: `train ${label} b${batch}${quick ? ' (small widths)' : ''}`, params: model.params.count(),
    forward_mflop_per_image: +((2 * model.macsPerImage()) / 1e6).toFixed(2), kernel_variants: variants,
    ms_to_first_step: Math.round(firstStepMs), ms_per_step: +stepMs.toFixed(1), images_per_s: +((1000 * batch) / stepMs).toFixed(2),
    gflops: +stepGflops.toFixed(3), peak_gpu_bytes: gpu.stats().liveBytes + gpu.stats().pooledBytes,
  });
  const referenceAfter = await matmulReference(gpu, flopsPerStep);
  const reference = referenceAfter.best >= referenceBefore.best ? referenceAfter : referenceBefore;
  emit({
    ...base, case: `train ${label} b${batch} vs best matmul`, gflops_step: +stepGflops.toFixed(3), flop_per_step: flopsPerStep,
    matmul_equal_work: reference.equalWork, matmul_best_gflops: +reference.best.toFixed(3),
    ratio: +(stepGflops / reference.best).toFixed(3), target_ratio: 0.6,
  });
  // Profile: record one step's dispatches, then replay each alone (5 times per submit).
  // A replayed step (step-replay.ts) bypasses dispatch(), so the profiled step is recorded afresh.
  trainer.replaySteps = false;
  const stepProfile = await profileDispatches(gpu, () => trainer.trainStep());
  emit({ ...base, case: `train ${label} kernel profile`, dispatches_per_step: stepProfile.dispatches, replayed_ms: stepProfile.replayed_ms, kernels: stepProfile.kernels });
  trainer.dispose();
  trainer.optimizer.dispose();
  data.dispose();
  return stepGflops;
}

async function forwardRows(
  gpu: GpuContext,
  base: Record<string, string>,
  label: string,
  model: MnistModel,
  config: MnistModelConfig,
  batch: number,
  emit: (record: Record<string, unknown>) => void,
  stepGflops: number | null,
): Promise<void> {
  const quick = batch < 32;
  // The evaluation forward (the -ELBO of a batch, no gradients), timed and profiled the same way:
  // bench:frameworks races it, and the issue asks it to be as fast per FLOP as inside training.
  const x = randomTensor([batch, 1, config.imageSize, config.imageSize], 5);
  const noise = model.hasLatent ? randomTensor([batch, config.latentDim], 6) : null;
  const forward = (): void => E.noGrad(() => E.tidy(() => void model.loss(x, noise, 1)));
  forward();
  await gpu.sync();
  const forwardReps = quick ? 3 : 2;
  const t0 = now();
  for (let i = 0; i < forwardReps; i++) {
    forward();
    await gpu.throttle();
  }
  await gpu.sync();
  const forwardMs = (now() - t0) / forwardReps;
  const forwardGflops = (2 * model.macsPerImage() * batch) / forwardMs / 1e6;
  emit({
    ...base, case: `forward ${label} b${batch}${quick ? ' (small widths)' : ''}`, ms_per_batch: +forwardMs.toFixed(1),
    images_per_s: +((1000 * batch) / forwardMs).toFixed(2), gflops: +forwardGflops.toFixed(3),
    ...(stepGflops === null ? {} : { gflops_vs_training_step: +(forwardGflops / stepGflops).toFixed(3) }),
  });
  const forwardProfile = await profileDispatches(gpu, forward);
  emit({ ...base, case: `forward ${label} kernel profile`, dispatches_per_forward: forwardProfile.dispatches, replayed_ms: forwardProfile.replayed_ms, kernels: forwardProfile.kernels });
  x.dispose();
  noise?.dispose();
}

/**
 * Records the dispatches `run` makes, then replays each alone (5 times per submit) and sums the times
 * per kernel; convolutions are keyed by kernel size and stride too, so a slow shape shows apart.
 */
interface DispatchProfile {
  dispatches: number;
  replayed_ms: number;
  kernels: { kernel: string; dispatches: number; ms: number; share: number }[];
}

async function profileDispatches(gpu: GpuContext, run: () => void): Promise<DispatchProfile> {
  const recorded: [KernelSpec, readonly (GPUBuffer | GPUBufferBinding)[], Uint32Array, readonly number[]][] = [];
  gpu.onDispatch = (spec, buffers, params, workgroups) => recorded.push([spec, buffers, params, workgroups]);
  try {
    run();
  } finally {
    gpu.onDispatch = null;
  }
  await gpu.sync();
  const byKernel = new Map<string, { ms: number; count: number }>();
  for (const [spec, buffers, params, workgroups] of recorded) {
    const t = now();
    for (let r = 0; r < 5; r++) gpu.dispatch(spec, buffers, params, workgroups);
    await gpu.sync();
    const ms = (now() - t) / 5;
    const c = spec.constants ?? {};
    const key = `${spec.name}:${spec.entry}${c.KH !== undefined ? ` ${c.KH}x${c.KW ?? c.KH} s${c.STRIDE ?? 1}` : ''}`;
    const entry = byKernel.get(key) ?? { ms: 0, count: 0 };
    entry.ms += ms;
    entry.count += 1;
    byKernel.set(key, entry);
  }
  const total = [...byKernel.values()].reduce((a, b) => a + b.ms, 0);
  const top = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 16);
  return {
    dispatches: recorded.length, replayed_ms: Math.round(total),
    kernels: top.map(([k, v]) => ({ kernel: k, dispatches: v.count, ms: +v.ms.toFixed(1), share: +(v.ms / total).toFixed(3) })),
  };
}

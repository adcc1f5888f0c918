// A short measurement of the adapter's speed, from which the setup panel estimates how long a
// training step takes before anything is built: the engine's convolution throughput (GFLOP/s, a
// forward pass and both gradients, as in a training step) and the wall time a training step spends
// per dispatch beyond its FLOPs (a small model's step is hundreds of small, inefficient dispatches;
// a big model's is dominated by its FLOPs; after its first few steps a step is replayed from a
// recording, models/step-replay.ts). The second comes from timing real training steps of the
// CPU default model on a synthetic batch (its kernels are the ones the first model trains with, so
// compiling them here costs nothing extra there). Compilation is never timed. Runs in the worker
// (and in Node, for the estimate's check against measured steps).
import * as E from '../engine';
import { GpuMnist } from '../data/gpu-dataset';
import type { GpuContext } from '../gpu/context';
import { MnistModel } from '../models/mnist-model';
import { MnistTrainer } from '../models/trainer';
import type { Calibration } from './api';
import { CPU_SIZES, mnistConfigOf } from './families';

/** The convolution timed: a 3x3, 16 -> 32 channel layer on a batch of 8 16x16 maps (19 MFLOP forward, 3x that with both gradients). */
const CONV = { n: 8, cin: 16, cout: 32, side: 16, k: 3 };
const CONV_FLOPS = 3 * 2 * CONV.n * CONV.cout * CONV.side * CONV.side * CONV.cin * CONV.k * CONV.k;
/** Small dispatches timed for the per-dispatch cost. */
const DISPATCHES = 240;
/** Time budget per measurement, ms (the first timing decides how many repetitions fit). */
const BUDGET_MS = 400;

/** The CPU-shaped conv kernels, selected without timing (a CPU adapter). */
function cpuShapedKernels(): E.ConvVariantReport {
  const choice = { forward: 'cpu', backwardInput: 'cpu', backwardWeight: 'cpu' } as const;
  E.setConvVariants(choice);
  const none = { cpu: [], tiled: [] };
  return { key: '', source: 'default', choice, shapes: [], timings: { forward: none, backwardInput: none, backwardWeight: none } };
}

async function timeIt(gpu: GpuContext, work: () => void): Promise<number> {
  await gpu.sync();
  const t0 = performance.now();
  E.tidy(() => work());
  await gpu.sync();
  return performance.now() - t0;
}

/** Seconds per training step (best of a few pairs), FLOPs and dispatches of the CPU default model at batch 32. */
async function referenceStep(gpu: GpuContext): Promise<{ seconds: number; flops: number; dispatches: number }> {
  const batch = 32;
  const config = mnistConfigOf({ family: 'mnist', preset: 'gated-pixelvae-cond', sizes: CPU_SIZES, initSeed: 1, seed: 1, batchSize: batch, lr: 1e-3 });
  const S = config.imageSize;
  const count = 2 * batch;
  const set = { name: 'calibration', count, height: S, width: S, images: new Uint8Array(count * S * S).map((_, i) => (i * 97) % 256), labels: new Uint8Array(count) };
  const data = GpuMnist.upload({ train: set, valid: set, test: set }, 1);
  const model = new MnistModel(config);
  const trainer = new MnistTrainer(model, data.train, { batchSize: batch, lr: 1e-3, clipValue: 1, seed: 1 });
  try {
    await trainer.prewarm();
    trainer.trainStep(); // first-use allocations
    await gpu.sync();
    const d0 = gpu.stats().dispatches;
    trainer.trainStep();
    await gpu.sync();
    const dispatches = gpu.stats().dispatches - d0;
    let best = Infinity;
    let spent = 0;
    for (let rep = 0; rep < 4 && spent < 2 * BUDGET_MS; rep++) {
      const t0 = performance.now();
      trainer.trainStep();
      trainer.trainStep();
      await gpu.sync();
      const ms = performance.now() - t0;
      best = Math.min(best, ms / 2000);
      spent += ms;
    }
    return { seconds: best, flops: 3 * 2 * model.macsPerImage() * batch, dispatches };
  } finally {
    trainer.dispose();
    model.dispose();
    data.dispose();
  }
}

export async function calibrateAdapter(gpu: GpuContext): Promise<Calibration> {
  const started = performance.now();
  // The conv kernels first, so the throughput below is that of the kernels this adapter will train
  // with: timed on a GPU. A CPU adapter keeps the CPU-shaped ones untimed: they won on both CPU
  // adapters we measured, the GPU-shaped ones taking up to 10x as long (docs/performance.md), and
  // timing those made this calibration overrun 120 s in one CI run on a loaded machine (5 s alone).
  const variants = gpu.adapter.isFallbackAdapter ? cpuShapedKernels() : await E.chooseConvVariants({ store: E.memoryStore(), remeasure: true });
  const x = E.keep(E.param(E.randomNormal([CONV.n, CONV.cin, CONV.side, CONV.side], 11)));
  const w = E.keep(E.param(E.affine(E.randomNormal([CONV.cout, CONV.cin, CONV.k, CONV.k], 12), 0.1, 0)));
  const small = E.keep(E.randomNormal([256], 13));
  const convStep = (): void => {
    const y = E.conv2d(x, w, { padding: (CONV.k - 1) / 2 });
    E.grad(E.sum(y), [x, w]);
  };
  try {
    // Throughput: one warm-up call compiles the kernels, then the best of a few timed calls.
    await timeIt(gpu, convStep);
    let best = Infinity;
    let spent = 0;
    for (let rep = 0; rep < 6 && spent < BUDGET_MS; rep++) {
      const ms = await timeIt(gpu, convStep);
      best = Math.min(best, ms);
      spent += ms;
    }
    const gflops = CONV_FLOPS / (best / 1000) / 1e9;
    // Per-dispatch cost: a chain of small element-wise ops (each one dispatch), recorded once and then
    // issued again as a replayed training step issues its commands (models/step-replay.ts): training
    // records only its first steps through the engine. The chain's tensors stay alive while replayed.
    await timeIt(gpu, () => E.add(small, small));
    const links: E.Tensor[] = [];
    const { commands } = gpu.captureCommands(() => {
      let x = small;
      for (let i = 0; i < DISPATCHES; i++) links.push((x = E.keep(E.add(x, small))));
    });
    let perDispatch = Infinity;
    spent = 0;
    try {
      for (let rep = 0; rep < 3 && spent < BUDGET_MS; rep++) {
        const ms = await timeIt(gpu, () => gpu.replayCommands(commands));
        perDispatch = Math.min(perDispatch, ms / DISPATCHES);
        spent += ms;
      }
    } finally {
      for (const t of links) t.dispose();
    }
    // What a real step spends beyond its FLOPs at that throughput, per dispatch (never below a bare dispatch).
    const ref = await referenceStep(gpu);
    const beyond = ref.seconds - ref.flops / (gflops * 1e9);
    const dispatchMs = Math.max(perDispatch, (1000 * beyond) / Math.max(1, ref.dispatches));
    const ad = gpu.adapter;
    return {
      adapter: `${ad.vendor} ${ad.architecture || ad.description}`.trim(),
      gflops,
      dispatchMs,
      tookMs: performance.now() - started,
      measuredAt: Date.now(),
      convVariants: { choice: { ...variants.choice }, timed: variants.source === 'measured', shapes: [...variants.shapes], timings: variants.timings },
    };
  } finally {
    x.dispose();
    w.dispose();
    small.dispose();
  }
}

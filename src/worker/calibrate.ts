// A short measurement of the adapter's speed, from which the setup panel estimates how long a
// training step takes before anything is built: the engine's convolution throughput (GFLOP/s, a
// forward pass and both gradients, as in a training step) and the wall time of one small dispatch (a training step is thousands of small dispatches on tiny
// models, a few large ones on big models). Kernels are compiled before timing, so compilation is not
// counted. Runs in the worker (and in Node, for the estimate's check against measured steps).
import * as E from '../engine';
import type { GpuContext } from '../gpu/context';
import type { Calibration } from './api';

/** The convolution timed: a 3x3, 16 -> 32 channel layer on a batch of 8 16x16 maps (19 MFLOP forward, 3x that with both gradients). */
const CONV = { n: 8, cin: 16, cout: 32, side: 16, k: 3 };
const CONV_FLOPS = 3 * 2 * CONV.n * CONV.cout * CONV.side * CONV.side * CONV.cin * CONV.k * CONV.k;
/** Small dispatches timed for the per-dispatch cost. */
const DISPATCHES = 240;
/** Time budget per measurement, ms (the first timing decides how many repetitions fit). */
const BUDGET_MS = 400;

async function timeIt(gpu: GpuContext, work: () => void): Promise<number> {
  await gpu.sync();
  const t0 = performance.now();
  E.tidy(() => work());
  await gpu.sync();
  return performance.now() - t0;
}

export async function calibrateAdapter(gpu: GpuContext): Promise<Calibration> {
  const started = performance.now();
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
    // Per-dispatch cost: a chain of small element-wise ops (each one dispatch), after a warm-up op.
    await timeIt(gpu, () => E.add(small, small));
    const chain = (): void => {
      let x = small;
      for (let i = 0; i < DISPATCHES; i++) x = E.add(x, small);
    };
    let perDispatch = Infinity;
    spent = 0;
    for (let rep = 0; rep < 3 && spent < BUDGET_MS; rep++) {
      const ms = await timeIt(gpu, chain);
      perDispatch = Math.min(perDispatch, ms / DISPATCHES);
      spent += ms;
    }
    const ad = gpu.adapter;
    return {
      adapter: `${ad.vendor} ${ad.architecture || ad.description}`.trim(),
      gflops,
      dispatchMs: perDispatch,
      tookMs: performance.now() - started,
      measuredAt: Date.now(),
    };
  } finally {
    x.dispose();
    w.dispose();
    small.dispose();
  }
}

// bench-frameworks.html: the E.1 gated PixelVAE (batch 32, 28x28 binary images) trained and evaluated
// by our engine, TensorFlow.js (webgpu) and jax-js (webgpu, jit) on this browser's WebGPU adapter
// (scripts/bench-frameworks.mjs runs it in headless Chromium). Before timing anything it proves the
// models are the same: our parameter list equals spec.ts's, each framework's parameter count equals
// ours, and (check=1) each computes the same loss as ours on one batch with our weights and noise.
// One JSON line per record, on the page and in the console.
import type { MnistModelConfig } from '../../models/config';
import { JaxE1, initJax } from './jax-model';
import { Ours } from './ours';
import { countParams, e1Config, paramShapes, quickConfig, syntheticBatch } from './spec';
import { TfjsE1, initTfjs } from './tfjs-model';
import * as tf from '@tensorflow/tfjs-core';
import { numpy as np } from '@jax-js/jax';

/** Package versions, read from node_modules at build time (vite.frameworks.config.ts). */
declare const __FRAMEWORK_VERSIONS__: Record<string, string>;

const FRAMEWORKS = ['ours', 'tfjs', 'jax'] as const;
type Framework = (typeof FRAMEWORKS)[number];

/** What the timing loop needs of each framework. */
interface Contender {
  params: number;
  loss(): Promise<number>;
  prepareTraining(): Promise<void>;
  trainStep(): Promise<void> | void;
  forward(): void;
  /** Waits until all queued work (steps or forward passes) has run. */
  drain(): Promise<void>;
  dispose(): void;
}

const out = document.getElementById('out')!;
const status = document.getElementById('status')!;
let base: Record<string, unknown> = {};

function emit(record: Record<string, unknown>): void {
  const line = JSON.stringify({ ...base, ...record });
  out.textContent += `${line}\n`;
  console.log(line);
}

const now = (): number => performance.now();

function tfjsContender(c: MnistModelConfig, values: Map<string, Float32Array>, x: Float32Array, noise: Float32Array, batch: number): Contender {
  const model = new TfjsE1(c, values);
  // One channel: NCHW and NHWC hold the same bytes.
  const xt = tf.keep(tf.tensor4d(x, [batch, c.imageSize, c.imageSize, 1]));
  const nt = tf.keep(tf.tensor2d(noise, [batch, c.latentDim]));
  let last: tf.Scalar | null = null;
  return {
    params: model.paramCount(),
    async loss() {
      const l = tf.tidy(() => model.loss(xt, nt));
      const [v] = await l.data();
      l.dispose();
      return v;
    },
    async prepareTraining() {},
    trainStep: () => model.trainStep(xt),
    forward() {
      last?.dispose();
      last = tf.tidy(() => model.loss(xt, nt));
    },
    async drain() {
      if (last) await last.data();
      await model.drain();
    },
    dispose() {
      last?.dispose();
      xt.dispose();
      nt.dispose();
      model.dispose();
    },
  };
}

function jaxContender(c: MnistModelConfig, values: Map<string, Float32Array>, x: Float32Array, noise: Float32Array, batch: number): Contender {
  const model = new JaxE1(c, values);
  const xa = np.array(x, { shape: [batch, 1, c.imageSize, c.imageSize] });
  const na = np.array(noise, { shape: [batch, c.latentDim] });
  // jax-js is lazy: a result disposed before it is needed is never computed. So every forward pass's
  // loss is kept until drain() has waited for all of them.
  const pending: np.Array[] = [];
  return {
    params: model.paramCount(),
    async loss() {
      const l = model.loss(xa, na);
      // A reference of our own for data() (whether it consumes one or not), then ours dropped.
      const [v] = await l.ref.data();
      l.dispose();
      return v;
    },
    async prepareTraining() {},
    trainStep: () => model.trainStep(xa),
    forward() {
      pending.push(model.loss(xa, na));
    },
    async drain() {
      for (const l of pending) await l.blockUntilReady();
      for (const l of pending.splice(0)) l.dispose();
      await model.drain();
    },
    dispose() {
      xa.dispose();
      na.dispose();
      model.dispose();
    },
  };
}

function oursContender(ours: Ours, batch: number): Contender {
  return {
    params: ours.model.params.count(),
    loss: () => ours.loss(),
    prepareTraining: () => ours.prepareTraining(batch),
    trainStep: () => ours.trainStep(),
    forward: () => ours.forward(),
    drain: () => ours.drain(),
    dispose: () => ours.dispose(),
  };
}

async function main(): Promise<void> {
  const q = new URLSearchParams(location.search);
  const order = (q.get('frameworks') ?? FRAMEWORKS.join(',')).split(',').filter(Boolean) as Framework[];
  for (const f of order) if (!FRAMEWORKS.includes(f)) throw new Error(`unknown framework ${f} (one of ${FRAMEWORKS.join(', ')})`);
  const batch = Number(q.get('batch') ?? 32);
  const steps = Number(q.get('steps') ?? 5);
  const warmup = Number(q.get('warmup') ?? 3);
  const forwardPasses = Number(q.get('forward') ?? 5);
  const check = q.get('check') !== '0';
  const quick = q.get('quick') === '1';
  const c = quick ? quickConfig() : e1Config();

  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter (navigator.gpu missing or no adapter)');
  const info = adapter.info;
  base = {
    adapter: `${info.vendor || '?'} ${info.architecture || info.description || '?'}`,
    browser: navigator.userAgent.match(/Chrom\w+\/[\d.]+/)?.[0] ?? navigator.userAgent,
    versions: __FRAMEWORK_VERSIONS__,
    model: quick ? 'gated-pixelvae at small widths (quick smoke run, not E.1)' : 'gated-pixelvae E.1 (latent 64, 2 residual layers, width 32)',
    batch,
  };

  // Ours always: its parameters are the weights every framework starts from, and its count the reference.
  status.textContent = 'building our model...';
  const ours = await Ours.create(c);
  ours.checkShapes();
  const values = await ours.exportValues();
  const { x, noise } = syntheticBatch(batch, c.imageSize, c.latentDim, 7);
  ours.setBatch(x, noise, batch);
  const expected = countParams(paramShapes(c));

  const contenders = new Map<Framework, Contender>();
  for (const f of order) {
    status.textContent = `building ${f}...`;
    if (f === 'tfjs') await initTfjs();
    if (f === 'jax') await initJax();
    contenders.set(f, f === 'ours' ? oursContender(ours, batch) : f === 'tfjs' ? tfjsContender(c, values, x, noise, batch) : jaxContender(c, values, x, noise, batch));
  }
  const oursParams = ours.model.params.count();
  const counts = Object.fromEntries([...contenders].map(([f, k]) => [f, k.params]));
  emit({ case: 'params', ours: oursParams, spec: expected, ...counts, equal: Object.values(counts).every((n) => n === oursParams) && expected === oursParams });
  for (const [f, n] of Object.entries(counts)) {
    if (n !== oursParams || expected !== oursParams) throw new Error(`parameter counts differ: ${f} has ${n}, ours ${oursParams}, spec ${expected}: not the same model`);
  }

  if (check) {
    // The same weights (ours, exported) and the same batch and noise: the losses must agree.
    status.textContent = 'checking the loss on one batch...';
    const reference = await ours.loss();
    for (const [f, k] of contenders) {
      if (f === 'ours') continue;
      const t0 = now();
      const loss = await k.loss();
      const rel = Math.abs(loss - reference) / Math.abs(reference);
      emit({ case: 'loss check', framework: f, loss, ours: reference, relative_difference: +rel.toExponential(3), tolerance: 1e-3, ok: rel <= 1e-3, ms: Math.round(now() - t0) });
      if (!(rel <= 1e-3)) throw new Error(`loss check failed: ${f} gives ${loss}, ours ${reference} (relative difference ${rel})`);
    }
  }

  const results: Record<string, { train?: number; forward?: number }> = {};
  for (const [f, k] of contenders) {
    status.textContent = `${f}: training...`;
    await k.prepareTraining();
    let t0 = now();
    for (let i = 0; i < warmup; i++) await k.trainStep();
    await k.drain();
    const warmupMs = now() - t0;
    t0 = now();
    for (let i = 0; i < steps; i++) await k.trainStep();
    await k.drain();
    const stepMs = (now() - t0) / steps;
    (results[f] ??= {}).train = (1000 * batch) / stepMs;
    emit({ case: 'train', framework: f, params: k.params, images_per_s: +((1000 * batch) / stepMs).toFixed(3), ms_per_step: Math.round(stepMs), steps, warmup_steps: warmup, warmup_ms: Math.round(warmupMs) });

    status.textContent = `${f}: forward...`;
    t0 = now();
    k.forward(); // warm-up (compiles the forward alone where a framework compiles)
    await k.drain();
    const forwardWarmupMs = now() - t0;
    t0 = now();
    for (let i = 0; i < forwardPasses; i++) k.forward();
    await k.drain();
    const passMs = (now() - t0) / forwardPasses;
    results[f].forward = (1000 * batch) / passMs;
    emit({ case: 'forward', framework: f, params: k.params, images_per_s: +((1000 * batch) / passMs).toFixed(3), ms_per_pass: Math.round(passMs), passes: forwardPasses, warmup_passes: 1, warmup_ms: Math.round(forwardWarmupMs) });
  }
  // Ratios within this run (the load of the machine changes between runs).
  const o = results.ours;
  if (o) {
    for (const [f, r] of Object.entries(results)) {
      if (f === 'ours') continue;
      emit({ case: 'ratio', framework: f, ours_over_framework_train: r.train && o.train ? +(o.train / r.train).toFixed(3) : null, ours_over_framework_forward: r.forward && o.forward ? +(o.forward / r.forward).toFixed(3) : null });
    }
  }
  for (const k of contenders.values()) k.dispose();
  if (!contenders.has('ours')) ours.dispose();
  status.textContent = 'done';
  document.body.dataset.done = '1';
}

main().catch((error: unknown) => {
  status.textContent = `benchmark failed: ${(error as Error).message}`;
  emit({ error: (error as Error).message, stack: (error as Error).stack?.split('\n').slice(0, 6).join(' | ') });
  document.body.dataset.done = '1';
});

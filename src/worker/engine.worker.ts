// The engine worker: owns the WebGPU device and the engine, and serves EngineApi over comlink.
// Only this side of the worker boundary imports src/gpu and src/engine.
import * as Comlink from 'comlink';
import { GpuContext } from '../gpu/context';
import { acquireDevice, WebGpuUnavailableError } from '../gpu/device';
import { add, exp, fromArray, initEngine, mul, setConvVariants, sum, tidyAsync } from '../engine';
import type { EngineApi, ImageBatch, OpCheck, ProbeResult, ReconstructionRow, SampleResult } from './api';
import { FAMILIES } from './families';
import { Lab } from './lab';

// Inputs of the smoke-test op: small, with negative, zero and fractional values.
const A = [1, 2, 3, 4, 5, 6];
const B = [0, 0.5, -1, 1, -0.5, 2];
const SHAPE = [2, 3];
/** float32 has ~7 significant digits; exp on GPUs is allowed a few ulp more. */
const TOLERANCE = 1e-5;

let context: Promise<GpuContext> | null = null;
const lab = new Lab();

function gpuContext(): Promise<GpuContext> {
  context ??= (async () => {
    const gpu = (self.navigator as Navigator & { gpu?: GPU }).gpu;
    const ctx = new GpuContext(await acquireDevice(gpu));
    initEngine(ctx);
    lab.attach(ctx);
    return ctx;
  })();
  return context;
}

function relativeError(got: number, want: number): number {
  return Math.abs(got - want) / Math.max(Math.abs(want), 1);
}

/** y = a * exp(b) + b element-wise, then sum(y): exercises unary, binary and reduction kernels. */
async function runOpCheck(ctx: GpuContext): Promise<OpCheck> {
  const started = performance.now();
  const { values, total } = await tidyAsync(async () => {
    const a = fromArray(A, SHAPE);
    const b = fromArray(B, SHAPE);
    const y = add(mul(a, exp(b)), b);
    const s = sum(y);
    const [yData, sData] = await Promise.all([y.data(), s.data()]);
    return { values: Array.from(yData), total: sData[0] };
  });
  ctx.checkHealth();
  const milliseconds = performance.now() - started;

  const expectedValues = A.map((a, i) => a * Math.exp(B[i]) + B[i]);
  const expectedTotal = expectedValues.reduce((s, v) => s + v, 0);
  const maxRelativeError = Math.max(
    relativeError(total, expectedTotal),
    ...values.map((v, i) => relativeError(v, expectedValues[i])),
  );
  return {
    expression: 'y = a · exp(b) + b,  total = Σ y',
    inputs: { a: A, b: B },
    values,
    total,
    expected: { values: expectedValues, total: expectedTotal },
    maxRelativeError,
    matches: maxRelativeError <= TOLERANCE,
    milliseconds,
  };
}

/** Hands pixel arrays over without copying them (comlink transfer lists). */
function buffersOf(...batches: ImageBatch[]): ArrayBuffer[] {
  return batches.map((b) => b.pixels.buffer as ArrayBuffer);
}

function transferSample(result: SampleResult): SampleResult {
  return Comlink.transfer(result, buffersOf(result.images, ...(result.probs ? [result.probs] : [])));
}

function transferRows(rows: ReconstructionRow[]): ReconstructionRow[] {
  return Comlink.transfer(rows, rows.flatMap((r) => buffersOf(r.input, r.samples)));
}

const api: EngineApi = {
  async probe(): Promise<ProbeResult> {
    const gpu = (self.navigator as Navigator & { gpu?: GPU }).gpu;
    if (!gpu) {
      return {
        kind: 'unavailable',
        reason: 'no-navigator-gpu',
        message: 'navigator.gpu is not defined in this browser (or not in a secure context).',
      };
    }
    try {
      const ctx = await gpuContext();
      const op = await runOpCheck(ctx);
      const { vendor, architecture, device, description, isFallbackAdapter } = ctx.adapter;
      return { kind: 'ready', adapter: { vendor, architecture, device, description, isFallbackAdapter }, op };
    } catch (error) {
      context = null; // let a retry start from scratch
      if (error instanceof WebGpuUnavailableError) {
        return { kind: 'unavailable', reason: 'no-adapter', message: error.message };
      }
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      return { kind: 'error', message };
    }
  },
  async families() {
    return FAMILIES;
  },
  describe: (setup) => lab.describe(setup),
  create: (setup, onStatus) => lab.create(setup, onStatus),
  train: (options, onEvent) => lab.train(options, onEvent),
  pause: () => lab.pause(),
  reset: () => lab.reset(),
  sample: async (request, onCompile) => transferSample(await lab.sample(request, onCompile)),
  reconstructTest: async (options) => transferRows(await lab.reconstructTest(options)),
  reconstructUploads: async (files, options) => {
    const result = await lab.reconstructUploads(files, options);
    return Comlink.transfer(result, result.rows.flatMap((r) => buffersOf(r.input, r.samples)));
  },
  latent: async (options, onProgress) => {
    const result = await lab.latent(options, onProgress);
    return Comlink.transfer(result, [result.points.buffer as ArrayBuffer, result.labels.buffer as ArrayBuffer]);
  },
  decodeLatent: async (z, options) => transferSample(await lab.decodeLatent(z, options)),
  loadColourFiles: (files, size, onProgress) => lab.loadColourFiles(files, size, onProgress),
  evaluate: (options, onProgress) => lab.evaluate(options, onProgress),
  checkpoint: async () => lab.checkpoint(),
  openCheckpoint: (bytes, name, options) => lab.openCheckpoint(bytes, name, options),
  autosaved: () => lab.autosaved(),
  restoreAutosave: () => lab.restoreAutosave(),
  clearAutosave: () => lab.clearAutosave(),
  earlierRuns: () => lab.earlierRuns(),
  restoreEarlier: (id) => lab.restoreEarlier(id),
  calibrate: () => lab.calibrate(),
  useConvVariants: async (choice) => setConvVariants(choice),
  stats: async () => lab.stats(),
  debugFault: (kind) => lab.debugFault(kind),
};

Comlink.expose(api);

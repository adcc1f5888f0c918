// The model zoo's pieces: float16 storage (scripts/zoo-lib.mjs writes it, src/io/safetensors.ts reads
// it, both checked against IEEE 754 by hand and exhaustively), zoo files that load into real models,
// the manifest's validation, and fetching with size and SHA-256 checks.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { float32ToHalf, halfToFloat, pairedDifference, readHeader, readPerImage, toZooFiles } from '../scripts/zoo-lib.mjs';
import { lastJsonLine, pythonExecutable, runPython, runTwinCli, tempDir } from './support/twin';
import { decodeSafetensors, halfToFloat32, type SafeTensor } from '../src/io/safetensors';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointConfigInput } from '../src/io/checkpoint';
import { tinyConfig } from '../src/models/config';
import { MnistModel } from '../src/models/mnist-model';
import { loadMnistCheckpoint, saveMnistCheckpoint } from '../src/models/mnist-checkpoint';
import { hierConfig } from '../src/models/hierarchical/config';
import { HierarchicalPixelVae } from '../src/models/hierarchical/model';
import { loadHierCheckpoint, saveHierCheckpoint } from '../src/models/hierarchical/checkpoint';
import { formatFigure, parseManifest, validateManifest, ZooError, type ZooEntry, type ZooManifest } from '../src/zoo/manifest';
import { checkZooBytes, decodeZooModel, fetchManifest, fetchZooModel, sha256Hex, type FetchLike } from '../src/zoo/load';
import { useGpu } from './support/gpu';
import { loadMnist } from '../src/data/mnist-node';
import { GpuMnist } from '../src/data/gpu-dataset';
import { loadColourData } from '../src/data/colour-node';
import { GpuColourSet } from '../src/data/colour-gpu';
import { evaluate } from '../src/models/trainer';
import { evaluateHier } from '../src/models/hierarchical/trainer';

const f32 = (shape: number[], fill: (i: number) => number): SafeTensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'F32', shape, data: Float32Array.from({ length: n }, (_, i) => fill(i)) };
};
const config: CheckpointConfigInput = {
  preset: 'mnist-conv-vae',
  sizes: { latentDim: 2 },
  step: 7,
  optimizer: { name: 'adam', step: 7 },
  data: { dataset: 'mnist', split: { train: 1, valid: 1, test: 1 } },
  seed: 1,
};

/** The half nearest to x (ties to the even bit pattern), by search over float64 values: the reference. */
function nearestHalf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  // 65520 = 65504 + half an ulp: from there on (ties go to the even "next" value, which is Inf) it overflows.
  if (a >= 65520) return sign | 0x7c00;
  let best = 0;
  let bestErr = Infinity;
  // The candidates: every finite positive half; a binary search on the monotone bit patterns.
  let lo = 0;
  let hi = 0x7bff;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (halfToFloat(mid) <= a) lo = mid;
    else hi = mid;
  }
  for (const c of [lo, hi]) {
    const err = Math.abs(halfToFloat(c) - a);
    if (err < bestErr || (err === bestErr && (c & 1) === 0)) {
      best = c;
      bestErr = err;
    }
  }
  return sign | best;
}

describe('float16 storage', () => {
  it('widens every half bit pattern exactly, in the TS reader and the script alike', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const wide = halfToFloat32(all);
    for (let h = 0; h < 65536; h++) {
      const v = halfToFloat(h);
      if (Number.isNaN(v)) expect(wide[h]).toBeNaN();
      else expect(Object.is(wide[h], Math.fround(v)) && wide[h] === v).toBe(true);
    }
    expect([wide[0x3c00], wide[0x7bff], wide[0x0001], wide[0x8000], wide[0xfc00]]).toEqual([1, 65504, 2 ** -24, -0, -Infinity]);
  });

  it('rounds float32 to the nearest half, ties to even (every half round-trips; random, tie and edge values match the reference)', () => {
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(halfToFloat(h))) continue;
      expect(float32ToHalf(halfToFloat(h))).toBe(h);
    }
    const cases = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e9, -1e9, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -26, 1e-10, 6.1035156e-5, 6.097555e-5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 0.1, 1 / 3];
    let seed = 12345;
    const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 20000; i++) cases.push(Math.fround((rnd() - 0.5) * 2 ** (Math.floor(rnd() * 44) - 28)));
    // Exact midpoints between neighbouring halves (where ties-to-even decides).
    for (let i = 0; i < 2000; i++) {
      const h = 1 + Math.floor(rnd() * 0x7bfe);
      cases.push((halfToFloat(h) + halfToFloat(h + 1)) / 2);
    }
    for (const x of cases) expect(float32ToHalf(Math.fround(x)), `x = ${x}`).toBe(nearestHalf(Math.fround(x)));
    expect(float32ToHalf(NaN) & 0x7c00).toBe(0x7c00);
  });

  it('zoo files: optimizer moments dropped, F32 stored as F16, other dtypes kept, the rounded F32 twin holds the same values', () => {
    const params = { w: f32([3, 5], (i) => Math.sin(i) * 3.7), b: f32([4], (i) => i / 7), idx: { dtype: 'U32' as const, shape: [2], data: Uint32Array.from([7, 9]) } };
    const optim = { 'm/w': f32([3, 5], () => 1e-3), 'v/w': f32([3, 5], () => 1e-6) };
    const bytes = encodeCheckpoint({ config, params, optim });
    const z = toZooFiles(bytes, 'ck');
    expect(z.dropped).toBe(2);
    expect(z.tensors).toBe(3);
    expect(z.values).toBe(19);
    const dataBytes = (b: Uint8Array): number => b.length - readHeader(b).dataStart;
    expect(dataBytes(z.f16)).toBe(2 * 15 + 2 * 4 + 4 * 2);
    expect(dataBytes(z.roundedF32)).toBe(4 * 15 + 4 * 4 + 4 * 2);
    expect(Object.fromEntries(Object.entries(readHeader(z.f16).header).map(([k, v]) => [k, v.dtype]))).toEqual({ w: 'F16', b: 'F16', idx: 'U32' });
    const half = decodeCheckpoint(z.f16, 'zoo.safetensors');
    const rounded = decodeCheckpoint(z.roundedF32, 'rounded.safetensors');
    expect(half.config).toEqual(decodeCheckpoint(bytes).config);
    expect(half.optim.size).toBe(0);
    for (const name of ['w', 'b']) {
      const t = half.params.get(name)!;
      expect(t.dtype).toBe('F32');
      expect(t.stored).toBe('F16');
      expect(Array.from(t.data)).toEqual(Array.from(rounded.params.get(name)!.data));
      const original = params[name as 'w' | 'b'].data;
      t.data.forEach((v, i) => expect(Math.abs(v - original[i])).toBeLessThanOrEqual(Math.abs(original[i]) * 2 ** -11 + 2 ** -25));
    }
    expect(Array.from(half.params.get('idx')!.data)).toEqual([7, 9]);
    expect(() => toZooFiles(encodeCheckpoint({ config, params: { w: f32([2], () => 7e4) } }), 'big')).toThrow(/'w' value 70000 at index 0 does not fit float16/);
    expect(() => decodeSafetensors(z.f16.subarray(0, z.f16.length - 1))).toThrow(/1 bytes after|run past the end/);
  });

  describe('zoo files load into real models', () => {
    beforeAll(async () => {
      await useGpu();
    });

    it('an MNIST model (weight-normed PixelVAE) and a hierarchical one (with batch-norm buffers)', async () => {
      const model = new MnistModel(tinyConfig('gated-pixelvae-cond', { latentDim: 2 }));
      const bytes = await saveMnistCheckpoint(model, { step: 3, seed: 1, batchSize: 4, lr: 1e-3, clipValue: 1, binarizationSeed: 2017 });
      const z = toZooFiles(bytes);
      const { model: loaded, checkpoint } = loadMnistCheckpoint(z.f16, 'mnist.safetensors');
      expect(checkpoint.config.step).toBe(3);
      const want = decodeCheckpoint(z.roundedF32);
      for (const [name, t] of loaded.params.entriesList()) expect(Array.from(await t.data()), name).toEqual(Array.from(want.params.get(name)!.data));
      model.dispose();
      loaded.dispose();

      const hier = new HierarchicalPixelVae(hierConfig('tiny'));
      const hb = await saveHierCheckpoint(hier, { step: 2, seed: 1, batchSize: 4, lr: 1e-3, data: 'test', trainImages: 1, heldOutImages: 1 });
      const hz = toZooFiles(hb);
      const { model: hl } = loadHierCheckpoint(hz.f16, 'hier.safetensors');
      const hw = decodeCheckpoint(hz.roundedF32);
      for (const [name, t] of hl.stateTensors()) expect(Array.from(await t.data()), name).toEqual(Array.from(hw.params.get(name)!.data));
      hier.dispose();
      hl.dispose();
    });
  });
});

// Figure 4's depth sweep compares a PixelVAE and a PixelCNN on the same test images: zoo-eval.py keeps
// each image's -ELBO (--per-image) and results.mjs takes the mean difference and its standard error.
describe('paired figures of the depth sweep', () => {
  it('the paired difference: mean and standard error as the float64 reference computes them from the covariance', () => {
    let seed = 99;
    const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const n = 1237;
    // Correlated per-image figures, as two models' NLLs are: a shared difficulty plus each model's own part.
    const hard = Array.from({ length: n }, () => 60 + 80 * rnd());
    const a = Float64Array.from(hard, (h) => h + 3 * rnd() - 0.5);
    const b = Float64Array.from(hard, (h) => h + 3 * rnd());
    const mean = (x: ArrayLike<number>): number => Array.from(x).reduce((s, v) => s + v, 0) / x.length;
    const cov = (x: ArrayLike<number>, y: ArrayLike<number>): number => {
      const [mx, my] = [mean(x), mean(y)];
      return Array.from(x).reduce((s, v, i) => s + (v - mx) * (y[i] - my), 0) / (x.length - 1);
    };
    const d = pairedDifference(a, b);
    expect(d.n).toBe(n);
    expect(d.value).toBeCloseTo(mean(a) - mean(b), 10);
    expect(d.stderr).toBeCloseTo(Math.sqrt((cov(a, a) + cov(b, b) - 2 * cov(a, b)) / n), 10);
    // The point of pairing: far below the two means' errors combined as if independent.
    expect(d.stderr).toBeLessThan(0.1 * Math.hypot(Math.sqrt(cov(a, a) / n), Math.sqrt(cov(b, b) / n)));
    expect(() => pairedDifference(a, b.subarray(1))).toThrow(/1237 images against 1236/);
    expect(() => pairedDifference([1], [2])).toThrow(/at least two/);
    expect(() => readPerImage(new Uint8Array(12), 'x.f64')).toThrow(/x.f64: 12 bytes is not a whole number/);
  });

  it('zoo-eval --per-image writes every test image\'s -ELBO, whose mean and spread are the figures it prints', { timeout: 300_000 }, async () => {
    const dir = tempDir('pixelvae-per-image-');
    try {
      await trainTinyTwin(dir.path);
      const file = dir.file('per-image.f64');
      const r = await runPython(['scripts/zoo-eval.py', '--checkpoint', dir.file('last.safetensors'), '--k', '1', '--limit', '23', '--batch', '10', '--per-image', file]);
      const out = lastJsonLine<{ images: number; neg_elbo: { mean: number; sd: number; stderr: number; n: number } }>(r.stdout);
      const values = readPerImage(new Uint8Array(readFileSync(file)), file);
      expect(out.images).toBe(23);
      expect(values.length).toBe(23);
      for (const v of values) expect(Number.isFinite(v) && v > 0).toBe(true);
      const mean = values.reduce((s, v) => s + v, 0) / values.length;
      const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1));
      expect(mean).toBeCloseTo(out.neg_elbo.mean, 9);
      expect(sd).toBeCloseTo(out.neg_elbo.sd, 9);
      // A model paired with itself differs by exactly nothing.
      expect(pairedDifference(values, values)).toEqual({ value: 0, stderr: 0, n: 23 });
    } finally {
      dir.remove();
    }
  });
});

/** Two steps of a tiny twin model with a latent (8x8 images): enough for the evaluation tests. */
async function trainTinyTwin(out: string): Promise<void> {
  await runTwinCli(['train', '--preset', 'gated-pixelvae-cond', '--image-size', '8', '--width', '4', '--layers', '1', '--latent', '2', '--filter', '3',
    '--input-filter', '3', '--output-width', '4', '--encoder-dims', '4,4,6,6', '--decoder-dims', '6,6,4', '--warmup', '1',
    '--steps', '2', '--batch', '8', '--train-limit', '64', '--valid-every', '0', '--valid-limit', '16', '--seed', '3', '--out', out]);
}

// How loose IS-NLL is at k = 10 (the page's k) against the paper's N = 5000: zoo-eval --ladder takes
// the first k of K samples for each k, so the estimates are nested and their differences paired.
describe('IS-NLL from the first k of K samples', () => {
  interface Stats { mean: number; sd: number; stderr: number; n: number }
  interface Eval { k: number; is_nll: Stats; neg_elbo: Stats; kl: Stats; ladder?: { k: number; is_nll: Stats; minus_largest: Stats }[] }

  it('each rung equals a separate run with that k, and running the samples in groups changes no figure', { timeout: 300_000 }, async () => {
    const dir = tempDir('pixelvae-ladder-');
    try {
      await trainTinyTwin(dir.path);
      const base = ['scripts/zoo-eval.py', '--checkpoint', dir.file('last.safetensors'), '--limit', '7', '--batch', '7', '--threads', '1'];
      const evalWith = async (extra: string[]): Promise<Eval> => lastJsonLine<Eval>((await runPython([...base, ...extra])).stdout);
      // 300 samples run as groups of 200 and 100 (the default --passes), or all at once.
      const grouped = await evalWith(['--k', '300', '--ladder', '1,10,100,300']);
      const whole = await evalWith(['--k', '300', '--ladder', '100,300,10,1', '--passes', '3000']);
      const [k1, k10, k100] = await Promise.all([evalWith(['--k', '1']), evalWith(['--k', '10']), evalWith(['--k', '100'])]);
      expect(grouped.ladder?.map((r) => r.k)).toEqual([1, 10, 100, 300]);
      for (const key of ['is_nll', 'neg_elbo', 'kl'] as const) expect(grouped[key].mean).toBeCloseTo(whole[key].mean, 4);
      grouped.ladder?.forEach((r, i) => {
        expect(r.is_nll.mean).toBeCloseTo(whole.ladder?.[i].is_nll.mean ?? NaN, 6);
        expect(r.minus_largest.n).toBe(7);
      });
      const [r1, r10, r100, r300] = grouped.ladder ?? [];
      // The nested draws: the first k samples of the K-sample run are the k-sample run's samples.
      expect(r1.is_nll.mean).toBeCloseTo(k1.is_nll.mean, 4);
      expect(r10.is_nll.mean).toBeCloseTo(k10.is_nll.mean, 4);
      expect(r100.is_nll.mean).toBeCloseTo(k100.is_nll.mean, 4);
      expect(r300.is_nll.mean).toBeCloseTo(grouped.is_nll.mean, 9);
      expect(r300.minus_largest).toMatchObject({ mean: 0, sd: 0 });
      expect(r10.minus_largest.mean).toBeCloseTo(r10.is_nll.mean - r300.is_nll.mean, 9);
      // One sample is the ELBO's estimate; more can only tighten the bound on average.
      expect(r1.is_nll.mean).toBeGreaterThan(r300.is_nll.mean);
      await expect(runPython([...base, '--k', '300', '--ladder', '1,10'])).rejects.toThrow(/--ladder needs .* its largest equal to --k/);
    } finally {
      dir.remove();
    }
  });
});

// The results page's Figure-4 claim rests on the sweep's -ELBO rows: the zoo checks each one against
// our own engine (the Node CLI on the float16 file, the same posterior draws), as it checks the shipped models.
describe('the depth sweep cross-checked by the Node CLI', () => {
  it('a sweep run\'s -ELBO from the Node CLI matches the twin\'s on the same images and draws', { timeout: 600_000 }, async () => {
    const dir = tempDir('pixelvae-zoo-sweep-');
    try {
      const env = { ...process.env, PIXELVAE_PYTHON: pythonExecutable(), OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1' };
      await promisify(execFile)(process.execPath, ['scripts/zoo.mjs', '--smoke', '--only', 'fig4-gated-pixelvae-l1', '--state', dir.file('state'), '--out', dir.file('out')],
        { env, timeout: 540_000, maxBuffer: 16 * 1024 * 1024 });
      const evaluation = JSON.parse(readFileSync(dir.file('state/fig4-gated-pixelvae-l1/eval.json'), 'utf8')) as {
        figures: { name: string; value: number; stderr: number; n: number }[];
        crossCheck?: { figure: string; n: number; k: number; value: number; twin: number; difference: number; agrees: boolean; engine: string };
      };
      const check = evaluation.crossCheck;
      expect(check).toMatchObject({ figure: '-ELBO', n: 4, k: 1, agrees: true });
      expect(check?.engine).toMatch(/^Node CLI \(WebGPU: /);
      // Two engines in float32 on the same weights and draws: far inside any standard error.
      expect(check?.difference).toBeLessThan(1e-3 * Math.abs(check?.twin ?? 0));
      expect(Math.abs((check?.value ?? NaN) - (check?.twin ?? NaN))).toBeCloseTo(check?.difference ?? NaN, 9);
      expect(evaluation.figures.find((f) => f.name === '-ELBO')?.n).toBe(20);
    } finally {
      dir.remove();
    }
  });
});

async function zooEntry(bytes: Uint8Array, over: Partial<ZooEntry> = {}): Promise<ZooEntry> {
  return {
    id: 'tiny-conv-vae',
    title: 'Tiny conv VAE',
    what: 'a conv VAE',
    shows: 'nothing much',
    family: 'mnist',
    preset: 'mnist-conv-vae',
    sizes: { latentDim: 2 },
    params: 19,
    file: 'tiny-conv-vae.safetensors',
    bytes: bytes.length,
    sha256: await sha256Hex(bytes),
    storage: 'F16',
    data: { name: 'mnist', description: 'MNIST' },
    training: { imagesSeen: 28, steps: 7, batchSize: 4, wallSeconds: 1.5, hardware: 'test', command: 'npm run zoo', runs: 1 },
    figures: [{ name: 'IS-NLL', value: 90.1234, unit: 'nats', stderr: 0.2512, n: 10000, k: 100, split: 'test', engine: 'twin' }],
    views: ['samples', 'latent', 'reconstruct'],
    ...over,
  };
}

describe('manifest', () => {
  let bytes: Uint8Array;
  let manifest: ZooManifest;
  beforeAll(async () => {
    bytes = toZooFiles(encodeCheckpoint({ config, params: { w: f32([3], (i) => i) } })).f16;
    manifest = { format: 'pixelvae-lab-zoo', version: 1, generated: '2026-12-02T12:00:00Z', command: 'npm run zoo', models: [await zooEntry(bytes)] };
  });

  it('accepts a valid manifest and the empty zoo', () => {
    expect(validateManifest(structuredClone(manifest)).models[0].id).toBe('tiny-conv-vae');
    expect(parseManifest(JSON.stringify({ ...manifest, models: [] })).models).toEqual([]);
    expect(formatFigure(manifest.models[0].figures[0])).toBe('90.12 ± 0.25 nats');
    expect(formatFigure({ ...manifest.models[0].figures[0], name: 'k-NN error', unit: 'fraction', value: 0.1234, stderr: 0.0033 })).toBe('12.3% ± 0.3%');
  });

  it('names every problem by its path', () => {
    const bad = structuredClone(manifest) as unknown as { models: Record<string, unknown>[] };
    const m = bad.models[0];
    m.file = '../secret.safetensors';
    m.sha256 = 'abc';
    m.views = ['levels', 'bogus'];
    (m.figures as Record<string, unknown>[])[0].stderr = -1;
    (m.training as Record<string, unknown>).command = '';
    m.data = { name: 'demo', description: 'x' };
    let text = '';
    try {
      validateManifest(bad);
    } catch (error) {
      expect(error).toBeInstanceOf(ZooError);
      text = (error as Error).message;
    }
    for (const want of [
      'models[0].file: must be a .safetensors file name next to the manifest',
      'models[0].sha256: must be 64 lower-case hex digits',
      "models[0].views: 'levels' needs a hierarchical model",
      'models[0].views: unknown view "bogus"',
      'models[0].figures[0].stderr: must be a finite number >= 0',
      'models[0].training.command: must be a non-empty string',
      "models[0].data.name: 'demo' is not data for a mnist model",
    ]) {
      expect(text).toContain(want);
    }
    const twice = structuredClone(manifest);
    twice.models.push(structuredClone(twice.models[0]));
    expect(() => validateManifest(twice)).toThrow(/'tiny-conv-vae' appears twice[\s\S]*is used twice/);
    expect(() => validateManifest({ ...manifest, format: 'x' })).toThrow(/not a model zoo manifest/);
    expect(() => validateManifest({ ...manifest, version: 2 })).toThrow(/newer PixelVAE Lab/);
    expect(() => parseManifest('{')).toThrow(/not valid JSON/);
    const latentOn16 = structuredClone(manifest);
    latentOn16.models[0].sizes = { latentDim: 16 };
    expect(() => validateManifest(latentOn16)).toThrow(/'latent' needs an MNIST model with a 2-D latent/);
  });

  it('fetches: no manifest is no zoo; a model is checked for size, hash, preset and F16 storage', async () => {
    const files: Record<string, { status: number; type: string; body: Uint8Array | string }> = {
      '/models/manifest.json': { status: 200, type: 'application/json', body: JSON.stringify(manifest) },
      '/models/tiny-conv-vae.safetensors': { status: 200, type: 'application/octet-stream', body: bytes },
    };
    const fetcher =
      (table: typeof files): FetchLike =>
      async (url) => {
        const f = table[url] ?? { status: 404, type: 'text/plain', body: '' };
        return {
          ok: f.status === 200,
          status: f.status,
          headers: new Headers({ 'content-type': f.type }),
          text: async () => (typeof f.body === 'string' ? f.body : new TextDecoder().decode(f.body)),
          arrayBuffer: async () => (typeof f.body === 'string' ? new TextEncoder().encode(f.body) : f.body.slice()).buffer as ArrayBuffer,
        };
      };
    const got = await fetchManifest('/', fetcher(files));
    expect(got?.models).toHaveLength(1);
    expect(await fetchManifest('/', fetcher({}))).toBeNull();
    expect(await fetchManifest('/', fetcher({ '/models/manifest.json': { status: 200, type: 'text/html', body: '<html>' } }))).toBeNull();
    await expect(fetchManifest('/', fetcher({ '/models/manifest.json': { status: 200, type: 'application/json', body: '{"format":"pixelvae-lab-zoo","version":1}' } }))).rejects.toThrow(
      /generated: must be a non-empty string/,
    );
    const entry = got!.models[0];
    const model = await fetchZooModel(entry, '/', fetcher(files));
    expect(decodeZooModel(entry, model).params.get('w')!.stored).toBe('F16');
    const flipped = bytes.slice();
    flipped[flipped.length - 1] ^= 1;
    await expect(checkZooBytes(entry, flipped)).rejects.toThrow(/SHA-256 .* does not match/);
    await expect(checkZooBytes(entry, bytes.subarray(1))).rejects.toThrow(/bytes, the manifest says/);
    await expect(fetchZooModel({ ...entry, file: 'gone.safetensors' }, '/', fetcher(files))).rejects.toThrow(/not found \(HTTP 404\)/);
    expect(() => decodeZooModel({ ...entry, preset: 'mnist-pixelcnn' }, model)).toThrow(/holds preset 'mnist-conv-vae', the manifest says 'mnist-pixelcnn'/);
    const wide = encodeCheckpoint({ config, params: { w: f32([3], (i) => i) } });
    expect(() => decodeZooModel(entry, wide)).toThrow(/stored as F32/);
  });
});

describe('the shipped zoo', () => {
  // public/models by default; PIXELVAE_ZOO_DIR checks another build of it (e.g. npm run zoo -- --smoke's output).
  const dir = process.env.PIXELVAE_ZOO_DIR ?? 'public/models';

  it('has a valid manifest whose files exist, match their size, hash and preset, store F16, and total under 25 MB', async () => {
    const manifest = parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'), join(dir, 'manifest.json'));
    let total = 0;
    for (const entry of manifest.models) {
      const path = join(dir, entry.file);
      expect(existsSync(path), `${path} (listed in the manifest)`).toBe(true);
      const bytes = new Uint8Array(readFileSync(path));
      await checkZooBytes(entry, bytes);
      const checkpoint = decodeZooModel(entry, bytes);
      expect(checkpoint.config.step * entry.training.batchSize).toBe(entry.training.imagesSeen);
      const params = [...checkpoint.params.values()].filter((t) => t.stored === 'F16').reduce((n, t) => n + t.data.length, 0);
      expect(params).toBe(entry.params);
      for (const f of entry.figures) if (f.name === 'IS-NLL') expect(f.k, `${entry.id}: IS-NLL needs its k`).toBeGreaterThan(0);
      total += bytes.length;
    }
    expect(total).toBeLessThan(25 * 2 ** 20);
  });

  // The manifest's figures come from the twin. Our WebGPU engine, reading the float16 file itself, must
  // (1) reproduce the zoo's cross-check exactly: the twin's value on the same first n test images with
  // the same k, batch and seed (so the same noise), to 0.01 nats; and (2) agree with the headline figure
  // (the twin on n' images) within three standard errors of an n-image mean, the spread per image taken
  // from the figure (sd = se * sqrt(n')). Fixed images and noise: the result is the same on every run.
  const shippedModels = existsSync(join(dir, 'manifest.json')) ? parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'), 'manifest').models : [];
  const mnistModels = shippedModels.filter((e) => e.family === 'mnist' && e.figures.some((f) => f.name === 'IS-NLL'));
  it.runIf(mnistModels.length > 0)('each MNIST model: our engine reproduces the twin on the cross-check images, and the IS-NLL within 3 standard errors', async () => {
    await useGpu();
    const mnist = GpuMnist.upload(await loadMnist());
    try {
      for (const entry of mnistModels) {
        const f = entry.figures.find((x) => x.name === 'IS-NLL')!;
        const check = entry.crossCheck;
        expect(check, `${entry.id}: the manifest has no cross-check`).toBeTruthy();
        const n = check!.n;
        const { model } = loadMnistCheckpoint(new Uint8Array(readFileSync(join(dir, entry.file))), entry.file);
        const r = await evaluate(model, mnist.get('test'), { k: check!.k ?? f.k!, batchSize: 100, seed: 1, limit: n });
        model.dispose();
        expect(Math.abs(r.nll - check!.twin), `${entry.id}: engine ${r.nll} vs the twin ${check!.twin} on the same ${n} images and draws`).toBeLessThan(0.01);
        const tol = (3 * f.stderr * Math.sqrt(f.n)) / Math.sqrt(n);
        if (check!.k === f.k) expect(Math.abs(r.nll - f.value), `${entry.id}: ${r.nll.toFixed(3)} on ${n} images vs the manifest's ${f.value.toFixed(3)} on ${f.n} (tolerance ${tol.toFixed(3)})`).toBeLessThanOrEqual(tol);
      }
    } finally {
      mnist.dispose();
    }
  }, 600_000);
  const hierModels = shippedModels.filter((e) => e.family === 'hierarchical' && e.figures.some((f) => f.name === 'bits/dim'));
  it.runIf(hierModels.length > 0)('each hierarchical model: our engine on 20 held-out images agrees with its bits/dim within 3 standard errors', async () => {
    await useGpu();
    const M = 20;
    for (const entry of hierModels) {
      const f = entry.figures.find((x) => x.name === 'bits/dim')!;
      const split = await loadColourData([entry.data.name === 'colour-mnist' ? 'colour-mnist' : 'demo'], { size: 32, heldOut: 0.1, splitSeed: 2017 });
      const set = GpuColourSet.upload(split.heldOut);
      const { model } = loadHierCheckpoint(new Uint8Array(readFileSync(join(dir, entry.file))), entry.file);
      const r = await evaluateHier(model, set, { batchSize: M, seed: 1, limit: M });
      model.dispose();
      set.dispose();
      const tol = (3 * f.stderr * Math.sqrt(f.n)) / Math.sqrt(M);
      expect(Math.abs(r.bitsPerDim - f.value), `${entry.id}: ${r.bitsPerDim.toFixed(4)} bits/dim on ${M} images vs the manifest's ${f.value.toFixed(4)} (tolerance ${tol.toFixed(4)})`).toBeLessThanOrEqual(tol);
    }
  }, 600_000);
});

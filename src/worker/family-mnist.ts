// The binarized-MNIST family (the paper's Table 1 models) for the lab: the MNIST data (fetched once,
// resized per image size, binarized), MnistModel with its trainer, sampling with a held latent or
// pixel noise, reconstructions of test images and uploads, the latent space and the IS-NLL.
import * as E from '../engine';
import { GpuMnist } from '../data/gpu-dataset';
import { BINARIZATION_STREAM, DEFAULT_BINARIZATION_SEED, binarizeSet, describeMnistData, splitMnist, type ImageSet, type MnistSplit } from '../data/mnist';
import { binarize, preprocessImage, resizeSet, type RgbaImage } from '../data/preprocess';
import type { Checkpoint, JsonValue } from '../io/checkpoint';
import type { MnistModelConfig, MnistPreset } from '../models/config';
import { MnistModel } from '../models/mnist-model';
import { configFromCheckpoint, loadInto, saveMnistCheckpoint } from '../models/mnist-checkpoint';
import { MnistTrainer, evaluate } from '../models/trainer';
import { embed, knnError } from '../models/latent';
import type { DataInfo, EvalOptions, EvalResult, History, LatentResult, ModelSummary, ReconstructionRow, SampleRequest, SampleResult, Setup, UploadResult, UploadedFile, ValidPoint } from './api';
import { LazyDriver, LazySession, type PendingData, type Prepared } from './family-base';
import { findPreset, fullSizes, mnistConfigOf, setupOfMnistConfig } from './families';
import { loadMnistFiles } from './mnist-download';
import { decodeUpload } from './images';
import { project2d } from './projection';
import { batchOf, message, savedHistory, type FamilyDriver, type FamilySession, type Progress, type Reading } from './session';

const MNIST_URL = 'data/mnist/';
const CLIP_VALUE = 1;

interface Data {
  size: number;
  gpu: GpuMnist;
  /** The fixed binarization of the test split on the CPU (shown as reconstruction inputs). */
  testBits: ImageSet;
  info: DataInfo;
}

type MnistPrepared = Prepared<Data, MnistTrainer>;

/**
 * Dispatches of one MNIST training step counted on the engine (batch 8, the third step, KL on) for
 * each preset at two sizes: [parameter tensors, dispatches] at the tiny setup (TINY_SIZES: 1 PixelCNN
 * layer) and at the paper sizes. Each layer costs a fixed number of dispatches (forward and both
 * gradients; weight norm, the z conditioning, the latent's sample and KL, and Adam are one dispatch
 * each way whatever the layer count), so a setup's count is the line through its preset's two points in its parameter-tensor
 * count P (batch size barely matters). test/trust-app.test.ts holds it to counts measured on the
 * engine; remeasure when the engine's dispatches change.
 */
const DISPATCH_POINTS: Record<MnistPreset, [[number, number], [number, number]]> = {
  'conv-vae': [[54, 134], [54, 140]],
  pixelcnn: [[15, 46], [48, 123]],
  'gated-pixelcnn': [[33, 66], [165, 275]],
  pixelvae: [[66, 162], [99, 245]],
  'gated-pixelvae': [[84, 185], [216, 400]],
  'gated-pixelvae-cond': [[90, 128], [354, 351]],
};

export function mnistDispatchesPerStep(preset: MnistPreset, paramTensors: number): number {
  const [[p0, d0], [p1, d1]] = DISPATCH_POINTS[preset];
  // conv-vae's size changes move the image size, not the layer count: its two points share P.
  const slope = p1 === p0 ? 0 : (d1 - d0) / (p1 - p0);
  return Math.max(1, Math.round((p1 === p0 ? (d0 + d1) / 2 : d0) + slope * (paramTensors - p0)));
}

function summarize(setup: Setup, config: MnistModelConfig, model: MnistModel): ModelSummary {
  const preset = findPreset('mnist', config.preset)!;
  return {
    setup,
    sizes: fullSizes(setup),
    params: model.params.count(),
    flopsPerImage: 2 * model.macsPerImage(),
    dispatchesPerStep: mnistDispatchesPerStep(config.preset, model.params.entriesList().length),
    imageSize: config.imageSize,
    hasLatent: model.hasLatent,
    latentDim: config.latentDim,
    autoregressive: model.isAutoregressive,
    noiseLevels: preset.noiseLevels,
    unit: 'nats',
    channels: 1,
  };
}

export class MnistDriver extends LazyDriver<MnistModelConfig, MnistModel, Data, MnistTrainer, MnistSession> implements FamilyDriver {
  readonly id = 'mnist' as const;
  readonly prewarmed = new Set<string>();
  protected readonly presetPrefix = 'mnist-';
  protected readonly maxBatch = 1000;
  private raw: MnistSplit | null = null;
  private rawLoading: Promise<MnistSplit> | null = null;
  private data: Data | null = null;

  constructor(private readonly sync: () => Promise<void>) {
    super();
  }

  private async rawMnist(onStatus?: (m: string) => void): Promise<MnistSplit> {
    if (this.raw) return this.raw;
    this.rawLoading ??= (async () => {
      const base = new URL(`${import.meta.env.BASE_URL}${MNIST_URL}`, (self as unknown as { location: Location }).location.origin);
      const files = await loadMnistFiles(base, onStatus);
      onStatus?.('Parsing MNIST…');
      const split = splitMnist(files);
      this.raw = split;
      return split;
    })();
    try {
      return await this.rawLoading;
    } catch (error) {
      this.rawLoading = null;
      throw error;
    }
  }

  private async ensureData(size: number, onStatus?: (m: string) => void): Promise<Data> {
    if (this.data && this.data.size === size) return this.data;
    const t0 = performance.now();
    const raw = await this.rawMnist(onStatus);
    if (size !== raw.train.height) onStatus?.(`Resizing 70,000 digits to ${size}x${size}…`);
    const split: MnistSplit = { train: resizeSet(raw.train, size), valid: resizeSet(raw.valid, size), test: resizeSet(raw.test, size) };
    onStatus?.('Binarizing validation and test sets and uploading to the GPU…');
    const seed = DEFAULT_BINARIZATION_SEED;
    const gpu = GpuMnist.upload(split, seed);
    const testBits = binarizeSet(split.test, seed, BINARIZATION_STREAM.test);
    await this.sync();
    this.data?.gpu.dispose();
    const description = describeMnistData(seed) + (size !== 28 ? `; images area-averaged to ${size}x${size}` : '');
    const info: DataInfo = { description, imageSize: size, train: split.train.count, valid: split.valid.count, test: split.test.count, loadMs: performance.now() - t0 };
    this.data = { size, gpu, testBits, info };
    return this.data;
  }

  protected configOf(setup: Setup): MnistModelConfig {
    return mnistConfigOf(setup);
  }

  protected configFromCheckpoint(checkpoint: Checkpoint): MnistModelConfig {
    return configFromCheckpoint(checkpoint);
  }

  protected newModel(config: MnistModelConfig): MnistModel {
    return new MnistModel(config);
  }

  summarize(setup: Setup, config: MnistModelConfig, model: MnistModel): ModelSummary {
    return summarize(setup, config, model);
  }

  protected words(c: MnistModelConfig): string {
    return `an MNIST ${c.preset} model (${c.imageSize}x${c.imageSize}, latent ${c.latentDim}, ${c.pixelLayers} PixelCNN layers)`;
  }

  protected dataFor(_setup: Setup, config: MnistModelConfig, onStatus?: (m: string) => void): Promise<Data> {
    return this.ensureData(config.imageSize, onStatus);
  }

  protected newTrainer(setup: Setup, model: MnistModel, data: Data): MnistTrainer {
    if (setup.batchSize > data.gpu.train.count) throw new Error(`batch size ${setup.batchSize} exceeds the ${data.gpu.train.count} training images`);
    return new MnistTrainer(model, data.gpu.train, { batchSize: setup.batchSize, lr: setup.lr, clipValue: CLIP_VALUE, seed: setup.seed });
  }

  protected loadCheckpoint(model: MnistModel, checkpoint: Checkpoint, trainer?: MnistTrainer): void {
    loadInto(model, checkpoint, trainer);
  }

  protected newSession(setup: Setup, config: MnistModelConfig, model: MnistModel, source: MnistPrepared | PendingData<MnistPrepared>): MnistSession {
    return new MnistSession(this, setup, config, model, source);
  }

  /** Before MNIST is loaded at the checkpoint's size: resized, binarized and uploaded when first needed. */
  private pendingSession(setup: Setup, config: MnistModelConfig, checkpoint: Checkpoint): MnistSession {
    const split = checkpoint.config.data.split;
    const size = config.imageSize;
    const info: DataInfo = {
      description: describeMnistData(DEFAULT_BINARIZATION_SEED) + (size !== 28 ? `; images area-averaged to ${size}x${size}` : '') + ' (loaded when first needed)',
      imageSize: size,
      train: Number(split.train ?? 0),
      valid: Number(split.valid ?? 0),
      test: Number(split.test ?? 0),
      loadMs: 0,
    };
    return this.buildPending(setup, config, checkpoint, info, () => this.ensureData(size));
  }

  async open(checkpoint: Checkpoint, setupHint: Setup | null, history: History | null): Promise<{ session: FamilySession; note?: string }> {
    const config = configFromCheckpoint(checkpoint);
    const run = {
      seed: checkpoint.config.seed,
      batchSize: Number(checkpoint.config.optimizer.batchSize ?? 16),
      lr: Number(checkpoint.config.optimizer.lr ?? 1e-3),
    };
    const { setup, exact } = setupOfMnistConfig(config, run);
    const chosen = setupHint ?? setup;
    // A file the user opens (a zoo model, a checkpoint) does not wait for MNIST at a size not loaded
    // yet: it is loaded when first needed. A saved run restored on page load (setupHint) loads it
    // first, as a new model does, before the lab is ready: left for later, it would hold up the
    // user's first action.
    const session =
      setupHint || this.data?.size === config.imageSize
        ? this.build(chosen, config, await this.ensureData(config.imageSize), checkpoint)
        : this.pendingSession(chosen, config, checkpoint);
    session.history = savedHistory(checkpoint, history, checkpoint.config.step);
    return { session, note: exact ? undefined : 'The checkpoint’s encoder widths do not follow the w, w, 2w, 2w pattern the page edits; its sizes are shown approximately.' };
  }
}

const MNIST_WORDS = { notReady: 'MNIST is still loading; try again in a moment.', closed: 'the model was closed while its data was loading' };

export class MnistSession extends LazySession<MnistModel, Data, MnistTrainer> implements FamilySession {
  readonly family = 'mnist' as const;
  summary: ModelSummary;

  constructor(
    readonly driver: MnistDriver,
    setup: Setup,
    readonly config: MnistModelConfig,
    model: MnistModel,
    source: MnistPrepared | PendingData<MnistPrepared>,
  ) {
    super(setup, model, source, MNIST_WORDS);
    this.summary = summarize(setup, config, model);
  }

  async prewarmValidation(batch: number, onProgress: Progress): Promise<void> {
    await this.prewarmEval(this, batch, onProgress);
  }

  async readMetrics(): Promise<Reading> {
    const m = await (await this.ready()).trainer.readMetrics();
    return { steps: m.steps, values: { loss: m.loss, reconstruction: m.reconstruction, kl: m.kl, klWeight: this.model.klWeight(this.trainer.step) } };
  }

  async validate(limit: number, batch: number): Promise<ValidPoint> {
    await this.ready();
    const result = await evaluate(this.model, this.d.gpu.valid, { k: 1, batchSize: batch, seed: this.setup.seed, limit });
    return { step: this.trainer.step, negElbo: result.negElbo, reconstruction: result.reconstruction, kl: result.kl, images: result.images };
  }

  async save(extra: { [key: string]: JsonValue }): Promise<Uint8Array> {
    if (this.saveNeedsTrainer()) await this.ready();
    const run = { step: this.step, seed: this.setup.seed, batchSize: this.setup.batchSize, lr: this.setup.lr, clipValue: CLIP_VALUE, binarizationSeed: DEFAULT_BINARIZATION_SEED };
    return saveMnistCheckpoint(this.model, { ...run, extra }, this.prepared?.trainer);
  }

  fileName(step: number): string {
    return `pixelvae-${this.setup.preset}-${this.config.imageSize}px-step${step}.safetensors`;
  }

  async sample(request: SampleRequest, onCompile?: Progress): Promise<SampleResult> {
    const s = this;
    const n = request.count;
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`sample count must be 1 to 256 (got ${n})`);
    return (async () => {
      await this.prewarmSample(s, n, onCompile);
      const t0 = performance.now();
      const size = s.config.imageSize;
      const zd = s.config.latentDim;
      const seedOf = (level: string): number => request.seeds[level] ?? 1;
      const [images, probs] = await E.tidyAsync(async () => {
        let z: E.Tensor | null = null;
        if (s.model.hasLatent) {
          z = request.hold.latent ? E.expand(E.randomNormal([1, zd], seedOf('latent'), [0, 1]), [n, zd]) : E.randomNormal([n, zd], seedOf('latent'), [0, 1]);
        }
        const uniforms = request.hold.pixel
          ? E.expand(E.randomUniform([1, 1, size, size], seedOf('pixel'), [0, 2]), [n, 1, size, size])
          : E.randomUniform([n, 1, size, size], seedOf('pixel'), [0, 2]);
        const out = s.model.sample(z, uniforms);
        return Promise.all([out.images.data(), out.probs.data()]);
      });
      return { images: batchOf(images as Float32Array, n, size), probs: batchOf(probs as Float32Array, n, size), milliseconds: performance.now() - t0 };
    })();
  }

  /** Sampled reconstructions of binarized inputs: `perImage` draws of z ~ q(z|x) each, one pixel sample per draw. */
  private async reconstruct(s: MnistSession, inputs: Float32Array[], perImage: number, seed: number): Promise<Float32Array> {
    if (!s.model.hasLatent) throw new Error(`${findPreset('mnist', s.config.preset)?.label ?? s.config.preset} has no latent code, so it cannot reconstruct an image; choose a VAE or PixelVAE preset.`);
    const n = inputs.length;
    const size = s.config.imageSize;
    const plane = size * size;
    await this.prewarmSample(s, n * perImage);
    const x = new Float32Array(n * plane);
    inputs.forEach((p, i) => x.set(p, i * plane));
    return (await E.tidyAsync(async () => {
      const xt = E.fromArray(x, [n, 1, size, size]);
      const { mu, logSigma } = E.noGrad(() => s.model.encode(xt));
      const zd = s.config.latentDim;
      const eps = E.randomNormal([perImage, n, zd], seed, [0, 3]);
      const z = E.noGrad(() => E.add(mu.view([1, n, zd]), E.mul(eps, E.exp(logSigma).view([1, n, zd])))).view([perImage * n, zd]);
      const uniforms = E.randomUniform([perImage * n, 1, size, size], seed, [0, 4]);
      return s.model.sample(z, uniforms).images.data();
    })) as Float32Array;
  }

  private rows(labels: string[], notes: string[], inputs: Float32Array[], samples: Float32Array, perImage: number, size: number): ReconstructionRow[] {
    const plane = size * size;
    const n = inputs.length;
    return inputs.map((input, i) => {
      const own = new Float32Array(perImage * plane);
      for (let k = 0; k < perImage; k++) own.set(samples.subarray((k * n + i) * plane, (k * n + i + 1) * plane), k * plane);
      return { label: labels[i], note: notes[i], input: batchOf(input, 1, size), samples: batchOf(own, perImage, size) };
    });
  }

  async reconstructTest(options: { count: number; samples: number; seed: number; offset: number }): Promise<ReconstructionRow[]> {
    await this.ready();
    const s = this;
    const data = this.d;
    const size = s.config.imageSize;
    const plane = size * size;
    const count = Math.max(1, Math.min(options.count, 32));
    const perImage = Math.max(1, Math.min(options.samples, 16));
    const start = ((options.offset % data.testBits.count) + data.testBits.count) % data.testBits.count;
    const inputs: Float32Array[] = [];
    const labels: string[] = [];
    for (let i = 0; i < count; i++) {
      const index = (start + i) % data.testBits.count;
      const pixels = new Float32Array(plane);
      for (let k = 0; k < plane; k++) pixels[k] = data.testBits.images[index * plane + k];
      inputs.push(pixels);
      labels.push(`test #${index} (digit ${data.testBits.labels[index]})`);
    }
    return (async () => {
      const samples = await this.reconstruct(s, inputs, perImage, options.seed);
      return this.rows(labels, labels.map(() => 'fixed binarization of the test split'), inputs, samples, perImage, size);
    })();
  }

  async reconstructUploads(files: UploadedFile[], options: { samples: number; seed: number }): Promise<UploadResult> {
    const s = this;
    const size = s.config.imageSize;
    const perImage = Math.max(1, Math.min(options.samples, 16));
    const errors: { name: string; message: string }[] = [];
    const inputs: Float32Array[] = [];
    const labels: string[] = [];
    const notes: string[] = [];
    if (files.length > 32) errors.push({ name: `${files.length - 32} more files`, message: 'at most 32 images at once; the rest were skipped' });
    for (const file of files.slice(0, 32)) {
      let image: RgbaImage & { originalWidth: number; originalHeight: number };
      try {
        // Fitted whole into a square (padded): a very long strip would shrink to a gray line.
        image = await decodeUpload(file, { maxAspect: 4 });
      } catch (error) {
        errors.push({ name: file.name, message: message(error) });
        continue;
      }
      try {
        const margin = Math.max(0, Math.round((size * 4) / 28));
        const pre = preprocessImage(image, { size, margin: 2 * margin < size ? margin : 0 });
        const bits = binarize(pre.pixels, { threshold: 0.5 });
        const on = bits.reduce((n, v) => n + v, 0);
        const what = `${image.originalWidth}x${image.originalHeight} → ${size}x${size} grayscale${pre.inverted ? ' (inverted: light background)' : ''}, binarized at 0.5`;
        if (on === 0) throw new Error(`${what}, leaves no pixel on: the strokes are too faint or too thin at this size. Use a dark, thick digit on a light background that fills most of the image`);
        if (on === bits.length) throw new Error(`${what}, turns every pixel on: the image is nearly uniform. Use a dark digit on a light background (or a light digit on a dark one)`);
        inputs.push(bits);
        labels.push(file.name);
        notes.push(`${image.originalWidth}x${image.originalHeight} → ${size}x${size}, grayscale${pre.inverted ? ', inverted (light background)' : ''}, binarized at 0.5`);
      } catch (error) {
        errors.push({ name: file.name, message: message(error) });
      }
    }
    if (inputs.length === 0) return { rows: [], errors };
    return (async () => {
      const samples = await this.reconstruct(s, inputs, perImage, options.seed);
      return { rows: this.rows(labels, notes, inputs, samples, perImage, size), errors };
    })();
  }

  async latent(options: { limit: number; trainLimit: number; k: number }, onProgress?: (m: string) => void): Promise<LatentResult> {
    const s = this;
    if (!s.model.hasLatent) throw new Error('This model has no latent space.');
    await this.ready();
    const data = this.d;
    return (async () => {
      onProgress?.(`Encoding ${options.limit} test images…`);
      const test = await embed(s.model, data.gpu.test, { batchSize: 100, limit: options.limit });
      onProgress?.(`Encoding ${options.trainLimit} training images for the k-NN classifier…`);
      const train = await embed(s.model, data.gpu.train, { batchSize: 100, limit: options.trainLimit, seed: s.setup.seed });
      onProgress?.('k-NN classification…');
      const k = Math.min(options.k, train.count);
      const error = knnError(train, test, k);
      const points = test.dim === 2 ? test.means : project2d(test.means, test.count, test.dim);
      let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
      for (let i = 0; i < test.count; i++) {
        const x = points[2 * i], y = points[2 * i + 1];
        if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
        minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
      }
      if (test.dim === 2) {
        // The plane always spans the prior's +-3 sigma, so a collapsed posterior (all means near 0)
        // still shows where it sits and every likely z can be clicked.
        minX = Math.min(minX, -3); maxX = Math.max(maxX, 3); minY = Math.min(minY, -3); maxY = Math.max(maxY, 3);
      }
      if (!(minX < maxX)) { minX -= 1; maxX = minX + 2; }
      if (!(minY < maxY)) { minY -= 1; maxY = minY + 2; }
      return {
        count: test.count,
        dim: test.dim,
        points: points instanceof Float32Array ? points : new Float32Array(points),
        labels: Uint8Array.from(test.labels),
        projection: test.dim === 2 ? 'direct' : 'pca',
        knn: { k, error, trainImages: train.count },
        bounds: { minX, maxX, minY, maxY },
      };
    })();
  }

  async decodeLatent(z: number[], options: { count: number; seed: number }): Promise<SampleResult> {
    const s = this;
    const zd = s.config.latentDim;
    if (!s.model.hasLatent || z.length !== zd) throw new Error(`a point of this ${zd}-D latent space needs ${zd} coordinates (got ${z.length})`);
    const n = Math.max(1, Math.min(options.count, 16));
    const size = s.config.imageSize;
    return (async () => {
      await this.prewarmSample(s, n);
      const t0 = performance.now();
      const zs = new Float32Array(n * zd);
      for (let i = 0; i < n; i++) zs.set(z, i * zd);
      const [images, probs] = await E.tidyAsync(async () => {
        const out = s.model.sample(E.fromArray(zs, [n, zd]), E.randomUniform([n, 1, size, size], options.seed, [0, 2]));
        return Promise.all([out.images.data(), out.probs.data()]);
      });
      return { images: batchOf(images as Float32Array, n, size), probs: batchOf(probs as Float32Array, n, size), milliseconds: performance.now() - t0 };
    })();
  }

  async evaluate(options: EvalOptions, onProgress: Progress): Promise<EvalResult> {
    await this.ready();
    const s = this;
    const data = this.d;
    if (!Number.isInteger(options.k) || options.k < 1 || options.k > 1000) throw new Error(`k must be 1 to 1000 (got ${options.k})`);
    const set = data.gpu.get(options.split);
    const limit = Math.max(1, Math.min(options.limit, set.count));
    const batchSize = Math.max(1, Math.min(100, Math.floor(2000 / options.k)));
    return (async () => {
      await this.prewarmEval(s, Math.min(batchSize, limit), () => undefined);
      const t0 = performance.now();
      const r = await evaluate(s.model, set, { k: options.k, batchSize, seed: s.setup.seed, limit, onProgress: (d, t) => Promise.resolve(onProgress(d, t)).catch(() => undefined) });
      return { split: options.split, images: r.images, k: r.k, nll: r.nll, negElbo: r.negElbo, reconstruction: r.reconstruction, kl: r.kl, step: s.trainer.step, seconds: (performance.now() - t0) / 1000, data: data.info.description };
    })();
  }

  async prewarmEval(s: MnistSession, batch: number, onProgress: Progress): Promise<void> {
    const key = `eval:${batch}`;
    if (this.driver.prewarmed.has(key)) return;
    const size = s.config.imageSize;
    await E.engine().gpu.prewarm(
      () =>
        E.noGrad(() =>
          E.tidy(() => {
            const x = E.zeros([batch, 1, size, size]);
            const noise = E.zeros([batch, s.config.latentDim]);
            const r = s.model.importanceNll(x, 1, noise);
            E.concat([E.sum(r.negElbo).view([1]), E.sum(r.nll).view([1]), E.sum(E.sub(r.negElbo, r.kl)).view([1]), E.sum(r.kl).view([1])], 0);
          }),
        ),
      onProgress,
    );
    this.driver.prewarmed.add(key);
  }

  private async prewarmSample(s: MnistSession, count: number, onProgress?: Progress): Promise<void> {
    const key = `sample:${s.config.preset}:${count}`;
    if (this.driver.prewarmed.has(key)) return;
    const size = s.config.imageSize;
    await E.engine().gpu.prewarm(
      () =>
        E.tidy(() => {
          const z = s.model.hasLatent ? E.zeros([count, s.config.latentDim]) : null;
          s.model.sample(z, E.zeros([count, 1, size, size]));
        }),
      onProgress,
    );
    this.driver.prewarmed.add(key);
  }
}

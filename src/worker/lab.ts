// The worker's state and every GPU job the UI can ask for: data, the current model and its trainer,
// the training loop, sampling, reconstructions, the latent space, evaluation and checkpoints. It
// mirrors the command line (src/cli/main.ts) on the same model layer.
//
// GPU jobs never overlap: each runs inside `exclusive`, so a sample asked for during training runs
// between two training steps (engine scopes are not re-entrant across awaits).
import * as E from '../engine';
import { DeviceLostError, type GpuContext } from '../gpu/context';
import { GpuMnist } from '../data/gpu-dataset';
import { BINARIZATION_STREAM, DEFAULT_BINARIZATION_SEED, binarizeSet, describeMnistData, splitMnist, type ImageSet, type MnistSplit } from '../data/mnist';
import { binarize, preprocessImage, resizeSet, type RgbaImage } from '../data/preprocess';
import { CheckpointError, decodeCheckpoint, type Checkpoint, type JsonValue } from '../io/checkpoint';
import type { MnistModelConfig } from '../models/config';
import { MnistModel } from '../models/mnist-model';
import { configFromCheckpoint, loadInto, saveMnistCheckpoint } from '../models/mnist-checkpoint';
import { MnistTrainer, evaluate } from '../models/trainer';
import { embed, knnError } from '../models/latent';
import type {
  AutosaveInfo,
  CheckpointFile,
  DataInfo,
  Description,
  EvalOptions,
  EvalResult,
  History,
  ImageBatch,
  LatentResult,
  ModelSummary,
  ReconstructionRow,
  Restored,
  SampleRequest,
  SampleResult,
  Setup,
  TrainEvent,
  TrainOptions,
  TrainOutcome,
  TrainPoint,
  UploadResult,
  UploadedFile,
  ValidPoint,
} from './api';
import { findPreset, fullSizes, mnistConfigOf, setupOfMnistConfig } from './families';
import { clearRun, loadRun, saveRun } from './store';
import { decodeUpload } from './images';
import { project2d } from './projection';

const MNIST_URL = 'data/mnist/';
const MNIST_NAMES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;
const CLIP_VALUE = 1;
/** Chart points kept in a checkpoint's metadata and the autosave (older ones are thinned). */
const MAX_HISTORY = 1500;

interface Data {
  size: number;
  gpu: GpuMnist;
  /** The fixed binarization of the test split on the CPU (shown as reconstruction inputs). */
  testBits: ImageSet;
  info: DataInfo;
}

interface Session {
  setup: Setup;
  config: MnistModelConfig;
  model: MnistModel;
  trainer: MnistTrainer;
  summary: ModelSummary;
  history: History;
}

interface Snapshot {
  setup: Setup;
  step: number;
  bytes: Uint8Array;
  history: History;
}

function message(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Keeps at most `max` points: the newest half as they are, older ones thinned evenly. */
function thin<T>(points: T[], max: number): T[] {
  if (points.length <= max) return points;
  const keepNew = Math.floor(max / 2);
  const old = points.slice(0, points.length - keepNew);
  const stride = Math.ceil(old.length / (max - keepNew));
  return [...old.filter((_, i) => i % stride === 0), ...points.slice(points.length - keepNew)];
}

function batchOf(pixels: Float32Array, count: number, size: number): ImageBatch {
  return { count, size, pixels };
}

export class Lab {
  private ctx: GpuContext | null = null;
  private raw: MnistSplit | null = null;
  private rawLoading: Promise<MnistSplit> | null = null;
  private data: Data | null = null;
  private session: Session | null = null;
  private lastGood: Snapshot | null = null;
  private training = false;
  private pauseRequested = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly prewarmed = new Set<string>();
  private faulted: string | null = null;

  attach(ctx: GpuContext): void {
    this.ctx = ctx;
  }

  /** Runs GPU jobs one at a time, in order of request. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.faulted) throw new DeviceLostError(this.faulted);
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private gpu(): GpuContext {
    if (!this.ctx) throw new Error('The GPU is not ready yet.');
    return this.ctx;
  }

  private need(): Session {
    if (!this.session) throw new Error('No model yet: choose a preset and build it first.');
    return this.session;
  }

  // ---- data -------------------------------------------------------------------------------------------

  private async rawMnist(onStatus?: (m: string) => void): Promise<MnistSplit> {
    if (this.raw) return this.raw;
    this.rawLoading ??= (async () => {
      onStatus?.('Downloading MNIST (55 MB, once per page load)…');
      const base = new URL(`${import.meta.env.BASE_URL}${MNIST_URL}`, (self as unknown as { location: Location }).location.origin);
      const entries = await Promise.all(
        Object.entries(MNIST_NAMES).map(async ([key, name]) => {
          const response = await fetch(new URL(name, base));
          if (!response.ok) throw new Error(`MNIST file ${name} could not be fetched: HTTP ${response.status}`);
          return [key, new Uint8Array(await response.arrayBuffer())] as const;
        }),
      );
      onStatus?.('Parsing MNIST…');
      const split = splitMnist(Object.fromEntries(entries) as unknown as Parameters<typeof splitMnist>[0]);
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
    await this.gpu().sync();
    this.data?.gpu.dispose();
    const description = describeMnistData(seed) + (size !== 28 ? `; images area-averaged to ${size}x${size}` : '');
    const info: DataInfo = { description, imageSize: size, train: split.train.count, valid: split.valid.count, test: split.test.count, loadMs: performance.now() - t0 };
    this.data = { size, gpu, testBits, info };
    return this.data;
  }

  // ---- models -----------------------------------------------------------------------------------------

  private summarize(setup: Setup, config: MnistModelConfig, model: MnistModel): ModelSummary {
    const preset = findPreset('mnist', config.preset)!;
    return {
      setup,
      sizes: fullSizes(setup),
      params: model.params.count(),
      flopsPerImage: 2 * model.macsPerImage(),
      imageSize: config.imageSize,
      hasLatent: model.hasLatent,
      latentDim: config.latentDim,
      autoregressive: model.isAutoregressive,
      noiseLevels: preset.noiseLevels,
    };
  }

  async describe(setup: Setup): Promise<Description> {
    if (setup.family !== 'mnist') return { ok: false, message: 'The hierarchical colour model is not available yet.' };
    let config: MnistModelConfig;
    try {
      config = mnistConfigOf(setup);
    } catch (error) {
      return { ok: false, message: message(error) };
    }
    return this.exclusive(async () => {
      const model = new MnistModel(config);
      try {
        return { ok: true, summary: this.summarize(setup, config, model) };
      } finally {
        model.dispose();
      }
    });
  }

  private disposeSession(): void {
    if (!this.session) return;
    this.session.trainer.dispose();
    this.session.model.dispose();
    this.session = null;
  }

  private run(s: Session): { step: number; seed: number; batchSize: number; lr: number; clipValue: number; binarizationSeed: number } {
    return { step: s.trainer.step, seed: s.setup.seed, batchSize: s.setup.batchSize, lr: s.setup.lr, clipValue: CLIP_VALUE, binarizationSeed: DEFAULT_BINARIZATION_SEED };
  }

  private buildTrainer(setup: Setup, model: MnistModel, data: Data): MnistTrainer {
    if (setup.batchSize > data.gpu.train.count) throw new Error(`batch size ${setup.batchSize} exceeds the ${data.gpu.train.count} training images`);
    return new MnistTrainer(model, data.gpu.train, { batchSize: setup.batchSize, lr: setup.lr, clipValue: CLIP_VALUE, seed: setup.seed });
  }

  async create(setup: Setup, onStatus?: (m: string) => void): Promise<{ summary: ModelSummary; data: DataInfo }> {
    if (this.training) throw new Error('Pause training before building another model.');
    const config = mnistConfigOf(setup);
    if (!Number.isInteger(setup.batchSize) || setup.batchSize < 1 || setup.batchSize > 1000) throw new Error(`batch size must be 1 to 1000 (got ${setup.batchSize})`);
    if (!(setup.lr > 0 && setup.lr < 1)) throw new Error(`learning rate must be in (0, 1) (got ${setup.lr})`);
    return this.exclusive(async () => {
      const data = await this.ensureData(config.imageSize, onStatus);
      onStatus?.('Building the model…');
      const model = new MnistModel(config);
      let trainer: MnistTrainer;
      try {
        trainer = this.buildTrainer(setup, model, data);
      } catch (error) {
        model.dispose();
        throw error;
      }
      this.disposeSession();
      this.session = { setup, config, model, trainer, summary: this.summarize(setup, config, model), history: { train: [], valid: [] } };
      this.lastGood = await this.snapshot(this.session);
      return { summary: this.session.summary, data: data.info };
    });
  }

  async reset(): Promise<{ summary: ModelSummary; data: DataInfo }> {
    const s = this.need();
    const result = await this.create(s.setup);
    await this.autosave().catch(() => undefined);
    return result;
  }

  private async snapshot(s: Session): Promise<Snapshot> {
    const history = { train: thin(s.history.train, MAX_HISTORY), valid: thin(s.history.valid, MAX_HISTORY) };
    const bytes = await saveMnistCheckpoint(s.model, { ...this.run(s), extra: { history: history as unknown as JsonValue, app: 'pixelvae-lab web' } }, s.trainer);
    return { setup: s.setup, step: s.trainer.step, bytes, history: { train: [...s.history.train], valid: [...s.history.valid] } };
  }

  /** Snapshot to memory (the last good state) and IndexedDB; refuses a state with non-finite parameters. */
  private async autosave(): Promise<number | 'non-finite' | null> {
    const s = this.session;
    if (!s) return null;
    const snap = await this.snapshot(s);
    const checkpoint = decodeCheckpoint(snap.bytes);
    for (const t of checkpoint.params.values()) {
      const data = t.data as Float32Array;
      for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return 'non-finite';
    }
    this.lastGood = snap;
    await saveRun({ setup: snap.setup, step: snap.step, savedAt: Date.now(), bytes: snap.bytes, history: { train: thin(snap.history.train, MAX_HISTORY), valid: thin(snap.history.valid, MAX_HISTORY) } });
    return snap.step;
  }

  // ---- training ---------------------------------------------------------------------------------------

  async train(options: TrainOptions, onEvent: (event: TrainEvent) => void): Promise<TrainOutcome> {
    const s = this.need();
    if (this.training) throw new Error('Training is already running.');
    const emit = (event: TrainEvent): void => {
      Promise.resolve(onEvent(event)).catch(() => undefined);
    };
    this.training = true;
    this.pauseRequested = false;
    const data = this.data!;
    const ctx = this.gpu();
    const batch = s.setup.batchSize;
    try {
      await this.exclusive(async () => {
        emit({ kind: 'status', message: 'Compiling the training step’s shaders…' });
        await s.trainer.prewarm((done, total) => emit({ kind: 'compile', done, total, what: 'training step' }));
        await this.prewarmEval(s, Math.min(batch, 100, options.validLimit), (done, total) => emit({ kind: 'compile', done, total, what: 'validation' }));
      });
      const started = performance.now();
      let logEvery = 1;
      let sinceLog = 0;
      let logStart = performance.now();
      let lastSave = performance.now();
      const validate = async (): Promise<void> => {
        const result = await this.exclusive(() => evaluate(s.model, data.gpu.valid, { k: 1, batchSize: Math.min(batch, 100), seed: s.setup.seed, limit: options.validLimit }));
        const point: ValidPoint = { step: s.trainer.step, negElbo: result.negElbo, reconstruction: result.reconstruction, kl: result.kl, images: result.images };
        if (Number.isFinite(point.negElbo)) {
          s.history.valid.push(point);
          emit({ kind: 'valid', point });
        }
      };
      /** Saves; false when the parameters are no longer finite (a NaN that the loss did not show, e.g. behind a ReLU). */
      const save = async (): Promise<boolean> => {
        const step = await this.exclusive(() => this.autosave());
        lastSave = performance.now();
        if (step === 'non-finite') return false;
        if (step !== null) emit({ kind: 'saved', step });
        return true;
      };
      emit({ kind: 'status', message: 'Training' });
      while (s.trainer.step < options.untilStep && !this.pauseRequested) {
        await this.exclusive(async () => {
          s.trainer.trainStep();
          await ctx.throttle();
        });
        sinceLog += 1;
        const atEnd = s.trainer.step >= options.untilStep || this.pauseRequested;
        if (sinceLog >= logEvery || atEnd) {
          const m = await this.exclusive(() => s.trainer.readMetrics());
          const now = performance.now();
          const seconds = Math.max((now - logStart) / 1000, 1e-6);
          // Read back about twice a second whatever the speed of the adapter.
          logEvery = Math.max(1, Math.min(100, Math.round((0.5 * m.steps) / seconds)));
          logStart = now;
          sinceLog = 0;
          if (!Number.isFinite(m.loss) || !Number.isFinite(m.kl)) return await this.diverged(s, m.loss, 'loss');
          const point: TrainPoint = {
            step: s.trainer.step,
            loss: m.loss,
            reconstruction: m.reconstruction,
            kl: m.kl,
            klWeight: s.model.klWeight(s.trainer.step),
            imagesPerSecond: (m.steps * batch) / seconds,
          };
          s.history.train.push(point);
          emit({ kind: 'metrics', point, step: s.trainer.step, untilStep: options.untilStep, elapsedSeconds: (now - started) / 1000 });
          if (now - lastSave > options.autosaveSeconds * 1000 && !(await save())) return await this.diverged(s, Number.NaN, 'parameters');
        }
        if (options.validEvery > 0 && s.trainer.step % options.validEvery === 0 && s.trainer.step < options.untilStep) await validate();
      }
      const reached = s.trainer.step >= options.untilStep;
      if (!(await save())) return await this.diverged(s, Number.NaN, 'parameters');
      if (reached) await validate();
      return { kind: reached ? 'done' : 'paused', step: s.trainer.step };
    } catch (error) {
      if (error instanceof DeviceLostError || ctx.isLost) {
        this.faulted = message(error);
        return { kind: 'device-lost', step: s.trainer.step, message: message(error), savedStep: this.lastGood?.step ?? null };
      }
      return { kind: 'error', step: s.trainer.step, message: message(error) };
    } finally {
      this.training = false;
      this.pauseRequested = false;
    }
  }

  private async diverged(s: Session, loss: number, what: 'loss' | 'parameters'): Promise<TrainOutcome> {
    const bad = s.trainer.step;
    const good = this.lastGood;
    const found = what === 'loss' ? `The loss became ${loss} (not a number) at step ${bad}` : `The parameters stopped being finite numbers (NaN or Inf) by step ${bad}`;
    if (!good) throw new Error(`${found} and there is no earlier state to go back to`);
    await this.exclusive(() => this.openSnapshot(good.bytes, good.setup, good.history));
    return {
      kind: 'diverged',
      step: bad,
      restoredStep: good.step,
      message: `${found}. Training stopped and the model was restored to its last good state, step ${good.step}. Try a lower learning rate.`,
    };
  }

  async pause(): Promise<void> {
    if (this.training) this.pauseRequested = true;
  }

  private async prewarmEval(s: Session, batch: number, onProgress: (done: number, total: number) => void): Promise<void> {
    const key = `eval:${batch}`;
    if (this.prewarmed.has(key)) return;
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
    this.prewarmed.add(key);
  }

  private async prewarmSample(s: Session, count: number, onProgress?: (done: number, total: number) => void): Promise<void> {
    const key = `sample:${s.config.preset}:${count}`;
    if (this.prewarmed.has(key)) return;
    const size = s.config.imageSize;
    await E.engine().gpu.prewarm(
      () =>
        E.tidy(() => {
          const z = s.model.hasLatent ? E.zeros([count, s.config.latentDim]) : null;
          s.model.sample(z, E.zeros([count, 1, size, size]));
        }),
      onProgress,
    );
    this.prewarmed.add(key);
  }

  // ---- sampling and reconstruction ------------------------------------------------------------------

  async sample(request: SampleRequest, onCompile?: (done: number, total: number) => void): Promise<SampleResult> {
    const s = this.need();
    const n = request.count;
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`sample count must be 1 to 256 (got ${n})`);
    return this.exclusive(async () => {
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
    });
  }

  /** Sampled reconstructions of binarized inputs: `perImage` draws of z ~ q(z|x) each, one pixel sample per draw. */
  private async reconstruct(s: Session, inputs: Float32Array[], perImage: number, seed: number): Promise<Float32Array> {
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
    const s = this.need();
    const data = this.data!;
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
    return this.exclusive(async () => {
      const samples = await this.reconstruct(s, inputs, perImage, options.seed);
      return this.rows(labels, labels.map(() => 'fixed binarization of the test split'), inputs, samples, perImage, size);
    });
  }

  async reconstructUploads(files: UploadedFile[], options: { samples: number; seed: number }): Promise<UploadResult> {
    const s = this.need();
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
        image = await decodeUpload(file);
      } catch (error) {
        errors.push({ name: file.name, message: message(error) });
        continue;
      }
      try {
        const margin = Math.max(0, Math.round((size * 4) / 28));
        const pre = preprocessImage(image, { size, margin: 2 * margin < size ? margin : 0 });
        inputs.push(binarize(pre.pixels, { threshold: 0.5 }));
        labels.push(file.name);
        notes.push(`${image.originalWidth}x${image.originalHeight} → ${size}x${size}, grayscale${pre.inverted ? ', inverted (light background)' : ''}, binarized at 0.5`);
      } catch (error) {
        errors.push({ name: file.name, message: message(error) });
      }
    }
    if (inputs.length === 0) return { rows: [], errors };
    return this.exclusive(async () => {
      const samples = await this.reconstruct(s, inputs, perImage, options.seed);
      return { rows: this.rows(labels, notes, inputs, samples, perImage, size), errors };
    });
  }

  // ---- latent space -----------------------------------------------------------------------------------

  async latent(options: { limit: number; trainLimit: number; k: number }, onProgress?: (m: string) => void): Promise<LatentResult> {
    const s = this.need();
    if (!s.model.hasLatent) throw new Error('This model has no latent space.');
    const data = this.data!;
    return this.exclusive(async () => {
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
    });
  }

  async decodeLatent(z: number[], options: { count: number; seed: number }): Promise<SampleResult> {
    const s = this.need();
    const zd = s.config.latentDim;
    if (!s.model.hasLatent || z.length !== zd) throw new Error(`a point of this ${zd}-D latent space needs ${zd} coordinates (got ${z.length})`);
    const n = Math.max(1, Math.min(options.count, 16));
    const size = s.config.imageSize;
    return this.exclusive(async () => {
      await this.prewarmSample(s, n);
      const t0 = performance.now();
      const zs = new Float32Array(n * zd);
      for (let i = 0; i < n; i++) zs.set(z, i * zd);
      const [images, probs] = await E.tidyAsync(async () => {
        const out = s.model.sample(E.fromArray(zs, [n, zd]), E.randomUniform([n, 1, size, size], options.seed, [0, 2]));
        return Promise.all([out.images.data(), out.probs.data()]);
      });
      return { images: batchOf(images as Float32Array, n, size), probs: batchOf(probs as Float32Array, n, size), milliseconds: performance.now() - t0 };
    });
  }

  // ---- evaluation -------------------------------------------------------------------------------------

  async evaluate(options: EvalOptions, onProgress: (done: number, total: number) => void): Promise<EvalResult> {
    const s = this.need();
    const data = this.data!;
    if (!Number.isInteger(options.k) || options.k < 1 || options.k > 1000) throw new Error(`k must be 1 to 1000 (got ${options.k})`);
    const set = data.gpu.get(options.split);
    const limit = Math.max(1, Math.min(options.limit, set.count));
    const batchSize = Math.max(1, Math.min(100, Math.floor(2000 / options.k)));
    return this.exclusive(async () => {
      await this.prewarmEval(s, Math.min(batchSize, limit), () => undefined);
      const t0 = performance.now();
      const r = await evaluate(s.model, set, { k: options.k, batchSize, seed: s.setup.seed, limit, onProgress: (d, t) => Promise.resolve(onProgress(d, t)).catch(() => undefined) });
      return { split: options.split, images: r.images, k: r.k, nll: r.nll, negElbo: r.negElbo, reconstruction: r.reconstruction, kl: r.kl, step: s.trainer.step, seconds: (performance.now() - t0) / 1000, data: data.info.description };
    });
  }

  // ---- checkpoints ------------------------------------------------------------------------------------

  private fileOf(bytes: Uint8Array, setup: Setup, step: number): CheckpointFile {
    const checkpoint = decodeCheckpoint(bytes);
    return { name: `pixelvae-${setup.preset}-${setup.sizes.imageSize ?? 28}px-step${step}.safetensors`, bytes, configJson: JSON.stringify(checkpoint.config, null, 2), step };
  }

  async checkpoint(): Promise<CheckpointFile> {
    const s = this.session;
    if (s && !this.faulted && !this.gpu().isLost) {
      return this.exclusive(async () => {
        const snap = await this.snapshot(s);
        return this.fileOf(snap.bytes, snap.setup, snap.step);
      });
    }
    const good = this.lastGood ?? (await loadRun().catch(() => null));
    if (!good) throw new Error('There is no saved state to download.');
    return this.fileOf(good.bytes, good.setup, good.step);
  }

  /** Builds a model from checkpoint bytes and makes it the current session (only once everything succeeded). */
  private async openSnapshot(bytes: Uint8Array, setupHint: Setup | null, history: History | null, name = 'checkpoint'): Promise<{ checkpoint: Checkpoint; note?: string }> {
    const checkpoint = decodeCheckpoint(bytes, name);
    const config = configFromCheckpoint(checkpoint);
    const run = {
      seed: checkpoint.config.seed,
      batchSize: Number(checkpoint.config.optimizer.batchSize ?? 16),
      lr: Number(checkpoint.config.optimizer.lr ?? 1e-3),
    };
    const { setup, exact } = setupOfMnistConfig(config, run);
    const data = await this.ensureData(config.imageSize);
    const model = new MnistModel(config);
    let trainer: MnistTrainer;
    try {
      trainer = this.buildTrainer(setupHint ?? setup, model, data);
      loadInto(model, checkpoint, trainer);
      trainer.step = checkpoint.config.step;
      trainer.sampler.seek(checkpoint.config.step);
    } catch (error) {
      model.dispose();
      throw error;
    }
    this.disposeSession();
    const saved = (checkpoint.config.extra as { history?: History } | undefined)?.history;
    const h = history ?? (saved && Array.isArray(saved.train) && Array.isArray(saved.valid) ? saved : { train: [], valid: [] });
    const step = checkpoint.config.step;
    const finalSetup = setupHint ?? setup;
    this.session = {
      setup: finalSetup,
      config,
      model,
      trainer,
      summary: this.summarize(finalSetup, config, model),
      history: { train: h.train.filter((p) => p.step <= step), valid: h.valid.filter((p) => p.step <= step) },
    };
    this.lastGood = { setup: finalSetup, step, bytes, history: this.session.history };
    return { checkpoint, note: exact ? undefined : 'The checkpoint’s encoder widths do not follow the w, w, 2w, 2w pattern the page edits; its sizes are shown approximately.' };
  }

  private restored(note?: string): Restored {
    const s = this.need();
    return { summary: s.summary, data: this.data!.info, step: s.trainer.step, history: s.history, note };
  }

  async openCheckpoint(bytes: Uint8Array, name: string, options: { replace: boolean } = { replace: false }): Promise<Restored> {
    if (this.training) throw new Error('Pause training before opening a checkpoint.');
    if (bytes.byteLength === 0) throw new CheckpointError(`${name} is empty (0 bytes); it is not a checkpoint.`);
    // Validate the file completely before touching the current model.
    const checkpoint = decodeCheckpoint(bytes, name);
    const config = configFromCheckpoint(checkpoint);
    const current = this.session;
    if (current && !options.replace && current.trainer.step > 0) {
      const differs = config.preset !== current.config.preset || JSON.stringify({ ...config, seed: 0 }) !== JSON.stringify({ ...current.config, seed: 0 });
      if (differs) {
        throw new CheckpointError(
          `${name} is a ${config.preset} model (${config.imageSize}x${config.imageSize}, latent ${config.latentDim}, ${config.pixelLayers} PixelCNN layers), ` +
            `but the current model is ${current.config.preset} (${current.config.imageSize}x${current.config.imageSize}, latent ${current.config.latentDim}, ${current.config.pixelLayers} layers) ` +
            `trained for ${current.trainer.step} steps. Nothing was changed. Download the current model first if you want to keep it, then open the file anyway.`,
        );
      }
    }
    const note = await this.exclusive(async () => (await this.openSnapshot(bytes, null, null, name)).note);
    const previous = current?.setup.preset;
    const s = this.need();
    await this.exclusive(() => this.autosave()).catch(() => undefined);
    const switched = previous && previous !== s.setup.preset ? `Switched from ${previous} to ${s.setup.preset}, the checkpoint’s preset.` : undefined;
    return this.restored([switched, note].filter(Boolean).join(' ') || undefined);
  }

  async autosaved(): Promise<AutosaveInfo | null> {
    const run = await loadRun().catch(() => null);
    return run ? { setup: run.setup, step: run.step, savedAt: run.savedAt } : null;
  }

  async restoreAutosave(): Promise<Restored | null> {
    const run = await loadRun();
    if (!run) return null;
    try {
      await this.exclusive(() => this.openSnapshot(run.bytes, run.setup, run.history, 'autosave'));
    } catch (error) {
      throw new Error(`The run saved in this browser could not be restored (${message(error)}); it was left in place.`);
    }
    return this.restored();
  }

  async clearAutosave(): Promise<void> {
    await clearRun();
  }

  stats(): { buffers: number; bytes: number; pipelines: number; dispatches: number } {
    const st = this.gpu().stats();
    return { buffers: st.liveBuffers, bytes: st.liveBytes, pipelines: st.pipelines, dispatches: st.dispatches };
  }

  async debugFault(kind: 'nan' | 'device-lost'): Promise<void> {
    if (kind === 'device-lost') {
      this.gpu().device.destroy();
      return;
    }
    const s = this.need();
    await this.exclusive(async () => {
      const [, t] = s.model.params.entriesList()[0];
      this.gpu().write(t.buffer, new Float32Array(t.size).fill(Number.NaN));
    });
  }
}

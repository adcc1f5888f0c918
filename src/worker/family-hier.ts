// The hierarchical colour PixelVAE (src/models/hierarchical/) for the lab: colour data (demo photos or
// the user's files), HierTrainer, top-down sampling with the three noise levels (top z2, middle z1,
// pixels) each held per row or varied per cell, reconstructions from either level, the bits/dim bound
// with its per-level KL split, and checkpoints shared with the command line. Batch-norm statistics
// are re-estimated (reestimateBatchNorm) before sampling and evaluation, as the reference does.
import * as E from '../engine';
import { toPlanar, type ColourImageSet } from '../data/colour';
import type { Checkpoint, JsonValue } from '../io/checkpoint';
import { hierConfigFromCheckpoint, loadHierInto, saveHierCheckpoint } from '../models/hierarchical/checkpoint';
import { hierTrainDefaults, latentGrids, schedule, type HierConfig } from '../models/hierarchical/config';
import { HierarchicalPixelVae } from '../models/hierarchical/model';
import { HierTrainer, evaluateHier } from '../models/hierarchical/trainer';
import type { ColourSource, DataInfo, EvalOptions, EvalResult, History, ModelSummary, ReconstructionRow, SampleRequest, SampleResult, Setup, UploadResult, UploadedFile, ValidPoint } from './api';
import { bundledName, type ColourData, type ColourDataStore } from './colour-data';
import { LazyDriver, LazySession, type PendingData, type Prepared } from './family-base';
import { HIERARCHICAL_LEVELS, fullSizes, hierConfigOf, setupOfHierConfig } from './families';
import { decodeUpload } from './images';
import { batchOf, hashValues, message, savedHistory, type FamilyDriver, type FamilySession, type Progress, type Reading } from './session';

const LN2 = Math.LN2;
/** Noise streams of the three levels (the model's levelNoise uses the same offsets). */
const STREAM = { top: 11, middle: 12, pixel: 13 } as const;
/** Batch-norm re-estimation batches: at most this many in the browser on a real GPU (the reference: 1000). */
const BN_BATCHES_GPU = 200;
/** ... and on a CPU fallback adapter. */
const BN_BATCHES_FALLBACK = 2;
const MAX_SAMPLES = 64;

/**
 * Forward multiply-adds per image, estimated from the parameter shapes: every convolution kernel
 * times the positions of the resolution it runs at (masked taps counted in full), every linear map
 * once. The resolution comes from the layer's name (enc1.l<k>..., dec1.pix...; networks.ts).
 */
function estimateMacs(model: HierarchicalPixelVae, c: HierConfig): number {
  const at = (level: number): number => (c.imageSize >> level) ** 2;
  let macs = 0;
  for (const [name, t] of model.params.entriesList()) {
    if (name === 'embedding') continue;
    if (t.shape.length === 2) {
      macs += t.size;
      continue;
    }
    if (t.shape.length !== 4) continue;
    let level = 0;
    const m = /\.l(\d+)\.(res\d+|down|up)\.(conv1|conv2|shortcut)/.exec(name);
    if (m) {
      const l = Number(m[1]);
      if (m[2] === 'down') level = m[3] === 'conv1' ? l : l + 1;
      else if (m[2] === 'up') level = m[3] === 'conv2' ? l - 1 : l;
      else level = l;
    } else if (/^(enc1\.out|dec2\.pix\.|dec1\.input)/.test(name)) {
      level = c.z1Level;
    }
    macs += t.size * at(level);
  }
  return macs;
}

/** u32 sub-pixel values -> intensities in [0, 1]. */
function toUnit(values: ArrayLike<number>): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] / 255;
  return out;
}

/** Per-cell hashes of [n, ...] values, rounded first so equal latents computed in different batch rows hash alike. */
function cellHashes(values: Float32Array, n: number): string[] {
  const per = values.length / n;
  const q = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) q[i] = Math.round(values[i] * 1e4) >>> 0;
  return Array.from({ length: n }, (_, i) => hashValues(q, i * per, (i + 1) * per));
}

/**
 * Dispatches of one hierarchical training step from its parameter-tensor count P (batch norm, the
 * three losses and the latent PixelCNN add work per layer): 2.77 P + 62, the line through counts of
 * the tiny (P 142: 455 dispatches) and small (P 207: 635) presets with parameters packed (weight
 * norm and Adam one dispatch each), batch norm fused with its residual sum, and the masked gates
 * fused (one each way per layer);
 * test/trust-app.test.ts holds it to counts measured on the engine.
 */
export function hierDispatchesPerStep(paramTensors: number): number {
  return Math.max(1, Math.round(2.77 * paramTensors + 62));
}

type HierPrepared = Prepared<ColourData, HierTrainer>;

export class HierDriver extends LazyDriver<HierConfig, HierarchicalPixelVae, ColourData, HierTrainer, HierSession> implements FamilyDriver {
  readonly id = 'hierarchical' as const;
  /** Set from the adapter: CPU fallback adapters get the cheap batch-norm re-estimation. */
  fallbackAdapter = false;
  protected readonly presetPrefix = 'hier-';
  protected readonly maxBatch = 512;

  constructor(readonly store: ColourDataStore) {
    super();
  }

  bnBatches(c: HierConfig): number {
    const reference = hierTrainDefaults(c.preset).bnBatches;
    return Math.max(1, Math.min(reference, this.fallbackAdapter ? BN_BATCHES_FALLBACK : BN_BATCHES_GPU));
  }

  bnText(c: HierConfig): string {
    const n = this.bnBatches(c);
    return `batch-norm statistics re-estimated over ${n} training batch${n === 1 ? '' : 'es'} before sampling and evaluation (the reference uses 1000${this.fallbackAdapter ? '; kept cheap on this CPU adapter' : ''})`;
  }

  summarize(setup: Setup, config: HierConfig, model: HierarchicalPixelVae): ModelSummary {
    return {
      setup,
      sizes: fullSizes(setup),
      params: model.parameterCount(),
      flopsPerImage: 2 * estimateMacs(model, config),
      dispatchesPerStep: hierDispatchesPerStep(model.params.entriesList().length),
      imageSize: config.imageSize,
      hasLatent: true,
      latentDim: config.latent2,
      autoregressive: true,
      noiseLevels: HIERARCHICAL_LEVELS,
      unit: 'bits/dim',
      channels: config.channels,
      latents: { z1: [...model.shapes.z1], z2: config.latent2 },
      batchNorm: this.bnText(config),
    };
  }

  protected configOf(setup: Setup): HierConfig {
    return hierConfigOf(setup);
  }

  protected configFromCheckpoint(checkpoint: Checkpoint): HierConfig {
    return hierConfigFromCheckpoint(checkpoint);
  }

  protected newModel(config: HierConfig): HierarchicalPixelVae {
    return new HierarchicalPixelVae(config);
  }

  protected words(c: HierConfig): string {
    const g = latentGrids(c).z1;
    return `a hierarchical colour ${c.preset} model (${c.imageSize}x${c.imageSize}, z1 ${c.latent1}x${g}x${g}, z2 ${c.latent2})`;
  }

  protected dataFor(setup: Setup, config: HierConfig, onStatus?: (m: string) => void): Promise<ColourData> {
    return this.store.ensure(setup.data ?? 'demo', config.imageSize, onStatus);
  }

  protected newTrainer(setup: Setup, model: HierarchicalPixelVae, data: ColourData): HierTrainer {
    if (setup.batchSize > data.train.count) throw new Error(`batch size ${setup.batchSize} exceeds the ${data.train.count} training images; choose a smaller batch or more images`);
    return new HierTrainer(model, data.train, { batchSize: setup.batchSize, lr: setup.lr, seed: setup.seed });
  }

  protected loadCheckpoint(model: HierarchicalPixelVae, checkpoint: Checkpoint, trainer?: HierTrainer): void {
    loadHierInto(model, checkpoint, trainer);
  }

  protected newSession(setup: Setup, config: HierConfig, model: HierarchicalPixelVae, source: HierPrepared | PendingData<HierPrepared>): HierSession {
    return new HierSession(this, setup, config, model, source);
  }

  /**
   * Before the bundled set is fetched, split and uploaded: the data and the trainer are made before
   * the first thing that needs them (training, held-out images, batch-norm re-estimation).
   */
  private pendingSession(setup: Setup, config: HierConfig, source: Exclude<ColourSource, 'files'>, checkpoint: Checkpoint): HierSession {
    const split = checkpoint.config.data.split;
    const train = Number(split.train ?? 0);
    const heldOut = Number(split.heldOut ?? split.test ?? 0);
    const info: DataInfo = {
      description: `${bundledName(source)} (prepared when first needed; the checkpoint was trained on ${train} train / ${heldOut} held-out images)`,
      imageSize: config.imageSize,
      train,
      valid: heldOut,
      test: heldOut,
      loadMs: 0,
    };
    // Prepared when first needed, not in the background: preparing shares the worker's thread
    // with the rest of the opening (the autosave) and the first samples, and would slow both.
    return this.buildPending(setup, config, checkpoint, info, () => this.store.ensure(source, config.imageSize));
  }

  async open(checkpoint: Checkpoint, setupHint: Setup | null, history: History | null): Promise<{ session: FamilySession; note?: string }> {
    const config = hierConfigFromCheckpoint(checkpoint);
    // A checkpoint trained on colour-MNIST (the zoo's, the CLI's) reopens on it; anything else on the demo photos.
    const wanted = setupHint?.data ?? (/colour-mnist/i.test(String(checkpoint.config.data.description ?? '')) ? 'colour-mnist' : 'demo');
    const source = wanted === 'files' && !this.store.hasFiles() ? 'demo' : wanted;
    const defaults = hierTrainDefaults(config.preset);
    const { setup, exact } = setupOfHierConfig(config, {
      seed: checkpoint.config.seed,
      batchSize: Number(checkpoint.config.optimizer.batchSize ?? defaults.batchSize),
      lr: Number(checkpoint.config.optimizer.lr ?? defaults.lr),
      data: source,
    });
    const chosen = setupHint ? { ...setupHint, data: source } : setup;
    // A file the user opens (a zoo model, a checkpoint) does not wait for a bundled set: it is prepared
    // when first needed. A saved run restored on page load (setupHint) loads its data first, as a
    // new model does, before the lab is ready: left for later, it would hold up the user's first
    // action. The user's own files were decoded already.
    const session =
      source === 'files' || setupHint
        ? this.build(chosen, config, await this.store.ensure(source, config.imageSize), checkpoint)
        : this.pendingSession(chosen, config, source, checkpoint);
    session.history = savedHistory(checkpoint, history, checkpoint.config.step);
    const notes = [
      source !== wanted ? 'Your own images are not kept across page loads, so the model is shown with the demo photos; choose your images again to train on them.' : '',
      exact ? '' : 'The checkpoint’s widths differ from its preset’s (the page edits only some sizes); Reset rebuilds the preset’s widths.',
    ].filter(Boolean);
    return { session, note: notes.join(' ') || undefined };
  }
}

const HIER_WORDS = { notReady: 'The training data is still being prepared; try again in a moment.', closed: 'the model was closed while its data was being prepared' };

export class HierSession extends LazySession<HierarchicalPixelVae, ColourData, HierTrainer> implements FamilySession {
  readonly family = 'hierarchical' as const;
  summary: ModelSummary;
  /** The step at which the batch-norm statistics were last re-estimated (-1: never). */
  private bnStep = -1;

  constructor(
    readonly driver: HierDriver,
    setup: Setup,
    readonly config: HierConfig,
    model: HierarchicalPixelVae,
    source: HierPrepared | PendingData<HierPrepared>,
  ) {
    super(setup, model, source, HIER_WORDS);
    this.summary = driver.summarize(setup, config, model);
    // A trained checkpoint without optimizer state is a zoo file (src/zoo/load.ts), which the twin
    // saves right after re-estimating its batch-norm statistics, or that model saved again
    // unchanged: its statistics are current for its step (a run the lab trained keeps its moments).
    if (!('trainer' in source) && !source.keepsOptimizer && source.step > 0) this.bnStep = source.step;
  }

  async prewarmValidation(): Promise<void> {
    // Evaluation reuses the training step's forward kernels.
  }

  override trainStep(): void {
    super.trainStep();
    this.bnStep = -1;
  }

  async readMetrics(): Promise<Reading> {
    const m = await (await this.ready()).trainer.readMetrics();
    return {
      steps: m.steps,
      values: {
        loss: m.loss / LN2,
        reconstruction: m.reconstruction / LN2,
        kl: (m.kl1 + m.kl2) / LN2,
        kl1: m.kl1 / LN2,
        kl2: m.kl2 / LN2,
        klWeight: schedule(this.config, Math.max(0, this.trainer.step - 1)).alpha1,
      },
    };
  }

  /** Re-estimates the batch-norm running statistics unless they are current for this step. */
  private async ensureBatchNorm(onProgress?: Progress): Promise<void> {
    if (this.bnStep === this.step) return;
    await this.ready();
    await this.trainer.reestimateBatchNorm(this.driver.bnBatches(this.config), onProgress);
    this.bnStep = this.trainer.step;
  }

  async validate(limit: number, batch: number): Promise<ValidPoint> {
    await this.ready();
    await this.ensureBatchNorm();
    const r = await evaluateHier(this.model, this.d.heldOut, { batchSize: batch, seed: this.setup.seed, limit });
    return { step: this.trainer.step, negElbo: r.bitsPerDim, reconstruction: r.reconstruction / LN2, kl: (r.kl1 + r.kl2) / LN2, kl1: r.kl1 / LN2, kl2: r.kl2 / LN2, images: r.images };
  }

  async save(extra: { [key: string]: JsonValue }): Promise<Uint8Array> {
    if (this.saveNeedsTrainer()) await this.ready();
    const info = this.data;
    return saveHierCheckpoint(
      this.model,
      { step: this.step, seed: this.setup.seed, batchSize: this.setup.batchSize, lr: this.setup.lr, data: info.description, trainImages: info.train, heldOutImages: info.valid, extra },
      this.prepared?.trainer,
    );
  }

  fileName(step: number): string {
    return `pixelvae-hier-${this.config.preset}-${this.config.imageSize}px-step${step}.safetensors`;
  }

  private throttled(onProgress: Progress | undefined): Progress | undefined {
    if (!onProgress) return undefined;
    let last = 0;
    return (done, total) => {
      if (done === total || done - last >= Math.max(1, Math.floor(total / 40))) {
        last = done;
        onProgress(done, total);
      }
    };
  }

  /**
   * A rows x cols grid. Each level's noise comes from its own seed: a held level is drawn once per
   * row and shared by the row's cells, a varied one is drawn per cell. Returns the images and, per
   * level, a hash of each cell's value of that level (z2, the sampled z1 map, the pixel uniforms).
   */
  async sample(request: SampleRequest, onProgress?: Progress): Promise<SampleResult> {
    const n = request.count;
    if (!Number.isInteger(n) || n < 1 || n > MAX_SAMPLES) throw new Error(`sample count must be 1 to ${MAX_SAMPLES} for colour models (got ${n})`);
    const rows = Math.max(1, Math.min(n, Math.round(request.rows ?? 1)));
    if (n % rows !== 0) throw new Error(`${n} samples do not fill ${rows} rows`);
    const cols = n / rows;
    await this.ensureBatchNorm();
    const t0 = performance.now();
    const [c, h, w] = this.model.shapes.image;
    const z1Shape = this.model.shapes.z1;
    const seedOf = (level: string): number => request.seeds[level] ?? 1;
    const draw = (level: keyof typeof STREAM, shape: number[], normal: boolean): E.Tensor => {
      const held = !!request.hold[level];
      const count = held ? rows : n;
      const seed = seedOf(level);
      const drawn = normal ? E.randomNormal([count, ...shape], seed, [0, STREAM[level]]) : E.randomUniform([count, ...shape], seed, [0, STREAM[level]]);
      if (!held || cols === 1) return drawn;
      return E.expand(drawn.view([rows, 1, ...shape]), [rows, cols, ...shape]).view([n, ...shape]);
    };
    const progress = this.throttled(onProgress);
    const { pixels, hashes } = await E.tidyAsync(async () => {
      const z2 = draw('top', [this.config.latent2], true);
      const eps1 = draw('middle', z1Shape, true);
      const uniforms = draw('pixel', [c, h, w], false);
      const out = await this.model.sample({ z2, eps1, uniforms }, { onProgress: progress });
      try {
        const [px, z2v, z1v, uv] = await Promise.all([out.images.data(), z2.data(), out.z1.data(), uniforms.data()]);
        return {
          pixels: toUnit(px),
          hashes: { top: cellHashes(z2v as Float32Array, n), middle: cellHashes(z1v as Float32Array, n), pixel: cellHashes(uv as Float32Array, n) },
        };
      } finally {
        out.images.dispose();
        out.z1.dispose();
        out.z2?.dispose();
      }
    });
    return {
      images: batchOf(pixels, n, this.config.imageSize, c),
      probs: null,
      milliseconds: performance.now() - t0,
      noiseHashes: hashes,
      note: `${z1Shape[1] * z1Shape[2]} z1 positions, then ${c * h * w} sub-pixels (R, G, B), one pass each on the GPU; ${this.driver.bnText(this.config)}`,
    };
  }

  /** Reconstructions of planar RGB byte images from one level: `perImage` draws each. */
  private async reconstruct(inputs: Uint8Array[], perImage: number, seed: number, level: 'top' | 'middle'): Promise<Float32Array> {
    await this.ensureBatchNorm();
    const size = this.config.imageSize;
    const plane = 3 * size * size;
    const m = inputs.length * perImage;
    const tiled = new Uint32Array(m * plane);
    inputs.forEach((img, i) => {
      for (let k = 0; k < perImage; k++) tiled.set(img, (i * perImage + k) * plane);
    });
    const [l1, h1, w1] = this.model.shapes.z1;
    return E.tidyAsync(async () => {
      const x = E.fromArray(tiled, [m, 3, size, size], 'u32');
      const eps1 = E.randomNormal([m, l1, h1, w1], seed, [0, STREAM.middle]);
      const uniforms = E.randomUniform([m, 3, size, size], seed, [0, STREAM.pixel]);
      const out = await this.model.reconstruct(x, level, { eps1, uniforms });
      try {
        return toUnit(await out.images.data());
      } finally {
        out.images.dispose();
        out.z1.dispose();
        out.z2?.dispose();
      }
    });
  }

  private rows(labels: string[], notes: string[], inputs: Uint8Array[], samples: Float32Array, perImage: number): ReconstructionRow[] {
    const size = this.config.imageSize;
    const plane = 3 * size * size;
    return inputs.map((input, i) => ({
      label: labels[i],
      note: notes[i],
      input: batchOf(toUnit(input), 1, size, 3),
      samples: batchOf(samples.slice(i * perImage * plane, (i + 1) * perImage * plane), perImage, size, 3),
    }));
  }

  private levelWords(level: 'top' | 'middle'): string {
    return level === 'top' ? 'kept z2 (posterior mean), z1 and pixels regenerated' : 'kept z1 (posterior mean), pixels regenerated';
  }

  async reconstructTest(options: { count: number; samples: number; seed: number; offset: number; level?: 'top' | 'middle' }): Promise<ReconstructionRow[]> {
    await this.ready();
    const set: ColourImageSet = this.d.heldOutImages;
    const level = options.level ?? 'middle';
    const count = Math.max(1, Math.min(options.count, 16, set.count));
    const perImage = Math.max(1, Math.min(options.samples, 8));
    const plane = 3 * set.size * set.size;
    const start = ((options.offset % set.count) + set.count) % set.count;
    const inputs: Uint8Array[] = [];
    const labels: string[] = [];
    for (let i = 0; i < count; i++) {
      const index = (start + i) % set.count;
      inputs.push(set.images.slice(index * plane, (index + 1) * plane));
      labels.push(`held-out #${index}`);
    }
    const samples = await this.reconstruct(inputs, perImage, options.seed, level);
    return this.rows(labels, labels.map(() => this.levelWords(level)), inputs, samples, perImage);
  }

  async reconstructUploads(files: UploadedFile[], options: { samples: number; seed: number; level?: 'top' | 'middle' }): Promise<UploadResult> {
    const size = this.config.imageSize;
    const level = options.level ?? 'middle';
    const perImage = Math.max(1, Math.min(options.samples, 8));
    const errors: { name: string; message: string }[] = [];
    const inputs: Uint8Array[] = [];
    const labels: string[] = [];
    const notes: string[] = [];
    if (files.length > 16) errors.push({ name: `${files.length - 16} more files`, message: 'at most 16 images at once; the rest were skipped' });
    for (const file of files.slice(0, 16)) {
      try {
        const image = await decodeUpload(file);
        inputs.push(toPlanar(image, size, 'crop'));
        labels.push(file.name);
        const side = Math.min(image.originalWidth, image.originalHeight);
        notes.push(`${image.originalWidth}x${image.originalHeight} → centre ${side}x${side} → ${size}x${size} colour; ${this.levelWords(level)}`);
      } catch (error) {
        errors.push({ name: file.name, message: message(error) });
      }
    }
    if (inputs.length === 0) return { rows: [], errors };
    const samples = await this.reconstruct(inputs, perImage, options.seed, level);
    return { rows: this.rows(labels, notes, inputs, samples, perImage), errors };
  }

  async evaluate(options: EvalOptions, onProgress: Progress): Promise<EvalResult> {
    await this.ready();
    const set = this.d.heldOut;
    const limit = Math.max(1, Math.min(options.limit, set.count));
    await this.ensureBatchNorm();
    const t0 = performance.now();
    const batchSize = Math.max(1, Math.min(this.setup.batchSize, 64, limit));
    const r = await evaluateHier(this.model, set, { batchSize, seed: this.setup.seed, limit, onProgress: (d, t) => Promise.resolve(onProgress(d, t)).catch(() => undefined) });
    return {
      split: options.split,
      images: r.images,
      k: 1,
      nll: r.bitsPerDim,
      negElbo: r.bitsPerDim,
      reconstruction: r.reconstruction / LN2,
      kl: (r.kl1 + r.kl2) / LN2,
      step: this.trainer.step,
      seconds: (performance.now() - t0) / 1000,
      data: this.d.info.description,
      bits: { bitsPerDim: r.bitsPerDim, natsPerDim: r.natsPerDim, reconstruction: r.reconstruction, kl1: r.kl1, kl2: r.kl2, batchNorm: this.driver.bnText(this.config) },
    };
  }
}

// The contract between the UI and the engine worker. The UI imports only this file (types) and
// client.ts; it never imports src/engine or src/models. Everything here must survive structured
// cloning (no classes, no functions except comlink proxies passed as callbacks).

/** What the browser told us about its WebGPU adapter. */
export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU implementations (SwiftShader, lavapipe): correct but slow. */
  isFallbackAdapter: boolean;
}

/** One small computation run through the engine on the GPU, as a smoke test of the whole stack. */
export interface OpCheck {
  /** The expression that was evaluated, in words the page can show. */
  expression: string;
  inputs: { a: number[]; b: number[] };
  /** Element-wise result read back from the GPU. */
  values: number[];
  /** Sum of `values`, reduced on the GPU. */
  total: number;
  /** The same computation in float64 on the CPU, to compare against. */
  expected: { values: number[]; total: number };
  /** Largest relative error between GPU and float64 over values and total. */
  maxRelativeError: number;
  /** True when maxRelativeError is within float32 tolerance. */
  matches: boolean;
  /** Wall time of the op, including pipeline creation and readback. */
  milliseconds: number;
}

export type ProbeResult =
  | { kind: 'ready'; adapter: AdapterInfo; op: OpCheck }
  /** navigator.gpu is missing, or it gave no adapter or device. */
  | { kind: 'unavailable'; reason: 'no-navigator-gpu' | 'no-adapter'; message: string }
  /** WebGPU exists but something failed while running the engine. */
  | { kind: 'error'; message: string };

// ---- model families and presets -------------------------------------------------------------------

/**
 * A model family the worker can build. The registry (src/worker/families.ts) lists each family's
 * presets; a second family (the hierarchical colour model) plugs in by adding an entry there and a
 * FamilyDriver implementation, without changing this API.
 */
export type FamilyId = 'mnist' | 'hierarchical';

/** One independent source of randomness in sampling, which the variation panel can hold or vary. */
export interface NoiseLevel {
  id: string;
  label: string;
  help: string;
}

/** An integer size of a model that the user may change before training. */
export interface SizeField {
  key: string;
  label: string;
  min: number;
  max: number;
  /** Only odd values (kernel sizes). */
  odd?: boolean;
  /** Only multiples of this (image sizes of latent models). */
  multipleOf?: number;
  help: string;
}

export interface PresetInfo {
  family: FamilyId;
  id: string;
  label: string;
  summary: string;
  hasLatent: boolean;
  /** Pixels are generated one at a time (a PixelCNN decoder): sampling costs one pass per pixel. */
  autoregressive: boolean;
  /** Default sizes (the paper's) for this preset. */
  defaults: Record<string, number>;
  noiseLevels: NoiseLevel[];
  /** Suggested batch size and learning rate (the command line's defaults), applied when the preset is picked. */
  run?: { batchSize: number; lr: number };
}

export interface FamilyInfo {
  id: FamilyId;
  label: string;
  /** The data set it trains on, in words. */
  dataset: string;
  available: boolean;
  /** Why it is not available (yet), when it is not. */
  note?: string;
  sizeFields: SizeField[];
  /** Named size sets the UI offers as one click ("tiny, for CPU adapters"). */
  quickSizes: { id: string; label: string; sizes: Record<string, number> }[];
  presets: PresetInfo[];
  /** The preset a new setup of this family starts from. */
  defaultPreset: string;
  /** The quick size set a new setup starts from on a CPU (fallback) adapter, when not the preset's defaults. */
  fallbackQuickSizes?: string;
}

/** Everything that decides a model and its training run (what the URL holds). */
export interface Setup {
  family: FamilyId;
  preset: string;
  /** Model sizes by SizeField key (imageSize included). Missing keys take the preset's defaults. */
  sizes: Record<string, number>;
  /** Seeds parameter initialisation. */
  initSeed: number;
  /** Seeds batch order, dynamic binarization and the reparameterisation noise. */
  seed: number;
  batchSize: number;
  lr: number;
  /** Colour families: the bundled demo photos, or the images the user picked (loadColourFiles). */
  data?: ColourSource;
}

/** 'colour-mnist': MNIST digits with random colours and textures (scripts/build-colour-mnist.mjs). */
export type ColourSource = 'demo' | 'colour-mnist' | 'files';

/** What loadColourFiles made of the user's files (checked at the draft's image size). */
export interface ColourFilesInfo {
  /** Usable images (a CIFAR-10 batch gives many). */
  images: number;
  /** Files that gave images. */
  files: number;
  /** Every file that was skipped, named, with the reason. */
  skipped: { name: string; reason: string }[];
  description: string;
}

export interface ModelSummary {
  setup: Setup;
  /** Every size, defaults filled in. */
  sizes: Record<string, number>;
  params: number;
  /** Forward FLOPs per image (2 x multiply-adds; masked taps skipped). */
  flopsPerImage: number;
  /** GPU dispatches of one training step (counted from the model's structure), for time estimates. */
  dispatchesPerStep?: number;
  imageSize: number;
  hasLatent: boolean;
  latentDim: number;
  autoregressive: boolean;
  noiseLevels: NoiseLevel[];
  /** Units of the charts and evaluation: MNIST in nats per image, colour models in bits per dimension. */
  unit: 'nats' | 'bits/dim';
  /** Colour channels of the images (1: binarized grayscale, 3: RGB). */
  channels: number;
  /** Hierarchical models: shapes of z1 [channels, side, side] and z2, for the model line. */
  latents?: { z1: number[]; z2: number };
  /** How the batch-norm statistics are re-estimated before sampling and evaluation, in words. */
  batchNorm?: string;
}

/** describe(): the cost of a setup, or why it is not a valid model. */
export type Description = { ok: true; summary: ModelSummary } | { ok: false; message: string };

export interface DataInfo {
  /** What numbers on this data are about (binarization, split), to show next to them. */
  description: string;
  imageSize: number;
  train: number;
  valid: number;
  test: number;
  /** Wall time of fetching, parsing, resizing, binarizing and uploading, ms. */
  loadMs: number;
}

// ---- training ----------------------------------------------------------------------------------------

export interface TrainPoint {
  step: number;
  /** Mean minimised loss (reconstruction + alpha * KL) since the previous point, in the model's unit (nats per image or bits/dim). */
  loss: number;
  reconstruction: number;
  kl: number;
  /** Hierarchical models: the KL of each level (z1 given z2, and z2), same unit. */
  kl1?: number;
  kl2?: number;
  klWeight: number;
  imagesPerSecond: number;
}

export interface ValidPoint {
  step: number;
  /** Negative ELBO (alpha = 1) on the validation images, nats per image (an upper bound on the NLL). */
  negElbo: number;
  reconstruction: number;
  kl: number;
  kl1?: number;
  kl2?: number;
  images: number;
}

export interface History {
  train: TrainPoint[];
  valid: ValidPoint[];
}

export interface TrainOptions {
  /** Train until this step (absolute). */
  untilStep: number;
  /** Validation bound every this many steps (0: only when the target is reached). */
  validEvery: number;
  /** Validation images used for the bound. */
  validLimit: number;
  /** Seconds between IndexedDB autosaves while training (also saved when training stops). */
  autosaveSeconds: number;
}

export type TrainEvent =
  | { kind: 'status'; message: string }
  | { kind: 'compile'; done: number; total: number; what: string }
  | { kind: 'metrics'; point: TrainPoint; step: number; untilStep: number; elapsedSeconds: number }
  | { kind: 'valid'; point: ValidPoint }
  | { kind: 'saved'; step: number };

export type TrainOutcome =
  /** The target step was reached or pause() was called; the model is usable. */
  | { kind: 'done' | 'paused'; step: number }
  /** A NaN/Inf loss: the model was restored to the last good state. */
  | { kind: 'diverged'; step: number; restoredStep: number; message: string }
  /** The GPU device was lost: nothing more can run; the last saved checkpoint is still downloadable. */
  | { kind: 'device-lost'; step: number; message: string; savedStep: number | null }
  | { kind: 'error'; step: number; message: string };

// ---- exploring ---------------------------------------------------------------------------------------

/** Images as intensities in [0, 1], [count, channels, size, size] row-major (channels 1 when absent: grayscale; 3: planar RGB). */
export interface ImageBatch {
  count: number;
  size: number;
  channels?: number;
  pixels: Float32Array;
}

export interface SampleRequest {
  count: number;
  /** Seed per noise level (by NoiseLevel id). */
  seeds: Record<string, number>;
  /** Levels whose noise is shared by every image of the grid (the rest vary from image to image). */
  hold: Record<string, boolean>;
  /**
   * Grid rows (default 1). A held level draws its noise once per row and shares it along the row
   * (the paper's Figure 6: each row a new draw of the held levels, its cells vary the others).
   */
  rows?: number;
}

export interface SampleResult {
  images: ImageBatch;
  /** Probabilities p(x_i = 1 | ...) of the pixel-level pass (binary models; null for 256-way colour models). */
  probs: ImageBatch | null;
  milliseconds: number;
  /** Colour models: a hash of each cell's noise per level (level id -> one hash per cell), read back from the GPU. */
  noiseHashes?: Record<string, string[]>;
  /** Notes on how the samples were made (batch-norm re-estimation), in words. */
  note?: string;
}

export interface ReconstructionRow {
  /** A file name, or "test #123 (digit 7)". */
  label: string;
  /** The preprocessed input the model actually sees (resized, grayscale, binarized). */
  input: ImageBatch;
  /** Sampled reconstructions x ~ p(x | z), z ~ q(z | input). */
  samples: ImageBatch;
  /** Notes on preprocessing: original size, inverted or not. */
  note: string;
}

export interface UploadedFile {
  name: string;
  type: string;
  bytes: ArrayBuffer;
}

export interface UploadResult {
  rows: ReconstructionRow[];
  /** One message per file that could not be used, naming the file. */
  errors: { name: string; message: string }[];
}

export interface LatentResult {
  count: number;
  dim: number;
  /** 2-D coordinates: the latent itself when dim is 2, else its first two principal components. */
  points: Float32Array;
  labels: Uint8Array;
  projection: 'direct' | 'pca';
  /** k-NN classification error of the test points against embedded training images. */
  knn: { k: number; error: number; trainImages: number };
  bounds: { minX: number; maxX: number; minY: number; maxY: number };
}

export interface EvalOptions {
  k: number;
  limit: number;
  split: 'test' | 'valid';
}

/** The hierarchical model's bound: bits per dimension and its per-level split (nats per dimension). */
export interface BitsResult {
  bitsPerDim: number;
  natsPerDim: number;
  reconstruction: number;
  kl1: number;
  kl2: number;
  batchNorm: string;
}

export interface EvalResult {
  split: 'test' | 'valid';
  images: number;
  k: number;
  /** Importance-sampled NLL estimate, nats per image (equal to the bound for models without a latent). */
  nll: number;
  /** Negative ELBO (an upper bound), nats per image. */
  negElbo: number;
  reconstruction: number;
  kl: number;
  step: number;
  seconds: number;
  data: string;
  /** Hierarchical models (k is 1: the ELBO bound, no importance sampling). */
  bits?: BitsResult;
}

export interface CheckpointFile {
  name: string;
  bytes: Uint8Array;
  /** The run's config (what the safetensors metadata holds), pretty JSON. */
  configJson: string;
  step: number;
}

/** What was restored from IndexedDB, or opened from a checkpoint file. */
export interface Restored {
  summary: ModelSummary;
  data: DataInfo;
  step: number;
  history: History;
  /** Set when the checkpoint's setup differs from what was asked (e.g. another preset). */
  note?: string;
}

export interface AutosaveInfo {
  /** The run's id (restoreEarlier(id) finds it even after another run replaced it as current). */
  id: string;
  setup: Setup;
  step: number;
  savedAt: number;
}

/** A trained run the autosave keeps besides the current one (after a reset, a new build or an opened file). */
export interface EarlierRunInfo {
  id: string;
  setup: Setup;
  step: number;
  savedAt: number;
}

/** What create() and reset() return: the new model, and the trained run they replaced when one was kept. */
export interface Created {
  summary: ModelSummary;
  data: DataInfo;
  /** The replaced model, still restorable with restoreEarlier(kept.id); null when it held no training. */
  kept: EarlierRunInfo | null;
}

/** The adapter's measured speed (calibrate()), from which training times are estimated before a build. */
export interface Calibration {
  /** Adapter the numbers belong to, in words. */
  adapter: string;
  /** Convolution throughput (forward and both gradients) on the engine's own kernels, GFLOP/s (compilation excluded). */
  gflops: number;
  /** Wall time a training step spends per dispatch beyond its FLOPs, ms (from timed steps of a small model; at least a bare dispatch's cost). */
  dispatchMs: number;
  /** How long the calibration took, ms. */
  tookMs: number;
  measuredAt: number;
  /** The convolution kernels chosen for this adapter by timing each variant (see ConvVariantChoice). */
  convVariants: ConvVariantChoice;
}

/** Conv kernel variant per direction: 'cpu' (many outputs per thread) or 'tiled' (workgroup-shared tiles, GPU-shaped). */
export type ConvKernelVariant = 'cpu' | 'tiled';

/** What the calibration's timing of the conv variants found (src/engine/ops/conv-variants.ts). */
export interface ConvVariantChoice {
  choice: { forward: ConvKernelVariant; backwardInput: ConvKernelVariant; backwardWeight: ConvKernelVariant };
  /** False on a CPU (fallback) adapter: the CPU-shaped kernels, untimed (see calibrate.ts). */
  timed: boolean;
  /** The layer shapes timed, in the order of the timings. */
  shapes: string[];
  /** Best ms per shape for each direction and variant. */
  timings: { forward: Record<ConvKernelVariant, number[]>; backwardInput: Record<ConvKernelVariant, number[]>; backwardWeight: Record<ConvKernelVariant, number[]> };
}

export interface EngineStats {
  buffers: number;
  bytes: number;
  pipelines: number;
  dispatches: number;
}

/** The API the engine worker exposes through comlink. Methods reject with an Error whose message is meant for the user. */
export interface EngineApi {
  /** Acquires the GPU (once), runs the smoke-test op and reports what happened. Never throws. */
  probe(): Promise<ProbeResult>;
  families(): Promise<FamilyInfo[]>;
  /** Parameter count and FLOPs of a setup (builds it and throws it away), or why it is invalid. */
  describe(setup: Setup): Promise<Description>;
  /** Loads the data (once per image size) and builds a fresh model; discards the current one. */
  create(setup: Setup, onStatus?: (message: string) => void): Promise<Created>;
  /** Trains until options.untilStep or pause(); events through onEvent (a Comlink.proxy). */
  train(options: TrainOptions, onEvent: (event: TrainEvent) => void): Promise<TrainOutcome>;
  pause(): Promise<void>;
  /** Throws the trained state away and starts again from a fresh initialisation of the same setup. */
  reset(): Promise<Created>;
  sample(request: SampleRequest, onCompile?: (done: number, total: number) => void): Promise<SampleResult>;
  /** `level` (hierarchical models): keep z2 ('top') or z1 ('middle') and regenerate the rest. */
  reconstructTest(options: { count: number; samples: number; seed: number; offset: number; level?: 'top' | 'middle' }): Promise<ReconstructionRow[]>;
  reconstructUploads(files: UploadedFile[], options: { samples: number; seed: number; level?: 'top' | 'middle' }): Promise<UploadResult>;
  /**
   * The user's colour data (image files, zips, CIFAR-10 .bin batches): checked at `size`, bad files
   * skipped and named; throws when no image is usable (the previous choice is kept). Setup.data
   * 'files' then trains on them.
   */
  loadColourFiles(files: UploadedFile[], size: number, onProgress?: (message: string) => void): Promise<ColourFilesInfo>;
  latent(options: { limit: number; trainLimit: number; k: number }, onProgress?: (message: string) => void): Promise<LatentResult>;
  /** Decodes a latent point (2-D models): `count` pixel-level samples and the probabilities of the first. */
  decodeLatent(z: number[], options: { count: number; seed: number }): Promise<SampleResult>;
  evaluate(options: EvalOptions, onProgress: (done: number, total: number) => void): Promise<EvalResult>;
  /** The current model as a checkpoint; after a fault, the last good one (still available without a GPU). */
  checkpoint(): Promise<CheckpointFile>;
  /** Opens a checkpoint file (any preset of a known family); refuses a bad file, changing nothing. */
  openCheckpoint(bytes: Uint8Array, name: string, options?: { replace: boolean }): Promise<Restored>;
  autosaved(): Promise<AutosaveInfo | null>;
  restoreAutosave(): Promise<Restored | null>;
  clearAutosave(): Promise<void>;
  /** Trained runs the autosave keeps besides the current one, newest first. */
  earlierRuns(): Promise<EarlierRunInfo[]>;
  /** Makes an earlier run current again; the current one, when trained, becomes an earlier run. */
  restoreEarlier(id: string): Promise<Restored>;
  /** Measures the adapter's speed (about a second on a CPU adapter) for training-time estimates. */
  calibrate(): Promise<Calibration>;
  /** Uses a remembered calibration's conv kernel choice (instead of measuring again). */
  useConvVariants(choice: ConvVariantChoice['choice']): Promise<void>;
  stats(): Promise<EngineStats>;
  /** Test hooks: poison the parameters (a NaN loss follows) or destroy the device. */
  debugFault(kind: 'nan' | 'device-lost'): Promise<void>;
}

// The small interface each model family implements for the lab (src/worker/lab.ts). The lab owns what
// every family shares: GPU job ordering, the training loop with its metrics, autosave and the last
// good state, NaN and device-loss handling, checkpoint files and the autosave's restore. A family
// owns its data, its model and trainer, and what exploring a model means for it (sampling,
// reconstructions, evaluation). Drivers: family-mnist.ts, family-hier.ts.
import type { Checkpoint, JsonValue } from '../io/checkpoint';
import type * as E from '../engine';
import type {
  DataInfo,
  EvalOptions,
  EvalResult,
  FamilyId,
  History,
  ImageBatch,
  LatentResult,
  ModelSummary,
  ReconstructionRow,
  SampleRequest,
  SampleResult,
  Setup,
  TrainPoint,
  UploadResult,
  UploadedFile,
  ValidPoint,
} from './api';

/** A training readback: the mean of every term since the previous one, in the model's unit. */
export interface Reading {
  steps: number;
  values: Omit<TrainPoint, 'step' | 'imagesPerSecond'>;
}

export type Progress = (done: number, total: number) => void;

/** One built model of a family with its trainer and data. */
export interface FamilySession {
  readonly family: FamilyId;
  setup: Setup;
  summary: ModelSummary;
  history: History;
  readonly data: DataInfo;
  /** The trainer's step (set when a checkpoint is loaded). */
  readonly step: number;
  prewarmTraining(onProgress: Progress): Promise<void>;
  prewarmValidation(batch: number, onProgress: Progress): Promise<void>;
  /** Records one training step on the GPU (no readback). */
  trainStep(): void;
  readMetrics(): Promise<Reading>;
  /** The validation bound on `limit` held-out images. */
  validate(limit: number, batch: number): Promise<ValidPoint>;
  /** The checkpoint bytes of the current state (history and app info in `extra`). */
  save(extra: { [key: string]: JsonValue }): Promise<Uint8Array>;
  /** A file name for a checkpoint of this session at `step`. */
  fileName(step: number): string;
  sample(request: SampleRequest, onProgress?: Progress): Promise<SampleResult>;
  reconstructTest(options: { count: number; samples: number; seed: number; offset: number; level?: 'top' | 'middle' }): Promise<ReconstructionRow[]>;
  reconstructUploads(files: UploadedFile[], options: { samples: number; seed: number; level?: 'top' | 'middle' }): Promise<UploadResult>;
  evaluate(options: EvalOptions, onProgress: Progress): Promise<EvalResult>;
  latent?(options: { limit: number; trainLimit: number; k: number }, onProgress?: (m: string) => void): Promise<LatentResult>;
  decodeLatent?(z: number[], options: { count: number; seed: number }): Promise<SampleResult>;
  /** A parameter tensor (the NaN test hook poisons it). */
  firstParameter(): E.Tensor;
  dispose(): void;
}

/** Builds a family's sessions, from a setup or from a checkpoint. */
export interface FamilyDriver {
  readonly id: FamilyId;
  /** The cost of a setup (builds the model and throws it away); throws a readable error when it is invalid. */
  describe(setup: Setup): ModelSummary;
  /** Validates a setup without touching the GPU (throws a readable error). */
  check(setup: Setup): void;
  create(setup: Setup, onStatus?: (m: string) => void): Promise<FamilySession>;
  /** Whether a decoded checkpoint is one of this family's. */
  owns(checkpoint: Checkpoint): boolean;
  /** The checkpoint's model in words (for refusals), after owns(); throws a readable error for invalid sizes. */
  describeCheckpoint(checkpoint: Checkpoint): string;
  /** The session's model in words, the same way. */
  describeSession(session: FamilySession): string;
  /** Whether the checkpoint holds the same model (sizes) as the session, whatever its weights. */
  sameModel(checkpoint: Checkpoint, session: FamilySession): boolean;
  /** Builds a session from a checkpoint (setupHint/history: from the autosave); nothing is changed on failure. */
  open(checkpoint: Checkpoint, setupHint: Setup | null, history: History | null): Promise<{ session: FamilySession; note?: string }>;
}

export function message(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

export function batchOf(pixels: Float32Array, count: number, size: number, channels = 1): ImageBatch {
  return channels === 1 ? { count, size, pixels } : { count, size, channels, pixels };
}

/** The chart history saved with a checkpoint, when it has a usable one, cut at `step`. */
export function savedHistory(checkpoint: Checkpoint, history: History | null, step: number): History {
  const saved = (checkpoint.config.extra as { history?: History } | undefined)?.history;
  const h = history ?? (saved && Array.isArray(saved.train) && Array.isArray(saved.valid) ? saved : { train: [], valid: [] });
  return { train: h.train.filter((p) => p.step <= step), valid: h.valid.filter((p) => p.step <= step) };
}

/** A short stable hash of numbers (FNV-1a over float32 bits): the noise identity of a grid cell. */
export function hashValues(values: Float32Array | Uint32Array, start: number, end: number): string {
  const bits = values instanceof Float32Array ? new Uint32Array(values.buffer, values.byteOffset, values.length) : values;
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= bits[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

// Checkpoints: one safetensors file holding the model parameters (under their own names) and the
// optimizer state (under "optim/"), with the run's JSON config in the metadata key
// "pixelvae_config" (also writable as a separate .json next to it, for people and scripts).
// Loading is two-phase so a wrong or corrupt file never changes memory: decodeCheckpoint validates
// the bytes into plain arrays (and refuses NaN or Inf anywhere in them: a diverged run must not
// become the state a user resumes from), checkCompatible compares them with the model (one error
// listing every difference, tensors by name), and only then restoreTensors writes them to the GPU.
import { decodeSafetensors, encodeSafetensors, SafetensorsError, type SafeTensor } from './safetensors';
import { engine, type Tensor } from '../engine/tensor';

export const CONFIG_KEY = 'pixelvae_config';
export const OPTIM_PREFIX = 'optim/';
export const CHECKPOINT_FORMAT = 'pixelvae-lab-checkpoint';
export const CHECKPOINT_VERSION = 1;

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What a checkpoint records about its run. */
export interface CheckpointConfig {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** The model preset (e.g. "mnist-gated-pixelvae"). */
  preset: string;
  /** The model's sizes and options (widths, latent size, layers, ...). */
  sizes: { [key: string]: JsonValue };
  /** Training steps taken. */
  step: number;
  /** Optimizer name, hyperparameters and its own step count (Adam's bias correction). */
  optimizer: { name: string; step: number; [key: string]: JsonValue };
  /** The data: data set, split sizes, binarization (describeMnistData), its seed. */
  data: { dataset: string; split: { [key: string]: number }; [key: string]: JsonValue };
  /** The run's seed (initialisation, sampler, dynamic binarization). */
  seed: number;
  /** Anything else a caller wants kept (charts, notes). */
  extra?: { [key: string]: JsonValue };
}

/** A config before encoding: format and version are filled in. */
export type CheckpointConfigInput = Omit<CheckpointConfig, 'format' | 'version'> & Partial<Pick<CheckpointConfig, 'format' | 'version'>>;

export interface Checkpoint {
  config: CheckpointConfig;
  /** Model parameters by name, in file order. */
  params: Map<string, SafeTensor>;
  /** Optimizer state by name (without the "optim/" prefix). */
  optim: Map<string, SafeTensor>;
  /**
   * Byte ranges of the tensor data that no header entry claims (a tensor's entry deleted from the
   * header). checkCompatible refuses such a file, after naming the tensors the model misses.
   */
  unclaimed?: [number, number][];
}

export interface ExpectedTensor {
  name: string;
  shape: readonly number[];
  /** Defaults to F32. */
  dtype?: SafeTensor['dtype'];
}

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** A checkpoint refused because some of its values are NaN or infinite. */
export class NonFiniteCheckpointError extends CheckpointError {
  constructor(
    message: string,
    readonly tensors: NonFiniteTensor[],
  ) {
    super(message);
    this.name = 'NonFiniteCheckpointError';
  }
}

type TensorMap = Map<string, SafeTensor> | Record<string, SafeTensor>;
const entriesOf = (m: TensorMap): [string, SafeTensor][] => (m instanceof Map ? [...m.entries()] : Object.entries(m));

/** Checks a config's fields and types; `where` prefixes errors. */
export function validateConfig(value: unknown, where = 'checkpoint config'): CheckpointConfig {
  const fail = (message: string): never => {
    throw new CheckpointError(`${where}: ${message}`);
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail('is not a JSON object');
  const c = value as Record<string, unknown>;
  if (c.format !== CHECKPOINT_FORMAT) fail(`format is ${JSON.stringify(c.format)}, expected "${CHECKPOINT_FORMAT}" (not a PixelVAE Lab checkpoint?)`);
  if (typeof c.version !== 'number' || !Number.isInteger(c.version)) fail(`version ${JSON.stringify(c.version)} is not an integer`);
  if ((c.version as number) > CHECKPOINT_VERSION) {
    fail(`version ${c.version as number} was written by a newer PixelVAE Lab (this one reads up to version ${CHECKPOINT_VERSION})`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (typeof c.preset !== 'string' || c.preset === '') fail('preset is missing or not a string');
  if (!isObject(c.sizes)) fail('sizes is missing or not an object');
  if (!isCount(c.step)) fail(`step ${JSON.stringify(c.step)} is not a non-negative integer`);
  if (!isObject(c.optimizer)) fail('optimizer is missing or not an object');
  const o = c.optimizer as Record<string, unknown>;
  if (typeof o.name !== 'string') fail('optimizer.name is missing or not a string');
  if (!isCount(o.step)) fail(`optimizer.step ${JSON.stringify(o.step)} is not a non-negative integer`);
  if (!isObject(c.data)) fail('data is missing or not an object');
  const d = c.data as Record<string, unknown>;
  if (typeof d.dataset !== 'string') fail('data.dataset is missing or not a string');
  if (!isObject(d.split) || !Object.values(d.split).every(isCount)) fail('data.split is not an object of counts');
  if (typeof c.seed !== 'number' || !Number.isFinite(c.seed)) fail(`seed ${JSON.stringify(c.seed)} is not a number`);
  if (c.extra !== undefined && !isObject(c.extra)) fail('extra is not an object');
  return c as unknown as CheckpointConfig;
}

function completeConfig(config: CheckpointConfigInput): CheckpointConfig {
  return validateConfig({ ...config, format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION }, 'encodeCheckpoint');
}

/** The config as the separate, human-readable JSON file. */
export function configJson(config: CheckpointConfigInput | CheckpointConfig): string {
  return `${JSON.stringify(completeConfig(config), null, 2)}\n`;
}

/** Parses and validates a separate config JSON file. */
export function parseConfigJson(text: string, name = 'checkpoint config'): CheckpointConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(`${name}: not valid JSON (${(error as Error).message})`);
  }
  return validateConfig(value, name);
}

/** Encodes parameters, optimizer state (stored as "optim/<name>") and config into safetensors bytes. */
export function encodeCheckpoint(checkpoint: { config: CheckpointConfigInput; params: TensorMap; optim?: TensorMap }): Uint8Array {
  const config = completeConfig(checkpoint.config);
  const tensors = new Map<string, SafeTensor>();
  for (const [name, t] of entriesOf(checkpoint.params)) {
    if (name.startsWith(OPTIM_PREFIX)) throw new CheckpointError(`encodeCheckpoint: parameter '${name}' uses the reserved prefix '${OPTIM_PREFIX}'`);
    tensors.set(name, t);
  }
  for (const [name, t] of entriesOf(checkpoint.optim ?? {})) tensors.set(OPTIM_PREFIX + name, t);
  try {
    return encodeSafetensors(tensors, { [CONFIG_KEY]: JSON.stringify(config) });
  } catch (error) {
    if (error instanceof SafetensorsError) throw new CheckpointError(`encodeCheckpoint: ${error.message}`);
    throw error;
  }
}

const shapeText = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** A tensor holding NaN or infinite values: its key in the file, how many, and the first one. */
export interface NonFiniteTensor {
  key: string;
  shape: number[];
  count: number;
  size: number;
  first: number;
  value: number;
}

/** The F32 tensors (under their keys in the file) that hold NaN or infinite values, in the given order. */
export function nonFiniteTensors(tensors: Iterable<[string, SafeTensor]>): NonFiniteTensor[] {
  const out: NonFiniteTensor[] = [];
  for (const [key, t] of tensors) {
    if (!(t.data instanceof Float32Array)) continue;
    const data = t.data;
    let count = 0;
    let first = -1;
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        if (count === 0) first = i;
        count += 1;
      }
    }
    if (count > 0) out.push({ key, shape: [...t.shape], count, size: data.length, first, value: data[first] });
  }
  return out;
}

const valueText = (v: number): string => (Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf');

/** The tensors of a decoded checkpoint under their keys in the file ("optim/" for the optimizer's). */
function fileEntries(checkpoint: Pick<Checkpoint, 'params' | 'optim'>): [string, SafeTensor][] {
  return [...checkpoint.params.entries(), ...[...checkpoint.optim.entries()].map(([k, t]): [string, SafeTensor] => [OPTIM_PREFIX + k, t])];
}

/** The tensors of a decoded checkpoint (parameters, buffers, optimizer state) that hold NaN or Inf. */
export function checkpointNonFinite(checkpoint: Pick<Checkpoint, 'params' | 'optim'>): NonFiniteTensor[] {
  return nonFiniteTensors(fileEntries(checkpoint));
}

/**
 * Throws NonFiniteCheckpointError naming every tensor (parameter, buffer or optimizer moment) that
 * holds NaN or Inf, with the count and the first index. A checkpoint with such values is the state of
 * a run that diverged; loading it would replace a working model by one that can only produce NaN.
 */
export function assertFinite(checkpoint: Pick<Checkpoint, 'params' | 'optim'>, name = 'checkpoint'): void {
  const entries = fileEntries(checkpoint);
  const bad = nonFiniteTensors(entries);
  if (bad.length === 0) return;
  const lines = bad.map((b) => `  - '${b.key}' ${shapeText(b.shape)}: ${b.count} of ${b.size} values, first at index ${b.first} (${valueText(b.value)})`);
  throw new NonFiniteCheckpointError(
    `${name}: non-finite values (NaN or Inf) in ${bad.length} of ${entries.length} tensors; nothing was loaded:\n${lines.join('\n')}\n` +
      'The run that wrote this file had diverged, or the file is damaged. Open an earlier checkpoint.',
    bad,
  );
}

/**
 * The message for JSON text opened as a checkpoint (the app downloads the config as a .json beside
 * each checkpoint, and the two are easily swapped), or null when the bytes are not JSON.
 */
function jsonInsteadOfCheckpoint(bytes: Uint8Array, name: string): string | null {
  let start = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3; // a UTF-8 byte order mark
  while (start < bytes.length && (bytes[start] === 0x20 || bytes[start] === 0x09 || bytes[start] === 0x0a || bytes[start] === 0x0d)) start++;
  if (bytes[start] !== 0x7b && bytes[start] !== 0x5b) return null; // '{' or '['
  if (bytes.length > 50_000_000) return null; // no config is this large; do not decode a huge file as text
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(start)));
  } catch {
    return null;
  }
  const c = value as Record<string, unknown> | null;
  if (c !== null && typeof c === 'object' && !Array.isArray(c) && c.format === CHECKPOINT_FORMAT) {
    const preset = typeof c.preset === 'string' ? c.preset : '?';
    const step = typeof c.step === 'number' ? c.step : '?';
    return `${name} is the config JSON saved beside a checkpoint (preset '${preset}', step ${step}), not a checkpoint: open the .safetensors file downloaded with it.`;
  }
  return `${name} is a JSON text file, not a checkpoint: open a .safetensors checkpoint file.`;
}

export interface DecodeCheckpointOptions {
  /**
   * Skip the NaN/Inf check (the caller runs nonFiniteTensors itself, e.g. the app's autosave, which
   * treats non-finite values as divergence rather than as a bad file).
   */
  allowNonFinite?: boolean;
}

/**
 * Decodes and validates checkpoint bytes into plain arrays (nothing touches the GPU). Throws
 * CheckpointError for a corrupt safetensors file, a safetensors file that is not one of ours (or the
 * config JSON instead of the checkpoint), a bad config, or NaN/Inf values (NonFiniteCheckpointError).
 */
export function decodeCheckpoint(bytes: Uint8Array, name = 'checkpoint', options: DecodeCheckpointOptions = {}): Checkpoint {
  let file;
  try {
    file = decodeSafetensors(bytes, name, { allowUnclaimed: true });
  } catch (error) {
    if (error instanceof SafetensorsError) {
      const json = jsonInsteadOfCheckpoint(bytes, name);
      if (json) throw new CheckpointError(json);
      throw new CheckpointError(`${error.message} (not a valid checkpoint file)`);
    }
    throw error;
  }
  const text = file.metadata[CONFIG_KEY];
  if (text === undefined) {
    throw new CheckpointError(
      `${name}: not a PixelVAE Lab checkpoint: its safetensors metadata has no '${CONFIG_KEY}' ` +
        `(keys: ${Object.keys(file.metadata).join(', ') || 'none'}); it may be weights from another tool`,
    );
  }
  const config = parseConfigJson(text, `${name}: '${CONFIG_KEY}'`);
  const params = new Map<string, SafeTensor>();
  const optim = new Map<string, SafeTensor>();
  for (const [key, t] of file.tensors) {
    if (key.startsWith(OPTIM_PREFIX)) optim.set(key.slice(OPTIM_PREFIX.length), t);
    else params.set(key, t);
  }
  const checkpoint: Checkpoint = { config, params, optim, unclaimed: file.unclaimed };
  if (!options.allowNonFinite) assertFinite(checkpoint, name);
  return checkpoint;
}

function compareTensors(kind: string, have: Map<string, SafeTensor>, expected: readonly ExpectedTensor[], problems: string[]): void {
  const wanted = new Set<string>();
  for (const e of expected) {
    wanted.add(e.name);
    const t = have.get(e.name);
    if (!t) {
      problems.push(`missing ${kind} '${e.name}' ${shapeText(e.shape)}`);
      continue;
    }
    const sameShape = t.shape.length === e.shape.length && t.shape.every((d, i) => d === e.shape[i]);
    if (!sameShape) problems.push(`shape mismatch for ${kind} '${e.name}': checkpoint ${shapeText(t.shape)}, model ${shapeText(e.shape)}`);
    const dtype = e.dtype ?? 'F32';
    if (t.dtype !== dtype) problems.push(`dtype mismatch for ${kind} '${e.name}': checkpoint ${t.dtype}, model ${dtype}`);
  }
  for (const [name, t] of have) {
    if (!wanted.has(name)) problems.push(`unexpected ${kind} '${name}' ${shapeText(t.shape)} (the model has no such ${kind})`);
  }
}

/**
 * Throws one CheckpointError listing every difference between the checkpoint and the model: another
 * preset, missing or unexpected tensors, shape or dtype mismatches (and the same for the optimizer
 * state when `optim` is given). Call it before loading anything.
 */
export function checkCompatible(
  checkpoint: Checkpoint,
  expected: readonly ExpectedTensor[],
  preset: string,
  optim?: readonly ExpectedTensor[],
): void {
  const problems: string[] = [];
  if (checkpoint.config.preset !== preset) problems.push(`other preset: checkpoint is '${checkpoint.config.preset}', model is '${preset}'`);
  compareTensors('tensor', checkpoint.params, expected, problems);
  if (optim) compareTensors('optimizer tensor', checkpoint.optim, optim, problems);
  // Listed after the names: a deleted header entry shows as a missing tensor above and its bytes here.
  for (const [begin, end] of checkpoint.unclaimed ?? []) problems.push(`${end - begin} bytes of tensor data at [${begin}, ${end}) belong to no tensor in the file's header`);
  if (problems.length > 0) {
    throw new CheckpointError(
      `checkpoint (preset '${checkpoint.config.preset}', step ${checkpoint.config.step}) does not fit this model; nothing was loaded:\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
  }
}

// ---- GPU tensors <-> checkpoint arrays ---------------------------------------------------------

type Tensors = Map<string, Tensor> | Record<string, Tensor>;
const tensorEntries = (m: Tensors): [string, Tensor][] => (m instanceof Map ? [...m.entries()] : Object.entries(m));

/** Reads GPU tensors back into checkpoint arrays (f32 -> F32, u32 -> U32). */
export async function snapshotTensors(tensors: Tensors): Promise<Map<string, SafeTensor>> {
  const out = new Map<string, SafeTensor>();
  for (const [name, t] of tensorEntries(tensors)) {
    const data = await t.data();
    out.set(name, { dtype: t.dtype === 'u32' ? 'U32' : 'F32', shape: [...t.shape], data });
  }
  return out;
}

const expectedOf = (tensors: Tensors): ExpectedTensor[] =>
  tensorEntries(tensors).map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype === 'u32' ? 'U32' : 'F32' }));

/**
 * Checks compatibility (preset, names, shapes, dtypes; optimizer state too when `optim` targets are
 * given) and only then writes every array into its GPU tensor. On any difference it throws before
 * writing anything.
 */
export function restoreTensors(checkpoint: Checkpoint, params: Tensors, preset: string, optim?: Tensors): void {
  checkCompatible(checkpoint, expectedOf(params), preset, optim ? expectedOf(optim) : undefined);
  const gpu = engine().gpu;
  for (const [name, t] of tensorEntries(params)) if (t.size > 0) gpu.write(t.gpuBuffer, checkpoint.params.get(name)!.data, t.byteOffset);
  if (optim) for (const [name, t] of tensorEntries(optim)) if (t.size > 0) gpu.write(t.gpuBuffer, checkpoint.optim.get(name)!.data, t.byteOffset);
}

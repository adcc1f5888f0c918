// Checkpoints of hierarchical PixelVAE models (src/io/checkpoint.ts): parameters, batch-norm running
// statistics ("buffer/<name>") and Adam moments in one safetensors file, the config and the data's
// description in its metadata. Loading checks everything before writing anything to the GPU.
import { assertFinite, CheckpointError, decodeCheckpoint, encodeCheckpoint, restoreTensors, snapshotTensors, type Checkpoint, type JsonValue } from '../../io/checkpoint';
import type { Tensor } from '../../engine';
import { HIER_PRESETS, hierConfig, type HierConfig, type HierPreset } from './config';
import { HierarchicalPixelVae } from './model';
import type { HierTrainer } from './trainer';

export const HIER_PRESET_PREFIX = 'hier-';

export interface HierRunInfo {
  step: number;
  seed: number;
  batchSize: number;
  lr: number;
  /** Where the data came from and how it was split (colour-node.ts's description). */
  data: string;
  trainImages: number;
  heldOutImages: number;
  extra?: { [key: string]: JsonValue };
}

function optimTensors(model: HierarchicalPixelVae, trainer: HierTrainer): Map<string, Tensor> {
  const { m, v } = trainer.optimizer.moments;
  const out = new Map<string, Tensor>();
  model.params.names().forEach((name, i) => {
    out.set(`m/${name}`, m[i]);
    out.set(`v/${name}`, v[i]);
  });
  return out;
}

export async function saveHierCheckpoint(model: HierarchicalPixelVae, run: HierRunInfo, trainer?: HierTrainer): Promise<Uint8Array> {
  const params = await snapshotTensors(model.stateTensors());
  const optim = trainer && trainer.optimizer.t > 0 ? await snapshotTensors(optimTensors(model, trainer)) : undefined;
  const { preset, seed: initSeed, ...sizes } = model.config;
  return encodeCheckpoint({
    config: {
      preset: HIER_PRESET_PREFIX + preset,
      sizes: { ...(sizes as unknown as { [key: string]: JsonValue }), initSeed },
      step: run.step,
      optimizer: { name: 'adam', step: trainer?.optimizer.t ?? 0, lr: run.lr, clipGlobalNorm: trainer?.optimizer.clipGlobalNorm ?? 5, batchSize: run.batchSize },
      data: { dataset: 'colour', split: { train: run.trainImages, heldOut: run.heldOutImages }, description: run.data },
      seed: run.seed,
      extra: run.extra,
    },
    params,
    optim,
  });
}

export function hierConfigFromCheckpoint(checkpoint: Checkpoint): HierConfig {
  const preset = checkpoint.config.preset.startsWith(HIER_PRESET_PREFIX) ? checkpoint.config.preset.slice(HIER_PRESET_PREFIX.length) : '';
  if (!(HIER_PRESETS as readonly string[]).includes(preset)) {
    throw new CheckpointError(`checkpoint preset '${checkpoint.config.preset}' is not a hierarchical PixelVAE (expected one of ${HIER_PRESETS.map((p) => HIER_PRESET_PREFIX + p).join(', ')})`);
  }
  const { initSeed, ...rest } = checkpoint.config.sizes as Record<string, unknown>;
  try {
    return hierConfig(preset as HierPreset, { ...(rest as Partial<HierConfig>), seed: typeof initSeed === 'number' ? initSeed : 1 });
  } catch (error) {
    throw new CheckpointError(`checkpoint sizes are not a valid model: ${(error as Error).message}`);
  }
}

/** Loads a decoded checkpoint into a model (and the trainer's optimizer, when given and saved); refuses, changing nothing, if it does not fit. */
export function loadHierInto(model: HierarchicalPixelVae, checkpoint: Checkpoint, trainer?: HierTrainer): void {
  const preset = HIER_PRESET_PREFIX + model.config.preset;
  // decodeCheckpoint refuses NaN/Inf already; checked again here for checkpoints built in memory.
  assertFinite(checkpoint);
  if (trainer && checkpoint.optim.size > 0) {
    // Adam's moments exist only after its first step: take one step's worth of state shape from the params.
    if (trainer.optimizer.t === 0) {
      const zeros = model.params.tensors().map((p) => new Float32Array(p.size));
      trainer.optimizer.restore(model.params.tensors(), zeros, zeros, 0);
    }
    restoreTensors(checkpoint, model.stateTensors(), preset, optimTensors(model, trainer));
    trainer.optimizer.t = checkpoint.config.optimizer.step;
  } else {
    restoreTensors(checkpoint, model.stateTensors(), preset);
  }
  trainer?.resumeAt(checkpoint.config.step);
}

/** Decodes checkpoint bytes and builds the model they describe, with its parameters and statistics loaded. */
export function loadHierCheckpoint(bytes: Uint8Array, name = 'checkpoint'): { model: HierarchicalPixelVae; checkpoint: Checkpoint } {
  const checkpoint = decodeCheckpoint(bytes, name);
  const model = new HierarchicalPixelVae(hierConfigFromCheckpoint(checkpoint));
  try {
    loadHierInto(model, checkpoint);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return { model, checkpoint };
}

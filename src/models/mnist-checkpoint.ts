// Checkpoints of MNIST-family models: parameters and Adam moments in one safetensors file, the run's
// config in its metadata. Loading validates everything before touching the GPU.
import { describeMnistData, MNIST_TEST_COUNT, MNIST_TRAIN_COUNT, MNIST_VALID_COUNT } from '../data/mnist';
import { assertFinite, CheckpointError, checkCompatible, decodeCheckpoint, encodeCheckpoint, snapshotTensors, type Checkpoint, type JsonValue } from '../io/checkpoint';
import { MNIST_PRESETS, mnistConfig, type MnistModelConfig, type MnistPreset } from './config';
import { MnistModel } from './mnist-model';
import type { MnistTrainer } from './trainer';

const PRESET_PREFIX = 'mnist-';

export interface RunInfo {
  step: number;
  seed: number;
  batchSize: number;
  lr: number;
  clipValue: number;
  binarizationSeed: number;
  extra?: { [key: string]: JsonValue };
}

/** Encodes a model (and its optimizer state, when a trainer is given) as checkpoint bytes. */
export async function saveMnistCheckpoint(model: MnistModel, run: RunInfo, trainer?: MnistTrainer): Promise<Uint8Array> {
  const params = await snapshotTensors(new Map(model.params.entriesList()));
  let optim: Map<string, import('../io/safetensors').SafeTensor> | undefined;
  if (trainer && trainer.optimizer.t > 0) {
    const { m, v } = trainer.optimizer.moments;
    const names = model.params.names();
    const moments = new Map<string, import('../engine').Tensor>();
    names.forEach((name, i) => {
      moments.set(`m/${name}`, m[i]);
      moments.set(`v/${name}`, v[i]);
    });
    optim = await snapshotTensors(moments);
  }
  const { preset, seed: _initSeed, ...sizes } = model.config;
  return encodeCheckpoint({
    config: {
      preset: PRESET_PREFIX + preset,
      sizes: { ...(sizes as unknown as { [key: string]: JsonValue }), initSeed: model.config.seed },
      step: run.step,
      optimizer: { name: 'adam', step: trainer?.optimizer.t ?? 0, lr: run.lr, clipValue: run.clipValue, batchSize: run.batchSize },
      data: {
        dataset: 'mnist',
        split: { train: MNIST_TRAIN_COUNT, valid: MNIST_VALID_COUNT, test: MNIST_TEST_COUNT },
        binarization: describeMnistData(run.binarizationSeed),
        binarizationSeed: run.binarizationSeed,
      },
      seed: run.seed,
      extra: run.extra,
    },
    params,
    optim,
  });
}

/** The model configuration a checkpoint describes (validated; throws CheckpointError otherwise). */
export function configFromCheckpoint(checkpoint: Checkpoint): MnistModelConfig {
  const preset = checkpoint.config.preset.startsWith(PRESET_PREFIX) ? checkpoint.config.preset.slice(PRESET_PREFIX.length) : '';
  if (!(MNIST_PRESETS as readonly string[]).includes(preset)) {
    throw new CheckpointError(`checkpoint preset '${checkpoint.config.preset}' is not an MNIST model (expected one of ${MNIST_PRESETS.map((p) => PRESET_PREFIX + p).join(', ')})`);
  }
  const sizes = checkpoint.config.sizes as Record<string, unknown>;
  const { initSeed, ...rest } = sizes;
  try {
    return mnistConfig(preset as MnistPreset, { ...(rest as Partial<MnistModelConfig>), seed: typeof initSeed === 'number' ? initSeed : 1 });
  } catch (error) {
    throw new CheckpointError(`checkpoint sizes are not a valid model: ${(error as Error).message}`);
  }
}

/** Decodes checkpoint bytes and builds the model they describe, with its parameters loaded. */
export function loadMnistCheckpoint(bytes: Uint8Array, name = 'checkpoint'): { model: MnistModel; checkpoint: Checkpoint } {
  const checkpoint = decodeCheckpoint(bytes, name);
  const config = configFromCheckpoint(checkpoint);
  const model = new MnistModel(config);
  try {
    loadInto(model, checkpoint);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return { model, checkpoint };
}

/**
 * Loads a decoded checkpoint into an existing model; refuses (changing nothing) if it does not fit.
 * With a trainer, the run resumes too: Adam's state, the step and the batch order.
 */
export function loadInto(model: MnistModel, checkpoint: Checkpoint, trainer?: MnistTrainer): void {
  // One check for names, shapes and dtypes (the same as every loader's, so a missing or extra tensor
  // is named); with a trainer and saved moments, Adam's m/<name> and v/<name> must all be there too.
  const expected = model.params.entriesList().map(([name, t]) => ({ name, shape: t.shape }));
  const withOptim = trainer !== undefined && checkpoint.optim.size > 0;
  const moments = withOptim ? expected.flatMap((e) => [{ name: `m/${e.name}`, shape: e.shape }, { name: `v/${e.name}`, shape: e.shape }]) : undefined;
  checkCompatible(checkpoint, expected, PRESET_PREFIX + model.config.preset, moments);
  // decodeCheckpoint refuses NaN/Inf already; checked again here for checkpoints built in memory.
  assertFinite(checkpoint);
  const names = model.params.names();
  const values = new Map<string, Float32Array>();
  for (const name of names) values.set(name, checkpoint.params.get(name)!.data as Float32Array);
  model.params.assign(values);
  if (trainer && withOptim) {
    const m = names.map((n) => checkpoint.optim.get(`m/${n}`)!.data as Float32Array);
    const v = names.map((n) => checkpoint.optim.get(`v/${n}`)!.data as Float32Array);
    trainer.optimizer.restore(model.params.tensors(), m, v, checkpoint.config.optimizer.step);
  }
  trainer?.resumeAt(checkpoint.config.step);
}

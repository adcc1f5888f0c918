// The `pixelvae` command line: train, eval, sample, reconstruct and knn for the MNIST model family,
// on whatever WebGPU adapter Dawn finds (a real GPU through its Vulkan driver, or lavapipe /
// SwiftShader on a machine without one). Same engine as the browser app.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as E from '../engine';
import { GpuMnist, type GpuImageSet } from '../data/gpu-dataset';
import { describeMnistData, DEFAULT_BINARIZATION_SEED, subset } from '../data/mnist';
import { loadMnist } from '../data/mnist-node';
import { binarize, preprocessImage, resizeSet } from '../data/preprocess';
import { imageGrid } from '../io/grid';
import { readPng, writePng } from '../io/png-node';
import { decodeCheckpoint } from '../io/checkpoint';
import { refuseNonFinite, writeFiniteCheckpoint } from './finite';
import { MNIST_PRESETS, mnistConfig, type MnistModelConfig, type MnistPreset } from '../models/config';
import { MnistModel } from '../models/mnist-model';
import { loadInto, loadMnistCheckpoint, saveMnistCheckpoint } from '../models/mnist-checkpoint';
import { MnistTrainer, evaluate } from '../models/trainer';
import { embed, knnError } from '../models/latent';
import { parseFlags, usage, UsageError, type Flags, type Parsed } from './args';
import { adapterName, need, startEngine } from './common';
import { Progress, formatSeconds } from './progress';
import { HIER_COMMANDS } from './hier';

const COMMON: Flags = {
  seed: { type: 'int', help: 'seed for noise, batch order and binarization draws', default: 1 },
  'binarization-seed': { type: 'int', help: 'seed of the fixed valid/test binarization', default: DEFAULT_BINARIZATION_SEED },
  help: { type: 'boolean', help: 'show this help' },
};

const MODEL_FLAGS: Flags = {
  preset: { type: 'string', help: `model preset: ${MNIST_PRESETS.join(', ')}` },
  latent: { type: 'int', help: 'latent dimension (2 for the latent-space figure)' },
  layers: { type: 'int', help: 'residual PixelCNN layers (0 to 12+)' },
  width: { type: 'int', help: 'PixelCNN stack width P' },
  filter: { type: 'int', help: 'PixelCNN residual kernel size (odd, <= 7)' },
  'input-filter': { type: 'int', help: 'PixelCNN input kernel size (odd, <= 7)' },
  'output-width': { type: 'int', help: 'width of the 1x1 output layers (upsampling variants)' },
  warmup: { type: 'int', help: 'KL warm-up steps (linear)' },
  'init-seed': { type: 'int', help: 'seed of parameter initialisation', default: 1 },
  'image-size': { type: 'int', help: 'train on digits resized to N x N (a multiple of 4; small sizes for slow adapters)', default: 28 },
  'encoder-dims': { type: 'string', help: 'encoder widths, four comma-separated numbers (32,32,64,64)' },
  'decoder-dims': { type: 'string', help: 'upsampling decoder widths, three comma-separated numbers (64,64,32)' },
  'feature-norm': { type: 'string', help: 'gated-pixelvae: tanh (default) or rms-tanh (each image\'s decoder features divided by their rms before the tanh)' },
};

const COMMANDS: Record<string, { summary: string; flags: Flags; run: (f: Parsed) => Promise<void> }> = {
  train: {
    summary: 'Train a model on dynamically binarized MNIST; keeps last.safetensors and best.safetensors (best validation bound) in --out.',
    flags: {
      ...MODEL_FLAGS,
      steps: { type: 'int', help: 'training steps', default: 1000 },
      batch: { type: 'int', help: 'batch size', default: 100 },
      lr: { type: 'number', help: 'Adam learning rate', default: 1e-3 },
      clip: { type: 'number', help: 'element-wise gradient clipping bound (0: off)', default: 1 },
      'valid-every': { type: 'int', help: 'steps between validation bounds (0: only at the end)', default: 500 },
      'valid-limit': { type: 'int', help: 'validation images used', default: 10000 },
      'log-every': { type: 'int', help: 'steps between metric readbacks', default: 50 },
      'train-limit': { type: 'int', help: 'use only the first N training images' },
      out: { type: 'string', help: 'output folder', default: 'runs/latest' },
      resume: { type: 'string', help: 'checkpoint to resume from (model, optimizer state, step)' },
      ...COMMON,
    },
    run: train,
  },
  eval: {
    summary: 'Negative ELBO and importance-sampled NLL (nats per image) on the test (or valid) split.',
    flags: {
      checkpoint: { type: 'string', help: 'checkpoint file (.safetensors)' },
      split: { type: 'string', help: 'test or valid', default: 'test' },
      k: { type: 'int', help: 'importance samples per image', default: 10 },
      limit: { type: 'int', help: 'evaluate only the first N images' },
      batch: { type: 'int', help: 'images per batch', default: 100 },
      ...COMMON,
    },
    run: evalCommand,
  },
  sample: {
    summary: 'Draw samples (autoregressively on the GPU) and write a PNG grid.',
    flags: {
      checkpoint: { type: 'string', help: 'checkpoint file' },
      n: { type: 'int', help: 'number of samples', default: 16 },
      out: { type: 'string', help: 'PNG file to write', default: 'samples.png' },
      probs: { type: 'boolean', help: 'draw the last pass\'s probabilities instead of the binary samples' },
      scale: { type: 'int', help: 'pixel upscaling in the PNG', default: 2 },
      ...COMMON,
    },
    run: sampleCommand,
  },
  reconstruct: {
    summary: 'Reconstruct PNG images: each row shows the preprocessed input, then sampled reconstructions.',
    flags: {
      checkpoint: { type: 'string', help: 'checkpoint file' },
      input: { type: 'strings', help: 'PNG file (repeat for several)' },
      out: { type: 'string', help: 'PNG grid to write', default: 'reconstructions.png' },
      samples: { type: 'int', help: 'reconstructions per image', default: 4 },
      scale: { type: 'int', help: 'pixel upscaling in the PNG', default: 2 },
      ...COMMON,
    },
    run: reconstructCommand,
  },
  knn: {
    summary: 'k-nearest-neighbour classification error in latent space (encoder means), test split.',
    flags: {
      checkpoint: { type: 'string', help: 'checkpoint file' },
      k: { type: 'int', help: 'neighbours', default: 5 },
      'train-limit': { type: 'int', help: 'training images used as the labelled set', default: 50000 },
      'test-limit': { type: 'int', help: 'test images classified', default: 10000 },
      ...COMMON,
    },
    run: knnCommand,
  },
  ...HIER_COMMANDS,
};

function mainUsage(): string {
  return [
    'usage: pixelvae <command> [flags]        (npm run cli -- <command> ...)',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`),
    '',
    'Run `pixelvae <command> --help` for its flags. Data: ' + describeMnistData(),
    'GPU: Dawn picks the system Vulkan driver; PIXELVAE_VULKAN_ICD=/path/to/icd.json chooses one.',
  ].join('\n');
}

/** MNIST on the GPU, resized to the model's image size (area averaging) when it is not 28. */
async function loadData(flags: Parsed, imageSize: number): Promise<GpuMnist> {
  const split = await loadMnist();
  const limit = flags['train-limit'] as number | undefined;
  const train = limit ? subset(split.train, 'train', 0, Math.min(limit, split.train.count)) : split.train;
  const sized = { train: resizeSet(train, imageSize), valid: resizeSet(split.valid, imageSize), test: resizeSet(split.test, imageSize) };
  return GpuMnist.upload(sized, flags['binarization-seed'] as number);
}

function dims(flag: string, value: unknown, count: number): number[] | undefined {
  if (value === undefined) return undefined;
  const list = String(value).split(',').map(Number);
  if (list.length !== count || list.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new UsageError(`train: --${flag} expects ${count} comma-separated positive integers, got '${String(value)}'`);
  }
  return list;
}

async function readCheckpoint(flags: Parsed, command: string): Promise<{ model: MnistModel; step: number }> {
  const path = need<string>(flags, 'checkpoint', command);
  const bytes = new Uint8Array(await readFile(path));
  const { model, checkpoint } = loadMnistCheckpoint(bytes, path);
  return { model, step: checkpoint.config.step };
}

// ---- train ----------------------------------------------------------------------------------------

async function train(flags: Parsed): Promise<void> {
  const gpu = await startEngine();
  const out = flags.out as string;
  await mkdir(out, { recursive: true });
  let model: MnistModel;
  let resumeBytes: Uint8Array | null = null;
  if (flags.resume) {
    resumeBytes = new Uint8Array(await readFile(flags.resume as string));
    model = loadMnistCheckpoint(resumeBytes, flags.resume as string).model;
  } else {
    const preset = need<string>(flags, 'preset', 'train');
    if (!(MNIST_PRESETS as readonly string[]).includes(preset)) throw new UsageError(`train: unknown preset '${preset}' (one of ${MNIST_PRESETS.join(', ')})`);
    const overrides: Record<string, number | string> = {};
    const map: [string, string][] = [['latent', 'latentDim'], ['layers', 'pixelLayers'], ['width', 'pixelWidth'], ['filter', 'filterSize'], ['input-filter', 'inputFilterSize'], ['output-width', 'outputWidth'], ['warmup', 'klWarmupSteps'], ['init-seed', 'seed'], ['image-size', 'imageSize']];
    for (const [flag, key] of map) if (flags[flag] !== undefined) overrides[key] = flags[flag] as number;
    if (flags['feature-norm'] !== undefined) overrides.featureNorm = flags['feature-norm'] as string;
    const encoderDims = dims('encoder-dims', flags['encoder-dims'], 4);
    const decoderDims = dims('decoder-dims', flags['decoder-dims'], 3);
    try {
      model = new MnistModel(mnistConfig(preset as MnistPreset, {
        ...overrides,
        ...(encoderDims ? { encoderDims: encoderDims as MnistModelConfig['encoderDims'] } : {}),
        ...(decoderDims ? { decoderDims: decoderDims as MnistModelConfig['decoderDims'] } : {}),
      }));
    } catch (error) {
      throw new UsageError(`train: ${(error as Error).message}`);
    }
  }
  const data = await loadData(flags, model.config.imageSize);
  const batchSize = flags.batch as number;
  const run = { seed: flags.seed as number, batchSize, lr: flags.lr as number, clipValue: flags.clip as number, binarizationSeed: flags['binarization-seed'] as number };
  const trainer = new MnistTrainer(model, data.train, { batchSize, lr: run.lr, clipValue: run.clipValue, seed: run.seed });
  if (resumeBytes) {
    const checkpoint = decodeCheckpoint(resumeBytes);
    loadInto(model, checkpoint, trainer);
    process.stderr.write(`resumed at step ${trainer.step}\n`);
  }
  const c = model.config;
  process.stderr.write(`model ${c.preset}: ${model.params.count()} parameters, ${(2 * model.macsPerImage() / 1e6).toFixed(1)} MFLOP forward per image\n`);
  process.stderr.write(`data: ${data.description}; training on ${data.train.count} images\n`);
  const t0 = performance.now();
  const compiled = await trainer.prewarm((done, total) => process.stderr.write(`\rcompiling shaders ${done}/${total}`));
  process.stderr.write(`\rcompiled ${compiled} kernel variants in ${((performance.now() - t0) / 1000).toFixed(1)}s\n`);

  const steps = flags.steps as number;
  const end = trainer.step + steps;
  const logEvery = Math.max(1, flags['log-every'] as number);
  const validEvery = flags['valid-every'] as number;
  const validLimit = flags['valid-limit'] as number;
  const log: string[] = [];
  let best = Infinity;
  const progress = new Progress('train', steps, 'steps');
  const startStep = trainer.step;
  let last = '';
  const save = async (name: string, extra: Record<string, number>): Promise<void> => {
    await writeFiniteCheckpoint(out, name, await saveMnistCheckpoint(model, { ...run, step: trainer.step, extra }, trainer), trainer.step);
  };
  const validate = async (): Promise<void> => {
    const result = await evaluate(model, data.valid, { k: 1, batchSize: Math.min(batchSize, 100), seed: run.seed, limit: validLimit });
    const line = { step: trainer.step, valid_neg_elbo: result.negElbo, valid_kl: result.kl, valid_reconstruction: result.reconstruction };
    log.push(JSON.stringify(line));
    if (result.negElbo < best) {
      best = result.negElbo;
      await save('best.safetensors', { validNegElbo: best });
    }
    process.stderr.write(`\nstep ${trainer.step}: validation -ELBO ${result.negElbo.toFixed(3)} nats (KL ${result.kl.toFixed(3)})${result.negElbo <= best ? ' [best]' : ''}\n`);
  };
  const tTrain = performance.now();
  while (trainer.step < end) {
    trainer.trainStep();
    await gpu.throttle();
    const done = trainer.step - startStep;
    if (trainer.step % logEvery === 0 || trainer.step === end) {
      const m = await trainer.readMetrics();
      if (!Number.isFinite(m.loss)) {
        // Not last.safetensors: the checkpoints in --out stay finite states that every loader opens.
        await save('diverged.safetensors', { diverged: 1 });
        throw new Error(`training diverged at step ${trainer.step} (loss ${m.loss}); best.safetensors in ${out} is the best finite state; try a lower --lr`);
      }
      const rate = done / ((performance.now() - tTrain) / 1000);
      const line = { step: trainer.step, loss: m.loss, reconstruction: m.reconstruction, kl: m.kl, kl_weight: model.klWeight(trainer.step), images_per_s: rate * batchSize };
      log.push(JSON.stringify(line));
      last = `loss ${m.loss.toFixed(2)} (rec ${m.reconstruction.toFixed(2)} + KL ${m.kl.toFixed(2)})`;
    }
    progress.update(done, last);
    if (validEvery > 0 && trainer.step % validEvery === 0 && trainer.step < end) await validate();
  }
  await validate();
  await save('last.safetensors', { validNegElbo: best });
  await writeFile(join(out, 'log.jsonl'), log.join('\n') + '\n');
  const seconds = (performance.now() - tTrain) / 1000;
  console.log(JSON.stringify({
    command: 'train', preset: c.preset, params: model.params.count(), steps: trainer.step, best_valid_neg_elbo_nats: best, seconds: +seconds.toFixed(1),
    images_per_s: +((steps * batchSize) / seconds).toFixed(1), adapter: adapterName(gpu), data: data.description, out,
  }));
  process.stderr.write(`done in ${formatSeconds(seconds)}; checkpoints in ${out}\n`);
}

// ---- eval -----------------------------------------------------------------------------------------

async function evalCommand(flags: Parsed): Promise<void> {
  const gpu = await startEngine();
  const { model, step } = await readCheckpoint(flags, 'eval');
  const data = await loadData(flags, model.config.imageSize);
  const splitName = flags.split as string;
  if (splitName !== 'test' && splitName !== 'valid') throw new UsageError(`eval: --split must be test or valid, not '${splitName}'`);
  const set: GpuImageSet = data.get(splitName);
  const k = flags.k as number;
  if (k < 1) throw new UsageError('eval: --k must be at least 1');
  const limit = (flags.limit as number | undefined) ?? set.count;
  const progress = new Progress(`eval k=${k}`, Math.min(limit, set.count), 'images');
  const result = await evaluate(model, set, { k, batchSize: flags.batch as number, seed: flags.seed as number, limit, onProgress: (d) => progress.update(d) });
  console.log(JSON.stringify({
    command: 'eval', preset: model.config.preset, step, split: splitName, images: result.images,
    neg_elbo_nats: +result.negElbo.toFixed(4), is_nll_nats: +result.nll.toFixed(4), importance_samples: k,
    reconstruction_nats: +result.reconstruction.toFixed(4), kl_nats: +result.kl.toFixed(4),
    data: data.description, adapter: adapterName(gpu),
  }));
  refuseNonFinite('eval', { neg_elbo: result.negElbo, is_nll: result.nll, kl: result.kl });
}

// ---- sample ---------------------------------------------------------------------------------------

async function sampleCommand(flags: Parsed): Promise<void> {
  const gpu = await startEngine();
  const { model } = await readCheckpoint(flags, 'sample');
  const n = flags.n as number;
  const seed = flags.seed as number;
  const size = model.config.imageSize;
  const t0 = performance.now();
  const pixels = await E.tidyAsync(async () => {
    const z = model.hasLatent ? E.randomNormal([n, model.config.latentDim], seed, [0, 1]) : null;
    const uniforms = E.randomUniform([n, 1, size, size], seed, [0, 2]);
    const { images, probs } = model.sample(z, uniforms);
    return (flags.probs ? probs : images).data();
  });
  const seconds = (performance.now() - t0) / 1000;
  const out = flags.out as string;
  await writePng(out, imageGrid(pixels, [n, 1, size, size], { scale: flags.scale as number }));
  console.log(JSON.stringify({ command: 'sample', preset: model.config.preset, n, seed, seconds: +seconds.toFixed(2), out, adapter: adapterName(gpu) }));
}

// ---- reconstruct ----------------------------------------------------------------------------------

async function reconstructCommand(flags: Parsed): Promise<void> {
  const gpu = await startEngine();
  const { model } = await readCheckpoint(flags, 'reconstruct');
  if (!model.hasLatent) throw new UsageError(`reconstruct: ${model.config.preset} has no latent code to reconstruct from`);
  const inputs = (flags.input as string[] | undefined) ?? [];
  if (inputs.length === 0) throw new UsageError('reconstruct: give at least one --input image.png');
  const size = model.config.imageSize;
  const plane = size * size;
  const perImage = flags.samples as number;
  const seed = flags.seed as number;
  const prepared: Float32Array[] = [];
  for (const path of inputs) {
    const image = await readPng(path);
    const { pixels } = preprocessImage(image, { size });
    prepared.push(binarize(pixels, { threshold: 0.5 }));
  }
  const n = inputs.length;
  const x = new Float32Array(n * plane);
  prepared.forEach((p, i) => x.set(p, i * plane));
  const samples = await E.tidyAsync(async () => {
    const xt = E.fromArray(x, [n, 1, size, size]);
    const { mu, logSigma } = E.noGrad(() => model.encode(xt));
    const zd = model.config.latentDim;
    // perImage draws of z ~ q(z|x) per image, then one pixel-level sample each.
    const eps = E.randomNormal([perImage, n, zd], seed, [0, 3]);
    const z = E.noGrad(() => E.add(mu.view([1, n, zd]), E.mul(eps, E.exp(logSigma).view([1, n, zd])))).view([perImage * n, zd]);
    const uniforms = E.randomUniform([perImage * n, 1, size, size], seed, [0, 4]);
    return model.sample(z, uniforms).images.data();
  });
  // Rows: input, then its reconstructions (sample s of image i is at s * n + i).
  const grid = new Float32Array(n * (perImage + 1) * plane);
  for (let i = 0; i < n; i++) {
    grid.set(prepared[i], i * (perImage + 1) * plane);
    for (let s = 0; s < perImage; s++) grid.set(samples.subarray((s * n + i) * plane, (s * n + i + 1) * plane), (i * (perImage + 1) + s + 1) * plane);
  }
  const out = flags.out as string;
  await writePng(out, imageGrid(grid, [n * (perImage + 1), 1, size, size], { columns: perImage + 1, scale: flags.scale as number }));
  console.log(JSON.stringify({ command: 'reconstruct', preset: model.config.preset, images: n, samples: perImage, out, adapter: adapterName(gpu) }));
}

// ---- knn ------------------------------------------------------------------------------------------

async function knnCommand(flags: Parsed): Promise<void> {
  const gpu = await startEngine();
  const { model } = await readCheckpoint(flags, 'knn');
  if (!model.hasLatent) throw new UsageError(`knn: ${model.config.preset} has no latent space`);
  const data = await loadData(flags, model.config.imageSize);
  const k = flags.k as number;
  const testLimit = Math.min(flags['test-limit'] as number, data.test.count);
  const train = await embed(model, data.train, { batchSize: 100 });
  const test = await embed(model, data.test, { batchSize: 100, limit: testLimit });
  const error = knnError(train, test, k);
  console.log(JSON.stringify({
    command: 'knn', preset: model.config.preset, latent_dim: model.config.latentDim, k, train_images: train.count, test_images: test.count,
    test_error: +error.toFixed(4), data: data.description, adapter: adapterName(gpu),
  }));
}

// ---- entry ------------------------------------------------------------------------------------------

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(mainUsage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`pixelvae: unknown command '${name}'\n\n${mainUsage()}`);
    return 2;
  }
  try {
    const flags = parseFlags(name, rest, command.flags);
    if (flags.help) {
      console.log(usage(name, command.summary, command.flags));
      return 0;
    }
    await command.run(flags);
    return 0;
  } catch (error) {
    const e = error as Error;
    console.error(e instanceof UsageError ? `pixelvae ${e.message}` : `pixelvae ${name}: ${e.message}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

// Run when executed directly (the built dist-node/cli.js), not when imported by tests.
if (process.argv[1] && /cli(\.js|\.ts)?$/.test(process.argv[1])) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}

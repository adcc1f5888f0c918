// The hierarchical PixelVAE on the command line: hier-train, hier-eval (bits/dim), hier-sample
// (samples and the level-variation grids of the paper's Figure 6) and hier-reconstruct. Registered
// in main.ts's COMMANDS table.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as E from '../engine';
import { GpuColourSet } from '../data/colour-gpu';
import { loadColourData, type ColourSplit } from '../data/colour-node';
import { imageGrid } from '../io/grid';
import { writePng } from '../io/png-node';
import { decodeCheckpoint } from '../io/checkpoint';
import { refuseNonFinite, writeFiniteCheckpoint } from './finite';
import { HIER_PRESETS, hierConfig, hierTrainDefaults, type HierConfig, type HierPreset } from '../models/hierarchical/config';
import { HierarchicalPixelVae, LEVELS, type Level } from '../models/hierarchical/model';
import { HierTrainer, evaluateHier, reestimateBatchNorm } from '../models/hierarchical/trainer';
import { loadHierCheckpoint, loadHierInto, saveHierCheckpoint } from '../models/hierarchical/checkpoint';
import { UsageError, type Flags, type Parsed } from './args';
import { adapterName, need, startEngine } from './common';
import { Progress, formatSeconds } from './progress';

type Command = { summary: string; flags: Flags; run: (f: Parsed) => Promise<void> };

const DATA_FLAGS: Flags = {
  data: { type: 'strings', help: 'image folder, zip, CIFAR-10 .bin batch (or folder of them), or "demo" / "colour-mnist" (repeatable)' },
  'held-out': { type: 'number', help: 'held-out fraction when the data has no split of its own', default: 0.1 },
  'split-seed': { type: 'int', help: 'seed of the train / held-out split', default: 2017 },
};

const COMMON: Flags = {
  seed: { type: 'int', help: 'seed for noise and batch order', default: 1 },
  help: { type: 'boolean', help: 'show this help' },
};

async function loadData(flags: Parsed, size: number): Promise<ColourSplit> {
  const paths = (flags.data as string[] | undefined) ?? ['demo'];
  const split = await loadColourData(paths, {
    size,
    heldOut: flags['held-out'] as number,
    splitSeed: flags['split-seed'] as number,
    onSkip: (s) => process.stderr.write(`skipped ${s.name}: ${s.reason}\n`),
  });
  process.stderr.write(`data: ${split.description}\n`);
  return split;
}

async function readModel(flags: Parsed, command: string): Promise<{ model: HierarchicalPixelVae; step: number }> {
  const path = need<string>(flags, 'checkpoint', command);
  const { model, checkpoint } = loadHierCheckpoint(new Uint8Array(await readFile(path)), path);
  return { model, step: checkpoint.config.step };
}

/** u32 sub-pixels [N, 3, S, S] -> a PNG grid. */
async function writeImages(path: string, values: ArrayLike<number>, n: number, size: number, columns: number, scale: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const floats = Float32Array.from(values, (v) => v / 255);
  await writePng(path, imageGrid(floats, [n, 3, size, size], { columns, scale }));
}

// ---- hier-train ----------------------------------------------------------------------------------------

async function train(flags: Parsed): Promise<void> {
  const gpu = await startEngine();
  const out = flags.out as string;
  await mkdir(out, { recursive: true });
  let model: HierarchicalPixelVae;
  let resumeBytes: Uint8Array | null = null;
  if (flags.resume) {
    resumeBytes = new Uint8Array(await readFile(flags.resume as string));
    model = loadHierCheckpoint(resumeBytes, flags.resume as string).model;
  } else {
    const preset = need<string>(flags, 'preset', 'hier-train');
    if (!(HIER_PRESETS as readonly string[]).includes(preset)) throw new UsageError(`hier-train: unknown preset '${preset}' (one of ${HIER_PRESETS.join(', ')})`);
    const overrides: Partial<HierConfig> = { seed: flags['init-seed'] as number };
    if (flags.warmup !== undefined) Object.assign(overrides, { alpha1Iters: flags.warmup, alpha2Iters: flags.warmup, betaIters: flags.warmup });
    model = new HierarchicalPixelVae(hierConfig(preset as HierPreset, overrides));
  }
  const c = model.config;
  const defaults = hierTrainDefaults(c.preset);
  const batchSize = (flags.batch as number | undefined) ?? defaults.batchSize;
  const steps = (flags.steps as number | undefined) ?? defaults.steps;
  const bnBatches = (flags['bn-batches'] as number | undefined) ?? defaults.bnBatches;
  const lr = (flags.lr as number | undefined) ?? defaults.lr;
  const seed = flags.seed as number;
  const split = await loadData(flags, c.imageSize);
  const train = GpuColourSet.upload(split.train);
  const heldOut = GpuColourSet.upload(split.heldOut);
  const trainer = new HierTrainer(model, train, { batchSize, lr, clipGlobalNorm: flags.clip as number, seed });
  if (resumeBytes) {
    const checkpoint = decodeCheckpoint(resumeBytes);
    loadHierInto(model, checkpoint, trainer);
    process.stderr.write(`resumed at step ${trainer.step}\n`);
  }
  process.stderr.write(`model hier-${c.preset}: ${model.parameterCount()} parameters, ${c.imageSize}x${c.imageSize}, z1 ${model.shapes.z1.join('x')}, z2 ${c.latent2}\n`);
  const t0 = performance.now();
  const compiled = await trainer.prewarm((done, total) => process.stderr.write(`\rcompiling shaders ${done}/${total}`));
  process.stderr.write(`\rcompiled ${compiled} kernel variants in ${((performance.now() - t0) / 1000).toFixed(1)}s\n`);
  const run = { seed, batchSize, lr, data: split.description, trainImages: split.train.count, heldOutImages: split.heldOut.count };
  const log: string[] = [];
  const logEvery = Math.max(1, flags['log-every'] as number);
  const evalEvery = flags['eval-every'] as number;
  const evalLimit = flags['eval-limit'] as number;
  let best = Infinity;
  const save = async (name: string, extra: Record<string, number>): Promise<void> => {
    await writeFiniteCheckpoint(out, name, await saveHierCheckpoint(model, { ...run, step: trainer.step, extra }, trainer), trainer.step);
  };
  const evaluate = async (): Promise<void> => {
    await trainer.reestimateBatchNorm(bnBatches);
    const r = await evaluateHier(model, heldOut, { batchSize, seed, limit: evalLimit });
    log.push(JSON.stringify({ step: trainer.step, held_out_bits_per_dim: r.bitsPerDim, reconstruction_nats_per_dim: r.reconstruction, kl1_nats_per_dim: r.kl1, kl2_nats_per_dim: r.kl2 }));
    const isBest = r.bitsPerDim < best;
    if (isBest) {
      best = r.bitsPerDim;
      await save('best.safetensors', { heldOutBitsPerDim: best });
    }
    process.stderr.write(`\nstep ${trainer.step}: held-out ${r.bitsPerDim.toFixed(4)} bits/dim (ELBO bound; rec ${r.reconstruction.toFixed(4)} + KL1 ${r.kl1.toFixed(4)} + KL2 ${r.kl2.toFixed(4)} nats/dim)${isBest ? ' [best]' : ''}\n`);
  };
  const start = trainer.step;
  const end = start + steps;
  const progress = new Progress('hier-train', steps, 'steps');
  let last = '';
  const tTrain = performance.now();
  while (trainer.step < end) {
    trainer.trainStep();
    await gpu.throttle();
    if (trainer.step % logEvery === 0 || trainer.step === end) {
      const m = await trainer.readMetrics();
      if (!Number.isFinite(m.loss)) {
        // Not last.safetensors: the checkpoints in --out stay finite states that every loader opens.
        await save('diverged.safetensors', { diverged: 1 });
        throw new Error(`training diverged at step ${trainer.step} (loss ${m.loss}); best.safetensors in ${out} is the best finite state; try a lower --lr`);
      }
      log.push(JSON.stringify({ step: trainer.step, loss: m.loss, reconstruction: m.reconstruction, kl1: m.kl1, kl2: m.kl2, train_bits_per_dim: m.bitsPerDim }));
      last = `loss ${m.loss.toFixed(3)} nats/dim (rec ${m.reconstruction.toFixed(3)}, KL1 ${m.kl1.toFixed(3)}, KL2 ${m.kl2.toFixed(3)}), ${m.bitsPerDim.toFixed(3)} bits/dim`;
    }
    progress.update(trainer.step - start, last);
    if (evalEvery > 0 && trainer.step % evalEvery === 0 && trainer.step < end) await evaluate();
  }
  const seconds = (performance.now() - tTrain) / 1000;
  await evaluate();
  await save('last.safetensors', { heldOutBitsPerDim: best });
  await writeFile(join(out, 'log.jsonl'), log.join('\n') + '\n');
  console.log(JSON.stringify({
    command: 'hier-train', preset: c.preset, steps: trainer.step, best_held_out_bits_per_dim: +best.toFixed(4), seconds: +seconds.toFixed(1),
    images_per_s: +((steps * batchSize) / seconds).toFixed(1), adapter: adapterName(gpu), data: split.description, out,
  }));
  process.stderr.write(`done in ${formatSeconds(seconds)}; checkpoints in ${out}\n`);
  trainer.dispose();
  train.dispose();
  heldOut.dispose();
}

// ---- hier-eval -----------------------------------------------------------------------------------------

async function evalCommand(flags: Parsed): Promise<void> {
  const gpu = await startEngine();
  const { model, step } = await readModel(flags, 'hier-eval');
  const split = await loadData(flags, model.config.imageSize);
  const batchSize = flags.batch as number;
  const seed = flags.seed as number;
  const bnBatches = flags['bn-batches'] as number;
  if (bnBatches > 0) {
    const train = GpuColourSet.upload(split.train);
    await reestimateBatchNorm(model, train, { batches: bnBatches, batchSize, seed });
    train.dispose();
  }
  const set = GpuColourSet.upload(flags.split === 'train' ? split.train : split.heldOut);
  const limit = (flags.limit as number | undefined) ?? set.count;
  const progress = new Progress('hier-eval', Math.min(limit, set.count), 'images');
  const r = await evaluateHier(model, set, { batchSize, seed, limit, onProgress: (d) => progress.update(d) });
  console.log(JSON.stringify({
    command: 'hier-eval', preset: model.config.preset, step, split: flags.split, images: r.images,
    bits_per_dim: +r.bitsPerDim.toFixed(4), nats_per_dim: +r.natsPerDim.toFixed(4), bound: 'negative ELBO (one z sample per image, no importance sampling)',
    reconstruction_nats_per_dim: +r.reconstruction.toFixed(4), kl1_nats_per_dim: +r.kl1.toFixed(4), kl2_nats_per_dim: +r.kl2.toFixed(4),
    bn_statistics: bnBatches > 0 ? `re-estimated over ${bnBatches} training batches` : 'from the checkpoint', data: split.description, adapter: adapterName(gpu),
  }));
  refuseNonFinite('hier-eval', { bits_per_dim: r.bitsPerDim, kl1: r.kl1, kl2: r.kl2 });
}

// ---- hier-sample ---------------------------------------------------------------------------------------

async function sampleCommand(flags: Parsed): Promise<void> {
  const gpu = await startEngine();
  const { model } = await readModel(flags, 'hier-sample');
  const grid = flags.grid as string;
  const kinds: (Level | null)[] = grid === 'none' ? [null] : grid === 'all' ? [...LEVELS] : [grid as Level];
  if (!kinds.every((k) => k === null || LEVELS.includes(k))) throw new UsageError(`hier-sample: --grid must be none, top, middle, pixels or all (got '${grid}')`);
  const rows = flags.rows as number;
  const cols = flags.cols as number;
  const seed = flags.seed as number;
  const size = model.config.imageSize;
  const out = flags.out as string;
  const written: string[] = [];
  const t0 = performance.now();
  for (const vary of kinds) {
    const n = rows * cols;
    let progress: Progress | null = null;
    const label = `sample${vary ? ` (vary only ${vary})` : ''}`;
    const pixels = await E.tidyAsync(async () => {
      const noise = model.levelNoise(rows, cols, seed, vary);
      const { images } = await model.sample(noise, { onProgress: (d, t) => (progress ??= new Progress(label, t, 'passes')).update(d) });
      return images.data();
    });
    const path = kinds.length === 1 ? out : out.replace(/(\.png)?$/i, `-${vary}.png`);
    await writeImages(path, pixels, n, size, cols, flags.scale as number);
    written.push(path);
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({
    command: 'hier-sample', preset: model.config.preset, rows, cols, grid, seed, seconds: +seconds.toFixed(2), out: written, adapter: adapterName(gpu),
    note: grid === 'none' ? 'independent samples' : 'each row holds the other levels\' noise; its cells vary only the named level',
  }));
}

// ---- hier-reconstruct ----------------------------------------------------------------------------------

async function reconstructCommand(flags: Parsed): Promise<void> {
  const gpu = await startEngine();
  const { model } = await readModel(flags, 'hier-reconstruct');
  const size = model.config.imageSize;
  const split = await loadData(flags, size);
  const n = Math.min(flags.n as number, split.heldOut.count);
  const per = flags.samples as number;
  const level = flags.level as string;
  if (level !== 'top' && level !== 'middle') throw new UsageError(`hier-reconstruct: --level must be top (keep z2) or middle (keep z1), got '${level}'`);
  const seed = flags.seed as number;
  const plane = 3 * size * size;
  const inputs = split.heldOut.images.subarray(0, n * plane);
  const samples = await E.tidyAsync(async () => {
    // Each image repeated `per` times: image i's copies are rows i*per .. i*per+per-1.
    const tiled = new Uint32Array(n * per * plane);
    for (let i = 0; i < n; i++) for (let s = 0; s < per; s++) tiled.set(inputs.subarray(i * plane, (i + 1) * plane), (i * per + s) * plane);
    const x = E.fromArray(tiled, [n * per, 3, size, size], 'u32');
    const noise = model.levelNoise(n * per, 1, seed, null);
    const { images } = await model.reconstruct(x, level, noise);
    return images.data();
  });
  const grid = new Float32Array(n * (per + 1) * plane);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < plane; k++) grid[i * (per + 1) * plane + k] = inputs[i * plane + k];
    for (let s = 0; s < per; s++) for (let k = 0; k < plane; k++) grid[(i * (per + 1) + s + 1) * plane + k] = samples[(i * per + s) * plane + k];
  }
  const out = flags.out as string;
  await writeImages(out, grid, n * (per + 1), size, per + 1, flags.scale as number);
  console.log(JSON.stringify({ command: 'hier-reconstruct', preset: model.config.preset, images: n, samples: per, kept: level === 'top' ? 'z2' : 'z1', out, adapter: adapterName(gpu) }));
}

export const HIER_COMMANDS: Record<string, Command> = {
  'hier-train': {
    summary: 'Train a two-level PixelVAE on colour images (256-way softmax); keeps last/best.safetensors (held-out bits/dim) in --out.',
    flags: {
      preset: { type: 'string', help: `model preset: ${HIER_PRESETS.join(', ')}` },
      ...DATA_FLAGS,
      steps: { type: 'int', help: 'training steps (default: the preset\'s)' },
      batch: { type: 'int', help: 'batch size (default: the preset\'s)' },
      lr: { type: 'number', help: 'Adam learning rate (default 1e-3)' },
      clip: { type: 'number', help: 'global-norm gradient clipping (0: off)', default: 5 },
      warmup: { type: 'int', help: 'override the KL warm-ups and the prior sigma-floor schedule (steps)' },
      'bn-batches': { type: 'int', help: 'training batches averaged by the batch-norm re-estimation before each evaluation (default: the preset\'s)' },
      'eval-every': { type: 'int', help: 'steps between held-out evaluations (0: only at the end)', default: 1000 },
      'eval-limit': { type: 'int', help: 'held-out images per evaluation', default: 10000 },
      'log-every': { type: 'int', help: 'steps between metric readbacks', default: 50 },
      out: { type: 'string', help: 'output folder', default: 'runs/hier' },
      resume: { type: 'string', help: 'checkpoint to resume from (model, BN statistics, optimizer state, step)' },
      'init-seed': { type: 'int', help: 'seed of parameter initialisation', default: 1 },
      ...COMMON,
    },
    run: train,
  },
  'hier-eval': {
    summary: 'Held-out bits/dim (negative ELBO bound) of a hierarchical checkpoint, with the per-level KL split.',
    flags: {
      checkpoint: { type: 'string', help: 'checkpoint file (.safetensors)' },
      ...DATA_FLAGS,
      split: { type: 'string', help: 'held-out or train', default: 'held-out' },
      'bn-batches': { type: 'int', help: 're-estimate batch-norm statistics over this many training batches first (0: use the checkpoint\'s)', default: 0 },
      limit: { type: 'int', help: 'evaluate only the first N images' },
      batch: { type: 'int', help: 'images per batch', default: 32 },
      ...COMMON,
    },
    run: evalCommand,
  },
  'hier-sample': {
    summary: 'Sample top-down on the GPU (z2, z1 by position, pixels R->G->B); --grid top|middle|pixels|all writes the level-variation grids (Figure 6).',
    flags: {
      checkpoint: { type: 'string', help: 'checkpoint file' },
      grid: { type: 'string', help: 'none, or the level to vary with the others held: top, middle, pixels, or all (three files)', default: 'none' },
      rows: { type: 'int', help: 'grid rows (each row holds its own noise for the held levels)', default: 4 },
      cols: { type: 'int', help: 'grid columns', default: 8 },
      out: { type: 'string', help: 'PNG file (with --grid all: <out>-top.png, -middle.png, -pixels.png)', default: 'hier-samples.png' },
      scale: { type: 'int', help: 'pixel upscaling in the PNG', default: 2 },
      ...COMMON,
    },
    run: sampleCommand,
  },
  'hier-reconstruct': {
    summary: 'Reconstruct held-out images from one level: keep z2 (--level top) or z1 (--level middle) and regenerate the rest; rows: input, then samples.',
    flags: {
      checkpoint: { type: 'string', help: 'checkpoint file' },
      ...DATA_FLAGS,
      level: { type: 'string', help: 'top (keep z2) or middle (keep z1)', default: 'middle' },
      n: { type: 'int', help: 'held-out images to reconstruct', default: 8 },
      samples: { type: 'int', help: 'reconstructions per image', default: 4 },
      out: { type: 'string', help: 'PNG grid to write', default: 'hier-reconstructions.png' },
      scale: { type: 'int', help: 'pixel upscaling in the PNG', default: 2 },
      ...COMMON,
    },
    run: reconstructCommand,
  },
};

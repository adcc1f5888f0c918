// The registry of model families the worker can build, with their presets and editable sizes.
// Platform-free (no GPU): the worker and unit tests import it. A family plugs in with a FamilyInfo
// here and a FamilyDriver (src/worker/session.ts) that builds its models.
import { HIER_PRESETS, hierConfig, hierTrainDefaults, type HierConfig, type HierPreset } from '../models/hierarchical/config';
import { MNIST_PRESETS, hasLatent, mnistConfig, type MnistModelConfig, type MnistPreset } from '../models/config';
import type { FamilyInfo, NoiseLevel, PresetInfo, Setup, SizeField } from './api';

const LATENT_LEVEL: NoiseLevel = { id: 'latent', label: 'Latent z', help: 'z ~ N(0, I): the global shape and style of the digit' };
const PIXEL_LEVEL: NoiseLevel = { id: 'pixel', label: 'Pixels', help: 'the Bernoulli draw of each pixel given z: local detail' };

const MNIST_LABELS: Record<MnistPreset, [string, string]> = {
  'conv-vae': ['Conv VAE', 'Convolutional VAE, factorised Bernoulli decoder (Table 1: <= 87.41 nats)'],
  pixelcnn: ['PixelCNN', 'Masked PixelCNN without a latent (81.30)'],
  'gated-pixelcnn': ['Gated PixelCNN', 'Gated PixelCNN with vertical and horizontal stacks (80.10)'],
  pixelvae: ['PixelVAE', 'Upsampling VAE decoder feeding a masked PixelCNN (<= 80.64)'],
  'gated-pixelvae': ['Gated PixelVAE', 'Upsampling decoder feeding a gated PixelCNN (~79.48)'],
  'gated-pixelvae-cond': ['Gated PixelVAE, z in every gate', 'No upsampling: z enters every gate through linear maps (~78.96, the paper\'s best)'],
};

/** Editable sizes of the MNIST family. encoderWidth scales the encoder and decoder widths together. */
export const MNIST_SIZE_FIELDS: SizeField[] = [
  { key: 'imageSize', label: 'Image size', min: 4, max: 28, multipleOf: 4, help: 'MNIST is 28x28; 8 or 12 trains much faster on slow adapters (area-averaged)' },
  { key: 'latentDim', label: 'Latent dim', min: 1, max: 64, help: 'Z: 16 in the paper, 2 for a latent plane you can click' },
  { key: 'pixelLayers', label: 'PixelCNN layers', min: 0, max: 16, help: 'residual layers after the input layer (12 in the paper)' },
  { key: 'pixelWidth', label: 'PixelCNN width', min: 1, max: 64, help: 'stack width P (16)' },
  { key: 'filterSize', label: 'Filter size', min: 1, max: 7, odd: true, help: 'kernel of the residual layers (5)' },
  { key: 'inputFilterSize', label: 'Input filter', min: 1, max: 7, odd: true, help: 'kernel of the masked input layer (7)' },
  { key: 'outputWidth', label: 'Output width', min: 1, max: 64, help: 'width of the 1x1 output layers (32)' },
  { key: 'encoderWidth', label: 'Encoder width', min: 1, max: 64, help: 'encoder widths w, w, 2w, 2w; decoder 2w, 2w, w (w = 32)' },
  { key: 'klWarmupSteps', label: 'KL warm-up', min: 0, max: 100000, help: 'steps of linear KL warm-up (10000)' },
];

/** Sizes small enough for a CPU fallback adapter (the tests' sizes). */
export const TINY_SIZES: Record<string, number> = {
  imageSize: 8,
  latentDim: 2,
  pixelLayers: 1,
  pixelWidth: 4,
  filterSize: 3,
  inputFilterSize: 3,
  outputWidth: 6,
  encoderWidth: 4,
  klWarmupSteps: 0,
};

/**
 * The first screen's sizes on a CPU (fallback) adapter, with the gated PixelVAE whose z enters every
 * gate. Chosen by the KL they reach (the paper's Figure 4: a PixelCNN with few layers and a small
 * receptive field leaves the latent work to do), measured with the Node engine on lavapipe, batch 32,
 * lr 1e-3, validation KL in nats per image at steps 50/300/500: these sizes 4.6/1.7/2.0 (lowest 1.0,
 * near step 450); the tiny sizes below 0.001/0.000/0.000 (their PixelCNN models 8x8 digits without z);
 * the gated PixelVAE with upsampling at these sizes 0.000 from step 250 on, with or without KL warm-up;
 * PixelCNN width 4 instead of 2: 3.4 at 50, 1.0 at 500. SwiftShader in headless Chromium trains
 * about 300 steps of it in the first minute (e2e/trust-app.spec.ts checks the KL there).
 */
export const CPU_SIZES: Record<string, number> = {
  imageSize: 12,
  latentDim: 2,
  pixelLayers: 0,
  pixelWidth: 2,
  filterSize: 3,
  inputFilterSize: 3,
  outputWidth: 8,
  encoderWidth: 8,
  klWarmupSteps: 0,
};

/** The setup sizes of an MNIST model configuration (the encoder's first width stands for its four). */
function sizesOfMnistConfig(c: MnistModelConfig): Record<string, number> {
  return {
    imageSize: c.imageSize,
    latentDim: c.latentDim,
    pixelLayers: c.pixelLayers,
    pixelWidth: c.pixelWidth,
    filterSize: c.filterSize,
    inputFilterSize: c.inputFilterSize,
    outputWidth: c.outputWidth,
    encoderWidth: c.encoderDims[0],
    klWarmupSteps: c.klWarmupSteps,
  };
}

function mnistDefaults(): Record<string, number> {
  return sizesOfMnistConfig(mnistConfig('gated-pixelvae'));
}

const MNIST_FAMILY: FamilyInfo = {
  id: 'mnist',
  label: 'Binarized MNIST',
  dataset: 'MNIST digits (bundled), dynamically binarized for training; fixed-seed binarization for validation and test',
  available: true,
  sizeFields: MNIST_SIZE_FIELDS,
  quickSizes: [
    { id: 'paper', label: 'Paper sizes (28x28, a real GPU)', sizes: mnistDefaults() },
    { id: 'small', label: 'Small (12x12, a few minutes on a laptop GPU)', sizes: { ...mnistDefaults(), imageSize: 12, pixelLayers: 4, pixelWidth: 8, filterSize: 3, inputFilterSize: 5, outputWidth: 16, encoderWidth: 8, klWarmupSteps: 500 } },
    { id: 'cpu', label: 'CPU (12x12, a latent that is used within a minute on a CPU adapter)', sizes: CPU_SIZES },
    { id: 'tiny', label: 'Tiny (8x8, tests; its latent goes unused)', sizes: TINY_SIZES },
  ],
  // The paper's best model (z in every gate): its latent is used at small sizes too, where the
  // upsampling variant's collapses (see CPU_SIZES).
  defaultPreset: 'gated-pixelvae-cond',
  fallbackQuickSizes: 'cpu',
  presets: MNIST_PRESETS.map(
    (id): PresetInfo => ({
      family: 'mnist',
      id,
      label: MNIST_LABELS[id][0],
      summary: MNIST_LABELS[id][1],
      hasLatent: hasLatent(id),
      autoregressive: id !== 'conv-vae',
      defaults: mnistDefaults(),
      noiseLevels: hasLatent(id) ? [LATENT_LEVEL, PIXEL_LEVEL] : [PIXEL_LEVEL],
    }),
  ),
};

export const HIERARCHICAL_LEVELS: NoiseLevel[] = [
  { id: 'top', label: 'Top z2', help: 'the top latent vector: global layout and colour' },
  { id: 'middle', label: 'Middle z1', help: 'the latent map: object shape and placement' },
  { id: 'pixel', label: 'Pixels', help: 'the 256-way draw of each sub-pixel: texture' },
];

/** Editable sizes of the hierarchical family: keys of HierConfig (the widths of the resolution ladder stay the preset's). */
export const HIER_SIZE_FIELDS: SizeField[] = [
  { key: 'imageSize', label: 'Image size', min: 4, max: 64, multipleOf: 4, help: 'side of the colour images; must divide by the z2 grid (2^levels)' },
  { key: 'latent1', label: 'z1 channels', min: 1, max: 128, help: 'channels of the middle latent map (64 in the reference)' },
  { key: 'latent2', label: 'z2 size', min: 1, max: 1024, help: 'size of the top latent vector (512)' },
  { key: 'pixelWidth', label: 'Pixel CNN width', min: 3, max: 192, multipleOf: 3, help: 'width of the pixel PixelCNN (a multiple of 3: R, G, B groups)' },
  { key: 'pixelBlocks', label: 'Pixel CNN blocks', min: 1, max: 6, help: 'masked residual blocks of the pixel PixelCNN' },
  { key: 'latentPixelWidth', label: 'Latent CNN width', min: 1, max: 512, help: 'width of the latent PixelCNN of p(z1|z2)' },
  { key: 'latentBlocks', label: 'Latent res blocks', min: 1, max: 4, help: 'residual blocks at z1 and below' },
  { key: 'alpha1Iters', label: 'KL1 warm-up', min: 0, max: 100000, help: 'steps of linear warm-up of the z1 KL weight' },
  { key: 'alpha2Iters', label: 'KL2 warm-up', min: 0, max: 100000, help: 'steps of linear warm-up of the z2 KL weight' },
];

const HIER_LABELS: Record<HierPreset, [string, string]> = {
  tiny: ['Tiny (8x8)', '8x8 colour, z1 4x4x4, z2 8: for CPU adapters and tests'],
  small: ['Small (32x32)', '32x32, z1 16x8x8, z2 64, a quarter of the reference widths: a laptop GPU in minutes'],
  '32px': ['Reference 32px', 'The reference\'s 32px_small (LSUN 32x32): z1 64x8x8, z2 512; a real GPU'],
  '64px': ['Reference 64px', 'The reference\'s 64px_small (64x64): z1 64x16x16, z2 512; a real GPU, hours'],
};

function hierDefaults(preset: HierPreset): Record<string, number> {
  const c = hierConfig(preset);
  return Object.fromEntries(HIER_SIZE_FIELDS.map((f) => [f.key, (c as unknown as Record<string, number>)[f.key]]));
}

/** The two-level colour model of the paper's section 4.2 (src/models/hierarchical/). */
const HIERARCHICAL: FamilyInfo = {
  id: 'hierarchical',
  label: 'Hierarchical colour PixelVAE',
  dataset: 'colour images: the bundled demo photos (32x32 crops) or your own folder, zip or CIFAR-10 batches; 10% held out',
  available: true,
  sizeFields: HIER_SIZE_FIELDS,
  quickSizes: [],
  defaultPreset: 'tiny',
  presets: HIER_PRESETS.map(
    (id): PresetInfo => ({
      family: 'hierarchical',
      id,
      label: HIER_LABELS[id][0],
      summary: HIER_LABELS[id][1],
      hasLatent: true,
      autoregressive: true,
      defaults: hierDefaults(id),
      noiseLevels: HIERARCHICAL_LEVELS,
      run: { batchSize: hierTrainDefaults(id).batchSize, lr: hierTrainDefaults(id).lr },
    }),
  ),
};

export const FAMILIES: FamilyInfo[] = [MNIST_FAMILY, HIERARCHICAL];


export function findPreset(family: string, preset: string): PresetInfo | undefined {
  return FAMILIES.find((f) => f.id === family)?.presets.find((p) => p.id === preset);
}

/** The full size record of a setup: the preset's defaults overridden by the setup's sizes. */
export function fullSizes(setup: Setup): Record<string, number> {
  const info = findPreset(setup.family, setup.preset);
  if (!info) throw new Error(`unknown preset "${setup.preset}" of family "${setup.family}"`);
  const sizes = { ...info.defaults };
  for (const [k, v] of Object.entries(setup.sizes)) if (k in sizes && Number.isFinite(v)) sizes[k] = v;
  return sizes;
}

/** The MNIST model configuration of a setup (throws a readable error when it is not valid). */
export function mnistConfigOf(setup: Setup): MnistModelConfig {
  if (setup.family !== 'mnist') throw new Error(`not an MNIST setup (family ${setup.family})`);
  if (!(MNIST_PRESETS as readonly string[]).includes(setup.preset)) throw new Error(`unknown MNIST preset "${setup.preset}"`);
  const s = fullSizes(setup);
  for (const field of MNIST_SIZE_FIELDS) {
    const v = s[field.key];
    if (!Number.isInteger(v) || v < field.min || v > field.max) throw new Error(`${field.label} must be an integer from ${field.min} to ${field.max} (got ${v})`);
    if (field.odd && v % 2 === 0) throw new Error(`${field.label} must be odd (got ${v})`);
  }
  const w = s.encoderWidth;
  return mnistConfig(setup.preset as MnistPreset, {
    imageSize: s.imageSize,
    latentDim: s.latentDim,
    pixelLayers: s.pixelLayers,
    pixelWidth: s.pixelWidth,
    filterSize: s.filterSize,
    inputFilterSize: s.inputFilterSize,
    outputWidth: s.outputWidth,
    encoderDims: [w, w, 2 * w, 2 * w],
    decoderDims: [2 * w, 2 * w, w],
    klWarmupSteps: s.klWarmupSteps,
    seed: setup.initSeed,
  });
}

/** The setup a model configuration came from (for checkpoints made elsewhere, e.g. by the CLI). */
export function setupOfMnistConfig(c: MnistModelConfig, run: { seed: number; batchSize: number; lr: number }): { setup: Setup; exact: boolean } {
  const w = c.encoderDims[0];
  const exact = c.encoderDims.join() === [w, w, 2 * w, 2 * w].join() && c.decoderDims.join() === [2 * w, 2 * w, w].join();
  return {
    setup: {
      family: 'mnist',
      preset: c.preset,
      sizes: sizesOfMnistConfig(c),
      initSeed: c.seed,
      seed: run.seed,
      batchSize: run.batchSize,
      lr: run.lr,
    },
    exact,
  };
}

/** The hierarchical model configuration of a setup (throws a readable error when it is not valid). */
export function hierConfigOf(setup: Setup): HierConfig {
  if (setup.family !== 'hierarchical') throw new Error(`not a hierarchical setup (family ${setup.family})`);
  if (!(HIER_PRESETS as readonly string[]).includes(setup.preset)) throw new Error(`unknown hierarchical preset "${setup.preset}"`);
  const s = fullSizes(setup);
  for (const field of HIER_SIZE_FIELDS) {
    const v = s[field.key];
    if (!Number.isInteger(v) || v < field.min || v > field.max) throw new Error(`${field.label} must be an integer from ${field.min} to ${field.max} (got ${v})`);
    if (field.key === 'pixelWidth' && v % 3 !== 0) throw new Error(`${field.label} must be a multiple of 3 (got ${v})`);
  }
  const base = hierConfig(setup.preset as HierPreset);
  const top = base.dims.length - 1;
  if (s.imageSize % (1 << top) !== 0) throw new Error(`Image size must be a multiple of ${1 << top} for this preset (its z2 grid is image size / ${1 << top}); got ${s.imageSize}`);
  const overrides: Partial<HierConfig> = { seed: setup.initSeed };
  for (const field of HIER_SIZE_FIELDS) (overrides as Record<string, number>)[field.key] = s[field.key];
  return hierConfig(setup.preset as HierPreset, overrides);
}

/** The setup of a hierarchical configuration (checkpoints from the CLI): exact unless widths the page does not edit differ from the preset's. */
export function setupOfHierConfig(c: HierConfig, run: { seed: number; batchSize: number; lr: number; data: Setup['data'] }): { setup: Setup; exact: boolean } {
  const sizes = Object.fromEntries(HIER_SIZE_FIELDS.map((f) => [f.key, (c as unknown as Record<string, number>)[f.key]]));
  const rebuilt = hierConfig(c.preset, { ...(sizes as Partial<HierConfig>), seed: c.seed });
  const exact = JSON.stringify(rebuilt) === JSON.stringify(c);
  return { setup: { family: 'hierarchical', preset: c.preset, sizes, initSeed: c.seed, seed: run.seed, batchSize: run.batchSize, lr: run.lr, data: run.data }, exact };
}

// The registry of model families the worker can build, with their presets and editable sizes.
// Platform-free (no GPU): the worker and unit tests import it. A second family plugs in by adding a
// FamilyInfo here and a branch in session.ts that builds it (see HIERARCHICAL below).
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

function mnistDefaults(): Record<string, number> {
  const c = mnistConfig('gated-pixelvae');
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

const MNIST_FAMILY: FamilyInfo = {
  id: 'mnist',
  label: 'Binarized MNIST',
  dataset: 'MNIST digits (bundled), dynamically binarized for training; fixed-seed binarization for validation and test',
  available: true,
  sizeFields: MNIST_SIZE_FIELDS,
  quickSizes: [
    { id: 'paper', label: 'Paper sizes (28x28, a real GPU)', sizes: mnistDefaults() },
    { id: 'small', label: 'Small (12x12, a few minutes on a laptop GPU)', sizes: { ...mnistDefaults(), imageSize: 12, pixelLayers: 4, pixelWidth: 8, filterSize: 3, inputFilterSize: 5, outputWidth: 16, encoderWidth: 8, klWarmupSteps: 500 } },
    { id: 'tiny', label: 'Tiny (8x8, CPU adapters and tests)', sizes: TINY_SIZES },
  ],
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

/**
 * The two-level colour model (src/models/hierarchical/, in progress elsewhere). Its noise levels are
 * already declared so the variation panel shows top, middle and pixel levels once it lands; the
 * worker refuses to build it until the model module exists (session.ts, buildModel).
 */
const HIERARCHICAL: FamilyInfo = {
  id: 'hierarchical',
  label: 'Hierarchical colour PixelVAE',
  dataset: 'colour images (LSUN / ImageNet-style)',
  available: false,
  note: 'The two-level colour model is still being built (src/models/hierarchical has only its configuration); it will appear here when its model lands.',
  sizeFields: [],
  quickSizes: [],
  presets: [],
};

export const FAMILIES: FamilyInfo[] = [MNIST_FAMILY, HIERARCHICAL];

export const HIERARCHICAL_LEVELS: NoiseLevel[] = [
  { id: 'top', label: 'Top z2', help: 'the top latent vector: global layout and colour' },
  { id: 'middle', label: 'Middle z1', help: 'the 8x8 latent map: object shape and placement' },
  { id: 'pixel', label: 'Pixels', help: 'the 256-way draw of each sub-pixel: texture' },
];

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
      sizes: {
        imageSize: c.imageSize,
        latentDim: c.latentDim,
        pixelLayers: c.pixelLayers,
        pixelWidth: c.pixelWidth,
        filterSize: c.filterSize,
        inputFilterSize: c.inputFilterSize,
        outputWidth: c.outputWidth,
        encoderWidth: w,
        klWarmupSteps: c.klWarmupSteps,
      },
      initSeed: c.seed,
      seed: run.seed,
      batchSize: run.batchSize,
      lr: run.lr,
    },
    exact,
  };
}

// The binarized-MNIST model family of the paper's Table 1, as named presets whose sizes are all
// configurable. Defaults follow the authors' code (pixelvae-reference.md, section 1).

export const MNIST_PRESETS = ['conv-vae', 'pixelcnn', 'gated-pixelcnn', 'pixelvae', 'gated-pixelvae', 'gated-pixelvae-cond'] as const;
export type MnistPreset = (typeof MNIST_PRESETS)[number];

export const FEATURE_NORMS = ['tanh', 'rms-tanh'] as const;
export type FeatureNorm = (typeof FEATURE_NORMS)[number];

export interface MnistModelConfig {
  preset: MnistPreset;
  /** Image side (28 for MNIST; tests use smaller images). Must be a multiple of 4 for the latent models. */
  imageSize: number;
  /** Latent dimension Z (16 in the paper; 2 for the latent-space figure). */
  latentDim: number;
  /** Residual PixelCNN layers after the input layer (12 in the Table-1 model; 0 allowed). */
  pixelLayers: number;
  /** Stack width P (16, the authors' -dpx 16; the appendix says 32, see docs/departures.md). Pre-gate convolutions output 2P channels. */
  pixelWidth: number;
  /** Kernel size of the residual layers (5) and of the input layer (7). */
  filterSize: number;
  inputFilterSize: number;
  /** Width of the output 1x1 layers of the upsampling variants (32). */
  outputWidth: number;
  /** Encoder widths DIM_1..DIM_4 (32, 32, 64, 64). */
  encoderDims: [number, number, number, number];
  /** Upsampling decoder widths: [after Linear and first convs, after first deconv, last] (64, 64, 32). */
  decoderDims: [number, number, number];
  /** Steps of linear KL warm-up (10000); 0 disables it. */
  klWarmupSteps: number;
  weightNorm: boolean;
  /**
   * How gated-pixelvae bounds its upsampling decoder's ReLU features before they join the gated
   * stacks (the other presets ignore it): 'tanh' of the features as they are, or 'rms-tanh', the tanh
   * of each image's features divided by their root mean square over channels and pixels, so they
   * cannot grow until the tanh is flat and z stops being read (docs/departures.md).
   */
  featureNorm: FeatureNorm;
  /** Seeds parameter initialisation. */
  seed: number;
}

const BASE: Omit<MnistModelConfig, 'preset'> = {
  imageSize: 28,
  latentDim: 16,
  pixelLayers: 12,
  pixelWidth: 16,
  filterSize: 5,
  inputFilterSize: 7,
  outputWidth: 32,
  encoderDims: [32, 32, 64, 64],
  decoderDims: [64, 64, 32],
  klWarmupSteps: 10000,
  weightNorm: true,
  featureNorm: 'tanh',
  seed: 1,
};

export function hasLatent(preset: MnistPreset): boolean {
  return preset !== 'pixelcnn' && preset !== 'gated-pixelcnn';
}

export function hasPixelCnn(preset: MnistPreset): boolean {
  return preset !== 'conv-vae';
}

/** The paper-size configuration of a preset, with overrides. */
export function mnistConfig(preset: MnistPreset, overrides: Partial<MnistModelConfig> = {}): MnistModelConfig {
  const config: MnistModelConfig = { ...BASE, preset, ...overrides };
  validateConfig(config);
  return config;
}

/** A configuration small enough for tests on a CPU fallback adapter. */
export function tinyConfig(preset: MnistPreset, overrides: Partial<MnistModelConfig> = {}): MnistModelConfig {
  return mnistConfig(preset, {
    imageSize: 8,
    latentDim: 4,
    pixelLayers: 2,
    pixelWidth: 4,
    filterSize: 3,
    inputFilterSize: 3,
    outputWidth: 6,
    encoderDims: [4, 4, 6, 6],
    decoderDims: [6, 6, 4],
    klWarmupSteps: 0,
    ...overrides,
  });
}

export function validateConfig(c: MnistModelConfig): void {
  const problems: string[] = [];
  if (!MNIST_PRESETS.includes(c.preset)) problems.push(`unknown preset "${c.preset}" (one of ${MNIST_PRESETS.join(', ')})`);
  const positive = (name: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) problems.push(`${name} must be a positive integer (got ${v})`);
  };
  positive('imageSize', c.imageSize);
  positive('latentDim', c.latentDim);
  positive('pixelWidth', c.pixelWidth);
  positive('outputWidth', c.outputWidth);
  if (!Number.isInteger(c.pixelLayers) || c.pixelLayers < 0) problems.push(`pixelLayers must be >= 0 (got ${c.pixelLayers})`);
  for (const [name, k] of [['filterSize', c.filterSize], ['inputFilterSize', c.inputFilterSize]] as const) {
    if (!Number.isInteger(k) || k < 1 || k > 7 || k % 2 === 0) problems.push(`${name} must be odd, 1 to 7 (got ${k})`);
  }
  if (hasLatent(c.preset) && c.imageSize % 4 !== 0) problems.push(`imageSize must be a multiple of 4 for latent models (got ${c.imageSize})`);
  if (!(FEATURE_NORMS as readonly unknown[]).includes(c.featureNorm)) problems.push(`featureNorm must be one of ${FEATURE_NORMS.join(', ')} (got ${String(c.featureNorm)})`);
  c.encoderDims.forEach((d, i) => positive(`encoderDims[${i}]`, d));
  c.decoderDims.forEach((d, i) => positive(`decoderDims[${i}]`, d));
  if (problems.length > 0) throw new Error(`invalid model configuration: ${problems.join('; ')}`);
}

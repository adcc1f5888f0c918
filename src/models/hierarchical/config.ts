// The two-level PixelVAE for colour images (pixelvae-reference.md, section 2): sizes and presets.
//
// The networks are built from a resolution ladder: `dims[k]` is the width of the feature maps at
// resolution imageSize / 2^k. The encoder goes down from the image (k = 0) to z1's resolution
// (k = z1Level), where it emits q(z1|x) and the feature map h1; the second encoder goes on down to the
// z2 grid (k = dims.length - 1) and emits the vector z2 through a linear map. The decoders mirror it:
// Dec2 goes up from z2 to z1's resolution (the features of the latent PixelCNN prior p(z1|z2)), Dec1
// from z1 to the image (the features of the pixel PixelCNN p(x|z1)).

export const HIER_PRESETS = ['tiny', 'small', '32px', '64px'] as const;
export type HierPreset = (typeof HIER_PRESETS)[number];

export interface HierConfig {
  preset: HierPreset;
  /** Image side (square, a power-of-two multiple of the z1 and z2 grids). */
  imageSize: number;
  /** Colour channels (3: R, G, B). */
  channels: number;
  /** Embedding width per sub-pixel (16 in the reference: 48 channels for RGB). */
  embedDim: number;
  /** Feature widths by resolution: dims[k] at imageSize / 2^k. The last entry is the z2 grid's. */
  dims: number[];
  /** Index into dims of z1's resolution (z1 is imageSize / 2^z1Level on a side). */
  z1Level: number;
  /** z1 channels (LATENT_DIM_1: 64 in the reference). */
  latent1: number;
  /** z2 size (LATENT_DIM_2: 512). */
  latent2: number;
  /** Residual blocks at each encoder level above z1 (before its down-sampling), and the mirror in Dec1. */
  encoderBlocks: number[];
  /** Residual blocks at z1's level and below (the reference uses 3). */
  latentBlocks: number;
  /** Width of the pixel PixelCNN's masked residual blocks (DIM_PIX_1). */
  pixelWidth: number;
  /** Masked residual blocks in the pixel PixelCNN (2 at 32px, 3 at 64px). */
  pixelBlocks: number;
  /** Width of the latent PixelCNN's masked residual blocks (DIM_PIX_2). */
  latentPixelWidth: number;
  /** Kernel of the masked input convolutions (5 in the reference) and of the residual ones (3). */
  inputFilter: number;
  filter: number;
  /** KL warm-ups (ALPHA1_ITERS, ALPHA2_ITERS) and the prior sigma floor's (BETA_ITERS); 0 disables. */
  alpha1Iters: number;
  alpha2Iters: number;
  betaIters: number;
  /** KL_PENALTY (1). */
  klPenalty: number;
  /** Batch-norm epsilon (1e-2 in the reference). */
  bnEps: number;
  /** Seeds parameter initialisation. */
  seed: number;
}

/** Suggested training settings of a preset (the CLI's defaults). */
export interface HierTrainDefaults {
  batchSize: number;
  lr: number;
  steps: number;
  /** Training batches averaged by the batch-norm re-estimation before evaluation or sampling (1000 in the reference). */
  bnBatches: number;
}

const PRESETS: Record<HierPreset, { config: Omit<HierConfig, 'preset' | 'seed'>; train: HierTrainDefaults }> = {
  // Tests on a CPU fallback adapter: 8x8 images, z1 4x4x4, z2 8 on a 2x2 grid, widths 6 to 8.
  tiny: {
    config: {
      imageSize: 8, channels: 3, embedDim: 4, dims: [6, 8, 8], z1Level: 1, latent1: 4, latent2: 8,
      encoderBlocks: [1], latentBlocks: 1, pixelWidth: 6, pixelBlocks: 1, latentPixelWidth: 8,
      inputFilter: 3, filter: 3, alpha1Iters: 0, alpha2Iters: 0, betaIters: 0, klPenalty: 1, bnEps: 1e-2,
    },
    train: { batchSize: 8, lr: 1e-3, steps: 200, bnBatches: 4 },
  },
  // A laptop GPU in minutes: 32x32, z1 16x8x8, z2 64 on a 4x4 grid, a quarter of the reference widths.
  small: {
    config: {
      imageSize: 32, channels: 3, embedDim: 16, dims: [48, 48, 64, 96], z1Level: 2, latent1: 16, latent2: 64,
      encoderBlocks: [1, 1], latentBlocks: 2, pixelWidth: 48, pixelBlocks: 2, latentPixelWidth: 96,
      inputFilter: 5, filter: 3, alpha1Iters: 2000, alpha2Iters: 5000, betaIters: 1000, klPenalty: 1, bnEps: 1e-2,
    },
    train: { batchSize: 32, lr: 1e-3, steps: 5000, bnBatches: 50 },
  },
  // The reference's 32px_small setting (LSUN 32x32): z1 64x8x8, z2 512. Colour groups are channel
  // index mod 3, as in the reference, so the 64- and 128-wide masked layers need no rounding.
  '32px': {
    config: {
      imageSize: 32, channels: 3, embedDim: 16, dims: [64, 128, 256, 512], z1Level: 2, latent1: 64, latent2: 512,
      encoderBlocks: [2, 2], latentBlocks: 3, pixelWidth: 128, pixelBlocks: 2, latentPixelWidth: 512,
      inputFilter: 5, filter: 3, alpha1Iters: 2000, alpha2Iters: 5000, betaIters: 1000, klPenalty: 1, bnEps: 1e-2,
    },
    train: { batchSize: 64, lr: 1e-3, steps: 200000, bnBatches: 1000 },
  },
  // The reference's 64px_small setting (LSUN / ImageNet 64x64): z1 64x16x16, z2 512.
  '64px': {
    config: {
      imageSize: 64, channels: 3, embedDim: 16, dims: [64, 64, 128, 256, 512], z1Level: 2, latent1: 64, latent2: 512,
      encoderBlocks: [1, 2], latentBlocks: 3, pixelWidth: 128, pixelBlocks: 3, latentPixelWidth: 256,
      inputFilter: 5, filter: 3, alpha1Iters: 2000, alpha2Iters: 10000, betaIters: 1000, klPenalty: 1, bnEps: 1e-2,
    },
    train: { batchSize: 64, lr: 1e-3, steps: 200000, bnBatches: 1000 },
  },
};

export function hierConfig(preset: HierPreset, overrides: Partial<HierConfig> = {}): HierConfig {
  const base = PRESETS[preset];
  if (!base) throw new Error(`unknown hierarchical preset "${preset}" (one of ${HIER_PRESETS.join(', ')})`);
  const config: HierConfig = { ...structuredClone(base.config), preset, seed: 1, ...overrides };
  validateHierConfig(config);
  return config;
}

export function hierTrainDefaults(preset: HierPreset): HierTrainDefaults {
  return { ...PRESETS[preset].train };
}

/** Side of z1's grid and of z2's grid. */
export function latentGrids(c: HierConfig): { z1: number; z2: number } {
  return { z1: c.imageSize >> c.z1Level, z2: c.imageSize >> (c.dims.length - 1) };
}

export function validateHierConfig(c: HierConfig): void {
  const problems: string[] = [];
  const positive = (name: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) problems.push(`${name} must be a positive integer (got ${v})`);
  };
  if (!HIER_PRESETS.includes(c.preset)) problems.push(`unknown preset "${c.preset}"`);
  for (const key of ['imageSize', 'channels', 'embedDim', 'latent1', 'latent2', 'latentBlocks', 'pixelWidth', 'pixelBlocks', 'latentPixelWidth'] as const) positive(key, c[key]);
  if (!Array.isArray(c.dims) || c.dims.length < 2) problems.push('dims needs at least two resolutions (the image and z2\'s grid)');
  else c.dims.forEach((d, i) => positive(`dims[${i}]`, d));
  if (!Number.isInteger(c.z1Level) || c.z1Level < 1 || c.z1Level > c.dims.length - 1) {
    problems.push(`z1Level must be in 1..${c.dims.length - 1} (got ${c.z1Level})`);
  }
  const top = c.dims.length - 1;
  if (c.imageSize % (1 << top) !== 0) problems.push(`imageSize ${c.imageSize} must be divisible by 2^${top} (the z2 grid)`);
  if (!Array.isArray(c.encoderBlocks) || c.encoderBlocks.length !== c.z1Level) problems.push(`encoderBlocks needs ${c.z1Level} entries (one per level above z1)`);
  else c.encoderBlocks.forEach((b, i) => { if (!Number.isInteger(b) || b < 0) problems.push(`encoderBlocks[${i}] must be >= 0 (got ${b})`); });
  for (const [name, k] of [['inputFilter', c.inputFilter], ['filter', c.filter]] as const) {
    if (!Number.isInteger(k) || k < 1 || k > 7 || k % 2 === 0) problems.push(`${name} must be odd, 1 to 7 (got ${k})`);
  }
  for (const key of ['alpha1Iters', 'alpha2Iters', 'betaIters'] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 0) problems.push(`${key} must be a non-negative integer (got ${c[key]})`);
  }
  if (!(c.klPenalty >= 0)) problems.push(`klPenalty must be >= 0 (got ${c.klPenalty})`);
  if (!(c.bnEps > 0)) problems.push(`bnEps must be > 0 (got ${c.bnEps})`);
  if (problems.length > 0) throw new Error(`invalid hierarchical model configuration: ${problems.join('; ')}`);
}

/** Warm-up weights at a training step (the reference's alpha1, alpha2 and prior sigma floor). */
export function schedule(c: HierConfig, step: number): { alpha1: number; alpha2: number; sigmaFloor: number } {
  const ramp = (iters: number): number => (iters <= 0 ? 1 : Math.min(1, (step + 1) / iters));
  const alpha1 = ramp(c.alpha1Iters) * c.klPenalty;
  const alpha2 = ramp(c.alpha2Iters) * alpha1;
  const sigmaFloor = c.betaIters <= 0 ? 0 : 1 - Math.min(1, step / c.betaIters);
  return { alpha1, alpha2, sigmaFloor };
}

/** The evaluation / sampling setting: full KL weights and no sigma floor (the reference feeds total_iters=99999). */
export const EVAL_SCHEDULE = { alpha1: 1, alpha2: 1, sigmaFloor: 0 } as const;

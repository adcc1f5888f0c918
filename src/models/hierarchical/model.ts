// The two-level PixelVAE for colour images (pixelvae-reference.md, section 2): parameters, the loss
// in nats per dimension with per-level KL warm-ups, bits/dim, top-down sampling with per-level noise
// control, and reconstructions from either level. Everything runs on the GPU; sampling encodes both
// autoregressive loops (z1 position by position, then pixels in raster and R->G->B order) with
// in-kernel sampling and no readback: incrementally by default (incremental.ts: each layer only at
// the position drawn), or with one whole network pass per draw (shaders/sample_categorical.wgsl).
import sampleWgsl from '../../../shaders/sample_categorical.wgsl?raw';
import * as E from '../../engine';
import { Params, launch, threadsGrid } from '../../engine/kernels';
import type { KernelSpec } from '../../gpu/context';
import { ParamSet } from '../../nn/params';
import { EVAL_SCHEDULE, latentGrids, validateHierConfig, type HierConfig } from './config';
import { IncrementalSampler, type IncrementalLevel } from './incremental';
import {
  BufferSet,
  Encoder1,
  Encoder2,
  LatentPixelCnn,
  PixelPixelCnn,
  PixelTrunk,
  PriorTrunk,
  type BnMode,
  type MaskedStack,
  type Builder,
} from './networks';

const CATEGORICAL: KernelSpec = { name: 'sample_categorical.wgsl', code: sampleWgsl, entry: 'categorical_at', bindings: ['read', 'read', 'rw'] };
const GAUSSIAN: KernelSpec = { name: 'sample_categorical.wgsl', code: sampleWgsl, entry: 'gaussian_at', bindings: ['read', 'read', 'rw'] };

/** Loss weights of one step (config.ts's schedule(); EVAL_SCHEDULE for evaluation). */
export interface Schedule {
  alpha1: number;
  alpha2: number;
  sigmaFloor: number;
}

/** Scalars, all in nats per dimension (per sub-pixel). */
export interface HierTerms {
  /** What is minimised: reconstruction + alpha1 kl1 + alpha2 kl2. */
  loss: E.Tensor;
  /** Mean -log p(x|z1) per sub-pixel. */
  reconstruction: E.Tensor;
  /** Mean KL(q(z1|x) || p(z1|z2)) per image, spread over the image's C*H*W dimensions. */
  kl1: E.Tensor;
  /** Mean KL(q(z2|x) || N(0, I)) per image, spread over C*H*W. */
  kl2: E.Tensor;
}

/** The reparameterisation noise of one training step: N(0, 1) of z1's and z2's shapes. */
export interface PosteriorNoise {
  eps1: E.Tensor;
  eps2: E.Tensor;
}

/**
 * All the randomness of generation, drawn up front: z2 ~ N(0, I) [N, L2], eps1 ~ N(0, I) for z1
 * [N, L1, h1, w1], and the pixels' uniforms [N, C, H, W]. Holding one of them while another varies
 * is how the level-variation grids are made.
 */
export interface LevelNoise {
  z2: E.Tensor;
  eps1: E.Tensor;
  uniforms: E.Tensor;
}

export type Level = 'top' | 'middle' | 'pixels';
export const LEVELS: readonly Level[] = ['top', 'middle', 'pixels'];

/** Offsets of the three noise streams (any seed): they never overlap. */
const NOISE_STREAM = { z2: 11, eps1: 12, uniforms: 13 } as const;

export interface Generated {
  /** Sub-pixel values 0..255, u32 [N, C, H, W]. */
  images: E.Tensor;
  z1: E.Tensor;
  z2: E.Tensor | null;
}

export interface SampleOptions {
  /** Called after each autoregressive step with the draws done (z1 positions, then sub-pixels). */
  onProgress?: (done: number, total: number) => void;
  /** Await the GPU every this many dispatched steps (bounds queued work; default 16). */
  throttleEvery?: number;
  /**
   * 'incremental' (default): each PixelCNN layer computed only at the position drawn, from caches
   * (incremental.ts), one dispatch per position. 'full': one whole network pass per draw (the
   * reference the incremental sampler is tested against).
   */
  method?: 'incremental' | 'full';
}

export class HierarchicalPixelVae {
  readonly params: ParamSet;
  readonly buffers = new BufferSet();
  /** Batch-norm mode: the trainer and the re-estimation pass set it; evaluation and sampling use running statistics. */
  readonly bn: BnMode = { training: true, momentum: 1 };
  private readonly embeddingTable: E.Tensor;
  private readonly enc1: Encoder1;
  private readonly enc2: Encoder2;
  private readonly priorTrunk: PriorTrunk;
  private readonly latentPixelCnn: LatentPixelCnn;
  private readonly pixelTrunk: PixelTrunk;
  private readonly pixelPixelCnn: PixelPixelCnn;

  constructor(readonly config: HierConfig) {
    validateHierConfig(config);
    this.params = new ParamSet(config.seed);
    const b: Builder = { params: this.params, buffers: this.buffers, bn: this.bn, eps: config.bnEps };
    const table = new Float32Array(256 * config.embedDim);
    for (let i = 0; i < table.length; i++) table[i] = this.params.rng.normal();
    this.embeddingTable = this.params.create('embedding', [256, config.embedDim], table);
    this.enc1 = new Encoder1(b, config);
    this.enc2 = new Encoder2(b, config);
    this.priorTrunk = new PriorTrunk(b, config);
    this.latentPixelCnn = new LatentPixelCnn(b, config);
    this.pixelTrunk = new PixelTrunk(b, config);
    this.pixelPixelCnn = new PixelPixelCnn(b, config);
  }

  /** Shapes: image [C, H, W], z1 [L1, h1, w1], z2 [L2]. */
  get shapes(): { image: [number, number, number]; z1: [number, number, number]; z2: [number] } {
    const c = this.config;
    const g = latentGrids(c).z1;
    return { image: [c.channels, c.imageSize, c.imageSize], z1: [c.latent1, g, g], z2: [c.latent2] };
  }

  /** The latent and pixel PixelCNNs' layers, as the incremental sampler walks them. */
  get pixelCnns(): { latent: MaskedStack; pixel: MaskedStack } {
    return { latent: this.latentPixelCnn, pixel: this.pixelPixelCnn };
  }

  /** The sub-pixel embedding table [256, E]. */
  get embeddingWeights(): E.Tensor {
    return this.embeddingTable;
  }

  /** Dimensions per image (C*H*W): the denominator of nats/dim and bits/dim. */
  get dimsPerImage(): number {
    const [c, h, w] = this.shapes.image;
    return c * h * w;
  }

  /** The 16-d embedding of every sub-pixel, interleaved by colour: u32 [B, C, H, W] -> [B, E*C, H, W], channel e*C + c. */
  embed(x: E.Tensor): E.Tensor {
    const [n, c, h, w] = x.shape;
    const e = this.config.embedDim;
    return E.transpose(E.embedding(x, this.embeddingTable), [0, 4, 1, 2, 3]).view([n, e * c, h, w]);
  }

  /** q(z1|x) and q(z2|x): means and log sigmas (sigma = (softsign(raw) + 1) / 2). */
  posterior(x: E.Tensor): { mu1: E.Tensor; logSigma1: E.Tensor; mu2: E.Tensor; logSigma2: E.Tensor } {
    const { raw, h1 } = this.enc1.forward(this.embed(x));
    const [mu1, logSigma1] = splitPosterior(raw);
    const [mu2, logSigma2] = splitPosterior(this.enc2.forward(h1));
    return { mu1, logSigma1, mu2, logSigma2 };
  }

  /** Dec2's features for z2 [B, L2] (computed once per z2, reused by every pass of the z1 loop). */
  priorFeatures(z2: E.Tensor): E.Tensor {
    return this.priorTrunk.forward(z2);
  }

  /** The latent PixelCNN's raw output [B, 2 L1, h1, w1] for a z1 canvas. */
  priorRaw(z1: E.Tensor, features: E.Tensor): E.Tensor {
    return this.latentPixelCnn.forward(z1, features);
  }

  /** p(z1|z2) at every position: mu = 2 softsign(raw/2), sigma = max((softsign(raw) + 1)/2, floor). */
  priorParams(z1: E.Tensor, features: E.Tensor, sigmaFloor = 0): { mu: E.Tensor; logSigma: E.Tensor } {
    const raw = this.priorRaw(z1, features);
    const l = this.config.latent1;
    const [n, , h, w] = raw.shape;
    const mu = E.scale(E.softsign(E.scale(E.slice(raw, [0, 0, 0, 0], [n, l, h, w]), 0.5)), 2);
    let sigma = E.affine(E.softsign(E.slice(raw, [0, l, 0, 0], [n, l, h, w])), 0.5, 0.5);
    if (sigmaFloor > 0) sigma = E.maximum(sigma, E.fill([1], sigmaFloor));
    return { mu, logSigma: E.log(sigma) };
  }

  /** Dec1's features for z1 (computed once per z1, reused by every pass of the pixel loop). */
  pixelFeatures(z1: E.Tensor): E.Tensor {
    return this.pixelTrunk.forward(z1);
  }

  /** Logits [B, 256, C, H, W] of every sub-pixel given the image (or canvas) x, u32 [B, C, H, W]. */
  pixelLogits(x: E.Tensor, features: E.Tensor): E.Tensor {
    return this.pixelPixelCnn.forward(this.embed(x), features);
  }

  /**
   * The negative ELBO terms for images x (u32 [B, C, H, W], values 0..255), in nats per dimension,
   * with the reference's normalisation: cross-entropy averaged over sub-pixels, each KL averaged
   * over the batch and divided by C*H*W. p(z1|z2) is evaluated at the sampled z1.
   */
  terms(x: E.Tensor, noise: PosteriorNoise, s: Schedule): HierTerms {
    const { mu1, logSigma1, mu2, logSigma2 } = this.posterior(x);
    const z1 = E.add(mu1, E.mul(noise.eps1, E.exp(logSigma1)));
    const z2 = E.add(mu2, E.mul(noise.eps2, E.exp(logSigma2)));
    const prior = this.priorParams(z1, this.priorFeatures(z2), s.sigmaFloor);
    const dims = this.dimsPerImage;
    const batch = x.shape[0];
    const kl1 = E.scale(E.sum(E.klDiagGaussians(mu1, logSigma1, prior.mu, prior.logSigma)), 1 / (batch * dims));
    const kl2 = E.scale(E.sum(E.klStandardNormal(mu2, logSigma2)), 1 / (batch * dims));
    const logits = this.pixelLogits(x, this.pixelFeatures(z1));
    const reconstruction = E.mean(E.softmaxCrossEntropy(logits, x, 1));
    const loss = E.add(reconstruction, E.add(E.scale(kl1, s.alpha1), E.scale(kl2, s.alpha2)));
    return { loss, reconstruction: reconstruction.view([1]), kl1: kl1.view([1]), kl2: kl2.view([1]) };
  }

  /**
   * Importance-sampled NLL per image in nats with k samples: -(logsumexp_k log w_k - log k), with
   * log w = log p(x|z1) + log p(z1|z2) + log N(z2; 0, I) - log q(z1|x) - log q(z2|x) and z2, z1 drawn
   * from q by `noise` (eps1 [k*B, L1, h1, w1], eps2 [k*B, L2]; sample j of image i at row j*B + i).
   * Also per image: the bound with the same samples (-mean_k log p(x|z1_k) + mean_k KL1 + KL2, the KLs
   * analytic), its KL, and -mean_k log w_k (which the estimate never exceeds, by Jensen). Runs in the
   * current batch-norm mode (evaluation: running statistics). The PyTorch twin computes the same.
   */
  importanceNll(x: E.Tensor, k: number, noise: PosteriorNoise): { nll: E.Tensor; negElbo: E.Tensor; kl: E.Tensor; negElboSameSamples: E.Tensor } {
    const batch = x.shape[0];
    const n = k * batch;
    const q = this.posterior(x);
    const tile = (t: E.Tensor): E.Tensor => E.expand(t.view([1, ...t.shape]), [k, ...t.shape]).view([n, ...t.shape.slice(1)]);
    const [mu1, logSigma1, mu2, logSigma2] = [tile(q.mu1), tile(q.logSigma1), tile(q.mu2), tile(q.logSigma2)];
    const xTiled = k === 1 ? x : E.concat(Array.from({ length: k }, () => x), 0);
    const z1 = E.add(mu1, E.mul(noise.eps1, E.exp(logSigma1)));
    const z2 = E.add(mu2, E.mul(noise.eps2, E.exp(logSigma2)));
    const prior = this.priorParams(z1, this.priorFeatures(z2), 0);
    const logits = this.pixelLogits(xTiled, this.pixelFeatures(z1));
    const perImage = (t: E.Tensor): E.Tensor => E.sum(t.view([n, t.size / n]), 1); // [n]
    const logPx = E.neg(perImage(E.softmaxCrossEntropy(logits, xTiled, 1)));
    const zero = E.zeros([1]);
    const logPz1 = perImage(E.gaussianLogDensity(z1, prior.mu, prior.logSigma));
    const logQz1 = perImage(E.gaussianLogDensity(z1, mu1, logSigma1));
    const logPz2 = perImage(E.gaussianLogDensity(z2, zero, zero));
    const logQz2 = perImage(E.gaussianLogDensity(z2, mu2, logSigma2));
    const logW = E.add(E.add(logPx, E.sub(logPz1, logQz1)), E.sub(logPz2, logQz2)).view([k, batch]);
    // logsumexp over k: x_0 - logSoftmax(x)_0 (stable, and one kernel).
    const first = E.slice(logW, [0, 0], [1, batch]).view([batch]);
    const lse = E.sub(first, E.slice(E.logSoftmax(logW, 0), [0, 0], [1, batch]).view([batch]));
    const nll = E.neg(E.addScalar(lse, -Math.log(k)));
    const kl1 = E.mean(perImage(E.klDiagGaussians(mu1, logSigma1, prior.mu, prior.logSigma)).view([k, batch]), 0);
    const kl2 = E.sum(E.klStandardNormal(q.mu2, q.logSigma2), 1);
    const kl = E.add(kl1, kl2);
    const negElbo = E.add(E.neg(E.mean(logPx.view([k, batch]), 0)), kl);
    return { nll, negElbo, kl, negElboSameSamples: E.neg(E.mean(logW, 0)) };
  }

  /** Posterior noise for a batch: a fresh N(0, 1) stream per (seed, offset). */
  posteriorNoise(batch: number, seed: E.Seed, offset: E.Seed): PosteriorNoise {
    const [o0, o1] = E.seedWords(offset, 'offset');
    const [l1, h1, w1] = this.shapes.z1;
    return {
      eps1: E.randomNormal([batch, l1, h1, w1], seed, [o0, (o1 * 4 + 1) >>> 0]),
      eps2: E.randomNormal([batch, this.config.latent2], seed, [o0, (o1 * 4 + 2) >>> 0]),
    };
  }

  /**
   * Level noise for a rows x cols grid: the level `vary` gets its own draw in every cell; the other
   * levels' noise is drawn once per row and shared by the row's cells (so with rows = 1 every cell
   * shares it: the reference's HOLD_* flags). `vary = null` draws everything per cell.
   */
  levelNoise(rows: number, cols: number, seed: number, vary: Level | null): LevelNoise {
    const n = rows * cols;
    const [c, h, w] = this.shapes.image;
    const [l1, h1, w1] = this.shapes.z1;
    const draw = (level: Level, shape: number[], normal: boolean, stream: number): E.Tensor => {
      const perCell = vary === null || vary === level;
      const drawn = normal ? E.randomNormal([perCell ? n : rows, ...shape], seed, [0, stream]) : E.randomUniform([perCell ? n : rows, ...shape], seed, [0, stream]);
      if (perCell || cols === 1) return drawn;
      const held = E.expand(drawn.view([rows, 1, ...shape]), [rows, cols, ...shape]).view([n, ...shape]);
      drawn.dispose();
      return held;
    };
    return {
      z2: draw('top', [this.config.latent2], true, NOISE_STREAM.z2),
      eps1: draw('middle', [l1, h1, w1], true, NOISE_STREAM.eps1),
      uniforms: draw('pixels', [c, h, w], false, NOISE_STREAM.uniforms),
    };
  }

  /** Top-down generation: z2 (given), z1 from the prior with eps1, then the pixels with the uniforms. Running BN statistics. */
  async sample(noise: LevelNoise, opts: SampleOptions = {}): Promise<Generated> {
    return this.generate({ z2: noise.z2 }, noise, opts);
  }

  /**
   * Generation from a given z2 (z1 and pixels sampled) or a given z1 (pixels sampled), with the
   * noise of the levels below. Both loops run on the GPU with in-kernel sampling; nothing is read
   * back. Returns tensors the caller owns.
   */
  async generate(start: { z2: E.Tensor } | { z1: E.Tensor }, noise: Pick<LevelNoise, 'eps1' | 'uniforms'>, opts: SampleOptions = {}): Promise<Generated> {
    const gpu = E.engine().gpu;
    const [c, h, w] = this.shapes.image;
    const [l1, h1, w1] = this.shapes.z1;
    const n = noise.uniforms.shape[0];
    const every = Math.max(1, opts.throttleEvery ?? 16);
    const incremental = (opts.method ?? 'incremental') === 'incremental';
    const zPasses = 'z1' in start ? 0 : h1 * w1;
    const total = zPasses + c * h * w;
    let done = 0;
    let steps = 0;
    /** After each encoded step that drew `draws` values: progress, and a wait every `every` steps. */
    const stepped = async (draws: number): Promise<void> => {
      done += draws;
      steps += 1;
      if (steps % every === 0) await gpu.throttle();
      opts.onProgress?.(done, total);
    };
    const runIncremental = async (level: IncrementalLevel): Promise<void> => {
      const sampler = E.noGrad(() => IncrementalSampler.create(level));
      try {
        for (let position = 0; position < sampler.positions; position++) {
          sampler.encode(position);
          await stepped(sampler.colours);
        }
      } finally {
        sampler.dispose();
      }
    };
    const wasTraining = this.bn.training;
    this.bn.training = false;
    try {
      let z1: E.Tensor;
      let z2: E.Tensor | null = null;
      if ('z1' in start) {
        z1 = E.keep(E.noGrad(() => E.add(start.z1, E.zeros([1]))));
      } else {
        z2 = E.keep(E.noGrad(() => E.add(start.z2, E.zeros([1]))));
        z1 = E.keep(E.zeros([n, l1, h1, w1]));
        const features = E.keep(E.noGrad(() => this.priorFeatures(z2!)));
        try {
          if (incremental) {
            await runIncremental({ stack: this.latentPixelCnn, features, noise: noise.eps1, canvas: z1, floor: 0 });
          } else {
            for (let position = 0; position < h1 * w1; position++) {
              E.noGrad(() => E.tidy(() => sampleGaussianAt(this.priorRaw(z1, features), noise.eps1, z1, position, 0)));
              await stepped(1);
            }
          }
        } finally {
          features.dispose();
        }
      }
      const images = E.keep(E.fromArray(new Uint32Array(n * c * h * w), [n, c, h, w], 'u32'));
      const features = E.keep(E.noGrad(() => this.pixelFeatures(z1)));
      try {
        if (incremental) {
          await runIncremental({ stack: this.pixelPixelCnn, features, noise: noise.uniforms, canvas: images, embedding: this.embeddingTable });
        } else {
          for (let position = 0; position < h * w; position++) {
            for (let channel = 0; channel < c; channel++) {
              E.noGrad(() => E.tidy(() => sampleCategoricalAt(this.pixelLogits(images, features), noise.uniforms, images, position, channel)));
              await stepped(1);
            }
          }
        }
      } finally {
        features.dispose();
      }
      return { images, z1, z2 };
    } finally {
      this.bn.training = wasTraining;
    }
  }

  /**
   * Reconstruction from one level: encode x (u32 [B, C, H, W]) with running BN statistics, keep
   * z2 ('top': z1 and the pixels are regenerated) or z1 ('middle': the pixels are regenerated).
   * The kept latent is the posterior mean plus sigma times `latentNoise` (zeros: the mean).
   */
  async reconstruct(x: E.Tensor, keepLevel: 'top' | 'middle', noise: Pick<LevelNoise, 'eps1' | 'uniforms'>, latentNoise?: E.Tensor, opts: SampleOptions = {}): Promise<Generated> {
    const wasTraining = this.bn.training;
    this.bn.training = false;
    let kept: E.Tensor;
    try {
      kept = E.noGrad(() =>
        E.tidy(() => {
          const q = this.posterior(x);
          const [mu, logSigma] = keepLevel === 'top' ? [q.mu2, q.logSigma2] : [q.mu1, q.logSigma1];
          return latentNoise ? E.add(mu, E.mul(latentNoise, E.exp(logSigma))) : mu;
        }),
      );
    } finally {
      this.bn.training = wasTraining;
    }
    try {
      return await this.generate(keepLevel === 'top' ? { z2: kept } : { z1: kept }, noise, opts);
    } finally {
      kept.dispose();
    }
  }

  /** Number of trainable scalars. */
  parameterCount(): number {
    return this.params.count();
  }

  /** Parameters and batch-norm statistics under their checkpoint names. */
  stateTensors(): Map<string, E.Tensor> {
    const m = new Map<string, E.Tensor>(this.params.entriesList());
    for (const [name, t] of this.buffers.entriesList()) m.set(`buffer/${name}`, t);
    return m;
  }

  dispose(): void {
    this.params.dispose();
    this.buffers.dispose();
  }
}

/** [B, 2K, ...] -> mu [B, K, ...] and log sigma with sigma = (softsign(raw) + 1) / 2 in (0, 1). */
export function splitPosterior(raw: E.Tensor): [E.Tensor, E.Tensor] {
  const shape = [...raw.shape];
  const k = shape[1] / 2;
  const sizes = [shape[0], k, ...shape.slice(2)];
  const zeros = shape.map(() => 0);
  const mu = E.slice(raw, zeros, sizes);
  const rawSigma = E.slice(raw, zeros.map((z, i) => (i === 1 ? k : z)), sizes);
  return [mu, E.log(E.affine(E.softsign(rawSigma), 0.5, 0.5))];
}

/** Bits per dimension from nats per dimension. */
export function bitsPerDim(natsPerDim: number): number {
  return natsPerDim / Math.LN2;
}

/** Samples sub-pixel (channel, position) of every image into `canvas` (u32 [N, C, H, W]) from logits [N, K, C, H, W] by inverse CDF. */
export function sampleCategoricalAt(logits: E.Tensor, uniforms: E.Tensor, canvas: E.Tensor, position: number, channel: number): void {
  const [n, classes, c, h, w] = logits.shape;
  const params = new Params().u(n, h * w, c, classes, position, channel).f(0).u(0).build();
  launch(CATEGORICAL, [logits.buffer, uniforms.buffer, canvas.buffer], params, threadsGrid(n, 64));
}

/** Samples every channel of z1 position `position` into `z` [N, L, h, w] from the prior's raw output [N, 2L, h, w] and eps. */
export function sampleGaussianAt(raw: E.Tensor, eps: E.Tensor, z: E.Tensor, position: number, floor: number): void {
  const [n, l, h, w] = z.shape;
  const params = new Params().u(n, h * w, l, 0, position, 0).f(floor).u(0).build();
  launch(GAUSSIAN, [raw.buffer, eps.buffer, z.buffer], params, threadsGrid(n * l, 64));
}

/** Re-exported so callers need one import for the evaluation setting. */
export { EVAL_SCHEDULE };
